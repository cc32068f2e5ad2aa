"""The live view without a browser: what the status fragment shows (escaped), who may read it, and the page."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
import redis

from service.app import create_app
from service.live_status import elapsed, plans_to_show
from service.threaded_server import serve_in_thread
from tests.conftest import make_settings
from tests.support.tokens import READ_AUTH, READ_TOKEN, WRITE_TOKEN
from tests.support.webhooks import SECRET
from workers.approval_records import ApprovalRelay, ApprovalStore, Approver, CoveringApproval
from workers.keys import RedisKeys
from workers.plans import ParentDeployment, Plan, PlanStep, PlanStore

START = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
HOSTILE = '<img src=x onerror="alert(1)">'


def promotion(plan_id: str = "promotion-Deployments-9", **changes: object) -> Plan:
    plan = Plan(
        id=plan_id,
        kind="promotion",
        parent=ParentDeployment(
            deployment_id="Deployments-9",
            task_id="ServerTasks-9",
            project="Release Orchestration",
            release_version="2021.3.0.1",
            environment="Staging",
        ),
        notes="Database 2021.3.0.1 <b>bold</b>",
        orchestration="sample-app",
        space_id="Spaces-1",
        environment_id="Environments-3",
        tenant_id=None,
        machine_ids=[],
        steps=[
            PlanStep(
                project="Database",
                status="succeeded",
                release_version="2021.3.0.1",
                from_version="2021.2.0.4",
                deployment_id="Deployments-10",
                task_id="ServerTasks-10",
                started_at=START,
                finished_at=START + timedelta(seconds=75),
                form_values={"Variables-7": "prompted-value-kept-out"},
            ),
            PlanStep(
                project="Web API",
                status="deploying",
                release_version="2021.3.0.2",
                deployment_id="Deployments-11",
                task_id="ServerTasks-11",
                started_at=START + timedelta(seconds=80),
            ),
            PlanStep(project="Web UI", status="pending"),
        ],
        created_at=START,
    )
    return plan.model_copy(update=changes)


def relay(interruption_id: str, deployment_id: str, **changes: object) -> ApprovalRelay:
    record = ApprovalRelay(
        interruption_id=interruption_id,
        space_id="Spaces-1",
        orchestration="sample-app",
        step="DBA approval",
        project="Database",
        release_id="Releases-10",
        release_version="2021.3.0.1",
        environment_id="Environments-3",
        environment="Staging",
        tenant_id=None,
        tenant=None,
        deployment_id=deployment_id,
        task_id="ServerTasks-10",
    )
    return record.model_copy(update=changes)


def covering(username: str, display_name: str) -> CoveringApproval:
    return CoveringApproval(
        kind="ordered_by_parent",
        project="Release Orchestration",
        release_version="2021.3.0.1",
        environment="Staging",
        tenant=None,
        deployment_id="Deployments-9",
        task_id="ServerTasks-9",
        interruption_id="Interruptions-1",
        step="DBA approval",
        result="Proceed",
        approver=Approver(user_id="Users-5", username=username, display_name=display_name, team="DBAs"),
        approved_at=START,
        link="https://octopus.example.test/app#/Spaces-1/tasks/ServerTasks-9",
    )


def live_status(intake_url: str, headers: dict[str, str] | None = None, **params: str) -> httpx.Response:
    return httpx.get(f"{intake_url}/live/status", headers=headers or {}, params=params, timeout=10)


def test_the_status_shows_each_component_with_its_state_deployment_task_and_elapsed_time(
    intake_url: str, connection: redis.Redis, keys: RedisKeys
) -> None:
    PlanStore(connection, keys.prefix).save(promotion())

    response = live_status(intake_url, READ_AUTH)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert 'data-plan="promotion-Deployments-9"' in html
    assert "Release Orchestration 2021.3.0.1 → Staging" in html
    assert 'data-component="Database" data-state="succeeded"' in html
    assert 'data-component="Web API" data-state="deploying"' in html
    assert 'data-component="Web UI" data-state="pending"' in html
    for shown in ("Deployments-10", "ServerTasks-10", "Deployments-11", "ServerTasks-11", "1 min 15 s"):
        assert shown in html
    assert "(from 2021.2.0.4)" in html
    assert "prompted-value-kept-out" not in html  # prompted values may be sensitive variables


def test_names_reasons_and_notes_are_escaped(intake_url: str, connection: redis.Redis, keys: RedisKeys) -> None:
    plan = promotion()
    plan.steps[2] = PlanStep(project=HOSTILE, status="skipped", reason=f"no release matches {HOSTILE}")
    PlanStore(connection, keys.prefix).save(plan)
    ApprovalStore(connection, keys.prefix).save(
        relay("Interruptions-2", "Deployments-10", status="refused", reason=f"no approver in <script>{HOSTILE}")
    )

    html = live_status(intake_url, READ_AUTH).text

    assert HOSTILE not in html
    assert "<script>" not in html
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in html
    assert "Database 2021.3.0.1 &lt;b&gt;bold&lt;/b&gt;" in html


def test_relayed_approvals_name_who_gave_them_and_refusals_give_their_reason(
    intake_url: str, connection: redis.Redis, keys: RedisKeys
) -> None:
    PlanStore(connection, keys.prefix).save(promotion())
    approvals = ApprovalStore(connection, keys.prefix)
    approvals.save(
        relay(
            "Interruptions-2", "Deployments-10", status="relayed", result="Proceed", covered_by=covering("dba", "Dee")
        )
    )
    approvals.save(
        relay(
            "Interruptions-3",
            "Deployments-11",
            step="Web Admins approval",
            status="refused",
            reason="the parent's approver is not in the step's responsible teams",
        )
    )
    approvals.save(relay("Interruptions-4", "Deployments-77", status="relayed", covered_by=covering("other", "Oz")))

    html = live_status(intake_url, READ_AUTH).text

    database, web_api = html.split('data-component="Database"')[1].split('data-component="Web API"')
    assert "DBA approval: Proceed relayed from Dee (dba, DBAs)" in " ".join(database.split())
    assert 'data-approval-status="refused"' in web_api
    assert "Web Admins approval: left to people" in " ".join(web_api.split())
    assert "the parent&#39;s approver is not in the step&#39;s responsible teams" in web_api
    assert "Oz" not in html  # a relay of a deployment no plan on the page made


def test_the_status_needs_a_read_token_as_a_bearer_header(intake_url: str) -> None:
    for headers in (None, {"Authorization": "Bearer wrong-token-0123456789"}, {"Authorization": f"Bearer {SECRET}"}):
        response = live_status(intake_url, headers)
        assert response.status_code == 401, headers
        assert response.json()["error"] == "unauthorized"
    # Not from the URL, where proxies and logs would keep it.
    assert live_status(intake_url, token=READ_TOKEN).status_code == 401
    assert live_status(intake_url, {"Authorization": f"Bearer {WRITE_TOKEN}"}).status_code == 401


def test_without_a_read_token_configured_the_status_is_shut(redis_url: str, keys: RedisKeys) -> None:
    with serve_in_thread(create_app(make_settings(redis_url, keys, read_tokens=None))) as url:
        response = live_status(url, READ_AUTH)
    assert response.status_code == 403
    assert "CONDUCTOR_READ_TOKENS" in response.json()["message"]


def test_the_page_holds_no_data_no_secret_and_no_write_action(
    intake_url: str, connection: redis.Redis, keys: RedisKeys
) -> None:
    PlanStore(connection, keys.prefix).save(promotion())

    page = httpx.get(f"{intake_url}/", timeout=10)

    assert page.status_code == 200
    html = page.text
    assert 'id="token-form"' in html
    assert 'data-status-url="/live/status"' in html
    for absent in ("Deployments-10", "Database", READ_TOKEN, SECRET, "method=", "action="):
        assert absent not in html
    assert '<input id="token"' in html
    assert "name=" not in html.split('<input id="token"')[1].split(">")[0]  # an unnamed input is never submitted
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "form-action 'none'" in policy
    assert page.headers["referrer-policy"] == "no-referrer"
    assert httpx.post(f"{intake_url}/", timeout=10).status_code == 405


def test_the_script_sends_the_token_as_a_bearer_header_from_session_storage(intake_url: str) -> None:
    script = httpx.get(f"{intake_url}/live/view.js", timeout=10)
    style = httpx.get(f"{intake_url}/live/view.css", timeout=10)

    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert '"Bearer " + token' in script.text
    assert "sessionStorage" in script.text
    assert "localStorage" not in script.text
    assert "document.cookie" not in script.text
    assert style.status_code == 200
    assert style.headers["content-type"].startswith("text/css")


def test_plans_in_progress_come_first_then_the_newest_finished() -> None:
    def plan(plan_id: str, status: str, minutes: int) -> Plan:
        at = START + timedelta(minutes=minutes)
        return promotion(plan_id, status=status, created_at=at, finished_at=None if status == "running" else at)

    old_running, new_running = plan("a", "running", 0), plan("b", "running", 5)
    planned = plan("c", "planned", 6)
    finished = [plan(f"f{i}", "succeeded", i) for i in range(1, 5)]

    shown = plans_to_show([old_running, new_running], [planned, *finished, new_running], finished_limit=2)

    assert [p.id for p in shown] == ["a", "b", "c", "f4", "f3"]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0 s"), (59, "59 s"), (60, "1 min 00 s"), (3599, "59 min 59 s"), (3600, "1 h 00 min"), (7500, "2 h 05 min")],
)
def test_elapsed_reads_as_a_person_would_say_it(seconds: int, text: str) -> None:
    assert elapsed(START, START + timedelta(seconds=seconds), now=START) == text
    assert elapsed(START, None, now=START + timedelta(seconds=seconds)) == text


@pytest.mark.parametrize(
    ("asked", "every"), [("", "2000"), ("5", "5000"), ("0", "1000"), ("3600", "60000"), ("x", "2000")]
)
def test_the_page_refreshes_every_two_seconds_or_as_asked_within_one_to_sixty(
    intake_url: str, asked: str, every: str
) -> None:
    page = httpx.get(f"{intake_url}/", params={"refresh": asked}, timeout=10)

    assert f'data-refresh-ms="{every}"' in page.text
