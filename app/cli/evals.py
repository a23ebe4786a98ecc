"""``facenet-photos eval ...``: the benchmark runs that scripts rely on (their flags and JSON stay).

The other experiments (robustness, storage, grouping sweeps, the dlib baseline) have one front end
each, a script in bench/. Both need the ``eval`` extra; without it the command says what to install."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import typer

from app.cli.common import cli, dump_json, err, eval_cli, fail, open_library, out
from app.cli.progress import ProgressBar

MODEL_HELP = ("Embedding model: sface (the bundled one), arcface-mbf (the arcface pack, non-commercial "
              "weights) or a model registered in --library.")


def _require_eval_extra() -> None:
    from evals.extra import INSTALL_HINT, missing_extra

    absent = missing_extra()
    if absent:
        fail(f"the evaluation tools need the eval extra ({', '.join(absent)} missing): {INSTALL_HINT}")


def _embedder(model: str, flip: bool, threads: int):
    """The embedder of ``model``: SFace, an installed pack, or a model registered in the library."""
    from engine.config import EmbedConfig
    from engine.errors import FacenetPhotosError
    from engine.models.packs import PACKS
    from engine.models.registry import BUILTIN
    from engine.pipeline.embed import known_embedder

    config = EmbedConfig(flip=flip, threads=threads)
    try:
        if model in BUILTIN or model in PACKS or model == "sface":
            return known_embedder(model, config)
        with open_library(create=False) as lib:
            return lib.model_embedder(model, config)
    except FacenetPhotosError as exc:
        fail(str(exc))


@eval_cli.command("lfw")
def eval_lfw(
    lfw: Annotated[Path, typer.Option(help="LFW folder with images/ and pairs.txt.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Where to write the JSON result and ROC plot.")] = Path(
        "results/lfw"
    ),
    pairs: Annotated[str, typer.Option(help="Pairs file inside the LFW folder.")] = "pairs.txt",
    flip: Annotated[bool, typer.Option("--flip", help="Average each face with its mirror image (2x slower).")] = False,
    reuse: Annotated[bool, typer.Option("--reuse", help="Reuse embeddings already in --out.")] = False,
    threads: Annotated[int, typer.Option(help="Network threads (0: every core).")] = 0,
    model: Annotated[str, typer.Option(help=MODEL_HELP)] = "sface",
) -> None:
    """LFW 10-fold accuracy and VAL@FAR=1e-3 through the whole pipeline on the original images."""
    _require_eval_extra()
    from evals.lfw import run_lfw_eval

    if not (lfw / pairs).is_file():
        fail(f"{lfw / pairs} not found (pass --lfw with the folder that holds {pairs} and images/)")
    embedder = _embedder(model, flip, threads)
    with ProgressBar(err, title=f"Embedding LFW ({embedder.model_id})", unit="img", transient=True) as bar:
        res = run_lfw_eval(lfw, out_dir, pairs_file=pairs, embedder=embedder,
                           reuse_embeddings=reuse, on_progress=bar.show)
    f32, i8 = res["float32"], res["int8"]
    out.print(
        f"{embedder.model_id}: LFW 10-fold accuracy {100 * f32['accuracy_mean']:.2f} ± "
        f"{100 * f32['accuracy_std']:.2f} % "
        f"({i8['bytes_per_face']}-byte int8: {100 * i8['accuracy_mean']:.2f} ± {100 * i8['accuracy_std']:.2f} %), "
        f"VAL@FAR=1e-3 {100 * f32['val_mean']:.2f} ± {100 * f32['val_std']:.2f} %, "
        f"threshold {f32['threshold_mean']:.3f}"
    )
    det = res.get("detection", {})
    if det:
        out.print("Detection: " + ", ".join(f"{k} {v}" for k, v in det.get("counts", det).items()
                                            if isinstance(v, int)))
    out.print(f"Wrote {out_dir / 'lfw_result.json'} and {out_dir / 'lfw_roc.png'}", markup=False)


def calibrate_model(lib, model_id: str, lag_dir: Path, lfw_dir: Path, log=None, *, people: tuple[int, int] = (20, 40)):
    """Choose a model's verification, grouping and recognition thresholds and its child classifier on the
    family-shaped development sets (lag-dev and phone-degraded LFW people; evals/family.py) embedded with
    that model, and store them with its record through the library. Returns the ``CalibratedThresholds``."""
    from engine.pipeline.faces import FaceFinder
    from evals.family import build_dev_embeddings, calibrate_thresholds

    embedder = lib.model_embedder(model_id)
    cache = build_dev_embeddings(Path(lag_dir), Path(lfw_dir), FaceFinder(), embedder, log=log)
    result = calibrate_thresholds(cache, people=people)
    lib.set_model_thresholds(model_id, result.verify, result.cluster, result.recognise)
    # The child classifier is stored even when no penalty kept the F1 (penalty 0: off, but listed as fitted).
    if result.child is not None:
        from engine.grouping.children import ChildDirection

        c = result.child
        direction = ChildDirection.from_dict(model_id, {"weights": c.weights, "bias": c.bias,
                                                        "penalty": result.child_penalty})
        lib.set_model_child_direction(model_id, direction, faces=c.faces, young=c.young, auc=round(c.auc, 4))
    else:
        lib.set_model_child_direction(model_id, None)
    # The question weights: stored when something was fitted, else removed (the shipped ones are used).
    q = result.questions
    lib.set_model_question_weights(model_id, q.as_dict() if q is not None and q.fitted else None)
    return result


@cli.command()
def calibrate(
    model: Annotated[str, typer.Option("--model", help="Id of the embedding model (see 'models').")],
    lag: Annotated[Path, typer.Option("--lag", help="The lag-dev folder (labels.tsv and images/).")],
    lfw: Annotated[Path, typer.Option("--lfw", help="The LFW folder (images/<Name>/*.jpg).")],
    json_out: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Choose a model's verification, grouping and recognition thresholds on family-shaped development
    sets (lag-dev children and adults, LFW people with 10+ photos made to look like phone photos), fit its
    child-face classifier and the penalty that keeps different children apart, and store them with the
    model, with the "same person?" queue's weights fitted for it (docs/clustering.md). Takes 2-10 minutes on
    two cores."""
    from engine.errors import ModelError

    for name, d in (("--lag", lag), ("--lfw", lfw)):
        if not d.is_dir():
            fail(f"{name}: {d} is not a folder")
    _require_eval_extra()

    with open_library() as lib:
        try:
            r = calibrate_model(lib, model, lag, lfw, log=lambda m: err.print(m, highlight=False, markup=False))
        except (ModelError, ValueError) as exc:
            fail(str(exc))
    res = {k: v for k, v in dataclasses.asdict(r).items() if k not in ("child", "questions")}
    if r.child is not None:
        res["child_auc"], res["child_faces"], res["child_young"] = r.child.auc, r.child.faces, r.child.young
    if r.questions is not None:
        res["questions"] = r.questions.as_dict()
    if json_out:
        dump_json({"model": model, **res})
        return
    if r.child is None:
        children = "children: too few young faces to fit a classifier"
    elif not r.child_penalty:
        children = "children: no penalty kept the F1"
    else:
        children = (f"children kept apart with penalty {r.child_penalty:.3f} (child-face classifier ROC AUC "
                    f"{r.child.auc:.3f} out of fold, {r.child.young} young faces)")
    out.print(f"{model}: verify {r.verify:.3f}, group {r.cluster:.3f}, recognise {r.recognise:.3f} "
              f"(grouping on {r.libraries} development libraries, {r.faces} faces: BCubed precision "
              f"{r.cluster_precision:.3f}, recall {r.cluster_recall:.3f}, F1 {r.cluster_f1:.3f}; "
              f"verification accuracy {r.verify_accuracy:.3f}); {children}; {_questions_line(r.questions)}; "
              "stored with the model")


