"""The prepared networks kept on disk between runs (engine/models/prepared.py): made once, read back
identical, checked on every read, and never in the way when the folder is broken or unwritable."""

from __future__ import annotations

import numpy as np
import pytest

from engine.models import prepared
from engine.models.prepared import ENV, RECIPE_VERSION, prepared_bytes


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV, str(tmp_path))
    return tmp_path / "models"


class Maker:
    def __init__(self, data: bytes):
        self.data, self.calls = data, 0

    def __call__(self) -> bytes:
        self.calls += 1
        return self.data


def test_made_once_then_read_back(cache):
    make = Maker(b"graph bytes" * 1000)
    assert prepared_bytes("r", "ab" * 32, make) == make.data
    assert prepared_bytes("r", "ab" * 32, make) == make.data
    assert make.calls == 1
    files = sorted(p.name for p in cache.iterdir())
    assert files == [f"r-{'ab' * 16}-v{RECIPE_VERSION}.onnx", f"r-{'ab' * 16}-v{RECIPE_VERSION}.sha256"]
    # Another source file or another recipe is another entry.
    assert prepared_bytes("r", "cd" * 32, Maker(b"other")) == b"other"
    assert prepared_bytes("s", "ab" * 32, Maker(b"third")) == b"third"


def test_a_new_recipe_version_replaces_what_the_old_one_made(cache, monkeypatch):
    prepared_bytes("r", "ab" * 32, Maker(b"old"))
    prepared_bytes("r", "cd" * 32, Maker(b"another file"))
    monkeypatch.setattr(prepared, "RECIPE_VERSION", RECIPE_VERSION + 1)
    assert prepared_bytes("r", "ab" * 32, Maker(b"new")) == b"new"
    names = sorted(p.name for p in cache.iterdir())
    assert names == sorted([f"r-{'ab' * 16}-v{RECIPE_VERSION + 1}.onnx", f"r-{'ab' * 16}-v{RECIPE_VERSION + 1}.sha256",
                            f"r-{'cd' * 16}-v{RECIPE_VERSION}.onnx", f"r-{'cd' * 16}-v{RECIPE_VERSION}.sha256"])


def test_a_damaged_or_half_written_entry_is_made_again(cache):
    make = Maker(b"x" * 5000)
    prepared_bytes("r", "ab" * 32, make)
    model = next(cache.glob("*.onnx"))
    damaged = bytearray(model.read_bytes())
    damaged[100] ^= 0xFF
    model.write_bytes(bytes(damaged))
    assert prepared_bytes("r", "ab" * 32, make) == make.data and make.calls == 2
    assert model.read_bytes() == make.data  # repaired
    model.with_suffix(".sha256").unlink()  # killed between the model and its checksum
    assert prepared_bytes("r", "ab" * 32, make) == make.data and make.calls == 3
    assert prepared_bytes("r", "ab" * 32, make) == make.data and make.calls == 3
    assert not list(cache.glob("*.part"))


def test_an_unwritable_cache_or_the_cache_turned_off_still_gives_the_bytes(tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setenv(ENV, str(blocker))
    make = Maker(b"y" * 100)
    assert prepared_bytes("r", "ab" * 32, make) == make.data
    assert prepared_bytes("r", "ab" * 32, make) == make.data and make.calls == 2
    monkeypatch.setenv(ENV, "off")
    assert prepared.cache_dir() is None
    assert prepared_bytes("r", "ab" * 32, make) == make.data and make.calls == 3


def test_the_default_folder_is_the_users_cache(monkeypatch, tmp_path):
    monkeypatch.delenv(ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(prepared.sys, "platform", "linux")
    assert prepared.cache_dir() == tmp_path / "facenet-photos" / "models"
    # No home folder at all (a service account): no cache, and the networks still load.
    monkeypatch.delenv("XDG_CACHE_HOME")

    def no_home():
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.setattr(prepared.Path, "home", staticmethod(no_home))
    assert prepared.cache_dir() is None
    assert prepared_bytes("r", "ab" * 32, Maker(b"z")) == b"z"


def test_the_bundled_networks_from_the_cache_compute_what_they_did(cache, monkeypatch, sample_dir):
    # The embedder and the detector built from cached graphs give the same faces and the same vectors as
    # ones whose graphs were made in this process with the cache off.
    from engine.pipeline import detect
    from engine.pipeline.embed import Embedder, runtime_graph
    from engine.pipeline.faces import FaceFinder

    def run():
        detect._graph.cache_clear()
        finder, emb = FaceFinder(), Embedder()
        out = []
        for path in sorted(sample_dir.glob("*.jpg"))[:3]:
            faces = finder.find(path).faces
            assert faces
            out.append(([f.box for f in faces], emb.embed(np.stack([f.crop for f in faces]))))
        return out

    monkeypatch.setenv(ENV, "off")
    fresh = run()
    made_here = runtime_graph(Embedder().spec)
    monkeypatch.setenv(ENV, str(cache.parent))
    run()  # fills the cache
    assert len(list(cache.glob("*.onnx"))) == 2
    # Read back, not made again: the rewrites are not even called.
    from engine.pipeline import embed

    def not_again(*_a, **_k):
        raise AssertionError("the prepared graph was made again instead of read from the cache")

    monkeypatch.setattr(detect, "fold_constants", not_again)
    monkeypatch.setattr(embed, "prelu_as_relu_mix", not_again)
    cached = run()
    assert runtime_graph(Embedder().spec) == made_here
    for (boxes_a, vec_a), (boxes_b, vec_b) in zip(fresh, cached, strict=True):
        assert boxes_a == boxes_b
        assert np.array_equal(vec_a, vec_b)


def test_the_folder_keeps_within_its_limit_dropping_what_was_used_longest_ago(cache, monkeypatch):
    # Each trained or installed model leaves its own prepared copy; the folder must not grow for good.
    import os

    monkeypatch.setattr(prepared, "LIMIT_BYTES", 3000)
    for i, src in enumerate(("aa", "bb", "cc")):
        prepared_bytes("r", src * 32, Maker(bytes([i]) * 1000))
        entry = cache / f"r-{src * 16}-v{RECIPE_VERSION}.onnx"
        os.utime(entry, (1000 + i, 1000 + i))  # made in this order, a second apart
    # Reading "aa" again marks it used now: "bb" is the one used longest ago.
    make_a = Maker(b"\x00" * 1000)
    assert prepared_bytes("r", "aa" * 32, make_a) == make_a.data and make_a.calls == 0
    prepared_bytes("r", "dd" * 32, Maker(b"d" * 1000))
    left = sorted(p.name.split("-")[1][:2] for p in cache.glob("*.onnx"))
    assert left == ["aa", "cc", "dd"]
    assert sorted(p.name.split("-")[1][:2] for p in cache.glob("*.sha256")) == left  # no checksum left alone
    # A model larger than the whole limit is still kept while it is the one in use.
    big = Maker(b"e" * 5000)
    assert prepared_bytes("r", "ee" * 32, big) == big.data
    assert [p.name.split("-")[1][:2] for p in cache.glob("*.onnx")] == ["ee"]
    assert prepared_bytes("r", "ee" * 32, big) == big.data and big.calls == 1
