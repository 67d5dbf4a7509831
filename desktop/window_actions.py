"""Menus and the tool bar of the main window, built from small tables so the window class stays short.

They take the pieces they act on (the canvas, the output panel, the project controller, the window's own
commands) and the shared :class:`~desktop.state.AppState`, which they observe: the actions that need the engine
are enabled once it is ready; Recent models and Canvas size read the state when they open.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QDockWidget, QLabel, QMainWindow, QMenu, QSpinBox, QToolBar

from desktop.canvas_tools import Tool
from desktop.model_panel import UNTRAINED_SIZE, ModelSource
from engine.api import Engine, Translator

if TYPE_CHECKING:
    from desktop.canvas import CanvasWidget
    from desktop.output_view import OutputPanel
    from desktop.projects import ProjectController
    from desktop.state import AppState

# Tool keys are window-wide shortcuts; Help > Keyboard shortcuts lists them with the rest.
TOOLS = [(Tool.BRUSH, "Brush", "B"), (Tool.ERASER, "Eraser", "E"), (Tool.FILL, "Fill", "G"),
         (Tool.LINE, "Line", "L"), (Tool.RECTANGLE, "Rectangle", "R"), (Tool.ELLIPSE, "Ellipse", "O"),
         (Tool.EYEDROPPER, "Eyedropper", "I")]
# Actions (and the Recent models menu) that need the engine: disabled until it is imported.
NEEDS_ENGINE = ("open_image", "save_drawing", "open_checkpoint", "preferences")


def _action(window: QMainWindow, text: str, slot: Callable[..., Any],
            shortcut: str | QKeySequence.StandardKey | None = None, tip: str = "") -> QAction:
    action = QAction(text, window)
    if shortcut is not None:
        action.setShortcut(QKeySequence(shortcut))
    if tip:
        action.setToolTip(tip)
        action.setStatusTip(tip)
    action.triggered.connect(slot)
    return action


def build_menus(window: QMainWindow, state: AppState, canvas: CanvasWidget, output: OutputPanel,
                projects: ProjectController, commands: dict[str, Callable[[], Any]],
                docks: list[QDockWidget]) -> tuple[dict[str, QAction], dict[str, QMenu]]:
    """File, Edit and View menus in ``window``'s menu bar; returns the named actions and the menus.

    ``commands`` holds the window's own commands by action name (``open_image``, ``save_drawing``,
    ``save_output``, ``open_checkpoint``, ``preferences``, ``copy_output``, ``use_output``); ``docks`` are
    listed in the View menu.
    """
    keys = QKeySequence.StandardKey
    actions = {
        "new_project": _action(window, "New", projects.new_project, keys.New, "A blank drawing, no file"),
        "open_project": _action(window, "Open...", projects.open_project, keys.Open, "Open a .ganvas project"),
        "save_project": _action(window, "Save", projects.save, keys.Save, "Save the project"),
        "save_project_as": _action(window, "Save As...", projects.save_as, keys.SaveAs,
                                   "Save the project to a new file"),
        "open_image": _action(window, "Open image into canvas...", commands["open_image"], "Ctrl+Shift+O"),
        "save_drawing": _action(window, "Save drawing...", commands["save_drawing"], "Ctrl+Alt+S"),
        "save_output": _action(window, "Export output PNG...", commands["save_output"], "Ctrl+E"),
        "open_checkpoint": _action(window, "Open checkpoint...", commands["open_checkpoint"], "Ctrl+M"),
        "preferences": _action(window, "Preferences...", commands["preferences"],
                               QKeySequence.StandardKey.Preferences),
        "quit": _action(window, "Quit", window.close, QKeySequence.StandardKey.Quit),
        "copy_output": _action(window, "Copy output", commands["copy_output"], "Ctrl+Shift+C"),
        "use_output": _action(window, "Use output as input", commands["use_output"], "Ctrl+Shift+U",
                              "Load the output into the canvas (undoable)"),
        "clear": _action(window, "Clear", canvas.clear, None, "Clear the canvas (undoable)"),
        "zoom_fit": _action(window, "Zoom to fit", canvas.fit_to_view, "Ctrl+0", "Fit the drawing in the view"),
        "zoom_in": _action(window, "Zoom in", canvas.zoom_in, keys.ZoomIn, "Zoom in (Ctrl++)"),
        "zoom_out": _action(window, "Zoom out", canvas.zoom_out, keys.ZoomOut, "Zoom out (Ctrl+-)"),
        "zoom_actual": _action(window, "Actual size (100 %)", canvas.zoom_actual, "Ctrl+1",
                               "One drawing pixel per screen pixel"),
        "compare": _action(window, "Compare drawing and output", output.compare_box.toggle, "Ctrl+K"),
    }
    output.compare_available_changed.connect(actions["compare"].setEnabled)
    menus: dict[str, QMenu] = {}
    bar = window.menuBar()
    menus["file"] = bar.addMenu("&File")
    for name in ("new_project", "open_project", "save_project", "save_project_as", None, "open_image",
                 "save_drawing", "save_output", None, "open_checkpoint"):
        menus["file"].addSeparator() if name is None else menus["file"].addAction(actions[name])
    menus["recent_projects"] = menus["file"].addMenu("Recent projects")
    menus["recent_projects"].aboutToShow.connect(lambda: _fill_recent_projects(projects, menus["recent_projects"]))
    menus["recent"] = menus["file"].addMenu("Recent models")
    menus["recent"].aboutToShow.connect(lambda: _fill_recent(state, menus["recent"]))
    menus["file"].addSeparator()
    menus["file"].addAction(actions["preferences"])
    menus["file"].addAction(actions["quit"])
    menus["edit"] = bar.addMenu("&Edit")
    for action in (canvas.undo_action, canvas.redo_action, actions["clear"]):
        menus["edit"].addAction(action)
    menus["edit"].addSeparator()
    menus["edit"].addAction(actions["copy_output"])
    menus["edit"].addAction(actions["use_output"])
    menus["view"] = bar.addMenu("&View")
    for name in ("zoom_in", "zoom_out", "zoom_actual", "zoom_fit"):
        menus["view"].addAction(actions[name])
    actions["zoom_in"].setShortcuts([QKeySequence(keys.ZoomIn), QKeySequence("Ctrl+=")])
    menus["view"].addAction(actions["compare"])
    menus["canvas_size"] = menus["view"].addMenu("Canvas size")
    menus["canvas_size"].aboutToShow.connect(lambda: _fill_canvas_sizes(state, canvas, menus["canvas_size"]))
    menus["view"].addSeparator()
    for dock in docks:
        menus["view"].addAction(dock.toggleViewAction())
    # Canvas shortcuts work while the canvas has focus; the window-wide ones live in the menus.
    for action in (canvas.undo_action, canvas.redo_action):
        action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
    _enable_engine_actions(actions, menus["recent"], state.engine is not None)
    state.engine_ready.connect(lambda _api: _enable_engine_actions(actions, menus["recent"], True))
    return actions, menus


def _enable_engine_actions(actions: dict[str, QAction], recent: QMenu, enabled: bool) -> None:
    for name in NEEDS_ENGINE:
        actions[name].setEnabled(enabled)
    recent.setEnabled(enabled)


def canvas_size_presets(session: Any, engine: Engine | None) -> list[tuple[str, tuple[int, int]]]:
    """Canvas sizes (label, (width, height)) the loaded model can take: its native size, and for fully
    convolutional models (CycleGAN) larger and non-square ones too."""
    card = getattr(session, "card", None)
    height, width = card.size if card is not None else UNTRAINED_SIZE
    presets = [(f"Model's native size ({width} x {height})", (width, height))]
    info = engine.family(card.family) if engine is not None and card is not None else None
    if isinstance(session, Translator) and info is not None and info.keeps_input_size:
        for w, h in ((512, 512), (768, 512), (512, 768), (1024, 1024)):
            if (w, h) != (width, height):
                shape = "square" if w == h else ("landscape" if w > h else "portrait")
                presets.append((f"{w} x {h} ({shape})", (w, h)))
    return presets


def _fill_recent(state: AppState, menu: QMenu) -> None:
    menu.clear()
    for key in state.recent_models():
        source = ModelSource.from_key(key)
        if source is not None:
            action = menu.addAction(source.label if source.untrained else source.path)
            action.triggered.connect(lambda _=False, s=source: state.request_model(s))
    if menu.isEmpty():
        menu.addAction("(none yet)").setEnabled(False)


def _fill_recent_projects(projects: ProjectController, menu: QMenu) -> None:
    menu.clear()
    for path in projects.recent_projects():
        action = menu.addAction(path)
        action.triggered.connect(lambda _=False, p=path: projects.open_recent(p))
    if menu.isEmpty():
        menu.addAction("(none yet)").setEnabled(False)


def _fill_canvas_sizes(state: AppState, canvas: CanvasWidget, menu: QMenu) -> None:
    menu.clear()
    for label, (width, height) in canvas_size_presets(state.session, state.engine):
        action = menu.addAction(label)
        action.triggered.connect(lambda _=False, w=width, h=height: canvas.resize_canvas(w, h))


def _fixed_text_history(bar: QToolBar, canvas: CanvasWidget) -> tuple[QAction, QAction]:
    """Undo and Redo buttons whose text never changes (the action's name goes to the tooltip), so the tool
    bar keeps its width and the canvas never moves under the pen."""
    stack = canvas.document.undo_stack
    buttons = []
    for text, slot, can_signal, can, text_signal in (
            ("Undo", canvas.undo, stack.canUndoChanged, stack.canUndo, stack.undoTextChanged),
            ("Redo", canvas.redo, stack.canRedoChanged, stack.canRedo, stack.redoTextChanged)):
        action = QAction(text, bar)
        action.triggered.connect(slot)
        action.setEnabled(can())
        can_signal.connect(action.setEnabled)
        text_signal.connect(lambda name, a=action, t=text: a.setToolTip(f"{t} {name}".strip()))
        buttons.append(action)
    return buttons[0], buttons[1]


def build_tool_bar(window: QMainWindow, canvas: CanvasWidget, actions: dict[str, QAction]) -> QToolBar:
    """The drawing tools, brush size, zoom fit, undo/redo and clear, on ``window``'s left edge (``actions`` are
    the menus' named actions; the Filled toggle joins them as ``fill_shapes``)."""
    bar = QToolBar("Tools", window)
    bar.setObjectName("tools_toolbar")
    bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
    group = QActionGroup(bar)
    group.setExclusive(True)
    tool_actions: dict[str, QAction] = {}
    for tool, text, key in TOOLS:
        action = QAction(text, bar)
        action.setCheckable(True)
        action.setToolTip(f"{text} ({key})")
        action.setData(tool.value)
        action.setShortcut(QKeySequence(key))  # window-wide: works while a panel (e.g. Draw as) has the focus
        action.triggered.connect(lambda _=False, t=tool.value: canvas.set_tool(t))
        group.addAction(action)
        bar.addAction(action)
        tool_actions[tool.value] = action
    tool_actions[canvas.tool].setChecked(True)
    canvas.tool_changed.connect(lambda name: tool_actions[name].setChecked(True))
    filled = QAction("Filled", bar)
    filled.setCheckable(True)
    filled.setChecked(canvas.fill_shapes)
    filled.setShortcut(QKeySequence("F"))
    filled.setToolTip("Rectangles and ellipses are filled (F); on by default for label maps")
    filled.toggled.connect(lambda on: setattr(canvas, "fill_shapes", on))
    canvas.fill_shapes_changed.connect(filled.setChecked)
    bar.addAction(filled)
    actions["fill_shapes"] = filled
    bar.addSeparator()
    bar.addWidget(QLabel(" Size"))
    size = QSpinBox(bar)
    size.setRange(1, 256)
    size.setValue(canvas.brush_size)
    size.setToolTip("Brush size in pixels ([ and ])")
    size.valueChanged.connect(lambda value: setattr(canvas, "brush_size", value))
    canvas.brush_size_changed.connect(size.setValue)
    bar.addWidget(size)
    bar.addSeparator()
    bar.addAction(actions["zoom_fit"])
    for action in _fixed_text_history(bar, canvas):
        bar.addAction(action)
    bar.addAction(actions["clear"])
    window.addToolBar(Qt.ToolBarArea.LeftToolBarArea, bar)
    return bar
