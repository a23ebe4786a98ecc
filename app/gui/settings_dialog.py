"""Settings: library location, grouping threshold (with a preview of how many people it gives), GPU use,
and the face model: every model the library could use with its licence, switching to one as a background
job (``Controller.switch_model``) shown in the status bar by :class:`ModelSwitchStatus`."""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSlider,
    QVBoxLayout,
)

from engine.config import ClusterConfig
from engine.errors import FacenetPhotosError
from engine.services.overview import count_people, gpu_available, load_cluster_input
from engine.services.reembed import stale_face_count

from .controller import plural
from .widgets import StatusProgress

T_MIN, T_MAX, T_STEP = 0.30, 1.80, 0.02


class SettingsDialog(QDialog):
    """Reads the current values off the GUI thread; the caller applies :meth:`changes` when accepted."""

    def __init__(self, controller, library_path: str, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.controller = controller
        self._data = None
        self._counting = self._recount = False
        self.initial = {"library": library_path, "threshold": None, "use_gpu": False, "model": None}
        self._models: list[dict] = []
        self._stale = 0  # faces still embedded by another model than the active one (a stopped switch)

        self.library_edit = QLineEdit(library_path)
        self.library_edit.setReadOnly(True)
        self.library_btn = QPushButton("Change…")
        lib_row = QHBoxLayout()
        lib_row.addWidget(self.library_edit, 1)
        lib_row.addWidget(self.library_btn)
        lib_note = QLabel("Photos stay where they are; the library holds faces, names and thumbnails.")
        lib_note.setObjectName("muted")
        lib_note.setWordWrap(True)

        self.spin = QDoubleSpinBox()
        self.spin.setRange(T_MIN, T_MAX)
        self.spin.setSingleStep(T_STEP)
        self.spin.setDecimals(2)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, round((T_MAX - T_MIN) / T_STEP))
        self.preview = QLabel("Loading faces…")
        self.preview.setObjectName("preview")
        t_row = QHBoxLayout()
        t_row.addWidget(QLabel("strict"))
        t_row.addWidget(self.slider, 1)
        t_row.addWidget(QLabel("loose"))
        t_row.addWidget(self.spin)
        t_note = QLabel("Lower: fewer faces of different people end up together, but one person may be split "
                        "into several groups. Names, confirmed faces and “not this person” are always kept.")
        t_note.setObjectName("muted")
        t_note.setWordWrap(True)

        self.gpu = QCheckBox("Use the GPU (CUDA) when available")
        self.gpu.setEnabled(False)
        self.gpu_note = QLabel("Checking for a GPU…")
        self.gpu_note.setObjectName("muted")

        form = QFormLayout()
        form.addRow("Library:", lib_row)
        form.addRow("", lib_note)
        form.addRow("Grouping threshold:", t_row)
        form.addRow("", self.preview)
        form.addRow("", t_note)
        form.addRow("Acceleration:", self.gpu)
        form.addRow("", self.gpu_note)
        # Which face model is active, and every other one it could use with its licence: a pack with
        # non-commercial weights must say so wherever it can be chosen.
        # The combo box chooses; a model that cannot be used here (pack not installed, head not built)
        # is listed but disabled, and choosing a usable one shows its licence and notice underneath.
        self.model_combo = QComboBox()
        self.model_combo.setEnabled(False)
        self.model_notice = QLabel("")
        self.model_notice.setObjectName("notice")
        self.model_notice.setWordWrap(True)
        self.model_notice.setTextFormat(Qt.TextFormat.PlainText)
        self.models_note = QLabel("Reading the models…")
        self.models_note.setObjectName("muted")
        self.models_note.setWordWrap(True)
        self.models_note.setTextFormat(Qt.TextFormat.PlainText)
        form.addRow("Face model:", self.model_combo)
        form.addRow("", self.model_notice)
        form.addRow("All models:", self.models_note)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(self.buttons)
        self.setMinimumWidth(660)

        self._timer = QTimer(self, singleShot=True, interval=250)
        self._timer.timeout.connect(self._preview)
        self.spin.valueChanged.connect(self._spin_changed)
        self.slider.valueChanged.connect(lambda v: self.spin.setValue(T_MIN + v * T_STEP))
        self.library_btn.clicked.connect(self._choose_library)
        self.model_combo.currentIndexChanged.connect(self._model_chosen)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.spin.setValue(ClusterConfig().threshold)
        self._load()

    def _load(self) -> None:
        def current(lib):
            return (lib.cluster_config().threshold, bool(lib.get_setting("use_gpu", False)), gpu_available(),
                    [m for m in lib.models() if m["kind"] == "embedder"], _stale_faces(lib))

        def got(r):
            t, use_gpu, has_gpu, models, stale = r
            self.models_note.setText(models_text(models))
            self._fill_models(models, stale)
            self.adjustSize()  # the dialog was laid out for the one-line placeholder
            self.initial.update(threshold=t, use_gpu=use_gpu)
            self.spin.setValue(t)
            self.gpu.setChecked(use_gpu and has_gpu)
            self.gpu.setEnabled(has_gpu)
            self.gpu_note.setText(
                "A CUDA device is available." if has_gpu else "No CUDA device found: the CPU is used."
            )
            self.controller.query(load_cluster_input, on_result=self._data_loaded)

        self.controller.query(current, on_result=got)

    def _fill_models(self, models: list[dict], stale: int) -> None:
        self._models = sorted(models, key=lambda m: not m["active"])
        self._stale = stale
        self.model_combo.blockSignals(True)
        self.model_combo.clear()
        for m in self._models:
            usable = model_usable(m)
            label = f"{m['id']} ({m['dim']}-D) — {m['licence']}"
            if m["active"]:
                label += " — active"
            elif not usable:
                label += " — not available"
            self.model_combo.addItem(label, m["id"])
            item = self.model_combo.model().item(self.model_combo.count() - 1)
            item.setEnabled(usable)
            item.setToolTip("\n".join(x for x in (m.get("notice"), None if usable else m["status"]) if x))
            if m["active"]:
                self.initial["model"] = m["id"]
        self.model_combo.setCurrentIndex(0)
        self.model_combo.blockSignals(False)
        self.model_combo.setEnabled(True)
        self._model_chosen(0)

    def _model_chosen(self, index: int) -> None:
        """Say what choosing this model means: its licence notice, the install hint, or the switch."""
        if not (0 <= index < len(self._models)):
            return
        m = self._models[index]
        lines = []
        if m.get("notice"):
            lines.append(m["notice"] + ".")
        if not model_usable(m):
            lines.append(f"Not available here: {m['status'].split(': ', 1)[-1]}")
        elif m["active"] and self._stale:
            lines.append(f"{plural(self._stale, 'face')} still wait to be looked at again with this model: "
                         "press OK to finish.")
        elif not m["active"]:
            lines.append("OK switches to it and looks at every face again in the background (progress and "
                         "Stop in the status bar). Names, confirmed faces, “not this person” and covers are kept; "
                         "the grouping threshold becomes this model's own.")
        self.model_notice.setText("\n".join(lines))
        # The threshold shown belongs to the current model; it is not applied to another one.
        switching = not m["active"]
        self.spin.setEnabled(not switching)
        self.slider.setEnabled(not switching)

    def chosen_model(self) -> str | None:
        i = self.model_combo.currentIndex()
        return self._models[i]["id"] if 0 <= i < len(self._models) else None

    def _data_loaded(self, data) -> None:
        self._data = data
        self._preview()

    def _spin_changed(self, v: float) -> None:
        self.slider.blockSignals(True)
        self.slider.setValue(round((v - T_MIN) / T_STEP))
        self.slider.blockSignals(False)
        self._timer.start()

    def _preview(self) -> None:
        """Count people at the current value; one count at a time (a big library takes a while), the
        latest value next."""
        if self._data is None:
            return
        if self._counting:
            self._recount = True
            return
        self._counting, self._recount = True, False
        t, data = self.spin.value(), self._data
        self.preview.setText("Counting…")

        def count(_lib):
            return count_people(data, t)

        def shown(n):
            if not self._recount:
                self.preview.setText(f"≈ {plural(n, 'person', 'people')} from {plural(len(data), 'face')} at {t:.2f}")

        def finished():
            self._counting = False
            if self._recount:
                self._preview()

        self.controller.query(count, on_result=shown, on_finished=finished)

    def _choose_library(self) -> None:
        d = QFileDialog.getExistingDirectory(self, "Library folder", self.library_edit.text())
        if d:
            self.library_edit.setText(d)

    def changes(self) -> dict:
        """What differs from the values the dialog opened with."""
        out = {}
        if self.library_edit.text() != self.initial["library"]:
            out["library"] = self.library_edit.text()
        t = round(self.spin.value(), 2)
        if self.initial["threshold"] is not None and abs(t - self.initial["threshold"]) > 1e-6:
            out["threshold"] = t
        if self.gpu.isEnabled() and self.gpu.isChecked() != self.initial["use_gpu"]:
            out["use_gpu"] = self.gpu.isChecked()
        chosen = self.chosen_model()
        if chosen is not None and (chosen != self.initial["model"] or self._stale):
            out["model"] = chosen
            out.pop("threshold", None)  # that threshold was the previous model's
        return out


