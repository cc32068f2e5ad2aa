"""`conductor demo`: the seed's story, act by act, on a stage of the whole product in one process, checked
against Octopus's API at the end. Exits non-zero when any part did not happen."""

from __future__ import annotations

import signal
import threading
import time

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
    with running_stage(redis_url, narrator) as stage:
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
        try:
            while story_thread.is_alive():
                _burst(stage)
        except KeyboardInterrupt:
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
            _serve_until_stopped(narrator, stage)
    return 0 if outcome.ok else 1


def _burst(stage: Stage) -> None:
    """The worker takes what is queued, and what is scheduled and due (it runs here, on the main thread)."""
    stage.worker.work(burst=True, with_scheduler=True, logging_level="ERROR")
    time.sleep(0.05)


def _serve_until_stopped(narrator: Narrator, stage: Stage) -> None:
    """The whole stage keeps working (the live view, the simulator, the worker) until Ctrl-C or SIGTERM."""
    narrator.say(f"the stage stays up (the Octopus simulator at {stage.octopus_url} too); Ctrl-C ends it")
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        while True:
            _burst(stage)
    except KeyboardInterrupt:
        narrator.say("stopping: the stage comes down and the demo's keys are removed")
    finally:
        signal.signal(signal.SIGTERM, previous)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _tell_live_view(narrator: Narrator, stage: Stage) -> None:
    narrator.say(
        f"live view: {stage.live_view_url} (it asks for a read token once: {stage.read_token}, made by the demo "
        "for this run; it opens only this intake, while the demo runs)"
    )