def _questions_line(q) -> str:
    if q is None or q.offset is None:
        return "'same person?' questions: too few examples to fit, the shipped weights are kept"
    cut = f", asked while p(same) >= {100 * q.min_probability:.1f} %" if q.min_probability is not None else ""
    return (f"'same person?' questions fitted on {q.pairs} group pairs and {q.faces} faces (p(same) = 0.5 at "
            f"grouping + {q.offset:.3f}{cut})")


@eval_cli.command("lag")
def eval_lag(
    lag: Annotated[Path, typer.Option(help="Folder with labels.tsv (file, identity, age) and images/.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Where to write lag_result.json.")] = Path("results/lag"),
    model: Annotated[str, typer.Option(help=MODEL_HELP)] = "sface",
    folds: Annotated[int, typer.Option(help="Identity folds.")] = 10,
    reuse: Annotated[bool, typer.Option("--reuse", help="Reuse embeddings already in --out.")] = False,
    threads: Annotated[int, typer.Option(help="Network threads (0: every core).")] = 0,
) -> None:
    """Young-vs-adult verification: 10-fold accuracy and TAR@FAR=1e-3 over all impostor pairs."""
    from engine.errors import FacenetPhotosError
    from evals.lag import run_lag_eval

    if folds < 2:
        fail("--folds must be at least 2")
    embedder = _embedder(model, False, threads)
    try:
        with ProgressBar(err, title=f"Embedding faces ({embedder.model_id})", unit="img", transient=True) as bar:
            res = run_lag_eval(lag, out_dir, embedder, folds=folds, reuse_embeddings=reuse, on_progress=bar.show)
    except FacenetPhotosError as exc:
        fail(str(exc))
    out.print(
        f"{embedder.model_id}: young vs adult {res['n_folds']}-fold accuracy {100 * res['accuracy_mean']:.2f} ± "
        f"{100 * res['accuracy_std']:.2f} % ({res['n_positive_pairs']} positive, {res['n_negative_pairs']} negative "
        f"pairs), TAR@FAR={res['far_target']:g} {100 * res['tar_at_far']:.2f} % over {res['n_impostor_pairs']} "
        f"impostor pairs"
    )
    out.print(f"Wrote {out_dir / 'lag_result.json'}", markup=False)
