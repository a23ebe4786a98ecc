"""How many "same person?" answers does a family library need? A simulated user answering the app's own queue.

    python bench/simulate_answers.py            # needs the cache of bench/family_sets.py --make
    python bench/simulate_answers.py --fit      # the p(same | distance) curve the queue uses

Each development library (``family_sets.libraries``) becomes a real library on disk: one photo per face,
the face's SFace embedding stored as an import stores it, then grouped by ``Library.recluster`` with the
library's defaults. Then, one question at a time, the simulated user takes the first question of
``Library.same_person_questions`` and answers it from the truth through ``Library.answer`` (yes when both
groups' majority person is the same, else no): a yes merges the two groups, a no becomes a cannot-link
(``engine/services/same_person.py``). After 0, 10, 50 and 100 answers the groups are scored with BCubed
precision / recall / F1 and corrections per 100 faces (``evals.metrics.corrections``); the last column is
how many answers it took to reach BCubed F1 >= 0.98 (median over libraries; ">N" when not within
``--max-answers``) and in how many libraries it was reached.

``--regroup`` also runs a full regrouping after the last answer, to check that no answer is lost by it.

The queue holds both kinds of question: "same person?" about two groups and "is this face one of them?" about
one face of a group (``kind == "face"``); the simulated user answers a face question yes when the face's
person is the majority person of the strip it is shown against. ``--no-faces`` asks pair questions only (the
queue before face questions). On the lag-dev libraries the cross-age recall (child-adult pairs of one person
in one group) and the false merges per million pairs of different people are reported at each checkpoint.

    python bench/simulate_answers.py --fit-faces    # the face questions' p(not the group's person) model

The child classifier (engine/grouping/children.py) that groups each library and informs its face questions is
fitted without that library's identity fold and stored with the library's SFace record, as ``facenet-photos
calibrate`` stores one (``--shipped-child``: the shipped one, fitted on every lag-dev face, these included).
"""

from __future__ import annotations

import benchlib

benchlib.pin_blas_threads(1)

import argparse  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from calibrate_grouping import cross_age, false_pairs  # noqa: E402
from family_sets import DEFAULT_CACHE, libraries, load_cache  # noqa: E402

CHECKPOINTS = (0, 10, 50, 100)


def build_library(root: Path, emb: np.ndarray, threshold: float | None = None, child_direction=None,
                  question_weights: dict | None = None, model_id: str | None = None):
    """A library whose faces are ``emb`` (one photo each), grouped with the defaults (or at ``threshold``,
    saved as the library's own, so the queue's curve follows it); face ids in row order. ``child_direction``:
    a child classifier stored with SFace's record first (the held-out one; None: the shipped one);
    ``question_weights``: the queue's weights stored with it, as ``calibrate`` stores them (None: the shipped);
    ``model_id``: the embedding model the faces are of, made the library's active one (None: SFace)."""
    from sqlalchemy import insert

    from engine.models.quantize import to_bytes
    from engine.services.library import Library
    from engine.store.schema import DONE, Face, Photo

    lib = Library(root / "lib")
    if model_id is not None:
        from sqlalchemy import select

        from engine.services.library import _record_pack
        from engine.store.schema import ModelRecord

        with lib.store.transaction() as s:
            _record_pack(s, model_id)
            for m in s.scalars(select(ModelRecord).where(ModelRecord.kind == "embedder")):
                m.active = m.id == model_id
    with lib.store.transaction() as s:
        s.execute(insert(Photo), [{"id": i + 1, "path": f"/dev-set/{i + 1}.jpg", "status": DONE, "width": 100,
                                   "height": 100} for i in range(len(emb))])
        s.execute(insert(Face), [{"id": i + 1, "photo_id": i + 1, "x": 0.0, "y": 0.0, "w": 50.0, "h": 50.0,
                                  "landmarks": [], "score": 0.9, "embedding": to_bytes(e),
                                  "model_id": model_id or "sface"}
                                 for i, e in enumerate(emb)])
    if child_direction is not None:
        lib.set_model_child_direction(child_direction.model_id, child_direction)
    if question_weights is not None:
        lib.set_model_question_weights(lib.active_model_id(), question_weights)
    lib.recluster(threshold, save=threshold is not None)
    return lib


