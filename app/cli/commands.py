"""The user's commands: import, browse, correct, undo, models, maintenance."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from app.cli.common import cancel_on_sigint, cli, dump_json, err, fail, open_library, out, plain, shown, state
from app.cli.progress import drive
from engine.errors import FacenetPhotosError
from engine.services.progress import Stage
from engine.services.quiet import library_log


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
    with cancel_on_sigint("Stopping after the current batch") as cancel:
        with open_library() as lib, library_log(lib.root, "import"):
            last = drive(lib.import_paths(paths, cfg, cancel=cancel), err, unit="photos", disable=json_out,
                         note=lambda p: f"faces: {p.faces}")
            stats = lib.stats()
    assert last is not None
    summary = {
        "status": last.stage, "photos_processed": last.done, "faces_found": last.faces,
        "already_imported": last.skipped, "duplicates": last.duplicates, "relinked": last.relinked,
        "failed": len(last.failures), "seconds": round(last.elapsed, 1),
        "library": stats, "failures": [{"path": a, "reason": b} for a, b in last.failures],
        "notes": last.notes,
    }
    if not json_out:
        for note in last.notes:  # e.g. "Use GPU" is on but CUDA is absent
            err.print(f"[yellow]{plain(note)}[/]", highlight=False, soft_wrap=True)
    if json_out:
        dump_json(summary)
    else:
        out.print(
            f"{last.done} photos processed in {last.elapsed:.1f}s ({last.rate:.1f}/s): {last.faces} faces found, "
            f"{last.skipped} already in the library, {last.duplicates} duplicates skipped, "
            f"{last.relinked} moved files re-linked."
        )
        out.print(f"Library: {stats['photos']} photos, {stats['faces']} faces, {stats['people']} people "
                  f"({stats['named']} named).")
        if last.stage == Stage.CANCELLED:
            out.print("Cancelled: the faces found so far are grouped; import again to continue where it stopped.")
        if last.failures:
            err.print(f"[yellow]{len(last.failures)} file(s) could not be imported:[/]")
            for path, reason in last.failures:
                err.print(f"  {shown(path)}: {reason}", highlight=False, markup=False)
    if last.stage == Stage.CANCELLED:
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
    with open_library(read_only=True) as lib:
        rows = lib.people(include_hidden=hidden, named=True if named else None, search=search, min_faces=min_faces)
        if json_out:
            dump_json([_person_json(lib, p) for p in rows])
            return
        t = Table("id", "name", "faces", "photos", *(["hidden"] if hidden else []))
        for p in rows:
            t.add_row(str(p.id), plain(p.name) if p.name else "[dim]unnamed[/]", str(p.faces), str(p.photos),
                      *(["yes" if p.hidden else ""] if hidden else []))
        out.print(t)
        out.print(f"{len(rows)} people")


@cli.command()
def show(
    person: Annotated[str, typer.Argument(help="Person id or name.")],
    json_out: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Show one person's faces and the photos they are in."""
    from engine.store.dates import age_on

    with open_library(read_only=True) as lib:
        p = lib.find_person(person)
        born = lib.birth_date(p.id)
        faces = lib.faces_of(p.id)
        dates = lib.face_dates([f.id for f in faces])
        ages = {fid: age_on(born, d.date()) if born else None for fid, (d, _src) in dates.items()}
        if json_out:
            d = _person_json(lib, p)
            d["birth_date"] = born.isoformat() if born else None
            for f in d["face_list"]:
                when, src = dates[f["id"]]
                f["photo_date"], f["date_source"], f["age"] = when.isoformat(timespec="seconds"), src, ages[f["id"]]
            dump_json(d)
            return
        out.print(f"[bold]{plain(p.label)}[/] (id {p.id}): {p.faces} faces in {p.photos} photos"
                  + (" \\[hidden]" if p.hidden else "") + (f", born {born.isoformat()}" if born else ""),
                  highlight=False)
        t = Table("face", "photo", "box (x, y, w, h)", "how", "taken", *(["age"] if born else []))
        for f in faces:
            age = ages[f.id]
            t.add_row(str(f.id), plain(f.path), ", ".join(f"{v:.0f}" for v in f.box), f.assignment or "",
                      f"{dates[f.id][0]:%Y-%m-%d}",
                      *([("before birth" if age is not None and age < 0 else str(age))] if born else []))
        out.print(t)


