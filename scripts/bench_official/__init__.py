"""Side-by-side timing of the official MoH code against moh-bench (scripts/bench-official.py is the entry point)."""
