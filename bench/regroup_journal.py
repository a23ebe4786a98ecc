"""What journaling a regroup costs: the same regroup with and without its journal entry, interleaved.

    python bench/regroup_journal.py [--faces 20000] [--rounds 3]

A synthetic library (random identities, 128-D unit embeddings stored as the library stores them) is
regrouped at a strict then a loose threshold, so every regroup moves most faces; each round runs that pair
with the plain ``engine.grouping.people.recluster`` and with the journaled
``engine.services.edits.regroup``, in alternating order. Prints seconds per pair, their ratio, the last
journal entry's size, and undo/redo times of it.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def build(root: Path, n: int, seed: int = 0):
    from engine.models.quantize import to_bytes
    from engine.services.library import Library
    from engine.store.schema import Face, Photo

    rng = np.random.default_rng(seed)
    ids = max(2, n // 8)
    centres = rng.normal(size=(ids, 128))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    who = rng.integers(0, ids, n)
    emb = centres[who] + rng.normal(scale=0.045, size=(n, 128))
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    lib = Library(root)
    with lib.store.transaction() as s:
        photos = [Photo(path=f"/synthetic/{i}.jpg", status="done") for i in range(n)]
        s.add_all(photos)
        s.flush()
        s.add_all([Face(photo_id=photos[i].id, x=0, y=0, w=50, h=50, landmarks=[], score=0.9,
                        embedding=to_bytes(emb[i].astype(np.float32)), model_id="synthetic") for i in range(n)])
    return lib


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--faces", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    from engine import edits
    from engine.config import ClusterConfig
    from engine.grouping.people import recluster
    from engine.store.schema import JournalEntry

    with tempfile.TemporaryDirectory() as tmp:
        lib = build(Path(tmp) / "lib", args.faces)
        recluster(lib.store, ClusterConfig(threshold=1.0))
        plain, journaled, sizes, undos = [], [], [], []
        for r in range(args.rounds):
            order = ("plain", "journaled") if r % 2 == 0 else ("journaled", "plain")
            for kind in order:
                # Each run: strict, then loose again (most faces move both times), the same for both kinds.
                t0 = time.perf_counter()
                for t in (0.3, 1.0):
                    cfg = ClusterConfig(threshold=t)
                    if kind == "plain":
                        recluster(lib.store, cfg)
                    else:
                        edits.regroup(lib.store, cfg, save_threshold=True)
                (plain if kind == "plain" else journaled).append(time.perf_counter() - t0)
                if kind == "journaled":
                    with lib.store.session() as s:
                        e = s.query(JournalEntry).order_by(JournalEntry.id.desc()).first()
                        sizes.append((len(e.changes.get("faces", [])), len(str(e.changes))))
        t0 = time.perf_counter()
        lib.undo()
        undos.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        lib.redo()
        undos.append(time.perf_counter() - t0)
        lib.close()
    p, j = np.median(plain), np.median(journaled)
    print(f"{args.faces} faces, {args.rounds} rounds: plain {p:.2f} s, journaled {j:.2f} s (ratio {j / p:.2f}); "
          f"entry: {sizes[-1][0]} faces changed, {sizes[-1][1] / 1e6:.1f} MB of JSON; undo {undos[0]:.2f} s, "
          f"redo {undos[1]:.2f} s")
    print("plain:", [round(x, 2) for x in plain], "journaled:", [round(x, 2) for x in journaled])


if __name__ == "__main__":
    main()