def _ids(values: list[str]) -> list[int]:
    try:
        return [int(v) for v in values]
    except ValueError:
        fail("face ids must be numbers")
        raise


@cli.command()
def merge(
    target: Annotated[str, typer.Argument(help="Person (id or name) that keeps the faces.")],
    others: Annotated[list[str], typer.Argument(help="People (ids or names) merged into it.")],
) -> None:
    """Merge people into one."""
    with open_library() as lib:
        t = lib.find_person(target)
        srcs = [lib.find_person(o).id for o in others]
        lib.merge(t.id, srcs)
        p = lib.person(t.id)
        out.print(f"Merged into {plain(p.label)} (id {p.id}): {p.faces} faces.", highlight=False)


@cli.command()
def split(
    faces: Annotated[list[str], typer.Argument(help="Face ids to move into a new person.")],
    name: Annotated[str | None, typer.Option("--name", help="Name of the new person.")] = None,
) -> None:
    """Move faces into a new person."""
    with open_library() as lib:
        pid = lib.split(_ids(faces), name)
        out.print(f"New person {pid} with {len(faces)} face(s).")


@cli.command()
def move(
    person: Annotated[str, typer.Argument(help="Target person (id or name).")],
    faces: Annotated[list[str], typer.Argument(help="Face ids.")],
) -> None:
    """Move faces to an existing person."""
    with open_library() as lib:
        p = lib.find_person(person)
        lib.move_faces(_ids(faces), p.id)
        out.print(f"Moved {len(faces)} face(s) to {plain(p.label)}.", highlight=False)


@cli.command()
def rename(
    person: Annotated[str, typer.Argument(help="Person id or current name.")],
    name: Annotated[str, typer.Argument(help="New name ('' removes the name).")],
) -> None:
    """Name or rename a person."""
    with open_library() as lib:
        p = lib.find_person(person)
        lib.rename(p.id, name or None)
        out.print(f"Person {p.id} is now {plain(lib.person(p.id).label)}.", highlight=False)


@cli.command()
def hide(people_: Annotated[list[str], typer.Argument(metavar="PEOPLE")]) -> None:
    """Hide people from the people list."""
    with open_library() as lib:
        lib.set_hidden([lib.find_person(x).id for x in people_], True)
        out.print(f"Hidden {len(people_)} people.")


@cli.command()
def unhide(people_: Annotated[list[str], typer.Argument(metavar="PEOPLE")]) -> None:
    """Show hidden people again."""
    with open_library() as lib:
        lib.set_hidden([lib.find_person(x).id for x in people_], False)
        out.print(f"Unhidden {len(people_)} people.")


@cli.command("not-person")
def not_person(faces: Annotated[list[str], typer.Argument(help="Face ids that are not their current person.")]) -> None:
    """Say "this is not that person": the faces leave it and never come back by clustering."""
    with open_library() as lib:
        lib.not_this_person(_ids(faces))
        out.print(f"Removed {len(faces)} face(s) from their person.")


@cli.command()
def confirm(faces: Annotated[list[str], typer.Argument(help="Face ids whose person is right.")]) -> None:
    """Confirm faces: clustering will never move them."""
    with open_library() as lib:
        lib.confirm(_ids(faces))
        out.print(f"Confirmed {len(faces)} face(s).")


@cli.command("delete-face")
def delete_face(faces: Annotated[list[str], typer.Argument(help="Face ids that are not faces at all.")]) -> None:
    """Delete false faces (the detector was wrong): they leave their person, are never grouped or
    counted again, and stay deleted when the photo is imported again. 'undo' brings them back."""
    with open_library() as lib:
        lib.delete_faces(_ids(faces))
        out.print(f"Deleted {len(faces)} false face(s) ('facenet-photos undo' brings them back).")


