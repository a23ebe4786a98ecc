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
