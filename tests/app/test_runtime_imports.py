"""The app runs without the optional extras: using the command line and opening the desktop app's
modules loads neither the evaluation harness (matplotlib, scikit-learn, hdbscan) nor torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import ROOT

_SCRIPT = """
import json, sys
from app.cli import main
main(["-L", sys.argv[1], "import", sys.argv[2]])
main(["-L", sys.argv[1], "people", "--json"])
import app.gui.main_window, app.gui.review_page  # noqa: F401
optional = ("matplotlib", "sklearn", "hdbscan", "torch", "evals", "training")
print(json.dumps(sorted({m.split(".")[0] for m in sys.modules if m.split(".")[0] in optional})))
"""


def test_cli_and_gui_modules_load_no_optional_extra(tmp_path, sample_dir):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "QT_QPA_PLATFORM": "offscreen"}
    r = subprocess.run([sys.executable, "-c", _SCRIPT, str(tmp_path / "lib"), str(sample_dir)], env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.strip().splitlines()[-1]) == []
