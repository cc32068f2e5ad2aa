"""`conductor status`: the queue, failed jobs and why, plans (redeploys and promotions), approval relays, stuck
deployments, the schedules' missed and recent runs, the notifications of plan ends and the latest events."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

import redis
from rq import Queue
from rq.job import Job
from rq.registry import FailedJobRegistry, StartedJobRegistry
from rq.serializers import JSONSerializer

from workers.approval_records import ApprovalStore
from workers.keys import RedisKeys
from workers.notifications import NotificationStore
from workers.plans import PlanStore
from workers.retention import DEFAULT_RETENTION
from workers.schedule_runs import ScheduleRuns
from workers.stuck_deployments import StuckStore


@dataclass
class FailedJob:
    job_id: str
    description: str
    reason: str


@dataclass
class Status:
    queue: str
    queued: int
    running: int
    failed: list[FailedJob]
    recent_events: list[dict[str, Any]]
    plans: list[dict[str, Any]]
    approvals: list[dict[str, Any]]
    notifications: list[dict[str, Any]] = field(default_factory=list)
    stuck: list[dict[str, Any]] = field(default_factory=list)
    schedule_runs: list[dict[str, Any]] = field(default_factory=list)


def read_status(connection: redis.Redis, keys: RedisKeys, *, limit: int = 20) -> Status:
    queue = Queue(keys.queue_name, connection=connection, serializer=JSONSerializer)
    failed_registry = FailedJobRegistry(queue=queue)
    failed_ids = failed_registry.get_job_ids(0, limit - 1)
    failed = []
    for job in Job.fetch_many(failed_ids, connection=connection, serializer=JSONSerializer):
        if job is None:
            continue
        reason = (job.exc_info or "").strip().splitlines()
        failed.append(FailedJob(job.id, job.description or "", reason[-1] if reason else ""))
    recent = [json.loads(raw) for raw in connection.lrange(keys.recent_events, 0, limit - 1)]
    return Status(
        queue=queue.name,
        queued=queue.count,
        running=StartedJobRegistry(queue=queue).count,
        failed=failed,
        recent_events=recent,
        plans=[plan.model_dump(mode="json") for plan in PlanStore(connection, keys.prefix).recent(limit)],
        approvals=[
            record.model_dump(mode="json", exclude={"timer"})
            for record in ApprovalStore(connection, keys.prefix).recent(limit)
        ],
        notifications=_notifications(connection, keys, limit),
        stuck=[record.model_dump(mode="json") for record in StuckStore(connection, keys.prefix).recent(limit)],
        schedule_runs=ScheduleRuns(connection, keys.prefix).recent(limit),
    )


def _notifications(connection: redis.Redis, keys: RedisKeys, limit: int) -> list[dict[str, Any]]:
    """Each plan end's deliveries; a receiver is shown by its host alone (its URL may hold a token)."""
    out = []
    for plan_id, deliveries in NotificationStore(connection, keys, DEFAULT_RETENTION).recent(limit):
        shown = []
        for delivery in deliveries:
            item = delivery.model_dump(mode="json", exclude={"url"})
            item["host"] = urlsplit(delivery.url).hostname if delivery.url else None
            shown.append(item)
        out.append({"plan": plan_id, "deliveries": shown})
    return out


def render(status: Status) -> str:
    lines = [
        f"queue {status.queue}: {status.queued} waiting, {status.running} running, {len(status.failed)} failed",
    ]
    if status.failed:
        lines.append("failed jobs:")
        lines += [f"  {job.job_id}  {job.description}  {job.reason}" for job in status.failed]
    lines.append("plans (redeploys and promotions):" if status.plans else "plans (redeploys and promotions): none")
    for plan in status.plans:
        tenant = f" tenant {plan['tenant_id']}" if plan["tenant_id"] else ""
        parent = plan.get("parent")
        what = (
            f"promotes {parent['project']} {parent['release_version']} ({parent['deployment_id']})"
            if plan.get("kind") == "promotion" and parent
            else f"machines {', '.join(plan['machine_ids'])}"
        )
        lines.append(
            f"  {plan['id']}  {plan['status']:<9} {plan['orchestration']}  {plan['environment_id']}{tenant}  {what}"
        )
        for step in plan["steps"]:
            where = (
                f" {step['release_version']} {step['deployment_id']} {step['task_id']}" if step["deployment_id"] else ""
            )
            why = f" ({step['reason']})" if step["reason"] else ""
            name = f"{step['project']} (rollback)" if step.get("rollback_of") is not None else step["project"]
            lines.append(f"      {name:<24} {step['status']:<10}{where}{why}")
    lines += _approval_lines(status.approvals)
    lines += _notification_lines(status.notifications)
    lines += _stuck_lines(status.stuck)
    lines += _schedule_lines(status.schedule_runs)
    lines.append("recent events:" if status.recent_events else "recent events: none")
    for event in status.recent_events:
        lines.append(
            f"  {event['received_at']}  {event['id']:<16} {event['category']:<40} "
            f"{event['outcome']} ({event['source']})"
        )
    return "\n".join(lines)