def groups(lib, n: int) -> np.ndarray:
    from sqlalchemy import select

    from engine.store.schema import Face

    with lib.store.session() as s:
        rows = s.execute(select(Face.id, Face.person_id)).all()
    lab = np.full(n, -1, np.int64)
    for fid, pid in rows:
        lab[fid - 1] = -fid if pid is None else pid
    return lab


def simulate(emb: np.ndarray, truth: np.ndarray, max_answers: int, target_f1: float = 0.98, regroup: bool = False,
             policy: str = "balanced", curve: dict | None = None, dev=None, faces: bool = True,
             threshold: float | None = None, regroup_every: int | None = None, regroup_neighbours: int = 12,
             child_direction=None, question_weights: dict | None = None, model_id: str | None = None):
    """Returns ({answers: (P, R, F1, corrections per 100, cross-age pairs joined, cross-age pairs, false
    pairs, different-people pairs)}, answers needed for ``target_f1`` or None, seconds per question, the
    scores after a final regrouping or None, and {kind: answers of that kind}). ``dev``: the DevLibrary
    (for the cross-age counts; zeros without it)."""
    from engine.grouping.same_person import QuestionConfig
    from evals.metrics import bcubed, corrections

    if regroup_every is None:  # as the app does
        regroup_every = QuestionConfig().regroup_every
    cfg = QuestionConfig(policy=policy, ask_faces=faces, regroup_every=regroup_every,
                         regroup_neighbours=regroup_neighbours, **(curve or {}))
    kinds: dict[str, list[int]] = {"pair": [0, 0], "face": [0, 0]}  # [yes, no]
    codes = np.unique(truth, return_inverse=True)[1].reshape(-1)
    with tempfile.TemporaryDirectory() as tmp:
        lib = build_library(Path(tmp), emb, threshold, child_direction, question_weights, model_id)
        out: dict[int, tuple] = {}
        needed = None
        spent = 0.0
        asked = 0
        answer_s: list[float] = []

        def score(lab):
            p, r, f = bcubed(lab, codes)
            ca = cross_age(lab, dev) if dev is not None and dev.young.any() else (0, 0)
            return (p, r, f, corrections(lab, codes).per_100_faces, *ca, *false_pairs(lab, codes))

        try:
            for n_ans in range(max_answers + 1):
                lab = groups(lib, len(emb))
                s = score(lab)
                if n_ans in CHECKPOINTS:
                    out[n_ans] = s
                if needed is None and s[2] >= target_f1:
                    needed = n_ans
                if n_ans == max_answers or (needed is not None and n_ans >= CHECKPOINTS[-1]):
                    break
                t0 = time.perf_counter()
                qs = lib.same_person_questions(1, cfg)
                spent += time.perf_counter() - t0
                asked += 1
                if not qs:
                    break
                q = qs[0]
                if q.kind == "face":
                    strip = np.asarray(q.faces_a, np.int64) - 1  # face ids are rows + 1
                    same = codes[q.face_id - 1] == np.bincount(codes[strip]).argmax()
                else:
                    maj = {}
                    for pid in (q.person_a, q.person_b):
                        maj[pid] = np.bincount(codes[lab == pid]).argmax()
                    same = maj[q.person_a] == maj[q.person_b]
                kinds[q.kind][0 if same else 1] += 1
                t0 = time.perf_counter()
                lib.answer(q, "yes" if same else "no", cfg)
                answer_s.append(time.perf_counter() - t0)
            final = groups(lib, len(emb))
            for c in CHECKPOINTS:
                out.setdefault(c, score(final))
            after = None
            if regroup:
                lib.recluster()
                after = score(groups(lib, len(emb)))
        finally:
            lib.close()
    kinds["answer_s"] = answer_s
    return out, needed, spent / max(asked, 1), after, kinds


