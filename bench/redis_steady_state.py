"""Redis memory by kind of record, and the steady state it adds up to (for `bench.redis_memory`).

Every key of a run is counted with `MEMORY USAGE` (SAMPLES 0: exact) under a kind: the conductor's keys by
the first part of their name after the prefix, RQ's job hashes and result streams by the event category of
their job. The steady state prices each kind at bytes x a day's count x the days it is kept.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis

from bench.harness import say
from service.settings import Settings
from workers.event_queue import JobPolicy
from workers.keys import RedisKeys
from workers.redis_client import as_text

MACHINE_EVENT = "MachineAdded"
INTERRUPTION_EVENT = "ManualInterventionInterruptionRaised"
OUTCOME_EVENTS = ("DeploymentSucceeded", "DeploymentFailed")
DAY = 24 * 3600
YEAR_DAYS = 365


# ---------------------------------------------------------------------------------------------- measuring


@dataclass
class Kind:
    """The keys of one kind: how many, their bytes, their TTLs (seconds; -1 none)."""

    keys: int = 0
    bytes: int = 0
    ttls: list[int] = field(default_factory=list)
    entries: int = 0  # for a sorted set: its members

    @property
    def each(self) -> float:
        return self.bytes / self.keys if self.keys else 0.0

    @property
    def per_entry(self) -> float:
        return self.bytes / self.entries if self.entries else 0.0

    def add(self, size: int, ttl: int, entries: int = 0) -> None:
        self.keys += 1
        self.bytes += size
        self.ttls.append(ttl)
        self.entries += entries


def conductor_kind(name: str) -> str:
    """`plan:plan-3` -> `plan`; the index keys keep their whole name."""
    return name.split(":", 1)[0]


def measure_keys(connection: redis.Redis, keys: RedisKeys) -> dict[str, Kind]:
    """Every key of the run, by kind: the conductor's by the first part of their name, RQ's job hashes and
    result streams by the event category of their job (`follow-up` for the jobs handlers schedule)."""
    kinds: dict[str, Kind] = defaultdict(Kind)
    job_prefix = f"rq:job:{keys.prefix}-"
    results_prefix = f"rq:results:{keys.prefix}-"
    found = [as_text(key) for key in connection.scan_iter(match=f"{keys.prefix}:*", count=1000)]
    found += [as_text(key) for key in connection.scan_iter(match=f"rq:*{keys.prefix}*", count=1000)]
    for key in found:
        size = int(connection.memory_usage(key, samples=0) or 0)
        ttl = int(connection.ttl(key))
        key_type = as_text(connection.type(key))
        entries = int(connection.zcard(key)) if key_type == "zset" else 0
        if key.startswith(f"{keys.prefix}:"):
            kind = conductor_kind(key[len(keys.prefix) + 1 :])
        elif key.startswith(job_prefix) or key.startswith(results_prefix):
            job_id = key.split(":", 2)[2]
            description = as_text(connection.hget(f"rq:job:{job_id}", "description") or b"")
            status = as_text(connection.hget(f"rq:job:{job_id}", "status") or b"")
            category = description.split(" ", 1)[0] if job_id.startswith(f"{keys.prefix}-Events-") else "follow-up"
            part = "job" if key.startswith("rq:job:") else "result"
            kind = f"rq {part} {category}" + ("" if status == "finished" else f" ({status or 'gone'})")
        else:
            kind = key.replace(keys.prefix, "<prefix>")
        kinds[kind].add(size, ttl, entries)
    return dict(kinds)


# ---------------------------------------------------------------------------------------------- figures


@dataclass(frozen=True)
class Line:
    """One term of the steady state: bytes of one record, how many a day, how many days each is kept."""

    what: str
    bytes: float
    per_day: float
    days: float
    retained: bool  # kept for the retention (for ever, before it): the terms the retention bounds

    def total(self, *, days: float | None = None) -> float:
        return self.bytes * self.per_day * (self.days if days is None else days)


def mean_of(kinds: dict[str, Kind], names: Iterable[str]) -> tuple[float, int]:
    """Bytes per key over several kinds, and the keys counted."""
    chosen = [kinds[name] for name in names if name in kinds]
    count = sum(kind.keys for kind in chosen)
    return (sum(kind.bytes for kind in chosen) / count if count else 0.0), count


def per_event_job(kinds: dict[str, Kind], categories: Sequence[str], registry_entry: float) -> float:
    """A finished job of these categories: its hash, its result stream and its finished-registry entry."""
    job, _ = mean_of(kinds, [f"rq job {category}" for category in categories])
    result, _ = mean_of(kinds, [f"rq result {category}" for category in categories])
    return job + result + registry_entry


def steady_state(
    kinds: dict[str, Kind], plans: int, args: argparse.Namespace, *, retention_days: float
) -> tuple[list[Line], dict[str, Any]]:
    """The terms of the steady state for the stated daily volume, from the bytes measured."""
    dedupe_days = Settings.model_fields["dedupe_window_seconds"].default / DAY
    result_days = JobPolicy().result_ttl_seconds / DAY
    index_entry = kinds.get("deployments", Kind()).per_entry
    registry_entry = kinds.get("rq:finished:<prefix>", Kind()).per_entry
    plans = max(plans, 1)
    events_per_day = args.outcomes_per_day + args.interruptions_per_day + args.machine_events_per_day
    day, kept = result_days, retention_days

    def each(name: str) -> float:
        return kinds.get(name, Kind()).each

    def per_plan(name: str) -> float:
        return kinds.get(name, Kind()).keys / plans

    def job(*categories: str) -> float:
        return per_event_job(kinds, categories, registry_entry)

    lines = [
        Line("dedupe key, every event", each("seen"), events_per_day, dedupe_days, False),
        Line("finished RQ job, deployment outcome", job(*OUTCOME_EVENTS), args.outcomes_per_day, day, False),
        Line("finished RQ job, interruption", job(INTERRUPTION_EVENT), args.interruptions_per_day, day, False),
        Line("finished RQ job, machine event", job(MACHINE_EVENT), args.machine_events_per_day, day, False),
        Line("deployment outcome + index entry", each("deployment") + index_entry, args.outcomes_per_day, kept, True),
        Line("gathering record, machine event", each("gathered"), args.machine_events_per_day, kept, True),
        Line(
            "redeploy plan + index entry + its machines",
            each("plan") + index_entry + each("plan-machines"),
            args.plans_per_day,
            kept,
            True,
        ),
        Line(
            f"plan's deployment links ({per_plan('plan-deployment'):g} per plan)",
            each("plan-deployment"),
            args.plans_per_day * per_plan("plan-deployment"),
            kept,
            True,
        ),
        Line(
            f"approval bindings ({per_plan('binding'):g} per plan)",
            each("binding"),
            args.plans_per_day * per_plan("binding"),
            kept,
            True,
        ),
        Line(
            f"finished follow-up jobs ({per_plan('rq job follow-up'):g} per plan)",
            job("follow-up"),
            args.plans_per_day * per_plan("rq job follow-up"),
            day,
            False,
        ),
        Line("approval relay record + index entry", each("approval") + index_entry, args.relays_per_day, kept, True),
    ]
    bounded = sum(kinds[name].bytes for name in ("recent-events", "plan-counter") if name in kinds)
    facts = {
        "index_entry_bytes": round(index_entry, 1),
        "finished_registry_entry_bytes": round(registry_entry, 1),
        "dedupe_days": dedupe_days,
        "result_ttl_days": result_days,
        "retention_days": retention_days,
        "events_per_day": events_per_day,
        "bounded_bytes": bounded,
    }
    return lines, facts


def human(size: float) -> str:
    """Decimal units, as memory is usually quoted for capacity (GB = 10^9 bytes)."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if size >= scale:
            return f"{size / scale:.2f} {unit}"
    return f"{size:.0f} B"


