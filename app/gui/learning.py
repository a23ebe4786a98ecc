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


def plain_summary(summary) -> tuple[str, str]:
    """(what changed for the user, in plain words; the learner's own technical line for a tooltip and the log).

    ``summary`` is the learner's last item: a ``training.personalise.LearnProgress`` (stage, message, result
    with people / re_embedded / before / after) or anything else, shown as its text."""
    details = str(summary)
    stage = getattr(summary, "stage", None)
    result = getattr(summary, "result", None)
    if stage is None:
        return f"Done: {details}", details
    message = getattr(summary, "message", "") or ""
    if stage == "done" and result is not None and getattr(result, "activated", False):
        people = getattr(result, "people", 0)
        faces = getattr(result, "re_embedded", 0)
        text = (f"Done: the face model has learnt from the {people} people you named, and "
                f"{faces} faces were looked at again with it. New photos are grouped with what it learnt.")
        before, after = getattr(result, "before", None), getattr(result, "after", None)
        if before is not None and after is not None:
            text += (f" On faces kept aside to check it, it now picks the right person "
                     f"{100 * after.accuracy:.0f}% of the time (before: {100 * before.accuracy:.0f}%).")
        if "cancelled" in message:
            text += " It was stopped before the end: the remaining faces are done next time."
        return text, details
    if stage == "refused":
        why = message.removeprefix("refused: ")
        if why.startswith("need "):
            return f"Nothing changed: learning needs more names first ({why.removeprefix('need ')}).", details
        return ("Nothing changed: the model it learnt was not better at telling your people apart than the "
                "one you have, so that one stays."), details
    if stage == "cancelled":
        return "Stopped; nothing changed.", details
    return details, details
