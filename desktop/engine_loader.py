"""Import the engine (and with it torch) in a background thread, so the window appears at once.

The GUI never imports torch itself: :class:`EngineLoader` imports the engine's public modules off the UI
thread and hands an :class:`EngineApi` to the main thread through a queued Qt signal. Later long calls
(loading a checkpoint, building an untrained network) go through :class:`~desktop.workers.Worker`.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from PySide6.QtCore import QObject, Signal

from desktop.workers import Worker, error_message
from engine.core.errors import GanvasError

# Inference options (``Family.model_options``) the Style dock has controls for.
KNOWN_OPTIONS = ("direction", "tile", "seed", "style")


@dataclass(frozen=True)
class FamilyInfo:
    """What the GUI needs to know about a registered family, read once in the loader thread."""

    name: str
    input_kind: str
    description: str
    canvas_mode: str = "edges"  # what the canvas draws for this family's image-input models


@dataclass(frozen=True)
class EngineApi:
    """The engine's public modules, imported; handed to the GUI thread when ready."""

    inference: ModuleType
    registry: ModuleType
    imageio: ModuleType
    device: ModuleType
    palette: ModuleType | None  # engine.data.palette, when that module exists
    canvas_input: ModuleType | None  # engine.infer.canvas_input: imported images made into drawings
    families: tuple[FamilyInfo, ...]
    bundled: tuple[Any, ...] = ()  # engine.core.bundled.BundledModel: name, title, path, family, card, error

    def family(self, name: str) -> FamilyInfo | None:
        return next((f for f in self.families if f.name == name), None)

    def device_name(self, spec: str) -> str:
        """What ``spec`` (auto/cpu/cuda/mps) resolves to here, or the error message."""
        try:
            return str(self.device.resolve_device(spec))
        except GanvasError as exc:
            return str(exc)


def import_engine(threads: int = 0) -> EngineApi:
    """Import the engine (slow: torch). ``threads`` > 0 caps the CPU threads torch will start with.

    OpenMP is told to wait passively (unless the user chose otherwise): with its default busy-waiting, every
    parallel op of the live translation stalls for a scheduler slice whenever another process (such as the
    app's own training process, which inherits this setting) holds a core; measured here, a U-Net-128 frame
    took 864 ms instead of 38 ms. On an idle CPU it costs a few milliseconds per frame.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if threads > 0:
        for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(variable, str(threads))
    inference = importlib.import_module("engine.infer.inference")
    registry = importlib.import_module("engine.core.registry")
    try:
        palette: ModuleType | None = importlib.import_module("engine.data.palette")
    except ModuleNotFoundError:
        palette = None
    families = []
    for name in registry.list_families():
        family = registry.get_family(name)
        families.append(FamilyInfo(name, family.input_kind, family.description, family.default_canvas_mode))
    bundled = tuple(importlib.import_module("engine.core.bundled").list_bundled())
    return EngineApi(inference, registry, importlib.import_module("engine.core.imageio"),
                     importlib.import_module("engine.core.device"), palette,
                     importlib.import_module("engine.infer.canvas_input"), tuple(families), bundled)


class EngineLoader(QObject):
    """Imports the engine once in the background: ``ready(EngineApi)`` or ``failed(str)``."""

    ready = Signal(object)
    failed = Signal(str)

    def __init__(self, threads: int = 0, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._threads = threads
        self._call: Worker | None = None
        self.api: EngineApi | None = None

    @property
    def started(self) -> bool:
        return self._call is not None

    def start(self) -> None:
        if self._call is not None:
            return
        self._call = Worker.call(lambda: import_engine(self._threads), "ganvas-engine-import", self)
        self._call.returned.connect(self._on_done)
        self._call.errored.connect(self._on_failed)
        self._call.start()

    def wait(self, timeout: float | None = None) -> bool:
        return self._call is not None and self._call.wait(timeout)

    def _on_failed(self, exc: BaseException) -> None:
        self.failed.emit(error_message(exc))

    def _on_done(self, api: EngineApi) -> None:
        self.api = api
        self.ready.emit(api)
