"""Keep every Colab link and Colab setup cell derived from the one repository URL in ``book/_config.yml``.

The repository is named once, in ``book/_config.yml`` (``repository: url:`` and
``branch:``; the book's launch buttons read it). A chapter's setup cell cannot read
that file on Colab before the package is installed, so the URL is written out in
two derived forms, which this script checks and rewrites:

- Colab links: ``https://colab.research.google.com/github/<owner>/<name>/blob/<branch>/book/<chapter>.ipynb``
  (README's chapter table);
- pip specs: ``git+<url>@<branch>`` (every chapter's setup cell, in the ``.md`` and its
  paired ``.ipynb``, and the docs that quote it).

Usage::

    python tools/colab_links.py check                       # exit 1 and list what does not match
    python tools/colab_links.py fork https://github.com/me/bt_tutorial [--branch main]

``fork`` writes the URL (and branch) into ``book/_config.yml`` and rewrites every
derived form in README.md and book/*.md, book/*.ipynb (the paired notebooks stay in
sync). ``tests/test_colab.py`` runs the check.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COLAB = "https://colab.research.google.com/github"
_GITHUB_RE = re.compile(r"https://github\.com/([\w.-]+)/([\w.-]+?)(?:\.git)?/?")
# a derived form pointing anywhere: Colab link (owner, name, branch) or pip spec (url, ref)
_COLAB_RE = re.compile(re.escape(COLAB) + r"/([\w.-]+)/([\w.-]+)/blob/([^/\s)\"']+)/")
_PIP_RE = re.compile(r"git\+(https://[^\s@\"'`\\]+)(?:@([^\s\"'`\\]+))?")  # \\: quotes in .ipynb JSON


def repository(root: Path = ROOT) -> tuple[str, str]:
    """The repository URL and branch in ``<root>/book/_config.yml``.

    Returns
    -------
    url, branch : str
        E.g. ``("https://github.com/bt-tutorial/bt_tutorial", "main")``.

    Raises
    ------
    ValueError
        If the config has no ``repository: url:`` on GitHub (Colab opens notebooks from GitHub).
    """
    import yaml

    config = yaml.safe_load((root / "book" / "_config.yml").read_text())
    repo = config.get("repository") or {}
    url, branch = str(repo.get("url", "")).rstrip("/"), str(repo.get("branch") or "main")
    if not _GITHUB_RE.fullmatch(url):
        raise ValueError(f"book/_config.yml: repository.url must be https://github.com/<owner>/<name>, "
                         f"got {url!r} (Colab opens notebooks from GitHub).")
    return url, branch


def colab_prefix(url: str, branch: str) -> str:
    """``https://colab.research.google.com/github/<owner>/<name>/blob/<branch>/``."""
    owner, name = _GITHUB_RE.fullmatch(url).groups()
    return f"{COLAB}/{owner}/{name}/blob/{branch}/"


def pip_spec(url: str, branch: str) -> str:
    """``git+<url>@<branch>``: what a Colab setup cell installs from."""
    return f"git+{url}@{branch}"


def files(root: Path = ROOT) -> list[Path]:
    """Files that may hold derived forms: README.md, the book's pages and paired notebooks."""
    book = root / "book"
    return [root / "README.md", *sorted(book.glob("*.md")), *sorted(book.glob("*.ipynb"))]


def check(root: Path = ROOT) -> list[str]:
    """Every Colab link or pip spec that does not derive from ``book/_config.yml``.

    Returns
    -------
    problems : list of str
        ``"<file>:<line>: <what> (expected <derived form>)"``; empty when all match.
    """
    url, branch = repository(root)
    prefix, spec = colab_prefix(url, branch), pip_spec(url, branch)
    problems = []
    for path in files(root):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            where = f"{path.relative_to(root)}:{number}"
            problems += [f"{where}: {m.group(0)} (expected {prefix})"
                         for m in _COLAB_RE.finditer(line) if m.group(0) != prefix]
            problems += [f"{where}: {m.group(0)} (expected {spec})"
                         for m in _PIP_RE.finditer(line) if m.group(0) != spec]
    return problems


def fork(url: str, branch: str = "main", root: Path = ROOT) -> list[Path]:
    """Point the book config, every Colab link and every setup cell at ``url`` and ``branch``.

    Returns
    -------
    changed : list of Path
        The files rewritten.
    """
    url = url.rstrip("/").removesuffix(".git")
    if not _GITHUB_RE.fullmatch(url) or not re.fullmatch(r"[^\s/\"'@)]+", branch):
        raise ValueError(f"Give a GitHub repository URL (https://github.com/<owner>/<name>) and a branch "
                         f"name without '/', got {url!r} and {branch!r}.")
    config = root / "book" / "_config.yml"
    text = config.read_text()
    block = re.search(r"^repository:\n((?:[ \t]+.*\n)+)", text, flags=re.M)
    if block is None or not re.search(r"^\s+url:", block.group(1), flags=re.M):
        raise ValueError(f"{config} has no 'repository:' block with a 'url:' line to rewrite.")
    body = re.sub(r"^(\s+url:).*$", rf"\1 {url}", block.group(1), flags=re.M)
    if re.search(r"^\s+branch:", body, flags=re.M):
        body = re.sub(r"^(\s+branch:).*$", rf"\1 {branch}", body, flags=re.M)
    else:
        body += f"  branch: {branch}\n"
    changed = []
    if body != block.group(1):
        config.write_text(text[:block.start(1)] + body + text[block.end(1):])
        changed.append(config)
    prefix, spec = colab_prefix(url, branch), pip_spec(url, branch)
    for path in files(root):
        old = path.read_text()
        new = _PIP_RE.sub(lambda m: spec, _COLAB_RE.sub(lambda m: prefix, old))
        if new != old:
            path.write_text(new)
            changed.append(path)
    return changed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("check", help="list Colab links and setup cells that do not match book/_config.yml")
    use = sub.add_parser("fork", help="point the config, Colab links and setup cells at another repository")
    use.add_argument("url", help="https://github.com/<owner>/<name>")
    use.add_argument("--branch", default="main")
    args = parser.parse_args(argv)
    if args.command == "fork":
        try:
            changed = fork(args.url, args.branch)
        except ValueError as exc:
            print(exc, file=sys.stderr)
            return 2
        print("\n".join(f"rewrote {p.relative_to(ROOT)}" for p in changed) or "nothing to change")
    problems = check()
    print("\n".join(problems) or f"every Colab link and setup cell points at {' @ '.join(repository())}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
