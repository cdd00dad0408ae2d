"""Download part of the LeBel et al. (2023) dataset (OpenNeuro ds003020).

Example::

    python data_scripts/download_lebel.py --subject UTS03 --stories 4 --out ~/data/ds003020 --dry-run

Run the same command again to resume an interrupted download.

Exit codes: 0 on success; 2 on an expected error (a file missing on the server, a
download that cannot be completed or verified, a bad argument, a disk error), reported
as one ``error: ...`` line on stderr; 130 when interrupted.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

try:
    from bt_tutorial import download
except ImportError:  # Run from a checkout without installing the package.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from bt_tutorial import download


class _OneLineParser(argparse.ArgumentParser):
    """An argument parser that reports a bad argument as one ``error:`` line, exit code 2."""

    def error(self, message: str):
        self.exit(2, f"error: {message} (see --help)\n")


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


_non_negative_int.__name__ = "integer"  # argparse says "invalid integer value: 'x'"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line.

    Parameters
    ----------
    argv : list of str, optional
        Arguments without the program name; ``sys.argv[1:]`` when None.

    Returns
    -------
    args : argparse.Namespace
    """
    parser = _OneLineParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--subject", required=True, help="subject, UTS01 to UTS08")
    parser.add_argument(
        "--stories",
        type=int,
        required=True,
        metavar="N",
        help=f"number of training stories, 0 to {len(download.PAPER_TRAIN_STORIES)} "
        "(the test and validation stories are always downloaded)",
    )
    parser.add_argument("--out", type=Path, metavar="DIR",
                        help="local dataset root (default: $BT_DATA/ds003020, where the full profile reads)")
    parser.add_argument("--base-url", default=download.DEFAULT_BASE_URL, help="URL of the dataset root")
    parser.add_argument("--dry-run", action="store_true", help="list the files and sizes, download nothing")
    parser.add_argument("--retries", type=_non_negative_int, default=5, help="retries per file after a transient error")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    return parser.parse_args(argv)


def _default_out() -> Path:
    from bt_tutorial.config import get_config

    return get_config(profile="full").dataset_root


def main(argv: list[str] | None = None) -> int:
    """Run the download and return the exit code (0 on success, 2 on an expected error).

    Expected errors (:class:`~bt_tutorial.download.DownloadError`, ``OSError``,
    ``ValueError``) print one ``error: <message>`` line on stderr; any other exception
    is a bug and propagates with its traceback.
    """
    args = parse_args(argv)
    try:
        download.download_lebel(
            args.subject,
            args.stories,
            args.out or _default_out(),
            base_url=args.base_url,
            dry_run=args.dry_run,
            retries=args.retries,
            progress=not args.no_progress,
        )
    except (download.DownloadError, OSError, ValueError) as exc:
        message = " ".join(str(exc).split()) or type(exc).__name__
        print(f"error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("Interrupted; run the same command again to resume.", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
