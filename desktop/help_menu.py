"""The Help menu: the user guide, the keyboard shortcuts, and an About box listing the bundled models' cards
with their data and licences (read from ``assets/models``: ``*.json`` cards, or the card in a checkpoint's
header; none listed when there are none)."""

from __future__ import annotations

import html
import importlib.metadata
import importlib.resources
import json
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QAction, QDesktopServices, QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QMainWindow,
    QMenu,
    QMessageBox,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from engine.api import checkpoint_header

USER_GUIDE = Path(__file__).resolve().parents[1] / "docs" / "user-guide.md"
CANVAS_KEYS = [  # handled by the canvas itself (not menu actions)
    ("[ / ]", "smaller / larger brush"), ("Shift + drag", "squares, circles, lines at 45 degrees"),
    ("Space + drag, middle button", "pan"), ("Wheel", "zoom about the cursor"), ("Escape", "cancel the stroke"),
    ("1 ... 9", "pick a palette class (label maps)"),
]
CARD_FIELDS = (("task", "What it does"), ("dataset", "Data"), ("licence", "Licence"), ("license", "Licence"))


def bundled_cards(folder: Path | None = None) -> list[dict[str, Any]]:
    """The bundled models' cards: each ``assets/models/*.json`` (an object), else the ``card`` (and ``dataset``)
    in each checkpoint's header; unreadable files are skipped."""
    if folder is None:
        try:
            folder = Path(str(importlib.resources.files("assets") / "models"))
        except ModuleNotFoundError:
            return []
    if not folder.is_dir():
        return []
    cards = []
    for path in sorted(folder.glob("*.json")):
        try:
            card = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(card, dict):
            cards.append({"title": path.stem, **card})
    if cards:
        return cards
    for path in sorted(folder.glob("*.safetensors")):
        meta = checkpoint_header(path) or {}
        card, dataset = meta.get("card"), meta.get("dataset")
        if isinstance(card, dict):
            extra = {k: v for k, v in (dataset if isinstance(dataset, dict) else {}).items() if k == "licence"}
            cards.append({"title": path.stem, **extra, **card})
    return cards


def about_html(cards: list[dict[str, Any]]) -> str:
    try:
        version = importlib.metadata.version("ganvas")
    except importlib.metadata.PackageNotFoundError:
        version = "(development copy)"
    parts = [f"<h2>Ganvas {html.escape(version)}</h2>",
             "<p>Image-to-image GANs on a canvas: draw, and a model turns the drawing into a picture; train your "
             "own models on your own pictures.</p>", "<h3>Bundled models</h3>"]
    if not cards:
        parts.append("<p>None in this copy: train one (Train &gt; Training...) or open a checkpoint.</p>")
    for card in cards:
        rows = "".join(f"<tr><td><i>{label}</i>&nbsp;</td><td>{html.escape(_text(card[key]))}</td></tr>"
                       for key, label in CARD_FIELDS if card.get(key))
        parts.append(f"<p><b>{html.escape(_text(card.get('title', '')))}</b></p><table>{rows}</table>")
    return "".join(parts)


def _text(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}: {v}" for k, v in value.items())
    return str(value)


def shortcuts_html(window: QWidget) -> str:
    """Every menu and tool bar action of ``window`` with a shortcut, then the canvas's own keys."""
    rows: dict[str, str] = {}
    for action in window.findChildren(QAction):
        keys = [k.toString(QKeySequence.SequenceFormat.NativeText) for k in action.shortcuts() if not k.isEmpty()]
        if keys and action.text():
            name = action.text().replace("&", "")
            name = name.split(" ", 1)[0] if name.startswith(("Undo ", "Redo ")) else name  # not "Undo Stroke"
            rows.setdefault(name, ", ".join(keys))
    table = "".join(f"<tr><td>{html.escape(name)}&nbsp;&nbsp;</td><td><b>{html.escape(keys)}</b></td></tr>"
                    for name, keys in sorted(rows.items(), key=lambda item: item[0].lower()))
    canvas = "".join(f"<tr><td>{html.escape(what)}&nbsp;&nbsp;</td><td><b>{html.escape(keys)}</b></td></tr>"
                     for keys, what in CANVAS_KEYS)
    return f"<h3>Actions</h3><table>{table}</table><h3>On the canvas</h3><table>{canvas}</table>"


def show_text(parent: QWidget, title: str, text: str) -> QDialog:
    dialog = QDialog(parent)
    dialog.setWindowTitle(title)
    browser = QTextBrowser(dialog)
    browser.setOpenExternalLinks(True)
    browser.setHtml(text)
    buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, dialog)
    buttons.rejected.connect(dialog.reject)
    layout = QVBoxLayout(dialog)
    layout.addWidget(browser)
    layout.addWidget(buttons)
    dialog.resize(560, 520)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    dialog.show()
    return dialog


def open_user_guide(parent: QWidget) -> bool:
    if USER_GUIDE.is_file() and QDesktopServices.openUrl(QUrl.fromLocalFile(str(USER_GUIDE))):
        return True
    QMessageBox.information(parent, "User guide", f"The user guide is docs/user-guide.md in the Ganvas folder "
                            f"({USER_GUIDE}).")
    return False


def add_help_menu(window: QMainWindow) -> QMenu:
    menu = window.menuBar().addMenu("&Help")
    menu.addAction("User guide", lambda: open_user_guide(window)).setShortcut(QKeySequence.StandardKey.HelpContents)
    menu.addAction("Keyboard shortcuts", lambda: show_text(window, "Keyboard shortcuts", shortcuts_html(window)))
    menu.addSeparator()
    menu.addAction("About Ganvas", lambda: show_text(window, "About Ganvas", about_html(bundled_cards())))
    return menu
