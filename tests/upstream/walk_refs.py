"""The kind walk (the top-level Makefile) references only targets, overlays and files that exist.

    walk_refs.py [--makefile FILE]

For every target the Makefile's help lists, `make -n` prints the commands without running them
(make itself fails on a prerequisite target that does not exist); every repository path in those
commands must exist. Exit 0 when all do, 1 naming each dangling reference.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Repository paths a walk command may name: overlays, renders, fixtures, scripts, terraform/.
PATH = re.compile(
    r"(?<![\w/.-])((?:mesh/deploy|docker|ml/tests/fixtures|terraform|tests)(?:/[\w.-]+)*)"
)
TARGET = re.compile(r"^#\s+make ([\w-]+)", re.M)


def targets(makefile: Path) -> list[str]:
    found = TARGET.findall(makefile.read_text())
    if not found:
        raise SystemExit(f"{makefile}: no '#   make <target>' lines to take the walk's targets from")
    return found


def dry_run(makefile: Path, target: str) -> tuple[int, str]:
    done = subprocess.run(
        ["make", "--no-print-directory", "-n", "-f", str(makefile), target],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.returncode, done.stdout + done.stderr


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--makefile", type=Path, default=ROOT / "Makefile")
    args = parser.parse_args()
    problems: list[str] = []
    checked = 0
    for target in targets(args.makefile):
        code, out = dry_run(args.makefile, target)
        if code != 0:
            problems.append(f"make -n {target} failed: {out.strip().splitlines()[-1]}")
            continue
        for path in sorted(set(PATH.findall(out))):
            checked += 1
            if not (ROOT / path).exists():
                problems.append(f"make {target}: {path} does not exist")
    for problem in problems:
        print(f"{args.makefile.name}: {problem}")
    if problems:
        return 1
    print(f"{args.makefile.name}: every target runs under make -n; {checked} path references exist")
    return 0


if __name__ == "__main__":
    sys.exit(main())
