"""The whole product on one machine for end-to-end tests: the Octopus simulator, the intake, an Octopus
subscription that delivers to it, worker processes, and real Redis.

Everything talks over real HTTP; workers are real `conductor worker` processes, so a test can kill one.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import redis

from service.app import create_app as create_intake
from service.octopus_subscription import create_subscription
from service.threaded_server import serve_in_thread
from simulator.app import create_app as create_simulator
from simulator.seed import (
    ADMIN_API_KEY,
    BUSINESS_OWNER_API_KEY,
    BUSINESS_OWNERS_TEAM_ID,
    CONDUCTOR_API_KEY,
    DBA_API_KEY,
    DBAS_TEAM_ID,
    QA_API_KEY,
    QA_TEAM_ID,
    SPACE_ID,
    WEB_ADMIN_API_KEY,
    WEB_ADMINS_TEAM_ID,
)
from tests.conftest import make_settings
from tests.support.tokens import WRITE_TOKEN
from tests.support.webhooks import HEADER, SECRET
from workers.approval_records import ApprovalStore
from workers.keys import RedisKeys
from workers.plans import Plan, PlanStore

CONDUCTOR = str(Path(sys.executable).parent / "conductor")
# Who, among the seeded people, answers an intervention owned by each team.
PEOPLE = {
    QA_TEAM_ID: QA_API_KEY,
    WEB_ADMINS_TEAM_ID: WEB_ADMIN_API_KEY,
    DBAS_TEAM_ID: DBA_API_KEY,
    BUSINESS_OWNERS_TEAM_ID: BUSINESS_OWNER_API_KEY,
}
RULES = """\
orchestrations:
  - name: sample-app
    space: Default
    parent_project: Release Orchestration
    components:
      - project: Database
      - project: Web API
      - project: Scheduling Service
      - project: Web UI
    redeploy:
      group_window_seconds: {window}
      task_check_seconds: 1
      stop_on_failure: true
    approvals:
      enabled: false
"""

SAMPLE_COMPONENTS = """\
    components:
      - project: Database
      - project: Web API
      - project: Scheduling Service
      - project: Web UI
"""

T = TypeVar("T")


def rules_text(
    *,
    window: float,
    approvals: dict[str, Any] | None = None,
    orchestration: dict[str, Any] | None = None,
    components: list[dict[str, Any]] | None = None,
) -> str:
    """The sample rules; with `approvals`, the approval relay on with those settings; with `orchestration`, more
    settings of the orchestration, e.g. `promotion` or `release_pattern` (JSON is YAML); with `components`, these
    components instead of the sample's four."""
    text = RULES.format(window=window)
    if components is not None:
        text = text.replace(SAMPLE_COMPONENTS, f"    components: {json.dumps(components)}\n")
    if approvals is not None:
        text = text.replace("    approvals:\n      enabled: false\n", f"    approvals: {json.dumps(approvals)}\n")
    for key, value in (orchestration or {}).items():
        text += f"    {key}: {json.dumps(value)}\n"
    return text


def wait_for(what: str, probe: Callable[[], T | None], *, timeout: float = 60.0, interval: float = 0.1) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def octopus(url: str, api_key: str = ADMIN_API_KEY) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"X-Octopus-ApiKey": api_key}, timeout=10)


