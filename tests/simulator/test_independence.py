"""The simulator plays Octopus and speaks JSON: it imports nothing from service/ or workers/."""

from __future__ import annotations

import ast
from pathlib import Path

SIMULATOR = Path(__file__).resolve().parents[2] / "simulator"


def test_simulator_imports_neither_service_nor_workers() -> None:
    offending = []
    for path in SIMULATOR.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offending += [f"{path.name}: {n}" for n in names if n.split(".")[0] in ("service", "workers")]
    assert offending == []
