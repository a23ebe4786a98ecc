""""Same person?": two groups that may be one person, side by side as face strips, answered with Y / N (S skips).

The queue also asks "is this face one of them?" about a face its group may hold by mistake: the group's most
typical faces on the left, the one face on the right; Y confirms it in the group, N takes it out for good.

The queue is the engine's (``Library.same_person_questions``: the answer that settles the most first). The next
question shows at once while the answer is saved in the background; Ctrl+Z (Edit → Undo) takes the last answer
back and asks it again.
"""

from __future__ import annotations

import html

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QGridLayout, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from .controller import plural
from .widgets import YesNoSkip

STRIP = 6  # faces shown per side
FACE_PX = 80  # two strips of three faces fit a window 800 px wide beside the sidebar
QUEUE = 100  # questions fetched at a time (the sidebar counts them up to 99, then says "99+")


def load_questions(library, limit: int = QUEUE):
    return library.same_person_questions(limit)


def count_questions(library, cap: int = QUEUE) -> int:
    """For the sidebar: how many questions wait (at most ``cap``)."""
    return len(library.same_person_questions(cap))


class FaceStrip(QWidget):
    """One side of a question: the group's name (or "Unnamed #n") with its size, and up to STRIP faces."""

    def __init__(self, thumbs, parent=None):
        super().__init__(parent)
        self.thumbs = thumbs
        self.face_ids: tuple[int, ...] = ()
        self.caption = QLabel()
        self.caption.setObjectName("stripCaption")
        self.caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.faces: list[QLabel] = []
        grid = QGridLayout()
        grid.setSpacing(6)
        for i in range(STRIP):
            lab = QLabel()
            lab.setFixedSize(FACE_PX, FACE_PX)
            lab.setScaledContents(True)
            lab.setAlignment(Qt.AlignmentFlag.AlignCenter)
            grid.addWidget(lab, i // 3, i % 3)
            self.faces.append(lab)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.caption)
        lay.addLayout(grid)
        lay.addStretch(1)
        thumbs.ready.connect(self._ready)

    def show_group(self, label: str, named: bool, size: int, face_ids, note: str | None = None) -> None:
        self.face_ids = tuple(face_ids)[:STRIP]
        who = f"<b>{html.escape(label)}</b>" if named else html.escape(label)
        note = plural(size, "face") if note is None else note
        self.caption.setText(f"{who}<br><span style='color: palette(placeholder-text)'>{html.escape(note)}</span>")
        for i, lab in enumerate(self.faces):
            lab.setVisible(i < len(self.face_ids))
        self._set_images()

    def _set_images(self) -> None:
        for fid, lab in zip(self.face_ids, self.faces, strict=False):
            pm = self.thumbs.get(fid)
            lab.setPixmap(pm) if pm is not None else lab.clear()

    def _ready(self, face_id: int) -> None:
        if face_id in self.face_ids:
            self._set_images()


