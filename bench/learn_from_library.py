""""Learn from my corrections" on a library built from LFW identities (a stand-in for a user's photos).

Copies up to ``--cap`` images of each person of one people.txt fold who has at least ``--min`` images,
imports them, then plays the user: each identity's largest group gets the person's name and the
identity's faces that landed elsewhere are moved there (user corrections). Then runs
``training.personalise.learn_from_corrections`` and prints the held-out numbers and the verdict.

    python bench/learn_from_library.py --fold 10 --min 4 --cap 8 --steps 30 --lfw
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.library import Library  # noqa: E402
from training.data import read_people_folds  # noqa: E402
from training.personalise import LFW_ROOT, PersonaliseConfig, learn_from_corrections  # noqa: E402


def build(base: Path, fold: int, min_images: int, cap: int) -> Library:
    photos = base / "photos"
    for name, count in read_people_folds(LFW_ROOT)[fold - 1]:
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
    ap.add_argument("--fold", type=int, default=10)
    ap.add_argument("--min", type=int, default=4, dest="min_images")
    ap.add_argument("--cap", type=int, default=8)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--lr", type=float, default=1e-5)
    ap.add_argument("--lfw", action="store_true", help="also compare on 300 LFW pairs of fold 10")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        lib = build(Path(tmp), args.fold, args.min_images, args.cap)
        try:
            cfg = PersonaliseConfig(steps=args.steps, lr=args.lr, lfw=args.lfw)
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
