"""The jobs this package gives the app (registered through the ``facenet_photos.jobs`` entry point).

Torch-free at import: the app lists and offers the jobs without loading PyTorch."""

from __future__ import annotations

import os
from dataclasses import fields
from pathlib import Path

from engine.services.jobs import JobSpec

LEARN = "learn-from-corrections"
# The LFW folder for the "not worse on LFW" gate: a setting of the library (``lfw_dir``), or this
# environment variable; the job never looks for data sets next to the source tree.
LFW_ENV = "FACENET_PHOTOS_LFW"


def _torch_missing() -> str:
    # Importing is the only honest test (a broken or partial install is found too); it is slow, so
    # front ends ask off their UI thread.
    try:
        import torch  # noqa: F401
    except ImportError:
        return "it needs PyTorch, which is not installed (pip install 'facenet-photos[train]')"
    return ""


def lfw_dir_for(library, explicit: Path | str | None = None) -> Path | None:
    """The LFW folder for the gate: the option, else the library's ``lfw_dir`` setting, else $FACENET_PHOTOS_LFW."""
    value = explicit or library.get_setting("lfw_dir") or os.environ.get(LFW_ENV)
    return Path(value).expanduser() if value else None


METHODS = ("adapter", "finetune")


def _learn(library, cancel, method: str = "adapter", **options):
    """``method``: "adapter" (the default: a linear adapter on the active model's embeddings, the
    measured gain on lag-dev, training/adapter.py) or "finetune" (SFace's last block and head with the
    harmonic loss, training/personalise.py; 128-D SFace-based models only)."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r} for {LEARN} (known: {', '.join(METHODS)})")
    if method == "adapter":
        from training.adapter import AdapterConfig as Config
        from training.adapter import learn_adapter as learn
    else:
        from training.personalise import PersonaliseConfig as Config
        from training.personalise import learn_from_corrections as learn

    known = {f.name for f in fields(Config)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ValueError(f"unknown options for {LEARN} ({method}): {', '.join(unknown)}")
    options["lfw_dir"] = lfw_dir_for(library, options.get("lfw_dir"))
    yield from learn(library, cancel=cancel, config=Config(**options))


def learn_from_corrections_job() -> JobSpec:
    return JobSpec(LEARN, "Learn from my corrections", _learn, _torch_missing)