def held_out_child_directions(cache, penalty: float | None = None, model_id: str | None = None) -> dict[int, object]:
    """SFace-space child classifiers per identity fold, each fitted without that fold's people (so no
    library is grouped or questioned with a classifier that saw its people), with the shipped penalty (or
    ``penalty``)."""
    from engine.grouping.children import ChildDirection, load_directions
    from engine.models.registry import SFACE
    from evals.family import child_training_set, fold_child_classifiers

    if penalty is None:
        penalty = load_directions()[SFACE.model_id].penalty
    mid = model_id or SFACE.model_id
    return {f: ChildDirection(mid, m.coef_[0].astype(np.float64), float(m.intercept_[0]), penalty)
            for f, m in fold_child_classifiers(*child_training_set(cache)).items()}


def fit_faces(libs, threshold: float, method: str, cache) -> None:
    """Fit the face questions' p(not the group's person) (evals.questions.face_examples: every face of a group
    of two or more of the automatic grouping; ``QuestionConfig.face_weights`` on the grouping without the
    children's penalty, ``face_child_weights`` with it and the child likelihoods out of fold). Prints both fits
    and their held-out ROC AUC (weights fitted on four identity folds, scored on the fifth) per kind."""
    from sklearn.metrics import roc_auc_score

    from evals.family import child_training_set, out_of_fold_child
    from evals.questions import face_examples, fit_logistic, held_out

    c_all = out_of_fold_child(*child_training_set(cache))
    penalty = held_out_child_directions(cache)[0].penalty
    for with_child in (False, True):
        ex = face_examples(libs, threshold, method, c_all if with_child else None, penalty)
        z = held_out(ex, fit_logistic, lambda w, e: e.x @ w)
        auc = ", ".join(f"{k} {roc_auc_score(ex.y[ex.kind == k], z[ex.kind == k]):.3f}"
                        for k in ("lag", "lfw-phone", "mixed") if (ex.kind == k).any())
        w = fit_logistic(ex)
        name = "face_child_weights" if with_child else "face_weights"
        print(f"{method} at {threshold:.2f}{' with the children penalty' if with_child else ''}: {len(ex)} faces in "
              f"groups of 2+ ({ex.y.mean():.4f} not of their group's majority person): {name} = "
              f"({', '.join(f'{v:.3f}' for v in w)}); held-out ROC AUC all {roc_auc_score(ex.y, z):.3f}, {auc}")


def fit_curve(libs, threshold: float, method: str, with_rank: bool = True, cache=None) -> None:
    """Fit p(same) = sigmoid((threshold + offset - d) / scale - rank_weight * log(1 + rank)) on the group pairs
    the queue looks at within threshold + 0.6 of the automatic grouping (evals.questions.pair_examples).
    ``with_rank`` False: distance alone (rank_weight 0). Also cross-validated over the five identity folds: the
    held-out log-loss and, per kind, how many of each library's first 10 and 30 pairs by the held-out p are
    one person. Given the ``cache``, the child curve is fitted too (``QuestionConfig.child_*``: offset, scale
    and the weight of the product of the two groups' mean child likelihoods, out of fold), on the grouping with
    the children's penalty."""
    from evals.questions import pair_examples

    _fit_curve(pair_examples(libs, threshold, method), threshold, method, with_rank)
    if cache is not None:
        from evals.family import child_training_set, out_of_fold_child

        c_all = out_of_fold_child(*child_training_set(cache))
        ex = pair_examples(libs, threshold, method, c_all, held_out_child_directions(cache)[0].penalty)
        _fit_curve(ex, threshold, method, False)


