"""The Ganvas main window: tools on the left, the canvas and its live output side by side, docks around.

Public names other GUI parts plug into:

* :attr:`MainWindow.state` (:class:`~desktop.state.AppState`) is what the window's parts share: the engine,
  the loaded model, the draw mode and palette, the project file and its flag, the output. Its
  ``engine_ready`` fires with the :class:`~engine.api.Engine` once the engine is imported, its
  ``session_changed`` with each newly loaded session (also reachable as ``MainWindow.engine_ready`` and
  ``MainWindow.session_changed``).
* :meth:`MainWindow.add_dock` adds a dock (remembered in the layout, listed in the View menu).
* :meth:`MainWindow.load_model` loads a :class:`~desktop.model_panel.ModelSource` off the UI thread;
  :meth:`MainWindow.set_session` installs a session directly.
* :meth:`MainWindow.request_translation` re-runs the model on the canvas (e.g. after an option changed).
* :attr:`MainWindow.projects` (:class:`~desktop.projects.ProjectController`) owns the project file,
  the unsaved-changes marker and the autosave.
* :attr:`MainWindow.menus` maps ``file``/``edit``/``view``/``model`` to the menus, for more actions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent, QGuiApplication
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from desktop.canvas import CanvasWidget
from desktop.drawing_keeper import Drawing, adapt_drawing
from desktop.engine_loader import KNOWN_OPTIONS, EngineLoader
from desktop.file_watch import FileWatch
from desktop.files import IMAGE_FILTER, dropped_image
from desktop.help_menu import add_help_menu
from desktop.import_dialogs import ask_half, show_unknown_colours, unknown_colours_html
from desktop.inference_worker import InferenceResult, InferenceWorker
from desktop.latent.editor import LatentEditor
from desktop.latent.session import latent_card_lines, session_name
from desktop.model_panel import (
    UNTRAINED_SIZE,
    ModelPanel,
    ModelSource,
    checkpoint_label,
    sample_drawing,
    untrained_source,
)
from desktop.output_view import OutputPanel, qimage_from_array
from desktop.palette_dock import PalettePanel, palette_name_of
from desktop.preferences import Preferences, PreferencesDialog
from desktop.projects import ProjectController
from desktop.state import AppState, labels_required
from desktop.style_panel import StylePanel
from desktop.training.runs_list import runs_folder
from desktop.window_actions import build_menus, build_tool_bar, canvas_size_presets
from desktop.workers import Worker, error_message
from engine.api import Engine, GanvasError, LatentExplorer, ModelSession, Translator, classify_drawing


def label_half(rgb: Any) -> str:
    """``left`` or ``right``: the half of an A|B pair that reads as a label map (``""`` when neither does)."""
    width = rgb.shape[1] // 2
    kinds = [classify_drawing(part)[0] for part in (rgb[:, :width], rgb[:, width:])]
    return "left" if kinds == ["label", "photo"] else "right" if kinds == ["photo", "label"] else ""
DEFAULT_LABEL_PALETTE = "facades"
DEFAULT_BUNDLED_MODEL = "facades"  # the bundled model a first launch opens on


class MainWindow(QMainWindow):
    """Draw on the left, see the model's answer on the right.

    Args:
        settings: where layout, recent models and preferences live (default: QSettings "Ganvas").
        loader: imports the engine in the background (default: a new :class:`EngineLoader`).
        start_engine: start importing the engine now (tests pass False to stay before "engine ready").
        autoload: when the engine is ready, load the last model (or a bundled / untrained one).
        recovery_dir: folder of the autosave file (default: under the app data folder).
    """

    def __init__(self, settings: QSettings | None = None, loader: EngineLoader | None = None,
                 start_engine: bool = True, autoload: bool = True,
                 recovery_dir: str | Path | None = None) -> None:
        super().__init__()
        self.setWindowTitle("Ganvas")
        self.setAcceptDrops(True)  # image files dropped anywhere load into the canvas
        self.settings = settings or QSettings(QSettings.defaultFormat(), QSettings.Scope.UserScope,
                                              "Ganvas", "Ganvas")
        self.preferences = Preferences(self.settings)
        self.state = AppState(self.settings, self)
        self._autoload = autoload
        self._shown_id = 0
        self._loading: Worker | None = None
        self._next_load: ModelSource | None = None  # asked for while ``_loading`` runs; loaded after it
        self._import_after_load: Path | None = None  # an image opened while a model loads
        self.canvas = CanvasWidget(UNTRAINED_SIZE[1], UNTRAINED_SIZE[0], mode="edges")
        self.output_panel = OutputPanel()
        self.output_view = self.output_panel.view
        self.menus: dict[str, Any] = {}
        self.model_panel = ModelPanel()
        self.palette_panel = PalettePanel()
        self.style_panel = StylePanel()
        self.worker = InferenceWorker(parent=self)
        self.model_watch = FileWatch(self)  # the loaded model's file, deleted or replaced while in use
        self.model_watch.deleted.connect(self._on_model_file_deleted)
        self.model_watch.changed.connect(self._on_model_file_changed)
        self._build_central()
        self._build_docks()
        self._observe_state()
        self.projects = ProjectController(self.state, self.canvas, self.style_panel, self, recovery_dir)
        self.actions_by_name, self.menus = build_menus(
            self, self.state, self.canvas, self.output_panel, self.projects,
            {"open_image": self.open_image, "save_drawing": self.save_drawing, "save_output": self.save_output,
             "open_checkpoint": self.model_panel.open_checkpoint, "preferences": self.open_preferences,
             "copy_output": self.copy_output, "use_output": self.use_output_as_input},
            [self.model_dock, self.style_dock, self.palette_dock])
        self.tool_bar = build_tool_bar(self, self.canvas, self.actions_by_name)
        self.menus["train"] = self.menuBar().addMenu("&Train")
        self.menus["train"].addAction("Training...", self.open_training)
        self.menus["help"] = add_help_menu(self)
        self._build_status_bar()
        self._connect_canvas()
        self._connect_panels()
        self._connect_worker()
        self._restore_layout()
        self._hidden_docks: list[QDockWidget] = []  # put away while a latent model is loaded
        self._tool_bar_visible = True
        # StyleGAN2 models: latent sliders instead of a canvas
        self.latent_editor = LatentEditor(self.state, self.output_panel, self._place_latent_editor, self)
        self.projects.latent_provider = self.latent_editor.project_latents  # a latent model's image is a latent
        self.projects.project_loaded.connect(lambda project: self.latent_editor.restore_from_project(
            project, model_loading=project.model is not None and project.model != self.projects.model))
        # connected after the window's own view sync, so while it is active the editor's fitted view wins
        self.canvas.view_changed.connect(self.latent_editor.refit)
        self._set_engine_ready(False)
        self.loader = loader or EngineLoader(self.preferences.threads, self)
        self.loader.ready.connect(self.on_engine_ready)
        self.loader.failed.connect(self._on_engine_failed)
        if start_engine:
            self.loader.start()

    # --- shared state -----------------------------------------------------------------------------
    @property
    def engine(self) -> Engine | None:
        return self.state.engine

    @property
    def session(self) -> ModelSession | None:
        return self.state.session

    @property
    def palette_name(self) -> str | None:
        return self.state.palette_name

    @property
    def engine_ready(self) -> Any:
        return self.state.engine_ready

    @property
    def session_changed(self) -> Any:
        return self.state.session_changed

    def _observe_state(self) -> None:
        """Put what the window's parts change in the shared state on screen."""
        state = self.state
        state.message.connect(self._show_message)
        state.title_changed.connect(self.setWindowTitle)
        state.modified_changed.connect(self.setWindowModified)
        state.palette_changed.connect(self._show_palette)
        state.draw_mode_changed.connect(self.model_panel.set_draw_mode)
        state.output_changed.connect(self._show_output)
        state.frame_time_changed.connect(self._show_frame_time)
        state.model_requested.connect(self._on_model_requested)

    def _show_message(self, text: str, milliseconds: int) -> None:
        self.statusBar().showMessage(text, milliseconds)

    def _show_palette(self, palette: Any) -> None:
        self.canvas.set_palette(palette)
        self.palette_panel.set_palette(palette)

    def _show_output(self, image: np.ndarray | None) -> None:
        self.output_view.set_output(image)
        self.output_panel.set_actions_enabled(image is not None)

    def _show_frame_time(self, text: str) -> None:
        self.ms_label.setText(text)

    def _on_model_requested(self, source: ModelSource) -> None:
        self.load_model(source)

    # --- building ---------------------------------------------------------------------------------
    def _build_central(self) -> None:
        self.splitter = QSplitter(Qt.Orientation.Horizontal, self)
        self.splitter.setObjectName("canvas_output_splitter")
        self.splitter.addWidget(self._canvas_column())
        self.splitter.addWidget(self.output_panel)
        self.splitter.setChildrenCollapsible(False)
        self.splitter.setStretchFactor(0, 1)
        self.splitter.setStretchFactor(1, 1)
        self._split_evenly = True  # until a saved splitter state is restored
        self.setCentralWidget(self.splitter)
        self.output_view.set_message("Loading engine...")

    def _canvas_column(self) -> QWidget:
        """The canvas above an info bar as tall as the output's action bar, so both views have one size."""
        column = QWidget(self)
        self.canvas_info = QLabel(column)
        self.canvas_info.setContentsMargins(6, 0, 6, 0)
        self.canvas_info.setFixedHeight(self.output_panel.action_bar.maximumHeight())
        layout = QVBoxLayout(column)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.canvas, 1)
        layout.addWidget(self.canvas_info)
        self.canvas.mode_changed.connect(self._update_canvas_info)
        self.canvas.document.size_changed.connect(self._update_canvas_info)
        self._update_canvas_info()
        return column

    def _update_canvas_info(self, *_: Any) -> None:
        size = self.canvas.document.size()
        names = {"label": "label map", "edges": "edges", "sketch": "sketch", "photo": "photo"}
        self.canvas_info.setText(f"Drawing: {names.get(self.canvas.mode, self.canvas.mode)}, "
                                 f"{size.width()}x{size.height()} px")

    def _build_docks(self) -> None:
        self.model_dock = self.add_dock(self.model_panel, "Model", Qt.DockWidgetArea.RightDockWidgetArea)
        self.style_dock = self.add_dock(self.style_panel, "Style", Qt.DockWidgetArea.RightDockWidgetArea)
        self.palette_dock = self.add_dock(self.palette_panel, "Palette", Qt.DockWidgetArea.RightDockWidgetArea)
        self.resizeDocks([self.model_dock, self.style_dock, self.palette_dock], [320, 120, 200],
                         Qt.Orientation.Vertical)

    def add_dock(self, widget: QWidget, title: str, area: Qt.DockWidgetArea = Qt.DockWidgetArea.RightDockWidgetArea,
                 name: str | None = None) -> QDockWidget:
        """Dock ``widget`` under ``title``; its place is saved with the layout (by ``name``, default title)."""
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock_{name or title.lower().replace(' ', '_')}")
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        view_menu = self.menus.get("view")
        if view_menu is not None:
            view_menu.addAction(dock.toggleViewAction())
        return dock

    def _build_status_bar(self) -> None:
        self.device_label = QLabel("device: -")
        self.model_label = QLabel("no model")
        self.ms_label = QLabel("")
        for label in (self.model_label, self.device_label, self.ms_label):
            self.statusBar().addPermanentWidget(label)

    def _connect_canvas(self) -> None:
        self.canvas.stroke_progress.connect(self.request_preview)
        self.canvas.stroke_finished.connect(self.request_translation)
        self.canvas.content_changed.connect(self._on_canvas_changed)
        self.canvas.view_changed.connect(self._sync_output_view)
        self.canvas.color_picked.connect(self.palette_panel.set_current)
        self.canvas.color_changed.connect(self.palette_panel.set_current)
        self.canvas.mode_changed.connect(self.palette_panel.set_mode)
        self.palette_panel.set_palette(self.canvas.label_palette)
        self.palette_panel.set_mode(self.canvas.mode)
        self.output_view.set_input(self.canvas.document.image)

    def _connect_panels(self) -> None:
        self.model_panel.model_requested.connect(self.load_model)
        self.model_panel.draw_mode_changed.connect(self._set_canvas_mode)
        self.model_panel.set_models_folder(self.preferences.models_folder)
        self.model_panel.set_runs_folder(runs_folder(self.settings))
        self.palette_panel.color_chosen.connect(self._set_pen_color)
        self.style_panel.options_changed.connect(self.request_translation)
        self.style_panel.style_image_requested.connect(self.pick_style_image)
        self.output_panel.save_requested.connect(self.save_output)
        self.output_panel.copy_requested.connect(self.copy_output)
        self.output_panel.use_as_input_requested.connect(self.use_output_as_input)

    def _connect_worker(self) -> None:
        self.worker.result_ready.connect(self._on_result)
        self.worker.failed.connect(self._on_translation_failed)

    def _restore_layout(self) -> None:
        geometry = self.settings.value("window/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        else:
            self.resize(1500, 900)
        state = self.settings.value("window/state")
        if state is not None:
            self.restoreState(state)
        splitter = self.settings.value("window/splitter")
        if splitter is not None:
            self._split_evenly = not self.splitter.restoreState(splitter)

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        if self._split_evenly:  # first start: drawing and output get the same width
            self._split_evenly = False
            half = max(1, self.splitter.width() // 2)
            self.splitter.setSizes([half, half])

    # --- engine -----------------------------------------------------------------------------------
    def _set_engine_ready(self, ready: bool) -> None:
        self.model_panel.set_engine_ready(ready)
        self.style_panel.setEnabled(ready or self.session is not None)
        if not ready:
            self.statusBar().showMessage("Loading engine...")

    def on_engine_ready(self, api: Engine) -> None:
        """The engine is imported: enable model controls, list families, load a first model."""
        self.state.engine = api
        self._set_engine_ready(True)
        self.statusBar().showMessage("Engine ready", 3000)
        self.device_label.setText(f"device: {api.device_name(self.preferences.device)}")
        self.model_panel.set_families([(f.name, f.input_kind) for f in api.families])
        self.model_panel.set_bundled(list(api.bundled))
        damaged = [m.error for m in api.bundled if m.error]
        if damaged:
            self.statusBar().showMessage("Damaged bundled model: " + "; ".join(damaged), 15000)
        if self.session is None:
            self.output_view.set_message("Choose a model in the Model panel")
        self.state.set_engine(api)
        if self._autoload and self.session is None:
            self.load_model(self._first_model())

    def _on_engine_failed(self, message: str) -> None:
        self.statusBar().showMessage("Engine failed to load")
        self.output_view.set_message("The engine failed to load")
        QMessageBox.critical(self, "Ganvas engine", f"The engine could not be loaded:\n{message}")

    def _first_model(self) -> ModelSource:
        last = ModelSource.from_key(str(self.settings.value("model/last", "")))
        if last is not None and (last.untrained or Path(last.path).is_file()):
            return last
        bundled = [m for m in (self.engine.bundled if self.engine else ()) if not m.error]
        first = next((m for m in bundled if m.name == DEFAULT_BUNDLED_MODEL), bundled[0] if bundled else None)
        return ModelSource(first.title, str(first.path)) if first else untrained_source("pix2pix")

    # --- models -----------------------------------------------------------------------------------
    def load_model(self, source: ModelSource) -> None:
        """Load ``source`` in a background thread; a failure shows a message and keeps the current model.

        Latest request wins: asked while another model loads, ``source`` waits and the one loading is dropped
        when it arrives, so the model the user picked last is the one that ends up in use."""
        if self.engine is None:
            return
        self.model_panel.set_busy(f"Loading {source.label}...")
        self.statusBar().showMessage(f"Loading {source.label}...")
        if self._loading is not None:
            self._next_load = source
            return
        engine, device, backend = self.engine, self.preferences.device, self.preferences.backend
        def build() -> Any:  # a Translator or a LatentExplorer, as the model's family opens it
            if source.untrained:
                return engine.untrained_model(source.family, size=UNTRAINED_SIZE, device=device, **source.config)
            return engine.open_model(source.path, device, backend=backend)
        self._loading = Worker.call(build, "ganvas-load-model", self)
        self._loading.setProperty("source_key", source.key())
        self._loading.returned.connect(self._on_model_loaded)
        self._loading.errored.connect(self._on_model_failed)
        self._loading.start()

    def _start_next_load(self) -> bool:
        """Start the model asked for while another loaded, if any; True when one was started."""
        source, self._next_load = self._next_load, None
        if source is None:
            return False
        self.load_model(source)
        return True

    def _on_model_loaded(self, session: ModelSession) -> None:
        key = self._loading.property("source_key") if self._loading else ""
        self._loading = None
        if self._start_next_load():  # superseded while it loaded
            return
        self.model_panel.set_busy(None)
        self.statusBar().clearMessage()
        if getattr(session, "backend_note", ""):  # set when a compiled backend was asked for
            self.statusBar().showMessage(session.backend_note, 10000)  # which backend runs, or why not
        self.set_session(session)
        self.settings.setValue("model/last", key)
        self.state.remember_model(key)
        self.model_watch.watch(getattr(getattr(session, "card", None), "path", None) or None)
        self._import_waiting_image()

    def _import_waiting_image(self) -> None:
        """Open the image that arrived while the model loaded, now that the canvas draws what the model takes."""
        path, self._import_after_load = self._import_after_load, None
        if path is not None:
            self.import_image(path)

    def _on_model_file_deleted(self, path: str) -> None:
        self.statusBar().showMessage(f"The model file {Path(path).name} was deleted; the model stays loaded until "
                                     "you load another", 15000)

    def _on_model_file_changed(self, path: str) -> None:
        self.statusBar().showMessage(f"The model file {Path(path).name} changed on disk; load it again to use the "
                                     "new weights", 15000)

    def _on_model_failed(self, exc: BaseException) -> None:
        self._loading = None
        if self._start_next_load():  # superseded: the failure of a model nobody waits for is not news
            return
        self.model_panel.set_busy(None)
        self.statusBar().showMessage("The model could not be loaded", 5000)
        QMessageBox.critical(self, "Cannot load model", error_message(exc))
        self._import_waiting_image()

    def set_session(self, session: ModelSession | None) -> None:
        """Use ``session`` for live output; the canvas takes the model's input kind and size."""
        self.state.set_session(session)
        if isinstance(session, LatentExplorer):  # generated from latents: the latent editor takes over
            self.worker.set_session(None)
            self._shown_id = self.worker.last_request_id
            self._show_latent_editor(True)
            self.model_panel.show_card(latent_card_lines(session))
            self.model_panel.mode_combo.setEnabled(False)
            self.model_panel.mode_combo.setToolTip("StyleGAN2 models are not drawn for")
            self.style_panel.set_supported(())
            self._show_model_name(session_name(session), session)
            self.latent_editor.activate(session)
            self.state.announce_session()
            return
        if self.latent_editor.active:
            self.latent_editor.deactivate()
            self._show_latent_editor(False)
        card = session.card
        self.worker.set_session(session)
        self._shown_id = self.worker.last_request_id  # anything still running belongs to the old model
        self._configure_canvas(card)
        self.model_panel.show_card(card.lines())
        self.style_panel.set_supported(self._options_of(card))
        self.style_panel.setEnabled(True)
        self._show_model_name(card.title or (checkpoint_label(card.path) if card.path else
                                             f"untrained {card.family}"), session)
        self.state.set_output(None)
        self.output_view.set_message("Translating...")
        self.state.announce_session()
        self.request_translation()

    def _show_model_name(self, name: str, session: Any) -> None:
        self.model_label.setText(f"model: {name}")
        self.setWindowTitle(f"Ganvas - {name}")
        self.device_label.setText(f"device: {getattr(session, 'device', '-')}")

    def _place_latent_editor(self, panel: QWidget) -> QDockWidget:
        dock = self.add_dock(panel, "Latent editor", Qt.DockWidgetArea.RightDockWidgetArea, "latent_editor")
        self.restoreDockWidget(dock)  # its place in a saved layout (the editor is added after restoring)
        dock.hide()
        return dock

    def _show_latent_editor(self, shown: bool) -> None:
        """While a latent model is loaded the output fills the centre: the canvas column, the drawing tool bar
        and the Style and Palette docks are put away (and come back with the next image model)."""
        dock = self.latent_editor.dock
        if shown:
            if not self.latent_editor.active:
                self._hidden_docks = [d for d in (self.style_dock, self.palette_dock) if d.isVisible()]
                for hidden in self._hidden_docks:
                    hidden.hide()
                self.splitter.widget(0).hide()
                self._tool_bar_visible = self.tool_bar.isVisible()
                self.tool_bar.hide()  # drawing tools: nothing to draw on
            dock.show()
            dock.raise_()
            self._size_latent_dock(dock)
            return
        dock.hide()
        for hidden in self._hidden_docks:
            hidden.show()
        self._hidden_docks = []
        self.splitter.widget(0).show()
        sizes = self.splitter.sizes()
        if sizes and sizes[0] < 100:  # a layout saved while the canvas was away: split evenly again
            half = max(1, sum(sizes) // 2)
            self.splitter.setSizes([half, half])
        self.tool_bar.setVisible(self._tool_bar_visible)
        self._sync_output_view(self.canvas.zoom, self.canvas.offset)

    def _size_latent_dock(self, dock: QDockWidget) -> None:
        """Wide enough for the editor's rows, and most of the height beside the Model dock."""
        width = self.latent_editor.panel.minimum_content_width()
        if dock.width() < width:
            self.resizeDocks([dock], [width], Qt.Orientation.Horizontal)
        if not dock.isFloating() and self.dockWidgetArea(dock) == self.dockWidgetArea(self.model_dock):
            self.resizeDocks([self.model_dock, dock], [300, max(400, self.height() - 300)], Qt.Orientation.Vertical)

    def _options_of(self, card: Any) -> tuple[str, ...]:
        """The Style dock controls the loaded model takes (e.g. SPADE's style image and seed only with its
        encoder)."""
        if not isinstance(self.session, Translator):  # latent sessions: the editor is their UI
            return ()
        return tuple(o for o in self.session.options if o in KNOWN_OPTIONS)

    def _configure_canvas(self, card: Any) -> None:
        """Label models draw label maps in their palette; image models in the mode they were trained for
        (``card.draw_as``), else in the mode chosen in the panel. The drawing is kept where it fits (converted or
        after a question, scaled to the model's size) as one undo step."""
        before = self._drawing()
        name = palette_name_of(card)
        trained_for = getattr(card, "draw_as", "")
        labels = labels_required(card)
        if labels:
            self.state.use_palette(name or DEFAULT_LABEL_PALETTE)
            mode = "label"
        else:
            info = self.engine.family(card.family) if self.engine else None
            default = info.canvas_mode if info is not None else "edges"
            chosen = self.model_panel.draw_mode if self.model_panel.mode_combo.isEnabled() else default
            mode = default if default == "photo" else chosen  # photo models start on a photo canvas
            mode = trained_for or mode
        self.state.set_draw_mode(mode, locked=labels)
        self._set_canvas_mode(mode, keep=False)
        pixels = self._adapted(before)
        height, width = card.size
        if pixels.shape[:2] != (height, width):
            pixels = self.canvas.scaled_drawing(pixels, width, height)
        if pixels is not before.pixels:
            self.canvas.load_image(pixels, "Load model")
        if card.sample and self._canvas_is_blank():
            self.import_image(sample_drawing(card.sample))

    def _canvas_is_blank(self) -> bool:
        pixels = self.canvas.to_numpy()
        return bool((pixels == pixels[0, 0]).all())

    def _drawing(self) -> Drawing:
        canvas = self.canvas
        return Drawing(canvas.to_numpy(), canvas.mode, canvas.background_color, canvas.label_palette)

    def _adapted(self, before: Drawing) -> Any:
        """The drawing ``before`` made for the canvas as it is now (``before.pixels`` itself when unchanged)."""
        canvas = self.canvas
        pixels = adapt_drawing(before, canvas.mode, canvas.background_color, canvas.label_palette,
                               self.engine, self.ask_convert)
        return before.pixels if np.array_equal(pixels, before.pixels) else pixels

    def ask_convert(self, question: str) -> bool:
        """Convert the drawing (True) or start a blank page (False)?"""
        answer = QMessageBox.question(self, "Keep the drawing?", question,
                                      QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                                      QMessageBox.StandardButton.Yes)
        return answer == QMessageBox.StandardButton.Yes

    def _set_canvas_mode(self, mode: str, keep: bool = True) -> bool:
        """Switch the canvas's drawing mode, keeping the drawing where it fits (converted, or after a question)
        as one undo step; ``keep=False`` leaves the pixels to the caller.

        Label mode chosen by hand for a model that names no palette draws in the default label palette.
        """
        if self.canvas.mode == mode:
            return False
        before = self._drawing()
        card = getattr(self.session, "card", None)
        if mode == "label" and (card is None or palette_name_of(card) is None):
            self.state.use_palette(DEFAULT_LABEL_PALETTE)
        self.canvas.set_mode(mode)
        if keep:
            pixels = self._adapted(before)
            if pixels is not before.pixels:
                self.canvas.load_image(pixels, f"Draw as {mode}")
        return True

    def recent_models(self) -> list[str]:
        return self.state.recent_models()

    # --- live translation -------------------------------------------------------------------------
    def request_translation(self, preview: bool = False) -> None:
        """Translate the canvas as it is now (latest request wins; painting never waits)."""
        if self.session is not None:
            self.worker.submit(self.canvas.to_numpy(), self.style_panel.options(), preview=preview)

    def request_preview(self) -> None:
        """While a stroke is drawn: the model's fast coarse pass (the full pass follows on pen-up)."""
        self.request_translation(preview=True)

    def _on_canvas_changed(self) -> None:
        self.output_view.set_input(self.canvas.document.image)
        self.request_translation()

    def _on_result(self, result: InferenceResult) -> None:
        if result.session is not self.session or result.request_id <= self._shown_id:
            return  # a stale frame, or one of a replaced model
        self._shown_id = result.request_id
        self.state.set_output(result.image)
        self.state.show_frame_time(f"{result.elapsed_ms:.0f} ms/frame" + (" (preview)" if result.preview else ""))

    def _on_translation_failed(self, request_id: int, message: str) -> None:
        self.state.show_frame_time("error")
        self.statusBar().showMessage(f"Translation failed: {message}", 10000)

    def _sync_output_view(self, zoom: float, offset: Any) -> None:
        self.output_view.set_view(zoom, offset, self.canvas.document.size(), self.canvas.size())

    def _set_pen_color(self, rgb: tuple) -> None:
        try:
            self.canvas.set_color(rgb)
        except ValueError as exc:
            self.statusBar().showMessage(str(exc), 5000)

    # --- output actions ---------------------------------------------------------------------------
    EXPORT_FILTERS = {"PNG at the model's size (*.png)": 1, "PNG at 2x (*.png)": 2, "PNG at 4x (*.png)": 4}

    def start_folder(self, name: str = "") -> str:
        """Where file dialogs start: the project's folder once it is saved, else the home folder."""
        return self.state.start_folder(name)

    def save_output(self) -> None:
        """Export the output as PNG at 1x, 2x or 4x its size (enlarged along the drawing's edges for label maps
        and edges, bicubic otherwise)."""
        array = self.output_view.output_array()
        if array is None or self.engine is None:
            return
        start = self.start_folder(f"{self.projects.name.lower()}_output.png")
        last = str(self.settings.value("export/scale", "") or "")  # the size chosen last time is offered again
        path, chosen = QFileDialog.getSaveFileName(self, "Export output", start, ";;".join(self.EXPORT_FILTERS),
                                                   last if last in self.EXPORT_FILTERS else "")
        if not path:
            return
        if chosen in self.EXPORT_FILTERS:
            self.settings.setValue("export/scale", chosen)
        path = path if Path(path).suffix else path + ".png"
        guide = self.canvas.to_numpy() if self.canvas.mode in ("label", "edges") else None
        try:
            array = self.engine.upscale(array, guide, self.EXPORT_FILTERS.get(chosen, 1))
            self.engine.write_image(path, array)
        except GanvasError as exc:
            QMessageBox.critical(self, "Cannot save", str(exc))
            return
        self.settings.setValue("paths/last_save", path)
        self.statusBar().showMessage(f"Saved {path} ({array.shape[1]} x {array.shape[0]})", 5000)

    def copy_output(self) -> None:
        array = self.output_view.output_array()
        if array is not None:
            QGuiApplication.clipboard().setImage(qimage_from_array(array))
            self.statusBar().showMessage("Output copied", 3000)

    def use_output_as_input(self) -> None:
        """Load the output into the canvas as one undo step (label mode snaps it to the palette)."""
        array = self.output_view.output_array()
        if array is not None:
            self.canvas.load_image(array)

    # --- file actions -----------------------------------------------------------------------------
    def open_image(self) -> None:
        path = self._ask_image("Open image into the canvas")
        if path:
            self.import_image(path)

    def pick_style_image(self) -> None:
        """Choose a photo whose style the model follows (SPADE with its style encoder)."""
        path = self._ask_image("Style image")
        if path:
            self.set_style_image_file(path)

    def _ask_image(self, title: str) -> str:
        """An image file chosen in a dialog ('' when cancelled or while the engine loads)."""
        if self.engine is None:
            return ""
        return QFileDialog.getOpenFileName(self, title, self.start_folder(), IMAGE_FILTER)[0]

    def set_style_image_file(self, path: str | Path) -> bool:
        try:
            rgb = self.engine.read_image(path)
        except (GanvasError, ValueError) as exc:
            QMessageBox.critical(self, "Cannot open style image", str(exc))
            return False
        self.style_panel.set_style_image(rgb, Path(path).name)
        return True

    def import_image(self, path: str | Path) -> bool:
        """Load an image file into the canvas (one undo step), made into what the canvas draws: a colour map
        snapped to the palette (foreign colours reported; one half of an A|B pair on request), a photo turned
        into edges or a sketch, or kept."""
        if self.engine is None:
            self.statusBar().showMessage("The engine is still loading; try again in a moment.", 5000)
            return False
        if self._loading is not None:  # the model on its way decides what the canvas draws: wait for it
            self._import_after_load = Path(path)
            self.statusBar().showMessage(f"{Path(path).name} opens when the model has loaded", 5000)
            return True
        palette = self.canvas.label_palette
        try:
            rgb = self.engine.read_image(path)
            if self.canvas.mode == "label" and rgb.shape[1] == 2 * rgb.shape[0]:
                half = self.ask_half(Path(path).name, label_half(rgb))
                if half is None:
                    return False
                width = rgb.shape[1] // 2
                rgb = {"left": rgb[:, :width], "right": rgb[:, width:], "whole": rgb}[half]
            prepared = self.engine.prepare_canvas_image(
                rgb, self.canvas.mode, [tuple(c) for c in palette.colors], self._palette_name(),
                palette_names=list(palette.names))
            self.canvas.load_image(prepared.image)
        except (GanvasError, ValueError) as exc:
            QMessageBox.critical(self, "Cannot open image", str(exc))
            return False
        if prepared.note and self.canvas.mode == "label":
            show_unknown_colours(self, unknown_colours_html(Path(path).name, self._palette_name(), palette,
                                                            prepared.unknown, rgb.shape[0] * rgb.shape[1]))
        elif prepared.note:
            self.statusBar().showMessage(f"{Path(path).name}: {prepared.note}", 10000)
        return True

    def ask_half(self, file_name: str, suggested: str) -> str | None:
        return ask_half(self, file_name, suggested)

    def canvas_size_presets(self) -> list[tuple[str, tuple[int, int]]]:
        """Canvas sizes (label, (width, height)) the loaded model can take (see
        :func:`desktop.window_actions.canvas_size_presets`)."""
        return canvas_size_presets(self.session, self.engine)

    def _palette_name(self) -> str:
        name = palette_name_of(self.session.card) if self.session is not None else None
        return name or self.palette_name or "canvas"

    # --- drag and drop ----------------------------------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if dropped_image(event.mimeData()) is not None:
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        path = dropped_image(event.mimeData())
        if path is not None:
            event.acceptProposedAction()
            self.import_image(path)

    def save_drawing(self) -> None:
        if self.engine is None:
            return
        path, _ = QFileDialog.getSaveFileName(self, "Save drawing", self.start_folder("drawing.png"),
                                              "PNG images (*.png)")
        if path:
            try:
                self.engine.write_image(path if Path(path).suffix else path + ".png", self.canvas.to_numpy())
            except GanvasError as exc:
                QMessageBox.critical(self, "Cannot save", str(exc))

    def open_training(self) -> None:
        """Show the non-modal training window (created once; training runs in a child process)."""
        if getattr(self, "training_window", None) is None:
            from desktop.training.window import TrainingWindow

            self.training_window = TrainingWindow(self.settings, load_model=self.load_model, parent=self)
            self.training_window.runs_changed.connect(self._on_runs_changed)
        self.training_window.show()
        self.training_window.raise_()
        self.training_window.activateWindow()

    def _on_runs_changed(self) -> None:
        """A run saved, finished or was deleted, or the runs folder moved: list the runs' models afresh."""
        self.model_panel.set_runs_folder(runs_folder(self.settings))

    def open_preferences(self) -> None:
        dialog = PreferencesDialog(self.preferences, self)
        if dialog.exec():
            dialog.apply()
            self.model_panel.set_models_folder(self.preferences.models_folder)
            if self.engine is not None:
                self.device_label.setText(f"device: {self.engine.device_name(self.preferences.device)} "
                                          "(for the next model)")

    # --- shutdown ---------------------------------------------------------------------------------
    def closeEvent(self, event: QCloseEvent) -> None:
        if not self.projects.confirm_discard("closing"):
            event.ignore()
            return
        self.projects.shutdown()
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState())
        self.settings.setValue("window/splitter", self.splitter.saveState())
        self.settings.sync()
        self.worker.stop()
        self.latent_editor.panel.shutdown()
        super().closeEvent(event)

