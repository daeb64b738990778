"""Making the official code (SkyworkAI/MoH, timm) and the torch-2 extras importable."""
import os
import sys


def setup_imports(src, timm_dir):
    for sub in ("MoH-ViT", "MoH-DiT"):
        if not os.path.isdir(os.path.join(src, sub)):
            sys.exit(f"bench-official: {src} has no {sub}/ folder; --src must be a SkyworkAI/MoH checkout")
    if timm_dir:
        if not os.path.isdir(os.path.join(timm_dir, "timm")):
            sys.exit(f"bench-official: {timm_dir} has no timm/ package; --timm must be a pytorch-image-models checkout")
        sys.path.insert(0, os.path.abspath(timm_dir))


def setup_py2(folder):
    """Puts the torch-2 extras on sys.path (before torch is imported: torch binds numpy at import) when the stamp
    written by setup-bench-official.sh names the torch of this python. Returns a note for the JSON."""
    stamp = os.path.join(folder, ".moh-bench-extras")
    if not os.path.isfile(stamp):
        return "absent"
    try:
        from importlib import metadata
        have = metadata.version("torch").split("+")[0]
    except Exception as e:  # no torch metadata: leave the folder out
        return f"not used: torch version unknown ({e})"
    with open(stamp) as f:
        built = f.read().split(";")[0].replace("torch", "").strip()
    if built != have:
        return f"not used: built for torch {built}, this python has torch {have}"
    if os.path.abspath(folder) not in sys.path:
        sys.path.insert(0, os.path.abspath(folder))
    return f"on sys.path ({os.path.abspath(folder)})"


def import_from(folder, module):
    folder = os.path.abspath(folder)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    try:
        return __import__(module)
    except ImportError as e:
        sys.exit(f"bench-official: importing {folder}/{module}.py failed: {e}. The official code needs timm (or --timm), "
                 f"torchvision and Pillow for this python ({sys.executable}); on Debian: apt-get install python3-torch "
                 f"python3-torchvision python3-pil; for .deps/torch2: scripts/setup-bench-official.sh")
