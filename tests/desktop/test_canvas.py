"""The drawing canvas driven by real mouse, key, wheel and tablet events (pytest-qt, offscreen)."""

from __future__ import annotations

from collections import deque

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QInputDevice, QPointingDevice, QTabletEvent, QWheelEvent
from PySide6.QtWidgets import QApplication

from desktop.canvas import CanvasWidget, Palette
from desktop.canvas_tools import flood_fill_mask
from engine.core.errors import ConfigError

pytestmark = pytest.mark.gui

PALETTE = [("void", (0, 0, 0)), ("sky", (70, 130, 180)), ("tree", (107, 142, 35)),
           ("road", (128, 64, 128)), ("water", (0, 80, 160)), ("sand", (230, 200, 120))]
PALETTE_COLORS = {rgb for _, rgb in PALETTE}
LEFT = Qt.MouseButton.LeftButton


@pytest.fixture
def canvas(qtbot) -> CanvasWidget:
    widget = CanvasWidget(96, 80, mode="label")
    widget.set_palette(PALETTE, background=0)
    qtbot.addWidget(widget)
    widget.resize(320, 280)
    widget.show()
    qtbot.waitExposed(widget)
    widget.set_view(1.0, QPointF(0, 0))  # widget pixel == image pixel
    return widget


def drag(qtbot, widget: CanvasWidget, points: list[tuple[float, float]], button=LEFT,
         modifier=Qt.KeyboardModifier.NoModifier) -> None:
    """Press at the first point, move through the rest (8 px steps), release at the last."""
    path = [QPoint(round(x), round(y)) for x, y in points]
    qtbot.mousePress(widget, button, modifier, path[0])
    for a, b in zip(path[:-1], path[1:], strict=True):
        steps = max(1, round(max(abs(b.x() - a.x()), abs(b.y() - a.y())) / 8))
        for i in range(1, steps + 1):
            p = a + (b - a) * (i / steps)
            qtbot.mouseMove(widget, QPoint(round(p.x()), round(p.y())))
    qtbot.mouseRelease(widget, button, modifier, path[-1])


def colors(array: np.ndarray) -> set[tuple[int, int, int]]:
    return {tuple(int(c) for c in rgb) for rgb in np.unique(array.reshape(-1, 3), axis=0)}


def test_mouse_stroke_paints_along_its_path(qtbot, canvas):
    before = canvas.to_numpy()
    drag(qtbot, canvas, [(10, 10), (60, 10), (60, 50)])
    after = canvas.to_numpy()
    sky = canvas.color
    for x, y in [(10, 10), (35, 10), (60, 10), (60, 30), (60, 50)]:
        assert tuple(after[y, x]) == sky, (x, y)
    assert tuple(after[40, 20]) == tuple(before[40, 20])  # away from the path
    changed = np.argwhere((after != before).any(-1))
    radius = canvas.brush_size / 2 + 1
    assert all(min(abs(y - 10) if 10 - radius <= x <= 60 + radius else 99,
                   abs(x - 60) if 10 - radius <= y <= 50 + radius else 99) <= radius for y, x in changed)


def test_label_mode_keeps_every_pixel_a_palette_colour(qtbot, canvas):
    for rgb, size, points in [((70, 130, 180), 7, [(5, 5), (90, 31), (13, 77)]),
                              ((107, 142, 35), 4, [(80, 3), (7, 60), (93, 70)]),
                              ((230, 200, 120), 1, [(2, 40), (95, 44), (50, 2)])]:
        canvas.set_color(rgb)
        canvas.brush_size = size
        drag(qtbot, canvas, points)
    canvas.set_color((128, 64, 128))
    for tool, points in [("line", [(3, 71), (88, 12)]), ("ellipse", [(11, 9), (73, 58)]),
                         ("rectangle", [(20, 25), (67, 61)]), ("line", [(90, 5), (31, 77)])]:
        canvas.set_tool(tool)
        canvas.brush_size = 5
        drag(qtbot, canvas, points)
    canvas.fill_shapes = True
    canvas.set_color((0, 80, 160))
    canvas.set_tool("ellipse")
    drag(qtbot, canvas, [(40, 30), (71, 47)])
    canvas.set_view(3.0, QPointF(-7.4, -11.6))  # zoomed in, off the pixel grid
    canvas.set_tool("brush")
    canvas.brush_size = 3
    drag(qtbot, canvas, [(30, 30), (170, 100), (100, 200)])
    canvas.set_tool("fill")
    qtbot.mouseClick(canvas, LEFT, pos=QPoint(20, 200))
    canvas.set_view(0.7, QPointF(3.3, 1.9))
    canvas.set_tool("eraser")
    drag(qtbot, canvas, [(10, 10), (60, 40)])
    used = colors(canvas.to_numpy())
    assert used <= PALETTE_COLORS
    assert len(used) >= 5


