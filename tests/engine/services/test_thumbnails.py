"""Face thumbnails of faces near a photo's edge: cut inside the photo, never smeared edge pixels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from engine.pipeline.faces import THUMB_PAD_RGB, FaceFinder, face_thumbnail, square_reached_outside, thumbnail_square
from engine.services.library import Library
from engine.store.thumbs import FORMAT_FILE, thumbnail_path

from conftest import SAMPLE  # noqa: E402


def _edge_photo(dest: Path) -> Path:
    """Sunak's portrait cut so that his face starts a tenth of its width from the left edge."""
    src = SAMPLE / "sunak.jpg"
    (face,) = FaceFinder().find(src).faces
    x, _y, w, _h = face.box
    img = Image.open(src).convert("RGB")
    cut = img.crop((int(x - 0.1 * w), 0, img.width, img.height))
    dest.parent.mkdir(parents=True, exist_ok=True)
    cut.save(dest, quality=95)
    return dest


def _left_columns_replicated(thumb: np.ndarray, cols: int = 8) -> float:
    """How far the leftmost columns differ from the column next to them, averaged (0 = copies of it)."""
    ref = thumb[:, cols : cols + 1].astype(np.float32)
    return float(np.abs(thumb[:, :cols].astype(np.float32) - ref).mean())


def test_a_face_at_the_edge_is_cut_from_inside_the_photo(tmp_path):
    photo = _edge_photo(tmp_path / "photos" / "edge.jpg")
    rgb = np.asarray(Image.open(photo).convert("RGB"))
    with Library(tmp_path / "lib") as lib:
        for _ in lib.import_paths([photo]):
            pass
        (person,) = lib.people()
        (face,) = lib.faces_of(person.id)
        thumb = np.asarray(Image.open(lib.thumbnail(face.id)).convert("RGB"))
    ih, iw = rgb.shape[:2]
    # The old centred square would have reached past the left edge...
    assert square_reached_outside(face.box, iw, ih)
    # ...the new one lies inside the photo and the thumbnail is exactly that part of it.
    x0, y0, side = thumbnail_square(face.box, iw, ih)
    assert x0 == 0 and 0 <= y0 and y0 + side <= ih and side <= iw
    expected = np.asarray(Image.fromarray(rgb[y0 : y0 + side, x0 : x0 + side]).resize(thumb.shape[:2][::-1]))
    assert np.abs(thumb.astype(int) - expected.astype(int)).mean() < 8
    # Stretched edge pixels would make the left columns copies of one another.
    assert _left_columns_replicated(thumb) > 4
    smeared = _old_style_thumbnail(rgb, face.box)
    assert _left_columns_replicated(smeared) < 1  # the check tells the two apart


def _old_style_thumbnail(rgb, box):
    import cv2

    x, y, w, h = box
    cx, cy, half = x + w / 2, y + h / 2, max(w, h) * 0.8
    x0, y0, x1, y1 = (int(round(v)) for v in (cx - half, cy - half, cx + half, cy + half))
    ih, iw = rgb.shape[:2]
    pad = max(0, -x0, -y0, x1 - iw, y1 - ih)
    src = cv2.copyMakeBorder(rgb, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    return cv2.resize(src[y0 + pad : y1 + pad, x0 + pad : x1 + pad], (160, 160), interpolation=cv2.INTER_AREA)


def test_a_face_wider_than_the_photo_is_padded_with_grey_not_edge_pixels():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (100, 60, 3), dtype=np.uint8)
    thumb = face_thumbnail(rgb, (0.0, 0.0, 60.0, 100.0), size=100)
    # The square is 100 px (the face's height); the photo is 60 wide: 20 px of grey each side.
    assert np.abs(thumb[:, :18].astype(int) - np.array(THUMB_PAD_RGB)).max() <= 1
    assert np.abs(thumb[:, -18:].astype(int) - np.array(THUMB_PAD_RGB)).max() <= 1
    assert thumb[:, 25:75].std() > 30  # the photo itself, in the middle


def test_opening_an_old_library_regenerates_only_the_edge_thumbnails(tmp_path):
    photos = tmp_path / "photos"
    _edge_photo(photos / "edge.jpg")
    Image.open(SAMPLE / "obama.jpg").save(photos / "obama.jpg")
    with Library(tmp_path / "lib") as lib:
        for _ in lib.import_paths([photos]):
            pass
        faces = {Path(f.path).name: f for p in lib.people() for f in lib.faces_of(p.id)}
        thumbs = lib.store.thumbs_dir
    # Make it look like a library from before: no format file, every thumbnail a red square.
    (thumbs / FORMAT_FILE).unlink()
    red = Image.new("RGB", (160, 160), (255, 0, 0))
    for f in faces.values():
        red.save(thumbnail_path(thumbs, f.id), "JPEG")
    with Library(tmp_path / "lib") as lib:
        assert (thumbs / FORMAT_FILE).read_text().strip() == "2"
        edge = np.asarray(Image.open(lib.thumbnail(faces["edge.jpg"].id)).convert("RGB"))
        kept = np.asarray(Image.open(lib.thumbnail(faces["obama.jpg"].id)).convert("RGB"))
    assert not (edge[..., 0] > 200).all()  # cut again from the photo
    assert (kept[..., 0] > 200).all() and (kept[..., 1] < 60).all()  # far from the edges: kept as it was
