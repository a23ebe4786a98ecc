"""Review: "Is this <name>?" for the least certain suggestions, answered with Y / N (S skips), one at a time
or several at once in a grid (select faces, then Y or N answers them all as one edit)."""

from __future__ import annotations

import html
import logging

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from .controller import INFO, plural
from .item_models import FacesModel
from .learning import learning_unavailable, plain_summary, run_learning
from .widgets import PhotoViewer, SuggestionsView, YesNoSkip, load_photo, page_shortcut

BIG = 150
log = logging.getLogger(__name__)


class ReviewPage(QWidget):
    loaded = Signal(int)  # suggestions left

    def __init__(self, controller, big_thumbs, parent=None, *, face_thumbs=None):
        super().__init__(parent)
        self.controller = controller
        self.big_thumbs = big_thumbs
        self.grid_mode = False
        self.queue: list = []
        self.skipped: set[int] = set()
        self.answered: set[int] = set()
        self.current = None
        self._generation = 0
        self._photo_generation = 0
        self._learn_job = None
        self._learner_checked = False
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)

        title = QLabel("Review")
        title.setObjectName("pageTitle")
        self.left = QLabel()
        self.left.setObjectName("muted")
        self.question = QLabel()
        self.question.setObjectName("question")
        self.question.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.face_img = QLabel()
        self.person_img = QLabel()
        for w in (self.face_img, self.person_img):
            w.setFixedSize(BIG, BIG)
            w.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.face_caption = QLabel("This face")  # next to the person's cover face, same size
        self.person_caption = QLabel()
        for w in (self.face_caption, self.person_caption):
            w.setAlignment(Qt.AlignmentFlag.AlignCenter)
            w.setObjectName("muted")
        answers = YesNoSkip(self, self.answer_yes, self.answer_no, self.skip)
        self.yes_btn, self.no_btn, self.skip_btn = answers.yes_btn, answers.no_btn, answers.skip_btn
        self.yes_action, self.no_action, self.skip_action = answers.yes_action, answers.no_action, answers.skip_action
        self.viewer = PhotoViewer(self)
        self.viewer.setMinimumHeight(100)  # room for the card in a 500 px high window
        self.empty = QLabel("Nothing to review. Suggestions appear here when new photos of people you named arrive.")
        self.empty.setObjectName("emptyHint")
        self.empty.setWordWrap(True)
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)

        self.learn_btn = QPushButton("Learn from my corrections")
        self.learn_btn.setToolTip("Fine-tune the face model on the people you named and corrected (background job)")
        # A long status line beside it must wrap, not squeeze the button's label.
        self.learn_btn.setMinimumWidth(self.learn_btn.sizeHint().width())
        self.learn_status = QLabel("")
        self.learn_status.setObjectName("muted")
        self.learn_status.setWordWrap(True)

        # -- the grid: many suggestions at once --
        self.grid_btn = QPushButton("Show as grid")
        self.grid_btn.setCheckable(True)
        self.grid_btn.setToolTip("Answer many suggestions at once: select faces, then Yes (Y) or No (N)")
        self.grid_model = FacesModel(face_thumbs or big_thumbs, self)
        self.grid = SuggestionsView(self)
        self.grid.setModel(self.grid_model)
        self.grid.setObjectName("reviewGrid")
        self.grid_hint = QLabel()
        self.grid_hint.setObjectName("muted")
        self.grid_yes = QPushButton("Yes, that is them (Y)")
        self.grid_no = QPushButton("No, not them (N)")
        self.grid_yes.setObjectName("yes")
        self.grid_no.setObjectName("no")
        self.grid_box = QWidget()
        gl = QVBoxLayout(self.grid_box)
        gl.setContentsMargins(0, 0, 0, 0)
        gbar = QHBoxLayout()
        gbar.addWidget(self.grid_hint, 1)
        gbar.addWidget(self.grid_yes)
        gbar.addWidget(self.grid_no)
        gl.addLayout(gbar)
        gl.addWidget(self.grid, 1)

        pair = QGridLayout()
        pair.addWidget(self.face_img, 0, 0)
        pair.addWidget(self.person_img, 0, 1)
        pair.addWidget(self.face_caption, 1, 0)
        pair.addWidget(self.person_caption, 1, 1)
        self.card = QFrame()
        self.card.setObjectName("card")
        cl = QVBoxLayout(self.card)
        cl.addWidget(self.question)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addLayout(pair)
        row.addStretch(1)
        cl.addLayout(row)
        cl.addLayout(answers.row)
        top = QHBoxLayout()
        top.addWidget(title)
        top.addWidget(self.left)
        top.addStretch(1)
        top.addWidget(self.grid_btn)
        learn = QHBoxLayout()
        learn.addWidget(self.learn_btn)
        learn.addWidget(self.learn_status, 1)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(12, 10, 12, 8)
        lay.addLayout(top)
        lay.addWidget(self.card)
        lay.addWidget(self.empty)
        lay.addWidget(self.viewer, 1)
        lay.addWidget(self.grid_box, 1)
        lay.addLayout(learn)

        self.full_action = page_shortcut(self, "View the photo full screen", "F", self.viewer.open_full_screen)
        self.learn_btn.clicked.connect(self.learn)
        self.grid_btn.toggled.connect(self.set_grid_mode)
        self.grid_yes.clicked.connect(self.answer_yes)
        self.grid_no.clicked.connect(self.answer_no)
        self.grid.selectionModel().selectionChanged.connect(lambda *_: self._grid_selection())
        self.grid_model.modelReset.connect(self._grid_selection)
        big_thumbs.ready.connect(self._thumb_ready)
        self._show_current()

    # -- queue ---------------------------------------------------------------------------------------
    def refresh(self) -> None:
        self._generation += 1
        gen = self._generation

        def load(lib):
            covers: dict[int, int | None] = {}
            out = []
            for f in lib.review_queue(200):
                if f.person_id not in covers:
                    covers[f.person_id] = lib.person(f.person_id).cover_face_id
                out.append((f, covers[f.person_id]))
            return out

        self.controller.query(load, on_result=lambda rows: self._loaded(gen, rows))
        if not self._learner_checked:
            self._learner_checked = True
            self.learn_btn.setEnabled(False)
            self.learn_status.setText("Checking whether learning is available…")
            self.controller.jobs.start(learning_unavailable, on_result=self._learner_found, name="find_learner")

    def _loaded(self, gen: int, rows) -> None:
        if gen != self._generation:
            return
        self.queue = [(f, cover) for f, cover in rows if f.id not in self.skipped and f.id not in self.answered]
        self.answered &= {f.id for f, _c in rows}
        if not self.queue and self.skipped and rows:
            self.skipped.clear()  # went round once: offer the skipped ones again
            self.queue = [(f, c) for f, c in rows if f.id not in self.answered]
        self._show_current()
        self.loaded.emit(len(self.queue))

    def set_grid_mode(self, on: bool) -> None:
        self.grid_mode = bool(on)
        if self.grid_btn.isChecked() != self.grid_mode:
            self.grid_btn.setChecked(self.grid_mode)
        self.grid_btn.setText("One at a time" if self.grid_mode else "Show as grid")
        self.current = None
        self._show_current()
        if self.grid_mode:
            self.grid.setFocus()

    def _grid_selection(self) -> None:
        n = len(self.grid.selected_ids())
        self.grid_yes.setEnabled(n > 0)
        self.grid_no.setEnabled(n > 0)
        self.grid_hint.setText(
            f"{plural(n, 'face')} selected: is each the person named under it?" if n else
            "Select the faces to answer (Ctrl+A: all, Ctrl or Shift + click: several), then Yes or No")

    def _show_current(self) -> None:
        has = bool(self.queue)
        grid = self.grid_mode and has
        self.card.setVisible(has and not grid)
        self.viewer.setVisible(has and not grid)
        self.grid_box.setVisible(grid)
        self.empty.setVisible(not has)
        if grid:
            self.grid_model.set_rows([f for f, _c in self.queue])
            self.left.setText(f"{plural(len(self.queue), 'suggestion')} to check")
            for a in (self.yes_action, self.no_action):
                a.setEnabled(True)
            self.skip_action.setEnabled(False)
            self.current = None
            return
        for a in (self.yes_action, self.no_action, self.skip_action):
            a.setEnabled(has)
        self.left.setText(f"{plural(len(self.queue), 'suggestion')} to check" if has else "")
        if not has:
            self.current = None
            return
        face, cover = self.queue[0]
        if self.current is not None and self.current[0].id == face.id:
            return
        self.current = (face, cover)
        name = html.escape(face.person_name or f"#{face.person_id}")
        self.question.setText(f"Is this <b>{name}</b>?")
        self.person_caption.setText(name)
        self.face_caption.setText("This face")
        self._set_images()
        self._photo_generation += 1
        gen = self._photo_generation
        self.controller.query(load_photo, face.photo_id, face.id,
                              on_result=lambda r: gen == self._photo_generation and self.viewer.set_photo(
                                  r[0], r[1], r[2], face.id, r[3], r[4]))

    def _set_images(self) -> None:
        if self.current is None:
            return
        face, cover = self.current
        pm = self.big_thumbs.get(face.id)
        self.face_img.setPixmap(pm) if pm is not None else self.face_img.clear()
        pc = self.big_thumbs.get(cover)
        self.person_img.setPixmap(pc) if pc is not None else self.person_img.clear()

    def _thumb_ready(self, face_id: int) -> None:
        if self.current is not None and face_id in (self.current[0].id, self.current[1]):
            self._set_images()

    # -- answers -------------------------------------------------------------------------------------
    def _advance(self) -> None:
        if self.queue:
            self.queue.pop(0)
        self._show_current()
        if not self.queue:
            self.refresh()

    def _answer_selected(self, yes: bool) -> None:
        """Grid: the selected suggestions answered at once, as one edit (one Ctrl+Z undoes it)."""
        ids = self.grid.selected_ids()
        if not ids:
            return
        self.answered.update(ids)
        (self.controller.confirm if yes else self.controller.not_this_person)(ids)
        gone = set(ids)
        self.queue = [(f, c) for f, c in self.queue if f.id not in gone]
        self._show_current()
        if not self.queue:
            self.refresh()

    def answer_yes(self) -> None:
        if self.grid_mode:
            self._answer_selected(True)
        elif self.current is not None:
            face = self.current[0]
            self.answered.add(face.id)
            self.controller.confirm([face.id])
            self._advance()

    def answer_no(self) -> None:
        if self.grid_mode:
            self._answer_selected(False)
        elif self.current is not None:
            face = self.current[0]
            self.answered.add(face.id)
            self.controller.not_this_person([face.id])
            self._advance()

    def skip(self) -> None:
        if self.current is not None and not self.grid_mode:
            self.skipped.add(self.current[0].id)
            self._advance()

    # -- learning ------------------------------------------------------------------------------------
    def _learner_found(self, why: str) -> None:
        self.learn_btn.setEnabled(not why)
        self.learn_status.setText(f"Learning from corrections is not available: {why}." if why else "")

    def learn(self) -> None:
        if self._learn_job is not None:
            self._learn_job.cancel()
            self.learn_status.setText("Stopping…")
            return
        self.learn_btn.setText("Stop learning")
        self.learn_status.setText("Learning from your corrections…")
        self._learn_job = self.controller.jobs.start(
            run_learning, self.controller.library, stream=True, pass_cancel=True, min_interval=0.2,
            on_progress=lambda item: self.learn_status.setText(str(item)),
            on_result=self._learned, on_error=lambda msg: self.learn_status.setText(msg),
            on_finished=self._learn_finished, name="learn",
        )

    def _learned(self, summary) -> None:
        # What changed for the user in words; the numbers stay in the tooltip and the log.
        text, details = plain_summary(summary)
        log.info("learning from corrections: %s", details)
        self.learn_status.setText(text)
        self.learn_status.setToolTip(details)
        self.controller.message.emit("Learning from corrections finished", INFO)
        self.controller.notify_changed()

    def _learn_finished(self) -> None:
        self._learn_job = None
        self.learn_btn.setText("Learn from my corrections")
