"""Print the canary routing of every VirtualService in a rendered manifest, one line each.

Usage: route_summary.py FILE

Line format (sorted by name): `<name> header=<subset> stable=<weight> canary=<weight>`, where
`header` is the subset that route 0 (`x-canary: true`) sends to and the weights are those of the
catch-all route 1. tests/mesh/check.sh compares these lines with the table each canary step
promises in mesh/deploy/README.md. A VirtualService of another shape is reported as an error.
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml


class ShapeError(Exception):
    """A VirtualService that does not have the two-route canary shape."""


def summarize(doc: dict) -> str:
    name = doc["metadata"]["name"]
    try:
        header_route, catch_all = doc["spec"]["http"]
    except (KeyError, TypeError, ValueError) as err:
        raise ShapeError(f"VirtualService {name}: expected exactly two http routes") from err
    if header_route.get("match") != [{"headers": {"x-canary": {"exact": "true"}}}]:
        raise ShapeError(f"VirtualService {name}: route 0 must match only x-canary: true")
    if "match" in catch_all:
        raise ShapeError(f"VirtualService {name}: route 1 must be a catch-all (no match)")
    header_targets = [(r["destination"].get("subset"), r.get("weight")) for r in header_route["route"]]
    if len(header_targets) != 1 or header_targets[0][1] != 100:
        raise ShapeError(f"VirtualService {name}: route 0 must send 100 % to one subset")
    weights = {r["destination"].get("subset"): r.get("weight") for r in catch_all["route"]}
    if sorted(weights) != ["canary", "stable"] or len(catch_all["route"]) != 2:
        raise ShapeError(f"VirtualService {name}: route 1 must list subsets stable and canary once")
    return f"{name} header={header_targets[0][0]} stable={weights['stable']} canary={weights['canary']}"


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: route_summary.py FILE", file=sys.stderr)
        return 2
    path = Path(argv[0])
    try:
        documents = [d for d in yaml.safe_load_all(path.read_text()) if isinstance(d, dict)]
    except (OSError, yaml.YAMLError) as err:
        print(f"{path}: cannot read YAML: {err}", file=sys.stderr)
        return 2
    lines = []
    for doc in documents:
        if doc.get("kind") != "VirtualService":
            continue
        try:
            lines.append(summarize(doc))
        except ShapeError as err:
            print(f"{path}: {err}", file=sys.stderr)
            return 1
    print("\n".join(sorted(lines)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