@cli.command("not-known")
def not_known(
    person: Annotated[str | None, typer.Argument(help="A person (id or name): all their faces.")] = None,
    face: Annotated[list[str] | None, typer.Option("--face", help="A face id (repeat for several).")] = None,
) -> None:
    """Mark a person's faces, or single faces, as "not someone I know": they leave the people lists and the
    "same person?" questions for good, and later groupings never put them back. 'undo' brings them back."""
    if (person is None) == (not face):
        fail("give a person, or --face ID (not both)")
    with open_library() as lib:
        if person is not None:
            p = lib.find_person(person)
            n = lib.not_known_people([p.id])
            out.print(f"{plain(p.label)}: {n} face(s) marked as not someone you know "
                      "('facenet-photos undo' brings them back).", highlight=False)
        else:
            lib.not_known(_ids(face))
            out.print(f"Marked {len(face)} face(s) as not someone you know ('facenet-photos undo' brings them back).")


def _question_line(q) -> str:
    if q.kind == "face":
        return (f"{q.id:>9}  is face {q.face_id} one of {plain(q.label_a)} ({q.size_a} other faces)? "
                f"{q.probability:.0%} likely")
    return (f"{q.id:>9}  {plain(q.label_a)} ({q.size_a} faces) and {plain(q.label_b)} ({q.size_b} faces): "
            f"{q.probability:.0%} likely the same person")


def _faces_line(lib, label: str, face_ids) -> str:
    paths = [shown(Path(lib.face(f).path).name) for f in face_ids[:3]]
    return f"  {plain(label)}: faces {', '.join(map(str, face_ids))}  ({plain(', '.join(paths))})"


@cli.command()
def suggest(
    limit: Annotated[int, typer.Option("--limit", "-n", help="At most this many questions.")] = 20,
    json_out: Annotated[bool, typer.Option("--json", help="The questions as JSON.")] = False,
    ask: Annotated[bool, typer.Option("--ask", help="Ask them one by one: y (same person), n (not), s (skip), "
                                                    "q (stop).")] = False,
) -> None:
    """The "same person?" questions: pairs of groups that may be one person, and faces that may not belong to
    their group (ids like f567-34), the answer that settles the most first. Answer them with --ask, or from a
    script with 'facenet-photos answer ID yes|no'."""
    if limit < 1:
        fail("--limit must be at least 1")
    if ask and json_out:
        fail("--ask and --json do not go together")
    with open_library(read_only=not ask) as lib:
        if not ask:
            qs = lib.same_person_questions(limit)
            if json_out:
                dump_json([q.as_dict() for q in qs])
                return
            if not qs:
                out.print("No questions: the groups look settled.")
                return
            for q in qs:
                out.print(_question_line(q), highlight=False)
            out.print("Answer with 'facenet-photos answer ID yes' (or no), or ask them one by one with "
                      "'facenet-photos suggest --ask'.", highlight=False)
            return
        answered = 0
        while answered < limit:
            qs = lib.same_person_questions(1)
            if not qs:
                out.print("No more questions.")
                break
            q = qs[0]
            ask_what = "One of them?" if q.kind == "face" else "Same person?"
            out.print(f"{ask_what} {_question_line(q).strip()}", highlight=False)
            out.print(_faces_line(lib, q.label_a, q.faces_a), highlight=False)
            out.print(_faces_line(lib, q.label_b, q.faces_b), highlight=False)
            reply = typer.prompt("[y]es / [n]o / [s]kip / [q]uit", default="s").strip().lower()[:1]
            if reply == "q":
                break
            if reply not in ("y", "n", "s"):
                out.print("Please answer y, n, s or q.")
                continue
            lib.answer(q, reply)
            answered += reply != "s"
            if q.kind == "face":
                out.print({"y": "Confirmed in the group.", "n": "Taken out of the group for good.",
                           "s": "Skipped."}[reply])
            else:
                out.print({"y": "Merged.", "n": "Kept apart for good.", "s": "Skipped."}[reply])
        out.print(f"{answered} answer(s) saved ('facenet-photos undo' takes back the last).")


