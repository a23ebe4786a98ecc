"""Training, fine-tuning and exporting face-embedding models (needs the ``train`` extra: torch).

The ``engine`` package never imports this one; the only bridge between the two is an exported
ONNX file plus its SHA-256 (see :mod:`training.export`).
"""
