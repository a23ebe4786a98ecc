"""``facenet-photos train``: learning from the user's corrections, started by name through the
engine's job API (the command line never imports the training package)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from app.cli.common import cancel_on_sigint, cli, err, fail, open_library, out
from app.cli.progress import drive
from engine.errors import FacenetPhotosError
from engine.services.jobs import find_job, run_job
from engine.services.progress import Stage

LEARN_JOB = "learn-from-corrections"


@cli.command()
def train(
    from_library: Annotated[
        bool, typer.Option("--from-library", help="Learn from the people named and corrected in the library.")
    ] = False,
    method: Annotated[
        str, typer.Option("--method", help="adapter: a linear map on the active model's embeddings (the measured "
                          "gain, any model); finetune: SFace's last block and head (SFace-based models).")
    ] = "adapter",
    max_steps: Annotated[
        int | None, typer.Option("--max-steps", min=1, help="Longest training run (small batches); the step kept "
                                 "is the best on held-out faces (default: adapter 300, finetune 40).")
    ] = None,
    eval_every: Annotated[
        int | None, typer.Option("--eval-every", min=1, help="Check held-out faces every N steps (default: "
                                 "adapter 50, finetune 10).")
    ] = None,
    lfw: Annotated[
        bool, typer.Option("--lfw/--no-lfw", help="Also refuse a model that is worse on a small LFW pair subset "
                           "(when the LFW data is found).")
    ] = True,
    lfw_dir: Annotated[
        Path | None, typer.Option("--lfw-dir", help="The LFW folder for that check (default: the library's "
                                  "'lfw_dir' setting, else $FACENET_PHOTOS_LFW).")
    ] = None,
) -> None:
    """Learn from your corrections (a linear adapter on the active model's embeddings by default); the new
    model is activated only if it is not worse."""
    if not from_library:
        fail("nothing to train from: use --from-library", 2)
    try:
        why = find_job(LEARN_JOB).available()
    except FacenetPhotosError as exc:
        why = str(exc)
    if why:
        fail(f"training is not available: {why}")
    with cancel_on_sigint("Stopping at the next safe point") as cancel:
        with open_library() as lib:
            if method not in ("adapter", "finetune"):
                fail(f"--method: {method!r} is not adapter or finetune", 2)
            options = dict(method=method, lfw=lfw, lfw_dir=lfw_dir)
            options.update({k: v for k, v in (("max_steps", max_steps), ("eval_every", eval_every)) if v})
            last = drive(run_job(LEARN_JOB, lib, cancel, **options), err, note=lambda p: getattr(p, "message", ""))
    res = getattr(last, "result", None)
    if res is None:
        fail("training stopped without a result")
    if res.checkpoints:
        out.print(f"held-out checks while training ({res.heldout_faces} faces, learning from {res.train_faces} of "
                  f"{res.people} people, {res.negatives} \"not this person\" statements):", markup=False)
        for step, score in res.checkpoints:
            kept = "  <- kept" if step == res.chosen_step else ""
            out.print(f"  step {step:>4}: {score.line()}{kept}", highlight=False, markup=False)
    if res.before is not None and res.after is not None:
        how = "stored embeddings" if method == "adapter" else "the app's embedder"
        out.print(f"held-out faces, through {how} (kept step {res.chosen_step}):", markup=False)
        out.print(f"  before ({res.previous_model_id}): {res.before.line()}", highlight=False, markup=False)
        out.print(f"  after:  {res.after.line()}", highlight=False, markup=False)
    if res.lfw_note:
        out.print(res.lfw_note, highlight=False, markup=False)
    if res.activated:
        out.print(f"[green]activated[/] {res.model_id}; {res.re_embedded} faces re-embedded ({res.seconds:.0f}s)")
    else:
        out.print("[yellow]not activated[/]: ", end="")
        out.print(res.message, highlight=False, markup=False)
    if last.stage == Stage.CANCELLED:
        raise typer.Exit(130)
