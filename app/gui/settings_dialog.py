"""Settings: library location, grouping threshold (with a preview of how many people it gives), GPU use,
and the face models the library can use with their licences."""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QCheckBox,
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
from engine.services.overview import count_people, gpu_available, load_cluster_input

from .controller import plural

T_MIN, T_MAX, T_STEP = 0.30, 1.80, 0.02


class SettingsDialog(QDialog):
    """Reads the current values off the GUI thread; the caller applies :meth:`changes` when accepted."""

    def __init__(self, controller, library_path: str, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.controller = controller
        self._data = None
        self._counting = self._recount = False
        self.initial = {"library": library_path, "threshold": None, "use_gpu": False}

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
        self.models_note = QLabel("Reading the models…")
        self.models_note.setObjectName("muted")
        self.models_note.setWordWrap(True)
        self.models_note.setTextFormat(Qt.TextFormat.PlainText)
        form.addRow("Face model:", self.models_note)
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
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.spin.setValue(ClusterConfig().threshold)
        self._load()

    def _load(self) -> None:
        def current(lib):
            return (lib.cluster_config().threshold, bool(lib.get_setting("use_gpu", False)), gpu_available(),
                    [m for m in lib.models() if m["kind"] == "embedder"])

        def got(r):
            t, use_gpu, has_gpu, models = r
            self.models_note.setText(models_text(models))
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
        return out


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
    lines.append("To switch: facenet-photos models --activate ID, then facenet-photos reembed "
                 "(names, confirmations and “not this person” are kept).")
    return "\n".join(lines)
