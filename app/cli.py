"""The `facenet-photos` command line."""

from __future__ import annotations

import json
import signal
import sys
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from engine.errors import FacenetPhotosError, LibraryInUseError

cli = typer.Typer(
    name="facenet-photos",
    help="Find every face in your photos, group them into people, name and correct them - offline.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
eval_cli = typer.Typer(help="Evaluate the pipeline on public benchmarks.", no_args_is_help=True)
cli.add_typer(eval_cli, name="eval")

out = Console()
err = Console(stderr=True)


class State:
    library: Path | None = None


state = State()


@cli.callback()
def _main(
    library: Annotated[
        Path | None,
        typer.Option(
            "--library", "-L", help="Library folder (default: your user data folder).", envvar="FACENET_PHOTOS_LIBRARY"
        ),
    ] = None,
) -> None:
    state.library = library


def _open(create: bool = True):
    from engine.library import Library

    return Library(state.library, create=create)


def _fail(msg: str, code: int = 1) -> None:
    err.print(f"[bold red]error:[/] {msg}", highlight=False)
    raise typer.Exit(code)


@contextmanager
def _cancel_on_sigint(message: str):
    """First Ctrl+C asks the running job to stop at a safe point; a second one aborts."""
    cancel = threading.Event()
    old = signal.getsignal(signal.SIGINT)

    def on_sigint(*_):
        if cancel.is_set():
            raise KeyboardInterrupt
        cancel.set()
        err.print(f"[yellow]{message} (Ctrl+C again to abort)...[/]")

    signal.signal(signal.SIGINT, on_sigint)
    try:
        yield cancel
    finally:
        signal.signal(signal.SIGINT, old)


def _dump(obj) -> None:
    # surrogateescape writes non-UTF-8 file names back as the exact bytes they came from
    text = json.dumps(obj, indent=2, default=str, ensure_ascii=False) + "\n"
    sys.stdout.flush()
    sys.stdout.buffer.write(text.encode("utf-8", "surrogateescape"))
    sys.stdout.flush()


def _shown(path: str) -> str:
    """A path safe to print: undecodable bytes become U+FFFD."""
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _person_json(lib, p, with_faces: bool = True) -> dict:
    d = {"id": p.id, "name": p.name, "hidden": p.hidden, "faces": p.faces, "photos": p.photos}
    if with_faces:
        d["face_list"] = [
            {"id": f.id, "photo": f.path, "box": [round(v, 1) for v in f.box], "assignment": f.assignment}
            for f in lib.faces_of(p.id)
        ]
    return d


@cli.command("import")
def import_cmd(
    paths: Annotated[list[Path], typer.Argument(help="Folders or photo files to import.")],
    no_cluster: Annotated[bool, typer.Option("--no-cluster", help="Import only; group later.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Scan folders, find and embed faces, and group them into people."""
    from engine.config import ImportConfig

    cfg = ImportConfig(cluster_after=not no_cluster)
    last = None
    with _cancel_on_sigint("Stopping after the current batch") as cancel:
        with _open() as lib:
            cols = (
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"), TextColumn("faces: {task.fields[faces]}"),
                TimeElapsedColumn(), TimeRemainingColumn(),
            )
            with Progress(*cols, console=err, transient=False, disable=json_out) as bar:
                task = bar.add_task("Scanning", total=None, rate="", faces=0)
                noted = False
                for p in lib.import_paths(paths, cfg, cancel=cancel):
                    last = p
                    if p.notes and not noted:  # e.g. "Use GPU" is on but CUDA is absent: said once
                        noted = True
                        for note in p.notes:
                            err.print(f"[yellow]{note}[/]", highlight=False, soft_wrap=True)
                    label = {"scan": "Scanning", "analyse": "Finding faces", "recognise": "Recognising",
                             "cluster": "Grouping people", "done": "Done", "cancelled": "Cancelled"}[p.stage]
                    total = p.total if p.stage != "scan" else None
                    bar.update(task, description=label, total=total, completed=p.done,
                               rate=f"{p.rate:.1f} photos/s" if p.rate else "", faces=p.faces)
            stats = lib.stats()
    assert last is not None
    summary = {
        "status": last.stage, "photos_processed": last.done, "faces_found": last.faces,
        "already_imported": last.skipped, "duplicates": last.duplicates, "relinked": last.relinked,
        "failed": len(last.failures), "seconds": round(last.elapsed, 1),
        "library": stats, "failures": [{"path": a, "reason": b} for a, b in last.failures],
        "notes": last.notes,
    }
    if json_out:
        _dump(summary)
    else:
        out.print(
            f"{last.done} photos processed in {last.elapsed:.1f}s ({last.rate:.1f}/s): {last.faces} faces found, "
            f"{last.skipped} already in the library, {last.duplicates} duplicates skipped, "
            f"{last.relinked} moved files re-linked."
        )
        out.print(f"Library: {stats['photos']} photos, {stats['faces']} faces, {stats['people']} people "
                  f"({stats['named']} named).")
        if last.failures:
            err.print(f"[yellow]{len(last.failures)} file(s) could not be imported:[/]")
            for path, reason in last.failures:
                err.print(f"  {_shown(path)}: {reason}", highlight=False, markup=False)
    if last.stage == "cancelled":
        raise typer.Exit(130)


@cli.command()
def people(
    json_out: Annotated[bool, typer.Option("--json", help="People with their faces' photo paths, as JSON.")] = False,
    hidden: Annotated[bool, typer.Option("--hidden", help="Include hidden people.")] = False,
    named: Annotated[bool, typer.Option("--named", help="Only people with a name.")] = False,
    search: Annotated[str | None, typer.Option("--search", "-s", help="Filter by name.")] = None,
    min_faces: Annotated[int, typer.Option("--min-faces", help="Only groups with at least this many faces.")] = 1,
) -> None:
    """List person groups: id, name, faces, photos."""
    with _open() as lib:
        rows = lib.people(include_hidden=hidden, named=True if named else None, search=search, min_faces=min_faces)
        if json_out:
            _dump([_person_json(lib, p) for p in rows])
            return
        t = Table("id", "name", "faces", "photos", *(["hidden"] if hidden else []))
        for p in rows:
            t.add_row(str(p.id), p.name or "[dim]unnamed[/]", str(p.faces), str(p.photos),
                      *(["yes" if p.hidden else ""] if hidden else []))
        out.print(t)
        out.print(f"{len(rows)} people")


@cli.command()
def show(
    person: Annotated[str, typer.Argument(help="Person id or name.")],
    json_out: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Show one person's faces and the photos they are in."""
    with _open() as lib:
        p = lib.find_person(person)
        if json_out:
            _dump(_person_json(lib, p))
            return
        out.print(f"[bold]{p.label}[/] (id {p.id}): {p.faces} faces in {p.photos} photos"
                  + (" [hidden]" if p.hidden else ""))
        t = Table("face", "photo", "box (x, y, w, h)", "how")
        for f in lib.faces_of(p.id):
            t.add_row(str(f.id), _shown(f.path), ", ".join(f"{v:.0f}" for v in f.box), f.assignment or "")
        out.print(t)


def _ids(values: list[str]) -> list[int]:
    try:
        return [int(v) for v in values]
    except ValueError:
        _fail("face ids must be numbers")
        raise


@cli.command()
def merge(
    target: Annotated[str, typer.Argument(help="Person (id or name) that keeps the faces.")],
    others: Annotated[list[str], typer.Argument(help="People (ids or names) merged into it.")],
) -> None:
    """Merge people into one."""
    with _open() as lib:
        t = lib.find_person(target)
        srcs = [lib.find_person(o).id for o in others]
        lib.merge(t.id, srcs)
        p = lib.person(t.id)
        out.print(f"Merged into {p.label} (id {p.id}): {p.faces} faces.")


@cli.command()
def split(
    faces: Annotated[list[str], typer.Argument(help="Face ids to move into a new person.")],
    name: Annotated[str | None, typer.Option("--name", help="Name of the new person.")] = None,
) -> None:
    """Move faces into a new person."""
    with _open() as lib:
        pid = lib.split(_ids(faces), name)
        out.print(f"New person {pid} with {len(faces)} face(s).")


@cli.command()
def move(
    person: Annotated[str, typer.Argument(help="Target person (id or name).")],
    faces: Annotated[list[str], typer.Argument(help="Face ids.")],
) -> None:
    """Move faces to an existing person."""
    with _open() as lib:
        p = lib.find_person(person)
        lib.move_faces(_ids(faces), p.id)
        out.print(f"Moved {len(faces)} face(s) to {p.label}.")


@cli.command()
def rename(
    person: Annotated[str, typer.Argument(help="Person id or current name.")],
    name: Annotated[str, typer.Argument(help="New name ('' removes the name).")],
) -> None:
    """Name or rename a person."""
    with _open() as lib:
        p = lib.find_person(person)
        lib.rename(p.id, name or None)
        out.print(f"Person {p.id} is now {lib.person(p.id).label}.")


@cli.command()
def hide(people_: Annotated[list[str], typer.Argument(metavar="PEOPLE")]) -> None:
    """Hide people from the people list."""
    with _open() as lib:
        lib.set_hidden([lib.find_person(x).id for x in people_], True)
        out.print(f"Hidden {len(people_)} people.")


@cli.command()
def unhide(people_: Annotated[list[str], typer.Argument(metavar="PEOPLE")]) -> None:
    """Show hidden people again."""
    with _open() as lib:
        lib.set_hidden([lib.find_person(x).id for x in people_], False)
        out.print(f"Unhidden {len(people_)} people.")


@cli.command("not-person")
def not_person(faces: Annotated[list[str], typer.Argument(help="Face ids that are not their current person.")]) -> None:
    """Say "this is not that person": the faces leave it and never come back by clustering."""
    with _open() as lib:
        lib.not_this_person(_ids(faces))
        out.print(f"Removed {len(faces)} face(s) from their person.")


@cli.command()
def confirm(faces: Annotated[list[str], typer.Argument(help="Face ids whose person is right.")]) -> None:
    """Confirm faces: clustering will never move them."""
    with _open() as lib:
        lib.confirm(_ids(faces))
        out.print(f"Confirmed {len(faces)} face(s).")


@cli.command()
def undo() -> None:
    """Undo the last edit."""
    with _open() as lib:
        d = lib.undo()
        out.print(f"Undone: {d}" if d else "Nothing to undo.")


@cli.command()
def redo() -> None:
    """Redo the last undone edit."""
    with _open() as lib:
        d = lib.redo()
        out.print(f"Redone: {d}" if d else "Nothing to redo.")


@cli.command()
def history(json_out: Annotated[bool, typer.Option("--json")] = False) -> None:
    """The journal of edits, newest first."""
    with _open() as lib:
        rows = lib.history()
        if json_out:
            _dump([{"id": i, "edit": d, "undone": u} for i, d, u in rows])
            return
        for i, d, u in rows:
            out.print(f"{i:5d}  {d}" + ("  [dim](undone)[/]" if u else ""), highlight=False)


@cli.command()
def recluster(
    threshold: Annotated[float | None, typer.Option(help="Squared-L2 grouping threshold.")] = None,
    save: Annotated[bool, typer.Option("--save", help="Keep this threshold for future imports.")] = False,
) -> None:
    """Group all faces again (names, confirmed faces and "not this person" are kept)."""
    with _open() as lib:
        if save and threshold is not None:
            lib.set_setting("cluster_threshold", threshold)
        r = lib.recluster(threshold)
        out.print(
            f"{r.get('faces', 0)} faces regrouped into {r.get('groups', 0)} groups; "
            f"{r.get('changed', 0)} faces changed group."
        )


@cli.command()
def models(
    json_out: Annotated[bool, typer.Option("--json")] = False,
    activate: Annotated[
        str | None, typer.Option("--activate", help="Make this registered model the active embedder.")
    ] = None,
) -> None:
    """The library's models: which embedder is active, their checksums and lineage."""
    with _open() as lib:
        if activate is not None:
            try:
                lib.activate_model(activate)
            except FacenetPhotosError as exc:
                _fail(str(exc))
            err.print(f"[green]activated[/] {activate}; run 'facenet-photos reembed' to bring every face to it")
        rows = lib.models()
    if json_out:
        _dump(rows)
        return
    table = Table()
    for col in ("id", "kind", "active", "sha256", "compatible with"):
        table.add_column(col, no_wrap=True)
    for m in rows:
        table.add_row(m["id"], m["kind"], "yes" if m["active"] else "", (m["sha256"] or "")[:12],
                      m["compatible_with"] or "")
    out.print(table)


@cli.command()
def reembed() -> None:
    """Embed again every face that the active model did not embed (after a model change); resumable."""
    from engine.model_upgrade import re_embed

    last = None
    with _cancel_on_sigint("Stopping after the current batch") as cancel:
        with _open() as lib:
            cols = (TextColumn("[bold]Re-embedding"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[note]}"), TimeRemainingColumn())
            with Progress(*cols, console=err, transient=True) as bar:
                task = bar.add_task("re-embed", total=None, note="")
                for p in re_embed(lib, cancel):
                    last = p
                    bar.update(task, total=p.total or None, completed=p.done, note=f"{p.rate:.0f} faces/s")
    if last is None or last.total == 0:
        out.print("every face already uses the active model")
        return
    for path, reason in last.failures:
        err.print(f"[yellow]skipped[/] {_shown(path)}: {reason}", highlight=False)
    out.print(f"{last.done}/{last.total} faces re-embedded with {last.model_id} ({last.elapsed:.0f}s)"
              + (f", {last.failed} could not be read" if last.failed else ""))
    if last.stage == "cancelled":
        out.print("cancelled: run 'facenet-photos reembed' again to finish")
        raise typer.Exit(130)


@cli.command()
def train(
    from_library: Annotated[
        bool, typer.Option("--from-library", help="Learn from the people named and corrected in the library.")
    ] = False,
    max_steps: Annotated[
        int, typer.Option("--max-steps", min=1, help="Longest training run (small batches); the step kept is "
                          "the best on held-out faces.")
    ] = 40,
    eval_every: Annotated[int, typer.Option("--eval-every", min=1, help="Check held-out faces every N steps.")] = 10,
    lfw: Annotated[
        bool, typer.Option("--lfw/--no-lfw", help="Also refuse a model that is worse on a small LFW pair subset "
                           "(when the LFW data is there).")
    ] = True,
) -> None:
    """Fine-tune the face model on your corrections; it is activated only if it is not worse."""
    if not from_library:
        _fail("nothing to train from: use --from-library", 2)
    try:
        import torch  # noqa: F401

        from training.personalise import PersonaliseConfig, learn_from_corrections
    except ImportError as exc:
        if (getattr(exc, "name", "") or "").split(".")[0] == "torch":
            _fail("training needs PyTorch, which is not installed (pip install 'facenet-photos[train]')")
        raise
    last = None
    with _cancel_on_sigint("Stopping at the next safe point") as cancel:
        with _open() as lib:
            cols = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[note]}"), TimeElapsedColumn())
            with Progress(*cols, console=err, transient=False) as bar:
                task = bar.add_task("Preparing", total=None, note="")
                config = PersonaliseConfig(max_steps=max_steps, eval_every=eval_every, lfw=lfw)
                for p in learn_from_corrections(lib, cancel=cancel, config=config):
                    last = p
                    if p.result is None:
                        bar.update(task, description=p.stage.capitalize(), total=p.total or None, completed=p.step,
                                   note=p.message)
    res = last.result if last is not None else None
    if res is None:
        _fail("training stopped without a result")
    if res.checkpoints:
        out.print(f"held-out checks while training ({res.heldout_faces} faces, learning from {res.train_faces} of "
                  f"{res.people} people, {res.negatives} \"not this person\" statements):")
        for step, score in res.checkpoints:
            kept = "  <- kept" if step == res.chosen_step else ""
            out.print(f"  step {step:>4}: {score.line()}{kept}", highlight=False)
    if res.before is not None and res.after is not None:
        out.print(f"held-out faces, through the app's embedder (kept step {res.chosen_step}):")
        out.print(f"  before ({res.previous_model_id}): {res.before.line()}", highlight=False)
        out.print(f"  after:  {res.after.line()}", highlight=False)
    if res.lfw_note:
        out.print(res.lfw_note, highlight=False)
    if res.activated:
        out.print(f"[green]activated[/] {res.model_id}; {res.re_embedded} faces re-embedded ({res.seconds:.0f}s)")
    else:
        out.print(f"[yellow]not activated[/]: {res.message}", highlight=False)
    if last.stage == "cancelled":
        raise typer.Exit(130)


@cli.command()
def verify(
    image1: Path,
    image2: Path,
    threshold: Annotated[float | None, typer.Option(help="Squared-L2 threshold (default: calibrated on LFW).")] = None,
    json_out: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Are the main faces of two images the same person?"""
    from engine.library import verify_images

    r = verify_images(image1, image2, threshold)
    if json_out:
        _dump({"same": r.same, "distance": r.distance, "threshold": r.threshold, "faces": r.faces})
    else:
        verdict = "[green]same person[/]" if r.same else "[red]different people[/]"
        out.print(f"{verdict} (squared distance {r.distance:.3f}, threshold {r.threshold:.3f})")
    raise typer.Exit(0 if r.same else 2)


@cli.command()
def status(json_out: Annotated[bool, typer.Option("--json")] = False) -> None:
    """What the library holds, and the last import."""
    with _open() as lib:
        s = lib.stats()
        last = lib.last_import()
        if json_out:
            _dump({"library": str(lib.root), **s, "last_import": last})
            return
        out.print(f"Library {lib.root}")
        out.print(f"{s['photos']} photos, {s['faces']} faces, {s['people']} people ({s['named']} named), "
                  f"{s['failed']} failed, {s['missing']} missing")


@cli.command()
def failures(json_out: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Photos that could not be imported, with the reason."""
    with _open() as lib:
        rows = lib.failures()
        if json_out:
            _dump([{"path": p, "reason": r} for p, r in rows])
            return
        for p, r in rows:
            out.print(f"{_shown(p)}: {r}", highlight=False, markup=False)
        out.print(f"{len(rows)} failed")


@cli.command()
def doctor(
    check_only: Annotated[bool, typer.Option("--check", help="Report only; change nothing.")] = False,
    json_out: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Check the library (database integrity, missing files, orphans) and repair what it can."""
    with _open(create=False) as lib:
        r = lib.doctor(repair=not check_only)
    if json_out:
        _dump({"ok": r.ok, "integrity": r.integrity, "problems": r.problems, "repaired": r.repaired})
    else:
        out.print(f"Database integrity: {r.integrity}")
        for p in r.problems:
            out.print(f"[yellow]problem:[/] {p}", highlight=False)
        for p in r.repaired:
            out.print(f"[green]repaired:[/] {p}", highlight=False)
        if r.ok:
            out.print("[green]No problems found.[/]")
    if r.integrity != "ok":
        raise typer.Exit(1)


@eval_cli.command("lfw")
def eval_lfw(
    lfw: Annotated[Path, typer.Option(help="LFW folder with images/ and pairs.txt.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Where to write the JSON result and ROC plot.")] = Path(
        "results/lfw"
    ),
    pairs: Annotated[str, typer.Option(help="Pairs file inside the LFW folder.")] = "pairs.txt",
    flip: Annotated[bool, typer.Option("--flip", help="Average each face with its mirror image (2x slower).")] = False,
    reuse: Annotated[bool, typer.Option("--reuse", help="Reuse embeddings already in --out.")] = False,
) -> None:
    """LFW 10-fold accuracy and VAL@FAR=1e-3 through the whole pipeline on the original images."""
    from engine.config import EmbedConfig
    from engine.evaluation.lfw import run_lfw_eval

    if not (lfw / pairs).is_file():
        _fail(f"{lfw / pairs} not found (pass --lfw with the folder that holds {pairs} and images/)")
    cols = (TextColumn("[bold]Embedding LFW"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
            TimeRemainingColumn())
    with Progress(*cols, console=err, transient=True) as bar:
        task = bar.add_task("lfw", total=None, rate="")

        def show(p) -> None:
            bar.update(task, total=p.total, completed=p.done, rate=f"{p.rate:.1f} img/s")

        res = run_lfw_eval(lfw, out_dir, pairs_file=pairs, embed_config=EmbedConfig(flip=flip),
                           reuse_embeddings=reuse, on_progress=show)
    f32, i8 = res["float32"], res["int8"]
    out.print(
        f"LFW 10-fold accuracy {100 * f32['accuracy_mean']:.2f} ± {100 * f32['accuracy_std']:.2f} % "
        f"(128-byte int8: {100 * i8['accuracy_mean']:.2f} ± {100 * i8['accuracy_std']:.2f} %), "
        f"VAL@FAR=1e-3 {100 * f32['val_mean']:.2f} ± {100 * f32['val_std']:.2f} %, "
        f"threshold {f32['threshold_mean']:.3f}"
    )
    det = res.get("detection", {})
    if det:
        out.print("Detection: " + ", ".join(f"{k} {v}" for k, v in det.get("counts", det).items()
                                            if isinstance(v, int)))
    out.print(f"Wrote {out_dir / 'lfw_result.json'} and {out_dir / 'lfw_roc.png'}")


@eval_cli.command("robustness")
def eval_robustness(
    lfw: Annotated[Path, typer.Option(help="LFW folder with images/ and pairs.txt.")],
    out_dir: Annotated[Path, typer.Option("--out")] = Path("results/robustness"),
    cache: Annotated[Path, typer.Option(help="Per-condition embedding cache.")] = Path(".cache/robustness"),
    folds: Annotated[str, typer.Option(help="1-based folds of pairs.txt to use.")] = "1,2,3",
    conditions: Annotated[str | None, typer.Option(help="e.g. jpeg_10,width_40 (default: all).")] = None,
    budget: Annotated[float | None, typer.Option(help="Stop embedding after this many seconds.")] = None,
    reference: Annotated[Path, typer.Option(help="Our lfw_embeddings.npz from 'eval lfw' (original images; "
                                                 "reused when present).")] = Path("results/lfw/lfw_embeddings.npz"),
    baseline: Annotated[str | None, typer.Option(help="Also run this baseline on the same degraded images: "
                                                      "'dlib' (needs the bench extra).")] = None,
    baseline_reference: Annotated[Path, typer.Option(help="dlib_lfw.npz from 'eval baseline-dlib' (original "
                                                          "images; reused when present).")] = Path(
        ".cache/dlib_lfw.npz"
    ),
) -> None:
    """FaceNet Tables 4/5: accuracy under JPEG quality 10-90 and image widths 120-40 px."""
    from engine.evaluation.robustness import BASELINES, Condition, run_robustness_eval

    if baseline is not None and baseline not in BASELINES:
        _fail(f"unknown baseline {baseline!r} (known: {', '.join(BASELINES)})")
    conds = [Condition.parse(c.strip()) for c in conditions.split(",")] if conditions else None

    def dlib_progress(cond, done: int, total: int, secs: float) -> None:
        if done % 200 == 0 or done == total:
            err.print(f"dlib {cond.name}: {done}/{total} new images, {done / max(secs, 1e-9):.1f} img/s",
                      highlight=False)

    res = run_robustness_eval(lfw, out_dir, cache, conditions=conds,
                              folds=[int(f) - 1 for f in folds.split(",")], time_budget_s=budget,
                              reference_embeddings=reference, baseline=baseline,
                              baseline_reference=baseline_reference, on_baseline_progress=dlib_progress)
    out.print(f"Wrote the robustness table to {out_dir}")
    if not res.get("complete", True):
        left = [*map(str, res.get("missing", [])), *(f"dlib:{m}" for m in res.get("baseline_missing", []))]
        err.print(f"[yellow]not finished within the budget: {', '.join(left)}; run again to continue[/]")
        raise typer.Exit(3)


@eval_cli.command("storage")
def eval_storage(
    lfw: Annotated[Path, typer.Option(help="LFW folder with pairs.txt and people.txt.")],
    embeddings: Annotated[Path, typer.Option(help="lfw_embeddings.npz from 'eval lfw'.")] = Path(
        "results/lfw/lfw_embeddings.npz"
    ),
    out_dir: Annotated[Path, typer.Option("--out")] = Path("results/storage"),
) -> None:
    """Embedding storage: float32 vs 128-byte int8 vs fewer dimensions (PCA, truncation)."""
    from engine.evaluation.storage import run_storage_eval

    if not embeddings.is_file():
        _fail(f"{embeddings} not found: run 'facenet-photos eval lfw' first")
    run_storage_eval(lfw, out_dir, embeddings)
    out.print(f"Wrote the storage table to {out_dir}")


@eval_cli.command("cluster-sweep")
def eval_cluster_sweep(
    embeddings: Annotated[Path, typer.Option(help="All-LFW embeddings (bench/cluster_lfw.py --make-cache).")] = Path(
        ".cache/lfw_embeddings.npz"
    ),
    out_dir: Annotated[Path, typer.Option("--out")] = Path("results/cluster_sweep"),
) -> None:
    """Grouping quality on LFW (BCubed, pairwise, groups vs identities) over a threshold sweep."""
    from engine.evaluation.clustering import run_cluster_sweep

    if not embeddings.is_file():
        _fail(f"{embeddings} not found: run 'python bench/cluster_lfw.py --make-cache' first")
    run_cluster_sweep(embeddings, out_dir)
    out.print(f"Wrote the sweep to {out_dir}")


@eval_cli.command("baseline-dlib")
def eval_baseline_dlib(
    lfw: Annotated[Path, typer.Option(help="LFW folder with images/ and pairs.txt.")],
    out_dir: Annotated[Path, typer.Option("--out")] = Path("results/baseline"),
    cache: Annotated[Path, typer.Option()] = Path(".cache"),
    ours: Annotated[Path, typer.Option(help="Our lfw_embeddings.npz from 'eval lfw'.")] = Path(
        "results/lfw/lfw_embeddings.npz"
    ),
    budget: Annotated[float | None, typer.Option(help="Stop after this many seconds (resumable).")] = None,
    throughput: Annotated[int, typer.Option(help="Images for the side-by-side speed test.")] = 500,
) -> None:
    """Side by side with face_recognition/dlib: LFW accuracy, grouping F1, throughput (needs the bench extra)."""
    from engine.evaluation.baseline import run_dlib_baseline

    res = run_dlib_baseline(lfw, out_dir, cache, ours, time_budget_s=budget, throughput_images=throughput)
    out.print(f"Wrote the comparison to {out_dir}")
    if not res.get("complete", True):
        err.print("[yellow]not finished within the budget; run again to continue[/]")
        raise typer.Exit(3)


@cli.command()
def gui() -> None:
    """Open the desktop app."""
    from app.main import main as gui_main

    raise typer.Exit(gui_main([sys.argv[0]] + (["--library", str(state.library)] if state.library else [])))


def main(argv: list[str] | None = None) -> int:
    try:
        rc = cli(args=argv, standalone_mode=False)
    except LibraryInUseError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False)
        return 3
    except FacenetPhotosError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False)
        return 1
    except typer.Exit as exc:
        return exc.exit_code
    except KeyboardInterrupt:
        err.print("interrupted")
        return 130
    except Exception as exc:
        # Usage errors from click (typer may vendor its own copy, so match by shape, not by class).
        if hasattr(exc, "show") and isinstance(getattr(exc, "exit_code", None), int):
            exc.show()
            return exc.exit_code
        if type(exc).__name__ == "Abort":
            return 130
        raise
    # click returns the code of a typer.Exit when not in standalone mode
    return rc if isinstance(rc, int) else 0


if __name__ == "__main__":
    sys.exit(main())