def model_usable(m: dict) -> bool:
    """A model the library can switch to now: bundled, registered or an installed pack."""
    return m["active"] or not (m["status"].startswith("not installed") or m["status"].startswith("not built"))


def models_text(models: list[dict]) -> str:
    """The active model, then each other one with its status, licence and notice (plain text)."""
    lines = []
    for m in sorted(models, key=lambda m: not m["active"]):
        head = f"{m['id']} ({m['dim']}-D){' — active' if m['active'] else ''}: {m['licence']}"
        if not m["active"]:
            head += f"; {m['status']}"
        lines.append(head)
        if m.get("notice"):
            lines.append(f"   {m['notice']}")
    lines.append("Choose one above to switch, or from the command line: facenet-photos models --activate ID, "
                 "then facenet-photos reembed (names, confirmations and “not this person” are kept).")
    return "\n".join(lines)


def _stale_faces(lib) -> int:
    """Faces not yet embedded by the active model; 0 when that model cannot even be loaded (its pack was
    uninstalled): the dialog still opens and lists the models, and choosing one says why it is not there."""
    try:
        return stale_face_count(lib)
    except FacenetPhotosError:
        return 0


class ModelSwitchStatus(StatusProgress):
    """The model switch's progress in the status bar, visible from every page, with Stop."""

    def __init__(self, controller, parent=None):
        super().__init__(("Stop",), parent)
        (self.stop_btn,) = self.buttons
        self.stop_btn.clicked.connect(controller.cancel_model_switch)
        controller.model_switch_started.connect(self._started)
        controller.model_switch_progress.connect(self._progress)
        controller.model_switch_finished.connect(lambda _p: self.hide())

    def _started(self, model_id: str) -> None:
        self.bar.setRange(0, 0)
        self.label.setText(f"Switching to {model_id}…")
        self.show()

    def _progress(self, p) -> None:
        if p.total:
            self.show_count(p.done, p.total)
            self.label.setText(f"Looking at faces again with {p.model_id}: {p.done}/{p.total}")
        else:
            self.bar.setRange(0, 0)
            self.label.setText(f"Switching to {p.model_id}: {p.current}" if p.current else
                               f"Switching to {p.model_id}…")
