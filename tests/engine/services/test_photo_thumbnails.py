"""Thumbnails of whole photos for the photo grid (``Library.photo_thumbnail``): small, upright, cached apart
from the face thumbnails, made again when the photo changes, kept while the photo's drive is away; and the
paths they are read by round-trip any file name."""

from __future__ import annotations

import os

from PIL import Image

from conftest import SAMPLE


def _turned_photo(folder):
    """The sample portrait stored on its side with EXIF orientation 6 (shown upright everywhere)."""
    folder.mkdir()
    img = Image.open(SAMPLE / "obama.jpg").convert("RGB").transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    img.save(folder / "turned.jpg", exif=exif, quality=90)
    return folder / "turned.jpg"


def test_photo_thumbnail_is_small_upright_cached_and_apart_from_the_face_thumbnails(library, tmp_path):
    path = _turned_photo(tmp_path / "photos")
    list(library.import_paths([path.parent]))
    (photo,) = library.photos()
    p = library.photo_thumbnail(photo.id)
    with Image.open(p) as t:
        assert max(t.size) == 320 and t.height > t.width  # upright, the long side at the cache's size
    stamp = p.stat().st_mtime_ns
    assert library.photo_thumbnail(photo.id) == p and p.stat().st_mtime_ns == stamp  # from the cache
    assert library.photo_thumbnail(photo.id, photo.path) == p and p.stat().st_mtime_ns == stamp
    assert all(library.thumbnail(f.id) != p for f in library.faces_in_photo(photo.id))
    assert library.photo_thumbnail(10_000) is None


def test_photo_thumbnail_is_made_again_when_the_photo_changes_and_kept_while_it_is_away(library, tmp_path):
    path = _turned_photo(tmp_path / "photos")
    list(library.import_paths([path.parent]))
    (photo,) = library.photos()
    p = library.photo_thumbnail(photo.id)
    # The photo edited (now a landscape crop) after its thumbnail was made: made again from the file.
    Image.open(SAMPLE / "sunak.jpg").convert("RGB").crop((0, 0, 600, 300)).save(path, quality=90)
    later = p.stat().st_mtime + 5
    os.utime(path, (later, later))
    with Image.open(library.photo_thumbnail(photo.id)) as t:
        assert t.width > t.height
    # The drive with the photo unplugged: the cached thumbnail still shows it.
    path.unlink()
    assert library.photo_thumbnail(photo.id) == p and p.exists()


def test_paths_read_back_exactly_whatever_the_file_name(library, tmp_path):
    from engine.store.schema import _from_db, _to_db

    for name in ["plain.jpg", "", "café/été.jpg", "bad\udcff\udc80name.jpg", "high\U0010fc79.jpg"]:
        assert _from_db(_to_db(name)) == name
    folder = tmp_path / "photos"
    folder.mkdir()
    odd = os.fsdecode(b"caf\xe9.jpg")  # Latin-1 bytes: not UTF-8, a lone surrogate in Python
    (folder / odd).write_bytes((SAMPLE / "obama.jpg").read_bytes())
    list(library.import_paths([folder]))
    (hit,) = library.photo_timeline().photos
    assert hit[1] == str(folder / odd) and os.path.exists(hit[1])