def _fit_curve(ex, threshold: float, method: str, with_rank: bool) -> None:
    from evals.questions import fit_pair_curve, held_out, pair_probability

    w = fit_pair_curve(ex, threshold, with_rank)
    held = np.clip(held_out(ex, lambda e: fit_pair_curve(e, threshold, with_rank),
                            lambda w_, e: pair_probability(w_, e, threshold, with_rank)), 1e-9, 1 - 1e-9)
    y = ex.y.astype(float)
    loss = -(y * np.log(held) + (1 - y) * np.log(1 - held)).mean()
    tops = []
    for k in sorted(set(ex.kind.tolist())):
        t10, t30 = [], []
        for li in np.unique(ex.library[ex.kind == k]):
            o = np.argsort(-held[ex.library == li], kind="stable")
            t10.append(y[ex.library == li][o[:10]].mean())
            t30.append(y[ex.library == li][o[:30]].mean())
        tops.append(f"{k} {np.mean(t10):.3f} / {np.mean(t30):.3f}")
    child = ex.x.shape[1] > 2
    pre = "child_" if child else ""
    print(f"{method} at {threshold:.2f}{' with the children penalty' if child else ''}: {len(ex)} group pairs "
          f"within threshold + 0.6 ({y.mean():.3f} same person): {pre}offset {w[0]:.3f}, {pre}scale {w[1]:.3f}"
          + (f", rank_weight {w[2]:.3f}" if with_rank else "") + (f", child_weight {w[3]:.3f}" if child else ""))
    print(f"held out (five folds): log-loss {loss:.4f}; one person among each library's first 10 / 30 pairs: "
          + ", ".join(tops))


def held_out_question_weights(libs, cache, threshold: float, method: str, penalty: float) -> dict[int, dict]:
    """Per identity fold, the question weights ``calibrate`` would store (evals.questions.fit_questions),
    fitted on the other folds' libraries (child likelihoods out of fold), in the stored form."""
    from evals.family import child_training_set, out_of_fold_child
    from evals.questions import fit_questions

    c_all = out_of_fold_child(*child_training_set(cache))
    return {f: fit_questions([lib for lib in libs if lib.fold != f], threshold, method, c_all, penalty).as_dict()
            for f in sorted({lib.fold for lib in libs})}


