"""The latent editor's Files section: save or load the latent shown, export its image."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtWidgets import QFileDialog, QGroupBox, QHBoxLayout, QMessageBox, QPushButton, QWidget

from desktop.latent.model import LatentModel
from desktop.workers import error_message
from engine import api


class FilesSection(QGroupBox):
    """Save latent / Load latent (``.npz``, with how it was made) and Export PNG of the image shown."""

    def __init__(self, model: LatentModel, parent: QWidget | None = None) -> None:
        super().__init__("Files", parent)
        self.model = model
        self.save_latent_button = QPushButton("Save latent...", self)
        self.load_latent_button = QPushButton("Load latent...", self)
        self.export_image_button = QPushButton("Export PNG...", self)
        row = QHBoxLayout(self)
        for button in (self.save_latent_button, self.load_latent_button, self.export_image_button):
            row.addWidget(button)
        self.save_latent_button.clicked.connect(self.save_latent)
        self.load_latent_button.clicked.connect(self.load_latent)
        self.export_image_button.clicked.connect(self.export_image)

    def current_latent(self) -> Any:
        """The shown image's latent (a ``engine.families.stylegan2.latent.Latent``, W+ with every edit applied),
        or None."""
        model = self.model
        if model.session is None or model.shown is None:
            return None
        state = model.shown.state
        provenance = {**model.session.provenance(), "seed": state.seed, "psi": state.psi, "cutoff": state.cutoff,
                      "directions": model.directions_method if any(state.strengths) else None,
                      "strengths": list(state.strengths), "edit_layers": list(state.edit_layers),
                      "mix_seed": state.mix_seed, "mix_layers": list(state.mix_layers), "base": model.base_name}
        seed = state.seed if model.shown.base is None else None
        return api.new_latent(model.shown.ws.clone(), "w+", seed, state.psi, model.shown.noise, provenance)

    def save_latent(self, path: str | None = None) -> Path | None:
        latent = self.current_latent()
        if latent is None:
            return None
        return self._write(path, "Save latent", "latent", ".npz", "Latents (*.npz)",
                           lambda target: api.save_latent(target, latent))

    def load_latent(self, path: str | None = None) -> bool:
        session = self.model.session
        if session is None:
            return False
        if path is None:
            path, _ = QFileDialog.getOpenFileName(self, "Load latent", self.model.start_folder(), "Latents (*.npz)")
            if not path:
                return False
        try:
            latent = api.load_latent(path, session.num_ws, session.w_dim)
        except Exception as exc:  # CheckpointError: not a latent, or one of another generator
            QMessageBox.critical(self, "Cannot load the latent", error_message(exc))
            return False
        self.model.start_from(latent, f"latent {Path(path).name}")
        return True

    def export_image(self, path: str | None = None) -> Path | None:
        image = self.model.shown_image()
        if image is None:
            return None

        def write(target: str) -> Path:
            api.write_image(target, image)
            return Path(target)
        return self._write(path, "Export image", "image", ".png", "PNG images (*.png)", write)

    def _write(self, path: str | None, title: str, what: str, suffix: str, file_filter: str,
               write: Callable[[str], Path]) -> Path | None:
        """Write the ``what`` with ``write`` to ``path`` (or one asked for under ``title``): the file written, or
        None when cancelled or when it failed (a message, not a crash: a wrong suffix, a full disk)."""
        path = self._save_path(path, title, suffix, file_filter)
        if path is None:
            return None
        try:
            written = write(path)
        except Exception as exc:  # GanvasError and OSError: a message, not a crash
            QMessageBox.critical(self, f"Cannot save the {what}", error_message(exc))
            return None
        self.model.message.emit(f"Saved {written}")
        return written

    def _save_path(self, path: str | None, title: str, suffix: str, file_filter: str) -> str | None:
        """``path``, or one asked for (None when cancelled), given ``suffix`` when it has none. The dialog
        suggests ``seed<N><suffix>`` for the seed the controls named at the newest render."""
        if path is None:
            state = self.model.edit_state
            start = self.model.start_folder(f"seed{state.seed if state is not None else 0}{suffix}")
            path, _ = QFileDialog.getSaveFileName(self, title, start, file_filter)
            if not path:
                return None
        return path if Path(path).suffix else path + suffix
