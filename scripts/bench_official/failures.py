"""Exceptions turned into JSON entries: first line, root cause, where it was raised."""
import os
import traceback


def first_line(e):
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[0] if text else ''}".strip()


def root_cause(e):
    """The first line of the deepest exception of the __cause__ / __context__ chain ("" when e is its own root)."""
    seen, r = {id(e)}, e
    while True:
        nxt = r.__cause__ if r.__cause__ is not None else (None if r.__suppress_context__ else r.__context__)
        if nxt is None or id(nxt) in seen:
            break
        r = nxt
        seen.add(id(r))
    return "" if r is e else first_line(r)


def failure(stage, e):
    d = {"status": "failed", "stage": stage, "error": first_line(e)}
    cause = root_cause(e)
    if cause and cause != d["error"]:
        d["root_cause"] = cause
    tb = traceback.extract_tb(e.__traceback__)
    if tb:
        d["raised_at"] = f"{os.path.basename(tb[-1].filename)}:{tb[-1].lineno} ({tb[-1].name})"
    return d
