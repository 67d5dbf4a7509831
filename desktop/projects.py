"""Projects in the main window: New / Open / Save / Save As, the modified marker, autosave and crash recovery.

:class:`ProjectController` is owned by the main window. It watches the canvas, the style options and the
shared :class:`~desktop.state.AppState` (the loaded model, the output, the palette); saving gathers them into an
:class:`engine.core.project.Project`, opening puts them back and asks the state for the project's model. The
project's file and its unsaved-changes flag live in the state, where the window shows them in its title. While
there are unsaved changes, a timer writes them every :data:`AUTOSAVE_MS` to the window's own recovery file
(``recovery-<id>.ganvas``, guarded by a lock file while the window lives, so several windows never share one);
a clean exit deletes it. A recovery file whose lock is free at start was left by a window that did not exit
cleanly, and the user is offered to restore it.

Other docks plug in through :attr:`ProjectController.latent_provider` (arrays saved as ``latent.npz``) and
:attr:`ProjectController.project_loaded` (fires with each opened, restored or new project).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QLockFile, QObject, QStandardPaths, QTimer, Signal
from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

from desktop.file_watch import FileWatch
from desktop.model_panel import ModelSource, bundled_checkpoints, checkpoint_label
from desktop.palette_dock import palette_name_of
from desktop.state import AppState, labels_required
from desktop.style_panel import StylePanel
from engine.api import PROJECT_SUFFIX, GanvasError, ModelReference, Project, load_project, save_project

AUTOSAVE_MS = 60_000
RECOVERY_GLOB = "recovery*" + PROJECT_SUFFIX  # per-window files, and the single ``recovery.ganvas`` of before
RECOVERY_OF = "recovery_of"  # settings key: the project file a recovery copy belongs to
FILE_FILTER = f"Ganvas projects (*{PROJECT_SUFFIX})"
MAX_RECENT_PROJECTS = 8
Button = QMessageBox.StandardButton


def default_recovery_dir() -> Path:
    """``<AppDataLocation>/recovery``: where autosaves live unless the window is given another folder."""
    return Path(QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)) / "recovery"


def reference_of(card: Any) -> ModelReference:
    """The project's model reference for a loaded model's card: bundled id, checkpoint path or family."""
    if not card.path:
        return ModelReference("untrained", card.family, _json_safe(dict(card.config or {})))
    path = Path(card.path)
    if any(path.resolve() == bundled.resolve() for bundled in bundled_checkpoints()):
        return ModelReference("bundled", path.stem)
    return ModelReference("checkpoint", str(path.resolve()))


def source_of(reference: ModelReference) -> ModelSource | None:
    """What to load for ``reference``; None when its checkpoint is not there."""
    if reference.kind == "untrained":
        return ModelSource(f"Untrained {reference.name} (random weights)", family=reference.name,
                           config=dict(reference.config))
    if reference.kind == "bundled":
        found = next((p for p in bundled_checkpoints() if p.stem == reference.name), None)
        return ModelSource(found.stem, str(found)) if found is not None else None
    return ModelSource(Path(reference.name).name, reference.name) if Path(reference.name).is_file() else None


def _json_safe(config: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in config.items()
            if isinstance(v, (str, int, float, bool, tuple, list)) or v is None}


class ProjectController(QObject):
    """The window's current project file, its unsaved-changes state and its autosave.

    Args:
        state: the shared state (model, output, palette, settings; the project file and its flag go there).
        canvas: the drawing (a ``desktop.canvas.CanvasWidget``).
        style_panel: the Style dock, whose options are saved with the project.
        parent: the widget its dialogs belong to (the window).
        recovery_dir: folder for the autosave file (default :func:`default_recovery_dir`).
        autosave_ms: autosave interval in milliseconds (autosaves happen only with unsaved changes).
    """

    project_loaded = Signal(object)  # engine.core.project.Project

    def __init__(self, state: AppState, canvas: Any, style_panel: StylePanel, parent: QWidget,
                 recovery_dir: str | Path | None = None, autosave_ms: int = AUTOSAVE_MS) -> None:
        super().__init__(parent)
        self.state, self.canvas, self.style_panel, self.parent_widget = state, canvas, style_panel, parent
        self.model: ModelReference | None = None
        self.palette: str | None = None
        self.latent_provider: Callable[[], dict[str, np.ndarray]] | None = None
        self.recovery_dir = Path(recovery_dir or default_recovery_dir())
        self.recovery_path = self.recovery_dir / f"recovery-{uuid.uuid4().hex[:12]}{PROJECT_SUFFIX}"
        self._recovery_lock = _hold_lock(self.recovery_path)
        self._orphan: tuple[Path, QLockFile] | None = None  # a recovery file left behind, and its lock
        self._quiet = 0  # >0 while the controller itself changes the canvas or options
        self._pending: Project | None = None  # opened, waiting for its model to load
        self._pending_modified = False  # whether the opened project counts as unsaved (a recovered one does)
        self._model_to_load: ModelSource | None = None  # waiting for the engine
        self.file_watch = FileWatch(self)  # the open project file, changed or deleted by someone else
        self.file_watch.changed.connect(self._on_file_changed)
        self.file_watch.deleted.connect(self._on_file_deleted)
        self.autosave_timer = QTimer(self)
        self.autosave_timer.setInterval(autosave_ms)
        self.autosave_timer.timeout.connect(self.autosave)
        self.autosave_timer.start()
        canvas.content_changed.connect(self._on_canvas_changed)
        style_panel.options_changed.connect(self._on_options_changed)
        state.session_changed.connect(self._on_session_changed)
        state.engine_ready.connect(self._on_engine_ready)
        self.update_title()
        self._orphan = find_orphaned_recovery(self.recovery_dir, self.recovery_path)
        if self._orphan is not None:
            QTimer.singleShot(0, self.offer_recovery)

    # --- state ------------------------------------------------------------------------------------
    @property
    def path(self) -> Path | None:
        """The project's file (None until saved); kept in the shared state."""
        return self.state.project_path

    @path.setter
    def path(self, path: Path | None) -> None:
        self.state.project_path = path

    @property
    def modified(self) -> bool:
        return self.state.modified

    @property
    def name(self) -> str:
        return self.path.stem if self.path is not None else "Untitled"

    def set_modified(self, modified: bool) -> None:
        self.state.set_modified(modified)
        self.update_title()

    def update_title(self) -> None:
        """``name[*] - Ganvas (model)``; Qt shows ``*`` in place of ``[*]`` while modified."""
        model = f" ({checkpoint_label(self.model.name)})" if self.model is not None else ""
        self.state.set_title(f"{self.name}[*] - Ganvas{model}")

    def _on_canvas_changed(self) -> None:
        if self._quiet or self.modified:
            return
        if self.path is None and _is_blank(self.canvas.to_numpy()):
            return  # a fresh page cleared or resized by a model change holds nothing worth saving
        self.set_modified(True)

    def _on_options_changed(self) -> None:
        if not self._quiet:
            self.set_modified(True)

    def _on_session_changed(self, session: Any) -> None:
        card = session.card
        reference, self.palette = reference_of(card), palette_name_of(card)
        changed = reference != self.model
        self.model = reference
        pending, self._pending = self._pending, None
        if pending is not None and pending.model is not None \
                and (pending.model.kind, pending.model.name) == (reference.kind, reference.name):
            # The model of an opened project: undo what fitting the canvas to the model did.
            canvas = self.canvas
            if canvas.mode != pending.canvas_mode or canvas.to_numpy().shape != pending.canvas.shape:
                with _Quiet(self):
                    canvas.set_mode(pending.canvas_mode)
                    canvas.set_from_numpy(pending.canvas)
                    self.state.set_draw_mode(pending.canvas_mode, locked=labels_required(card))
                self.set_modified(self._pending_modified)
        elif changed and self.path is not None:
            self.set_modified(True)
        self.update_title()

    # --- actions ----------------------------------------------------------------------------------
    def new_project(self) -> bool:
        """A blank canvas of the current size and mode, no file; the model stays loaded."""
        if not self.confirm_discard("starting a new project"):
            return False
        canvas = self.canvas
        with _Quiet(self):
            blank = np.empty_like(canvas.to_numpy())
            blank[:] = canvas.background_color
            canvas.set_from_numpy(blank)
            self.state.set_output(None)
        self.path = None
        self.file_watch.watch(None)
        self._pending = None
        self.set_modified(False)
        self.project_loaded.emit(self.current_project())
        return True

    def open_project(self) -> bool:
        if not self.confirm_discard("opening another project"):
            return False
        start = str(self.path.parent) if self.path is not None else str(Path.home())
        path, _ = QFileDialog.getOpenFileName(self.parent_widget, "Open project", start, FILE_FILTER)
        return bool(path) and self.open_path(path)

    def open_path(self, path: str | Path) -> bool:
        """Load ``path`` into the window (no questions asked); a bad file shows why and changes nothing."""
        try:
            project = load_project(path)
        except GanvasError as exc:
            QMessageBox.critical(self.parent_widget, "Cannot open project", str(exc))
            return False
        self.apply(project)
        self.path = Path(path)
        self.file_watch.watch(self.path)
        self.set_modified(False)
        self._pending_modified = False
        self._remember(self.path)
        self.state.notify(f"Opened {path}", 5000)
        return True

    def open_recent(self, path: str | Path) -> bool:
        """Open a project from the Recent projects menu (asking about unsaved changes first)."""
        return self.confirm_discard("opening another project") and self.open_path(path)

    def recent_projects(self) -> list[str]:
        """Project files opened or saved lately, newest first (kept in the window's QSettings)."""
        value = self.state.settings.value("recent/projects", [])
        return [str(v) for v in ([value] if isinstance(value, str) else value or [])]

    def _remember(self, path: Path) -> None:
        key = str(path.resolve())
        recent = [p for p in self.recent_projects() if p != key]
        self.state.settings.setValue("recent/projects", [key, *recent][:MAX_RECENT_PROJECTS])

    def save(self) -> bool:
        """Save to the current file, or ask for one; False when cancelled or failed."""
        return self.save_as() if self.path is None else self.save_to(self.path)

    def save_as(self) -> bool:
        start = str(self.path) if self.path is not None else self.state.start_folder(f"drawing{PROJECT_SUFFIX}")
        path, _ = QFileDialog.getSaveFileName(self.parent_widget, "Save project as", start, FILE_FILTER)
        if not path:
            return False
        return self.save_to(path if path.endswith(PROJECT_SUFFIX) else path + PROJECT_SUFFIX)

    def save_to(self, path: str | Path) -> bool:
        if not self._may_overwrite(Path(path)):
            return False
        try:
            save_project(path, self.current_project())
        except GanvasError as exc:
            QMessageBox.critical(self.parent_widget, "Cannot save project", str(exc))
            return False
        self.path = Path(path)
        self.file_watch.watch(self.path)
        self.set_modified(False)
        self._remember(self.path)
        self.state.notify(f"Saved {path}", 5000)
        return True

    def _may_overwrite(self, path: Path) -> bool:
        """Ask before a save replaces the open project's file that changed on disk since it was opened or saved."""
        if self.path is None or path.resolve() != self.path.resolve() or not self.file_watch.changed_since_watch():
            return True
        if not path.exists():
            return True  # deleted meanwhile: writing it again loses nothing
        answer = QMessageBox.question(
            self.parent_widget, "Project changed on disk",
            f"{path.name} was changed on disk after you opened or saved it (by another program or window).\n"
            "Overwrite it with this window's project?", Button.Save | Button.Cancel, Button.Cancel)
        return answer == Button.Save

    def _on_file_changed(self, path: str) -> None:
        self.state.notify(
            f"{Path(path).name} changed on disk; this window keeps its own version and asks before saving over it",
            15000)

    def _on_file_deleted(self, path: str) -> None:
        self.set_modified(True)  # nothing on disk holds this project now
        self.state.notify(f"{Path(path).name} was deleted from disk; Save writes it again", 15000)

    def confirm_discard(self, doing: str) -> bool:
        """With unsaved changes ask Save / Discard / Cancel; True when it is fine to go on."""
        if not self.modified:
            return True
        answer = QMessageBox.question(
            self.parent_widget, "Unsaved changes", f"Save the changes to {self.name} before {doing}?",
            Button.Save | Button.Discard | Button.Cancel, Button.Save)
        if answer == Button.Save:
            return self.save()
        return answer == Button.Discard

    # --- project <-> window -----------------------------------------------------------------------
    def current_project(self) -> Project:
        canvas, style = self.canvas, self.style_panel
        return Project(
            canvas=canvas.to_numpy(),
            model=self.model,
            canvas_mode=canvas.mode,
            palette=self.state.palette_name or self.palette,
            style={"direction": style.direction.currentData(), "seed": style.seed.value()},
            settings={"brush_size": canvas.brush_size, "tool": canvas.tool},
            output=self.state.output,
            latents=dict(self.latent_provider()) if self.latent_provider is not None else {},
            style_image=style.style_array,
        )

    def apply(self, project: Project) -> None:
        """Put ``project`` into the window and load its model (now, or once the engine is ready)."""
        state, canvas = self.state, self.canvas
        with _Quiet(self):
            if state.engine and project.palette:
                state.use_palette(project.palette)
            canvas.set_mode(project.canvas_mode)
            card = state.card
            state.set_draw_mode(project.canvas_mode, locked=card is not None and labels_required(card))
            canvas.set_from_numpy(project.canvas)
            self._apply_settings(project)
            state.set_output(project.output)
        self.palette = project.palette
        self._pending = None
        if project.model is not None and project.model != self.model:
            source = source_of(project.model)
            if source is None:
                QMessageBox.warning(self.parent_widget, "Model not found",
                                    f"The project's model ({project.model.kind} {project.model.name}) is not "
                                    "available; the drawing is open with the current model.")
            else:
                self._pending = project
                self._load(source)
        self.project_loaded.emit(project)

    def _apply_settings(self, project: Project) -> None:
        style, canvas = self.style_panel, self.canvas
        index = style.direction.findData(project.style.get("direction"))
        if index >= 0:
            style.direction.setCurrentIndex(index)
        seed = project.style.get("seed")
        if isinstance(seed, int):
            style.seed.setValue(seed)
        style.set_style_image(project.style_image, "the project's style image")
        size = project.settings.get("brush_size")
        if isinstance(size, int) and size > 0:
            canvas.brush_size = size
        tool = project.settings.get("tool")
        if isinstance(tool, str):
            try:
                canvas.set_tool(tool)
            except ValueError:
                pass

    def _load(self, source: ModelSource) -> None:
        if self.state.engine is None:
            self._model_to_load = source
        else:
            self.state.request_model(source)

    def _on_engine_ready(self, _api: Any) -> None:
        # Connected before the window's own autoload runs, so the project's model wins over the last one.
        source, self._model_to_load = self._model_to_load, None
        if source is not None:
            self.state.request_model(source)

    # --- autosave and recovery --------------------------------------------------------------------
    def autosave(self) -> bool:
        """Write the recovery file when there are unsaved changes; True when one was written."""
        if not self.modified:
            return False
        project = self.current_project()
        if self.path is not None:
            project.settings[RECOVERY_OF] = str(self.path)
        try:
            save_project(self.recovery_path, project)
        except GanvasError as exc:
            self.state.notify(f"Autosave failed: {exc}", 10000)
            return False
        self.state.notify("Autosaved", 2000)
        return True

    def offer_recovery(self) -> bool:
        """If a window that did not exit cleanly left a recovery file, ask to restore it; True when restored.

        Either way that file is deleted afterwards: restored work lives on in this window (and its own
        autosaves), declined work is gone.
        """
        if self._orphan is None:
            return False
        orphan, lock = self._orphan
        self._orphan = None
        try:
            if not orphan.is_file():
                return False
            stamp = time.strftime("%Y-%m-%d %H:%M", time.localtime(orphan.stat().st_mtime))
            answer = QMessageBox.question(
                self.parent_widget, "Recover unsaved work",
                f"Ganvas did not exit cleanly last time. Restore the drawing autosaved at {stamp}?",
                Button.Yes | Button.No, Button.Yes)
            if answer != Button.Yes:
                return False
            try:
                project = load_project(orphan)
            except GanvasError as exc:
                QMessageBox.warning(self.parent_widget, "Cannot recover", f"The autosave cannot be read:\n{exc}")
                return False
            self.apply(project)
            origin = project.settings.get(RECOVERY_OF)
            self.path = Path(origin) if isinstance(origin, str) and origin else None
            self.set_modified(True)  # recovered work is not in any saved file yet
            self._pending_modified = True
            return True
        finally:
            _remove(orphan)
            lock.unlock()

    def discard_recovery(self) -> None:
        _remove(self.recovery_path)

    def end_on_signal(self) -> None:
        """The app is told to end (SIGTERM): keep unsaved work in the recovery file for the next start and
        release the lock, so no stale lock is left and that start offers the work back."""
        self.autosave_timer.stop()
        if not self.autosave():
            self.discard_recovery()
        if self._recovery_lock is not None:
            self._recovery_lock.unlock()
            self._recovery_lock = None

    def shutdown(self) -> None:
        """A clean exit: stop autosaving, delete this window's recovery file and release its lock."""
        self.autosave_timer.stop()
        self.discard_recovery()
        if self._recovery_lock is not None:
            self._recovery_lock.unlock()


