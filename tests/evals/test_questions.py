"""The "same person?" queue's weights fitted for a model (evals/questions.py), as `calibrate` fits them."""

from __future__ import annotations

import numpy as np
import pytest

from engine.grouping.same_person import QuestionConfig, with_model_weights
from evals.questions import CUTOFF_BOUNDS, Examples, fit_pair_curve, fit_questions, held_out, pair_probability

from conftest import family_cache


def _cache(rng, noise: float, kids: int = 60):
    """Development-set-shaped embeddings (conftest.family_cache) in 16 dimensions, so that people lie close
    enough for the queue's candidates, every photo ``noise`` from its person."""
    return family_cache(rng, young_spread=noise, adult_spread=noise, kids=kids, dim=16, child_shift=0.5)


def test_the_pair_curve_is_recovered_from_answers_drawn_from_it():
    rng = np.random.default_rng(0)
    t, offset, scale = 1.2, 0.1, 0.08
    d = rng.uniform(t - 0.3, t + 0.6, 4000)
    y = rng.random(4000) < 1 / (1 + np.exp((d - t - offset) / scale))
    ex = Examples(np.stack([d, np.zeros_like(d)], 1), y, np.zeros(4000, int), np.arange(4000) % 5,
                  np.full(4000, "lag"))
    w = fit_pair_curve(ex, t)
    assert w[0] == pytest.approx(offset, abs=0.02) and w[1] == pytest.approx(scale, abs=0.015) and w[2] == 0.0
    p = held_out(ex, lambda e: fit_pair_curve(e, t), lambda w_, e: pair_probability(w_, e, t))
    assert np.corrcoef(p, y)[0, 1] > 0.5


def test_weights_fitted_on_family_libraries_follow_the_distances_and_fit_the_queue():
    from evals.family import child_training_set, libraries, out_of_fold_child

    cache = _cache(np.random.default_rng(3), noise=0.2)
    libs = libraries(cache, people=(8, 12))
    c = out_of_fold_child(*child_training_set(cache))
    fit = fit_questions(libs, 1.0, "stable", c, 0.1)
    assert fit.pairs >= 200 and fit.faces >= 200
    # Farther pairs are less often one person; a face far from the rest of its group is more often wrong.
    assert fit.scale > 0 and fit.child_scale > 0
    # The cut-off keeps CUTOFF_COVERS of the same-person pairs, within its bounds.
    assert CUTOFF_BOUNDS[0] <= fit.min_probability <= CUTOFF_BOUNDS[1]
    assert fit.face_weights[1] > 0 and fit.face_child_weights[1] > 0
    stored = fit.as_dict()
    cfg = with_model_weights(QuestionConfig(), stored)
    assert cfg.offset == pytest.approx(fit.offset, abs=1e-4) and cfg.child_weight == pytest.approx(
        fit.child_weight, abs=1e-4)
    assert len(cfg.face_child_weights) == 7 and cfg.face_weights != QuestionConfig().face_weights


def test_too_few_examples_keep_the_shipped_weights():
    from evals.family import libraries

    cache = _cache(np.random.default_rng(4), noise=0.02, kids=10)
    fit = fit_questions(libraries(cache, people=(4, 6))[:2], 1.0, "stable")
    assert fit.offset is None and fit.face_weights is None and fit.child_offset is None
    assert fit.min_probability is None
    assert set(fit.as_dict()) == {"pairs", "faces"} and not fit.fitted
    assert with_model_weights(QuestionConfig(), fit.as_dict()) == QuestionConfig()
