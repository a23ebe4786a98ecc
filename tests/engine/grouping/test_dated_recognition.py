"""Children growing up: recognition compares a new face with the person's faces nearest in time
(engine/grouping/people.py ``recognise`` with dates), and grouping links a child's ages through the years
in between (the stable method's tree), on a small synthetic dated library."""

from __future__ import annotations

from datetime import datetime

import numpy as np

from engine.grouping.cluster import cluster_faces
from engine.grouping.people import BY_CLUSTER, BY_USER, FaceTable, recognise
from evals.metrics import cluster_scores

E = np.eye(128, dtype=np.float64)


def _at(theta: float, plane=(0, 1), n: int = 1, noise: float = 0.01, seed: int = 0) -> np.ndarray:
    """``n`` unit faces around the angle ``theta`` in a plane of the embedding space: a face that changes
    with age moves along the circle (squared distance 2 - 2 cos of the angle between two ages)."""
    rng = np.random.default_rng(seed)
    a, b = plane
    x = np.cos(theta) * E[a] + np.sin(theta) * E[b] + rng.normal(scale=noise, size=(n, 128))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _day(year: int, month: int = 6) -> float:
    return datetime(year, month, 1).timestamp() / 86400.0


CHILD, PARENT = 1, 2


def _family():
    """The child (person 1) named with one face a year from 2016 to 2019, their face changing as they grow
    (angle 0 -> 0.75); the parent (person 2) with ten childhood photos scanned from 1990-1992 that look very
    much like the child now (angle 1.05), and adult photos 2015-2020 (another part of the space)."""
    faces, people, days, how = [], [], [], []
    for i, year in enumerate(range(2016, 2020)):
        faces.append(_at(0.25 * i, seed=i))
        people.append(CHILD)
        days.append(_day(year))
        how.append(BY_USER if year == 2019 else BY_CLUSTER)
    for i in range(10):
        faces.append(_at(1.05, seed=10 + i))
        people.append(PARENT)
        days.append(_day(1990 + i % 3))
        how.append(BY_CLUSTER)
    for i, year in enumerate(range(2015, 2021)):
        faces.append(_at(0.1 * i, plane=(2, 3), seed=30 + i))
        people.append(PARENT)
        days.append(_day(year))
        how.append(BY_CLUSTER)
    emb = np.concatenate(faces)
    known = FaceTable(ids=np.arange(len(emb)), photo_ids=np.arange(len(emb)), person_ids=np.array(people),
                      assignment=how, emb=emb)
    return known, np.array(days)


def test_a_child_is_recognised_through_their_faces_of_about_the_same_age():
    known, days = _family()
    child_2020 = _at(1.0, seed=99)  # a year older than the last named photo
    # Without dates, the ten childhood photos of the parent are its nearest faces: the child would be
    # suggested as the parent.
    pid, _ = recognise(known, child_2020, 1.0)
    assert pid.tolist() == [PARENT]
    # With the photo dates: the parent's faces near 2020 are adult ones, and they are far; the child's own
    # faces of the last years are near enough.
    pid, d = recognise(known, child_2020, 1.0, known_days=days, query_days=np.array([_day(2020)]))
    assert pid.tolist() == [CHILD]
    assert d[0] < 0.15  # the distance to the child's face nearest to it (2019: ~0.06 plus noise)


def test_old_photos_still_find_the_person_of_their_time():
    known, days = _family()
    # A scanned childhood photo of the parent, dated 1991: compared with the parent's faces of that time.
    pid, _ = recognise(known, _at(1.05, seed=77), 1.0, known_days=days, query_days=np.array([_day(1991)]))
    assert pid.tolist() == [PARENT]
    # A person whose faces are all years away from the new one still gets it: the window starts at the
    # person's face nearest in time, it does not demand a face of the same year.
    far = recognise(known, _at(0.1, seed=78), 1.0, known_days=days, query_days=np.array([_day(2030)]))[0]
    assert far.tolist() == [CHILD]
    # Undated faces vote as before.
    undated = recognise(known, child_2020 := _at(1.0, seed=99), 1.0, known_days=days,
                        query_days=np.array([np.nan]))[0]
    assert undated.tolist() == recognise(known, child_2020, 1.0)[0].tolist()


def test_confirmed_faces_count_more():
    # Two people each with one face near the new one; the user's confirmed one wins a tie of face counts.
    emb = np.concatenate([_at(0.0, seed=1), _at(0.3, seed=2)])
    known = FaceTable(ids=np.arange(2), photo_ids=np.arange(2), person_ids=np.array([5, 6]),
                      assignment=[BY_CLUSTER, BY_USER], emb=emb)
    pid, _ = recognise(known, _at(0.1, seed=3), 1.0)
    assert pid.tolist() == [6]  # farther, but confirmed (without the weight the nearer one, 5, would win)


def test_grouping_links_a_child_through_the_years_in_between():
    # Ten years of a child (3 photos a year), each year a little older: the first and last years are far
    # apart (squared distance ~2.8), consecutive years close. A sibling grows up elsewhere in the space.
    child = np.concatenate([_at(0.2 * y, n=3, seed=y) for y in range(11)])
    sibling = np.concatenate([_at(0.2 * y, plane=(4, 5), n=3, seed=50 + y) for y in range(11)])
    x = np.concatenate([child, sibling])
    y = np.repeat([0, 1], len(child))
    stable = cluster_scores(cluster_faces(x, 1.0, method="stable"), y)
    assert stable.bcubed_f1 == 1.0  # one group per child, all ages
    # Average linkage compares every age with every other: it cuts the years apart.
    assert cluster_scores(cluster_faces(x, 1.0, method="average"), y).n_clusters > 2


def test_photo_days_reads_the_exif_date_and_not_the_file_time(library, tmp_path):
    from PIL import Image
    from sqlalchemy import select

    from engine.grouping.people import photo_days
    from engine.store.schema import Photo

    from conftest import SAMPLE

    d = tmp_path / "dated"
    d.mkdir()
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9003] = "2019:06:01 12:00:00"
    Image.open(SAMPLE / "obama.jpg").save(d / "dated.jpg", exif=exif, quality=95)
    Image.open(SAMPLE / "sunak.jpg").save(d / "undated.jpg", quality=95)
    list(library.import_paths([d]))
    with library.store.session() as s:
        rows = dict((p.rsplit("/", 1)[-1], i) for i, p in s.execute(select(Photo.id, Photo.path)))
        days = photo_days(s, [rows["dated.jpg"], rows["undated.jpg"], rows["dated.jpg"]])
    assert days[0] == days[2] == datetime(2019, 6, 1, 12).timestamp() / 86400.0
    assert np.isnan(days[1])
