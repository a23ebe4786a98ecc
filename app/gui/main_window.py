"""The main window: sidebar, pages, menus, status bar, drag and drop import, and a clean shutdown."""

from __future__ import annotations

import gc
import time
from pathlib import Path

from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (
    QFileDialog,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QMessageBox,
    QSplitter,
    QStackedWidget,
)

from engine.services.overview import sidebar_counts

from . import pyside_compat  # noqa: F401  (must run before any Qt call)
from .controller import ERROR, Controller
from .delegates import FACE_THUMB, PERSON_THUMB
from .import_page import ImportPage, ImportStatus
from .people_page import PeoplePage
from .person_page import PersonPage
from .photo_grid import THUMB_PX
from .photos_page import PHOTO_CACHE, PhotosPage
from .review_page import BIG, ReviewPage
from .same_person_page import SamePersonPage, count_questions
from .settings_dialog import ModelSwitchStatus, SettingsDialog
from .thumbs import Thumbnails, load_photo_image
from .widgets import CompactPersonDelegate, icon
from .workers import Jobs

SECTIONS = [  # key, label, icon
    ("people", "People", "people"),
    ("unnamed", "Unnamed", "unnamed"),
    ("hidden", "Hidden", "hidden"),
    ("review", "Review", "review"),
    ("same", "Same person?", "same"),
    ("photos", "Photos", "photos"),
    ("import", "Import activity", "import"),
]

STYLE = """
QLabel#pageTitle { font-size: 17pt; font-weight: 600; margin-right: 8px; }
QLabel#sectionTitle { font-size: 11pt; font-weight: 600; margin-top: 6px; }
QLabel#importHead { font-size: 12pt; font-weight: 600; }
QLabel#question { font-size: 16pt; margin: 6px; }
QLabel#muted, QLabel#preview { color: palette(placeholder-text); }
QLabel#preview { font-weight: 600; }
QLabel#emptyHint { font-size: 13pt; color: palette(placeholder-text); margin: 18px; }
QFrame#card { border: 1px solid palette(mid); border-radius: 8px; background: palette(base); }
QListWidget#sidebar { border: none; background: palette(window); font-size: 11pt; }
QListWidget#sidebar::item { padding: 6px 4px; border-radius: 6px; }
QListWidget#sidebar::item:selected { background: palette(highlight); color: palette(highlighted-text); }
QPushButton#yes { font-weight: 600; }
"""


MENU_LABEL_PX = 420  # widest Undo/Redo item: the Edit menu stays narrow whatever the journal says


def menu_label(verb: str, description: str, metrics) -> str:
    """'Undo Merge 3,015 people into Tom', cut to ``MENU_LABEL_PX`` (old libraries hold long descriptions)."""
    if not description:
        return verb
    text = metrics.elidedText(f"{verb} {description}", Qt.TextElideMode.ElideRight, MENU_LABEL_PX)
    return text.replace("&", "&&")  # a name with '&' is not a mnemonic


def unique_shortcuts(keys) -> list[QKeySequence]:
    """Key sequences without repeats (a standard key may be the same as one listed by hand)."""
    out: list[QKeySequence] = []
    for k in keys:
        for seq in (QKeySequence.keyBindings(k) if isinstance(k, QKeySequence.StandardKey) else [QKeySequence(k)]):
            if not seq.isEmpty() and all(seq != o for o in out):
                out.append(seq)
    return out


_FROZEN = False


def freeze_startup_objects() -> None:
    """Once per process: the objects alive when the window is built (modules, Qt wrappers, the engine's
    tables) are never garbage, so the collector stops walking them. A full collection walked them all,
    holding the GIL for 100-300 ms, and a pool thread building the photo grid's timeline of 100,000 photos
    triggered several: the window froze meanwhile. Frozen, a full collection takes a fraction of that."""
    global _FROZEN
    if not _FROZEN:
        _FROZEN = True
        gc.freeze()


