"""Questions and reports when an image is opened into a label-map canvas: take one half of an A|B pair, and
which colours are not in the palette (with swatches and the class each was snapped to)."""

from __future__ import annotations

import html
from collections.abc import Sequence

from PySide6.QtWidgets import QMessageBox, QWidget

from desktop.canvas_tools import Palette

MAX_LISTED = 8
HALVES = ("left", "right", "whole")


def swatch(rgb: Sequence[int]) -> str:
    """An HTML colour square (a table cell: Qt's rich text draws cell backgrounds)."""
    r, g, b = (int(c) for c in rgb)
    return (f'<table cellspacing="0" cellpadding="0" style="display:inline"><tr><td bgcolor="#{r:02x}{g:02x}{b:02x}"'
            f' width="14" height="14" style="border: 1px solid #777">&nbsp;&nbsp;&nbsp;</td></tr></table>')


def unknown_colours_html(file_name: str, palette_name: str, palette: Palette,
                         unknown: Sequence[tuple[tuple[int, int, int], int, int]], total_pixels: int) -> str:
    """The report for colours of ``file_name`` not in ``palette``: swatch, share and the nearest class."""
    rows = []
    for color, count, nearest in list(unknown)[:MAX_LISTED]:
        share = 100 * count / max(1, total_pixels)
        # the arrow has a cell of its own: beside it, the class's swatch went onto a line of its own
        rows.append(f"<tr><td>{swatch(color)}</td><td>rgb{tuple(color)}&nbsp;</td><td>{share:.1f} %&nbsp;</td>"
                    f"<td>&rarr;</td><td>{swatch(palette.colors[nearest])}</td>"
                    f"<td>{html.escape(palette.names[nearest])}</td></tr>")
    more = f"<p>... and {len(unknown) - MAX_LISTED} more colours.</p>" if len(unknown) > MAX_LISTED else ""
    return (f"<p><b>{html.escape(file_name)}</b> has colours that are not in the <b>{html.escape(palette_name)}</b> "
            "palette. Each was painted as the nearest class (undo to get the image back):</p>"
            f"<table cellspacing='4'>{''.join(rows)}</table>{more}")


def show_unknown_colours(parent: QWidget, text: str) -> None:
    box = QMessageBox(QMessageBox.Icon.Warning, "Colours not in the palette", text, QMessageBox.StandardButton.Ok,
                      parent)
    box.setTextFormat(box.textFormat().RichText)
    box.open()  # not modal to the event loop: the canvas already shows the result


def ask_half(parent: QWidget, file_name: str, suggested: str) -> str | None:
    """``left``, ``right`` or ``whole`` for an A|B pair opened into a label canvas (None: cancelled)."""
    box = QMessageBox(QMessageBox.Icon.Question, "An A|B pair",
                      f"{file_name} looks like a pair side by side (e.g. photo | label map). Open one half?", parent=parent)
    buttons = {box.addButton(f"{half.capitalize()} half" + (" (label map)" if half == suggested else ""),
                             QMessageBox.ButtonRole.AcceptRole): half for half in HALVES[:2]}
    buttons[box.addButton("Whole image", QMessageBox.ButtonRole.AcceptRole)] = "whole"
    box.addButton(QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(next(b for b, half in buttons.items() if half == (suggested or "right")))
    box.exec()
    return buttons.get(box.clickedButton())
