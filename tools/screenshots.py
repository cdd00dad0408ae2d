"""Screenshot every page of the built book with headless Chromium, for a human to look at.

    python tools/screenshots.py [--html book/_build/html] [--out book/_build/screenshots]

Serves the built HTML on 127.0.0.1, opens each chapter page in headless Chromium
(Debian package ``chromium``, installed with apt-get if missing) and writes one
full-height PNG per page.
"""

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

from bt_tutorial._local_http import serving

ROOT = Path(__file__).resolve().parents[1]
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--virtual-time-budget=8000"]

def find_chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path:
        return path
    print("chromium not found: installing the Debian package (apt-get install chromium)")
    subprocess.run(["apt-get", "install", "-y", "-q", "chromium"], check=False)
    path = shutil.which("chromium")
    if not path:
        subprocess.run(["apt-get", "update", "-q"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-q", "chromium"], check=True)
        path = shutil.which("chromium")
    return path

def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--html", type=Path, default=ROOT / "book" / "_build" / "html")
    parser.add_argument("--out", type=Path, default=ROOT / "book" / "_build" / "screenshots")
    parser.add_argument("--height", type=int, default=9000, help="window height in pixels")
    parser.add_argument("--pages", nargs="*", help="page names without .html (default: every page of the toc)")
    args = parser.parse_args(argv)
    if not (args.html / "intro.html").is_file():
        print(f"No built book at {args.html}: run `make book` first.", file=sys.stderr)
        return 1
    chromium = find_chromium()
    args.out.mkdir(parents=True, exist_ok=True)
    pages = args.pages or (["intro"] + sorted(p.stem for p in args.html.glob("[0-9][0-9]_*.html"))
                           + ["paper_and_book", "instructors", "glossary", "api", "references"])
    with serving(directory=args.html) as base:
        for page in pages:
            png = args.out / f"{page}.png"
            subprocess.run([chromium, *FLAGS, f"--user-data-dir={args.out / '.profile'}",
                            f"--window-size=1280,{args.height}", f"--screenshot={png}", f"{base}/{page}.html"],
                           check=True, capture_output=True, timeout=120)
            print(f"{page}: {png}")
    return 0

if __name__ == "__main__":
    sys.exit(main())
