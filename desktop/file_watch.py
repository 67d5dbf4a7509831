"""Notice when a file the window depends on is deleted or changed by someone else.

:class:`FileWatch` follows one file at a time (the loaded model's checkpoint, the open project). It records the
file's size and modification time when the window reads or writes it (:meth:`FileWatch.watch`), so its own
writes never count, and reports ``deleted`` or ``changed`` once per change, from the operating system's file
notifications. :meth:`FileWatch.changed_since_watch` asks the same question synchronously, so a save can check
just before it overwrites. Editors and our own atomic writes replace files by renaming, which ends an inotify
watch: the watch is renewed whenever the path exists again.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QFileSystemWatcher, QObject, Signal


def _stamp(path: Path) -> tuple[int, int] | None:
    """(size, modification time in ns) of ``path``, or None when it is not a file."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return (stat.st_size, stat.st_mtime_ns) if path.is_file() else None


class FileWatch(QObject):
    """Watches one file; ``deleted(path)`` and ``changed(path)`` fire when it differs from the watched state."""

    deleted = Signal(str)
    changed = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.path: Path | None = None
        self._stamp: tuple[int, int] | None = None
        self._reported: tuple[int, int] | None = None  # the state last reported, so each is said once
        self._watcher = QFileSystemWatcher(self)
        self._watcher.fileChanged.connect(self._on_file_event)
        self._watcher.directoryChanged.connect(self._on_file_event)

    def watch(self, path: str | Path | None) -> None:
        """Follow ``path`` from its current state (None stops watching)."""
        self.clear()
        if path is None:
            return
        self.path = Path(path)
        self._stamp = _stamp(self.path)
        self._reported = self._stamp
        self._watcher.addPath(str(self.path.parent))  # sees deletion and rename-replacement of the file
        if self._stamp is not None:
            self._watcher.addPath(str(self.path))

    def clear(self) -> None:
        paths = self._watcher.files() + self._watcher.directories()
        if paths:
            self._watcher.removePaths(paths)
        self.path, self._stamp, self._reported = None, None, None

    def changed_since_watch(self) -> bool:
        """Whether the file is gone or differs from the state recorded by :meth:`watch`."""
        return self.path is not None and _stamp(self.path) != self._stamp

    def _on_file_event(self, _changed: str) -> None:
        if self.path is None:
            return
        now = _stamp(self.path)
        if now is not None and str(self.path) not in self._watcher.files():
            self._watcher.addPath(str(self.path))  # replaced by a rename: follow the new file
        if now == self._reported:
            return
        self._reported = now
        if now is None:
            self.deleted.emit(str(self.path))
        elif now != self._stamp:
            self.changed.emit(str(self.path))