class SamePersonPage(QWidget):
    loaded = Signal(int)  # questions waiting

    def __init__(self, controller, thumbs, parent=None):
        super().__init__(parent)
        self.controller = controller
        self.queue: list = []
        self.current = None
        self.answered: set[str] = set()  # answered here: not shown again when a reload still has them
        self.skipped: set[str] = set()
        self.last_answer = None  # (question, reply): Ctrl+Z asks it again
        self._generation = 0
        self._full = False  # the last load hit QUEUE: more questions wait
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)

        title = QLabel("Same person?")
        title.setObjectName("pageTitle")
        self.left = QLabel()
        self.left.setObjectName("muted")
        self.question = QLabel()
        self.question.setObjectName("question")
        self.question.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.hint = QLabel()
        self.hint.setObjectName("muted")
        self.hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.side_a = FaceStrip(thumbs)
        self.side_b = FaceStrip(thumbs)
        answers = YesNoSkip(self, self.answer_yes, self.answer_no, self.skip)
        self.yes_btn, self.no_btn, self.skip_btn = answers.yes_btn, answers.no_btn, answers.skip_btn
        self.yes_action, self.no_action, self.skip_action = answers.yes_action, answers.no_action, answers.skip_action
        self.yes_btn.setToolTip("The same person: put the two groups together")
        self.no_btn.setToolTip("Two people: never group them together")
        self.skip_btn.setToolTip("Ask again another time")
        self.empty = QLabel("No questions. When two groups look like they could be one person, "
                            "they are asked about here.")
        self.empty.setObjectName("emptyHint")
        self.empty.setWordWrap(True)
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)

        sides = QHBoxLayout()
        sides.addStretch(1)
        sides.addWidget(self.side_a)
        amp = QLabel("?")
        amp.setObjectName("question")
        sides.addSpacing(12)
        sides.addWidget(amp)
        sides.addSpacing(12)
        sides.addWidget(self.side_b)
        sides.addStretch(1)
        self.card = QFrame()
        self.card.setObjectName("card")
        cl = QVBoxLayout(self.card)
        cl.addWidget(self.question)
        cl.addLayout(sides)
        cl.addWidget(self.hint)
        cl.addLayout(answers.row)
        top = QHBoxLayout()
        top.addWidget(title)
        top.addWidget(self.left)
        top.addStretch(1)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(12, 10, 12, 8)
        lay.addLayout(top)
        lay.addWidget(self.card)
        lay.addWidget(self.empty)
        lay.addStretch(1)

        controller.edit_done.connect(self._edit_done)
        self._show_current()

    # -- queue ---------------------------------------------------------------------------------------
    def refresh(self) -> None:
        self._generation += 1
        gen = self._generation
        self.controller.query(load_questions, on_result=lambda qs: self._loaded(gen, qs))

    def _loaded(self, gen: int, questions) -> None:
        if gen != self._generation or self.controller.editing:
            return  # an answer is still being saved: the reload after it is the one to show
        self.answered &= {q.id for q in questions}
        self.queue = [q for q in questions if q.id not in self.answered and q.id not in self.skipped]
        if self.current is not None:  # keep the question on screen where it is still asked
            same = next((q for q in self.queue if q.id == self.current.id), None)
            if same is not None:
                self.queue.remove(same)
                self.queue.insert(0, same)
        self._full = len(questions) >= QUEUE
        self._show_current()
        self.loaded.emit(len(self.queue))

    def _show_current(self) -> None:
        has = bool(self.queue)
        self.card.setVisible(has)
        self.empty.setVisible(not has)
        for a in (self.yes_action, self.no_action, self.skip_action):
            a.setEnabled(has)
        n = len(self.queue)
        # As the sidebar counts: "99+" beyond 99, and "+" when more wait than were fetched.
        shown = "99+" if n > 99 else f"{n}+" if self._full else str(n)
        self.left.setText(f"{shown} question{'' if shown == '1' else 's'}" if has else "")
        if not has:
            self.current = None
            return
        q = self.queue[0]
        self.current = q
        face = q.kind == "face"
        if face:
            who = f"<b>{html.escape(q.name_a)}</b>" if q.name_a else "one of them"
            self.question.setText(f"Is this face {who}?")
            self.yes_btn.setToolTip("Yes: keep the face in the group (it stays there from now on)")
            self.no_btn.setToolTip("Someone else: take the face out of the group, for good")
        else:
            if q.name_a and not q.name_b:
                self.question.setText(f"Is this <b>{html.escape(q.name_a)}</b>?")
            else:
                self.question.setText("Are these the same person?")
            self.yes_btn.setToolTip("The same person: put the two groups together")
            self.no_btn.setToolTip("Two people: never group them together")
        others = f"{plural(q.size_a, 'other face')} in the group" if face else None
        self.side_a.show_group(q.label_a, bool(q.name_a), q.size_a, q.faces_a, others)
        self.side_b.show_group(q.label_b, bool(q.name_b), q.size_b, q.faces_b, "" if face else None)
        likely = ("probably" if q.probability >= 0.7 else "perhaps" if q.probability >= 0.3 else "probably not")
        self.hint.setText(f"The face model says: {likely} {'one of them' if face else 'the same person'}")

    # -- answers -------------------------------------------------------------------------------------
    def _answer(self, reply: str) -> None:
        q = self.current
        if q is None:
            return
        if reply == "skip":
            self.skipped.add(q.id)
        else:
            self.answered.add(q.id)
            self.last_answer = q
        # A yes merges b into a: b's other questions go. A face question changes one face: the group's other
        # questions stay (the next load re-ranks them).
        gone = {q.person_b} if reply == "yes" and q.kind != "face" else set()
        self.queue = [x for x in self.queue[1:] if x.id != q.id and not ({x.person_a, x.person_b} & gone)]
        self.controller.answer_same_person(q, reply)
        self._show_current()
        self.loaded.emit(len(self.queue))
        if not self.queue:
            self.refresh()

    def answer_yes(self) -> None:
        self._answer("yes")

    def answer_no(self) -> None:
        self._answer("no")

    def skip(self) -> None:
        self._answer("skip")

    def _edit_done(self, action: str) -> None:
        if action == "undo" and self.last_answer is not None:
            # The answer is taken back: ask it again, first.
            q, self.last_answer = self.last_answer, None
            self.answered.discard(q.id)
            self.queue = [q] + [x for x in self.queue if x.id != q.id]
            self.current = None
            self._show_current()
        if self.isVisible() and action in ("same_person", "undo", "redo"):
            self.refresh()
