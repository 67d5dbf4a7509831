"""Resume a run with changes: a new total step count and new values for the family's retunable fields.

The fields are the family's ``retunable`` ones (loss weights and the like, never shapes), shown with the values
of the run's latest checkpoint. Each edit is checked with :meth:`engine.train.training.RunSpec.retune`, so a refused
change (switching a regulariser on or off, a value the config rejects) is explained before a process starts.
"""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from desktop.training.config_form import changed_signal, editor_value, make_editor, plain_label
from engine.api import GanvasError, field_help


class RetuneDialog(QDialog):
    """Edit the total steps and the retunable fields of ``run_dir``; read :meth:`steps` and :meth:`changes`."""

    def __init__(self, run_dir: str | Path, parent: QWidget | None = None) -> None:
        from engine.api import describe_retune, family_configs, read_checkpoint_metadata, run_spec_from_json

        super().__init__(parent)
        self.setWindowTitle("Resume with changes")
        self.setMinimumWidth(460)
        self.meta = read_checkpoint_metadata(Path(run_dir) / "latest.safetensors")
        self.spec = run_spec_from_json(self.meta)
        self.step = int(self.meta["step"])
        family = family_configs(self.spec.family)
        docs, hints = field_help(family.config_cls), typing.get_type_hints(family.config_cls)
        self.steps_box = QSpinBox()
        self.steps_box.setRange(self.step + 1, 10**9)
        self.steps_box.setValue(max(self.spec.train.steps, self.step + 1))
        self.steps_box.setToolTip("total steps of the run; raise it to train longer")
        self.editors: dict[str, tuple[QWidget, Any]] = {}
        form = QFormLayout()
        form.addRow("Total steps", self.steps_box)
        for name in family.retunable:
            widget = make_editor(hints[name], getattr(self.spec.model, name), docs.get(name, ""))
            self.editors[name] = (widget, hints[name])
            changed_signal(widget).connect(self._validate)
            form.addRow(plain_label(name, widget.toolTip()), widget)
        header = QLabel(f"{self.spec.family} run at step {self.step}. "
                        + ("These settings may change when it resumes; shapes and the optimiser stay."
                           if family.retunable else "This family has no settings that may change on resume."))
        header.setWordWrap(True)
        history = "\n".join(f"step {entry['step']}: {describe_retune(entry)}" for entry in self.spec.retunes)
        self.history = QLabel("Earlier changes:\n" + history if history else "")
        self.error_label = QLabel()
        self.error_label.setStyleSheet("color: #b00020")
        self.error_label.setWordWrap(True)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Resume")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(header)
        layout.addLayout(form)
        layout.addWidget(self.history)
        layout.addWidget(self.error_label)
        layout.addWidget(self.buttons)
        self._validate()

    def steps(self) -> int | None:
        """The new total step count, or None when unchanged."""
        return self.steps_box.value() if self.steps_box.value() != self.spec.train.steps else None

    def changes(self) -> dict[str, Any]:
        """The retunable fields whose value the user changed (raises ValueError for unreadable text)."""
        values = {name: editor_value(widget, tp) for name, (widget, tp) in self.editors.items()}
        return {name: value for name, value in values.items() if value != getattr(self.spec.model, name)}

    def _validate(self, *_: Any) -> bool:
        from engine.api import run_spec_from_json

        try:
            run_spec_from_json(self.meta).retune(self.step, self.changes())
            problem = ""
        except (GanvasError, ValueError, TypeError) as exc:
            problem = str(exc)
        self.error_label.setText(problem)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(not problem)
        return not problem
