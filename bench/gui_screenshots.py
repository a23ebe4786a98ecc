"""Screenshots of the desktop app for docs/gui.md, taken from a real library built from LFW.

    python bench/gui_screenshots.py [--lfw ../shared/data/lfw/images] [--out docs/screenshots]
    python bench/gui_screenshots.py --only settings --people 8   # settings-model.png alone (a minute)
    python bench/gui_screenshots.py --only photos     # the photo grid and the photo view (a library of its own)

40 LFW people with 6-20 photos each, up to 12 photos per person (~400 photos): about 70 % are imported with the
command line, the biggest groups get their LFW names, and the rest is imported in the app (so the import panel
and the review queue have something to show). Runs offscreen; the PNGs are palette-reduced to stay small.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from benchlib import LFW, REPO  # noqa: E402
from PySide6.QtCore import QEventLoop, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402


def spin_until(cond, timeout_s: float) -> bool:
    loop = QEventLoop()
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            return False
        QTimer.singleShot(10, loop.quit)
        loop.exec()
    return True


def spin(seconds: float) -> None:
    spin_until(lambda: False, seconds)


def pick_photos(lfw: Path, people: int, per_person: int, first_share: float) -> tuple[list[Path], list[Path]]:
    cands = sorted((p for p in lfw.iterdir() if p.is_dir() and 6 <= len(list(p.glob("*.jpg"))) <= 20),
                   key=lambda p: p.name)
    step = max(1, len(cands) // people)
    chosen = cands[::step][:people]
    first, second = [], []
    for person in chosen:
        imgs = sorted(person.glob("*.jpg"))[:per_person]
        k = max(4, round(len(imgs) * first_share))
        first += imgs[:k]
        second += imgs[k:]
    return first, second


def link_all(files: list[Path], dest: Path) -> Path:
    dest.mkdir(parents=True)
    for f in files:
        os.symlink(f.resolve(), dest / f.name)
    return dest


def lfw_name(path: str) -> str:
    return re.sub(r"_\d{4}$", "", Path(path).stem).replace("_", " ")


def name_people(lib_path: Path, how_many: int) -> list[str]:
    from engine.services.library import Library

    named = []
    with Library(lib_path) as lib:
        for p in lib.people():
            votes = Counter(lfw_name(f.path) for f in lib.faces_of(p.id))
            name, n = votes.most_common(1)[0]
            if n >= 4 and n / p.faces >= 0.8 and name not in named:
                lib.rename(p.id, name)
                named.append(name)
            if len(named) >= how_many:
                break
    return named


def save(widget, path: Path, colours: int = 256) -> int:
    from PIL import Image

    tmp = path.with_suffix(".raw.png")
    widget.grab().save(str(tmp))
    img = Image.open(tmp).convert("RGB")
    img.quantize(colors=colours, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(path, optimize=True)
    tmp.unlink()
    return path.stat().st_size


def edge_thumbnail(work: Path, out: Path) -> int:
    """A face at a photo's edge (a bundled portrait cut through the face's left side): the thumbnail the app
    made before (stretched edge pixels) next to the one it makes now (the square shifted into the photo)."""
    import cv2
    import numpy as np
    from PIL import Image, ImageDraw

    from engine.pipeline.faces import FaceFinder, face_thumbnail

    src = REPO / "resources" / "sample" / "sunak.jpg"
    (face,) = FaceFinder().find(src).faces
    x, _y, w, _h = face.box
    img = Image.open(src).convert("RGB")
    cut = img.crop((int(x - 0.1 * w), 0, img.width, img.height))
    photo = work / "edge.jpg"
    cut.save(photo, quality=95)
    (face,) = FaceFinder().find(photo).faces
    rgb = np.asarray(cut)
    bx, by, bw, bh = face.box
    cx, cy, half = bx + bw / 2, by + bh / 2, max(bw, bh) * 0.8
    x0, y0, x1, y1 = (int(round(v)) for v in (cx - half, cy - half, cx + half, cy + half))
    pad = max(0, -x0, -y0, x1 - rgb.shape[1], y1 - rgb.shape[0])
    padded = cv2.copyMakeBorder(rgb, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    before = cv2.resize(padded[y0 + pad : y1 + pad, x0 + pad : x1 + pad], (160, 160), interpolation=cv2.INTER_AREA)
    after = face_thumbnail(rgb, face.box)
    sheet = Image.new("RGB", (360, 200), (255, 255, 255))
    sheet.paste(Image.fromarray(before), (10, 10))
    sheet.paste(Image.fromarray(after), (190, 10))
    d = ImageDraw.Draw(sheet)
    d.text((10, 178), "before: stretched edge", fill=(0, 0, 0))
    d.text((190, 178), "now: cut inside the photo", fill=(0, 0, 0))
    sheet.save(out, optimize=True)
    return out.stat().st_size


def settings_model_shot(w, out: Path) -> int:
    """The settings dialog with arcface-mbf chosen: its licence notice and what OK will do."""
    dlg = w.open_settings()
    # The temporary folder is "home" here: show the library the way it reads for a user (~/library).
    dlg.library_edit.setText("~/" + Path(dlg.library_edit.text()).relative_to(os.environ["HOME"]).as_posix())
    spin_until(lambda: dlg.model_combo.isEnabled() and dlg.preview.text().startswith("≈"), 60)
    i = dlg.model_combo.findData("arcface-mbf")
    if i >= 0:
        dlg.model_combo.setCurrentIndex(i)
    spin(0.5)
    size = save(dlg, out)
    dlg.reject()
    spin(0.3)
    return size


def dated_photos(lfw: Path, dest: Path) -> tuple[Path, str, str]:
    """Copies of LFW photos with EXIF dates taken spread over 14 months (LFW's files carry none), in two
    folders, and a few "group" photos: two people side by side, the second turned on its side (a face the
    detector misses, to draw by hand). Returns the folder, the person with the most photos and the name of
    the person turned on their side in together_1.jpg."""
    from datetime import datetime, timedelta

    from PIL import Image

    cands = sorted((p for p in lfw.iterdir() if p.is_dir() and 10 <= len(list(p.glob("*.jpg"))) <= 40),
                   key=lambda p: p.name)
    chosen = cands[:: max(1, len(cands) // 9)][:9]
    star = chosen[0]
    start = datetime(2023, 1, 8, 10)
    k = 0
    for person in chosen:
        for src in sorted(person.glob("*.jpg"))[: 18 if person is star else 7]:
            when = start + timedelta(days=(k * 37) % 420, hours=k % 9)
            k += 1
            folder = dest / ("Camera" if k % 3 else "Phone")
            folder.mkdir(parents=True, exist_ok=True)
            exif = Image.Exif()
            exif.get_ifd(0x8769)[0x9003] = when.strftime("%Y:%m:%d %H:%M:%S")
            Image.open(src).convert("RGB").save(folder / src.name, exif=exif, quality=92)
    friends = [sorted(p.glob("*.jpg")) for p in chosen[1:4]]
    for i, imgs in enumerate(friends):
        a = Image.open(sorted(star.glob("*.jpg"))[-1 - i]).convert("RGB")
        b = Image.open(imgs[-1]).convert("RGB").rotate(90, expand=True)
        side = a.width  # the shared LFW copy's photos are square (150 or 250 px)
        sheet = Image.new("RGB", (2 * side, side), (235, 235, 230))
        sheet.paste(a, (0, 0))
        sheet.paste(b.resize((side, side)), (side, 0))
        exif = Image.Exif()
        exif.get_ifd(0x8769)[0x9003] = (start + timedelta(days=400 + 5 * i)).strftime("%Y:%m:%d %H:%M:%S")
        sheet.save(dest / "Camera" / f"together_{i + 1}.jpg", exif=exif, quality=92)
    return dest, lfw_name(str(next(star.glob("*.jpg")))), lfw_name(str(friends[0][-1]))


def photo_screens(args) -> dict:
    """photos.png (the grid, newest first, a header per month), photos-filtered.png (one person, a date
    range), photo-draw-box.png (a box being dragged round a face the detector missed) and
    photo-drawn-face.png (the face it became, named)."""
    from PySide6.QtCore import QPoint, QRectF, Qt
    from PySide6.QtTest import QTest

    from app.gui.main_window import MainWindow
    from engine.services.library import Library

    tmp = Path(tempfile.mkdtemp(prefix="gui-shots-photos-"))
    os.environ["HOME"] = str(tmp)
    photos, star, friend = dated_photos(args.lfw, tmp / "Pictures")
    lib_path = tmp / "library"
    subprocess.run([sys.executable, "-m", "app.cli", "-L", str(lib_path), "import", str(photos)], check=True,
                   cwd=REPO, stdout=subprocess.DEVNULL)
    named = name_people(lib_path, 9)
    print(f"named {len(named)} people", flush=True)
    app = QApplication.instance() or QApplication([])
    app.setStyle("Fusion")
    lib = Library(lib_path)
    w = MainWindow(lib, owns_library=True)
    w.resize(1180, 760)
    w.show()
    spin_until(lambda: len(w.people_page.model.rows) > 0, 60)
    w.show_section("photos")
    page = w.photos_page
    spin_until(lambda: len(page.model.photos) > 50, 60)
    spin_until(lambda: all(page.thumbs.get(p[0]) is not None for p in page.model.photos[:30]), 60)
    spin(1)
    sizes = {"photos.png": save(w, args.out / "photos.png")}
    person = next(p for p in page.people_rows if p.name == star)
    page.add_person(person.id)
    page.date_from.setText("2023-06")
    page._dates_changed()
    spin_until(lambda: 0 < len(page.model.photos) < 30, 60)
    spin_until(lambda: all(page.thumbs.get(p[0]) is not None for p in page.model.photos), 60)
    spin(1)
    sizes["photos-filtered.png"] = save(w, args.out / "photos-filtered.png")
    # A photo of two: the second face is on its side and was not found; drag a box round it.
    i = next(i for i, p in enumerate(page.model.photos) if Path(p[1]).name == "together_1.jpg")
    page.open_photo(i)
    spin_until(lambda: page.viewer.image is not None, 30)
    spin(0.5)
    v = page.viewer
    side = v.image.height() * v.scale  # the photo is two squares side by side; the face is in the middle of the second
    r = v._transform().mapRect(QRectF(side * 1.25, side * 0.25, side * 0.5, side * 0.5))
    a, b = r.topLeft().toPoint(), r.bottomRight().toPoint()
    page.draw_btn.setChecked(True)
    QTest.mousePress(v, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, a)
    QTest.mouseMove(v, QPoint((a.x() + b.x()) // 2, (a.y() + b.y()) // 2))
    QTest.mouseMove(v, b)
    spin(0.3)
    sizes["photo-draw-box.png"] = save(w, args.out / "photo-draw-box.png")
    QTest.mouseRelease(v, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, b)
    spin_until(lambda: getattr(page, "name_dialog", None) is not None, 10)
    faces_before = len(v.faces)
    page.name_dialog.name.setEditText(friend)
    page.name_dialog.accept()
    spin_until(lambda: len(v.faces) > faces_before, 60)
    spin(1)
    sizes["photo-drawn-face.png"] = save(w, args.out / "photo-drawn-face.png")
    w.close()
    spin_until(lambda: w.is_closed, 120)
    shutil.rmtree(tmp, ignore_errors=True)
    return sizes


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lfw", type=Path, default=LFW / "images")
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    ap.add_argument("--people", type=int, default=40)
    ap.add_argument("--per-person", type=int, default=12)
    ap.add_argument("--keep", type=Path, default=None, help="build the library here and keep it")
    ap.add_argument("--only", choices=("all", "settings", "photos"), default="all",
                    help="settings: the settings dialog with the arcface pack chosen; photos: the photo grid")
    args = ap.parse_args()
    if not args.lfw.exists():
        print(f"LFW not found at {args.lfw}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    if args.only == "photos":
        for name, size in photo_screens(args).items():
            print(f"{args.out / name}: {size / 1024:.0f} KiB")
        return 0
    tmp = Path(tempfile.mkdtemp(prefix="gui-shots-"))
    root = args.keep or tmp
    first, second = pick_photos(args.lfw, args.people, args.per_person, 0.7)
    # The app shows paths under the home folder as ~/…: make the temporary folder "home" for the pictures.
    os.environ["HOME"] = str(root)
    a = link_all(first, root / "Pictures" / "2019")
    b = link_all(second, root / "Pictures" / "2020")
    # Two files that cannot be imported (first in the folder, so the panel lists them early).
    (b / "000_scan.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (b / "000_holiday.png").write_bytes(b"")
    lib_path = root / "library"
    print(f"importing {len(first)} photos with the command line…", flush=True)
    t = time.monotonic()
    subprocess.run([sys.executable, "-m", "app.cli", "-L", str(lib_path), "import", str(a)], check=True,
                   cwd=REPO, stdout=subprocess.DEVNULL)
    print(f"  {time.monotonic() - t:.0f} s", flush=True)
    named = name_people(lib_path, 14)
    print(f"named {len(named)} people: {', '.join(named)}", flush=True)

    from app.gui.main_window import MainWindow
    from engine.services.library import Library

    app = QApplication.instance() or QApplication([])
    app.setStyle("Fusion")
    lib = Library(lib_path)
    w = MainWindow(lib, owns_library=True)
    w.resize(1180, 760)
    w.show()
    spin_until(lambda: len(w.people_page.model.rows) > 0, 60)
    spin(3)
    sizes = {}
    sizes["settings-model.png"] = settings_model_shot(w, args.out / "settings-model.png")
    if args.only == "settings":
        w.close()
        spin_until(lambda: w.is_closed, 120)
        for name, size in sizes.items():
            print(f"{args.out / name}: {size / 1024:.0f} KiB")
        if args.keep is None:
            shutil.rmtree(tmp, ignore_errors=True)
        return 0
    sizes["people.png"] = save(w, args.out / "people.png")
    # The same grid with "at least 3 faces", sorted by name.
    pp = w.people_page
    pp.min_faces.setValue(3)
    pp.sort.setCurrentIndex(pp.sort.findData("name"))
    spin_until(lambda: bool(pp.model.rows) and all(p.faces >= 3 for p in pp.model.rows), 30)
    spin(2)
    sizes["people-filtered.png"] = save(w, args.out / "people-filtered.png")
    pp.min_faces.setValue(1)
    pp.sort.setCurrentIndex(pp.sort.findData("size"))
    spin_until(lambda: any(p.faces < 3 for p in pp.model.rows), 30)

    # A person page: a named person, two faces selected, the photo of the current one.
    person = next(p for p in w.people_page.model.rows if p.name)
    w.open_person(person.id)
    spin_until(lambda: len(w.person_page.faces_model.rows) == person.faces, 60)
    fv = w.person_page.faces_view
    sel = fv.selectionModel()
    for row in (1, 2):
        if row < len(w.person_page.faces_model.rows):
            sel.select(w.person_page.faces_model.index(row), sel.SelectionFlag.Select)
    fv.setCurrentIndex(w.person_page.faces_model.index(1))
    sel.select(w.person_page.faces_model.index(2), sel.SelectionFlag.Select)
    spin(3)
    sizes["person.png"] = save(w, args.out / "person.png")

    # The photo full screen, zoomed in 1.5 times about the current face.
    viewer = w.person_page.viewer
    spin_until(lambda: viewer.image is not None, 30)
    dlg = viewer.open_full_screen()
    if dlg is not None:
        dlg.resize(1180, 760)
        spin(0.5)
        fv_ = dlg.viewer
        face = next((f for f in fv_.faces if f.id == fv_.highlight), fv_.faces[0] if fv_.faces else None)
        if face is not None:
            fv_.zoom_by(1.5, fv_.face_rect(face).center())
        spin(0.5)
        sizes["fullscreen.png"] = save(dlg, args.out / "fullscreen.png")
        dlg.close()
        spin(0.3)

    # The import panel, halfway through an import started in the app.
    w.show_section("import")
    done = []
    w.controller.import_finished.connect(done.append)
    w.controller.import_paths([b])
    total = len(second) + 2
    spin_until(lambda: w.import_page.panel.bar.value() >= total * 0.45 or done, 600)
    spin(0.3)
    sizes["import.png"] = save(w, args.out / "import.png")
    spin_until(lambda: bool(done), 600)
    spin(1)

    # The review queue: suggestions for the named people from the second import.
    w.show_section("review")
    spin_until(lambda: w.review_page.current is not None, 30)
    spin(2.5)
    if w.review_page.current is not None:
        sizes["review.png"] = save(w, args.out / "review.png")
        # The same suggestions as a grid, a few selected to answer at once.
        rp = w.review_page
        rp.set_grid_mode(True)
        spin(2.5)
        gsel = rp.grid.selectionModel()
        for row in range(0, min(len(rp.grid_model.rows), 9), 2):
            gsel.select(rp.grid_model.index(row), gsel.SelectionFlag.Select)
        spin(1)
        sizes["review-grid.png"] = save(w, args.out / "review-grid.png")
        rp.set_grid_mode(False)

    # "Same person?": the first question of the queue, two face strips side by side.
    w.show_section("same")
    spin_until(lambda: w.same_page.current is not None, 60)
    spin(2.5)
    if w.same_page.current is not None:
        sizes["same-person.png"] = save(w, args.out / "same-person.png")
        # "Is this face one of them?": the first face question of the queue, shown first.
        sp = w.same_page
        face_q = next((q for q in sp.queue if q.kind == "face"), None)
        if face_q is not None:
            sp.queue = [face_q] + [q for q in sp.queue if q.id != face_q.id]
            sp._show_current()
            spin(2.5)
            sizes["same-person-face.png"] = save(w, args.out / "same-person-face.png")
    w.close()
    spin_until(lambda: w.is_closed, 120)
    sizes["edge-thumbnail.png"] = edge_thumbnail(root, args.out / "edge-thumbnail.png")
    for name, size in sizes.items():
        print(f"{args.out / name}: {size / 1024:.0f} KiB")
    if args.keep is None:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
