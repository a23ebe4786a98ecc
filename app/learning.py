"""The bridge to the optional ``training`` package: "Learn from my corrections".

The app offers the button when ``training.personalise.learn_from_corrections`` exists. It is called on a
pool thread as ``learn_from_corrections(library, cancel=threading.Event)`` and may return a summary or an
iterator of progress items (shown as text; the last one is the summary). Anything else: "not available".
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Iterator

MODULE, FUNCTION = "training.personalise", "learn_from_corrections"


def find_learner() -> tuple[Callable | None, str]:
    """(the training entry point, "") or (None, why it is not available). Slow: may import torch."""
    try:
        mod = importlib.import_module(MODULE)
    except ImportError as exc:
        missing = getattr(exc, "name", "") or ""
        if missing.split(".")[0] == "torch":
            return None, "not available: install the training extra (pip install 'facenet-photos[train]')"
        return None, "not available in this installation"
    except Exception as exc:  # a broken optional package must not break the app
        return None, f"not available: {exc.__class__.__name__}: {exc}"
    fn = getattr(mod, FUNCTION, None)
    if not callable(fn):
        return None, "not available in this installation"
    return fn, ""


def run_learning(library, cancel: threading.Event) -> Iterator[object]:
    """Pool thread: run the learner, yielding its progress; the last item is its summary."""
    fn, why = find_learner()
    if fn is None:
        from engine.errors import FacenetPhotosError

        raise FacenetPhotosError(f"Learning from corrections is {why}")
    result = fn(library, cancel=cancel)
    if isinstance(result, Iterator):
        yield from result
    else:
        yield result


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
