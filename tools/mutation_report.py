"""Per-module table of a mutation run: ``make mutation`` runs mutmut, then this summarises it.

    python tools/mutation_report.py            # after `mutmut run` in the repository root
    python tools/mutation_report.py --survivors  # also list every surviving mutant

Reads ``mutmut results --all true`` (one line per mutant, ``<module>.<function>__mutmut_<n>:
<status>``) and prints, per module, the mutants, how many the tests killed, how many made them
run past mutmut's time limit, how many survived, how many no selected test reaches, and the
share killed or timed out of those a test reaches.

Each survivor's change (``mutmut show``) is then sorted:
- *wording*: only the text of a message changed (``"XX...XX"``, upper or lower case); tests
  match a message's key phrase, not each letter;
- *equivalent*: listed in ``tools/mutation_equivalents.toml`` with the reason it cannot change
  a result (matched by function and the mutated line);
- *open*: neither; a test should kill it.
The last column is the share killed or timed out of the tested mutants that can change a result.
"""

from __future__ import annotations

import argparse
import collections
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

EQUIVALENTS = Path(__file__).with_name("mutation_equivalents.toml")

LINE = re.compile(r"^\s*(?P<name>[\w.]+)__mutmut_\d+: (?P<status>.+?)\s*$")
KILLED = {"killed", "caught by type check"}


def module_of(name: str) -> str:
    """``bt_tutorial.dataset.timing.x_canonical_hrf`` -> ``bt_tutorial.dataset.timing`` (methods: ``...xǁClassǁm``)."""
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


def changed_lines(diff: str) -> tuple:
    """(removed, added) source lines of a ``mutmut show`` diff, stripped."""
    removed = [line[1:].strip() for line in diff.splitlines() if line.startswith("-") and not line.startswith("---")]
    added = [line[1:].strip() for line in diff.splitlines() if line.startswith("+") and not line.startswith("+++")]
    return removed, added


def is_wording(removed: list, added: list) -> bool:
    """True when only a string's letters changed: ``"XX"`` added around it, or its case."""
    if len(removed) != len(added) or not removed:
        return False
    return all(a != b and a.replace("XX", "").lower() == b.lower() for b, a in zip(removed, added))


def load_equivalents(path: Path = EQUIVALENTS) -> list:
    """Entries ``{function, change, reason}``: ``change`` is the mutated line, stripped.

    Reads ``path`` and its siblings ``mutation_equivalents_<module>.toml``, one file per module.
    """
    files = [path, *sorted(path.parent.glob(f"{path.stem}_*.toml"))]
    return [entry for f in files if f.exists() for entry in tomllib.loads(f.read_text()).get("equivalent", [])]


def classify(name: str, diff: str, equivalents: list) -> tuple:
    """("wording" | "equivalent" | "open", reason) for a surviving mutant."""
    removed, added = changed_lines(diff)
    if is_wording(removed, added):
        return "wording", "message text only"
    function = name.split("__mutmut_")[0]
    for entry in equivalents:
        if entry["function"] == function and entry["change"].strip() in added:
            return "equivalent", entry["reason"]
    return "open", ""


def table(counts: dict) -> str:
    rows = ["| module | mutants | killed | timed out | survived: wording | survived: equivalent | survived: open "
            "| no tests | killed or timed out, of tested | of tested that can change a result |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for module, c in sorted(counts.items()):
        tested = c["mutants"] - c["no tests"]
        detected = c["killed"] + c["timeout"]
        share = f"{detected / tested:.0%}" if tested else "-"
        meaningful = tested - c["wording"] - c["equivalent"]
        share2 = f"{detected / meaningful:.0%}" if meaningful else "-"
        rows.append(f"| `{module}` | {c['mutants']} | {c['killed']} | {c['timeout']} | {c['wording']} | "
                    f"{c['equivalent']} | {c['open']} | {c['no tests']} | {share} | {share2} |")
    return "\n".join(rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--survivors", action="store_true",
                        help="list the surviving mutants that are not message wording, with their change")
    args = parser.parse_args(argv)
    mutmut = shutil.which("mutmut") or str(Path(sys.executable).with_name("mutmut"))
    out = subprocess.run([mutmut, "results", "--all", "true"], capture_output=True, text=True, check=True).stdout
    counts, survivors = tally(out.splitlines())
    if not counts:
        print("No mutants found: run `mutmut run` (make mutation) first.", file=sys.stderr)
        return 2
    equivalents, details = load_equivalents(), []
    for module, names in sorted(survivors.items()):
        for name in names:
            diff = subprocess.run([mutmut, "show", name], capture_output=True, text=True).stdout
            kind, reason = classify(name, diff, equivalents)
            counts[module][kind] += 1
            details.append((module, name, kind, reason, changed_lines(diff)[1]))
    print(table(counts))
    if args.survivors:
        for module, name, kind, reason, added in details:
            if kind != "wording":
                print(f"{kind:10s} {name}: {' / '.join(added)[:140]}" + (f"  ({reason})" if reason else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
