"""A deployment report while Octopus does not answer: what the records hold, marked incomplete, with the reason,
after one call (no name lookup waits out retries). Real Redis; Octopus answers through the client's transport
seam, from a function."""

from __future__ import annotations

from datetime import timedelta

import httpx
import redis

from tests.support.stack import rules_text
from workers.deployment_report import ReportSources, build_report
from workers.directory import Directory
from workers.events import utcnow
from workers.keys import RedisKeys
from workers.octopus import OctopusClient, RetryPolicy
from workers.plans import Plan, PlanStep, PlanStore
from workers.retention import Retention
from workers.rules import parse_rules


def test_with_octopus_unavailable_the_records_are_listed_and_the_report_says_why(
    connection: redis.Redis, keys: RedisKeys
) -> None:
    now = utcnow()
    step = PlanStep(
        project="Web API",
        status="succeeded",
        release_version="2021.3.0.2",
        machine_ids=["Machines-15"],
        deployment_id="Deployments-56",
        task_id="ServerTasks-71",
        started_at=now - timedelta(minutes=5),
        finished_at=now - timedelta(minutes=4),
    )
    plan = Plan(
        id="plan-1",
        orchestration="sample-app",
        space_id="Spaces-1",
        environment_id="Environments-4",
        tenant_id=None,
        machine_ids=["Machines-15"],
        steps=[step, PlanStep(project="Web UI", status="skipped", reason="no release")],
        status="succeeded",
    )
    PlanStore(connection, keys.prefix).save(plan)
    asked: list[str] = []

    def octopus(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.path)
        return httpx.Response(503, json={"ErrorMessage": "down for maintenance"})

    client = OctopusClient(
        base_url="http://octopus.test",
        api_key="API-TEST",
        retry=RetryPolicy(attempts=1),
        transport=httpx.MockTransport(octopus),
    )
    sources = ReportSources(
        connection=connection,
        keys=keys,
        retention=Retention(),
        rules=parse_rules(rules_text(window=1)),
        client=client,
        directory=Directory(client),
    )

    report = build_report(sources, since=now - timedelta(hours=1), now=now)

    assert report.complete is False
    assert report.notes == [
        "Octopus's deployments could not be read (GET /api/spaces/all: Octopus is unavailable (HTTP 503)): only "
        "the conductor's records are listed"
    ]
    assert asked == ["/api/spaces/all"]
    ((row,),) = [group.deployments for group in report.orchestrations]
    assert (row.deployment_id, row.project, row.release, row.environment, row.machines) == (
        "Deployments-56",
        "Web API",
        "2021.3.0.2",
        "Environments-4",
        ["Machines-15"],
    )
    assert (row.deployed_by, row.plan, row.outcome, row.duration_seconds) == ("conductor", "plan-1", "Success", 60.0)
    assert row.source == "conductor records"
