"""``facenet-photos calibrate --model arcface-mbf`` on a library that never activated the pack: its
thresholds used to be thrown away at the end (after ten minutes of embedding) with "no embedding model
'arcface-mbf' in this library"; now the pack gets its (inactive) record and keeps them."""

from __future__ import annotations

from engine.models.packs import ARCFACE_MBF


def test_thresholds_of_a_never_activated_pack_are_stored_and_kept(library):
    model_id = ARCFACE_MBF.spec.model_id
    library.set_model_thresholds(model_id, 1.62, 1.47, 1.21)
    rows = {m["id"]: m for m in library.models()}
    th = rows[model_id]["thresholds"]
    assert (th["verify"], th["cluster"], th["recognise"]) == (1.62, 1.47, 1.21) and th["calibrated"]
    assert not rows[model_id]["active"] and library.active_model_id() == "sface-2021dec-int8bq"
    assert [m["id"] for m in library.models()].count(model_id) == 1