def days_of(ttls: Sequence[int]) -> str:
    if not ttls:
        return "-"
    if min(ttls) < 0:
        return "no expiry" if max(ttls) < 0 else "some without expiry"
    low, high = min(ttls) / DAY, max(ttls) / DAY
    return f"{high:.2f} d" if high - low < 0.01 else f"{low:.2f}-{high:.2f} d"


def render(kinds: dict[str, Kind], lines: Sequence[Line], facts: dict[str, Any]) -> dict[str, Any]:
    say("  record kind                                        keys   bytes each   TTL read back")
    for name in sorted(kinds):
        kind = kinds[name]
        per = f"{kind.per_entry:8.1f}/entry" if kind.entries > 1 else f"{kind.each:10.0f}  "
        say(f"  {name:<48} {kind.keys:>6} {per:>14}   {days_of(kind.ttls)}")
    say(
        f"  an index entry (deployments index): {facts['index_entry_bytes']} B; a finished-registry entry: "
        f"{facts['finished_registry_entry_bytes']} B"
    )
    say("")
    say("  steady state                                         bytes  x   per day  x  days  =   size")
    for line in lines:
        say(
            f"  {line.what:<48} {line.bytes:>9.0f}  {line.per_day:>10,.0f}  {line.days:>6.2f}  "
            f"{human(line.total()):>10}"
        )
    total = sum(line.total() for line in lines) + facts["bounded_bytes"]
    year = sum(line.total(days=YEAR_DAYS if line.retained else None) for line in lines) + facts["bounded_bytes"]
    say(f"  bounded whatever the volume (recent-events list, plan counter): {human(facts['bounded_bytes'])}")
    say(
        f"steady state for {facts['events_per_day']:,} events a day: {human(total)} "
        f"(retention {facts['retention_days']:g} d, dedupe window {facts['dedupe_days']:g} d, "
        f"RQ result_ttl {facts['result_ttl_days']:g} d)"
    )
    say(f"the same volume with no retention, after a year: {human(year)}")
    return {
        "steady_state_bytes": round(total),
        "year_without_retention_bytes": round(year),
        "lines": [
            {"what": line.what, "bytes": round(line.bytes, 1), "per_day": line.per_day, "days": line.days}
            for line in lines
        ],
    }


def per_event(lines: Sequence[Line]) -> dict[str, float]:
    """What one event of each kind keeps, while it is kept (without the plans and relays it may lead to)."""
    by_what = {line.what: line.bytes for line in lines}
    dedupe = by_what["dedupe key, every event"]
    return {
        "deployment outcome": dedupe
        + by_what["finished RQ job, deployment outcome"]
        + by_what["deployment outcome + index entry"],
        "interruption": dedupe + by_what["finished RQ job, interruption"],
        "machine event": dedupe
        + by_what["finished RQ job, machine event"]
        + by_what["gathering record, machine event"],
    }
