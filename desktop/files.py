"""Image files in the GUI: the suffixes Ganvas opens, their file-dialog filter, and dropped files."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QMimeData

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
IMAGE_FILTER = "Images (" + " ".join(f"*{suffix}" for suffix in IMAGE_SUFFIXES) + ")"


def dropped_image(mime: QMimeData) -> str | None:
    """The first local image file in a drag's data, if any."""
    for url in mime.urls() if mime.hasUrls() else ():
        path = url.toLocalFile()
        if path and Path(path).suffix.lower() in IMAGE_SUFFIXES:
            return path
    return None
