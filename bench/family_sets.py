"""Development sets shaped like a family library, embedded once through the app's own pipeline.

A family library holds few people with many photos each, taken over years on phones. LFW as a whole is the
wrong shape (most of its people have one photo), so the grouping defaults are calibrated on:

* ``lag``: lag-dev (half of the Large Age-Gap database): 489 people photographed young and as adults;
* ``lfw-phone``: the LFW people with at least ``MIN_LFW_PHOTOS`` photos, each photo degraded the way phone
  photos of a family are (downscaled, JPEG recompressed, partly cut off or covered), a fixed share left clean;
* ``mixed``: libraries holding people of both.

Embedding (``--make``) runs every image through the app's ``FaceFinder`` (decode, YuNet, alignment) and its
``Embedder`` (SFace) and caches the result in one ``.npz`` outside the repository (``--cache``, default in the
system's temporary directory), since the research images must not be copied into the project.

    python bench/family_sets.py --make                    # ~5 min on 2 cores
    python bench/family_sets.py                           # summary of the cached sets
    python bench/family_sets.py --make --model arcface-mbf --cache DIR/family_sets.npz   # another model

``--model`` takes any id ``facenet-photos eval lfw --model`` takes that needs no library (SFace or an
installed pack); give each model its own ``--cache``.

``libraries()`` then draws "family-sized" libraries (20-40 people each) from disjoint identity folds, which is
what ``bench/calibrate_grouping.py`` cross-validates on.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from benchlib import SHARED_DATA  # noqa: E402

SHARED = SHARED_DATA
DEFAULT_CACHE = Path(tempfile.gettempdir()) / "facenet-photos-devsets" / "family_sets.npz"


from evals.family import (  # noqa: E402  (the dev sets live in the engine: calibrate uses them)
    DevLibrary,
    build_dev_embeddings,
    degrade,
    embed_central_faces,
    identity_folds,
    libraries,
)

__all__ = ["DevLibrary", "degrade", "embed_central_faces", "identity_folds", "libraries", "load_cache",
           "make_cache"]


def make_cache(lag_dir: Path, lfw_dir: Path, out: Path, seed: int = 0, log=print, model: str = "sface") -> Path:
    from engine.pipeline.embed import known_embedder
    from engine.pipeline.faces import FaceFinder

    cache = build_dev_embeddings(lag_dir, lfw_dir, FaceFinder(), known_embedder(model), seed=seed,
                                 log=lambda m: log(m, flush=True))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.stem + ".partial.npz")
    np.savez(tmp, **cache)
    tmp.replace(out)
    log(f"wrote {out}: lag {len(cache['lag_emb'])} faces ({int((~cache['lag_detected']).sum())} not detected), "
        f"lfw-phone {len(cache['lfw_emb'])} faces ({int((~cache['lfw_detected']).sum())} not detected)")
    return out


def load_cache(path: Path = DEFAULT_CACHE) -> dict[str, np.ndarray]:
    if not path.exists():
        raise SystemExit(f"{path} missing: run  python bench/family_sets.py --make")
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lag", type=Path, default=SHARED / "lag-dev", help="lag-dev folder (labels.tsv, images/)")
    ap.add_argument("--lfw", type=Path, default=SHARED / "lfw" / "images", help="LFW images/<Name>/ folder")
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="embedding cache (.npz), outside the repo")
    ap.add_argument("--make", action="store_true", help="embed the images (else: summarise the cache)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--model", default="sface", help="embedding model id (sface, arcface-mbf)")
    args = ap.parse_args(argv)
    if args.make:
        for d in (args.lag, args.lfw):
            if not d.is_dir():
                raise SystemExit(f"{d} is not a folder")
        make_cache(args.lag, args.lfw, args.cache, seed=args.seed, model=args.model)
    c = load_cache(args.cache)
    libs = libraries(c)
    for kind in ("lag", "lfw-phone", "mixed"):
        ls = [lib for lib in libs if lib.kind == kind]
        faces = [len(lib.truth) for lib in ls]
        ppl = [lib.n_people for lib in ls]
        print(f"{kind:>9s}: {len(ls)} libraries, {min(ppl)}-{max(ppl)} people, {min(faces)}-{max(faces)} faces")
    print(f"lag: {len(c['lag_emb'])} faces, detected {c['lag_detected'].mean():.3f}; lfw-phone: "
          f"{len(c['lfw_emb'])} faces of {len(set(c['lfw_identity'].tolist()))} people, detected "
          f"{c['lfw_detected'].mean():.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
