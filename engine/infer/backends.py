"""Inference backends: the torch network itself, or its exported graphs compiled by ONNX Runtime or OpenVINO.

:class:`CompiledGraphs` runs a model's :class:`~engine.infer.graphs.ExportGraph` s on one backend. Each graph is
exported to ONNX once per model (a content hash of its weights and config) and kept in the compile cache;
OpenVINO then compiles it per input shape and keeps the compiled blob there too, so a second launch skips the
compile. A cached file that fails to load (stale, truncated, another version's) is deleted and rebuilt.

``openvino-int8`` is opt-in (never chosen by ``auto``): the graphs quantized to int8 by NNCF on calibration
inputs the caller supplies (docs/backends.md, "int8"), cached per calibration set.

``openvino-bf16`` runs the same graphs with OpenVINO's bf16 inference precision, only on CPUs with native bf16
units (AMX or AVX-512 BF16; elsewhere it refuses rather than emulate). ``auto`` considers it, but keeps it only
where its output matches torch's within :data:`AUTO_MIN_PSNR` on the model's example input (docs/backends.md,
"bf16").

The cache lies under ``$GANVAS_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/ganvas/compiled`` (by default
``~/.cache/ganvas/compiled``). It is kept under ``$GANVAS_CACHE_LIMIT_MB`` (default 2048): after each compile
the least recently used model folders beyond the limit are deleted (:func:`prune_cache`).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import io
import json
import logging
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine.core.errors import BackendError, ConfigError, GanvasError
from engine.infer.graphs import ExportGraph

BACKENDS = ("torch", "onnxruntime", "openvino")
INT8 = "openvino-int8"  # opt-in: needs calibration inputs, so ``auto`` never picks it
BF16 = "openvino-bf16"  # CPUs with native bf16 units only; ``auto`` keeps it where it matches torch
BACKEND_CHOICES = ("auto", *BACKENDS, BF16, INT8)
OPENVINO_PRECISION = {"openvino": "f32", INT8: "f32", BF16: "bf16"}  # INFERENCE_PRECISION_HINT per backend
AUTO_MIN_PSNR = 40.0  # dB against torch's output (images in [0, 255]) for ``auto`` to keep a reduced precision
INT8_CALIBRATION_LIMIT = 32  # calibration inputs used at most per graph
CACHE_ENV = "GANVAS_CACHE_DIR"
CACHE_LIMIT_ENV = "GANVAS_CACHE_LIMIT_MB"
CACHE_LIMIT_MB = 2048  # default size the cache is pruned to
USED_STAMP = ".last_used"  # touched in a model folder each time its graphs are loaded or compiled
RECENT_S = 600.0  # folders used this recently are never pruned (another window may be writing to them)
CACHE_FORMAT = 1  # bump when what is cached changes meaning
log = logging.getLogger(__name__)


def available_backends() -> list[str]:
    """The backends installed here, torch first."""
    modules = {"onnxruntime": "onnxruntime", "openvino": "openvino"}
    return ["torch", *(name for name, module in modules.items() if importlib.util.find_spec(module) is not None)]


@functools.cache
def native_bf16() -> bool:
    """Whether OpenVINO runs bf16 natively on this CPU (it lists ``BF16`` among the CPU's capabilities only
    where AMX or AVX-512 BF16 units exist)."""
    if importlib.util.find_spec("openvino") is None:
        return False
    import openvino as ov

    try:
        return "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    except RuntimeError:
        return False


def check_backend(name: str) -> str:
    if name not in BACKEND_CHOICES:
        raise ConfigError(f"unknown backend {name!r}: expected one of {', '.join(BACKEND_CHOICES)}", value=name)
    return name


def cache_root() -> Path:
    """Where compiled models are kept (see the module docstring)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "ganvas" / "compiled"


