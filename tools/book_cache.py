"""Clear the book's execution cache when the package's source changed (``make book`` runs it first).

jupyter-book caches each chapter's outputs by the chapter's code cells only. After a change
in ``bt_tutorial/`` with the chapters unchanged, a build would show the old code's numbers.
This script hashes every file of the package (and ``pyproject.toml``, which pins what it
runs with) and removes ``book/_build/.jupyter_cache`` when the hash differs from the one
stored beside it by the previous run.

    python tools/book_cache.py            # book/_build of this repository
    python tools/book_cache.py --build-dir other/_build --package other/pkg
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = ".jupyter_cache"
STAMP = ".package_hash"


def source_hash(package: Path, extra: tuple = ()) -> str:
    """SHA-256 over the relative path and bytes of every file of ``package`` (caches left out), then ``extra``."""
    digest = hashlib.sha256()
    files = sorted(p for p in Path(package).rglob("*")
                   if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc")
    for path in [*files, *map(Path, extra)]:
        name = path.relative_to(package) if path.is_relative_to(package) else Path(path.name)
        digest.update(str(name).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def refresh(build_dir: Path, package: Path, extra: tuple = ()) -> bool:
    """Remove ``build_dir/.jupyter_cache`` if the package's hash changed; store the new hash.

    Returns
    -------
    cleared : bool
        True when a cache was removed.
    """
    build_dir = Path(build_dir)
    stamp, cache = build_dir / STAMP, build_dir / CACHE
    current = source_hash(package, extra)
    previous = stamp.read_text().strip() if stamp.is_file() else None
    cleared = cache.exists() and previous != current
    if cleared:
        shutil.rmtree(cache)
    build_dir.mkdir(parents=True, exist_ok=True)
    stamp.write_text(current + "\n")
    return cleared


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build-dir", type=Path, default=ROOT / "book" / "_build")
    parser.add_argument("--package", type=Path, default=ROOT / "bt_tutorial")
    args = parser.parse_args(argv)
    extra = (ROOT / "pyproject.toml",) if args.package == ROOT / "bt_tutorial" else ()
    if refresh(args.build_dir, args.package, extra):
        print(f"bt_tutorial changed since the last build: cleared {args.build_dir / CACHE}, "
              "every chapter runs again.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