class MainWindow(QMainWindow):
    closed = Signal()

    def __init__(self, library, *, owns_library: bool = True, settings=None, parent=None):
        super().__init__(parent)
        self.settings = settings
        self.owns_library = owns_library
        self._closing = False
        self._closed = False
        self._close_deadline = 0.0
        self._dirty: set[str] = set()
        self.setWindowIcon(icon("app"))
        self.setAcceptDrops(True)
        self.setStyleSheet(STYLE)

        self.jobs = Jobs(self)
        self.controller = Controller(library, self.jobs, self)
        dpr = QGuiApplication.primaryScreen().devicePixelRatio() if QGuiApplication.primaryScreen() else 1.0
        self.round_thumbs = Thumbnails(self.jobs, library, size=PERSON_THUMB, round_=True, dpr=dpr, parent=self)
        self.face_thumbs = Thumbnails(self.jobs, library, size=FACE_THUMB, round_=False, dpr=dpr, parent=self)
        self.small_thumbs = Thumbnails(self.jobs, library, size=CompactPersonDelegate.SIZE, round_=True, dpr=dpr,
                                       parent=self, loaders=1)
        self.big_thumbs = Thumbnails(self.jobs, library, size=BIG, round_=False, dpr=dpr, capacity=64, loaders=1,
                                     parent=self)
        self.photo_thumbs = Thumbnails(self.jobs, library, size=THUMB_PX, capacity=PHOTO_CACHE, dpr=dpr,
                                       loader=load_photo_image, parent=self)
        self.thumbnails = [self.round_thumbs, self.face_thumbs, self.small_thumbs, self.big_thumbs, self.photo_thumbs]

        # -- pages --
        self.people_page = PeoplePage(self.controller, self.round_thumbs, settings=settings)
        self.person_page = PersonPage(self.controller, self.face_thumbs, self.round_thumbs, self.small_thumbs)
        self.review_page = ReviewPage(self.controller, self.big_thumbs, face_thumbs=self.face_thumbs)
        self.same_page = SamePersonPage(self.controller, self.face_thumbs)
        self.photos_page = PhotosPage(self.controller, self.photo_thumbs)
        self.import_page = ImportPage(self.controller)
        self.stack = QStackedWidget()
        for w in (self.people_page, self.person_page, self.review_page, self.same_page, self.photos_page,
                  self.import_page):
            self.stack.addWidget(w)

        self.sidebar = QListWidget()
        self.sidebar.setObjectName("sidebar")
        self.sidebar.setIconSize(QSize(20, 20))
        self.sidebar.setMinimumWidth(150)
        self.sidebar.setMaximumWidth(240)
        # A long label with its count ("Same person?  (99+)") is cut, never scrolled sideways.
        self.sidebar.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.sidebar.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self._items: dict[str, QListWidgetItem] = {}
        for key, label, ic in SECTIONS:
            it = QListWidgetItem(icon(ic), label)
            it.setData(Qt.ItemDataRole.UserRole, key)
            self.sidebar.addItem(it)
            self._items[key] = it
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.sidebar)
        split.addWidget(self.stack)
        split.setStretchFactor(1, 1)
        split.setSizes([225, 1000])
        split.setChildrenCollapsible(False)
        self.setCentralWidget(split)

        # -- status bar --
        self.status_label = QLabel()
        self.statusBar().addWidget(self.status_label, 1)
        self.import_status = ImportStatus(self.controller)
        self.statusBar().addPermanentWidget(self.import_status)
        self.model_status = ModelSwitchStatus(self.controller)
        self.statusBar().addPermanentWidget(self.model_status)
        self._status_timer = QTimer(self, singleShot=True)
        self._status_timer.timeout.connect(self.status_label.clear)

        self._build_menus()

        # -- wiring --
        self.section = "people"
        self._came_from = "people"  # the section a person's page was opened from: Back returns there
        self.sidebar.currentItemChanged.connect(self._sidebar_changed)
        self.sidebar.itemClicked.connect(self._sidebar_clicked)
        self.people_page.open_person.connect(self.open_person)
        self.people_page.import_requested.connect(self.choose_folder)
        self.person_page.back.connect(self.go_back)
        self.person_page.gone.connect(self.go_back)
        self.person_page.open_person.connect(self.open_person)
        self.photos_page.open_person.connect(self.open_person)
        self.import_page.import_folder.connect(self.choose_folder)
        self.import_page.import_files.connect(self.choose_files)
        self.import_status.open_details.connect(lambda: self.show_section("import"))
        self.controller.changed.connect(self.refresh)
        self.controller.message.connect(self.show_message)
        self.controller.history_changed.connect(self._history)
        self._close_timer = QTimer(self, interval=50)
        self._close_timer.timeout.connect(self._try_finish_close)

        self.setWindowTitle(f"facenet-photos — {library.root}")
        self.resize(1280, 820)
        if settings is not None and settings.value("geometry") is not None:
            self.restoreGeometry(settings.value("geometry"))
        self.sidebar.setCurrentItem(self._items["people"])
        self.controller.refresh_history()
        self._refresh_counts()
        # Faces that an import killed before grouping left in no person: group them now, in the background.
        self.controller.group_leftovers()
        freeze_startup_objects()

    # -- menus ---------------------------------------------------------------------------------------
    def _build_menus(self) -> None:
        def act(menu, text, keys=(), slot=None, ic=None):
            a = QAction(text, self)
            if ic:
                a.setIcon(icon(ic))
            a.setShortcuts(unique_shortcuts(keys))
            if slot is not None:
                a.triggered.connect(slot)
            menu.addAction(a)
            return a

        mb = self.menuBar()
        f = mb.addMenu("&File")
        self.import_folder_action = act(f, "Import a folder…", ["Ctrl+I"], self.choose_folder, "import")
        act(f, "Import photos…", ["Ctrl+Shift+I"], self.choose_files)
        self.cancel_import_action = act(f, "Cancel import", [], self.controller.cancel_import)
        self.cancel_import_action.setEnabled(False)
        f.addSeparator()
        act(f, "Settings…", ["Ctrl+,"], self.open_settings, "settings")
        f.addSeparator()
        # The platform's Quit keys, plus Ctrl+Q where the platform has none (Windows): a key listed twice
        # makes Qt refuse it as an "ambiguous shortcut overload" and Ctrl+Q did nothing.
        act(f, "Quit", [QKeySequence.StandardKey.Quit, "Ctrl+Q"], self.close)
        e = mb.addMenu("&Edit")
        self.undo_action = act(e, "Undo", ["Ctrl+Z"], self.controller.undo)
        self.redo_action = act(e, "Redo", ["Ctrl+Shift+Z", "Ctrl+Y"], self.controller.redo)
        # Always enabled: the journal lives in the database and the labels below arrive asynchronously; with
        # nothing to undo the status bar says so.
        e.addSeparator()
        act(e, "Find a person", ["Ctrl+F"], self.focus_search)
        v = mb.addMenu("&View")
        for i, (key, label, ic) in enumerate(SECTIONS):
            act(v, label, [f"Ctrl+{i + 1}"], lambda _c=False, k=key: self.show_section(k), ic)
        h = mb.addMenu("&Help")
        act(h, "Keyboard shortcuts", ["F1"], self.show_shortcuts)
        self.controller.import_started.connect(lambda _p: self.cancel_import_action.setEnabled(True))
        self.controller.import_finished.connect(lambda _p: self.cancel_import_action.setEnabled(False))

    def show_shortcuts(self) -> None:
        text = (
            "<table cellspacing=4>"
            "<tr><td><b>People</b></td><td></td></tr>"
            "<tr><td>Enter / double click</td><td>open a person</td></tr>"
            "<tr><td>F2</td><td>rename</td></tr>"
            "<tr><td>Ctrl+M</td><td>merge the selected people (or drag people onto a person)</td></tr>"
            "<tr><td>Ctrl+H</td><td>hide / unhide</td></tr>"
            "<tr><td><b>A person's faces</b></td><td></td></tr>"
            "<tr><td>Ctrl+Shift+N</td><td>new person from the selected faces</td></tr>"
            "<tr><td>Ctrl+M</td><td>move the selected faces to… (type a name)</td></tr>"
            "<tr><td>Delete</td><td>not this person</td></tr>"
            "<tr><td>Shift+Delete</td><td>not a face at all: delete it (undoable)</td></tr>"
            "<tr><td>Ctrl+Enter</td><td>confirm the selected faces</td></tr>"
            "<tr><td>Alt+Left, Esc</td><td>back to where you opened the person from</td></tr>"
            "<tr><td><b>Photos</b></td><td></td></tr>"
            "<tr><td>Enter / double click</td><td>open the photo; Left / Right: newer / older; Esc: back</td></tr>"
            "<tr><td>D</td><td>draw a box around a face the app missed</td></tr>"
            "<tr><td>F / double click</td><td>photo full screen: wheel or +/- zoom, drag moves, Esc closes</td></tr>"
            "<tr><td>right click</td><td>show the photo in the file manager</td></tr>"
            "<tr><td><b>Review</b></td><td></td></tr>"
            "<tr><td>Y / N / S</td><td>yes / no / skip</td></tr>"
            "<tr><td><b>Same person?</b></td><td></td></tr>"
            "<tr><td>Y / N / S</td><td>the same person / two people / ask later; Ctrl+Z takes it back</td></tr>"
            "<tr><td><b>Everywhere</b></td><td></td></tr>"
            "<tr><td>Ctrl+Z / Ctrl+Shift+Z</td><td>undo / redo</td></tr>"
            "<tr><td>Ctrl+I</td><td>import a folder (or drop folders on the window)</td></tr>"
            f"<tr><td>Ctrl+1 … Ctrl+{len(SECTIONS)}</td><td>sidebar sections</td></tr>"
            "</table>"
        )
        box = QMessageBox(QMessageBox.Icon.NoIcon, "Keyboard shortcuts", text, QMessageBox.StandardButton.Close, self)
        box.setTextFormat(Qt.TextFormat.RichText)
        box.open()

    # -- navigation ----------------------------------------------------------------------------------
    def _sidebar_changed(self, item, _prev) -> None:
        if item is not None:
            self.show_section(item.data(Qt.ItemDataRole.UserRole))

    def _sidebar_clicked(self, item) -> None:
        """A click on Photos in the sidebar shows the grid, also from a photo open in it (the click does not
        change the sidebar's current item there, so ``_sidebar_changed`` does not run)."""
        if item is not None and item.data(Qt.ItemDataRole.UserRole) == "photos" and (
                self.stack.currentWidget() is self.photos_page):
            self.photos_page.show_grid()

    def show_section(self, key: str, *, returning: bool = False) -> None:
        """Show a sidebar section. Coming to the people from elsewhere starts with an empty search (an old one
        would hide people for no visible reason); ``returning`` from a person's page keeps it."""
        page = self.stack.currentWidget()
        from_people = page is self.people_page or (
            page is self.person_page and self._came_from in ("people", "unnamed", "hidden"))
        if key in ("people", "unnamed", "hidden") and not returning and not from_people:
            self.people_page.search.blockSignals(True)
            self.people_page.search.clear()
            self.people_page.search.blockSignals(False)
        self.section = key
        if self.sidebar.currentItem() is not self._items[key]:
            self.sidebar.blockSignals(True)
            self.sidebar.setCurrentItem(self._items[key])
            self.sidebar.blockSignals(False)
        if key in ("people", "unnamed", "hidden"):
            mode = {"people": "all", "unnamed": "unnamed", "hidden": "hidden"}[key]
            self.stack.setCurrentWidget(self.people_page)
            self.people_page.set_mode(mode)
            self.people_page.view.setFocus()
        elif key == "review":
            self.stack.setCurrentWidget(self.review_page)
            self.review_page.refresh()
            self.review_page.setFocus()
        elif key == "same":
            self.stack.setCurrentWidget(self.same_page)
            self.same_page.refresh()
            self.same_page.setFocus()
        elif key == "photos":
            self.stack.setCurrentWidget(self.photos_page)
            self.photos_page.refresh()
        elif key == "import":
            self.stack.setCurrentWidget(self.import_page)

    def open_person(self, person_id: int) -> None:
        if person_id is None:
            return
        if self.stack.currentWidget() is not self.person_page:  # from one person to another: keep the origin
            self._came_from = self.section
            label = next(lbl for key, lbl, _i in SECTIONS if key == self._came_from)
            self.person_page.back_btn.setText(f"← {label}")
            self.person_page.back_btn.setToolTip(f"Back to {label} (Alt+Left)")
        self.stack.setCurrentWidget(self.person_page)
        self.person_page.show_person(int(person_id))
        self.person_page.faces_view.setFocus()

    def go_back(self) -> None:
        """Back from a person's page to where they were opened from (People, Photos, Review…)."""
        self.show_section(self._came_from or "people", returning=True)

    def focus_search(self) -> None:
        if self.stack.currentWidget() is not self.people_page:
            self.show_section("people")
        self.people_page.search.setFocus()
        self.people_page.search.selectAll()

    # -- refresh -------------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Reload what the current page shows (after an edit, an import batch, a regrouping)."""
        page = self.stack.currentWidget()
        if page is self.people_page:
            self.people_page.refresh()
        elif page is self.person_page:
            self.person_page.refresh()
        elif page is self.review_page:
            self.review_page.refresh()
        elif page is self.same_page:
            self.same_page.refresh()
        elif page is self.photos_page:
            self.photos_page.refresh()
        self._refresh_counts()

    def _refresh_counts(self) -> None:
        def show(counts):
            for key, _label, _ic in SECTIONS:
                if key in counts:
                    self._set_count(key, counts[key])

        self.controller.query(sidebar_counts, on_result=show)
        # The questions take a ranking of every group: a query of their own, so the other counts come first.
        self.controller.query(count_questions, on_result=lambda n: self._set_count("same", n))

    def _set_count(self, key: str, n: int) -> None:
        label = next(lbl for k, lbl, _i in SECTIONS if k == key)
        shown = "99+" if key == "same" and n > 99 else n
        self._items[key].setText(f"{label}  ({shown})" if n else label)

    def _history(self, undo: str, redo: str) -> None:
        self.undo_action.setText(menu_label("Undo", undo, self.fontMetrics()))
        self.redo_action.setText(menu_label("Redo", redo, self.fontMetrics()))
        # The whole description stays readable where the menu item is cut.
        self.undo_action.setToolTip(f"Undo {undo}" if undo else "Nothing to undo")
        self.redo_action.setToolTip(f"Redo {redo}" if redo else "Nothing to redo")

    def show_message(self, text: str, level: int = 0) -> None:
        self.status_label.setText(text)
        self.status_label.setStyleSheet("color: #c5221f;" if level == ERROR else "")
        self._status_timer.start(12000 if level == ERROR else 6000)

    # -- import --------------------------------------------------------------------------------------
    def choose_folder(self) -> None:
        d = QFileDialog.getExistingDirectory(self, "Import a folder of photos")
        if d:
            self.controller.import_paths([d])

    def choose_files(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(
            self, "Import photos", "", "Images (*.jpg *.jpeg *.png *.webp *.tif *.tiff *.bmp *.heic *.heif *.gif)"
        )
        if files:
            self.controller.import_paths(files)

    @staticmethod
    def _local_paths(mime) -> list[str]:
        if mime is None or not mime.hasUrls():
            return []
        return [u.toLocalFile() for u in mime.urls() if u.isLocalFile() and u.toLocalFile()]

    def dragEnterEvent(self, e) -> None:
        if self._local_paths(e.mimeData()):
            e.acceptProposedAction()
        else:
            e.ignore()

    def dragMoveEvent(self, e) -> None:
        if self._local_paths(e.mimeData()):
            e.acceptProposedAction()
        else:
            e.ignore()

    def dropEvent(self, e) -> None:
        paths = self._local_paths(e.mimeData())
        if not paths:
            e.ignore()
            return
        e.acceptProposedAction()
        self.controller.import_paths(paths)
        names = ", ".join(Path(p).name for p in paths[:3]) + ("…" if len(paths) > 3 else "")
        self.show_message(f"Importing {names}")

    # -- settings ------------------------------------------------------------------------------------
    def open_settings(self) -> SettingsDialog:
        dlg = SettingsDialog(self.controller, str(self.controller.library.root), self)
        dlg.accepted.connect(lambda: self.apply_settings(dlg.changes()))
        dlg.open()
        return dlg

    def apply_settings(self, changes: dict) -> None:
        if "use_gpu" in changes:
            v = changes["use_gpu"]
            self.controller.set_setting("use_gpu", v)
        if "threshold" in changes:
            self.controller.regroup(changes["threshold"])
        if "model" in changes:
            self.controller.switch_model(changes["model"])
        if "library" in changes:
            self.switch_library(changes["library"])

    def switch_library(self, path: str) -> None:
        if self.controller.importing or self.controller.editing or self.controller.switching_model:
            self.show_message("Wait for the import, the edits and the face model change to finish before "
                              "changing the library", ERROR)
            return

        def open_new():
            from engine.services.library import Library

            return Library(path)

        def opened(new):
            old, owned = self.controller.library, self.owns_library
            self.controller.library = new
            self.owns_library = True
            for t in self.thumbnails:
                t.set_library(new)
            if owned:
                self.jobs.wait(30)
                old.close()
            if self.settings is not None:
                self.settings.setValue("library", str(new.root))
            self.setWindowTitle(f"facenet-photos — {new.root}")
            self.show_message(f"Opened the library {new.root}")
            self.controller.refresh_history()
            self.show_section("people")
            self._refresh_counts()

        self.jobs.start(open_new, on_result=opened,
                        on_error=lambda m: self.show_message(f"Cannot open that library: {m}", ERROR),
                        name="open_library")

    # -- closing -------------------------------------------------------------------------------------
    @property
    def is_closed(self) -> bool:
        return self._closed

    def closeEvent(self, e) -> None:
        if self._closed:
            e.accept()
            return
        if not self._closing:
            self._closing = True
            self._close_deadline = time.monotonic() + 120
            for t in self.thumbnails:
                t.set_library(None)
            importing = self.controller.importing
            self.controller.cancel_import()
            if importing:  # after cancel_import's own message, so that this one is what stays on screen
                self.show_message("Closing after the current batch of photos is saved (a few seconds). "
                                  "Import the folder again later to read the rest.")
            self.jobs.cancel_all()
            self.centralWidget().setEnabled(False)
            self.menuBar().setEnabled(False)
        if self._busy():
            e.ignore()
            self._close_timer.start()
            return
        self._finish_close()
        e.accept()

    def _busy(self) -> bool:
        return self.controller.busy() or self.controller.editing

    def _try_finish_close(self) -> None:
        if not self._busy() or time.monotonic() > self._close_deadline:
            self._close_timer.stop()
            self._finish_close()
            self.close()

    def _finish_close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.controller.shutdown(timeout=60)
        if self.settings is not None:
            self.settings.setValue("geometry", self.saveGeometry())
        if self.owns_library:
            self.controller.library.close()
        self.closed.emit()