def cache_limit_bytes() -> int:
    """The compile cache's size limit (``$GANVAS_CACHE_LIMIT_MB``, default :data:`CACHE_LIMIT_MB`)."""
    value = os.environ.get(CACHE_LIMIT_ENV, "").strip()
    try:
        megabytes = float(value) if value else CACHE_LIMIT_MB
    except ValueError as exc:
        raise ConfigError(f"{CACHE_LIMIT_ENV}={value!r} is not a number of megabytes", value=value) from exc
    return int(megabytes * 1024 * 1024)


def prune_cache(root: Path | None = None, limit_bytes: int | None = None, keep: Path | None = None) -> list[Path]:
    """Delete the least recently used model folders of the compile cache until it fits ``limit_bytes``; folders
    used in the last :data:`RECENT_S` seconds and ``keep`` stay. Returns the folders deleted."""
    root = root or cache_root()
    limit = cache_limit_bytes() if limit_bytes is None else limit_bytes
    if not root.is_dir():
        return []
    folders = []
    for folder in root.iterdir():
        if not folder.is_dir():
            continue
        files = [path for path in folder.rglob("*") if path.is_file()]
        stamp = folder / USED_STAMP
        used = stamp.stat().st_mtime if stamp.is_file() else max((f.stat().st_mtime for f in files), default=0.0)
        folders.append((used, sum(f.stat().st_size for f in files), folder))
    total = sum(size for _, size, _ in folders)
    deleted = []
    now = time.time()
    for used, size, folder in sorted(folders, key=lambda item: item[0]):  # oldest use first
        if total <= limit:
            break
        if folder == keep or now - used < RECENT_S:
            continue
        shutil.rmtree(folder, ignore_errors=True)
        total -= size
        deleted.append(folder)
    if deleted:
        log.info("compile cache over %d MB: deleted %d least recently used model folders", limit >> 20, len(deleted))
    return deleted


def model_key(family: str, config: dict[str, Any], network: torch.nn.Module) -> str:
    """A content hash of a model: family, config and every tensor of its state (names, shapes, values)."""
    digest = hashlib.sha256(json.dumps([CACHE_FORMAT, family, config], sort_keys=True, default=str).encode())
    for name, tensor in sorted(network.state_dict().items()):
        value = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{name}:{tuple(value.shape)}:{value.dtype}".encode())
        digest.update(value.view(torch.uint8).numpy().tobytes() if value.numel() else b"")
    return digest.hexdigest()[:24]


def _write_atomic(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)