def _lock_path(recovery: Path) -> str:
    return str(recovery.with_suffix(".lock"))


def _hold_lock(recovery: Path) -> QLockFile | None:
    """Lock ``recovery`` for this window (None when the folder cannot be written: autosave will say so)."""
    try:
        recovery.parent.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    lock = QLockFile(_lock_path(recovery))
    lock.setStaleLockTime(0)  # stale only when its process is gone, however old
    return lock if lock.tryLock(0) else None


def find_orphaned_recovery(folder: Path, own: Path) -> tuple[Path, QLockFile] | None:
    """The newest recovery file in ``folder`` whose window is gone (its lock could be taken), locked by us."""
    try:
        candidates = sorted((p for p in folder.glob(RECOVERY_GLOB) if p != own and p.is_file()),
                            key=lambda p: p.stat().st_mtime, reverse=True)
    except OSError:
        return None
    for path in candidates:
        lock = QLockFile(_lock_path(path))
        lock.setStaleLockTime(0)
        if lock.tryLock(0):
            return path, lock
    return None


def _remove(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError:
        pass


class _Quiet:
    """Changes made inside ``with _Quiet(controller)`` do not count as the user's edits."""

    def __init__(self, controller: ProjectController) -> None:
        self.controller = controller

    def __enter__(self) -> None:
        self.controller._quiet += 1

    def __exit__(self, *_: object) -> None:
        self.controller._quiet -= 1


def _is_blank(array: np.ndarray) -> bool:
    return bool((array == array[:1, :1]).all())
