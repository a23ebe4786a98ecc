"""How long the app takes to start the work, before the first photo: loading the networks, opening a library.

    python bench/startup.py [--rounds 5]

Each measurement is a fresh process (what a user's command is), interleaved over the rounds:

* ``networks, made``: ``Embedder()`` and ``FaceDetector()`` with the prepared-network cache off
  (``FACENET_PHOTOS_CACHE=off``): the bundled files rewritten at every start, as before the cache;
* ``networks, cached``: the same with a warm cache (engine/models/prepared.py);
* ``people``: ``facenet-photos people`` on a library of the bundled sample (import it once), the whole
  command as a user runs it.

Prints the median wall seconds of each and the ratio made / cached.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchlib import REPO

NETWORKS = ("from engine.pipeline.embed import Embedder; from engine.pipeline.detect import FaceDetector; "
            "Embedder(); FaceDetector()")


def timed(cmd: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, capture_output=True, cwd=REPO)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        base = {**os.environ, "PYTHONPATH": str(REPO)}
        cached_env = {**base, "FACENET_PHOTOS_CACHE": str(Path(tmp) / "cache")}
        made_env = {**base, "FACENET_PHOTOS_CACHE": "off"}
        lib = str(Path(tmp) / "lib")
        cli = [sys.executable, "-m", "app.cli", "--library", lib]
        subprocess.run([*cli, "import", str(REPO / "resources" / "sample")], env=cached_env, check=True,
                       capture_output=True, cwd=REPO)  # the library, and a warm cache
        runs: dict[str, list[float]] = {"networks, made": [], "networks, cached": [], "people": []}
        for r in range(args.rounds):
            runs["networks, made"].append(timed([sys.executable, "-c", NETWORKS], made_env))
            runs["networks, cached"].append(timed([sys.executable, "-c", NETWORKS], cached_env))
            runs["people"].append(timed([*cli, "people"], cached_env))
            print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in runs.items()), flush=True)
    med = {k: statistics.median(v) for k, v in runs.items()}
    print(f"\nmedian of {args.rounds} rounds, wall seconds of a fresh process (load average "
          f"{os.getloadavg()[0]:.1f}):")
    print("| measurement | seconds |\n|---|---:|")
    for k, v in med.items():
        print(f"| {k} | {v:.2f} |")
    print(f"\nnetworks made / cached: {med['networks, made'] / med['networks, cached']:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
