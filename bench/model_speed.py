"""ms per face of the embedding models on one thread, interleaved rounds (the machine is shared).

    python bench/model_speed.py --models sface,arcface-mbf --rounds 7

Each round embeds the same 64 aligned sample faces (the bundled portraits and mirror images, repeated)
with each model in turn, batches of 8 as imports do; the report is the median and the best round per
model and the ratio of medians.
"""

from __future__ import annotations

import argparse
import json
import time

import benchlib  # noqa: F401  (repository path)
import numpy as np


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="sface,arcface-mbf")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--faces", type=int, default=64)
    args = ap.parse_args(argv)

    from engine.config import EmbedConfig
    from engine.pipeline.embed import known_embedder
    from engine.services.library import _probe_faces

    base = _probe_faces()
    faces = np.concatenate([base] * (args.faces // len(base) + 1))[: args.faces]
    models = {m: known_embedder(m, EmbedConfig(threads=1, batch_size=8)) for m in args.models.split(",")}
    times: dict[str, list[float]] = {m: [] for m in models}
    for m in models.values():
        m.embed(faces[:8])  # warm-up
    for _ in range(args.rounds):
        for name, m in models.items():
            t = time.perf_counter()
            m.embed(faces)
            times[name].append(1000 * (time.perf_counter() - t) / len(faces))
    out = {n: {"median_ms": round(float(np.median(v)), 2), "best_ms": round(float(np.min(v)), 2)}
           for n, v in times.items()}
    names = list(models)
    if len(names) == 2:
        out["ratio_median"] = round(out[names[1]]["median_ms"] / out[names[0]]["median_ms"], 3)
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
