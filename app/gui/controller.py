"""The GUI's single door to the library: queries, journaled edits and imports, all run as background jobs.

Edits run one at a time in the order the user made them (an undo never overtakes the edit it undoes).
After each one ``changed`` fires and the views reload what they show.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from engine.config import ImportConfig
from engine.services.overview import import_incrementally
from engine.services.quiet import library_log

from .workers import Job, Jobs

log = logging.getLogger(__name__)

INFO, ERROR = 0, 1


def quiet_import(library, paths, config, cancel=None):
    """Pool thread: the import with what image libraries print (PIL warnings, libtiff's and libpng's
    messages on standard error) sent to the library's log file, as the command line's import does, so
    that none of it reaches the terminal the app was started from. Entered and left on the import's own
    thread: a cancelled or failed import restores the terminal too."""
    with library_log(library.root, "import"):
        yield from import_incrementally(library, paths, config, cancel=cancel)


def plural(n: int, word: str, many: str | None = None) -> str:
    return f"{n} {word if n == 1 else (many or word + 's')}"


class Controller(QObject):
    changed = Signal()  # people or faces changed (edit, import batch, regrouping)
    message = Signal(str, int)  # text, INFO | ERROR
    history_changed = Signal(str, str)  # next undo description, next redo description ('' = none)
    edit_done = Signal(str)  # the action that finished, e.g. "merge"
    import_started = Signal(list)
    import_progress = Signal(object)  # engine ImportProgress
    import_finished = Signal(object)  # the last ImportProgress (stage done | cancelled), or None on error
    library_changed = Signal()
    model_switch_started = Signal(str)  # the model id being switched to
    model_switch_progress = Signal(object)  # engine ReEmbedProgress
    model_switch_finished = Signal(object)  # the last ReEmbedProgress (done | cancelled), or None on error

    def __init__(self, library, jobs: Jobs | None = None, parent: QObject | None = None):
        super().__init__(parent)
        self.library = library
        self.jobs = jobs or Jobs(self)
        self._edits: deque[tuple] = deque()
        self._edit_job: Job | None = None
        self._import_job: Job | None = None
        self._model_job: Job | None = None
        self._import_queue: deque[list[str]] = deque()
        self._batches_seen = 0
        self.last_import = None
        # Coalesce bursts of changes (an import batch and an edit at once) into one reload.
        self._changed_timer = QTimer(self, singleShot=True, interval=0)
        self._changed_timer.timeout.connect(self.changed)
        self.import_config = ImportConfig(commit_every=8)

    # -- queries ------------------------------------------------------------------------------------
    def query(self, fn: Callable, *args, on_result: Callable[[Any], None], on_error=None, **kwargs) -> Job | None:
        """Run a read-only call off the GUI thread; ``fn`` gets the library as its first argument."""
        return self.jobs.start(fn, self.library, *args, on_result=on_result,
                               on_error=on_error or self._error, name=getattr(fn, "__name__", "query"), **kwargs)

    def _error(self, msg: str) -> None:
        self.message.emit(msg, ERROR)

    def notify_changed(self) -> None:
        self._changed_timer.start()

    # -- edits --------------------------------------------------------------------------------------
    @property
    def editing(self) -> bool:
        return self._edit_job is not None or bool(self._edits)

    def _edit(self, action: str, call: Callable, describe: Callable[[Any], str] | str,
              on_done: Callable[[Any], None] | None = None) -> None:
        self._edits.append((action, call, describe, on_done))
        if self._edit_job is None:
            self._next_edit()

    def _next_edit(self) -> None:
        if not self._edits:
            return
        action, call, describe, on_done = self._edits.popleft()

        def done(result):
            text = describe(result) if callable(describe) else describe
            if text:
                self.message.emit(text, INFO)
            if on_done is not None:
                on_done(result)
            self.edit_done.emit(action)
            self.notify_changed()

        def finished():
            self._edit_job = None
            self.refresh_history()
            self._next_edit()

        self._edit_job = self.jobs.start(call, on_result=done, on_error=self._error, on_finished=finished,
                                         name=action)

    def merge(self, target_id: int, source_ids: Sequence[int]) -> None:
        sources = [int(s) for s in source_ids if int(s) != int(target_id)]
        if not sources:
            return
        self._edit("merge", lambda: self.library.merge(int(target_id), sources),
                   f"Merged {plural(len(sources) + 1, 'person', 'people')} into one (Ctrl+Z to undo)")

    def split(self, face_ids: Sequence[int], name: str | None = None, on_done=None) -> None:
        ids = [int(f) for f in face_ids]
        self._edit("split", lambda: self.library.split(ids, name),
                   f"Moved {plural(len(ids), 'face')} to a new person", on_done)

    def move_faces(self, face_ids: Sequence[int], person_id: int, label: str = "") -> None:
        ids = [int(f) for f in face_ids]
        self._edit("move", lambda: self.library.move_faces(ids, int(person_id)),
                   f"Moved {plural(len(ids), 'face')} to {label or 'person ' + str(person_id)}")

    def rename(self, person_id: int, name: str | None) -> None:
        name = (name or "").strip() or None
        self._edit("rename", lambda: self.library.rename(int(person_id), name),
                   f"Renamed to {name}" if name else "Name removed")

    def set_hidden(self, person_ids: Sequence[int], hidden: bool) -> None:
        ids = [int(p) for p in person_ids]
        verb = "Hid" if hidden else "Unhid"
        self._edit("hide" if hidden else "unhide", lambda: self.library.set_hidden(ids, hidden),
                   f"{verb} {plural(len(ids), 'person', 'people')}")

    def set_cover(self, person_id: int, face_id: int) -> None:
        self._edit("cover", lambda: self.library.set_cover(int(person_id), int(face_id)), "Cover photo changed")

    def not_this_person(self, face_ids: Sequence[int], on_done=None) -> None:
        ids = [int(f) for f in face_ids]
        self._edit("not_this_person", lambda: self.library.not_this_person(ids),
                   f"Took {plural(len(ids), 'face')} out of this person", on_done)

    def confirm(self, face_ids: Sequence[int], on_done=None) -> None:
        ids = [int(f) for f in face_ids]
        self._edit("confirm", lambda: self.library.confirm(ids), f"Confirmed {plural(len(ids), 'face')}", on_done)

    def delete_faces(self, face_ids: Sequence[int], on_done=None) -> None:
        ids = [int(f) for f in face_ids]
        self._edit("delete_face", lambda: self.library.delete_faces(ids),
                   f"Deleted {plural(len(ids), 'false face')} (Ctrl+Z to undo)", on_done)

    def answer_same_person(self, question, reply: str, on_done=None) -> None:
        """A "same person?" answer: yes merges the two groups, no keeps them apart for good (both
        undoable), skip leaves the question for another session."""
        texts = {"yes": f"Merged {question.label_b} into {question.label_a} (Ctrl+Z to undo)",
                 "no": f"{question.label_a} and {question.label_b} stay apart (Ctrl+Z to undo)", "skip": ""}
        self._edit("skip" if reply == "skip" else "same_person", lambda: self.library.answer(question, reply),
                   texts[reply], on_done)

    def not_known(self, face_ids: Sequence[int], on_done=None) -> None:
        ids = [int(f) for f in face_ids]
        self._edit("not_known", lambda: self.library.not_known(ids),
                   f"{plural(len(ids), 'face')} marked as not someone you know (Ctrl+Z to undo)", on_done)

    def not_known_people(self, person_ids: Sequence[int], on_done=None) -> None:
        ids = [int(p) for p in person_ids]
        self._edit("not_known", lambda: self.library.not_known_people(ids),
                   f"{plural(len(ids), 'person', 'people')} marked as not someone you know (Ctrl+Z to undo)",
                   on_done)

    def group_leftovers(self) -> None:
        """Group faces left in no person (an import killed before it grouped them)."""
        self._edit("group", self.library.group_leftovers,
                   lambda n: f"Grouped {plural(n, 'face')} left over from an interrupted import" if n else "")

    def add_face(self, photo_id: int, box, name: str | None = None, on_done=None) -> None:
        """A face the detector missed, in a box drawn on the photo (photo pixels): found, embedded and
        assigned on a pool thread; one journaled edit (Ctrl+Z removes it)."""
        name = " ".join((name or "").split()) or None
        box = tuple(float(v) for v in box)

        def said(added) -> str:
            who = added.person_name or f"Unnamed #{added.person_id}"
            how = "suggested for" if added.assignment == "suggestion" else "added to"
            return f"Face {how} {who} (Ctrl+Z to undo)"

        self._edit("add_face", lambda: self.library.add_face(int(photo_id), box, name), said, on_done)

    def rescan(self, photo_id: int, on_done=None) -> None:
        """Look for smaller or fainter faces in one photo (a lower detection threshold); undoable."""
        self._edit("rescan", lambda: self.library.rescan(int(photo_id)),
                   lambda new: (f"Found {plural(len(new), 'more face')} (Ctrl+Z to undo)" if new
                                else "No more faces found in this photo"), on_done)

    def set_birthday(self, person_id: int, birth: str | None, on_done=None) -> None:
        """A person's birth date ('YYYY-MM-DD', empty to clear); journaled."""
        birth = (birth or "").strip() or None
        self._edit("birthday", lambda: self.library.set_birthday(int(person_id), birth),
                   lambda freed: (f"Birthday set to {birth}" if birth else "Birthday removed")
                   + (f"; {plural(len(freed), 'face')} from before it left this person" if freed else ""),
                   on_done)

    def set_setting(self, key: str, value) -> None:
        """Library settings are written in order with the edits (not journaled)."""
        self._edit("settings", lambda: self.library.set_setting(key, value), "")

    def undo(self) -> None:
        self._replay("undo", self.library.undo, "Undone", "Nothing to undo")

    def redo(self) -> None:
        self._replay("redo", self.library.redo, "Redone", "Nothing to redo")

    def _replay(self, action: str, step: Callable, done: str, nothing: str) -> None:
        """Undo or redo. When the step switched the face model back (or again), the faces are brought to
        the now active model by the usual background re-embed job, with its progress and Stop."""
        if self._model_job is not None:
            self.message.emit("The face model is being changed; wait for it or stop it before undo or redo", ERROR)
            return

        def call(lib=self.library):
            before = lib.active_model_id()
            d = step()
            after = lib.active_model_id()
            # Only a model switch needs faces looked at again (needs_reembed loads the model: a worker thread).
            return d, (after if after != before and lib.needs_reembed() else None)

        def describe(r) -> str:
            d, model = r
            if not d:
                return nothing
            return f"{done}: {d}" + (f"; looking at the faces again with {model}" if model else "")

        def after(r) -> None:
            if r[1] is not None:
                self.switch_model(r[1])  # already active: just the re-embed

        self._edit(action, call, describe, after)

    def regroup(self, threshold: float, save: bool = True) -> None:
        """One undoable step: the groups and the threshold change together, and undo restores both."""
        self._edit("regroup", lambda: self.library.recluster(float(threshold), save=save),
                   lambda r: f"Regrouped {plural(r.get('faces', 0), 'face')} into "
                             f"{plural(r.get('groups', 0), 'group')} (Ctrl+Z to undo)")

    def refresh_history(self) -> None:
        def labels(lib):
            rows = lib.history(500)
            undo = next((d for _i, d, undone in rows if not undone), "")
            redo = next((d for _i, d, undone in reversed(rows) if undone), "")
            return undo, redo

        self.query(labels, on_result=lambda r: self.history_changed.emit(*r))

    # -- import -------------------------------------------------------------------------------------
    @property
    def importing(self) -> bool:
        return self._import_job is not None

    def import_paths(self, paths: Sequence[str | Path]) -> None:
        paths = [str(p) for p in paths]
        if not paths:
            return
        if self._import_job is not None:
            self._import_queue.append(paths)
            self.message.emit(f"Queued: {plural(len(paths), 'item')} will be imported next", INFO)
            return
        self._batches_seen = 0
        self._import_job = self.jobs.start(
            quiet_import, self.library, paths, self.import_config,
            stream=True, pass_cancel=True, min_interval=0.1,
            on_progress=self._import_progress, on_result=self._import_result,
            on_error=self._import_error, on_finished=self._import_done, name="import",
        )
        self.import_started.emit(paths)

    def cancel_import(self) -> None:
        self._import_queue.clear()
        if self._import_job is not None:
            self._import_job.cancel()
            self.message.emit("Stopping the import after the current photos…", INFO)

    def _import_progress(self, p) -> None:
        self.import_progress.emit(p)
        if getattr(p, "batches", 0) > self._batches_seen:
            self._batches_seen = p.batches
            self.notify_changed()

    def _import_result(self, p) -> None:
        self.last_import = p
        self.import_finished.emit(p)
        if p is not None:
            failed = f", {plural(len(p.failures), 'file')} could not be imported" if p.failures else ""
            verb = "Import cancelled" if p.stage == "cancelled" else "Import finished"
            notes = "".join(f" {n}" for n in getattr(p, "notes", []))  # e.g. Use GPU is on but CUDA is absent
            self.message.emit(f"{verb}: {plural(p.done, 'photo')}, {plural(p.faces, 'face')}{failed}.{notes}", INFO)
        self.notify_changed()

    def _import_error(self, msg: str) -> None:
        self.import_finished.emit(None)
        self.message.emit(f"Import failed: {msg}", ERROR)
        self.notify_changed()

    def _import_done(self) -> None:
        self._import_job = None
        if self._import_queue:
            self.import_paths(self._import_queue.popleft())

    # -- face model -----------------------------------------------------------------------------------
    @property
    def switching_model(self) -> bool:
        return self._model_job is not None

    def switch_model(self, model_id: str) -> None:
        """Activate another face model and look at every face again with it, on a pool thread, with
        progress and cancel. People, names, confirmations, "not this person" and covers are kept."""
        from engine.services.reembed import switch_model

        if self._model_job is not None:
            self.message.emit("The face model is already being changed; wait for it or stop it first", ERROR)
            return
        if self._import_job is not None:
            self.message.emit("Wait for the import to finish before changing the face model", ERROR)
            return
        self._model_job = self.jobs.start(
            switch_model, self.library, model_id, stream=True, pass_cancel=True, min_interval=0.2,
            on_progress=self.model_switch_progress.emit, on_result=self._model_switched,
            on_error=self._model_switch_error, on_finished=self._model_switch_done, name="switch_model",
        )
        if self._model_job is not None:
            self.model_switch_started.emit(model_id)

    def cancel_model_switch(self) -> None:
        if self._model_job is not None:
            self._model_job.cancel()
            self.message.emit("Stopping after the current photos; the faces done so far keep the new model", INFO)

    def _model_switched(self, p) -> None:
        self.model_switch_finished.emit(p)
        if p is not None:
            failed = f" {plural(p.failed, 'face')} could not be read and keep the old model." if p.failed else ""
            if p.stage == "cancelled":
                self.message.emit(
                    f"Stopped: {p.done} of {plural(p.total, 'face')} were looked at again with {p.model_id}. "
                    "Open Settings and press OK to finish.", INFO)
            else:
                self.message.emit(
                    f"Face model changed to {p.model_id}: {plural(p.done, 'face')} looked at again.{failed} "
                    "Names, confirmed faces and “not this person” are kept.", INFO)
        self.notify_changed()

    def _model_switch_error(self, msg: str) -> None:
        self.model_switch_finished.emit(None)
        self.message.emit(f"The face model was not changed: {msg}", ERROR)
        self.notify_changed()

    def _model_switch_done(self) -> None:
        self._model_job = None
        self.refresh_history()  # the switch is a journaled step: the Edit menu can undo it now

    # -- lifecycle ----------------------------------------------------------------------------------
    def busy(self) -> bool:
        return bool(self.jobs.active)

    def shutdown(self, timeout: float = 60.0) -> bool:
        """Cancel the import and wait for every job. The caller closes the library afterwards."""
        self._import_queue.clear()
        self._edits.clear()
        self._changed_timer.stop()
        return self.jobs.shutdown(timeout)