class CompiledGraphs:
    """A model's graphs on ``backend`` (``onnxruntime``, ``openvino`` or its bf16/int8 variants), compiled on
    first use per shape.

    Call it as ``run(name, *inputs)`` with CPU tensors; it returns a CPU float tensor (the graph's first
    output). ``threads`` caps the backend's threads (default: torch's).

    Raises:
        BackendError: the backend is missing or cannot export, load or compile a graph.
    """

    def __init__(self, graphs: Iterable[ExportGraph], backend: str, key: str, cache_dir: Path | None = None,
                 threads: int | None = None, calibration: dict[str, list[list[np.ndarray]]] | None = None) -> None:
        if backend not in (*BACKENDS[1:], BF16, INT8):
            raise ConfigError(f"{backend!r} is not a compiled backend (onnxruntime, openvino, {BF16} or {INT8})",
                              value=backend)
        runtime = "openvino" if backend in OPENVINO_PRECISION else backend
        if runtime not in available_backends():
            raise BackendError(f"the {backend} backend is not installed (pip install {runtime})")
        if backend == BF16 and not native_bf16():
            raise BackendError(f"the {BF16} backend needs a CPU with bf16 units (AMX or AVX-512 BF16); this one "
                               "has none")
        if backend == INT8 and importlib.util.find_spec("nncf") is None:
            raise BackendError(f"the {INT8} backend quantizes with NNCF, which is not installed (pip install nncf)")
        if backend == INT8 and not calibration:
            raise BackendError(f"the {INT8} backend needs calibration inputs (a few of the model's own kind)")
        self.graphs = {graph.name: graph for graph in graphs}
        self.backend = backend
        self.folder = (cache_dir or cache_root()) / key
        self.threads = threads or torch.get_num_threads()
        self._runners: dict[tuple[Any, ...], Callable[[list[np.ndarray]], np.ndarray]] = {}
        # per graph, lists of input arrays to quantize on (int8); the files are tagged by their content
        self.calibration = {name: calls[:INT8_CALIBRATION_LIMIT] for name, calls in (calibration or {}).items()}
        self.int8_tag = "int8-" + _arrays_hash(self.calibration) if backend == INT8 else ""
        self.rebuilt: list[str] = []  # cache files found unusable and rebuilt (tests and diagnostics)

    def __call__(self, name: str, *inputs: torch.Tensor) -> torch.Tensor:
        arrays = [tensor.detach().cpu().contiguous().numpy() for tensor in inputs]
        shapes = tuple(array.shape for array in arrays)
        runner = self._runners.get((name, shapes))
        if runner is None:
            runner = self._runners[(name, shapes)] = self._compile(name, arrays)
        return torch.from_numpy(np.asarray(runner(arrays))).float()

    # --- building -------------------------------------------------------------------------------------------
    def onnx_path(self, name: str) -> Path:
        """The graph's ONNX file in the cache, exported now if missing."""
        from engine.infer.export import export_onnx

        path = self.folder / f"{name}.onnx"
        if not path.is_file():
            self.folder.mkdir(parents=True, exist_ok=True)
            try:
                export_onnx(self.graphs[name], path)
            except GanvasError as exc:
                raise BackendError(str(exc)) from exc
        return path

    def _compile(self, name: str, arrays: list[np.ndarray]) -> Callable[[list[np.ndarray]], np.ndarray]:
        if name not in self.graphs:
            raise BackendError(f"this model has no {name!r} graph")
        build = self._onnxruntime if self.backend == "onnxruntime" else self._openvino
        try:
            runner = build(name, arrays)
        except BackendError:
            raise
        except Exception as exc:  # a cached file from elsewhere: rebuild once from the torch network
            log.info("compiled cache for %s unusable (%s); rebuilding", name, exc)
            self.rebuilt.append(name)
            for stale in self.folder.glob(f"{name}.*"):
                stale.unlink(missing_ok=True)
            try:
                runner = build(name, arrays)
            except BackendError:
                raise
            except Exception as second:
                first_line = next(iter(str(second).splitlines()), "")[:200]
                raise BackendError(f"{self.backend} cannot compile the {name} graph ({type(second).__name__}: "
                                   f"{first_line})") from second
        self._mark_used()
        return runner

    def _mark_used(self) -> None:
        """Stamp this model's folder as just used, then keep the cache within its limit (a cache that cannot be
        pruned, or a bad limit, never stops inference)."""
        try:
            (self.folder / USED_STAMP).touch()
            prune_cache(self.folder.parent, keep=self.folder)
        except OSError:
            pass
        except ConfigError as exc:
            log.warning("compile cache not pruned: %s", exc)

    def _onnxruntime(self, name: str, arrays: list[np.ndarray]) -> Callable[[list[np.ndarray]], np.ndarray]:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        session = ort.InferenceSession(str(self.onnx_path(name)), options, providers=["CPUExecutionProvider"])
        names = [item.name for item in session.get_inputs()]

        def run(inputs: list[np.ndarray]) -> np.ndarray:
            return session.run(None, dict(zip(names, inputs, strict=True)))[0]

        run(arrays)  # fail here, inside the fallback's reach, rather than on the first real call
        return run

    def _openvino(self, name: str, arrays: list[np.ndarray]) -> Callable[[list[np.ndarray]], np.ndarray]:
        import openvino as ov

        shape_tag = "_".join("x".join(map(str, array.shape)) or "s" for array in arrays)
        if self.int8_tag and name in self.calibration:
            shape_tag = f"{self.int8_tag}.{shape_tag}"
        precision = OPENVINO_PRECISION[self.backend]
        if precision != "f32":
            shape_tag = f"{precision}.{shape_tag}"
        blob = self.folder / f"{name}.{shape_tag}.ov{ov.get_version().split('-')[0]}.t{self.threads}.blob"
        core = ov.Core()
        config = {"INFERENCE_PRECISION_HINT": precision, "PERFORMANCE_HINT": "LATENCY",
                  "INFERENCE_NUM_THREADS": self.threads}
        if blob.is_file():
            compiled = core.import_model(blob.read_bytes(), "CPU", config)
        else:
            model = (self._int8_model(name, core) if self.int8_tag and name in self.calibration
                     else core.read_model(str(self.onnx_path(name))))
            model.reshape({port.any_name: ov.PartialShape(list(array.shape))
                           for port, array in zip(model.inputs, arrays, strict=True)})
            compiled = core.compile_model(model, "CPU", config)
            _write_atomic(blob, _blob_bytes(compiled))
        request = compiled.create_infer_request()

        def run(inputs: list[np.ndarray]) -> np.ndarray:
            return request.infer(inputs, share_inputs=True)[0].copy()

        run(arrays)
        return run

    def _int8_model(self, name: str, core: Any) -> Any:
        """The graph quantized to int8 by NNCF on its calibration inputs (kept as OpenVINO IR in the cache; the
        scales hold for every input shape). Activations asymmetric (NNCF's mixed preset): the generators' ReLU
        and tanh ranges are not centred on zero."""
        import nncf
        import openvino as ov

        path = self.folder / f"{name}.{self.int8_tag}.xml"
        if path.is_file() and path.with_suffix(".bin").is_file():
            return core.read_model(str(path))
        calls = self.calibration[name]
        model = core.read_model(str(self.onnx_path(name)))
        with contextlib.redirect_stdout(sys.stderr):  # its progress bars: stdout may carry a command's results
            quantized = nncf.quantize(model, nncf.Dataset(calls), preset=nncf.QuantizationPreset.MIXED,
                                      subset_size=len(calls))
        temporary = path.with_name(f".{path.stem}.{os.getpid()}.tmp.xml")
        ov.save_model(quantized, str(temporary), compress_to_fp16=False)
        os.replace(temporary.with_suffix(".bin"), path.with_suffix(".bin"))  # the weights first: the .xml marks done
        os.replace(temporary, path)
        return quantized


