"""engine.services.overview: incremental import, threshold preview, folder summary."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest

from engine.services.overview import (
    _batch_sizes,
    count_people,
    folder_summary,
    gpu_available,
    import_incrementally,
    load_cluster_input,
    sidebar_counts,
)

from conftest import SAMPLE  # noqa: E402


@pytest.fixture
def photos(sample_dir) -> Path:
    return sample_dir  # the six portraits (conftest)


@pytest.fixture
def lib(library):
    return library  # a fresh library (conftest)


def test_batch_sizes_cover_everything_and_grow():
    sizes = list(_batch_sizes(1000, 48, 2.0, 300))
    assert sum(sizes) == 1000
    assert sizes[:4] == [48, 96, 192, 300]
    assert max(sizes) == 300
    assert list(_batch_sizes(0, 48, 2.0, 300)) == []


def test_incremental_import_groups_after_each_batch(lib, photos):
    (photos / "broken.jpg").write_bytes(b"not a jpeg")
    reports = list(import_incrementally(lib, [photos], first_batch=2, growth=1.0))
    last = reports[-1]
    assert last.stage == "done"
    assert last.done == 7 and last.faces == 6
    assert last.total == 7
    assert last.failed == 1 and last.failures[0][0].endswith("broken.jpg")
    assert last.batches == 3  # four batches of two; the last holds only the broken file
    assert len(last.new_face_ids) == 6
    # Each report is its own object, so another thread can read it while the import goes on.
    assert len({id(r) for r in reports}) == len(reports)
    assert [r.done for r in reports] == sorted(r.done for r in reports)
    assert sorted(p.faces for p in lib.people()) == [1, 1, 2, 2]
    # People appeared before the end: the batch counter grew during the import.
    assert any(0 < r.batches < last.batches for r in reports)


def test_small_import_is_one_ordinary_import(lib, photos):
    last = list(import_incrementally(lib, [photos]))[-1]
    assert (last.stage, last.done, last.faces, last.batches) == ("done", 6, 6, 1)
    assert lib.last_import()["roots"] == [str(photos)]
    again = list(import_incrementally(lib, [photos]))[-1]
    assert (again.stage, again.skipped, again.done, again.total, again.batches) == ("done", 6, 0, 0, 0)


def test_cancel_keeps_what_was_imported(lib, photos):
    cancel = threading.Event()
    seen = []
    for r in import_incrementally(lib, [photos], cancel=cancel, first_batch=2, growth=1.0):
        seen.append(r)
        if r.batches >= 1:
            cancel.set()
    assert seen[-1].stage == "cancelled"
    assert 2 <= lib.stats()["faces"] < 6
    # The import's worker threads are gone (Qt pool threads of other tests may show up as dummies).
    left = [t for t in threading.enumerate()
            if t is not threading.main_thread() and not isinstance(t, threading._DummyThread)]
    assert left == []


def test_missing_folder_is_reported(lib, tmp_path):
    last = list(import_incrementally(lib, [tmp_path / "nope"]))[-1]
    assert last.stage == "done"
    assert last.failures == [(str(tmp_path / "nope"), "no such file or folder")]


def test_threshold_preview_counts_people(lib, photos):
    list(import_incrementally(lib, [photos]))
    data = load_cluster_input(lib)
    assert len(data) == 6
    assert count_people(data, lib.cluster_config().threshold) == 4
    assert count_people(data, -1.0) == 6
    assert count_people(data, 4.0) < 4


def test_folder_summary(lib, photos):
    (photos / "sub").mkdir()
    shutil.copy2(SAMPLE / "obama.jpg", photos / "sub" / "obama_again.png")
    (photos / "sub" / "bad.jpg").write_bytes(b"")
    list(import_incrementally(lib, [photos]))
    rows = {r.folder: r for r in folder_summary(lib)}
    assert rows[str(photos)].photos == 6 and rows[str(photos)].faces == 6
    sub = rows[str(photos / "sub")]
    assert sub.failed == 1


def test_gpu_available_is_a_bool():
    assert isinstance(gpu_available(), bool)


def test_sidebar_counts_follow_edits(lib, photos):
    list(import_incrementally(lib, [photos]))
    assert sidebar_counts(lib) == {"people": 4, "unnamed": 4, "hidden": 0, "review": 0}
    people = lib.people()
    lib.rename(people[0].id, "Someone")
    lib.set_hidden([people[-1].id], True)
    assert sidebar_counts(lib) == {"people": 3, "unnamed": 2, "hidden": 1, "review": 0}
