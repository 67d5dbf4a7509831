"""Preferences kept in QSettings (organization "Ganvas"): device, CPU threads, inference backend, models folder."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QWidget,
)

DEVICES = ("auto", "cpu", "cuda", "mps")
BACKENDS = ("auto", "torch", "openvino", "openvino-bf16", "onnxruntime")  # engine.infer.backends.BACKEND_CHOICES (no engine import here)
DEFAULT_BACKEND = "auto"
DEFAULT_MODELS_FOLDER = str(Path.home() / "Ganvas" / "models")


class Preferences:
    """Typed access to the preference keys of one QSettings store."""

    def __init__(self, settings: QSettings) -> None:
        self.settings = settings

    @property
    def device(self) -> str:
        value = str(self.settings.value("preferences/device", "auto"))
        return value if value in DEVICES else "auto"

    @device.setter
    def device(self, value: str) -> None:
        self.settings.setValue("preferences/device", value)

    @property
    def threads(self) -> int:
        """CPU threads for torch (0 = its default); applies at the next start."""
        try:
            return max(0, int(self.settings.value("preferences/threads", 0)))
        except (TypeError, ValueError):
            return 0

    @threads.setter
    def threads(self, value: int) -> None:
        self.settings.setValue("preferences/threads", int(value))

    @property
    def backend(self) -> str:
        """What runs a loaded checkpoint's network on the CPU (``auto``: the fastest, timed on the model)."""
        value = str(self.settings.value("preferences/backend", DEFAULT_BACKEND))
        return value if value in BACKENDS else DEFAULT_BACKEND

    @backend.setter
    def backend(self, value: str) -> None:
        self.settings.setValue("preferences/backend", value)

    @property
    def models_folder(self) -> str:
        return str(self.settings.value("preferences/models_folder", DEFAULT_MODELS_FOLDER))

    @models_folder.setter
    def models_folder(self, value: str) -> None:
        self.settings.setValue("preferences/models_folder", value)


class PreferencesDialog(QDialog):
    """Edit :class:`Preferences`; :meth:`apply` writes them back."""

    def __init__(self, preferences: Preferences, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Preferences")
        self._preferences = preferences
        self.device = QComboBox(self)
        self.device.addItems(DEVICES)
        self.device.setCurrentText(preferences.device)
        self.threads = QSpinBox(self)
        self.threads.setRange(0, 256)
        self.threads.setSpecialValueText("default")
        self.threads.setValue(preferences.threads)
        self.backend = QComboBox(self)
        self.backend.addItems(BACKENDS)
        self.backend.setCurrentText(preferences.backend)
        self.backend.setToolTip("auto times each installed backend on the loaded model and keeps the fastest (bf16 only "
                                "on CPUs with bf16 units, and only where it matches torch's output within 40 dB); "
                                "compiled models are cached, so only the first load of a model pays the compile")
        self.folder = QLineEdit(preferences.models_folder, self)
        browse = QPushButton("Browse...", self)
        browse.clicked.connect(self._browse)
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.folder, 1)
        folder_row.addWidget(browse)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form = QFormLayout(self)
        form.addRow("Device:", self.device)
        form.addRow("CPU threads:", self.threads)
        form.addRow("", QLabel("(threads apply at the next start)", self))
        form.addRow("Inference backend:", self.backend)
        form.addRow("Models folder:", folder_row)
        form.addRow(buttons)

    def apply(self) -> None:
        self._preferences.device = self.device.currentText()
        self._preferences.threads = self.threads.value()
        self._preferences.backend = self.backend.currentText()
        self._preferences.models_folder = self.folder.text().strip() or DEFAULT_MODELS_FOLDER

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Models folder", self.folder.text())
        if folder:
            self.folder.setText(folder)
