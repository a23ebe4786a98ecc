"""`models` with the arcface pack, and `eval lag` on a tiny labels.tsv made from the sample portraits."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace

from typer.testing import CliRunner

from conftest import ROOT, SAMPLE


def run_cli(*args, lib=None):
    cmd = [sys.executable, "-m", "app.cli", *(["--library", str(lib)] if lib else []), *map(str, args)]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)


def test_models_lists_the_pack_with_its_licence_and_thresholds(tmp_path):
    r = run_cli("models", lib=tmp_path / "lib")
    assert r.returncode == 0, r.stderr
    assert "arcface-mbf" in r.stdout and "NON-COMMERCIAL" in r.stdout and "same person 1.33" in r.stdout
    rows = {m["id"]: m for m in json.loads(run_cli("models", "--json", lib=tmp_path / "lib").stdout)}
    assert rows["arcface-mbf"]["dim"] == 512 and not rows["arcface-mbf"]["active"]
    assert rows["arcface-mbf"]["thresholds"]["verify"] > 0
    assert rows["sface-2021dec-int8bq"]["active"]
    h128 = rows["arcface-mbf-h128"]
    assert h128["status"].startswith("not built: build it with bench/mbf_head_cache.py and bench/mbf_head_variants.py")
    assert h128["dim"] == 128 and h128["compatible_with"] == "sface-2021dec-int8bq"


def test_the_harmonic_head_model_says_how_to_build_it_and_register_needs_an_id(tmp_path):
    from app.cli import common

    runner = CliRunner()
    lib = ["--library", str(tmp_path / "lib")]
    r = runner.invoke(common.cli, [*lib, "models", "--activate", "arcface-mbf-h128"])
    assert r.exit_code == 1 and "arcface-mbf-h128 is not built in this library yet" in r.output
    assert "models --register FILE --id arcface-mbf-h128" in r.output
    r = runner.invoke(common.cli, [*lib, "models", "--register", str(tmp_path / "x.onnx")])
    assert r.exit_code == 1 and "--register needs --id" in r.output
    r = runner.invoke(common.cli, [*lib, "models", "--register", str(tmp_path / "x.onnx"), "--id", "mine"])
    assert r.exit_code == 1 and "model file not found" in r.output


def test_activating_the_pack_without_the_extra_says_in_one_line_what_to_install(tmp_path, monkeypatch):
    from app.cli import common
    from engine.models import packs

    monkeypatch.setitem(packs.PACKS, "arcface-mbf",
                        replace(packs.ARCFACE_MBF, distribution="facenet-photos-no-such-wheel"))
    r = CliRunner().invoke(common.cli, ["--library", str(tmp_path / "lib"), "models", "--activate", "arcface-mbf"])
    assert r.exit_code == 1
    lines = [x for x in r.output.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: arcface-mbf is not installed")
    assert 'pip install "facenet-photos[arcface]"' in lines[0]


def _tiny_lag(tmp_path):
    """Ardern and Macron as young (earlier photo) and adult, Obama only young, Sunak only adult."""
    root = tmp_path / "lag"
    (root / "images").mkdir(parents=True)
    rows = [("ardern_2018.jpg", "ardern", "young"), ("ardern_2022.jpg", "ardern", "adult"),
            ("macron_2014.jpg", "macron", "young"), ("macron_2025.jpg", "macron", "adult"),
            ("obama.jpg", "obama", "young"), ("sunak.jpg", "sunak", "adult")]
    for f, _, _ in rows:
        shutil.copy2(SAMPLE / f, root / "images" / f)
    (root / "labels.tsv").write_text("file\tidentity\tage\n" + "".join(f"{f}\t{i}\t{a}\n" for f, i, a in rows))
    return root


def test_eval_lag_on_a_tiny_labels_file(tmp_path):
    root = _tiny_lag(tmp_path)
    out = tmp_path / "out"
    r = run_cli("eval", "lag", "--lag", root, "--out", out, "--folds", "2")
    assert r.returncode == 0, r.stderr
    res = json.loads((out / "lag_result.json").read_text())
    assert res["model"] == "sface-2021dec-int8bq"
    assert res["n_faces"] == 6 and res["n_identities"] == 4 and res["n_positive_pairs"] == 2
    assert res["n_impostor_pairs"] == 3 * 3 - 2  # every young x adult pair of two identities
    assert res["auc"] == 1.0 and res["tar_at_far"] == 1.0  # these portraits are easy for SFace
    assert res["detection"]["detected"] == 6
    assert "young vs adult 2-fold accuracy" in r.stdout and "TAR@FAR=0.001 100.00 %" in r.stdout
    assert str(tmp_path) not in (out / "lag_result.json").read_text()  # relative names only


def test_eval_lag_refuses_a_bad_labels_file_in_plain_words(tmp_path):
    root = _tiny_lag(tmp_path)
    (root / "labels.tsv").write_text("file\tidentity\tage\nobama.jpg\tobama\tchild\n")
    r = run_cli("eval", "lag", "--lag", root, "--out", tmp_path / "out")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "age must be 'young' or 'adult', not 'child'" in r.stderr
    r = run_cli("eval", "lag", "--lag", tmp_path / "nowhere", "--out", tmp_path / "out")
    assert r.returncode == 1 and "labels.tsv not found" in r.stderr
