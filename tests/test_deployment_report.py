"""The deployment report end to end, over a small day of the demo played once against the seeded simulator:
Release Orchestration 2021.3.0.1 promoted to Staging, then to Production with the parent's approvals relayed
into the components (and the DBAs' step left to people, then answered by a DBA), a new web server in
Production redeployed, and a person's own deployment of Scheduling Service. `conductor report` and
`GET /reports/deployments` then list them, from the conductor's records in real Redis and from the
simulator's deployments list over HTTP."""

from __future__ import annotations

import csv
import io
import json
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import pytest

from simulator.seed import (
    BUSINESS_OWNER_API_KEY,
    CONDUCTOR_API_KEY,
    CONTOSO_ID,
    DBA_API_KEY,
    ORCHESTRATION_2021_3_RELEASE_ID,
    PRODUCTION_ID,
    QA_API_KEY,
    SCHEDULING_SERVICE_ID,
    SPACE_ID,
    STAGING_ID,
    WEB_ADMIN_API_KEY,
)
from tests.support import redis_space
from tests.support.stack import CONDUCTOR, Stack, octopus, running_stack, wait_for
from tests.support.tokens import READ_AUTH, WRITE_AUTH
from workers.approval_records import ApprovalRelay
from workers.deployment_report import ReportSources, build_report
from workers.directory import Directory
from workers.events import utcnow
from workers.octopus import OctopusClient
from workers.plans import Plan
from workers.retention import Retention
from workers.rules import load_rules

pytestmark = pytest.mark.slow

Doc = dict[str, Any]
LOOKS = {"look_again_seconds": 0.3, "look_again_max_seconds": 0.5, "keep_looking_seconds": 1}
PROMOTION = {"release_pattern": "{parent:3}.*", "promotion": {"task_check_seconds": 1}}
QA = "QA approval: Proceed by QA Tester (qa.tester)"
WEB_ADMINS = "Web Admins approval: Proceed by Web Admin (web.admin)"
BOTH = f"{QA}; {WEB_ADMINS}"


class Row(NamedTuple):
    """A deployment as the report shows it; `where`: the environment, with the machines of a redeploy."""

    project: str
    release: str
    where: str
    tenant: str
    by: str
    plan: str
    outcome: str
    relayed: str
    refused: str


@dataclass
class Day:
    stack: Stack
    staging: Doc  # the parent deployments
    production: Doc
    dba_step: ApprovalRelay  # the DBAs' step of Database in Production, left to people
    by_hand: Doc  # web.admin's own deployment
    redeploy: Plan  # the new web server's

    def expected(self) -> list[Row]:
        """Each deployment of the day, in the order they were queued."""
        staging, production = f"promotion-{self.staging['Id']}", f"promotion-{self.production['Id']}"
        dba = f"DBA approval: {self.dba_step.reason}"
        server = "Production (prod-web-10)"
        return [
            Row("Release Orchestration", "2021.3.0.1", "Staging", "", "qa.tester", staging, "Success", "", ""),
            Row("Database", "2021.3.0.1", "Staging", "", "conductor", staging, "Success", "", ""),
            Row("Web API", "2021.3.0.2", "Staging", "", "conductor", staging, "Success", "", ""),
            Row("Web UI", "2021.3.0.1", "Staging", "", "conductor", staging, "Success", "", ""),
            Row(
                "Release Orchestration", "2021.3.0.1", "Production", "", "business.owner", production, "Success", "", ""
            ),
            Row("Database", "2021.3.0.1", "Production", "", "conductor", production, "Success", QA, dba),
            Row("Web API", "2021.3.0.2", "Production", "", "conductor", production, "Success", BOTH, ""),
            Row("Web UI", "2021.3.0.1", "Production", "", "conductor", production, "Success", BOTH, ""),
            Row("Scheduling Service", "2021.2.0.1", "Staging", "Contoso", "web.admin", "", "Success", "", ""),
            Row("Web API", "2021.3.0.2", server, "", "conductor", self.redeploy.id, "Success", BOTH, ""),
            Row("Web UI", "2021.3.0.1", server, "", "conductor", self.redeploy.id, "Success", BOTH, ""),
        ]

    def deployment_ids(self) -> list[str]:
        plans = [self.stack.plans.load(f"promotion-{parent['Id']}") for parent in (self.staging, self.production)]
        ids = []
        for parent, plan in zip((self.staging, self.production), plans, strict=True):
            assert plan is not None
            ids += [parent["Id"], *(step.deployment_id for step in plan.steps if step.deployment_id)]
        return [*ids, self.by_hand["Id"], *redeployed(self.redeploy)]


