"""What the regrouping after a "same person?" answer costs on a big library (docs/benchmarks.md).

    python bench/answer_regroup_cost.py [--faces 20000] [--rounds 5]

A library of ``--faces`` faces (one photo each) is made from the development libraries' SFace embeddings
(``bench/family_sets.py --make``; repeated with a little noise up to the size, each copy its own people),
grouped with the defaults. Each round answers the queue's first pair question yes three ways, interleaved,
and undoes it again: without a regrouping (``QuestionConfig.regroup_every = 0``), with the regrouping near
the answer (``regroup_every = 1``: the answered groups and their 12 nearest unnamed groups), and with the whole
library regrouped in the same step (``regroup_neighbours = 0``). Reported: CPU seconds of the answer call
(median over the rounds) and the faces the regrouping looked at.
"""

from __future__ import annotations

import benchlib

benchlib.pin_blas_threads(1)

import argparse  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from family_sets import DEFAULT_CACHE, libraries, load_cache  # noqa: E402
from simulate_answers import build_library  # noqa: E402


def big_embeddings(n: int, seed: int = 0) -> np.ndarray:
    emb = np.concatenate([lib.emb for lib in libraries(load_cache(DEFAULT_CACHE))])
    rng = np.random.default_rng(seed)
    parts = [emb]
    while sum(len(p) for p in parts) < n:
        noisy = emb + rng.normal(0, 0.02, emb.shape).astype(np.float32)
        parts.append(noisy / np.linalg.norm(noisy, axis=1, keepdims=True))
    return np.concatenate(parts)[:n].astype(np.float32)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--faces", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args(argv)
    from engine.grouping.people import near_faces
    from engine.grouping.same_person import QuestionConfig

    ways = {"no regrouping": QuestionConfig(regroup_every=0),
            "near the answer (12 groups)": QuestionConfig(regroup_every=1),
            "whole library": QuestionConfig(regroup_every=1, regroup_neighbours=0)}
    times: dict[str, list[float]] = {w: [] for w in ways}
    looked: list[int] = []
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        lib = build_library(Path(tmp), big_embeddings(args.faces))
        print(f"{args.faces} faces, {len(lib.people(include_hidden=True))} groups, made in "
              f"{time.perf_counter() - t0:.0f} s", flush=True)
        try:
            for r in range(args.rounds):
                q = next(q for q in lib.same_person_questions(50, QuestionConfig(ask_faces=False))
                         if q.kind == "pair")
                with lib.store.session() as s:
                    looked.append(len(near_faces(s, [q.person_a, q.person_b], lib.cluster_config().threshold)))
                for name, cfg in ways.items():
                    c0 = time.process_time()
                    lib.answer(q.id, "yes", cfg)
                    times[name].append(time.process_time() - c0)
                    lib.undo()
                print(f"round {r + 1}: " + ", ".join(f"{w} {v[-1]:.3f} s" for w, v in times.items()), flush=True)
                lib.answer(q.id, "no", ways["no regrouping"])  # the next round asks another pair
        finally:
            lib.close()
    base = np.median(times["no regrouping"])
    print(f"\nCPU seconds per answer, median of {args.rounds} rounds ({args.faces} faces; the regrouping near "
          f"the answer looked at {int(np.median(looked))} faces, median):")
    for w, v in times.items():
        print(f"| {w} | {np.median(v):.3f} s | +{np.median(v) - base:.3f} s |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
