"""The "Learn from my corrections" job, started by name through the engine's job API.

The app never imports the training package: the job is found among the registered jobs
(``engine.services.jobs``) and runs on a pool thread as ``run_job(name, library, cancel)``; its
progress items are shown as text, the last one carries the summary."""

from __future__ import annotations

import threading
from collections.abc import Iterator

from engine.services.jobs import job_unavailable, run_job

LEARN_JOB = "learn-from-corrections"


def learning_unavailable() -> str:
    """Why learning cannot run here, in words ("" when it can). Slow: may import torch."""
    return job_unavailable(LEARN_JOB)


def run_learning(library, cancel: threading.Event) -> Iterator[object]:
    """Pool thread: run the learning job, yielding its progress; the last item is its summary."""
    yield from run_job(LEARN_JOB, library, cancel)