@cli.command()
def answer(
    question: Annotated[str, typer.Argument(help="A question id from 'facenet-photos suggest' (e.g. 12-34, or "
                                                 "f567-34 for a face).")],
    reply: Annotated[str, typer.Argument(help="yes (the same person: merge them; a face: it is one of them) or "
                                              "no (never group them; a face: take it out).")],
) -> None:
    """Answer a "same person?" question from a script."""
    reply = reply.strip().lower()
    if reply not in ("yes", "no", "y", "n"):
        fail(f"answer {reply!r}: write yes or no")
    with open_library() as lib:
        kept = lib.answer(question, reply)
        if question.strip().lower().startswith("f"):
            face = question.strip().lower().removeprefix("f").split("-")[0]
            if kept is not None:
                out.print(f"Face {face} confirmed in {plain(lib.person(kept).label)}.", highlight=False)
            else:
                out.print(f"Face {face} taken out of its group: no later grouping puts it back "
                          "('facenet-photos undo' takes it back).", highlight=False)
        elif kept is not None:
            p = lib.person(kept)
            out.print(f"Merged into {plain(p.label)} (id {p.id}): {p.faces} faces.", highlight=False)
        else:
            out.print("Kept apart: no later grouping puts them together ('facenet-photos undo' takes it back).")


@cli.command()
def undo() -> None:
    """Undo the last edit."""
    with open_library() as lib:
        before = lib.active_model_id()
        try:
            d = lib.undo()
        except FacenetPhotosError as exc:
            fail(str(exc))
        out.print(f"Undone: {plain(d)}" if d else "Nothing to undo.", highlight=False)
        _model_hint(lib, before)


def _model_hint(lib, before: str) -> None:
    """After an undo or redo that switched the face model: how many faces wait and what brings them over."""
    now = lib.active_model_id()
    if now != before:
        n = lib.needs_reembed()
        more = f"; run 'facenet-photos reembed' to bring {n} faces to it" if n else ""
        err.print(f"The active face model is now {plain(now)}{more}.", highlight=False)


@cli.command()
def redo() -> None:
    """Redo the last undone edit."""
    with open_library() as lib:
        before = lib.active_model_id()
        try:
            d = lib.redo()
        except FacenetPhotosError as exc:
            fail(str(exc))
        out.print(f"Redone: {plain(d)}" if d else "Nothing to redo.", highlight=False)
        _model_hint(lib, before)


@cli.command()
def history(json_out: Annotated[bool, typer.Option("--json")] = False) -> None:
    """The journal of edits, newest first."""
    with open_library(read_only=True) as lib:
        rows = lib.history()
        if json_out:
            dump_json([{"id": i, "edit": d, "undone": u} for i, d, u in rows])
            return
        for i, d, u in rows:
            out.print(f"{i:5d}  {plain(d)}" + ("  [dim](undone)[/]" if u else ""), highlight=False)


@cli.command()
def recluster(
    threshold: Annotated[float | None, typer.Option(help="Squared-L2 grouping threshold.")] = None,
    save: Annotated[bool, typer.Option("--save", help="Keep this threshold for future imports.")] = False,
) -> None:
    """Group all faces again (names, confirmed faces and "not this person" are kept); 'undo' takes it back."""
    with open_library() as lib:
        r = lib.recluster(threshold, save=save)
        out.print(
            f"{r.get('faces', 0)} faces regrouped into {r.get('groups', 0)} groups; "
            f"{r.get('changed', 0)} faces changed group."
        )


