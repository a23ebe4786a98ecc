"""Every sample of photo-formats imports (HEIC, AVIF, JPEG XL 8/16-bit, WebP, PNG, a Samsung motion
photo, large JPEGs), with faces where there are faces."""

from __future__ import annotations

import pytest

from conftest import PHOTO_FORMATS

pytestmark = [pytest.mark.photo_formats, pytest.mark.slow]


def test_every_format_sample_imports(library):
    folders = ["heic", "avif", "jxl", "webp", "png", "motionphoto", "xmp"]
    last = list(library.import_paths([PHOTO_FORMATS / f for f in folders]
                                     + [PHOTO_FORMATS / "albums" / "text" / "craft-beer.jpg"]))[-1]
    assert last.failures == []
    photos = {p.path.split("photo-formats/")[1]: p for p in library.photos()}
    assert set(photos) == {
        "heic/IMG_2682.heic", "avif/8bit-sRGB.avif", "avif/10bit-HDR-P3-nclx.avif", "jxl/8bit-sRGB.jxl",
        "jxl/16bit-HDR-P3-nclx.jxl", "webp/denali.webp", "png/density_plot.png",
        "motionphoto/samsung-one-ui-6.heic", "xmp/portrait.jpg", "albums/text/craft-beer.jpg",
    }
    assert all(p.status == "done" and p.width and p.height for p in photos.values())
    assert (photos["jxl/16bit-HDR-P3-nclx.jxl"].width, photos["jxl/16bit-HDR-P3-nclx.jxl"].height) == (5667, 3685)
    assert photos["motionphoto/samsung-one-ui-6.heic"].width == 3000  # the still, not the video
    # The two people of the digiKam photo, named by its regions, and the woman at the bar.
    assert photos["xmp/portrait.jpg"].faces == 2
    assert {p.name for p in library.people(named=True)} == {"Marie Curie", "Pierre Curie"}
    bar = library.faces_in_photo(photos["albums/text/craft-beer.jpg"].id)
    assert max(f.score for f in bar) > 0.9 and max(f.box[2] for f in bar) > 400
