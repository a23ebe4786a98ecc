"""A big library stays fast: import rate from the first to the last thousand photos, memory, queries.

    python bench/big_library.py                     # 10,000 photos (about 5 minutes on 2 shared cores)
    python bench/big_library.py --n 50000           # the issue's 50,000 (about 5x as long)

Makes ``--n`` small photos (320x240 JPEGs, one LFW face each at a random place, flip and brightness,
so every file is new to the duplicate check; without LFW the bundled sample portraits are used the
same way) in ``--cache`` (default under the system temp folder), then in a child process (its own
peak RSS, via wait4):

* imports them into a new library with ``Library.import_paths`` (what ``facenet-photos import``
  runs) and records when each batch commits, so the rate of the first and the last thousand photos
  can be compared;
* times ``people`` (the list), ``show`` (the largest person's faces), ``faces_of`` paging, a full
  regrouping (``recluster``) and ``stats``;
* reports the database size (with its WAL) and the thumbnails per photo and per face.

With ``--keep FOLDER`` the library is kept there, and ``--open-gui FOLDER`` then times opening the GUI on
it offscreen (in a fresh process): the main window constructed and shown, the people grid's rows
there, and its first screenful of round covers drawn from their thumbnails; a screenshot goes to
``--screenshot`` when given.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from benchlib import LFW as _LFW_ROOT  # noqa: E402
from benchlib import REPO, SHARED_DATA  # noqa: E402, F401

LFW = _LFW_ROOT / "images"


def make_photos(cache: Path, n: int, seed: int) -> Path:
    from PIL import Image, ImageEnhance

    folder = cache / f"photos-{n}-{seed}"
    done = folder / ".complete"
    if done.exists():
        return folder
    sources = sorted(LFW.glob("*/*.jpg"))
    if not sources:
        # Said out loud: 6 faces repeated make a library of 6 people, not a family's hundreds.
        print(f"no LFW under {LFW} (set FACENET_PHOTOS_DATA): the 6 bundled sample portraits are used, "
              "so the library will hold 6 people", flush=True)
        sources = sorted((REPO / "resources" / "sample").glob("*.jpg"))
    rng = np.random.default_rng(seed)
    for i in range(n):
        sub = folder / f"{i // 1000:03d}"
        sub.mkdir(parents=True, exist_ok=True)
        src = sources[i % len(sources)]
        face = Image.open(src).convert("RGB")
        face.thumbnail((150, 150))
        if rng.random() < 0.5:
            face = face.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        face = ImageEnhance.Brightness(face).enhance(float(rng.uniform(0.8, 1.2)))
        canvas = Image.new("RGB", (320, 240), tuple(int(v) for v in rng.integers(40, 220, 3)))
        canvas.paste(face, (int(rng.integers(0, 320 - face.width)), int(rng.integers(0, 240 - face.height))))
        canvas.save(sub / f"p{i:06d}.jpg", quality=88)
    done.write_text("ok")
    return folder


def measure(lib) -> dict:
    """Times of the queries and a full regrouping on ``lib``, and its sizes on disk."""
    timings = {}

    def timed(name, fn, repeat=3):
        best = None
        for _ in range(repeat):
            t = time.perf_counter()
            r = fn()
            dt = time.perf_counter() - t
            best = dt if best is None else min(best, dt)
        timings[name] = best
        return r

    people = timed("people (list, all)", lambda: lib.people())
    biggest = people[0]
    timed("show (largest person, all faces)", lambda: lib.faces_of(biggest.id))
    timed("faces_of page of 200", lambda: lib.faces_of(biggest.id, 0, 200))
    timed("stats", lambda: lib.stats())
    timed("find_person by id", lambda: lib.find_person(str(biggest.id)))
    timed("recluster (all faces)", lambda: lib.recluster(), repeat=1)
    db_bytes = sum(p.stat().st_size for p in lib.root.glob(lib.store.db_path.name + "*"))
    thumbs = sum(p.stat().st_size for p in (lib.root / "thumbs").rglob("*.jpg"))
    return {"timings": timings, "stats": lib.stats(), "db_bytes": db_bytes, "thumb_bytes": thumbs,
            "people": len(people), "largest_person_faces": biggest.faces}


def query_only(library: Path) -> int:
    """``--query FOLDER``: the query timings on a library already there (e.g. an import cut short)."""
    from engine.services.library import Library

    lib = Library(library)
    try:
        q = measure(lib)
    finally:
        lib.close()
    st = q["stats"]
    photos, faces = st.get("photos", 0) or 1, st.get("faces", 0) or 1
    print(f"library {library}: {q['stats']}; load average {os.getloadavg()[0]:.1f}\n")
    print("| | value |")
    print("|---|---|")
    for name, sec in q["timings"].items():
        print(f"| {name} | {1000 * sec:.0f} ms |")
    print(f"| database (with WAL) | {q['db_bytes'] / 1e6:.1f} MB: {q['db_bytes'] / photos:.0f} bytes/photo, "
          f"{q['db_bytes'] / faces:.0f} bytes/face |")
    print(f"| face thumbnails | {q['thumb_bytes'] / 1e6:.1f} MB: {q['thumb_bytes'] / faces:.0f} bytes/face |")
    return 0


def child(folder: Path, out: Path, keep: Path | None = None) -> None:
    from engine.services.library import Library

    with tempfile.TemporaryDirectory(prefix="biglib-") as tmp:
        lib = Library(keep if keep is not None else Path(tmp) / "library")
        try:
            lib.embedder()
            marks: list[tuple[int, float, float]] = []
            t0 = time.perf_counter()
            t_analysed = None
            last = None
            for prog in lib.import_paths([folder]):
                last = prog
                if prog.stage == "analyse":
                    marks.append((prog.done, time.perf_counter() - t0, time.process_time()))
                    if prog.done // 1000 > (marks[-2][0] if len(marks) > 1 else 0) // 1000:
                        # A line per thousand, so a run cut short still shows the trend.
                        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
                        print(f"  {prog.done} photos at {marks[-1][1]:.0f} s wall, {marks[-1][2]:.0f} s CPU, "
                              f"peak RSS so far {rss:.0f} MB, load {os.getloadavg()[0]:.1f}", flush=True)
                elif t_analysed is None and prog.stage in ("recognise", "cluster", "done"):
                    t_analysed = time.perf_counter() - t0
            total = time.perf_counter() - t0
            q = measure(lib)
            res = {"marks": marks, "analysed": t_analysed, "total": total, "faces": last.faces, "photos": last.done,
                   "failed": last.failed, **q}
        finally:
            lib.close()
    out.write_text(json.dumps(res))


def open_gui(library: Path, screenshot: Path | None) -> dict:
    """Seconds from constructing the main window to its people grid's first screenful of covers."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    from app.gui import pyside_compat  # noqa: F401  (before any Qt call, as the app does)
    from app.gui.main_window import MainWindow
    from engine.services.library import Library

    app = QApplication.instance() or QApplication([])

    def spin_until(cond, timeout_s: float) -> bool:
        loop, deadline = QEventLoop(), time.monotonic() + timeout_s
        while not cond():
            if time.monotonic() > deadline:
                return False
            QTimer.singleShot(5, loop.quit)
            loop.exec()
        return True

    t0 = time.monotonic()
    lib = Library(library)
    w = MainWindow(lib, owns_library=True)
    w.resize(1280, 820)
    w.show()
    app.processEvents()
    shown = time.monotonic() - t0
    page = w.people_page
    has_rows = spin_until(lambda: len(page.model.rows) > 0, 300)
    rows_at = time.monotonic() - t0

    def first_screen_covered() -> bool:
        view, vp = page.view, page.view.viewport().rect()
        visible = [r for r in range(min(len(page.model.rows), 400))
                   if view.visualRect(page.model.index(r, 0)).intersects(vp)]
        return bool(visible) and all(page.model.rows[r].cover_face_id is None
                                     or page.model.thumbnails.get(page.model.rows[r].cover_face_id) is not None
                                     for r in visible)

    covered = spin_until(first_screen_covered, 300)
    covered_at = time.monotonic() - t0
    if screenshot is not None:
        w.grab().save(str(screenshot))
    res = {"window_shown_s": shown, "people_rows_s": rows_at, "first_screen_covers_s": covered_at,
           "rows": len(page.model.rows), "ok": has_rows and covered}
    w.close()
    spin_until(lambda: w.is_closed, 120)
    return res


