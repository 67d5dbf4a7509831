"""Let the mouse wheel scroll a long panel instead of changing whichever slider or spin box is under the cursor.

:func:`scroll_with_wheel` watches a scroll area's content: a wheel event over a slider, spin box or combo box that
does not have the keyboard focus scrolls the area; once clicked (focused), the control takes the wheel as usual.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtWidgets import QAbstractSlider, QAbstractSpinBox, QApplication, QComboBox, QScrollArea, QWidget

WHEEL_CONTROLS = (QAbstractSlider, QAbstractSpinBox, QComboBox)


class _WheelToScroll(QObject):
    def __init__(self, area: QScrollArea) -> None:
        super().__init__(area)
        self.area = area

    def watch(self, widget: QObject) -> None:
        if isinstance(widget, QWidget):
            widget.installEventFilter(self)
            if isinstance(widget, WHEEL_CONTROLS):
                widget.setFocusPolicy(Qt.FocusPolicy.StrongFocus)  # the wheel alone does not focus it
            for child in widget.findChildren(QWidget):
                child.installEventFilter(self)
                if isinstance(child, WHEEL_CONTROLS):
                    child.setFocusPolicy(Qt.FocusPolicy.StrongFocus)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ChildAdded:
            self.watch(event.child())
        elif event.type() == QEvent.Type.Wheel and isinstance(watched, WHEEL_CONTROLS) and not watched.hasFocus():
            QApplication.sendEvent(self.area.verticalScrollBar(), event)
            return True
        return False


def scroll_with_wheel(area: QScrollArea) -> None:
    """Make wheel events over unfocused controls inside ``area`` scroll ``area``."""
    guard = _WheelToScroll(area)
    guard.watch(area.widget())
