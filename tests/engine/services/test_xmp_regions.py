"""XMP face regions on import: MWG and Microsoft regions, embedded and in sidecars, on rotated photos."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pytest
from PIL import Image

from engine.pipeline.xmp import displayed_to_stored, parse_regions, read_regions, stored_to_displayed

from conftest import PHOTO_FORMATS, SAMPLE

DIGIKAM = PHOTO_FORMATS / "xmp" / "portrait.jpg"


def sidecar(regions: list[tuple[str | None, float, float, float, float]], size: tuple[int, int]) -> str:
    """An MWG sidecar as digiKam writes it; regions are (name, centre x, centre y, w, h), normalised."""
    items = "".join(
        f"""<rdf:li><rdf:Description {f'mwg-rs:Name="{n}" ' if n else ''}mwg-rs:Type="Face">
        <mwg-rs:Area stArea:x="{x}" stArea:y="{y}" stArea:w="{w}" stArea:h="{h}" stArea:unit="normalized"/>
        </rdf:Description></rdf:li>"""
        for n, x, y, w, h in regions
    )
    return f"""<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
<rdf:Description rdf:about="" xmlns:mwg-rs="http://www.metadataworkinggroup.com/schemas/regions/"
 xmlns:stArea="http://ns.adobe.com/xmp/sType/Area#" xmlns:stDim="http://ns.adobe.com/xap/1.0/sType/Dimensions#">