def rate_between(marks: list, lo: int, hi: int, clock: int = 1) -> float:
    """Photos per second (``clock`` 1: wall, 2: this process's CPU) between the commits nearest to
    ``lo`` and ``hi`` photos done."""
    a = min(marks, key=lambda m: abs(m[0] - lo))
    b = min(marks, key=lambda m: abs(m[0] - hi))
    return (b[0] - a[0]) / (b[clock] - a[clock]) if b[clock] > a[clock] else 0.0


def report_gui(library: Path, screenshot: Path | None) -> int:
    runs = []
    for i in range(3):
        out = Path(tempfile.mkstemp(suffix=".json")[1])
        try:
            shot = [str(screenshot)] if screenshot is not None and i == 0 else []
            subprocess.run([sys.executable, __file__, "--gui-child", str(library), str(out), *shot], check=True,
                           env={**os.environ, "PYTHONPATH": str(REPO), "QT_QPA_PLATFORM": "offscreen"})
            runs.append(json.loads(out.read_text()))
        finally:
            out.unlink(missing_ok=True)
    print(f"opening the GUI on {library} ({runs[0]['rows']} people), load average {os.getloadavg()[0]:.1f}; "
          "best of 3 fresh processes:\n")
    print("| | seconds |")
    print("|---|---|")
    for key, label in (("window_shown_s", "main window constructed and shown"),
                       ("people_rows_s", "people grid rows there"),
                       ("first_screen_covers_s", "first screenful of covers drawn")):
        print(f"| {label} | {min(r[key] for r in runs):.2f} (runs: {', '.join(f'{r[key]:.2f}' for r in runs)}) |")
    if not all(r["ok"] for r in runs):
        print("\n(some run timed out before its first screen was drawn)")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        child(Path(argv[1]), Path(argv[2]), Path(argv[3]) if len(argv) > 3 else None)
        return 0
    if argv[:1] == ["--gui-child"]:
        shot = Path(argv[3]) if len(argv) > 3 else None
        Path(argv[2]).write_text(json.dumps(open_gui(Path(argv[1]), shot)))
        return 0
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "facenet-photos-big")
    ap.add_argument("--keep", type=Path, default=None,
                    help="keep the imported library in this (new) folder, e.g. to open the GUI on it afterwards")
    ap.add_argument("--open-gui", type=Path, default=None, metavar="FOLDER",
                    help="only time opening the GUI on a library kept with --keep (best of 3 fresh processes)")
    ap.add_argument("--query", type=Path, default=None, metavar="FOLDER",
                    help="only time the queries and a regrouping on a library already there")
    ap.add_argument("--screenshot", type=Path, default=None, help="with --open-gui: save the window here")
    args = ap.parse_args(argv)
    if args.open_gui is not None:
        return report_gui(args.open_gui, args.screenshot)
    if args.query is not None:
        return query_only(args.query)
    if args.keep is not None and args.keep.exists():
        raise SystemExit(f"{args.keep} exists already: give a new folder to keep the library in")
    t = time.perf_counter()
    folder = make_photos(args.cache, args.n, args.seed)
    print(f"{args.n} photos in {folder} ({time.perf_counter() - t:.0f} s to make); {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f}", flush=True)
    out = Path(tempfile.mkstemp(suffix=".json")[1])
    try:
        keep = [str(args.keep)] if args.keep is not None else []
        proc = subprocess.Popen([sys.executable, __file__, "--child", str(folder), str(out), *keep],
                                env={**os.environ, "PYTHONPATH": str(REPO)})
        _, status, usage = os.wait4(proc.pid, 0)
        if status != 0:
            raise SystemExit(f"the import failed (status {status})")
        r = json.loads(out.read_text())
    finally:
        out.unlink(missing_ok=True)
    n, marks = r["photos"], r["marks"]
    first, last = rate_between(marks, 0, 1000), rate_between(marks, n - 1000, n)
    print(f"\n{n} photos, {r['faces']} faces, {r['people']} people (largest {r['largest_person_faces']} faces), "
          f"{r['failed']} failed; load average now {os.getloadavg()[0]:.1f}\n")
    print("| | value |")
    print("|---|---|")
    print(f"| import, all photos analysed | {r['analysed']:.0f} s ({n / r['analysed']:.1f} photos/s) |")
    print(f"| import end to end (with grouping) | {r['total']:.0f} s |")
    print(f"| first 1,000 photos | {first:.1f} photos/s |")
    print(f"| last 1,000 photos | {last:.1f} photos/s ({100 * last / first:.0f} % of the first) |")
    c_first, c_last = rate_between(marks, 0, 1000, 2), rate_between(marks, n - 1000, n, 2)
    print(f"| per CPU second (less sensitive to other jobs): first / last 1,000 | {c_first:.1f} / {c_last:.1f} "
          f"photos per CPU-s ({100 * c_last / c_first:.0f} %) |")
    print(f"| peak RSS (import, queries, regrouping) | {usage.ru_maxrss / 1024:.0f} MB |")
    for name, sec in r["timings"].items():
        print(f"| {name} | {1000 * sec:.0f} ms |")
    print(f"| database (with WAL) | {r['db_bytes'] / 1e6:.1f} MB: {r['db_bytes'] / n:.0f} bytes/photo, "
          f"{r['db_bytes'] / max(1, r['faces']):.0f} bytes/face |")
    print(f"| face thumbnails | {r['thumb_bytes'] / 1e6:.1f} MB: {r['thumb_bytes'] / max(1, r['faces']):.0f} "
          f"bytes/face |")
    # Rate over each thousand, to see a trend rather than two points.
    per_k = [rate_between(marks, k, k + 1000) for k in range(0, n - 999, 1000)]
    print("\nphotos/s per thousand: " + ", ".join(f"{v:.1f}" for v in per_k))
    per_k = [rate_between(marks, k, k + 1000, 2) for k in range(0, n - 999, 1000)]
    print("photos per CPU-second per thousand: " + ", ".join(f"{v:.1f}" for v in per_k))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
