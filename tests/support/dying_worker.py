"""`conductor worker` as built by the product, but SIGKILLing itself at one point of taking a job: the
windows a crashed host can leave a job in. Run as `python -m tests.support.dying_worker POINT`.

- `popped`: the job is in RQ's intermediate queue, before the wip registry has it;
- `in-wip`: the job is in the wip registry, where RQ's own order had not yet marked it started (its
  `perform_job` does that); the window seen requeued only after 158-160 s.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any, NoReturn

from service.settings import Settings
from workers.redis_client import connect
from workers.runner import ConductorWorker, build_worker


def _die() -> NoReturn:
    os.kill(os.getpid(), signal.SIGKILL)
    raise AssertionError("unreachable: SIGKILL cannot be caught")


class DiesWithTheJobPopped(ConductorWorker):
    def prepare_execution(self, job: Any) -> Any:
        _die()


class DiesWithTheJobInTheWip(ConductorWorker):
    def perform_job(self, job: Any, queue: Any, execution: Any) -> bool:
        _die()


POINTS: dict[str, type[ConductorWorker]] = {"popped": DiesWithTheJobPopped, "in-wip": DiesWithTheJobInTheWip}


def main(point: str) -> None:
    settings = Settings()
    connection = connect(settings.redis_url, timeout=5.0)
    worker = build_worker(
        connection=connection, keys=settings.keys, policy=settings.job_policy, worker_class=POINTS[point]
    )
    worker.work(with_scheduler=False, logging_level="WARNING")


if __name__ == "__main__":
    main(sys.argv[1])