def redeployed(plan: Plan) -> list[str]:
    return [step.deployment_id for step in plan.steps if step.deployment_id]


def deploy(sim_url: str, api_key: str, release_id: str, environment_id: str, **extra: Any) -> Doc:
    with octopus(sim_url, api_key) as deployer:
        response = deployer.post(
            f"/api/{SPACE_ID}/deployments", json={"ReleaseId": release_id, "EnvironmentId": environment_id, **extra}
        )
    assert response.status_code == 201, response.text
    deployment: Doc = response.json()
    return deployment


def finished(stack: Stack, deployment: Doc) -> Doc:
    def probe() -> Doc | None:
        with stack.admin as admin:
            task: Doc = admin.get(f"/api/tasks/{deployment['TaskId']}").json()
        return task if task["IsCompleted"] else None

    return wait_for(f"{deployment['Id']} to finish", probe, timeout=60)


def pending(stack: Stack, deployment_id: str, title: str) -> Doc:
    def probe() -> Doc | None:
        with stack.admin as admin:
            params = {"regarding": deployment_id, "pendingOnly": "true"}
            items = admin.get(f"/api/{SPACE_ID}/interruptions", params=params).json()["Items"]
        return next((item for item in items if item["Title"] == title), None)

    return wait_for(f"'{title}' pending in {deployment_id}", probe, timeout=60)


def answer(stack: Stack, api_key: str, step: Doc) -> None:
    base = f"/api/{SPACE_ID}/interruptions/{step['Id']}"
    with octopus(stack.sim_url, api_key) as person:
        assert person.put(f"{base}/responsible").status_code == 200
        assert person.post(f"{base}/submit", json={"Notes": "Signed off.", "Result": "Proceed"}).status_code == 200


def first_component(stack: Stack, parent: Doc) -> str:
    """The deployment of the first component of the parent's promotion, once made."""

    def probe() -> str | None:
        plan = stack.plans.load(f"promotion-{parent['Id']}")
        return plan.steps[0].deployment_id if plan is not None else None

    return wait_for(f"the first component of {parent['Id']}", probe)


def refused(stack: Stack, interruption_id: str) -> ApprovalRelay:
    def probe() -> ApprovalRelay | None:
        record = stack.approvals.load(interruption_id)
        return record if record is not None and record.status == "refused" else None

    return wait_for(f"{interruption_id} left to people", probe)


