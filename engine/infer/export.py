"""``ganvas export``: a model's inference graphs as ONNX files (with their settings in the file's metadata).

Export goes through ``torch.export`` (the exporter that ``torch.onnx.export`` defaults to since torch 2.9; the
TorchScript exporter is deprecated), with the axes each :class:`~engine.infer.graphs.ExportGraph` declares dynamic
left symbolic wherever the network allows (``Dim.AUTO``: an axis the network needs fixed stays fixed).
"""

from __future__ import annotations

import contextlib
import inspect
import io
import json
import logging
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from engine.core.errors import ConfigError, StorageError
from engine.infer.graphs import ExportGraph

OPSET = 18  # ONNX opset of exported graphs (ONNX Runtime >= 1.14 and OpenVINO >= 2023.0 read it)
EXPORT_FORMATS = ("onnx",)
log = logging.getLogger(__name__)


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silence the exporter's progress prints and warnings (they are for torch developers, not our users)."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "torch.export", "torch._dynamo", "onnxscript")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def export_onnx(graph: ExportGraph, path: str | Path, metadata: dict[str, Any] | None = None) -> Path:
    """Write ``graph`` as an ONNX file at ``path`` (atomically); ``metadata`` goes into its ``metadata_props``
    with the opset, exporter and the dynamic axes. Returns the path."""
    import onnx

    path = Path(path)
    dims = {name: {axis: torch.export.Dim.AUTO for axis in graph.dynamic.get(name, ())} for name in graph.input_names}
    # torch.export matches dynamic shapes to the forward's signature: positional, or one tuple for ``*inputs``.
    dynamic_shapes: tuple[Any, ...] = tuple(dims[name] for name in graph.input_names)
    kinds = [p.kind for p in inspect.signature(graph.module.forward).parameters.values()]
    if inspect.Parameter.VAR_POSITIONAL in kinds:
        dynamic_shapes = (dynamic_shapes,)
    try:
        with _quiet_exporter():
            program = torch.onnx.export(graph.module, graph.inputs, dynamo=True, opset_version=OPSET,
                                        input_names=list(graph.input_names), output_names=list(graph.output_names),
                                        dynamic_shapes=dynamic_shapes, optimize=True, verify=False)
    except Exception as exc:  # the exporter's errors are many and long: one line for the user
        cause = exc.__cause__ or exc
        first = next((line for line in str(cause).splitlines() if line.strip()), "")
        raise ConfigError(f"the {graph.name} graph cannot be exported to ONNX ({type(cause).__name__}: "
                          f"{first[:200]})") from exc
    model = program.model_proto
    props = {"ganvas.graph": graph.name, "ganvas.opset": str(OPSET),
             "ganvas.exporter": f"torch.onnx.export(dynamo=True) torch {torch.__version__}",
             "ganvas.dynamic_axes": json.dumps({k: list(v) for k, v in graph.dynamic.items()}),
             **{f"ganvas.note.{k}": v for k, v in graph.notes.items()},
             **{k: v if isinstance(v, str) else json.dumps(v) for k, v in (metadata or {}).items()}}
    onnx.helper.set_model_props(model, props)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        onnx.save(model, str(temporary))
        os.replace(temporary, path)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise StorageError(f"cannot write the ONNX file ({exc.strerror or exc})", path=path) from exc
    return path


def session_metadata(session: Any) -> dict[str, Any]:
    """What an exported file records about the model it came from."""
    card = session.card
    return {"ganvas.family": card.family, "ganvas.model_config": card.config,
            "ganvas.size": list(card.size), "ganvas.step": card.step,
            "ganvas.checkpoint": Path(card.path).name if card.path else "untrained",
            "ganvas.batch_norm": ("batch statistics" if session.family.inference_batch_stats else "running statistics")}


def graph_paths(out: str | Path, names: list[str]) -> dict[str, Path]:
    """Where each graph goes: ``out`` itself for one graph, else ``STEM.NAME.onnx`` beside it."""
    out = Path(out)
    if len(names) == 1:
        return {names[0]: out}
    stem = out.name[: -len(".onnx")] if out.name.endswith(".onnx") else out.name
    return {name: out.with_name(f"{stem}.{name}.onnx") for name in names}


def export_session(session: Any, out: str | Path, fmt: str = "onnx", graphs: tuple[str, ...] = ()) -> list[Path]:
    """Export the graphs of an :class:`~engine.infer.inference.InferenceSession` (all, or those named)."""
    if fmt not in EXPORT_FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}: expected {', '.join(EXPORT_FORMATS)}", value=fmt)
    available = session.export_graphs()
    names = [graph.name for graph in available]
    unknown = sorted(set(graphs) - set(names))
    if unknown:
        raise ConfigError(f"{session.card.family} models have the graphs {', '.join(names)} (got {', '.join(unknown)})")
    chosen = [graph for graph in available if not graphs or graph.name in graphs]
    paths = graph_paths(out, [graph.name for graph in chosen])
    metadata = session_metadata(session)
    return [export_onnx(graph, paths[graph.name], metadata) for graph in chosen]
