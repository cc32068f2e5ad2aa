"""Check that every field of a Helm values file has a comment on the line above it.

    python check_values_documented.py helm/release-conductor/values.yaml

A field is a line holding `key:` (also the first key of a list item, `- key:`). Lines inside a block
scalar and continuation lines of a flow list are not fields. Exits 1 and names each undocumented field.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

FIELD = re.compile(r"^(?P<indent>\s*)(?:-\s+)?(?P<key>[A-Za-z0-9_.\-/]+):(\s|$)")


def undocumented(lines: list[str]) -> list[str]:
    problems = []
    previous = ""
    for number, line in enumerate(lines, start=1):
        stripped = line.strip()
        if not stripped:
            continue
        match = FIELD.match(line)
        if match and not previous.startswith("#"):
            problems.append(f"line {number}: {match['key']} has no comment above it")
        previous = stripped
    return problems


def main() -> int:
    path = Path(sys.argv[1])
    problems = undocumented(path.read_text().splitlines())
    for problem in problems:
        print(f"   {path}: {problem}")
    fields = sum(1 for line in path.read_text().splitlines() if FIELD.match(line))
    print(f"   {fields} fields, {fields - len(problems)} documented")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