def play_the_day(stack: Stack) -> Day:
    staging = deploy(stack.sim_url, QA_API_KEY, ORCHESTRATION_2021_3_RELEASE_ID, STAGING_ID)
    assert finished(stack, staging)["State"] == "Success"

    production = deploy(stack.sim_url, BUSINESS_OWNER_API_KEY, ORCHESTRATION_2021_3_RELEASE_ID, PRODUCTION_ID)
    for api_key, title in (
        (QA_API_KEY, "QA approval"),
        (WEB_ADMIN_API_KEY, "Web Admins approval"),
        (BUSINESS_OWNER_API_KEY, "Business Owners approval"),
    ):
        answer(stack, api_key, pending(stack, production["Id"], title))
    dba = pending(stack, first_component(stack, production), "DBA approval")  # no DBA approved in the parent
    left = refused(stack, dba["Id"])
    answer(stack, DBA_API_KEY, dba)
    assert finished(stack, production)["State"] == "Success"

    with stack.admin as admin:
        release = admin.get(f"/api/{SPACE_ID}/projects/{SCHEDULING_SERVICE_ID}/releases/2021.2.0.1").json()
    by_hand = deploy(stack.sim_url, WEB_ADMIN_API_KEY, release["Id"], STAGING_ID, TenantId=CONTOSO_ID)
    assert finished(stack, by_hand)["State"] == "Success"

    stack.add_machine("prod-web-10", PRODUCTION_ID, ["web-server"])
    plans = stack.finished_plans(3)
    assert [(plan.kind, plan.status) for plan in plans] == [("redeploy", "succeeded")] + [
        ("promotion", "succeeded")
    ] * 2
    return Day(stack, staging, production, left, by_hand, plans[0])


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Day]:
    url = redis_space.test_redis_url()
    with (
        redis_space.redis_space(url) as (_, keys),
        running_stack(url, keys, tmp_path_factory.mktemp("report"), approvals=LOOKS, orchestration=PROMOTION) as stack,
    ):
        yield play_the_day(stack)


def conductor_report(day: Day, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CONDUCTOR, "report", *args], env={**day.stack.worker_env, **env}, capture_output=True, text=True, timeout=60
    )


def api_report(
    day: Day, params: dict[str, str] | None = None, *, headers: dict[str, str] = READ_AUTH
) -> httpx.Response:
    url = f"{day.stack.intake_url}/reports/deployments"
    return httpx.get(url, params=params or {}, headers=headers, timeout=30)


def json_rows(report: Doc) -> list[Row]:
    (group,) = report["orchestrations"]
    assert group["orchestration"] == "sample-app"
    return [
        Row(
            row["project"],
            row["release"],
            row["environment"] + (f" ({', '.join(row['machines'])})" if row["machines"] else ""),
            row["tenant"] or "",
            row["deployed_by"],
            row["plan"] or "",
            row["outcome"],
            "; ".join(f"{item['step']}: {item['result']} by {item['approver']}" for item in row["approvals_relayed"]),
            "; ".join(f"{item['step']}: {item['reason']}" for item in row["approvals_refused"]),
        )
        for row in group["deployments"]
    ]


def test_the_json_report_lists_the_days_deployments_from_the_records_and_peoples_from_octopus(day: Day) -> None:
    answer = api_report(day, {"since": "2h"})

    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/json"
    report = answer.json()
    assert (report["complete"], report["notes"]) == (True, [])
    assert json_rows(report) == day.expected()
    rows = report["orchestrations"][0]["deployments"]
    assert [row["deployment_id"] for row in rows] == day.deployment_ids()
    assert [row["by_conductor"] for row in rows] == [row.by == "conductor" for row in day.expected()]
    assert [row["source"] for row in rows] == ["conductor records"] * 8 + ["octopus"] + ["conductor records"] * 2
    for row in rows:
        started, ended = datetime.fromisoformat(row["started_at"]), datetime.fromisoformat(row["finished_at"])
        assert row["duration_seconds"] == pytest.approx((ended - started).total_seconds())
        assert row["duration_seconds"] > 0
        assert datetime.fromisoformat(row["queued_at"]) <= started
    relayed = rows[6]["approvals_relayed"][0]
    assert relayed["covered_by"] == f"Release Orchestration 2021.3.0.1 to Production ({day.production['Id']})"


