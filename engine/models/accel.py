"""Where the networks run: onnxruntime's CPU provider, or CUDA when the library's "Use GPU" is on.

The CPU is the default. With the ``gpu`` extra (onnxruntime-gpu) and an NVIDIA driver, the detector
and the embedder run on the CUDA execution provider; when CUDA is asked for but is not there (the
plain onnxruntime wheel, no driver, missing CUDA libraries), the networks run on the CPU and
:data:`GPU_FALLBACK` says so in one line instead of onnxruntime's own warnings.
"""

from __future__ import annotations

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
GPU_FALLBACK = (
    "Use GPU is on, but CUDA is not available to onnxruntime here (it needs the 'gpu' extra, "
    "onnxruntime-gpu, and an NVIDIA driver): running on the CPU."
)


def cuda_available() -> bool:
    """Whether this onnxruntime build offers CUDA at all (its libraries may still fail to load)."""
    try:
        import onnxruntime as ort

        return CUDA in ort.get_available_providers()
    except Exception:
        return False


def make_session(model: bytes, options, use_gpu: bool):
    """(session, fallback message or None). Only CUDA is tried besides the CPU: TensorRT and
    others need their own set-up and would print errors for a plain install."""
    import onnxruntime as ort

    if not use_gpu:
        return ort.InferenceSession(model, options, providers=[CPU]), None
    if not cuda_available():
        return ort.InferenceSession(model, options, providers=[CPU]), GPU_FALLBACK
    sess = ort.InferenceSession(model, options, providers=[CUDA, CPU])
    # onnxruntime falls back to the CPU by itself when the CUDA libraries cannot be loaded.
    return sess, (None if CUDA in sess.get_providers() else GPU_FALLBACK)


def on_gpu(session) -> bool:
    return CUDA in session.get_providers()
