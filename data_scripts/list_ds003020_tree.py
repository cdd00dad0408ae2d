"""List the files of the OpenNeuro dataset ds003020 from its public git tree.

Writes one TSV row per file of a git revision of the dataset's DataLad /
git-annex repository, with columns ``path``, ``size``, ``md5`` and
``annexed``. Large files are git-annex symlinks (mode 120000) whose target
holds a key ``MD5E-s<bytes>--<md5>.<ext>``; their size and md5 come from that
key (``annexed`` = 1). Small files are stored in git directly; their size
comes from ``git ls-tree -l`` and their md5 is computed from the blob content
(``annexed`` = 0). Rows are sorted by path. No annexed content is downloaded.

Usage
-----
The shipped test file ``tests/data/ds003020_tree.tsv`` (snapshot 3.1.0,
commit f74eb2bc95b827d359de338f9086743824d2d906) was made with::

    git clone https://github.com/OpenNeuroDatasets/ds003020
    python data_scripts/list_ds003020_tree.py --git-dir ds003020/.git \\
        --rev 3.1.0 --out tests/data/ds003020_tree.tsv \\
        --include-top-level --include-prefix derivative/ \\
        --include-prefix stimuli/ --pycortex-subjects UTS01 UTS02 UTS03

The tree's ``derivative/respdict.json`` is in git itself; the shipped copy
``tests/data/ds003020_respdict.json`` was made with::

    git -C ds003020 show 3.1.0:derivative/respdict.json > tests/data/ds003020_respdict.json

Without any ``--include-*`` option every file of the revision is listed.
``--pycortex-subjects`` keeps only those subjects under
``derivative/pycortex-db/``; other paths are unaffected by it.
"""

import argparse
import hashlib
import re
import subprocess
from pathlib import Path

ANNEX_KEY = re.compile(rb"MD5E-s(\d+)--([0-9a-f]{32})")
SYMLINK_MODE = "120000"
PYCORTEX_PREFIX = "derivative/pycortex-db/"
HEADER = ("path", "size", "md5", "annexed")


def list_tree(git_dir, rev):
    """Return (mode, object id, size, path) for every blob of ``rev``."""
    out = subprocess.run(["git", "--git-dir", str(git_dir), "ls-tree", "-r", "-l", "-z", rev],
                         check=True, capture_output=True).stdout
    entries = []
    for record in out.decode("utf-8").split("\0"):
        if not record:
            continue
        meta, path = record.split("\t", 1)
        mode, kind, object_id, size = meta.split()
        if kind == "blob":
            entries.append((mode, object_id, size, path))
    return entries


def read_blobs(git_dir, object_ids):
    """Return {object id: content} read with one ``git cat-file --batch``."""
    unique_ids = sorted(set(object_ids))
    request = "".join(f"{oid}\n" for oid in unique_ids).encode()
    out = subprocess.run(["git", "--git-dir", str(git_dir), "cat-file", "--batch"],
                         input=request, check=True, capture_output=True).stdout
    blobs, pos = {}, 0
    for oid in unique_ids:
        header_end = out.index(b"\n", pos)
        _, _, length = out[pos:header_end].split()
        start = header_end + 1
        blobs[oid] = out[start:start + int(length)]
        pos = start + int(length) + 1  # content is followed by a newline
    return blobs


def is_selected(path, prefixes, top_level, pycortex_subjects):
    """Apply the --include-* and --pycortex-subjects filters to one path."""
    if path.startswith(PYCORTEX_PREFIX) and pycortex_subjects is not None:
        subject = path[len(PYCORTEX_PREFIX):].split("/", 1)[0]
        if subject not in pycortex_subjects:
            return False
    if not prefixes and not top_level:
        return True
    return (top_level and "/" not in path) or path.startswith(tuple(prefixes))


def describe(entry, content):
    """Return (path, size, md5, annexed) for one tree entry."""
    mode, _, size, path = entry
    if mode == SYMLINK_MODE:
        key = ANNEX_KEY.search(content)
        if key is None:
            raise ValueError(f"{path}: symlink without an MD5E annex key: {content!r}")
        return path, key.group(1).decode(), key.group(2).decode(), "1"
    return path, size, hashlib.md5(content).hexdigest(), "0"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--git-dir", type=Path, required=True, help="the clone's .git directory")
    parser.add_argument("--rev", default="3.1.0", help="tag or commit (default: 3.1.0)")
    parser.add_argument("--out", type=Path, required=True, help="output TSV path")
    parser.add_argument("--include-prefix", action="append", default=[],
                        help="keep paths starting with this prefix (repeatable)")
    parser.add_argument("--include-top-level", action="store_true",
                        help="keep files at the top level of the dataset")
    parser.add_argument("--pycortex-subjects", nargs="+", default=None,
                        help="keep only these subjects under derivative/pycortex-db/")
    args = parser.parse_args(argv)

    entries = [entry for entry in list_tree(args.git_dir, args.rev)
               if is_selected(entry[3], args.include_prefix, args.include_top_level,
                              args.pycortex_subjects)]
    blobs = read_blobs(args.git_dir, [entry[1] for entry in entries])
    rows = sorted(describe(entry, blobs[entry[1]]) for entry in entries)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", encoding="utf-8", newline="\n") as handle:
        for row in [HEADER, *rows]:
            handle.write("\t".join(row) + "\n")
    print(f"wrote {len(rows)} rows to {args.out}")


if __name__ == "__main__":
    main()
