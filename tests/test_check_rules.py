"""`conductor check-rules`: validation with places, and names resolved against a real Octopus API."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.threaded_server import free_port, serve_in_thread
from simulator.app import create_app as create_simulator
from simulator.seed import CONDUCTOR_API_KEY

CONDUCTOR = str(Path(sys.executable).parent / "conductor")
EXAMPLE = Path(__file__).parent.parent / "examples" / "sample-rules.yaml"


@pytest.fixture(scope="module")
def octopus_url() -> Iterator[str]:
    with serve_in_thread(create_simulator(seed="sample")) as url:
        yield url


def check(path: Path, octopus_url: str | None = None, *options: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONDUCTOR_")}
    if octopus_url is not None:
        env.update(CONDUCTOR_OCTOPUS_URL=octopus_url, CONDUCTOR_OCTOPUS_API_KEY=CONDUCTOR_API_KEY)
    return subprocess.run(
        [CONDUCTOR, "check-rules", str(path), *options], env=env, capture_output=True, text=True, timeout=90
    )


def test_valid_file_without_octopus_settings_is_not_a_pass() -> None:
    result = check(EXAMPLE)

    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"{EXAMPLE}: valid, but the names were not checked: set CONDUCTOR_OCTOPUS_URL and "
        "CONDUCTOR_OCTOPUS_API_KEY, or pass --offline for a syntax-only check"
    ]


def test_offline_checks_only_the_syntax() -> None:
    result = check(EXAMPLE, f"http://127.0.0.1:{free_port()}", "--offline")

    assert result.returncode == 0
    assert "names not checked" in result.stdout


def test_octopus_unreachable_is_a_failure_with_the_reason_and_the_offline_option() -> None:
    url = f"http://127.0.0.1:{free_port()}"

    result = check(EXAMPLE, url)

    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"{EXAMPLE}: valid, but the names were not checked: GET /api/spaces")
    assert "Octopus is unavailable (cannot connect" in line
    assert line.endswith("or pass --offline for a syntax-only check")
    assert "will retry" not in line


def test_a_misspelt_field_suggests_the_valid_name(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "orchestrations:\n"
        "  - name: x\n"
        "    components:\n"
        "      - project: Web API\n"
        "        relase_pattern: '2021.*'\n"
        "    approvals: {enabled: false, tenat: any}\n"
        "    nothing_like_it: 1\n"
    )

    result = check(rules, None, "--offline")

    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"{rules}:5: orchestrations[0].components[0].relase_pattern: Extra inputs are not permitted; "
        "did you mean 'release_pattern'?",
        f"{rules}:6: orchestrations[0].approvals.tenat: Extra inputs are not permitted; did you mean 'tenant'?",
        f"{rules}:7: orchestrations[0].nothing_like_it: Extra inputs are not permitted",
    ]


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
        "        requires: {project: Databse, version: '>=2021.1'}\n"
        "    approvals:\n"
        "      environment: Prod\n"
        "exclusion_groups:\n"
        "  - name: data-and-web\n"
        "    projects: [Database, Web Ul]\n"
    )

    result = check(rules, octopus_url)

    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"{rules}:3: orchestrations[0].parent_project: no project named 'Release Orchestra' in Spaces-1",
        f"{rules}:11: orchestrations[0].approvals.environment: no environment named 'Prod' in Spaces-1",
        f"{rules}:6: orchestrations[0].components[1].project: no project named 'Web APl' in Spaces-1",
        f"{rules}:8: orchestrations[0].components[2].channel: no channel named 'Hotfix' in project Web UI",
        f"{rules}:9: orchestrations[0].components[2].requires[0].project: no project named 'Databse' in Spaces-1",
        f"{rules}:14: exclusion_groups[0].projects[1]: no project named 'Web Ul' in Spaces-1",
    ]


def test_invalid_file_reports_each_problem(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("orchestrations:\n  - name: x\n    components: []\n    approvals: {enabled: false}\n")

    result = check(rules)

    assert result.returncode == 1
    assert f"{rules}:3: orchestrations[0].components: Value error, list at least one component" in result.stderr


def test_a_components_names_resolve_in_its_own_space(octopus_url: str, tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "orchestrations:\n"
        "  - name: payments\n"
        "    parent_project: Payments Orchestration\n"
        "    components:\n"
        "      - project: Payments Service\n"
        "        space: Payments\n"
        "        channel: Default\n"
        "      - project: Payments Gateway\n"
        "        space: Spaces-1\n"
        "      - project: Web UI\n"
        "        space: Billing\n"
        "    schedules:\n"
        "      - {name: nightly, cron: '0 2 * * *', to: Test}\n"
        "      - {name: hotfix, cron: '0 3 * * *', from: Test, to: Hotfix}\n"
    )

    result = check(rules, octopus_url)

    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"{rules}:11: orchestrations[0].components[2].space: no space named 'Billing' in this Octopus",
        f"{rules}:14: orchestrations[0].schedules[1].to: no environment named 'Hotfix' in Spaces-2, where Payments "
        "Service lives",
        f"{rules}:8: orchestrations[0].components[1].project: no project named 'Payments Gateway' in Spaces-1",
    ]