# A relay's status in plain words: a person who answered first is no refusal.
RELAY_STATUS_WORDS = {
    "looking": "looking",
    "relaying": "relaying",
    "relayed": "relayed",
    "refused": "left to people",
    "answered_by_person": "a person answered",
}
COVER_WORDS = {
    "ordered_by_parent": "the parent deployment that ordered it",
    "earlier_approval": "an earlier approval of this release",
    "bound_by_rule": "a parent bound by the rules",
}


def _approval_lines(approvals: list[dict[str, Any]]) -> list[str]:
    lines = ["approval relays:" if approvals else "approval relays: none"]
    for record in approvals:
        tenant = f" tenant {record['tenant']}" if record["tenant"] else ""
        status = RELAY_STATUS_WORDS.get(record["status"], record["status"])
        lines.append(
            f"  {record['interruption_id']}  {status:<17} {record['project']} {record['release_version']} "
            f"{record['environment']}{tenant}  '{record['step']}'  {record['deployment_id']} {record['task_id']}"
        )
        covered_by = record.get("covered_by")
        if record["status"] in ("relayed", "relaying") and covered_by:
            approver = covered_by["approver"]
            lines.append(
                f"      {record['result']} from {approver['display_name']} ({approver['username']}), by "
                f"{COVER_WORDS.get(covered_by['kind'], covered_by['kind'])}: {covered_by['project']} "
                f"{covered_by['release_version']} {covered_by['environment']} {covered_by['deployment_id']} "
                f"{covered_by['task_id']}"
            )
        if record["reason"]:
            lines.append(f"      {record['reason']}")
        if record["status"] == "looking" and record["next_check_at"]:
            lines.append(f"      looks again at {record['next_check_at']}")
    return lines


def _notification_lines(notifications: list[dict[str, Any]]) -> list[str]:
    lines = ["notifications of plan ends:" if notifications else "notifications of plan ends: none"]
    for notification in notifications:
        for delivery in notification["deliveries"]:
            where = delivery["host"] if delivery["channel"] == "webhook" else ", ".join(delivery["to"])
            why = f" ({delivery['last_error']})" if delivery["last_error"] else ""
            lines.append(
                f"  {notification['plan']}  {delivery['destination']:<10} {delivery['status']:<9} "
                f"{delivery['attempts']}/{delivery['max_attempts']} attempts  {where}{why}"
            )
    return lines


def _stuck_lines(stuck: list[dict[str, Any]]) -> list[str]:
    lines = ["stuck deployments:" if stuck else "stuck deployments: none"]
    for record in stuck:
        tenant = f" tenant {record['tenant_id']}" if record["tenant_id"] else ""
        plan = f" (plan {record['plan_id']})" if record["plan_id"] else ""
        lines.append(
            f"  {record['task_id']}  {record['action'].replace('_', ' '):<14} {record['project']} to "
            f"{record['environment']}{tenant}  {record['deployment_id']}{plan}  ran {record['running_seconds']:.0f} s "
            f"of {record['limit_seconds']} s ({record['orchestration']})"
        )
        lines.append(f"      {record['note']}")
    return lines


def _schedule_lines(runs: list[dict[str, Any]]) -> list[str]:
    """Per schedule, its missed runs counted, then each recent fire time and what it became."""
    lines = ["schedules (recent fire times):" if runs else "schedules: no fire time recorded"]
    names = list(dict.fromkeys((run["orchestration"], run["schedule"]) for run in runs))
    for orchestration, schedule in names:
        own = [run for run in runs if (run["orchestration"], run["schedule"]) == (orchestration, schedule)]
        missed = sum(1 for run in own if run["outcome"] == "missed")
        lines.append(f"  {orchestration}/{schedule}: {len(own)} recent, {missed} missed")
        for run in own:
            if run["outcome"] == "missed":
                what = f"missed: {run['late_seconds']} s late, past its grace of {run['grace_seconds']} s"
            else:
                late = f", {run['late_seconds']} s late" if run["late_seconds"] >= 60 else ""
                what = f"queued{late}" + (f": {run['plan']}" if run["plan"] else "")
            lines.append(f"      {run['due']}  {what}")
    return lines


def as_json(status: Status) -> str:
    return json.dumps(asdict(status), indent=2)