class GraphRecorder:
    """Runs graphs (``run(name, *inputs)``, like :class:`CompiledGraphs`) and keeps each call's input arrays per
    graph name: what a session feeds its graphs, for calibration."""

    def __init__(self, run: Callable[..., torch.Tensor]) -> None:
        self.run = run
        self.calls: dict[str, list[list[np.ndarray]]] = {}

    def __call__(self, name: str, *inputs: torch.Tensor) -> torch.Tensor:
        arrays = [tensor.detach().cpu().contiguous().numpy().copy() for tensor in inputs]
        self.calls.setdefault(name, []).append(arrays)
        return self.run(name, *inputs)


def _arrays_hash(calls: dict[str, list[list[np.ndarray]]]) -> str:
    digest = hashlib.sha256()
    for name in sorted(calls):
        for arrays in calls[name]:
            for array in arrays:
                digest.update(f"{name}:{array.shape}:{array.dtype}".encode())
                digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()[:12]


def _blob_bytes(compiled: Any) -> bytes:
    """The bytes of an OpenVINO compiled model (its ``export_model`` returns bytes or writes a stream)."""
    exported = compiled.export_model()
    if isinstance(exported, bytes):
        return exported
    stream = io.BytesIO()
    compiled.export_model(stream)
    return stream.getvalue()
