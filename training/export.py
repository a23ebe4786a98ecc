"""Export a trained embedding model to ONNX for the engine, and check it.

The exported graph takes ``data`` (N, 3, 112, 112) float RGB 0..255, with a dynamic batch axis, and
returns ``fc1`` (N, D) raw embeddings, exactly like the bundled SFace graph, so the engine's
:class:`engine.pipeline.embed.Embedder` can load it given a :class:`engine.models.registry.ModelSpec` carrying the
file's SHA-256 (:func:`model_spec`). :func:`parity` compares torch and onnxruntime on real faces.

Command line::

    python -m training.export results/sface-ft.pt results/sface-ft.onnx
"""

from __future__ import annotations

import argparse
import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from engine.checksums import sha256_file

PARITY_TOLERANCE = 1e-4


@dataclass(frozen=True)
class ExportResult:
    path: Path
    sha256: str
    max_abs_diff: float | None  # raw embeddings, torch vs onnxruntime
    min_cosine: float | None


def export_onnx(model: nn.Module, path: Path, opset: int = 17) -> Path:
    """Write ``model`` (eval mode, CPU, fp32) as a single-file ONNX graph with a dynamic batch axis."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval().to("cpu").float()
    size = getattr(model, "input_size", 112)
    dummy = torch.rand(2, 3, size, size) * 255.0
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (dummy,),
            buf,
            input_names=["data"],
            output_names=["fc1"],
            dynamic_axes={"data": {0: "batch"}, "fc1": {0: "batch"}},
            opset_version=opset,
            dynamo=False,
            do_constant_folding=True,
        )
    import onnx

    onnx.checker.check_model(onnx.load_from_string(buf.getvalue()))
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(buf.getvalue())
    tmp.replace(path)
    return path


def onnx_embed_raw(path: Path, crops: np.ndarray, batch: int = 64) -> np.ndarray:
    """Raw (unnormalised) outputs of an ONNX embedder on (N, 112, 112, 3) uint8 crops."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    out = []
    for i in range(0, len(crops), batch):
        x = np.ascontiguousarray(crops[i : i + batch].astype(np.float32).transpose(0, 3, 1, 2))
        out.append(sess.run(None, {name: x})[0])
    return np.concatenate(out)


@torch.inference_mode()
def torch_embed_raw(model: nn.Module, crops: np.ndarray, batch: int = 64) -> np.ndarray:
    model = model.eval().to("cpu")
    out = []
    for i in range(0, len(crops), batch):
        x = torch.from_numpy(np.ascontiguousarray(crops[i : i + batch])).permute(0, 3, 1, 2).float()
        out.append(model(x).numpy())
    return np.concatenate(out)


def parity(model: nn.Module, path: Path, crops: np.ndarray) -> tuple[float, float]:
    """(max |torch - onnxruntime| on raw embeddings, min cosine) over ``crops``."""
    a = torch_embed_raw(model, crops)
    b = onnx_embed_raw(path, crops)
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return float(np.abs(a - b).max()), float(cos.min())


def export_and_check(
    model: nn.Module, path: Path, crops: np.ndarray | None = None, tolerance: float = PARITY_TOLERANCE
) -> ExportResult:
    """Export, compare on ``crops`` (raise if max abs diff > tolerance) and hash the file."""
    export_onnx(model, path)
    diff = cos = None
    if crops is not None and len(crops):
        diff, cos = parity(model, path, crops)
        if diff > tolerance:
            raise RuntimeError(f"ONNX export differs from torch by {diff:.2e} (> {tolerance:g})")
    return ExportResult(Path(path), sha256_file(path), diff, cos)


def model_spec(path: Path, model_id: str, embedding_dim: int = 128):
    """An engine ModelSpec for an exported file (pins its SHA-256), for ``Embedder(spec, path)``."""
    from engine.models.registry import ModelSpec

    path = Path(path)
    return ModelSpec(model_id, path.name, "embedder", sha256_file(path), embedding_dim, 112)


def main(argv: list[str] | None = None) -> None:
    from .data import SHARED_DATA, load_folder
    from .train import load_checkpoint

    ap = argparse.ArgumentParser(description="Export a training checkpoint to ONNX and check parity.")
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument(
        "--faces",
        type=Path,
        default=SHARED_DATA / "att_faces",
        help="folder of identity sub-folders used for the parity check",
    )
    args = ap.parse_args(argv)
    model, _ = load_checkpoint(args.checkpoint)
    crops = load_folder(args.faces).crops[:64] if args.faces.is_dir() else None
    res = export_and_check(model, args.out, crops)
    print(f"wrote {res.path}  sha256 {res.sha256}  max|diff| {res.max_abs_diff}  min cos {res.min_cosine}")


if __name__ == "__main__":
    main()
