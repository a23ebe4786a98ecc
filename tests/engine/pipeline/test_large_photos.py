"""Real-size photos: the coarse-then-fine search, reduced-scale decoding, EXIF rotation, big PNGs, the
onnxruntime YuNet, and the "Use GPU" fallback. Photos are made here from the bundled sample portraits."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from engine.config import DetectConfig, EmbedConfig
from engine.errors import ImageError
from engine.models.accel import GPU_FALLBACK, cuda_available
from engine.models.registry import YUNET, verified_path
from engine.pipeline.decode import Pixels, decode
from engine.pipeline.detect import FaceDetector
from engine.pipeline.embed import Embedder
from engine.pipeline.faces import FaceFinder

from conftest import SAMPLE

W, H = 4032, 3024


@pytest.fixture(scope="module")
def finder():
    return FaceFinder()


def _background(seed: int = 0) -> Image.Image:
    """A smooth random 12 MP picture with no face in it."""
    rng = np.random.default_rng(seed)
    small = rng.integers(30, 225, (24, 32, 3), dtype=np.uint8)
    return Image.fromarray(cv2.resize(small, (W, H), interpolation=cv2.INTER_CUBIC))


def _paste_face(canvas: Image.Image, src: Path, width: float, at: tuple[int, int]) -> tuple[float, ...]:
    """Paste the face of ``src`` so that its YuNet box is ``width`` px wide with its corner at ``at``;
    returns that box in the canvas."""
    rgb, _ = decode(src)
    (bx, by, bw, bh) = FaceDetector().detect(rgb)[0].box
    f = width / bw
    face = Image.fromarray(rgb).resize((round(rgb.shape[1] * f), round(rgb.shape[0] * f)), Image.Resampling.LANCZOS)
    yy, xx = np.mgrid[0 : face.height, 0 : face.width].astype(np.float32)
    r = np.hypot((xx - (bx + bw / 2) * f) / (bw * f * 0.8), (yy - (by + bh / 2) * f) / (bh * f))
    mask = Image.fromarray((np.clip((1.2 - r) / 0.35, 0, 1) * 255).astype(np.uint8))
    ox, oy = round(at[0] - bx * f), round(at[1] - by * f)
    canvas.paste(face, (ox, oy), mask)
    return (ox + bx * f, oy + by * f, bw * f, bh * f)


def _iou(a, b) -> float:
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def _save_rotated(img: Image.Image, path: Path) -> None:
    """Store the pixels turned back and EXIF orientation 6 (= rotate 90 degrees clockwise to display)."""
    exif = Image.Exif()
    exif[0x0112] = 6
    img.transpose(Image.Transpose.ROTATE_90).save(path, quality=90, exif=exif.tobytes())


@pytest.fixture(scope="module")
def small_face_photo(tmp_path_factory):
    """A 4032x3024 JPEG with a 60 px face (Obama) and a 400 px face (Sunak), and its EXIF-rotated copy."""
    d = tmp_path_factory.mktemp("big")
    img = _background()
    small = _paste_face(img, SAMPLE / "obama.jpg", 60, (3100, 700))
    large = _paste_face(img, SAMPLE / "sunak.jpg", 400, (600, 1400))
    img.save(d / "photo.jpg", quality=90)
    _save_rotated(img, d / "rotated.jpg")
    return d, small, large


def test_60px_face_in_a_12mp_photo_is_found(finder, small_face_photo):
    d, small, large = small_face_photo
    found = finder.find(d / "photo.jpg")
    assert (found.width, found.height) == (W, H)
    boxes = [f.box for f in found.faces]
    assert max(_iou(small, b) for b in boxes) > 0.5, boxes
    assert max(_iou(large, b) for b in boxes) > 0.5, boxes
    assert len(boxes) == 2, boxes
    for f in found.faces:
        assert f.crop.shape == (112, 112, 3) and f.thumb.shape[2] == 3


def test_exif_rotated_copy_gives_the_same_face_boxes(finder, small_face_photo):
    d, _, _ = small_face_photo
    a = sorted(f.box for f in finder.find(d / "photo.jpg").faces)
    rotated = finder.find(d / "rotated.jpg")
    assert (rotated.width, rotated.height) == (W, H)
    b = sorted(f.box for f in rotated.faces)
    assert len(a) == len(b) == 2
    for x, y in zip(a, b, strict=True):
        # The same face at the same place; a pixel or two apart from the 8x8 JPEG blocks being rotated.
        assert np.abs(np.subtract(x, y)).max() < 0.05 * x[2] + 2, (x, y)


def test_big_faces_need_no_full_decode(finder, tmp_path, monkeypatch):
    """A photo whose faces are all large is decoded once, at 1/2 scale: never in full."""
    img = _background(1)
    box = _paste_face(img, SAMPLE / "macron_2025.jpg", 350, (1500, 900))
    img.save(tmp_path / "p.jpg", quality=90)
    asked: list[int] = []
    real = Pixels.level

    def level(self, reduce):
        asked.append(reduce)
        return real(self, reduce)

    monkeypatch.setattr(Pixels, "level", level)
    found = finder.find(tmp_path / "p.jpg")
    assert len(found.faces) == 1 and _iou(found.faces[0].box, box) > 0.6
    assert 1 not in asked and set(asked) == {2}


def test_crop_from_reduced_decode_matches_the_full_resolution_crop(finder, tmp_path):
    """The 1/2-scale crop of a large face (with area-averaged alignment) embeds like a crop of the
    full-resolution decode."""
    from engine.pipeline.align import align_face

    img = _background(2)
    _paste_face(img, SAMPLE / "ardern_2022.jpg", 500, (1200, 800))
    img.save(tmp_path / "p.jpg", quality=90)
    face = finder.find(tmp_path / "p.jpg").faces[0]
    full, _ = decode(tmp_path / "p.jpg")
    ref = align_face(full, face.landmarks)
    emb = Embedder(EmbedConfig(threads=1))
    a, b = emb.embed(np.stack([face.crop, ref]))
    assert float(a @ b) > 0.97


def test_big_png_goes_through_the_same_path(finder, tmp_path):
    img = _background(3)
    box = _paste_face(img, SAMPLE / "macron_2014.jpg", 120, (2000, 1500))
    img.save(tmp_path / "big.png")
    px = Pixels(tmp_path / "big.png")
    assert (px.width, px.height, px.format) == (W, H, "PNG")
    assert px.level(2).shape == (H // 2, W // 2, 3)
    found = finder.find(tmp_path / "big.png")
    assert len(found.faces) == 1 and _iou(found.faces[0].box, box) > 0.5


def test_pixels_levels_are_bgr_and_exif_oriented(small_face_photo):
    d, _, _ = small_face_photo
    ref, _ = decode(d / "photo.jpg", 1008)
    for name in ("photo.jpg", "rotated.jpg"):
        px = Pixels(d / name)
        q = px.level(4)
        assert q.shape == (H // 4, W // 4, 3)
        # The same picture as PIL's reduced decode (RGB), to JPEG rounding.
        assert np.abs(q[:, :, ::-1].astype(int) - ref.astype(int)).mean() < 3


def test_truncated_jpeg_is_reported_in_plain_words(tmp_path, small_face_photo):
    d, _, _ = small_face_photo
    data = (d / "photo.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match="truncated"):
        Pixels(tmp_path / "cut.jpg").level(2)


def test_onnxruntime_yunet_matches_opencv():
    """The rewritten any-size graph with our decoding gives OpenCV FaceDetectorYN's faces."""
    det = FaceDetector()
    ref = cv2.FaceDetectorYN.create(str(verified_path(YUNET)), "", (320, 320), 0.6, 0.3, 5000)
    for p in sorted(SAMPLE.glob("*.jpg")):
        rgb, _ = decode(p, 640)
        ours = det.detect(rgb)
        ref.setInputSize((rgb.shape[1], rgb.shape[0]))
        _, theirs = ref.detect(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        assert theirs is not None and len(ours) == len(theirs) == 1, p.name
        t = theirs[0]
        assert np.abs(np.array(ours[0].box) - t[:4]).max() < 0.5
        assert np.abs(ours[0].landmarks.ravel() - t[4:14]).max() < 0.5
        assert abs(ours[0].score - t[14]) < 1e-3


def test_detect_batch_equals_one_by_one():
    det = FaceDetector()
    imgs = [decode(p, 480)[0] for p in sorted(SAMPLE.glob("*.jpg"))]
    batch = det.detect_batch(imgs)
    for img, faces in zip(imgs, batch, strict=True):
        one = det.detect(img)
        assert len(one) == len(faces) == 1
        assert np.allclose(one[0].box, faces[0].box, atol=0.5)
        assert abs(one[0].score - faces[0].score) < 1e-3


@pytest.mark.skipif(cuda_available(), reason="CUDA is available here: the fallback cannot happen")
def test_use_gpu_without_cuda_falls_back_with_one_message(library, sample_dir):
    det = FaceDetector(DetectConfig(use_gpu=True))
    emb = Embedder(EmbedConfig(use_gpu=True, threads=1))
    assert det.fallback_message == emb.fallback_message == GPU_FALLBACK
    assert "\n" not in GPU_FALLBACK and "CPU" in GPU_FALLBACK
    assert not emb.on_gpu and len(emb.embed(np.zeros((1, 112, 112, 3), np.uint8))) == 1
    assert FaceDetector().fallback_message is None  # off: no message

    library.set_setting("use_gpu", True)
    progress = list(library.import_paths([sample_dir]))
    last = progress[-1]
    assert last.stage == "done" and (last.done, last.faces, last.failures) == (6, 6, [])
    assert last.notes == [GPU_FALLBACK]
    assert library.embedder().config.use_gpu


@pytest.mark.skipif(not cuda_available(), reason="needs onnxruntime-gpu and a CUDA device")
def test_use_gpu_runs_on_cuda():
    det = FaceDetector(DetectConfig(use_gpu=True))
    emb = Embedder(EmbedConfig(use_gpu=True))
    assert det.fallback_message is None and emb.on_gpu and emb.batch_size >= 64


@pytest.mark.parametrize("rotated", [False, True])
def test_heic_straight_from_libheif_matches_pil(tmp_path, finder, rotated):
    pytest.importorskip("pillow_heif")
    from engine.pipeline.decode import HEIF_OK

    if not HEIF_OK:
        pytest.skip("pillow-heif cannot open HEIC here")
    img = _background(4).resize((1440, 1080))
    box = _paste_face(img, SAMPLE / "obama.jpg", 150, (700, 400))
    p = tmp_path / "p.heic"
    if rotated:
        exif = Image.Exif()
        exif[0x0112] = 6
        img.transpose(Image.Transpose.ROTATE_90).save(p, "HEIF", quality=90, exif=exif.tobytes())
    else:
        img.save(p, "HEIF", quality=90)
    px = Pixels(p)
    fast = px.level(1)
    ref, _ = decode(p)
    assert fast.shape == ref.shape == (1080, 1440, 3)
    assert np.array_equal(fast[:, :, ::-1], ref)
    found = finder.find(p)
    assert len(found.faces) == 1 and _iou(found.faces[0].box, box) > 0.5


@pytest.mark.skipif(cuda_available(), reason="CUDA is available here: the fallback cannot happen")
def test_gui_import_reads_use_gpu_and_carries_the_fallback_note(library, sample_dir):
    """The app imports through ``import_incrementally``: it reads the setting too, and its last
    progress carries the note the status bar shows."""
    from engine.services.overview import import_incrementally

    library.set_setting("use_gpu", True)
    last = list(import_incrementally(library, [sample_dir]))[-1]
    assert last.stage == "done" and last.faces == 6
    assert last.notes == [GPU_FALLBACK]


def test_merge_windows_joins_overlaps_and_keeps_every_window_inside():
    from engine.pipeline.faces import merge_windows

    wins = [(0, 0, 128, 128), (40, 0, 168, 128), (80, 10, 208, 138), (1000, 1000, 1128, 1128), (500, 0, 756, 256)]
    out = merge_windows(wins)
    # The three overlapping 128 px windows become one rectangle; the others stay as they were.
    assert sorted(out) == [(0, 0, 208, 138), (500, 0, 756, 256), (1000, 1000, 1128, 1128)]
    for x0, y0, x1, y1 in wins:
        assert any(a <= x0 and b <= y0 and x1 <= c and y1 <= d for a, b, c, d in out)
    area = sum((c - a) * (d - b) for a, b, c, d in out)
    assert area <= sum((c - a) * (d - b) for a, b, c, d in wins)
    # Two windows that only touch at a corner would search more pixels joined: kept apart.
    assert sorted(merge_windows([(0, 0, 128, 128), (120, 120, 248, 248)])) == [(0, 0, 128, 128), (120, 120, 248, 248)]


def test_a_row_of_small_faces_is_found_through_joined_windows(finder, tmp_path, monkeypatch):
    """A group far away: four 50 px faces side by side. Their fine-pass windows overlap and are searched
    as fewer, joined rectangles; every face is still found (in the upright and the EXIF-rotated file)."""
    import engine.pipeline.faces as faces_mod

    img = _background(4)
    srcs = ["obama.jpg", "sunak.jpg", "macron_2014.jpg", "ardern_2022.jpg"]
    boxes = [_paste_face(img, SAMPLE / s, 50, (1800 + 95 * i, 2000)) for i, s in enumerate(srcs)]
    img.save(tmp_path / "group.jpg", quality=90)
    _save_rotated(img, tmp_path / "group_rotated.jpg")
    seen: list[tuple[int, int]] = []
    real = faces_mod.merge_windows

    def merge(windows):
        out = real(windows)
        seen.append((len(windows), len(out)))
        return out

    monkeypatch.setattr(faces_mod, "merge_windows", merge)
    for name in ("group.jpg", "group_rotated.jpg"):
        found = [f.box for f in finder.find(tmp_path / name).faces]
        for b in boxes:
            assert max(_iou(b, f) for f in found) > 0.5, (name, b, found)
    assert seen and all(n_out < n_in for n_in, n_out in seen), seen


def test_read_once_bytes_give_the_same_faces_and_hash(finder, small_face_photo):
    """The importer hands the bytes it hashed to the decoder: same faces, same hash as from the file."""
    from engine.pipeline.scan import content_hash

    d, _, _ = small_face_photo
    for name in ("photo.jpg", "rotated.jpg"):
        data = (d / name).read_bytes()
        assert content_hash(d / name, data) == content_hash(d / name)
        a = finder.find(d / name)
        b = finder.find(d / name, data)
        assert [f.box for f in a.faces] == [f.box for f in b.faces]
        assert all(np.array_equal(x.crop, y.crop) for x, y in zip(a.faces, b.faces, strict=True))


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_is_applied_like_pil(tmp_path, orientation):
    """Each of the 8 EXIF orientations, at the reduced scales and in full, turns the stored pixels upright
    exactly as PIL's exif_transpose does (libjpeg-turbo through simplejpeg does not apply it itself)."""
    rng = np.random.default_rng(orientation)
    # Not symmetric in any direction, and sized so no dimension is a multiple of 8: rounding shows.
    small = rng.integers(0, 255, (5, 7, 3), dtype=np.uint8)
    img = Image.fromarray(cv2.resize(small, (1443, 1061), interpolation=cv2.INTER_CUBIC))
    exif = Image.Exif()
    exif[0x0112] = orientation
    img.save(tmp_path / "o.jpg", quality=95, exif=exif.tobytes())
    px = Pixels(tmp_path / "o.jpg")
    upright = (1061, 1443) if orientation in (5, 6, 7, 8) else (1443, 1061)
    assert (px.width, px.height) == upright
    for reduce in (1, 2, 4):
        ref, _ = decode(tmp_path / "o.jpg", None if reduce == 1 else max(1, -(-max(upright) // reduce)))
        got = px.level(reduce)[:, :, ::-1]
        assert got.shape == ref.shape, (reduce, got.shape, ref.shape)
        assert np.abs(got.astype(int) - ref.astype(int)).mean() < 3, reduce


def test_a_cmyk_jpeg_still_decodes(tmp_path):
    """CMYK JPEGs (print workflows) are not for libjpeg-turbo's BGR output: OpenCV's path takes them."""
    img = _background(5).resize((1600, 1200)).convert("CMYK")
    img.save(tmp_path / "cmyk.jpg", quality=90)
    px = Pixels(tmp_path / "cmyk.jpg")
    assert not px._turbo
    ref = np.asarray(Image.open(tmp_path / "cmyk.jpg").convert("RGB"))
    assert np.abs(px.level(1)[:, :, ::-1].astype(int) - ref.astype(int)).mean() < 6


def test_a_grey_jpeg_decodes_to_the_same_grey_in_bgr(tmp_path):
    Image.open(SAMPLE / "obama.jpg").convert("L").save(tmp_path / "grey.jpg", quality=90)
    px = Pixels(tmp_path / "grey.jpg")
    got = px.level(1)
    ref = np.asarray(Image.open(tmp_path / "grey.jpg").convert("RGB"))
    assert got.shape == ref.shape and np.abs(got[:, :, ::-1].astype(int) - ref.astype(int)).max() <= 1


def test_fast_decoder_gives_opencvs_pixels_and_faces_on_the_sample(tmp_path, finder):
    """Every bundled sample (and an EXIF-rotated copy of one) decodes to exactly OpenCV's pixels through
    simplejpeg, so the faces found, their crops and embeddings are what they were before."""
    from engine.pipeline.decode import SIMPLEJPEG_OK

    if not SIMPLEJPEG_OK:
        pytest.skip("simplejpeg is not installed: OpenCV's decoder is the only path")
    _save_rotated(Image.open(SAMPLE / "obama.jpg"), tmp_path / "rotated.jpg")
    for p in [*sorted(SAMPLE.glob("*.jpg")), tmp_path / "rotated.jpg"]:
        fast, slow = Pixels(p), Pixels(p)
        slow._turbo = False
        assert fast._turbo
        assert np.array_equal(fast.level(1), slow.level(1)), p.name
    found = finder.find(tmp_path / "rotated.jpg")
    assert len(found.faces) == 1 and (found.width, found.height) == Image.open(SAMPLE / "obama.jpg").size


@pytest.mark.parametrize("orientation", range(1, 9))
def test_full_around_is_exact_inside_its_rect_and_decodes_less(tmp_path, orientation):
    """The partial full-size decode (the JPEG's header told the picture ends below the rect) gives
    exactly the full decode's pixels inside the rect, in every EXIF orientation, and leaves the far
    side of the photo undecoded (black)."""
    rng = np.random.default_rng(orientation)
    small = rng.integers(0, 255, (9, 13, 3), dtype=np.uint8)
    img = Image.fromarray(cv2.resize(small, (2603, 1901), interpolation=cv2.INTER_CUBIC))
    exif = Image.Exif()
    exif[0x0112] = orientation
    img.save(tmp_path / "o.jpg", quality=92, exif=exif.tobytes())
    full = Pixels(tmp_path / "o.jpg").level(1)
    ph, pw = full.shape[:2]
    for rect in [(0, 0, pw, 200), (pw - 150, ph - 170, pw, ph), (500, 300, 581, 377), (0, 0, 90, ph)]:
        px = Pixels(tmp_path / "o.jpg")
        got = px.full_around(rect)
        assert got.shape == full.shape
        x0, y0, x1, y1 = rect
        assert np.array_equal(got[y0:y1, x0:x1], full[y0:y1, x0:x1]), rect
    # A small rect near a corner: whether that corner is near the top of the stored picture depends on
    # the orientation; one of the two opposite corners always is, and then little is decoded.
    decoded = []
    for rect in [(40, 30, 100, 90), (pw - 100, ph - 90, pw - 40, ph - 30)]:
        px = Pixels(tmp_path / "o.jpg")
        got = px.full_around(rect)
        x0, y0, x1, y1 = rect
        assert np.array_equal(got[y0:y1, x0:x1], full[y0:y1, x0:x1]), rect
        decoded.append(float(got.any(axis=2).mean()))
        assert (1 in px._levels) == (decoded[-1] == 1.0)  # a partial decode is never kept as the full level
    assert min(decoded) < 0.1 and max(decoded) == 1.0, decoded


def test_full_around_decodes_progressive_and_png_in_full(tmp_path):
    rng = np.random.default_rng(3)
    img = Image.fromarray(cv2.resize(rng.integers(0, 255, (6, 8, 3), dtype=np.uint8), (1600, 1200)))
    img.save(tmp_path / "p.jpg", quality=90, progressive=True)
    img.save(tmp_path / "p.png")
    for name in ("p.jpg", "p.png"):
        px = Pixels(tmp_path / name)
        got = px.full_around((0, 0, 50, 50))
        assert got is px.level(1) and got.shape == (1200, 1600, 3)


def test_small_faces_are_cropped_from_a_partial_decode_exactly(finder, small_face_photo, monkeypatch):
    """The 60 px face's crop and thumbnail, upright and EXIF-rotated, are the ones a whole full decode
    gives, while that decode stops above the bottom of the photo."""
    from engine.pipeline.align import align_face
    from engine.pipeline.faces import face_thumbnail

    d, small, _ = small_face_photo
    partial: list[float] = []
    real = Pixels.full_around

    def full_around(self, rect):
        out = real(self, rect)
        partial.append(float(out.any(axis=2).mean()))
        return out

    monkeypatch.setattr(Pixels, "full_around", full_around)
    for name in ("photo.jpg", "rotated.jpg"):
        found = finder.find(d / name)
        face = max(found.faces, key=lambda f: _iou(f.box, small))
        assert _iou(face.box, small) > 0.5
        whole = Pixels(d / name).level(1)
        assert np.array_equal(face.crop, cv2.cvtColor(align_face(whole, face.landmarks), cv2.COLOR_BGR2RGB))
        assert np.array_equal(face.thumb, cv2.cvtColor(face_thumbnail(whole, face.box), cv2.COLOR_BGR2RGB))
    # The face lies in the top third of the stored picture in both files: a third or less was decoded.
    assert len(partial) == 2 and max(partial) < 0.4, partial
