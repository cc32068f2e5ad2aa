"""`conductor check-rules`: validation with places, and names resolved against a real Octopus API."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.threaded_server import serve_in_thread
from simulator.app import create_app as create_simulator
from simulator.seed import CONDUCTOR_API_KEY

CONDUCTOR = str(Path(sys.executable).parent / "conductor")
EXAMPLE = Path(__file__).parent.parent / "examples" / "sample-rules.yaml"


@pytest.fixture(scope="module")
def octopus_url() -> Iterator[str]:
    with serve_in_thread(create_simulator(seed="sample")) as url:
        yield url


def check(path: Path, octopus_url: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONDUCTOR_")}
    if octopus_url is not None:
        env.update(CONDUCTOR_OCTOPUS_URL=octopus_url, CONDUCTOR_OCTOPUS_API_KEY=CONDUCTOR_API_KEY)
    return subprocess.run([CONDUCTOR, "check-rules", str(path)], env=env, capture_output=True, text=True, timeout=60)


def test_valid_file_without_octopus_says_names_were_not_checked() -> None:
    result = check(EXAMPLE)

    assert result.returncode == 0
    assert "valid; names not checked" in result.stdout


def test_every_name_of_the_sample_resolves(octopus_url: str) -> None:
    result = check(EXAMPLE, octopus_url)

    assert result.returncode == 0, result.stderr
    assert "every name resolves" in result.stdout


def test_unknown_names_are_reported_with_their_place(octopus_url: str, tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "orchestrations:\n"
        "  - name: sample\n"
        "    parent_project: Release Orchestra\n"
        "    components:\n"
        "      - project: Database\n"
        "      - project: Web APl\n"
        "      - project: Web UI\n"
        "        channel: Hotfix\n"
        "    approvals:\n"
        "      environment: Prod\n"
    )

    result = check(rules, octopus_url)

    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"{rules}:3: orchestrations[0].parent_project: no project named 'Release Orchestra' in Spaces-1",
        f"{rules}:10: orchestrations[0].approvals.environment: no environment named 'Prod' in Spaces-1",
        f"{rules}:6: orchestrations[0].components[1].project: no project named 'Web APl' in Spaces-1",
        f"{rules}:8: orchestrations[0].components[2].channel: no channel named 'Hotfix' in project Web UI",
    ]


def test_invalid_file_reports_each_problem(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("orchestrations:\n  - name: x\n    components: []\n    approvals: {enabled: false}\n")

    result = check(rules)

    assert result.returncode == 1
    assert f"{rules}:3: orchestrations[0].components: Value error, list at least one component" in result.stderr