def _app_regroup_every() -> int:
    from engine.grouping.same_person import QuestionConfig

    return QuestionConfig().regroup_every


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    ap.add_argument("--max-answers", type=int, default=200)
    ap.add_argument("--per-kind", type=int, default=0, help="only the first N libraries of each kind (0: all 20)")
    ap.add_argument("--fit", action="store_true", help="fit the probability curve and stop")
    ap.add_argument("--fit-faces", action="store_true", help="fit the face questions' model and stop")
    ap.add_argument("--no-faces", action="store_true", help="pair questions only (no 'is this face one of them?')")
    ap.add_argument("--method", default=None, help="with --fit: the grouping method (default: ClusterConfig's)")
    ap.add_argument("--threshold", type=float, default=None, help="with --fit: the grouping threshold")
    ap.add_argument("--policy", default="balanced", help="the queue's ranking (QuestionConfig.policy)")
    ap.add_argument("--group-threshold", type=float, default=None,
                    help="group each library at this T (saved as its threshold) instead of the default")
    ap.add_argument("--kinds", nargs="+", default=["lag", "lfw-phone", "mixed"], help="only these kinds")
    ap.add_argument("--regroup", action="store_true", help="regroup after the answers and score again")
    ap.add_argument("--regroup-neighbours", type=int, default=12,
                    help="groups near each answered one the regrouping looks at (0: the whole library)")
    ap.add_argument("--regroup-every", type=int, default=_app_regroup_every(),
                    help="regroup near the answered groups after every N answers (0: never; default: the app's, "
                         "QuestionConfig.regroup_every)")
    ap.add_argument("--offset", type=float, default=None, help="the curve's offset instead of QuestionConfig's")
    ap.add_argument("--scale", type=float, default=None, help="the curve's scale instead of QuestionConfig's")
    ap.add_argument("--rank-weight", type=float, default=None,
                    help="the curve's weight on the neighbour rank instead of QuestionConfig's")
    ap.add_argument("--no-rank", action="store_true", help="with --fit: the distance alone (rank_weight 0)")
    ap.add_argument("--min-probability", type=float, default=None, help="the queue's cut-off (QuestionConfig's)")
    ap.add_argument("--face-value", type=float, default=None, help="face questions' score factor (QuestionConfig's)")
    ap.add_argument("--no-child-faces", action="store_true",
                    help="face questions without the child likelihoods (QuestionConfig.face_weights for every model)")
    ap.add_argument("--no-child-pairs", action="store_true",
                    help="pair questions on the distance curve alone for every model (no child curve)")
    ap.add_argument("--child-penalty", type=float, default=None,
                    help="the held-out classifiers' grouping penalty (default: the shipped one's)")
    ap.add_argument("--model", default=None,
                    help="the embedding model the cache's faces are of (default: SFace; e.g. arcface-mbf)")
    ap.add_argument("--fitted-questions", action="store_true",
                    help="rank each library's questions with weights fitted as calibrate fits them, on the other "
                         "identity folds' libraries, stored with its model (default: the shipped ones)")
    ap.add_argument("--shipped-child", action="store_true",
                    help="group and ask with the shipped child classifier (fitted on every lag-dev face) instead "
                         "of one fitted without each library's fold")
    args = ap.parse_args(argv)
    cache = load_cache(args.cache)
    libs = libraries(cache)
    if args.fit or args.fit_faces:
        # The grouping the queue follows: the shipped defaults (the curve was first fitted at average 1.15).
        from engine.config import ClusterConfig

        cc = ClusterConfig()
        if args.fit_faces:
            fit_faces(libs, args.threshold or cc.threshold, args.method or cc.method, cache)
        else:
            fit_curve(libs, args.threshold or cc.threshold, args.method or cc.method, with_rank=not args.no_rank,
                      cache=cache)
        return 0
    kinds = tuple(args.kinds)
    libs = [lib for lib in libs if lib.kind in kinds]
    if args.per_kind:
        libs = [lib for k in kinds for lib in [x for x in libs if x.kind == k][: args.per_kind]]
    given = (("offset", args.offset), ("scale", args.scale), ("rank_weight", args.rank_weight),
             ("min_probability", args.min_probability), ("face_value", args.face_value))
    curve = {k: v for k, v in given if v is not None}
    if args.no_child_faces:
        from engine.grouping.same_person import QuestionConfig

        curve["face_child_weights"] = (*QuestionConfig().face_weights, 0.0, 0.0)
    if args.no_child_pairs:
        from engine.grouping.same_person import QuestionConfig

        qc0 = QuestionConfig()
        curve.update(child_offset=qc0.offset, child_scale=qc0.scale, child_weight=0.0)
    held_out = {} if args.shipped_child else held_out_child_directions(cache, args.child_penalty, args.model)
    weights = {}
    if args.fitted_questions:
        from engine.config import ClusterConfig

        pen = args.child_penalty if args.child_penalty is not None else held_out_child_directions(cache)[0].penalty
        weights = held_out_question_weights(libraries(cache), cache, args.group_threshold or ClusterConfig().threshold,
                                            ClusterConfig().method, pen)
        for f, w in weights.items():
            print(f"fold {f}: {w}")
    res = []
    for i, lib in enumerate(libs):
        res.append(simulate(lib.emb, lib.truth, args.max_answers, regroup=args.regroup, policy=args.policy,
                            curve=curve, dev=lib, faces=not args.no_faces, threshold=args.group_threshold,
                            regroup_every=args.regroup_every, regroup_neighbours=args.regroup_neighbours,
                            child_direction=held_out.get(lib.fold), question_weights=weights.get(lib.fold),
                            model_id=args.model))
        print(f"library {i + 1}/{len(libs)} ({lib.kind}, {len(lib.emb)} faces): needed {res[-1][1]}, "
              f"{res[-1][2] * 1000:.0f} ms a question", flush=True)
    from engine.grouping.same_person import QuestionConfig

    qc = QuestionConfig(policy=args.policy, **curve)
    print(f"\npolicy {args.policy}, curve offset {qc.offset}, scale {qc.scale}, rank_weight {qc.rank_weight}, "
          f"min_probability {qc.min_probability}; "
          f"face questions {'off' if args.no_faces else 'on'}; grouping T {args.group_threshold or 'default'}; "
          f"regroup near the answers every {args.regroup_every or 'never'} "
          f"child classifier {'shipped' if args.shipped_child else 'held out per fold'}"
          f"{'' if args.child_penalty is None else f', penalty {args.child_penalty}'}; "
          f"question weights {'fitted per fold' if args.fitted_questions else 'shipped'}; "
          f"({args.regroup_neighbours or 'all'} neighbours); "
          f"{len(libs)} libraries")
    print("| set | " + " | ".join(f"after {c}" for c in CHECKPOINTS)
          + f" | answers to F1 0.98 (median; reached within {args.max_answers})"
          + (" | after the answers and a regrouping" if args.regroup else "") + " |")
    print("|---|" + "---|" * len(CHECKPOINTS) + "---|" + ("---|" if args.regroup else ""))
    for kind in (*kinds, "all"):
        sel = [r for lib, r in zip(libs, res, strict=True) if kind in ("all", lib.kind)]
        cells = []
        for c in CHECKPOINTS:
            v = np.mean([r[0][c] for r in sel], axis=0)
            cells.append(f"{v[0]:.3f} / {v[1]:.3f} / {v[2]:.3f}, {v[3]:.1f}")
        need = [r[1] if r[1] is not None else np.inf for r in sel]
        med = np.median(need)
        med_s = f"{med:.0f}" if np.isfinite(med) else f">{args.max_answers}"
        extra = ""
        if args.regroup:
            v = np.mean([r[3] for r in sel], axis=0)
            extra = f" {v[0]:.3f} / {v[1]:.3f} / {v[2]:.3f}, {v[3]:.1f} |"
        print(f"| {kind} | " + " | ".join(cells) + f" | {med_s}; {int(np.isfinite(need).sum())}/{len(sel)} |"
              + extra, flush=True)
    lag = [r for lib, r in zip(libs, res, strict=True) if lib.kind == "lag"]
    if lag:
        print("\n| lag-dev | " + " | ".join(f"after {c}" for c in CHECKPOINTS) + " |")
        print("|---|" + "---|" * len(CHECKPOINTS))
        cells = []
        for c in CHECKPOINTS:
            t = np.sum([r[0][c][4:8] for r in lag], axis=0)
            cells.append(f"cross-age recall {t[0] / max(t[1], 1):.3f}, {1e6 * t[2] / max(t[3], 1):.0f} false merges "
                         "per 10^6 pairs")
        print("| | " + " | ".join(cells) + " |")
    for kind in (*kinds, "all"):
        sel = [r for lib, r in zip(libs, res, strict=True) if kind in ("all", lib.kind)]
        k = {q: np.sum([r[4][q] for r in sel], axis=0) for q in ("pair", "face")}
        ans = np.concatenate([r[4]["answer_s"] for r in sel] or [[0.0]])
        print(f"{kind}: an answer (with its regrouping) median {1000 * np.median(ans):.0f} ms, max "
              f"{1000 * ans.max():.0f} ms")
        print(f"{kind}: answers to pair questions {int(k['pair'].sum())} ({int(k['pair'][0])} yes), to face "
              f"questions {int(k['face'].sum())} ({int(k['face'][0])} yes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
