"""The evaluation harness's own dependencies live in the ``eval`` extra, not in the app's."""

from __future__ import annotations

import importlib.util

from engine.errors import FacenetPhotosError

EXTRA_MODULES = ("matplotlib", "sklearn", "hdbscan")
INSTALL_HINT = "pip install 'facenet-photos[eval]'"


def missing_extra(modules: tuple[str, ...] = EXTRA_MODULES) -> list[str]:
    """The modules of the eval extra that this installation lacks."""
    return [m for m in modules if importlib.util.find_spec(m) is None]


def require_extra(*modules: str) -> None:
    """Raise one plain sentence when a module of the eval extra is missing."""
    absent = missing_extra(modules or EXTRA_MODULES)
    if absent:
        raise FacenetPhotosError(
            f"The evaluation tools need the eval extra ({', '.join(absent)} missing): {INSTALL_HINT}"
        )
