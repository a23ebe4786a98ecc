from __future__ import annotations

import shutil
import threading
from pathlib import Path

from PIL import Image
from sqlalchemy import func, select

from engine.store.schema import Face, Photo

from conftest import SAMPLE


def run(lib, paths, **kw):
    progress = list(lib.import_paths(paths, **kw))
    return progress[-1]


def counts(lib):
    with lib.store.session() as s:
        return s.scalar(select(func.count(Photo.id))), s.scalar(select(func.count(Face.id)))


def test_import_sample_groups_people(library, sample_dir):
    res = run(library, [sample_dir])
    assert res.stage == "done"
    assert (res.done, res.faces, res.failures) == (6, 6, [])
    people = library.people()
    sizes = sorted(p.faces for p in people)
    assert sizes == [1, 1, 2, 2]
    for p in people:
        names = {f.path.rsplit("/", 1)[-1].split("_")[0].removesuffix(".jpg") for f in library.faces_of(p.id)}
        assert len(names) == 1, names  # no group mixes two people
    # thumbnails exist for every face
    with library.store.session() as s:
        for (fid,) in s.execute(select(Face.id)):
            assert library.thumbnail(fid).exists()


def test_reimport_is_idempotent_and_duplicates_are_skipped(library, sample_dir):
    run(library, [sample_dir])
    before = counts(library)
    res = run(library, [sample_dir])
    assert res.skipped == 6 and res.done == 0
    assert counts(library) == before
    shutil.copy(sample_dir / "obama.jpg", sample_dir / "copy_of_obama.jpg")
    res = run(library, [sample_dir])
    assert res.duplicates == 1 and res.faces == 0
    assert counts(library)[1] == before[1]


def test_moved_file_is_relinked_keeping_labels(library, sample_dir):
    run(library, [sample_dir])
    obama = next(p for p in library.people() if "obama" in library.faces_of(p.id)[0].path)
    library.rename(obama.id, "Barack Obama")
    sub = sample_dir / "moved"
    sub.mkdir()
    (sample_dir / "obama.jpg").rename(sub / "renamed.jpg")
    res = run(library, [sample_dir])
    assert res.relinked == 1 and res.faces == 0
    p = library.find_person("Barack Obama")
    assert [f.path for f in library.faces_of(p.id)] == [str(sub / "renamed.jpg")]
    assert counts(library) == (6, 6)


def test_new_faces_are_recognised_as_named_people(library, sample_dir, tmp_path):
    first = tmp_path / "first"
    first.mkdir()
    for name in ("ardern_2018.jpg", "macron_2014.jpg", "obama.jpg"):
        shutil.move(sample_dir / name, first / name)
    run(library, [first])
    for p in library.people():
        stem = library.faces_of(p.id)[0].path.rsplit("/", 1)[-1].split("_")[0].removesuffix(".jpg")
        library.rename(p.id, stem.title())
    run(library, [sample_dir])
    ardern = library.find_person("Ardern")
    faces = library.faces_of(ardern.id)
    assert len(faces) == 2
    new = [f for f in faces if f.path.endswith("ardern_2022.jpg")][0]
    assert new.assignment == "suggestion" and new.confidence is not None
    assert [f.id for f in library.review_queue()] and new.id in [f.id for f in library.review_queue()]
    assert library.find_person("Macron").faces == 2


def test_cancel_keeps_done_work_and_resumes(library, tmp_path):
    src = tmp_path / "many"
    src.mkdir()
    base = Image.open(SAMPLE / "sunak.jpg")
    for i in range(12):
        base.rotate(i * 0.5).save(src / f"s{i:02d}.jpg", quality=80)
    cancel = threading.Event()
    from engine.config import ImportConfig

    cfg = ImportConfig(commit_every=2)
    seen = []
    for p in library.import_paths([src], cfg, cancel=cancel):
        seen.append(p.stage)
        if p.stage == "analyse" and p.done >= 2:
            cancel.set()
    assert seen[-1] == "cancelled"
    n_photos, _ = counts(library)
    assert 2 <= n_photos < 12
    res = run(library, [src], config=cfg)
    assert res.stage == "done"
    assert res.skipped == n_photos
    assert counts(library) == (12, 12)


