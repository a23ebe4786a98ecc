"""Import activity: progress (count, rate, time left, cancel) and, at the end, what could not be imported."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from .controller import plural
from .item_models import Column, RowsTableModel
from .widgets import StatusProgress, display_path, duration

STAGES = {
    "scan": "Looking for photos…",
    "analyse": "Finding faces",
    "recognise": "Recognising people",
    "cluster": "Grouping faces into people",
    "done": "Import finished",
    "cancelled": "Import cancelled",
}


def progress_text(p) -> tuple[str, str]:
    """(headline, details) of an engine ImportProgress."""
    if p.stage == "scan":
        return STAGES["scan"], f"{plural(p.total, 'photo')} found so far"
    head = STAGES.get(p.stage, p.stage)
    if p.stage in ("analyse", "recognise", "cluster"):
        head = f"{head}: {p.done} of {plural(p.total, 'photo')}"
    bits = []
    if p.stage in ("done", "cancelled"):
        bits.append(f"{plural(p.done, 'photo')} in {duration(p.elapsed)}")
    elif p.rate:
        bits.append(f"{p.rate:.1f} photos/s")
        if p.eta is not None:
            bits.append(f"about {duration(p.eta)} left")
    bits.append(f"{plural(p.faces, 'face')} found")
    if p.skipped:
        bits.append(f"{p.skipped} already in the library")
    if p.duplicates:
        bits.append(f"{plural(p.duplicates, 'duplicate')} skipped")
    if p.failed:
        bits.append(f"{p.failed} failed")
    return head, " · ".join(bits)


class ImportPanel(QFrame):
    """Headline, progress bar, details, current file and a Cancel button."""

    cancel = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("card")
        self.head = QLabel("No import running")
        self.head.setObjectName("importHead")
        self.bar = QProgressBar()
        self.bar.setTextVisible(True)
        self.details = QLabel("")
        self.details.setObjectName("muted")
        self.current = QLabel("")
        self.current.setObjectName("muted")
        self.current.setTextFormat(Qt.TextFormat.PlainText)
        self.cancel_btn = QPushButton("Cancel")
        self.cancel_btn.setToolTip("Stop after the photos being read now; what is done is kept")
        self.cancel_btn.clicked.connect(self.cancel)
        row = QHBoxLayout()
        row.addWidget(self.bar, 1)
        row.addWidget(self.cancel_btn)
        lay = QVBoxLayout(self)
        lay.addWidget(self.head)
        lay.addLayout(row)
        lay.addWidget(self.details)
        lay.addWidget(self.current)
        # Long paths and counts are cut rather than widen the window past half a laptop screen.
        for w in (self.head, self.details, self.current):
            w.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.set_idle()

    def set_idle(self, text: str = "No import running") -> None:
        self.head.setText(text)
        self.bar.setRange(0, 1)
        self.bar.setValue(0)
        self.cancel_btn.setEnabled(False)
        self.current.setText("")

    def started(self) -> None:
        self.head.setText(STAGES["scan"])
        self.details.setText("")
        self.bar.setRange(0, 0)  # busy until the number of photos is known
        self.cancel_btn.setEnabled(True)

    def update_progress(self, p) -> None:
        head, details = progress_text(p)
        self.head.setText(head)
        self.details.setText(details)
        running = p.stage not in ("done", "cancelled")
        if p.stage == "scan" or (running and not p.total):
            self.bar.setRange(0, 0)
        else:
            self.bar.setRange(0, max(1, p.total))
            self.bar.setValue(min(p.done, max(1, p.total)) if p.total else 1)
        self.cancel_btn.setEnabled(running)
        cur = Path(p.current).name if running and p.current else ""
        self.current.setText(cur and f"Last photo: {cur}")


class ImportPage(QWidget):
    import_folder = Signal()
    import_files = Signal()

    def __init__(self, controller, parent=None):
        super().__init__(parent)
        self.controller = controller
        title = QLabel("Import")
        title.setObjectName("pageTitle")
        self.folder_btn = QPushButton("Import a folder…")
        self.files_btn = QPushButton("Import photos…")
        hint = QLabel("…or drop folders and photos anywhere on this window.")
        hint.setObjectName("muted")
        hint.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        top = QHBoxLayout()
        top.addWidget(title)
        hint.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        top.addWidget(hint, 1)  # the free room, right-aligned (it may be cut, never widen the window)
        top.addWidget(self.folder_btn)
        top.addWidget(self.files_btn)
        self.panel = ImportPanel()
        self.failures_title = QLabel("")
        self.failures_title.setObjectName("sectionTitle")
        self.failures_model = RowsTableModel([
            Column("File", lambda r: Path(r[0]).name, tooltip=lambda r: r[0]),
            Column("Folder", lambda r: display_path(str(Path(r[0]).parent))),
            Column("Reason", lambda r: r[1]),
        ], self)
        self.failures = QTableView()
        self.failures.setModel(self.failures_model)
        self.failures.setObjectName("failures")
        self.failures.verticalHeader().hide()
        self.failures.setAlternatingRowColors(True)
        self.failures.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.failures.setWordWrap(False)
        h = self.failures.horizontalHeader()
        h.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        h.setSectionResizeMode(1, QHeaderView.ResizeMode.Interactive)
        h.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.failures.setColumnWidth(1, 260)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(12, 10, 12, 8)
        lay.addLayout(top)
        lay.addWidget(self.panel)
        lay.addWidget(self.failures_title)
        lay.addWidget(self.failures, 1)
        self.filler = QWidget()  # keeps the panel at the top while there is no failure to list
        lay.addWidget(self.filler, 1)
        self._show_failures([])
        self.folder_btn.clicked.connect(self.import_folder)
        self.files_btn.clicked.connect(self.import_files)
        self.panel.cancel.connect(controller.cancel_import)
        controller.import_started.connect(self._started)
        controller.import_progress.connect(self._progress)
        controller.import_finished.connect(self._finished)

    def _started(self, paths) -> None:
        self.panel.started()
        self._show_failures([])

    def _progress(self, p) -> None:
        self.panel.update_progress(p)
        if len(p.failures) != len(self.failures_model.rows):  # list failures as they happen
            self._show_failures(p.failures)

    def _show_failures(self, failures) -> None:
        self.failures_model.set_rows(failures)
        if failures:
            self.failures_title.setText(f"Could not import {plural(len(failures), 'file')}:")
        self.failures_title.setVisible(bool(failures))
        self.failures.setVisible(bool(failures))
        self.filler.setVisible(not failures)

    def _finished(self, p) -> None:
        if p is None:
            self.panel.set_idle("Import failed")
            return
        self.panel.update_progress(p)
        self._show_failures(p.failures)


class ImportStatus(StatusProgress):
    """The import's progress in the status bar, visible from every page."""

    open_details = Signal()

    def __init__(self, controller, parent=None):
        super().__init__(("Details", "Cancel"), parent)
        self.details_btn, self.cancel_btn = self.buttons
        self.details_btn.clicked.connect(self.open_details)
        self.cancel_btn.clicked.connect(controller.cancel_import)
        controller.import_started.connect(lambda _p: (self.show(), self.bar.setRange(0, 0),
                                                      self.label.setText("Importing…")))
        controller.import_progress.connect(self._progress)
        controller.import_finished.connect(lambda _p: self.hide())

    def _progress(self, p) -> None:
        if p.total and p.stage != "scan":
            self.show_count(p.done, p.total)
            eta = f", {duration(p.eta)} left" if p.eta else ""
            self.label.setText(f"Importing {p.done}/{p.total}{eta}")
        else:
            self.bar.setRange(0, 0)