@cli.command()
def models(
    json_out: Annotated[bool, typer.Option("--json")] = False,
    activate: Annotated[
        str | None, typer.Option("--activate", help="Make this model (registered or an installed pack) the "
                                                    "active embedder.")
    ] = None,
    register: Annotated[
        Path | None, typer.Option("--register", help="Copy this ONNX embedder into the library (with --id).")
    ] = None,
    model_id: Annotated[str | None, typer.Option("--id", help="The id to register the file under.")] = None,
    compatible_with: Annotated[
        str | None, typer.Option("--compatible-with", help="The model whose space it was trained into (harmonic).")
    ] = None,
) -> None:
    """Every model the library knows or could use: which embedder is active, licence, thresholds,
    checksums and lineage."""
    if register is not None and not model_id:
        fail("--register needs --id (the name the model will have in this library)")
    with open_library(read_only=activate is None and register is None) as lib:
        if register is not None:
            try:
                lib.register_model(register, model_id, compatible_with=compatible_with)
            except FacenetPhotosError as exc:
                fail(str(exc))
            err.print(f"[green]registered[/] {model_id}; "
                      f"activate it with 'facenet-photos models --activate {model_id}'")
        if activate is not None:
            try:
                lib.activate_model(activate)
            except FacenetPhotosError as exc:
                fail(str(exc))
            err.print(f"[green]activated[/] {plain(activate)}; run 'facenet-photos reembed' to bring every face to it")
        rows = lib.models()
        calibrated = lib.model_thresholds().calibrated
    if json_out:
        dump_json(rows)
        return
    # One block per model rather than a table: the licence and status lines are too long for columns.
    for m in rows:
        head = f"{m['id']}{' (active)' if m['active'] else ''}: {m['kind']}"
        head += f", {m['dim']}-D" if m["dim"] else ""
        head += f", {m['status']}" + (f", sha256 {m['sha256'][:12]}" if m["sha256"] else "")
        head += f", compatible with {m['compatible_with']}" if m["compatible_with"] else ""
        out.print(head, markup=False, highlight=False)
        out.print(f"    licence: {m['licence']}", markup=False, highlight=False)
        th = m.get("thresholds")
        if th:
            note = "" if th.get("calibrated", True) else " (not calibrated: borrowed defaults)"
            out.print(f"    thresholds (squared L2): same person {th['verify']:.2f}, grouping {th['cluster']:.2f}, "
                      f"recognition {th['recognise']:.2f}{note}", markup=False, highlight=False)
            ch = th.get("children")
            whose = "" if not ch or ch["source"] == m["id"] else f", {ch['source']}'s classifier"
            out.print("    children kept apart: " + (
                "no (no child-face classifier; 'facenet-photos calibrate' fits one)" if not ch else
                f"no (penalty 0; the child-face classifier still informs the questions{whose})" if not ch["penalty"]
                else f"penalty {ch['penalty']:.3f}{whose}"), markup=False, highlight=False)
            qw = th.get("questions") or {}
            out.print("    'same person?' questions ranked with: " + (
                "weights fitted for this model" if qw.get("stored") and qw.get("source") == m["id"] else
                f"{qw['source']}'s fitted weights" if qw.get("stored") else
                "the shipped weights (fitted for this model)" if qw.get("source") == m["id"] else
                f"the shipped weights, fitted for {qw['source']}" if qw.get("source") else
                "the shipped weights, fitted for SFace ('facenet-photos calibrate' fits this model's)"),
                markup=False, highlight=False)
        if m.get("notice"):
            out.print(f"    notice: {m['notice']}", markup=False, highlight=False)
    if not calibrated:
        err.print("[yellow]the active model has no thresholds of its own; run 'facenet-photos calibrate "
                  "--model ID --lag DIR --lfw DIR'[/]")


@cli.command()
def reembed() -> None:
    """Embed again every face that the active model did not embed (after a model change); resumable."""
    from engine.services.reembed import re_embed

    with cancel_on_sigint("Stopping after the current batch") as cancel:
        with open_library() as lib:
            last = drive(re_embed(lib, cancel), err, unit="faces", transient=True)
    if last is None or last.total == 0:
        out.print("every face already uses the active model")
        return
    for path, reason in last.failures:
        err.print(f"[yellow]skipped[/] {plain(path)}: {plain(reason)}", highlight=False)
    out.print(f"{last.done}/{last.total} faces re-embedded with {plain(last.model_id)} ({last.elapsed:.0f}s)"
              + (f", {last.failed} could not be read" if last.failed else ""))
    if last.stage == Stage.CANCELLED:
        out.print("cancelled: run 'facenet-photos reembed' again to finish")
        raise typer.Exit(130)


