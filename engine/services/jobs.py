"""Long work that the front ends start by name: a job yields progress and honours a cancel token.

A job is registered by the package that provides it, through the ``facenet_photos.jobs`` entry point
group (``name = "package.module:factory"``, the factory returning a :class:`JobSpec`), or in-process
with :func:`register`. The CLI and the GUI know jobs only by name, so neither imports the package
that runs them: the training package registers "learn-from-corrections" this way and the app never
imports torch to offer the button.

A job's ``run(library, cancel, **options)`` is a generator: each item is a progress record with a
``stage`` (a :class:`~engine.services.progress.Stage`) and a ``message``; the last one carries the
result. ``available()`` says in words why the job cannot run here ("" when it can); it may be slow
(import a framework), so front ends call it off their UI thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib.metadata import entry_points

from engine.errors import FacenetPhotosError

ENTRY_POINT_GROUP = "facenet_photos.jobs"

# A cancel token: the job stops at its next safe point once it is set.
CancelToken = threading.Event


@dataclass(frozen=True)
class JobSpec:
    name: str
    title: str  # what a person reads ("Learn from my corrections")
    run: Callable[..., Iterator[object]]  # run(library, cancel, **options)
    available: Callable[[], str] = lambda: ""


_registered: dict[str, JobSpec] = {}


def register(spec: JobSpec) -> JobSpec:
    """Register a job in this process (entry points are found without it)."""
    _registered[spec.name] = spec
    return spec


def unregister(name: str) -> None:
    _registered.pop(name, None)


def _from_entry_points() -> dict[str, Callable[[], JobSpec]]:
    return {ep.name: ep.load for ep in entry_points(group=ENTRY_POINT_GROUP)}


def job_names() -> list[str]:
    return sorted(set(_registered) | set(_from_entry_points()))


def find_job(name: str) -> JobSpec:
    """The job called ``name``; FacenetPhotosError in plain words when it is not installed."""
    if name in _registered:
        return _registered[name]
    factories = _from_entry_points()
    if name not in factories:
        raise FacenetPhotosError(f"No job called {name!r} is installed (known: {', '.join(job_names()) or 'none'})")
    try:
        spec = factories[name]()()
    except Exception as exc:  # a broken optional package must not break the app
        raise FacenetPhotosError(f"The job {name!r} could not be loaded: {exc}") from exc
    if not isinstance(spec, JobSpec) or spec.name != name:
        raise FacenetPhotosError(f"The entry point for {name!r} does not describe that job")
    return spec


def job_unavailable(name: str) -> str:
    """Why the job cannot run here, in words; "" when it can."""
    try:
        return find_job(name).available()
    except FacenetPhotosError as exc:
        return str(exc)


def run_job(name: str, library, cancel: CancelToken | None = None, **options) -> Iterator[object]:
    """Run a job by name: its progress items, the last one with the result."""
    spec = find_job(name)
    why = spec.available()
    if why:
        raise FacenetPhotosError(f"{spec.title} is not available: {why}")
    yield from spec.run(library, cancel if cancel is not None else CancelToken(), **options)
