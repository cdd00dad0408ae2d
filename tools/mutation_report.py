"""Per-module table of a mutation run: ``make mutation`` runs mutmut, then this summarises it.

    python tools/mutation_report.py            # after `mutmut run` in the repository root
    python tools/mutation_report.py --survivors  # also list every surviving mutant

Reads ``mutmut results --all true`` (one line per mutant, ``<module>.<function>__mutmut_<n>:
<status>``) and prints, per module, the mutants, how many the tests killed, how many made them
run past mutmut's time limit, how many survived, how many no selected test reaches, and the
share killed or timed out of those a test reaches.
"""

from __future__ import annotations

import argparse
import collections
import re
import shutil
import subprocess
import sys
from pathlib import Path

LINE = re.compile(r"^\s*(?P<name>[\w.]+)__mutmut_\d+: (?P<status>.+?)\s*$")
KILLED = {"killed", "caught by type check"}


def module_of(name: str) -> str:
    """``bt_tutorial.timing.x_canonical_hrf`` -> ``bt_tutorial.timing`` (methods: ``...xǁClassǁm``)."""
    return ".".join(part for part in name.split(".") if not part.startswith(("x_", "xǁ")))


def tally(lines) -> dict:
    counts = collections.defaultdict(collections.Counter)
    survivors = collections.defaultdict(list)
    for line in lines:
        match = LINE.match(line)
        if not match:
            continue
        module, status = module_of(match["name"]), match["status"]
        counts[module]["mutants"] += 1
        counts[module]["killed" if status in KILLED else status] += 1  # "timeout" is its own column
        if status == "survived":
            survivors[module].append(line.strip().split(":")[0])
    return counts, survivors


def table(counts: dict) -> str:
    rows = ["| module | mutants | killed | timed out | survived | no tests | killed or timed out, of tested |",
            "|---|---|---|---|---|---|---|"]
    for module, c in sorted(counts.items()):
        tested = c["mutants"] - c["no tests"]
        share = f"{(c['killed'] + c['timeout']) / tested:.0%}" if tested else "-"
        rows.append(f"| `{module}` | {c['mutants']} | {c['killed']} | {c['timeout']} | {c['survived']} | "
                    f"{c['no tests']} | {share} |")
    return "\n".join(rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--survivors", action="store_true", help="list every surviving mutant")
    args = parser.parse_args(argv)
    mutmut = shutil.which("mutmut") or str(Path(sys.executable).with_name("mutmut"))
    out = subprocess.run([mutmut, "results", "--all", "true"], capture_output=True, text=True, check=True).stdout
    counts, survivors = tally(out.splitlines())
    if not counts:
        print("No mutants found: run `mutmut run` (make mutation) first.", file=sys.stderr)
        return 2
    print(table(counts))
    if args.survivors:
        for module, names in sorted(survivors.items()):
            print(f"\n{module}:\n  " + "\n  ".join(names))
    return 0


if __name__ == "__main__":
    sys.exit(main())