@cli.command()
def verify(
    image1: Path,
    image2: Path,
    threshold: Annotated[float | None, typer.Option(help="Squared-L2 threshold (default: calibrated on LFW).")] = None,
    json_out: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Are the main faces of two images the same person?"""
    from engine.services.library import verify_images

    r = verify_images(image1, image2, threshold)
    if json_out:
        dump_json({"same": r.same, "distance": r.distance, "threshold": r.threshold, "faces": r.faces})
    else:
        verdict = "[green]same person[/]" if r.same else "[red]different people[/]"
        out.print(f"{verdict} (squared distance {r.distance:.3f}, threshold {r.threshold:.3f})")
    raise typer.Exit(0 if r.same else 2)


@cli.command()
def status(json_out: Annotated[bool, typer.Option("--json")] = False) -> None:
    """What the library holds, and the last import."""
    with open_library(read_only=True) as lib:
        s = lib.stats()
        last = lib.last_import()
        if json_out:
            dump_json({"library": str(lib.root), **s, "last_import": last})
            return
        out.print(f"Library {plain(lib.root)}", highlight=False)
        out.print(f"{s['photos']} photos, {s['faces']} faces, {s['people']} people ({s['named']} named), "
                  f"{s['failed']} failed, {s['missing']} missing")
        if s["ungrouped"]:
            out.print(f"{s['ungrouped']} faces are in no group yet (an import was interrupted): "
                      "'facenet-photos recluster' groups them")


@cli.command()
def failures(json_out: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Photos that could not be imported, with the reason."""
    with open_library(read_only=True) as lib:
        rows = lib.failures()
        if json_out:
            dump_json([{"path": p, "reason": r} for p, r in rows])
            return
        for p, r in rows:
            out.print(f"{shown(p)}: {r}", highlight=False, markup=False)
        out.print(f"{len(rows)} failed")


@cli.command()
def doctor(
    check_only: Annotated[bool, typer.Option("--check", help="Report only; change nothing.")] = False,
    json_out: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Check the library (database integrity, missing files, orphans) and repair what it can."""
    # --check only looks, so it opens read-only and runs beside the open app.
    with open_library(create=False, read_only=check_only) as lib:
        r = lib.doctor(repair=not check_only)
    if json_out:
        dump_json({"ok": r.ok, "integrity": r.integrity, "problems": r.problems, "repaired": r.repaired})
    else:
        out.print(f"Database integrity: {plain(r.integrity)}")
        for p in r.problems:
            out.print(f"[yellow]problem:[/] {plain(p)}", highlight=False)
        for p in r.repaired:
            out.print(f"[green]repaired:[/] {plain(p)}", highlight=False)
        if r.ok:
            out.print("[green]No problems found.[/]")
    if r.integrity != "ok":
        raise typer.Exit(1)


@cli.command()
def gui() -> None:
    """Open the desktop app."""
    from app.gui.main import main as gui_main

    raise typer.Exit(gui_main([sys.argv[0]] + (["--library", str(state.library)] if state.library else [])))


@cli.command("export-xmp")
def export_xmp(
    folder: Annotated[Path | None, typer.Argument(help="Only photos below this folder.")] = None,
    json_out: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Write the names of faces as XMP sidecars (photo.jpg.xmp, MWG regions) beside the photos.

    Photos are never changed; a sidecar written by another program is left as it is."""
    with open_library() as lib:
        r = lib.export_xmp(folder)
    if json_out:
        dump_json({"photos": r.photos, "written": r.written, "unchanged": r.unchanged, "regions": r.regions,
                   "skipped": [{"path": p, "reason": why} for p, why in r.skipped]})
        return
    out.print(f"{r.written} sidecar(s) written, {r.unchanged} already up to date, {r.regions} named face(s) "
              f"in {r.photos} photo(s).")
    for p, why in r.skipped:
        err.print(f"  skipped {shown(p)}: {why}", highlight=False, markup=False)


@cli.command("photos")
def photos_cmd(
    with_: Annotated[list[str] | None, typer.Option("--with", "-w", help="A person (id or name) who must be in "
                                                    "the photo; repeat for several (all of them).")] = None,
    only: Annotated[bool, typer.Option("--only", help="Nobody else in the photo.")] = False,
    date_from: Annotated[str | None, typer.Option("--from", help="Taken on or after (YYYY-MM-DD, YYYY-MM, YYYY).")]
    = None,
    date_to: Annotated[str | None, typer.Option("--to", help="Taken on or before (YYYY-MM-DD, YYYY-MM, YYYY).")]
    = None,
    json_out: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Find photos by the people in them and the date taken (EXIF date, else the file's time)."""
    with open_library() as lib:
        hits = lib.find_photos(with_ or [], only=only, date_from=date_from, date_to=date_to)
    if json_out:
        dump_json([
            {"id": h.id, "path": h.path, "date": h.date.isoformat(timespec="seconds"), "date_source": h.date_source,
             "people": [{"id": i, "name": n} for i, n in h.people]}
            for h in hits
        ])
        return
    for h in hits:
        who = ", ".join(n or f"Unnamed #{i}" for i, n in h.people)
        mark = "" if h.date_source == "exif" else " (file date)"
        out.print(f"{h.date:%Y-%m-%d}{mark}  {shown(h.path)}  {who}", highlight=False, markup=False)
    out.print(f"{len(hits)} photo(s)")


def _added_json(a) -> dict:
    return {"face": a.face_id, "person": a.person_id, "name": a.person_name, "assignment": a.assignment,
            "aligned_by": a.aligned_by, "box": [round(v, 1) for v in a.box]}


def _added_line(a) -> str:
    who = a.person_name or f"a new person (id {a.person_id})"
    how = {"user": "named", "suggestion": "suggested for", "cluster": "put in"}.get(a.assignment, "put in")
    where = "landmarks found in the box" if a.aligned_by == "landmarks" else "aligned from the box"
    return f"face {a.face_id} ({where}), {how} {who}"


@cli.command("add-face")
def add_face(
    photo: Annotated[str, typer.Argument(help="Photo path or id.")],
    x: Annotated[float, typer.Argument(help="Left edge, in pixels of the photo as shown.")],
    y: Annotated[float, typer.Argument(help="Top edge.")],
    w: Annotated[float, typer.Argument(help="Width.")],
    h: Annotated[float, typer.Argument(help="Height.")],
    person: Annotated[str | None, typer.Option("--person", help="Name of the person (created if new).")] = None,
    json_out: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Add a face the detector missed, from a box; 'undo' removes it."""
    with open_library() as lib, library_log(lib.root, "add-face"):
        a = lib.add_face(photo, (x, y, w, h), person)
    if json_out:
        dump_json(_added_json(a))
    else:
        out.print(f"Added {_added_line(a)}.", highlight=False, markup=False)


@cli.command()
def rescan(
    photo: Annotated[str, typer.Argument(help="Photo path or id.")],
    threshold: Annotated[float | None, typer.Option(help="Detection score threshold (import uses 0.6).")] = None,
    json_out: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Look for faces in one photo again, more eagerly; new faces are added ('undo' removes them)."""
    with open_library() as lib, library_log(lib.root, "rescan"):
        added = lib.rescan(photo, threshold)
    if json_out:
        dump_json([_added_json(a) for a in added])
        return
    for a in added:
        out.print(f"Added {_added_line(a)}.", highlight=False, markup=False)
    out.print(f"{len(added)} new face(s).")


@cli.command()
def birthday(
    person: Annotated[str, typer.Argument(help="Person id or name.")],
    day: Annotated[str, typer.Argument(help="Birth date, YYYY-MM-DD ('' clears it).")],
    json_out: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Set a person's birth date: faces show their age, and no face from before it is suggested for them."""
    with open_library() as lib:
        p = lib.find_person(person)
        freed = lib.set_birthday(p.id, day or None)
        born = lib.birth_date(p.id)
    if json_out:
        dump_json({"person": p.id, "birth_date": born.isoformat() if born else None, "faces_removed": freed})
        return
    out.print(f"{p.label}: " + (f"born {born.isoformat()}" if born else "no birth date") + ".", highlight=False,
              markup=False)
    if freed:
        out.print(f"{len(freed)} face(s) from photos taken before that day are no longer with {p.label}.",
                  highlight=False, markup=False)
