"""The networks: the registry of bundled models with their SHA-256 checks, ONNX graph rewrites, and
the int8 storage of embeddings."""