def test_the_csv_report_has_a_row_per_deployment(day: Day) -> None:
    done = conductor_report(day, "--format", "csv", "--since", "90m")

    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    shown = [
        Row(
            row["project"],
            row["release"],
            row["environment"] + (f" ({row['machines']})" if row["machines"] else ""),
            row["tenant"],
            row["deployed_by"],
            row["plan"],
            row["outcome"],
            row["approvals_relayed"],
            row["approvals_refused"],
        )
        for row in rows
    ]
    assert shown == day.expected()
    assert {row["orchestration"] for row in rows} == {"sample-app"}
    assert [row["deployment"] for row in rows] == day.deployment_ids()
    assert [row["by_conductor"] for row in rows] == [str(row.by == "conductor").lower() for row in day.expected()]
    assert all(float(row["duration_seconds"]) > 0 for row in rows)


def test_the_markdown_report_has_a_table_per_orchestration(day: Day) -> None:
    done = conductor_report(day)  # markdown, the last 24 h

    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("# Deployments from ")
    assert "## sample-app" in lines
    table = [line.removeprefix("| ").removesuffix(" |").split(" | ") for line in lines if line.startswith("| 20")]
    assert [Row(*cells[1:8], *cells[9:]) for cells in table] == day.expected()
    assert all(cells[8].endswith(" s") for cells in table)  # how long each ran


def test_the_api_answers_the_read_token_only(day: Day) -> None:
    assert api_report(day, headers={}).status_code == 401
    assert api_report(day, headers=WRITE_AUTH).status_code == 401
    assert api_report(day, headers={"Authorization": "Bearer not-the-read-token-0123"}).status_code == 401
    answer = api_report(day, {"format": "csv"})
    assert (answer.status_code, answer.headers["content-type"]) == (200, "text/csv; charset=utf-8")
    assert answer.headers["x-report-complete"] == "true"
    assert len(list(csv.DictReader(io.StringIO(answer.text)))) == len(day.expected())


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"since": "yesterday"}, "since 'yesterday' is neither a duration such as 90m, 24h or 7d, or an ISO 8601"),
        ({"since": "0h"}, "since '0h' is an empty window: give more than zero"),
        ({"since": "2999-01-01T00:00:00Z"}, "since '2999-01-01T00:00:00Z' is not in the past"),
        ({"since": "400d"}, "since '400d' reaches back more than 366 days, the most a report covers"),
        ({"format": "xml"}, "format must be one of markdown, json, csv, not 'xml'"),
    ],
)
def test_a_bad_since_or_format_is_a_400_saying_what_was_wrong(day: Day, params: dict[str, str], message: str) -> None:
    answer = api_report(day, params)

    assert answer.status_code == 400
    assert answer.json()["error"] == "bad_request"
    assert answer.json()["message"].startswith(message)


def test_the_command_refuses_a_bad_since(day: Day) -> None:
    done = conductor_report(day, "--since", "24 hours")

    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith("conductor report: since '24 hours' is neither a duration such as 90m")


