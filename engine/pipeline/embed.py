"""Face embeddings (SFace, or a registered or pack model) through onnxruntime, batched, L2-normalised."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from engine.config import EmbedConfig
from engine.errors import ModelError
from engine.models.accel import make_session, on_gpu
from engine.models.onnx_rewrite import prelu_as_relu_mix
from engine.models.prepared import prepared_bytes
from engine.models.registry import SFACE, ModelSpec, prepared_model_bytes, verified_path


def runtime_graph(spec: ModelSpec, path: Path | None = None) -> bytes:
    """The embedding graph onnxruntime runs: the checked file made to take 0..255 RGB NCHW with a dynamic
    batch, PRelu rewritten (``prelu_as_relu_mix``); kept on disk between runs (``engine.models.prepared``)."""
    verified_path(spec, path)  # the source is checked every time, before its prepared form is looked up
    return prepared_bytes(f"embed-{spec.graph}-prelu-mix", spec.sha256,
                          lambda: prelu_as_relu_mix(prepared_model_bytes(spec, path)))


def l2_normalise(x: np.ndarray, axis: int = -1) -> np.ndarray:
    n = np.linalg.norm(x, axis=axis, keepdims=True)
    return x / np.maximum(n, 1e-12)


class Embedder:
    """Maps aligned 112x112 RGB uint8 faces to unit float32 vectors (128-D for SFace, ``spec.embedding_dim``).

    onnxruntime sessions are thread-safe for ``run``; one instance may be shared.
    """

    def __init__(self, config: EmbedConfig | None = None, spec: ModelSpec = SFACE, path: Path | None = None):
        import onnxruntime as ort

        self.config = config or EmbedConfig()
        self.spec = spec
        self.path = path  # None: the bundled file (a new model built on this one reads its graph from here)
        self.model_id = spec.model_id
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        # Spinning worker threads steal the cores that decode and detect photos meanwhile.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        # One network thread per call; ``threads`` calls run side by side instead (see embed). Splitting
        # each call over onnxruntime's own threads cost 18-25 % more CPU a face on SFace (20.4 against
        # 16.9 ms, 2 cores): its threads meet at every layer, a whole call per thread never waits.
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        self.parallel = max(1, self.config.threads or os.cpu_count() or 1)
        try:
            self._sess, self.fallback_message = make_session(
                runtime_graph(spec, path), opts, self.config.use_gpu
            )
        except ModelError:
            raise
        except Exception as exc:
            raise ModelError(f"cannot load embedding model {spec.filename}: {exc}") from exc
        self._input = self._sess.get_inputs()[0].name
        self.dim = spec.embedding_dim
        # On the GPU a call costs about the same for 8 faces as for 64: give it the whole batch.
        self.on_gpu = on_gpu(self._sess)
        self.batch_size = max(64, self.config.batch_size) if self.on_gpu else max(1, self.config.batch_size)

    def embed(self, faces: np.ndarray, *, here: bool = False) -> np.ndarray:
        """faces: (N, 112, 112, 3) uint8 RGB -> (N, dim) float32 unit vectors. ``here``: every network
        call on the calling thread, one after another (for a caller that is itself one of several
        workers, one per core: side-by-side calls would only crowd the same cores)."""
        faces = np.asarray(faces)
        if faces.ndim == 3:
            faces = faces[None]
        if len(faces) == 0:
            return np.zeros((0, self.dim), np.float32)
        bs = self.batch_size
        chunks = [faces[i : i + bs] for i in range(0, len(faces), bs)]
        n = 1 if self.on_gpu or here else min(self.parallel, len(chunks))
        if n == 1:
            out = [self._run(c) for c in chunks]
        else:
            # onnxruntime's run is thread-safe; the pool lives only for this call, so no thread
            # outlives it. map keeps the order of the faces.
            with ThreadPoolExecutor(n, thread_name_prefix="facenet-embed") as pool:
                out = list(pool.map(self._run, chunks))
        return l2_normalise(np.concatenate(out).astype(np.float32))

    def _run(self, faces: np.ndarray) -> np.ndarray:
        x = faces.astype(np.float32).transpose(0, 3, 1, 2)
        y = self._sess.run(None, {self._input: np.ascontiguousarray(x)})[0]
        if self.config.flip:
            mirrored = np.ascontiguousarray(x[:, :, :, ::-1])
            y = l2_normalise(y) + l2_normalise(self._sess.run(None, {self._input: mirrored})[0])
        return y


def known_embedder(model_id: str, config: EmbedConfig | None = None) -> Embedder:
    """The embedder of a model known without a library: the bundled SFace or an installed pack.
    ModelError in one line for an unknown id or a pack that is not installed."""
    from engine.models.packs import PACKS, pack_path

    if model_id in (SFACE.model_id, "sface"):
        return Embedder(config)
    pack = PACKS.get(model_id)
    if pack is None:
        known = ", ".join([SFACE.model_id, *PACKS])
        raise ModelError(f"unknown model {model_id!r} (known without a library: {known})")
    return Embedder(config, spec=pack.spec, path=pack_path(pack))
