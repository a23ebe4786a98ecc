"""Upgrading a library built with SFace to a stronger model, on a library built from LFW people.

The library is ``learn_from_library.build``'s: the people of some ``people.txt`` folds with at least ``--min``
images, at most ``--cap`` each, imported with SFace; then the "user" names each identity's largest group,
moves its stray faces there and says "not this person" to the bystanders left in named groups. This script
adds what else a user does: confirms two faces of every named person and picks a cover for each.

Then each variant works on its own copy of that library:

* ``sface``: nothing changes (the control);
* ``arcface-mbf``: ``models --activate arcface-mbf`` then ``reembed`` (a 512-D space of its own);
* ``arcface-mbf-h128`` (with ``--h128 FILE``): registered as compatible with SFace and activated; the new
  photos are imported *before* the re-embed (the harmonic promise: new faces match people whose faces are
  still SFace's), then everything is re-embedded.

For each variant: whether any person, name, hidden flag, cover, face assignment or "not this person"
changed through the upgrade (none may); the new photos (images ``cap+1 .. cap+extra`` of the same
people) imported afterwards, and how many of their faces land with the right named person, a wrong one
or none; BCubed P / R / F1 of the groups against the LFW identities (the largest face of each photo is
its subject; bystanders are left out), before, after importing, and after a full regroup with the
model's own thresholds.

    python bench/upgrade_library.py --folds 1-5 --min 4 --cap 12 --extra 8 --work DIR [--h128 FILE] [--phone]
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np
from benchlib import LFW as LFW_ROOT  # noqa: E402
from learn_from_library import build  # noqa: E402
from sqlalchemy import select  # noqa: E402

from engine.services.library import Library  # noqa: E402
from engine.services.reembed import re_embed  # noqa: E402
from engine.store.schema import Constraint, Face, Person  # noqa: E402
from evals.metrics import cluster_scores  # noqa: E402
from training.data import read_people_folds  # noqa: E402


def state(lib: Library):
    """Everything the user said: people (name, hidden, cover), each face's person and how it got there,
    and the constraints ("not this person", confirmations)."""
    with lib.store.session() as s:
        people = {p.id: (p.name, p.hidden, p.cover_face_id) for p in s.scalars(select(Person))}
        faces = {f.id: (f.person_id, f.assignment) for f in s.scalars(select(Face))}
        constraints = sorted((c.face_id, c.person_id, c.kind) for c in s.scalars(select(Constraint)))
    return people, faces, constraints


def kept(before, after) -> dict:
    """What of ``before`` is still in ``after`` (faces of ``before`` only: new imports add faces)."""
    pb, fb, cb = before
    pa, fa, ca = after
    return {
        "named_people_lost": sum(1 for k, v in pb.items() if v[0] and k not in pa),
        "names_changed": sum(1 for k, v in pb.items() if v[0] and pa.get(k, (None,))[0] != v[0]),
        # covers of named people (the user chose them); unnamed groups' covers follow their faces
        "covers_changed": sum(1 for k, v in pb.items() if v[0] and v[2] and pa.get(k, (None, None, None))[2] != v[2]),
        "hidden_changed": sum(1 for k, v in pb.items() if pa.get(k, (None, v[1]))[1] != v[1]),
        "user_faces_moved": sum(1 for k, v in fb.items() if v[1] == "user" and fa.get(k) != v),
        "faces_moved": sum(1 for k, v in fb.items() if fa.get(k) != v),
        "constraints_lost": len(set(cb) - set(ca)),
        "named_people": sum(1 for v in pb.values() if v[0]),
        "user_faces": sum(1 for v in fb.values() if v[1] == "user"),
        "constraints": len(cb),
    }


def subjects(lib: Library) -> dict[int, str]:
    """face id -> LFW identity, for the largest face of each photo (the photo's subject)."""
    out = {}
    for p in lib.photos():
        faces = lib.faces_in_photo(p.id)
        if faces:
            f = max(faces, key=lambda f: f.box[2] * f.box[3])
            out[f.id] = Path(f.path).parent.name
    return out


def grouping(lib: Library, truth: dict[int, str]) -> dict:
    with lib.store.session() as s:
        pid = dict(s.execute(select(Face.id, Face.person_id)).all())
    ids = sorted(truth)
    pred = np.array([pid.get(i) if pid.get(i) is not None else -1 - i for i in ids])
    sc = cluster_scores(pred, np.array([truth[i] for i in ids]))
    return {"precision": round(sc.bcubed_precision, 4), "recall": round(sc.bcubed_recall, 4),
            "f1": round(sc.bcubed_f1, 4), "faces": len(ids)}


def matched(lib: Library, new_truth: dict[int, str]) -> dict:
    """How the new photos' subjects were placed: with their named person, with another named person, or
    in an unnamed group."""
    with lib.store.session() as s:
        rows = {fid: (name, how) for fid, name, how in s.execute(
            select(Face.id, Person.name, Face.assignment).join(Person, Person.id == Face.person_id, isouter=True)
            .where(Face.id.in_(list(new_truth))))}
    right = wrong = unnamed = 0
    for fid, ident in new_truth.items():
        name, _how = rows.get(fid, (None, None))
        if name is None:
            unnamed += 1
        elif name == ident:
            right += 1
        else:
            wrong += 1
    return {"new_faces": len(new_truth), "with_their_person": right, "with_another_person": wrong,
            "not_named": unnamed}


def import_new(lib: Library, folder: Path) -> tuple[dict[int, str], float]:
    seen = set(subjects(lib))
    t0 = time.perf_counter()
    for _ in lib.import_paths([folder]):
        pass
    secs = time.perf_counter() - t0
    return {k: v for k, v in subjects(lib).items() if k not in seen}, secs


def reembed(lib: Library) -> dict:
    *_, last = re_embed(lib)
    return {"faces": last.done, "failed": last.failed, "seconds": round(last.elapsed, 1)}


def copy_library(src: Path, dest: Path) -> Library:
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns(".lock"))
    return Library(dest)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--folds", default="1-5")
    ap.add_argument("--min", type=int, default=4, dest="min_images")
    ap.add_argument("--cap", type=int, default=12)
    ap.add_argument("--extra", type=int, default=8, help="new photos per person imported after the upgrade")
    ap.add_argument("--work", type=Path, required=True, help="a folder outside the repository")
    ap.add_argument("--h128", type=Path, help="a built arcface-mbf-h128 ONNX file (bench/harmonic_mbf_head.py)")
    ap.add_argument("--phone", action="store_true",
                    help="the new photos degraded like phone photos (evals.family.degrade), a harder test")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    from training.train import _folds

    args.work.mkdir(parents=True, exist_ok=True)
    base = args.work / "base"
    if not (base / "library").exists():
        lib = build(base, _folds(args.folds), args.min_images, args.cap)
        named = lib.people(named=True)
        for p in named:  # confirmations and covers, as a user gives them
            faces = lib.faces_of(p.id)
            lib.confirm([f.id for f in faces[:2]])
            if len(faces) > 1:
                lib.set_cover(p.id, faces[1].id)
        lib.close()
    new = args.work / ("new_photos_phone" if args.phone else "new_photos")
    if not new.exists():
        rng = np.random.default_rng(0)
        people = [pc for f in _folds(args.folds) for pc in read_people_folds(LFW_ROOT)[f - 1]]
        for name, count in people:
            if count < max(args.min_images, args.cap + 1):
                continue
            for k in range(args.cap + 1, min(count, args.cap + args.extra) + 1):
                src = LFW_ROOT / "images" / name / f"{name}_{k:04d}.jpg"
                if src.is_file():
                    (new / name).mkdir(parents=True, exist_ok=True)
                    if args.phone:  # as the family sets: downscaled, JPEG, sometimes cut off or covered
                        import cv2

                        from evals.family import degrade

                        rgb = cv2.cvtColor(cv2.imread(str(src)), cv2.COLOR_BGR2RGB)
                        cv2.imwrite(str(new / name / src.name), cv2.cvtColor(degrade(rgb, rng)[0], cv2.COLOR_RGB2BGR),
                                    [cv2.IMWRITE_JPEG_QUALITY, 95])
                    else:
                        shutil.copy2(src, new / name / src.name)
    with Library(base / "library") as lib:
        before = state(lib)
        truth = subjects(lib)
        g0 = grouping(lib, truth)
        n_photos = len(lib.photos())
    res: dict = {"library": {"photos": n_photos, "faces": len(before[1]), "subjects": len(truth),
                             "people": len(before[0]), **kept(before, before), "grouping": g0},
                 "new_photos": sum(1 for _ in new.rglob("*.jpg")), "variants": {}}
    print(json.dumps(res["library"]), flush=True)
    variants = ["sface", "arcface-mbf"] + (["arcface-mbf-h128"] if args.h128 else [])
    for v in variants:
        lib = copy_library(base / "library", args.work / (v + ("-phone" if args.phone else "")))
        r: dict = {}
        try:
            if v == "arcface-mbf-h128":
                lib.register_model(args.h128, v, compatible_with="sface-2021dec-int8bq")
            if v != "sface":
                lib.activate_model(v)
            r["thresholds"] = lib.cluster_config().threshold
            if v == "arcface-mbf":
                r["reembed"] = reembed(lib)
                r["kept_after_reembed"] = kept(before, state(lib))
            new_truth, secs = import_new(lib, new)
            r["import_seconds"] = round(secs, 1)
            r["new_faces_matched" + ("_before_reembed" if v == "arcface-mbf-h128" else "")] = matched(lib, new_truth)
            if v == "arcface-mbf-h128":
                r["kept_after_import_mixed"] = kept(before, state(lib))
                r["reembed"] = reembed(lib)
                r["kept_after_reembed"] = kept(before, state(lib))
                r["new_faces_after_reembed"] = matched(lib, new_truth)
            all_truth = {**truth, **new_truth}
            r["kept_after_import"] = kept(before, state(lib))
            r["grouping_after_import"] = grouping(lib, all_truth)
            lib.recluster()
            r["kept_after_regroup"] = kept(before, state(lib))
            r["grouping_after_regroup"] = grouping(lib, all_truth)
            r["new_faces_after_regroup"] = matched(lib, new_truth)
        finally:
            lib.close()
        res["variants"][v] = r
        print(v, json.dumps(r), flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
