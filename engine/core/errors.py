"""One exception hierarchy for everything a user can get wrong.

Every error carries the offending path or value so the CLI can print one line and the GUI one dialog.
The CLI maps each class to an exit code (see :data:`EXIT_CODES`).
"""

from __future__ import annotations

from pathlib import Path


class GanvasError(Exception):
    """Base class: a problem the user can fix (bad file, bad option), never a bug."""

    exit_code = 1

    def __init__(self, message: str, *, path: str | Path | None = None, value: object = None) -> None:
        self.path = Path(path) if path is not None else None
        self.value = value
        prefix = f"{self.path}: " if self.path is not None else ""
        super().__init__(prefix + message)


class ConfigError(GanvasError):
    """An option or config field has an invalid value."""

    exit_code = 2


class RegistryError(ConfigError):
    """An unknown or duplicate model family name."""


class DeviceError(ConfigError):
    """A requested device is unknown or unavailable."""


class BackendError(GanvasError):
    """An inference backend cannot run a model (not installed, an op or a shape it refuses); sessions fall back
    to torch."""

    exit_code = 2


class ImageError(GanvasError):
    """An image file cannot be read, is corrupt, truncated, empty or too large."""

    exit_code = 3


class DatasetError(GanvasError):
    """A dataset folder has the wrong layout, unpaired files or too few images."""

    exit_code = 4


class LabelError(DatasetError):
    """A label map holds colours or ids that are not in the palette."""


class CheckpointError(GanvasError):
    """A checkpoint is missing, truncated, foreign or from an unsupported format version."""

    exit_code = 5


class TrainingError(GanvasError):
    """Training cannot go on (NaN/Inf loss, out of memory); the last good checkpoint is kept."""

    exit_code = 6


class StorageError(GanvasError):
    """Writing a file failed (disk full, permission denied); nothing earlier was overwritten."""

    exit_code = 7


class ProjectError(GanvasError):
    """A `.ganvas` project file is malformed or unsafe."""

    exit_code = 8
