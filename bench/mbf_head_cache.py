"""Cache the arcface-mbf trunk's features of every LFW pair image and lag-dev face: original, mirrored and
phone-degraded, for the head experiments of bench/mbf_head_variants.py.

The faces are cut again from the landmarks that ``facenet-photos eval lfw / eval lag --model arcface-mbf``
stored (no detection is repeated, so the crops are those of the evals; the script checks that its
original-crop embeddings match the cached ones). Each crop goes once through the pack's graph, which
returns two tensors: the 64 x 7 x 7 map before the trunk's own 512-D layer (``fc``, a Gemm, then a
BatchNorm) and the 512-D output. The degraded version is ``evals.family.degrade`` of the whole image
(downscaled, JPEG 25-70, sometimes cut off or covered), then cut with the same landmarks.

    python bench/mbf_head_cache.py --cache CACHE      # writes CACHE/mbf-features.npz (about 200 MB)

The features are derived from the pack's non-commercial weights and research data: keep them outside
the repository, as the eval caches.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import benchlib  # noqa: F401  (puts the repository on sys.path)
import numpy as np
from benchlib import LFW, SHARED_DATA

LAG = SHARED_DATA / "lag-dev"
FEATURE_MAP = "513"  # the PRelu output before Flatten -> Gemm(fc) -> BatchNorm in w600k_mbf
VIEWS = ("orig", "flip", "degraded")


def trunk_session(threads: int):
    """The pack's checked graph with the pre-``fc`` feature map as a second output."""
    import onnx
    import onnxruntime as ort
    from onnx import helper

    from engine.models.packs import ARCFACE_MBF, pack_path
    from engine.models.registry import arcface_graph

    model = onnx.load_from_string(arcface_graph(Path(pack_path(ARCFACE_MBF)).read_bytes()))
    names = [n.op_type for n in model.graph.node[-3:]]
    if names != ["Flatten", "Gemm", "BatchNormalization"] or model.graph.node[-3].input[0] != FEATURE_MAP:
        raise SystemExit(f"unexpected end of the arcface-mbf graph: {names}")
    model.graph.output.append(helper.make_tensor_value_info(FEATURE_MAP, onnx.TensorProto.FLOAT, None))
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def views(path: Path, landmarks: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    from engine.pipeline.align import align_face
    from engine.pipeline.decode import decode
    from evals.family import degrade

    rgb, scale = decode(path, None)
    if scale != 1.0:
        raise SystemExit(f"{path} was decoded scaled; the cached landmarks would not fit")
    crop = align_face(rgb, landmarks)
    bad, _ = degrade(rgb, rng)
    return [crop, np.ascontiguousarray(crop[:, ::-1]), align_face(bad, landmarks)]


def embed_all(sess, files: list[Path], landmarks: np.ndarray, seed: int, batch: int = 32):
    rng = np.random.default_rng(seed)
    out512 = np.zeros((len(files), len(VIEWS), 512), np.float32)
    fmap = np.zeros((len(files), len(VIEWS), 64 * 7 * 7), np.float16)
    t0 = time.perf_counter()
    for i in range(0, len(files), batch):
        crops = []
        for j in range(i, min(i + batch, len(files))):
            crops.extend(views(files[j], landmarks[j], rng))
        x = np.ascontiguousarray(np.stack(crops).astype(np.float32).transpose(0, 3, 1, 2))
        y, f = sess.run(None, {"data": x})
        n = len(crops) // len(VIEWS)
        out512[i : i + n] = y.reshape(n, len(VIEWS), 512)
        fmap[i : i + n] = f.reshape(n, len(VIEWS), -1).astype(np.float16)
        if (i // batch) % 20 == 0:
            print(f"  {i + n}/{len(files)} faces, {time.perf_counter() - t0:.0f} s", flush=True)
    return out512, fmap


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cache", type=Path, required=True, help="folder with lfw-arcface/ and lag-arcface/")
    ap.add_argument("--lfw", type=Path, default=LFW)
    ap.add_argument("--lag", type=Path, default=LAG)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--limit", type=int, default=0, help="only the first N faces of each set (a smoke test)")
    args = ap.parse_args(argv)

    sess = trunk_session(args.threads)
    result = {}
    for name, root in (("lfw", args.lfw / "images"), ("lag", args.lag / "images")):
        z = np.load(args.cache / f"{name}-arcface" / f"{name}_embeddings.npz", allow_pickle=True)
        rel = [str(p) for p in z["paths"]]
        n = args.limit or len(rel)
        print(f"{name}: {n} faces x {len(VIEWS)} views", flush=True)
        e512, fmap = embed_all(sess, [root / r for r in rel[:n]], z["landmarks"][:n], seed=0 if name == "lfw" else 1)
        unit = e512[:, 0] / np.linalg.norm(e512[:, 0], axis=1, keepdims=True)
        cos = (unit * z["emb"][:n]).sum(1)
        print(f"{name}: cosine with the eval's cached embeddings min {cos.min():.5f} median {np.median(cos):.5f}")
        result.update({f"{name}_paths": np.array(rel[:n]), f"{name}_emb": e512, f"{name}_fmap": fmap,
                       f"{name}_cos_check": cos})
    out = args.cache / ("mbf-features.npz" if not args.limit else "mbf-features-smoke.npz")
    np.savez(out, views=np.array(VIEWS), **result)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