def test_heic_photos_and_model_records(library, tmp_path):
    d = tmp_path / "heic"
    d.mkdir()
    Image.open(SAMPLE / "obama.jpg").save(d / "obama.heic")
    Image.open(SAMPLE / "sunak.jpg").save(d / "sunak.webp")
    Image.open(SAMPLE / "ardern_2018.jpg").save(d / "ardern.tiff")
    last = run(library, [d])
    assert last.failures == [] and last.faces == 3
    models = {m["id"]: m for m in library.models()}
    assert models["sface-2021dec-int8bq"]["active"] and models["sface-2021dec-int8bq"]["dim"] == 128
    with library.store.session() as s:
        assert set(s.scalars(select(Face.model_id))) == {"sface-2021dec-int8bq"}
    a, b, c = (f.id for p in library.people() for f in library.faces_of(p.id))
    assert not library.verify_faces(a, b).same and library.verify_faces(a, a).distance < 1e-6


def test_import_lets_go_of_committed_pixels(library, sample_dir, monkeypatch):
    """The crops and thumbnails of committed photos are freed while the import goes on (a 50,000-photo
    import kept ~110 KB per face alive until its end)."""
    import gc
    import weakref

    from engine.config import ImportConfig
    from engine.pipeline.faces import FaceFinder

    refs = []
    real = FaceFinder.find

    def find(self, path, *args):
        found = real(self, path, *args)
        refs.append(weakref.ref(found))
        return found

    monkeypatch.setattr(FaceFinder, "find", find)
    for prog in library.import_paths([sample_dir], ImportConfig(commit_every=2)):
        if prog.stage == "recognise":  # every batch committed; the import's frame is still alive
            gc.collect()
            assert len(refs) == 6
            assert [r() for r in refs] == [None] * 6


def test_workers_keep_analysing_while_a_batch_is_written(library, tmp_path, monkeypatch):
    """While the main thread writes a commit batch, the decode/detect/embed workers go on with the
    photos queued behind it: a whole commit batch more than the workers' own queue (with only the
    workers' queue, they stopped after 4 photos a worker and one core sat idle)."""
    import time

    import engine.services.importer as importer
    from engine.config import ImportConfig
    from engine.pipeline.faces import FaceFinder
    from engine.services.importer import run_import

    src = tmp_path / "many"
    src.mkdir()
    base = Image.open(SAMPLE / "sunak.jpg")
    for i in range(14):
        base.rotate(i * 0.5).save(src / f"s{i:02d}.jpg", quality=80)
    analysed = []
    real_find = FaceFinder.find

    def find(self, path, *args):
        out = real_find(self, path, *args)
        analysed.append(path)
        return out

    monkeypatch.setattr(FaceFinder, "find", find)
    real_write = importer._write_batch
    seen_during_first_write = []

    def write_batch(*args):
        if not seen_during_first_write:
            # 2 photos in this batch; the queue behind it: 2 (a commit batch) + 4 (one worker's own).
            deadline = time.monotonic() + 30
            while len(analysed) < 8 and time.monotonic() < deadline:
                time.sleep(0.02)
            seen_during_first_write.append(len(analysed))
        return real_write(*args)

    monkeypatch.setattr(importer, "_write_batch", write_batch)
    progs = list(run_import(library.store, [src], ImportConfig(commit_every=2, cluster_after=False),
                            embedder=library.embedder(), workers=1))
    assert progs[-1].stage == "done" and progs[-1].done == 14
    assert seen_during_first_write == [8]


def test_faces_embedded_on_the_workers_are_those_of_the_batched_path(tmp_path, sample_dir, monkeypatch):
    """On the CPU each worker embeds its photo's faces; a GPU embedder gets them as one batch on the
    main thread instead. Both store the same vectors, and the worker path makes no call of its own
    on the main thread."""
    from engine.services.library import Library

    stored = {}
    main_thread_calls = {}
    for path in ("workers", "batched"):
        lib = Library(tmp_path / path)
        try:
            embedder = lib.embedder()
            real_embed = embedder.embed
            calls = main_thread_calls[path] = []

            def embed(faces, *, here=False, real_embed=real_embed, calls=calls):
                if threading.current_thread() is threading.main_thread():
                    calls.append(len(faces))
                return real_embed(faces, here=here)

            monkeypatch.setattr(embedder, "embed", embed)
            if path == "batched":
                monkeypatch.setattr(embedder, "on_gpu", True)
            assert run(lib, [sample_dir]).faces == 6
            with lib.store.session() as s:
                stored[path] = {(Path(p).name, round(x)): e for p, x, e in
                                s.execute(select(Photo.path, Face.x, Face.embedding).join(Face))}
        finally:
            lib.close()
    assert main_thread_calls == {"workers": [], "batched": [6]}
    assert len(stored["workers"]) == 6
    assert stored["workers"] == stored["batched"]  # the same stored bytes, face by face