def test_undo_restores_exact_pixels_and_redo_reapplies(qtbot, canvas):
    changes = []
    canvas.content_changed.connect(lambda: changes.append(1))
    drag(qtbot, canvas, [(10, 10), (50, 40)])
    first = canvas.to_numpy()
    canvas.set_color((107, 142, 35))
    drag(qtbot, canvas, [(40, 5), (12, 60)])
    second = canvas.to_numpy()
    assert not np.array_equal(first, second)
    qtbot.keyClick(canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    np.testing.assert_array_equal(canvas.to_numpy(), first)
    canvas.undo()
    assert colors(canvas.to_numpy()) == {(0, 0, 0)}
    qtbot.keyClick(canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    np.testing.assert_array_equal(canvas.to_numpy(), first)
    canvas.redo()
    np.testing.assert_array_equal(canvas.to_numpy(), second)
    assert len(changes) == 6  # two strokes, two undos, two redos
    assert canvas.document.undo_stack.count() == 2


def test_fill_bucket_fills_exactly_the_connected_region(qtbot, canvas):
    image = np.zeros((80, 96, 3), np.uint8)
    image[:, 40] = (70, 130, 180)  # a wall splits the black into two regions
    image[10:20, 10:20] = (107, 142, 35)  # an island inside the left region
    image[30, 39] = (70, 130, 180)
    image[31, 38] = (70, 130, 180)
    image[30, 38] = (0, 0, 0)  # only diagonally connected to ... itself via (31, 39): still 4-connected
    canvas.set_from_numpy(image)
    canvas.set_color((230, 200, 120))
    canvas.set_tool("fill")
    finished = []
    canvas.stroke_finished.connect(lambda: finished.append(1))
    qtbot.mouseClick(canvas, LEFT, pos=QPoint(5, 5))
    out = canvas.to_numpy()
    left = np.zeros((80, 96), bool)
    left[:, :40] = True
    left[10:20, 10:20] = False
    left[30, 39] = left[31, 38] = False
    sand = (out == (230, 200, 120)).all(-1)
    np.testing.assert_array_equal(sand, left)
    np.testing.assert_array_equal(out[~left], image[~left])
    assert finished == [1]
    canvas.undo()
    np.testing.assert_array_equal(canvas.to_numpy(), image)


def test_flood_fill_mask_matches_breadth_first_search():
    rng = np.random.default_rng(3)
    image = rng.integers(0, 2, (40, 50, 1), dtype=np.uint8).repeat(3, 2) * 200
    for y, x in [(0, 0), (17, 23), (39, 49)]:
        expected = np.zeros((40, 50), bool)
        target = tuple(image[y, x])
        queue = deque([(y, x)])
        expected[y, x] = True
        while queue:
            cy, cx = queue.popleft()
            for ny, nx in ((cy - 1, cx), (cy + 1, cx), (cy, cx - 1), (cy, cx + 1)):
                if 0 <= ny < 40 and 0 <= nx < 50 and not expected[ny, nx] and tuple(image[ny, nx]) == target:
                    expected[ny, nx] = True
                    queue.append((ny, nx))
        np.testing.assert_array_equal(flood_fill_mask(image, x, y), expected)


def test_eyedropper_emits_and_adopts_the_picked_colour(qtbot, canvas):
    image = np.zeros((80, 96, 3), np.uint8)
    image[20:40, 30:60] = (128, 64, 128)
    canvas.set_from_numpy(image)
    canvas.set_tool("eyedropper")
    with qtbot.waitSignal(canvas.color_picked, timeout=1000) as blocker:
        qtbot.mouseClick(canvas, LEFT, pos=QPoint(45, 30))
    assert blocker.args == [(128, 64, 128)]
    assert canvas.color == (128, 64, 128)
    np.testing.assert_array_equal(canvas.to_numpy(), image)


def test_bracket_keys_change_brush_size(qtbot, canvas):
    canvas.brush_size = 10
    sizes = []
    canvas.brush_size_changed.connect(sizes.append)
    qtbot.keyClick(canvas, Qt.Key.Key_BracketRight)
    assert canvas.brush_size == 11
    qtbot.keyClick(canvas, Qt.Key.Key_BracketLeft)
    qtbot.keyClick(canvas, Qt.Key.Key_BracketLeft)
    assert canvas.brush_size == 9
    canvas.brush_size = 1
    qtbot.keyClick(canvas, Qt.Key.Key_BracketLeft)
    assert canvas.brush_size == 1
    assert sizes == [11, 10, 9, 1]


def test_stroke_signals_once_per_stroke_and_progress_while_drawing(qtbot, canvas):
    finished, progress = [], []
    canvas.stroke_finished.connect(lambda: finished.append(1))
    canvas.stroke_progress.connect(lambda: progress.append(1))
    drag(qtbot, canvas, [(10, 10), (70, 10)])
    assert finished == [1]
    assert len(progress) >= 5
    drag(qtbot, canvas, [(10, 50), (40, 60)])
    canvas.set_tool("line")
    drag(qtbot, canvas, [(5, 70), (90, 70)])
    assert finished == [1, 1, 1]
    assert canvas.document.undo_stack.count() == 3


def test_label_eraser_paints_the_background_class(qtbot, canvas):
    canvas.set_palette(PALETTE, background=5)
    canvas.clear()
    assert colors(canvas.to_numpy()) == {(230, 200, 120)}
    canvas.set_color((70, 130, 180))
    canvas.brush_size = 12
    drag(qtbot, canvas, [(10, 40), (85, 40)])
    canvas.set_tool("eraser")
    canvas.brush_size = 4
    drag(qtbot, canvas, [(45, 20), (45, 60)])
    out = canvas.to_numpy()
    assert tuple(out[40, 45]) == (230, 200, 120)
    assert tuple(out[40, 20]) == (70, 130, 180)
    assert colors(out) == {(230, 200, 120), (70, 130, 180)}


def test_edges_mode_draws_only_black_on_white(qtbot, canvas):
    canvas.set_mode("edges")
    canvas.clear()
    assert canvas.color == (0, 0, 0) and canvas.brush_size == 2
    drag(qtbot, canvas, [(5, 5), (90, 17), (33, 71)])
    canvas.set_tool("ellipse")
    drag(qtbot, canvas, [(13, 11), (77, 53)])
    canvas.set_view(2.5, QPointF(-3.3, -2.2))
    canvas.set_tool("line")
    drag(qtbot, canvas, [(7, 190), (230, 13)])
    drawn = canvas.to_numpy()
    assert colors(drawn) == {(0, 0, 0), (255, 255, 255)}
    canvas.set_tool("eraser")
    canvas.brush_size = 40
    drag(qtbot, canvas, [(0, 0), (240, 200)])
    erased = canvas.to_numpy()
    assert colors(erased) <= {(0, 0, 0), (255, 255, 255)}
    assert (erased == 255).all(-1).sum() > (drawn == 255).all(-1).sum()
    with pytest.raises(ValueError, match="black or white"):
        canvas.set_color((70, 130, 180))


def test_shape_previews_live_and_commits_one_step(qtbot, canvas):
    canvas.set_tool("rectangle")
    blank = canvas.to_numpy()
    qtbot.mousePress(canvas, LEFT, pos=QPoint(10, 10))
    qtbot.mouseMove(canvas, QPoint(70, 60))
    big = canvas.to_numpy()
    assert tuple(big[60, 40]) == canvas.color
    qtbot.mouseMove(canvas, QPoint(30, 30))
    small = canvas.to_numpy()
    assert tuple(small[60, 40]) == (0, 0, 0)  # the bigger preview is gone
    assert tuple(small[30, 20]) == canvas.color
    qtbot.mouseRelease(canvas, LEFT, pos=QPoint(30, 30))
    assert canvas.document.undo_stack.count() == 1
    canvas.undo()
    np.testing.assert_array_equal(canvas.to_numpy(), blank)


def test_escape_cancels_a_stroke(qtbot, canvas):
    blank = canvas.to_numpy()
    qtbot.mousePress(canvas, LEFT, pos=QPoint(10, 10))
    qtbot.mouseMove(canvas, QPoint(50, 50))
    assert not np.array_equal(canvas.to_numpy(), blank)
    qtbot.keyClick(canvas, Qt.Key.Key_Escape)
    qtbot.mouseRelease(canvas, LEFT, pos=QPoint(50, 50))
    np.testing.assert_array_equal(canvas.to_numpy(), blank)
    assert canvas.document.undo_stack.count() == 0


def _tablet(canvas: CanvasWidget, kind: QEvent.Type, pos: QPointF, pressure: float) -> None:
    pen = QPointingDevice("test pen", 4242, QInputDevice.DeviceType.Stylus, QPointingDevice.PointerType.Pen,
                          QInputDevice.Capability.Position | QInputDevice.Capability.Pressure, 1, 3)
    buttons = Qt.MouseButton.NoButton if kind == QEvent.Type.TabletRelease else LEFT
    event = QTabletEvent(kind, pen, pos, canvas.mapToGlobal(pos), pressure, 0.0, 0.0, 0.0, 0.0, 0.0,
                         Qt.KeyboardModifier.NoModifier, LEFT, buttons)
    QApplication.sendEvent(canvas, event)


def test_sketch_pressure_scales_width_and_opacity(qtbot, canvas):
    canvas.set_mode("sketch")
    canvas.clear()
    canvas.brush_size = 6
    for y, pressure in ((20, 0.1), (60, 1.0)):
        _tablet(canvas, QEvent.Type.TabletPress, QPointF(10, y), pressure)
        for x in range(14, 90, 4):
            _tablet(canvas, QEvent.Type.TabletMove, QPointF(x, y), pressure)
        _tablet(canvas, QEvent.Type.TabletRelease, QPointF(90, y), pressure)
    out = canvas.to_numpy()[..., 0].astype(int)
    light, heavy = out[5:40, 50], out[45:78, 50]
    assert (light < 255).sum() < (heavy < 255).sum()  # wider under pressure
    assert light.min() > heavy.min()  # and darker
    assert len(np.unique(out)) > 3  # anti-aliased grey levels
    assert canvas.document.undo_stack.count() == 3  # clear + two strokes


def test_wheel_zooms_about_the_cursor_and_pans(qtbot, canvas):
    views = []
    canvas.view_changed.connect(lambda zoom, offset: views.append((zoom, QPointF(offset))))
    anchor = QPointF(40, 30)
    under = canvas.map_to_image(anchor)
    wheel = QWheelEvent(anchor, canvas.mapToGlobal(anchor), QPoint(), QPoint(0, 240), Qt.MouseButton.NoButton,
                        Qt.KeyboardModifier.ControlModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(canvas, wheel)
    assert canvas.zoom == pytest.approx(1.5625)
    assert canvas.map_to_image(anchor).x() == pytest.approx(under.x())
    assert canvas.map_to_image(anchor).y() == pytest.approx(under.y())
    assert views[-1][0] == pytest.approx(1.5625)
    start = canvas.offset
    drag(qtbot, canvas, [(100, 100), (130, 90)], button=Qt.MouseButton.MiddleButton)
    assert canvas.offset - start == QPointF(30, -10)
    blank = canvas.to_numpy()
    qtbot.keyPress(canvas, Qt.Key.Key_Space)
    drag(qtbot, canvas, [(100, 100), (90, 120)])
    qtbot.keyRelease(canvas, Qt.Key.Key_Space)
    assert canvas.offset - start == QPointF(20, 10)
    np.testing.assert_array_equal(canvas.to_numpy(), blank)  # panning never paints
    assert views[-1][1] == canvas.offset


def test_resize_and_load_image_are_undoable(qtbot, canvas):
    drag(qtbot, canvas, [(10, 10), (40, 40)])
    drawn = canvas.to_numpy()
    canvas.resize_canvas(40, 30)
    assert canvas.to_numpy().shape == (30, 40, 3)
    assert colors(canvas.to_numpy()) == colors(drawn)  # the stroke is scaled with the page, not wiped
    photo = np.random.default_rng(1).integers(0, 256, (50, 60, 3), dtype=np.uint8)
    canvas.load_image(photo)
    loaded = canvas.to_numpy()
    assert loaded.shape == (50, 60, 3)
    assert colors(loaded) <= PALETTE_COLORS  # label mode snaps imports to the palette
    canvas.undo()
    canvas.undo()
    np.testing.assert_array_equal(canvas.to_numpy(), drawn)
    canvas.redo()
    canvas.redo()
    np.testing.assert_array_equal(canvas.to_numpy(), loaded)
    with pytest.raises(ValueError, match=r"\(H, W, 3\) uint8"):
        canvas.load_image(np.zeros((5, 5), np.float32))


def test_palette_and_colour_are_validated(canvas):
    with pytest.raises(ValueError, match="not in the label palette"):
        canvas.set_color((1, 2, 3))
    with pytest.raises(ConfigError, match="background id 9"):
        canvas.set_palette(PALETTE, background=9)
    with pytest.raises(ConfigError, match="share the colour"):
        Palette.from_entries([("a", (1, 1, 1)), ("b", (1, 1, 1))])
    canvas.set_palette([("bg", (9, 9, 9)), ("fg", (200, 10, 10))], background=0)
    assert canvas.color == (200, 10, 10)
    assert canvas.background_color == (9, 9, 9)
