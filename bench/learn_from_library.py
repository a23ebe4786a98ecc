""""Learn from my corrections" on a library built from LFW identities (a stand-in for a user's photos).

Copies up to ``--cap`` images of each person of the given people.txt folds who has at least ``--min`` images,
imports them, then plays the user: each identity's largest group gets the person's name and the
identity's faces that landed elsewhere are moved there (user corrections). Then runs
``training.personalise.learn_from_corrections`` and prints the held-out numbers and the verdict.

    python bench/learn_from_library.py --folds 10 --min 4 --cap 8 --no-lfw
    python bench/learn_from_library.py --folds 1-4 --min 4 --cap 12 --keep /tmp/lfwlib --build-only
    facenet-photos --library /tmp/lfwlib/library train --from-library
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

from benchlib import LFW as LFW_ROOT  # noqa: E402

from engine.services.library import Library  # noqa: E402
from training.data import read_people_folds  # noqa: E402
from training.personalise import PersonaliseConfig, learn_from_corrections  # noqa: E402


def build(base: Path, folds: list[int], min_images: int, cap: int) -> Library:
    photos = base / "photos"
    people = [pc for f in folds for pc in read_people_folds(LFW_ROOT)[f - 1]]
    for name, count in people:
        if count < min_images:
            continue
        (photos / name).mkdir(parents=True, exist_ok=True)
        for k in range(1, min(count, cap) + 1):
            src = LFW_ROOT / "images" / name / f"{name}_{k:04d}.jpg"
            if src.is_file():
                shutil.copy2(src, photos / name / src.name)
    lib = Library(base / "library")
    t0 = time.perf_counter()
    last = None
    for prog in lib.import_paths([photos]):
        last = prog
    print(f"imported {last.done} photos, {last.faces} faces in {time.perf_counter() - t0:.0f}s")
    # The user names each identity's largest group, moves the identity's other faces there and says
    # "not this person" to background faces left in a named group. The identity's face in a photo
    # is its largest face (LFW photos are centred on their subject; others are bystanders).
    main_face: dict[str, object] = {}
    for p in lib.photos():
        faces = lib.faces_in_photo(p.id)
        if faces:
            main_face[p.path] = max(faces, key=lambda f: f.box[2] * f.box[3])
    by_identity: dict[str, list] = defaultdict(list)
    for f in main_face.values():
        by_identity[Path(f.path).parent.name].append(f)
    moved = named = 0
    for ident, faces in by_identity.items():
        if len(faces) < 2:
            continue
        target = Counter(f.person_id for f in faces).most_common(1)[0][0]
        if target is None or lib.person(target).name:  # the group is someone else's already
            target = lib.split([faces[0].id], ident)
        else:
            lib.rename(target, ident)
        named += 1
        wrong = [f.id for f in faces if f.person_id != target]
        if wrong:
            lib.move_faces(wrong, target)
            moved += len(wrong)
    main_ids = {f.id for f in main_face.values()}
    bystanders = [f.id for p in lib.people(named=True) for f in lib.faces_of(p.id) if f.id not in main_ids]
    if bystanders:
        lib.not_this_person(bystanders)
    print(f"named {named} people, moved {moved} faces, {len(bystanders)} 'not this person' (the user's corrections)")
    return lib


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--folds", default="10", help="people.txt folds whose people make the library, e.g. 1-4")
    ap.add_argument("--min", type=int, default=4, dest="min_images")
    ap.add_argument("--cap", type=int, default=8)
    ap.add_argument("--max-steps", type=int, default=PersonaliseConfig.max_steps)
    ap.add_argument("--eval-every", type=int, default=PersonaliseConfig.eval_every)
    ap.add_argument("--keep", type=Path, help="build the library in this folder and keep it")
    ap.add_argument("--build-only", action="store_true", help="stop after building (then run the CLI)")
    ap.add_argument("--lr", type=float, default=1e-5)
    ap.add_argument("--lfw", action=argparse.BooleanOptionalAction, default=True,
                    help="the LFW gate on 300 pairs of set 10 (keep fold 10 out of --folds for it)")
    args = ap.parse_args()
    from training.train import _folds

    with tempfile.TemporaryDirectory() as tmp:
        base = args.keep or Path(tmp)
        lib = build(base, _folds(args.folds), args.min_images, args.cap)
        if args.build_only:
            lib.close()
            print(f"library in {base / 'library'}")
            return
        try:
            cfg = PersonaliseConfig(max_steps=args.max_steps, eval_every=args.eval_every, lr=args.lr, lfw=args.lfw,
                                    lfw_dir=LFW_ROOT)
            last = None
            for last in learn_from_corrections(lib, config=cfg):
                if last.stage in ("split", "export", "register"):
                    print(last.message)
            res = last.result
            print(f"{res.people} people, {res.train_faces} training faces, {res.heldout_faces} held out")
            if res.before and res.after:
                print(f"before: {res.before.line()}\nafter:  {res.after.line()}")
            if res.lfw_before is not None:
                print(f"LFW subset: before {100 * res.lfw_before:.2f}%  after {100 * res.lfw_after:.2f}%")
            print(f"{last.stage}: {res.message}  ({res.seconds:.0f}s)")
        finally:
            lib.close()


if __name__ == "__main__":
    main()