<mwg-rs:Regions rdf:parseType="Resource">
<mwg-rs:AppliedToDimensions stDim:w="{size[0]}" stDim:h="{size[1]}" stDim:unit="pixel"/>
<mwg-rs:RegionList><rdf:Bag>{items}</rdf:Bag></mwg-rs:RegionList>
</mwg-rs:Regions></rdf:Description></rdf:RDF></x:xmpmeta>
<?xpacket end="w"?>"""


def named_boxes(lib) -> dict[str, list[tuple[float, float, float, float]]]:
    out: dict[str, list] = {}
    for p in lib.people(named=True):
        out[p.name] = [f.box for f in lib.faces_of(p.id)]
    return out


def centre(b):
    return np.array([b[0] + b[2] / 2, b[1] + b[3] / 2])


def import_all(lib, folder):
    last = list(lib.import_paths([folder]))[-1]
    assert last.stage == "done" and not last.failures, last.failures
    return last


# -- the parser and the orientation transform ----------------------------------------------------

@pytest.mark.parametrize("orientation", range(1, 9))
def test_orientation_transform_round_trips(orientation):
    box = (0.1, 0.2, 0.3, 0.15)
    there = stored_to_displayed(box, orientation)
    assert np.allclose(displayed_to_stored(there, orientation), box)
    if orientation in (5, 6, 7, 8):
        assert np.isclose(there[2], box[3]) and np.isclose(there[3], box[2])


def test_orientation_6_matches_the_exif_transpose_of_the_pixels():
    # A white square on the stored pixels lands where PIL's exif_transpose puts it.
    from PIL import ImageOps

    stored = np.zeros((60, 100), np.uint8)
    stored[10:20, 70:90] = 255  # x 0.7..0.9, y 1/6..2/6
    img = Image.fromarray(stored)
    ex = Image.Exif()
    ex[0x0112] = 6
    img.info["exif"] = ex.tobytes()
    img.getexif()[0x0112] = 6
    shown = np.asarray(ImageOps.exif_transpose(img))
    ys, xs = np.nonzero(shown)
    h, w = shown.shape
    got = (xs.min() / w, ys.min() / h, (xs.max() + 1 - xs.min()) / w, (ys.max() + 1 - ys.min()) / h)
    assert np.allclose(stored_to_displayed((0.7, 10 / 60, 0.2, 10 / 60), 6), got, atol=1e-6)


def test_parser_reads_microsoft_regions_and_skips_non_faces():
    packet = b"""<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
    <rdf:Description xmlns:MP="http://ns.microsoft.com/photo/1.2/"
      xmlns:MPRI="http://ns.microsoft.com/photo/1.2/t/RegionInfo#" xmlns:MPReg="http://ns.microsoft.com/photo/1.2/t/Region#"
      xmlns:mwg-rs="http://www.metadataworkinggroup.com/schemas/regions/" xmlns:stArea="http://ns.adobe.com/xmp/sType/Area#">
    <MP:RegionInfo><rdf:Description><MPRI:Regions><rdf:Bag>
      <rdf:li><rdf:Description><MPReg:PersonDisplayName>Ada  Lovelace</MPReg:PersonDisplayName>
        <MPReg:Rectangle>0.1, 0.2, 0.3, 0.4</MPReg:Rectangle></rdf:Description></rdf:li>
    </rdf:Bag></MPRI:Regions></rdf:Description></MP:RegionInfo>
    <mwg-rs:Regions rdf:parseType="Resource"><mwg-rs:RegionList><rdf:Bag>
      <rdf:li mwg-rs:Name="Rex" mwg-rs:Type="Pet">
        <mwg-rs:Area stArea:x="0.8" stArea:y="0.8" stArea:w="0.1" stArea:h="0.1"/></rdf:li>
    </rdf:Bag></mwg-rs:RegionList></mwg-rs:Regions>
    </rdf:Description></rdf:RDF></x:xmpmeta>"""
    rs = parse_regions(packet).regions
    assert [(r.name, r.source) for r in rs] == [("Ada Lovelace", "mp")]
    assert np.allclose((rs[0].x, rs[0].y, rs[0].w, rs[0].h), (0.1, 0.2, 0.3, 0.4))


def test_parser_refuses_entities_and_broken_xml():
    bomb = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x:xmpmeta xmlns:x="adobe:ns:meta/">&a;</x:xmpmeta>'
    assert parse_regions(bomb).regions == ()
    assert parse_regions(b"<x:xmpmeta xmlns:x='adobe:ns:meta/'><rdf:RDF").regions == ()


def test_sidecar_wins_over_embedded_and_both_names_are_found(tmp_path):
    photo = tmp_path / "a.jpg"
    Image.new("RGB", (200, 100)).save(photo, xmp=sidecar([("Embedded", 0.5, 0.5, 0.2, 0.2)], (200, 100)).encode())
    assert [r.name for r in read_regions(photo)] == ["Embedded"]
    (tmp_path / "a.xmp").write_text(sidecar([("Lightroom", 0.5, 0.5, 0.2, 0.2)], (200, 100)))
    assert [r.name for r in read_regions(photo)] == ["Lightroom"]
    (tmp_path / "a.jpg.xmp").write_text(sidecar([("Digikam", 0.5, 0.5, 0.2, 0.2)], (200, 100)))
    assert [r.name for r in read_regions(photo)] == ["Digikam"]


# -- on import: the bundled sample portraits (no shared data needed) -----------------------------

def test_sidecar_names_the_detected_face_and_adds_the_missed_one(library, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    # Obama's face is at about (222, 157, 238, 344) of 682x785. A second, tiny copy of the face
    # (14 px wide, below the detector's 20 px floor) is pasted where the detector will not see it.
    src = Image.open(SAMPLE / "obama.jpg").convert("RGB")
    small = src.crop((200, 130, 480, 520)).resize((17, 24))
    src.paste(small, (40, 700))
    src.save(photos / "obama.jpg", quality=95)
    w, h = src.size
    regions = [
        ("Barack Obama", (222 + 119) / w, (157 + 172) / h, 250 / w, 330 / h),
        ("Small Obama", (40 + 8.5) / w, (700 + 12) / h, 17 / w, 24 / h),
    ]
    (photos / "obama.jpg.xmp").write_text(sidecar(regions, (w, h)))
    import_all(library, photos)
    got = named_boxes(library)
    assert set(got) == {"Barack Obama", "Small Obama"}
    (big,) = got["Barack Obama"]
    assert np.linalg.norm(centre(big) - [222 + 119, 157 + 172]) < 30
    (tiny,) = got["Small Obama"]
    assert np.allclose(tiny, (40, 700, 17, 24), atol=1.5)
    with library.store.session() as s:
        from sqlalchemy import select

        from engine.store.schema import IS, Constraint, Face

        faces = s.scalars(select(Face)).all()
        assert len(faces) == 2 and all(f.embedding is not None and f.assignment == "user" for f in faces)
        assert {c.kind for c in s.scalars(select(Constraint))} == {IS}
    # The region face is embedded like any other: the tiny copy is closer to the big face than the
    # other sample people would be by chance (squared distance under 2, i.e. positive cosine).
    ids = [library.faces_of(library.find_person(n).id)[0].id for n in ("Barack Obama", "Small Obama")]
    emb = library.embeddings(ids)
    assert emb.shape == (2, 128) and np.isclose(np.linalg.norm(emb[1]), 1.0, atol=0.05)


def test_named_region_on_a_known_name_joins_that_person(imported, tmp_path):
    obama = next(p for p in imported.people() if "obama" in imported.faces_of(p.id)[0].path)
    imported.rename(obama.id, "Barack Obama")
    photos = tmp_path / "more"
    photos.mkdir()
    shutil.copy(SAMPLE / "obama.jpg", photos / "obama_again.jpg")
    Image.open(photos / "obama_again.jpg").transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(photos / "obama_again.jpg")
    (photos / "obama_again.xmp").write_text(sidecar([("barack obama", 0.5, 0.42, 0.35, 0.42)], (682, 785)))
    import_all(imported, photos)
    p = imported.find_person("Barack Obama")
    assert p.id == obama.id and p.faces == 2
    assert {f.assignment for f in imported.faces_of(p.id) if "again" in f.path} == {"user"}


# -- the digiKam-tagged photo and its rotated copy (shared data) ----------------------------------

def _rotate_packet_6(packet: str) -> str:
    """digiKam's regions rewritten for the photo stored turned 90 degrees counter-clockwise (shown
    upright with orientation 6): a displayed point (x, y) is stored at (y, 1 - x)."""

    def mwg(m):
        x, y, w, h = (float(v) for v in m.groups())
        return f'stArea:x="{y}" stArea:y="{1 - x}" stArea:w="{h}" stArea:h="{w}"'

    def mp(m):
        x, y, w, h = (float(v) for v in m.group(1).split(","))
        return f'MPReg:Rectangle="{y}, {1 - x - w}, {h}, {w}"'

    packet = re.sub(r'stArea:x="([\d.]+)" stArea:y="([\d.]+)" stArea:w="([\d.]+)" stArea:h="([\d.]+)"', mwg, packet)
    packet = re.sub(r'MPReg:Rectangle="([^"]+)"', mp, packet)
    return packet.replace('stDim:w="840" stDim:h="700"', 'stDim:w="700" stDim:h="840"')


def _digikam_packet() -> str:
    data = DIGIKAM.read_bytes()
    return data[data.find(b"<x:xmpmeta") : data.find(b"</x:xmpmeta>") + 12].decode()


@pytest.mark.photo_formats
@pytest.mark.parametrize("where", ["embedded", "sidecar"])
def test_digikam_photo_and_its_rotated_copy_name_the_same_faces(tmp_path, where):
    from engine.services.library import Library

    up, rot = tmp_path / "up", tmp_path / "rot"
    up.mkdir()
    rot.mkdir()
    shutil.copy(DIGIKAM, up / "portrait.jpg")
    img = Image.open(DIGIKAM)
    assert img.size == (840, 700) and img.getexif().get(0x0112, 1) == 1
    stored = img.transpose(Image.Transpose.ROTATE_90)  # counter-clockwise
    exif = Image.Exif()
    exif[0x0112] = 6
    packet = _rotate_packet_6(_digikam_packet())
    if where == "embedded":
        stored.save(rot / "portrait_rot.jpg", exif=exif, quality=95, xmp=packet.encode())
    else:
        stored.save(rot / "portrait_rot.jpg", exif=exif, quality=95)
        (rot / "portrait_rot.jpg.xmp").write_text(packet)
    with Library(tmp_path / "lib_up") as a, Library(tmp_path / "lib_rot") as b:
        import_all(a, up)
        import_all(b, rot)
        upright, rotated = named_boxes(a), named_boxes(b)
    assert set(upright) == set(rotated) == {"Marie Curie", "Pierre Curie"}
    for name in upright:
        (ua,), (rb,) = upright[name], rotated[name]
        # The same face, in the displayed frame, within a few pixels (JPEG re-encoding).
        assert np.linalg.norm(centre(ua) - centre(rb)) < 6, (name, ua, rb)
    # And digiKam's own boxes lie on them: Marie left of Pierre, each centre inside its region.
    for name, (x, y, w, h) in {"Marie Curie": (0.3119, 0.2086, 0.1131, 0.1986),
                               "Pierre Curie": (0.6393, 0.1186, 0.0964, 0.2414)}.items():
        cx, cy = centre(upright[name][0]) / [840, 700]
        assert x <= cx <= x + w and y <= cy <= y + h, name