@dataclass
class Stack:
    sim_url: str
    intake_url: str
    connection: redis.Redis
    keys: RedisKeys
    worker_env: dict[str, str]
    log_path: Path
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def admin(self) -> httpx.Client:
        return octopus(self.sim_url)

    @property
    def plans(self) -> PlanStore:
        return PlanStore(self.connection, self.keys.prefix)

    @property
    def approvals(self) -> ApprovalStore:
        return ApprovalStore(self.connection, self.keys.prefix)

    def start_worker(self) -> subprocess.Popen[bytes]:
        with self.log_path.open("ab") as log:
            # A session of its own, so that a test can kill the worker with its scheduler child, as a host
            # or pod dies; and the worker goes when pytest goes, even if pytest is killed.
            worker = subprocess.Popen(
                [CONDUCTOR, "worker"],
                env=self.worker_env,
                stderr=log,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        self.workers.append(worker)
        return worker

    def kill_worker(self, worker: subprocess.Popen[bytes]) -> None:
        """SIGKILL a worker and the scheduler process it forked: what a crashed host leaves behind."""
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(10)

    def stop_workers(self) -> None:
        stop_processes(self.workers)
        self.workers.clear()

    def add_machine(self, name: str, environment_id: str, roles: list[str], **extra: Any) -> dict[str, Any]:
        body = {
            "Name": name,
            "EnvironmentIds": [environment_id],
            "Roles": roles,
            "Endpoint": {"CommunicationStyle": "TentaclePassive", "Uri": f"https://{name}.example.test:10933/"},
            **extra,
        }
        with self.admin as client:
            response = client.post(f"/api/{SPACE_ID}/machines", json=body)
        assert response.status_code == 201, response.text
        machine: dict[str, Any] = response.json()
        return machine

    def finished_plans(self, count: int, *, timeout: float = 60.0) -> list[Plan]:
        def probe() -> list[Plan] | None:
            plans = self.plans.recent()
            done = [plan for plan in plans if plan.status != "running"]
            return done if len(done) >= count and len(done) == len(plans) else None

        try:
            finished = wait_for(f"{count} finished plan(s)", probe, timeout=timeout)
        except AssertionError:
            plans = "\n".join(plan.model_dump_json(indent=1) for plan in self.plans.recent())
            log = self.log_path.read_text()[-6000:] if self.log_path.exists() else ""
            raise AssertionError(f"plans did not finish:\n{plans}\nworker log:\n{log}") from None
        return sorted(finished, key=lambda plan: plan.id)

    def deployments_since(self, first_id: int) -> list[dict[str, Any]]:
        """Deployments created after the seed (ids above `first_id`), oldest first."""
        with self.admin as client:
            items = client.get(f"/api/{SPACE_ID}/deployments", params={"take": 1000}).json()["Items"]
        return sorted(
            (d for d in items if int(d["Id"].split("-")[1]) > first_id), key=lambda d: int(d["Id"].split("-")[1])
        )

    def last_deployment_number(self) -> int:
        with self.admin as client:
            items = client.get(f"/api/{SPACE_ID}/deployments", params={"take": 1}).json()["Items"]
        return int(items[0]["Id"].split("-")[1]) if items else 0


def conductor_env(redis_url: str, keys: RedisKeys, **variables: str) -> dict[str, str]:
    """The environment of a `conductor` process a test starts: this one without its CONDUCTOR_ settings, then
    the test's Redis and prefix, quick job retries, JSON logs, and `variables`."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("CONDUCTOR_")}
    env.update(
        CONDUCTOR_REDIS_URL=redis_url,
        CONDUCTOR_REDIS_PREFIX=keys.prefix,
        CONDUCTOR_JOB_RETRY_INTERVALS="1,1,2,2,5",
        CONDUCTOR_LOG_FORMAT="json",
        **variables,
    )
    return env


def stop_processes(processes: list[subprocess.Popen[bytes]], *, grace_seconds: float = 15) -> None:
    """SIGTERM every process still running, wait for each to finish what it holds, and SIGKILL what does not."""
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(grace_seconds)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


_PRCTL = ctypes.CDLL(None, use_errno=True).prctl  # looked up here: the child must not import or lock
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    _PRCTL(_PR_SET_PDEATHSIG, signal.SIGTERM)


@contextmanager
def people_approving(sim_url: str, *, stop_after: float = 120.0) -> Iterator[list[str]]:
    """Answer every pending manual intervention with Proceed, as a member of its first team that has a
    person in the seed: the humans of the story, at machine speed. Yields the interruptions answered."""
    answered: list[str] = []
    stop = threading.Event()

    def loop() -> None:
        deadline = time.monotonic() + stop_after
        with octopus(sim_url) as admin:
            while not stop.is_set() and time.monotonic() < deadline:
                pending = admin.get(f"/api/{SPACE_ID}/interruptions", params={"pendingOnly": "true", "take": 100})
                for interruption in pending.json()["Items"]:
                    if interruption["Type"] != "ManualIntervention" or interruption["Id"] in answered:
                        continue
                    key = next((PEOPLE[t] for t in interruption["ResponsibleTeamIds"] if t in PEOPLE), None)
                    if key is None:
                        continue
                    with octopus(sim_url, key) as person:
                        base = f"/api/{SPACE_ID}/interruptions/{interruption['Id']}"
                        person.put(f"{base}/responsible")
                        done = person.post(f"{base}/submit", json={"Notes": "Looks good.", "Result": "Proceed"})
                        if done.status_code == 200:
                            answered.append(interruption["Id"])
                stop.wait(0.05)

    thread = threading.Thread(target=loop, name="people", daemon=True)
    thread.start()
    try:
        yield answered
    finally:
        stop.set()
        thread.join(10)


@contextmanager
def running_stack(
    redis_url: str,
    keys: RedisKeys,
    tmp_path: Path,
    *,
    window: float = 0.5,
    workers: int = 1,
    approvals: dict[str, Any] | None = None,
    orchestration: dict[str, Any] | None = None,
    settings: dict[str, Any] | None = None,
    components: list[dict[str, Any]] | None = None,
    rules_yaml: str | None = None,
    spaces: tuple[str, ...] = (SPACE_ID,),
) -> Iterator[Stack]:
    """The whole product; `approvals` turns the approval relay on with those rules settings, and `settings`
    sets conductor settings (by field name) for the intake and the workers alike; `components` replaces the
    sample's (see `rules_text`). `rules_yaml` replaces the sample rules; `spaces` are the spaces with an Octopus
    subscription to the intake (one each, as Octopus has them)."""
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        rules_yaml or rules_text(window=window, approvals=approvals, orchestration=orchestration, components=components)
    )
    with ExitStack() as stack:
        sim_url = stack.enter_context(
            serve_in_thread(
                create_simulator(
                    seed="sample", delivery_interval=0.05, queue_delay=0.05, step_duration=0.1, health_check_delay=0.2
                )
            )
        )
        extra = settings or {}
        intake_url = stack.enter_context(
            serve_in_thread(
                create_intake(
                    make_settings(
                        redis_url,
                        keys,
                        rules=str(rules),
                        # POST /promotions plans through Octopus, behind the write token.
                        octopus_url=sim_url,
                        octopus_api_key=CONDUCTOR_API_KEY,
                        write_tokens=WRITE_TOKEN,
                        **extra,
                    )
                )
            )
        )
        with octopus(sim_url) as admin:
            for space_id in spaces:
                create_subscription(admin, space_id=space_id, intake_url=intake_url, header=HEADER, secret=SECRET)
        env = conductor_env(
            redis_url,
            keys,
            CONDUCTOR_RULES=str(rules),
            CONDUCTOR_OCTOPUS_URL=sim_url,
            CONDUCTOR_OCTOPUS_API_KEY=CONDUCTOR_API_KEY,
            **{f"CONDUCTOR_{name.upper()}": str(value) for name, value in extra.items()},
        )
        running = Stack(sim_url, intake_url, redis.Redis.from_url(redis_url), keys, env, tmp_path / "workers.log")
        stack.callback(running.stop_workers)
        for _ in range(workers):
            running.start_worker()
        yield running
