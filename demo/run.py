"""`conductor demo`: the seed's story, act by act, on a stage of the whole product in one process, checked
against Octopus's API at the end. Exits non-zero when any part did not happen."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from demo import act_new_server, act_promotion, act_schedule
from demo.cast import sample_cast
from demo.narration import Narrator, Outcome
from demo.stage import SAMPLE_RULES, Stage, choose_redis, running_stage
from demo.story import Story

ACTS = [
    (act_promotion.TITLE, act_promotion.play),
    (act_new_server.TITLE, act_new_server.play),
    (act_schedule.TITLE, act_schedule.play),
]


def run_demo(*, timeout: float = 90.0, keep_serving: bool = False, narrator: Narrator | None = None) -> int:
    narrator = narrator or Narrator()
    narrator.heading("Release Conductor demo: the sample application of the release-orchestration story")
    if not SAMPLE_RULES.exists():
        narrator.say(f"cannot find {SAMPLE_RULES}: run the demo from a checkout of the repository")
        return 2
    redis_url = choose_redis(narrator)
    if redis_url is None:
        return 2
    with running_stage(redis_url, narrator) as stage, _stop_on_signals() as stopping:
        _tell_live_view(narrator, stage)
        story = Story(
            octopus_url=stage.octopus_url,
            plans=stage.plans,
            approvals=stage.approvals,
            scheduler=stage.scheduler,
            clock=stage.clock,
            cast=sample_cast(),
            narrator=narrator,
            timeout=timeout,
        )
        result: list[Outcome] = []
        story_thread = threading.Thread(target=lambda: result.append(story.play(ACTS)), name="story", daemon=True)
        story_thread.start()
        while story_thread.is_alive() and not stopping.is_set():
            _burst(stage)
        if stopping.is_set():
            narrator.done()
            narrator.say("interrupted: the stage comes down and the demo's keys are removed")
            return 130
        outcome = result[0] if result else Outcome([(False, "the story ended without an outcome")])
        outcome.summarise(narrator)
        narrator.say(
            f"reconciler: read {stage.reconciler.read} audit events; {stage.reconciler.queued} reached the queue "
            "through it before their webhook did, the rest were already there"
        )
        narrator.say("the story happened" if outcome.ok else "part of the story did not happen")
        _tell_live_view(narrator, stage)
        if keep_serving:
            narrator.say(f"the stage stays up (the Octopus simulator at {stage.octopus_url} too); Ctrl-C ends it")
            while not stopping.is_set():
                _burst(stage)
            narrator.say("stopping: the stage comes down and the demo's keys are removed")
    return 0 if outcome.ok else 1


def _burst(stage: Stage) -> None:
    """The worker takes what is queued, and what is scheduled and due (it runs here, on the main thread)."""
    stage.worker.work(burst=True, with_scheduler=True, logging_level="ERROR")
    time.sleep(0.05)


@contextmanager
def _stop_on_signals() -> Iterator[threading.Event]:
    """SIGINT (Ctrl-C) and SIGTERM ask the demo to stop between two bursts of the worker: raised inside one, RQ's
    worker would take the KeyboardInterrupt for a failure of its own and carry on."""
    stopping = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stopping  # signals reach the main thread only
        return
    previous = {signum: signal.signal(signum, lambda *_: stopping.set()) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stopping
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _tell_live_view(narrator: Narrator, stage: Stage) -> None:
    narrator.say(
        f"live view: {stage.live_view_url} (it asks for a read token once: {stage.read_token}, made by the demo "
        "for this run; it opens only this intake, while the demo runs)"
    )
