"""Menus and the tool bar of the main window, built from small tables so the window class stays short."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QLabel, QMenu, QSpinBox, QToolBar

from desktop.canvas_tools import Tool
from desktop.model_panel import ModelSource

if TYPE_CHECKING:
    from desktop.canvas import CanvasWidget
    from desktop.main_window import MainWindow

# Tool keys are window-wide shortcuts; Help > Keyboard shortcuts lists them with the rest.
TOOLS = [(Tool.BRUSH, "Brush", "B"), (Tool.ERASER, "Eraser", "E"), (Tool.FILL, "Fill", "G"),
         (Tool.LINE, "Line", "L"), (Tool.RECTANGLE, "Rectangle", "R"), (Tool.ELLIPSE, "Ellipse", "O"),
         (Tool.EYEDROPPER, "Eyedropper", "I")]


def _action(window: MainWindow, text: str, slot, shortcut: str | QKeySequence.StandardKey | None = None,
            tip: str = "") -> QAction:
    action = QAction(text, window)
    if shortcut is not None:
        action.setShortcut(QKeySequence(shortcut))
    if tip:
        action.setToolTip(tip)
        action.setStatusTip(tip)
    action.triggered.connect(slot)
    return action


def build_menus(window: MainWindow) -> tuple[dict[str, QAction], dict[str, QMenu]]:
    """File, Edit, View and Model menus; returns the named actions and the menus."""
    canvas, output = window.canvas, window.output_panel
    projects, keys = window.projects, QKeySequence.StandardKey
    actions = {
        "new_project": _action(window, "New", projects.new_project, keys.New, "A blank drawing, no file"),
        "open_project": _action(window, "Open...", projects.open_project, keys.Open, "Open a .ganvas project"),
        "save_project": _action(window, "Save", projects.save, keys.Save, "Save the project"),
        "save_project_as": _action(window, "Save As...", projects.save_as, keys.SaveAs,
                                   "Save the project to a new file"),
        "open_image": _action(window, "Open image into canvas...", window.open_image, "Ctrl+Shift+O"),
        "save_drawing": _action(window, "Save drawing...", window.save_drawing, "Ctrl+Alt+S"),
        "save_output": _action(window, "Export output PNG...", window.save_output, "Ctrl+E"),
        "open_checkpoint": _action(window, "Open checkpoint...", window.model_panel.open_checkpoint, "Ctrl+M"),
        "preferences": _action(window, "Preferences...", window.open_preferences,
                               QKeySequence.StandardKey.Preferences),
        "quit": _action(window, "Quit", window.close, QKeySequence.StandardKey.Quit),
        "copy_output": _action(window, "Copy output", window.copy_output, "Ctrl+Shift+C"),
        "use_output": _action(window, "Use output as input", window.use_output_as_input, "Ctrl+Shift+U",
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
    menus["recent_projects"].aboutToShow.connect(lambda: _fill_recent_projects(window, menus["recent_projects"]))
    menus["recent"] = menus["file"].addMenu("Recent models")
    menus["recent"].aboutToShow.connect(lambda: _fill_recent(window, menus["recent"]))
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
    menus["canvas_size"].aboutToShow.connect(lambda: _fill_canvas_sizes(window, menus["canvas_size"]))
    menus["view"].addSeparator()
    for dock in (window.model_dock, window.style_dock, window.palette_dock):
        menus["view"].addAction(dock.toggleViewAction())
    # Canvas shortcuts work while the canvas has focus; the window-wide ones live in the menus.
    for action in (canvas.undo_action, canvas.redo_action):
        action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
    return actions, menus


def _fill_recent(window: MainWindow, menu: QMenu) -> None:
    menu.clear()
    for key in window.recent_models():
        source = ModelSource.from_key(key)
        if source is not None:
            action = menu.addAction(source.label if source.untrained else source.path)
            action.triggered.connect(lambda _=False, s=source: window.load_model(s))
    if menu.isEmpty():
        menu.addAction("(none yet)").setEnabled(False)


def _fill_recent_projects(window: MainWindow, menu: QMenu) -> None:
    menu.clear()
    for path in window.projects.recent_projects():
        action = menu.addAction(path)
        action.triggered.connect(lambda _=False, p=path: window.projects.open_recent(p))
    if menu.isEmpty():
        menu.addAction("(none yet)").setEnabled(False)


def _fill_canvas_sizes(window: MainWindow, menu: QMenu) -> None:
    menu.clear()
    for label, (width, height) in window.canvas_size_presets():
        action = menu.addAction(label)
        action.triggered.connect(lambda _=False, w=width, h=height: window.canvas.resize_canvas(w, h))


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


def build_tool_bar(window: MainWindow) -> QToolBar:
    """The drawing tools, brush size, zoom fit, undo/redo and clear, on the left edge."""
    canvas = window.canvas
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
    window.actions_by_name["fill_shapes"] = filled
    bar.addSeparator()
    bar.addWidget(QLabel(" Size"))
    size = QSpinBox(bar)
    size.setRange(1, 256)
    size.setValue(canvas.brush_size)
    size.setToolTip("Brush size in pixels ([ and ])")
    size.valueChanged.connect(lambda value: setattr(canvas, "brush_size", value))
    canvas.brush_size_changed.connect(size.setValue)
    bar.addWidget(size)
    window.brush_size_box = size
    bar.addSeparator()
    bar.addAction(window.actions_by_name["zoom_fit"])
    for action in _fixed_text_history(bar, canvas):
        bar.addAction(action)
    bar.addAction(window.actions_by_name["clear"])
    window.addToolBar(Qt.ToolBarArea.LeftToolBarArea, bar)
    return bar
