"""Names through XMP and back: build a library of N LFW photos with every centre face named after
its LFW identity, export sidecars, delete the library, import the folder into a fresh one, and count
how many names are on the same face again.

    python bench/xmp_round_trip.py --n 1000 --work /some/scratch/folder
"""

from __future__ import annotations

import argparse
import shutil
import time
from collections import defaultdict
from pathlib import Path

from benchlib import LFW

from engine.pipeline.detect import centre_offset
from engine.services.library import Library


def faces_named(lib: Library, assignment: str | None = None) -> dict[tuple[str, int], tuple[str, tuple]]:
    """Named faces; with ``assignment``, only those placed that way ("user": confirmed)."""
    out = {}
    for p in lib.people(named=True):
        for f in lib.faces_of(p.id):
            if assignment is None or f.assignment == assignment:
                out[(f.path, f.id)] = (p.name, f.box)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--work", type=Path, required=True)
    a = ap.parse_args()
    photos = a.work / "photos"
    if a.work.exists():
        shutil.rmtree(a.work)
    files = sorted((LFW / "images").glob("*/*.jpg"))
    step = max(1, len(files) // a.n)
    chosen = files[::step][: a.n]
    for f in chosen:
        (photos / f.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copy2(f, photos / f.parent.name / f.name)

    t0 = time.monotonic()
    with Library(a.work / "lib1") as lib:
        list(lib.import_paths([photos]))
        by_name: dict[str, list[int]] = defaultdict(list)
        for ph in lib.photos():
            faces = lib.faces_in_photo(ph.id)
            if not faces:
                continue
            best = min(faces, key=lambda f: centre_offset(f.box, ph.width, ph.height))
            by_name[Path(ph.path).parent.name.replace("_", " ")].append(best.id)
        for name, ids in by_name.items():
            lib.split(ids, name)
        before = faces_named(lib)
        res = lib.export_xmp()
    t_build = time.monotonic() - t0
    shutil.rmtree(a.work / "lib1")
    t0 = time.monotonic()
    with Library(a.work / "lib2") as lib:
        list(lib.import_paths([photos]))
        after = faces_named(lib, "user")
        suggested = len(faces_named(lib)) - len(after)
    t_again = time.monotonic() - t0
    got = defaultdict(list)
    for (path, _fid), (name, box) in after.items():
        got[path].append((name, box))
    kept = wrong = 0
    for (path, _fid), (name, (x, y, w, h)) in before.items():
        cx, cy = x + w / 2, y + h / 2
        same = [n for n, (x2, y2, w2, h2) in got[path] if abs(x2 + w2 / 2 - cx) < 4 and abs(y2 + h2 / 2 - cy) < 4]
        if same == [name]:
            kept += 1
        elif same:
            wrong += 1
    extra = len(after) - kept - wrong  # confirmed names on faces that had none
    print(f"photos {len(chosen)}, named faces {len(before)} of {len(by_name)} people, sidecars {res.written}")
    print(f"kept {kept}/{len(before)} = {100 * kept / max(1, len(before)):.2f} %, wrong name {wrong}, "
          f"confirmed names on other faces {extra}; recognition suggestions for other faces {suggested}")
    print(f"build+export {t_build:.0f} s, re-import {t_again:.0f} s")


if __name__ == "__main__":
    main()