def test_without_octopus_the_records_are_listed_and_the_report_says_what_it_lacks(day: Day) -> None:
    env = {key: value for key, value in day.stack.worker_env.items() if not key.startswith("CONDUCTOR_OCTOPUS_")}
    done = subprocess.run(
        [CONDUCTOR, "report", "--format", "json", "--since", "2h"],
        env={**env, "CONDUCTOR_RETENTION_SECONDS": "90"},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["complete"] is False
    assert report["notes"][0].startswith("no Octopus configured (CONDUCTOR_OCTOPUS_URL, CONDUCTOR_OCTOPUS_API_KEY)")
    assert report["notes"][1].startswith("the conductor keeps its records 90 s after they end")
    assert report["notes"][1].endswith("come from Octopus alone")
    assert done.stderr.startswith("conductor report: incomplete: no Octopus configured")
    # People's own deployments only Octopus has; the records know a parent's deployer as a person, unnamed, and a
    # redeploy's environment and machine by their ids.
    machine = day.redeploy.machine_ids[0]
    assert json_rows(report) == [
        row._replace(
            by="a person (not recorded)" if row.by != "conductor" else row.by,
            where=row.where.replace("Production (prod-web-10)", f"{PRODUCTION_ID} ({machine})"),
        )
        for row in day.expected()
        if row.by != "web.admin"
    ]


def test_a_report_reads_octopuss_list_and_tasks_in_one_call_each(day: Day) -> None:
    env = day.stack.worker_env
    rules = load_rules(Path(env["CONDUCTOR_RULES"]))
    with OctopusClient(base_url=day.stack.sim_url, api_key=CONDUCTOR_API_KEY) as client:
        sources = ReportSources(
            connection=day.stack.connection,
            keys=day.stack.keys,
            retention=Retention(),
            rules=rules,
            client=client,
            directory=Directory(client),
        )
        now = utcnow()
        first = build_report(sources, since=now - timedelta(hours=2), now=now)
        client.calls.clear()
        again = build_report(sources, since=now - timedelta(hours=2), now=now)

    assert again.orchestrations == first.orchestrations
    assert len(again.orchestrations[0].deployments) == len(day.expected())
    # With the names cached: one page of the list, one call for every task, the service account (a person's
    # deployment is not in the records) and the new machine's name.
    assert dict(client.calls) == {
        "GET /api/{space}/deployments": 1,
        "GET /api/tasks": 1,
        "GET /api/users/me": 1,
        "GET /api/{space}/machines/{id}": 1,
    }


@contextmanager
def records_expired(day: Day, keys: list[str], index_members: dict[str, list[str]]) -> Iterator[None]:
    """As if the retention had passed for `keys` and for members of indexes: gone, then put back for the
    other tests of the day."""
    connection = day.stack.connection
    saved = [(key, connection.dump(key), connection.pttl(key)) for key in [*keys, *index_members]]
    connection.delete(*keys)
    for index, members in index_members.items():
        connection.zrem(index, *members)
    try:
        yield
    finally:
        for key, value, ttl in saved:
            if value is not None:
                connection.restore(key, max(ttl, 0), value, replace=True)


def test_once_records_expire_octopus_lists_the_conductors_deployments_under_their_plans_once(day: Day) -> None:
    prefix, plan = day.stack.keys.prefix, day.redeploy
    deployments = redeployed(plan)
    relays = [relay.interruption_id for relay in day.stack.approvals.recent(100) if relay.deployment_id in deployments]
    assert len(relays) == 4
    expire_the_redeploy = [
        f"{prefix}:plan:{plan.id}",
        *(f"{prefix}:plan-deployment:{item}" for item in deployments),
        *(f"{prefix}:deployment:{item}" for item in deployments),
        *(f"{prefix}:approval:{item}" for item in relays),
    ]
    indexes = {f"{prefix}:plans": [plan.id], f"{prefix}:deployments": deployments, f"{prefix}:approvals": relays}
    with records_expired(day, expire_the_redeploy, indexes):
        partly = api_report(day).json()
    every_record = [key.decode() for key in day.stack.connection.scan_iter(f"{prefix}:*")]
    with records_expired(day, every_record, {}):
        wholly = api_report(day).json()

    expected = day.expected()
    assert json_rows(partly) == [*expected[:9], *(row._replace(relayed="") for row in expected[9:])]
    assert [row["source"] for row in partly["orchestrations"][0]["deployments"][8:]] == ["octopus"] * 3
    assert partly["notes"] == [
        "2 of the conductor's deployments are no longer in its records (expired or deleted): they come from "
        "Octopus's list, with the plan their Comments name and without the approvals relayed"
    ]
    # The conductor's deployments keep their plans by the marker in their Comments; a parent deployment carries
    # none: it is a person's, in no plan, once the records are gone.
    assert json_rows(wholly) == [
        row._replace(plan=row.plan if row.by == "conductor" else "", relayed="", refused="") for row in expected
    ]
    assert [row["deployment_id"] for row in wholly["orchestrations"][0]["deployments"]] == day.deployment_ids()
    assert wholly["notes"][0].startswith("8 of the conductor's deployments are no longer in its records")
