"""scripts/run and scripts/setup: the main job installs only what it needs, and nothing when the venv is current.

The venvs here are stand-ins whose `python` and `conductor` record how they were called, so no test installs
anything for real."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PYPROJECT_HASH = hashlib.sha256((REPO / "pyproject.toml").read_bytes()).hexdigest()


def fake_venv(tmp_path: Path, stamp: str | None) -> Path:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    calls = tmp_path / "calls"
    for name in ("python", "conductor"):
        tool = venv / "bin" / name
        tool.write_text(f'#!/bin/sh\necho "{name} $*" >> "{calls}"\n')
        tool.chmod(0o755)
    if stamp is not None:
        (venv / ".release-conductor-installed").write_text(stamp + "\n")
    return venv


def run_script(script: str, venv: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "VENV": str(venv)}
    return subprocess.run(
        ["bash", str(REPO / "scripts" / script), *args], env=env, capture_output=True, text=True, timeout=60
    )


def calls(tmp_path: Path) -> list[str]:
    path = tmp_path / "calls"
    return path.read_text().splitlines() if path.exists() else []


def test_run_with_a_current_venv_installs_nothing_and_starts_the_demo(tmp_path: Path) -> None:
    venv = fake_venv(tmp_path, f"{PYPROJECT_HASH} runtime")

    result = run_script("run", venv, "--timeout", "5")

    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [f"setup: {venv} is current with pyproject.toml; nothing to install"]
    assert calls(tmp_path) == ["conductor demo --timeout 5"]


def test_a_test_install_is_current_for_the_runtime_too(tmp_path: Path) -> None:
    venv = fake_venv(tmp_path, f"{PYPROJECT_HASH} test")

    result = run_script("setup", venv, "--runtime-only")

    assert result.returncode == 0, result.stderr
    assert calls(tmp_path) == []


def test_a_changed_pyproject_reinstalls_the_project_alone_for_the_runtime(tmp_path: Path) -> None:
    venv = fake_venv(tmp_path, "0123 runtime")

    result = run_script("setup", venv, "--runtime-only")

    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        f"setup: installing the project into {venv} (pyproject.toml is new to it; this takes a minute)"
    ]
    installs = [call for call in calls(tmp_path) if " -e " in call]
    assert installs == ["python -m pip install --quiet --disable-pip-version-check -e ."]
    assert (venv / ".release-conductor-installed").read_text() == f"{PYPROJECT_HASH} runtime\n"


def test_a_runtime_install_is_not_enough_for_the_tests(tmp_path: Path) -> None:
    venv = fake_venv(tmp_path, f"{PYPROJECT_HASH} runtime")
    lock = REPO / "tests" / "js" / "package-lock.json"
    env = {**os.environ, "VENV": str(venv), "PATH": f"{tmp_path / 'nonpm'}:{os.environ['PATH']}"}
    # npm is stood in for too, so that the test neither needs nor runs it.
    (tmp_path / "nonpm").mkdir()
    npm = tmp_path / "nonpm" / "npm"
    npm.write_text(f'#!/bin/sh\necho "npm $*" >> "{tmp_path / "calls"}"\n')
    npm.chmod(0o755)

    result = subprocess.run(
        ["bash", str(REPO / "scripts" / "setup")], env=env, capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 0, result.stderr
    made = calls(tmp_path)
    assert "python -m pip install --quiet --disable-pip-version-check -e .[test]" in made
    assert any(call.startswith("npm ci") for call in made) == lock.exists()
