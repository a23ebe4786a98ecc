"""The `train` and `models` commands."""

from __future__ import annotations

import json
import os

from conftest import ROOT
from conftest import run_cli as fp


def test_models_lists_the_active_embedder(imported):
    root = imported.root
    imported.close()
    rows = json.loads(fp("models", "--json", lib=root, check=0).stdout)
    active = [m["id"] for m in rows if m["active"] and m["kind"] == "embedder"]
    assert active == ["sface-2021dec-int8bq"]
    table = fp("models", lib=root, check=0).stdout
    assert "sface-2021dec-int8bq" in table and rows[0]["sha256"][:12] in table


def test_train_refuses_without_named_people(imported):
    root = imported.root
    imported.close()
    r = fp("train", "--from-library", "--max-steps", "1", "--no-lfw", lib=root, check=0)
    assert "not activated" in r.stdout and "named people" in r.stdout
    r = fp("train", lib=root, check=2)
    assert "--from-library" in r.stderr


def test_train_without_torch_is_one_line(imported, tmp_path):
    root = imported.root
    imported.close()
    fake = tmp_path / "fake"
    (fake / "torch").mkdir(parents=True)
    stub = "raise ModuleNotFoundError(\"No module named 'torch'\", name='torch')\n"
    (fake / "torch" / "__init__.py").write_text(stub)
    r = fp("train", "--from-library", lib=root, env_extra={"PYTHONPATH": f"{fake}{os.pathsep}{ROOT}"}, check=1)
    assert "needs PyTorch" in r.stderr and "Traceback" not in r.stderr
    # the install hint survives the console's markup ("[train]" is not a style tag)
    assert "pip install 'facenet-photos[train]'" in r.stderr
