"""``models --activate`` is a step in the library's history: ``history`` names it, ``undo`` switches back and
says how many faces a re-embed brings to the previous model, and ``reembed`` does it."""

from __future__ import annotations

import json

import numpy as np

from conftest import run_cli as fp

SFACE_ID = "sface-2021dec-int8bq"


def test_cli_model_switch_is_undone_and_reembedded(tmp_path, sample_dir):
    from engine.models.registry import SFACE, prepared_model_bytes
    from engine.services.library import Library
    from training.pack_head import graph_with_linear_head

    lib = tmp_path / "lib"
    fp("import", sample_dir, lib=lib, check=0)
    q, _ = np.linalg.qr(np.random.default_rng(3).normal(size=(128, 128)))
    path = tmp_path / "turned.onnx"
    turned = graph_with_linear_head(prepared_model_bytes(SFACE), q.astype(np.float32), np.zeros(128, np.float32))
    path.write_bytes(turned)
    with Library(lib) as library:
        library.register_model(path, "sface-turned")
    fp("models", "--activate", "sface-turned", lib=lib, check=0)
    assert "6/6 faces re-embedded with sface-turned" in fp("reembed", lib=lib, check=0).stdout
    history = json.loads(fp("history", "--json", lib=lib, check=0).stdout)
    assert history[0] == {"id": history[0]["id"], "edit": f"Face model: sface-turned instead of {SFACE_ID}",
                          "undone": False}

    r = fp("undo", lib=lib, check=0)
    assert f"Undone: Face model: sface-turned instead of {SFACE_ID}" in r.stdout
    assert f"The active face model is now {SFACE_ID}; run 'facenet-photos reembed' to bring 6 faces to it" in r.stderr
    models = json.loads(fp("models", "--json", lib=lib, check=0).stdout)
    assert [m["id"] for m in models if m["active"] and m["kind"] == "embedder"] == [SFACE_ID]
    assert f"6/6 faces re-embedded with {SFACE_ID}" in fp("reembed", lib=lib, check=0).stdout

    # The file of the model a redo would bring back is altered: refused in plain words, nothing changes.
    (lib / "models" / "sface-turned.onnx").write_bytes(b"changed")
    r = fp("redo", lib=lib, check=1)
    assert "sface-turned.onnx has the wrong checksum" in r.stderr and "Traceback" not in r.stderr
    assert json.loads(fp("history", "--json", lib=lib, check=0).stdout)[0]["undone"] is True
