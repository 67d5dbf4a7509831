"""Inference sessions: a generator rebuilt from a checkpoint alone, ready to translate images."""

from __future__ import annotations

import copy
import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from engine.core.device import resolve_device
from engine.core.errors import ConfigError
from engine.core.registry import get_family
from engine.data.augment import from_minus_one_one
from engine.infer.guided_upsample import guided_upsample
from engine.infer.loading import (
    LoadedNetwork,
    ModelCard,
    card_from_meta,
    load_network,
    model_card,
    untrained_network,
)
from engine.infer.mode import inference_mode

__all__ = ["EXPORT_SCALES", "InferenceSession", "ModelCard", "card_from_meta", "model_card", "upscale"]

_log = logging.getLogger("ganvas")


class InferenceSession:
    """Translate images with the generator of a checkpoint (or an untrained network of a family).

    Thread-safe: calls are serialised by a lock, so a GUI worker thread and the main thread may share it.

    Example:
        >>> session = InferenceSession.untrained("pix2pix", size=(64, 64), depth=6, ngf=8)
        >>> session.translate(np.zeros((64, 64, 3), np.uint8)).shape
        (64, 64, 3)
    """

    PREVIEW_SCALES = (1.0, 0.5, 0.25)
    GUIDED_MAX_PIXELS = 512 * 512  # edge-following upsampling of previews up to this size (1-2 ms at 128², 1 thread)
    PREVIEW_REFRESH_EVERY = 6  # previews reuse slowly changing features; every 6th (and a stroke's first) refreshes

    def __init__(self, generator: nn.Module, card: ModelCard, device: torch.device,
                 batch_stats: bool | None = None) -> None:
        self.generator = generator.to(device)
        self.card = card
        self.family = get_family(card.family)
        # Batch norm normalises with the input's statistics (True) or its running averages (False); the
        # family's default unless the checkpoint says (imported reference weights may ask for either).
        self.batch_stats = self.family.inference_batch_stats if batch_stats is None else batch_stats
        self.device = device
        self.backend = "torch"  # what full passes run on (see use_backend)
        self.backend_note = ""  # one line on the last backend choice (a fallback says why)
        self._compiled: Any = None  # engine.infer.backends.CompiledGraphs when the backend is not torch
        self.preview_budget_ms = 25.0  # a preview pass aims to take at most this long
        self._lock = threading.Lock()
        self._pass_ms: dict[tuple[int, int, bool], float] = {}  # ms per (H, W, refreshed) pass
        self._preview_state: dict[str, Any] = {}  # what the family keeps between previews
        self._previews_since_full = 0

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str = "auto", backend: str = "torch") -> InferenceSession:
        """Rebuild the network from the checkpoint's own config and load its weights
        (:func:`engine.infer.loading.load_network`); full passes run on ``backend`` (see :meth:`use_backend`).

        Any family's checkpoint opens here (StyleGAN2's translates latents to images); the app and the CLI's
        ``translate`` open models through :func:`engine.infer.loading.open_model`, which asks the family.
        """
        return cls.from_network(load_network(path), device, backend)

    @classmethod
    def from_network(cls, loaded: LoadedNetwork, device: str = "auto", backend: str = "torch") -> InferenceSession:
        """A session around a loaded (or untrained) network: the default of ``Family.open_session``."""
        session = cls(loaded.network, loaded.card, resolve_device(device), batch_stats=loaded.batch_stats)
        if backend != "torch":
            session.use_backend(backend)
        return session

    @classmethod
    def untrained(cls, family_name: str, size: tuple[int, int] = (256, 256), device: str = "auto",
                  **config: Any) -> InferenceSession:
        """A clearly labelled untrained model so every control can be exercised before training."""
        return cls.from_network(untrained_network(family_name, size, **config), device)

    @property
    def size(self) -> tuple[int, int]:
        return self.card.size

    @property
    def options(self) -> tuple[str, ...]:
        """The inference options (keywords of :meth:`translate`) this model takes."""
        return tuple(self.family.model_options(self.card.config))

    # --- backends -------------------------------------------------------------------------------------------
    def export_graphs(self) -> list[Any]:
        """The family's :class:`~engine.infer.graphs.ExportGraph` s of this session's network (on the CPU)."""
        network = self.generator if self.device.type == "cpu" else copy.deepcopy(self.generator).cpu()
        return self.family.export_graphs(network, self.card)

    def use_backend(self, name: str, cache_dir: str | Path | None = None,
                    calibration: Sequence[np.ndarray | torch.Tensor] = ()) -> str:
        """Run full passes on backend ``name`` (``torch``, ``onnxruntime``, ``openvino``, or ``auto``: the fastest
        of those installed, timed on this model at its native size). Compiles now (or loads the compiled
        model from the cache). A backend that cannot run the model leaves the session on torch; the returned
        line (also :attr:`backend_note`, and logged) says which backend runs and why.

        ``openvino-int8`` (opt-in, never chosen by ``auto``) quantizes the graphs on ``calibration``: inputs of
        the model's own kind, as :meth:`translate` (RGB uint8 images) or :meth:`translate_tensor` takes them.
        ``openvino-bf16`` runs on CPUs with bf16 units only; ``auto`` times it there too, unless its output on the
        example input is further than ``AUTO_MIN_PSNR`` from torch's.
        """
        from engine.infer import metrics
        from engine.infer.backends import (
            AUTO_MIN_PSNR,
            BF16,
            INT8,
            BackendError,
            CompiledGraphs,
            available_backends,
            check_backend,
            model_key,
            native_bf16,
        )

        check_backend(name)
        if name != "torch" and self.device.type != "cpu":
            return self._set_backend("torch", None, f"backend torch ({name} runs on the CPU; this model is on "
                                                    f"{self.device.type})")
        if name == "torch":
            return self._set_backend("torch", None, "backend torch")
        cache = Path(cache_dir) if cache_dir else None
        key = model_key(self.card.family, self.card.config, self.generator)
        candidates = [name]
        if name == "auto":
            candidates = [b for b in available_backends() if b != "torch"]
            candidates += [BF16] if "openvino" in candidates and native_bf16() else []
        timings: dict[str, float] = {"torch": self._time_full_pass(None)} if name == "auto" else {}
        reference = self._example_pass(None) if BF16 in candidates and name == "auto" else None
        compiled: dict[str, Any] = {}
        failures: dict[str, str] = {}
        for backend in candidates:
            try:
                extra = {"calibration": self._graph_inputs(calibration, key, cache)} if backend == INT8 else {}
                graphs = CompiledGraphs(self.export_graphs(), backend, key, cache, **extra)
                if reference is not None and backend == BF16:
                    psnr = float(metrics.psnr(self._example_pass(graphs), reference).min())
                    if psnr < AUTO_MIN_PSNR:
                        failures[backend] = f"its output is {psnr:.1f} dB from torch's (auto needs {AUTO_MIN_PSNR:.0f})"
                        continue
                timings[backend] = self._time_full_pass(graphs)
                compiled[backend] = graphs
            except (BackendError, RuntimeError, ValueError) as exc:
                failures[backend] = str(exc)
        if name != "auto":
            if failures:
                return self._set_backend("torch", None, f"backend {name} failed, using torch ({failures[name]})",
                                         warn=True)
            return self._set_backend(name, compiled[name], f"backend {name}")
        best = min(timings, key=timings.__getitem__)
        measured = ", ".join(f"{b} {ms:.0f} ms" for b, ms in sorted(timings.items(), key=lambda item: item[1]))
        return self._set_backend(best, compiled.get(best), f"backend {best} (auto: {measured})"
                                 + "".join(f"; {backend} failed: {why}" for backend, why in failures.items()))

    def _graph_inputs(self, inputs: Sequence[np.ndarray | torch.Tensor], key: str,
                      cache: Path | None) -> dict[str, list[list[np.ndarray]]]:
        """Per graph, the input arrays of each call a full pass of ``inputs`` makes (fp32 OpenVINO graphs)."""
        from engine.infer.backends import CompiledGraphs, GraphRecorder

        recorder = GraphRecorder(CompiledGraphs(self.export_graphs(), "openvino", key, cache))
        for item in inputs:
            batch = self.family.prepare_input(item, self.card) if isinstance(item, np.ndarray) else item
            with self._lock, inference_mode(self.generator, self.batch_stats):
                self._run_full(recorder, batch)
        return recorder.calls

    def _set_backend(self, name: str, compiled: Any, note: str, warn: bool = False) -> str:
        with self._lock:
            self.backend, self._compiled, self.backend_note = name, compiled, note
            self._pass_ms.clear()  # the cost of a pass changed
        (_log.warning if warn else _log.info)("%s: %s", Path(self.card.path).name if self.card.path else
                                              self.card.family, note)
        return note

    def _example(self) -> torch.Tensor:
        """The family's example input at the native size, the same on every call (its random draws seeded)."""
        from engine.core.config import from_dict

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            return self.family.example_input(from_dict(self.family.config_cls, self.card.config), self.size)

    def _example_pass(self, compiled: Any) -> torch.Tensor:
        """The output of one full pass on the family's example input with ``compiled`` graphs (torch when None)."""
        with self._lock, inference_mode(self.generator, self.family.inference_batch_stats):
            return self._run_full(compiled, self._example()).detach().float().cpu()

    def _time_full_pass(self, compiled: Any, repeats: int = 3) -> float:
        """Median ms of a full pass at the native size with ``compiled`` graphs (torch when None)."""
        example = self._example()
        times = []
        for index in range(repeats + 1):
            with self._lock, inference_mode(self.generator, self.family.inference_batch_stats):
                start = time.perf_counter()
                self._run_full(compiled, example)
                if index:  # the first pass compiles and warms up
                    times.append((time.perf_counter() - start) * 1000.0)
        return sorted(times)[len(times) // 2]

    def _run_full(self, compiled: Any, batch: torch.Tensor, **options: Any) -> torch.Tensor:
        """A full pass on ``compiled`` graphs, or on the torch network when None (or for an option the graphs
        cannot express)."""
        from engine.infer.graphs import GraphsUnsupported

        if compiled is not None:
            try:
                return self.family.infer_graphs(compiled, self.generator, batch.cpu(), **options)
            except GraphsUnsupported:
                pass
        return self.family.infer(self.generator, batch.to(self.device), **options)

    def translate_tensor(self, batch: torch.Tensor, **options: Any) -> torch.Tensor:
        """(B, C, H, W) in [-1, 1] at a size the network accepts -> (B, C', H, W) in [-1, 1].

        ``options`` are the family's (e.g. ``direction`` for CycleGAN).
        """
        self._previews_since_full = 0
        return self._timed_pass(lambda _network, x, **kw: self._run_full(self._compiled, x, **kw), batch, **options)

    def preview_tensor(self, batch: torch.Tensor, **options: Any) -> torch.Tensor:
        """Like :meth:`translate_tensor`, but fast enough for live feedback: the pass runs at the largest of
        :attr:`PREVIEW_SCALES` expected to take at most :attr:`preview_budget_ms` (judged from the passes this
        session has timed) and is upsampled back; the family may reuse slowly changing features between
        previews, refreshed every :attr:`PREVIEW_REFRESH_EVERY` passes and after a full pass. For image inputs the
        coarse output is enlarged to twice its size along the edges of the input
        (:func:`~engine.infer.guided_upsample.guided_upsample`, up to :attr:`GUIDED_MAX_PIXELS`), then bilinearly.
        Families without a preview pass run at full size.
        """
        full = (batch.shape[-2], batch.shape[-1])
        size = self.preview_size(full)
        if size == full:
            return self.translate_tensor(batch, **options)
        small = self.family.preview_input(batch, size)
        refresh = self._previews_since_full % self.PREVIEW_REFRESH_EVERY == 0
        self._previews_since_full += 1
        output = self._timed_pass(self.family.infer_preview, small, refreshed=refresh, state=self._preview_state,
                                  refresh=refresh, **options)
        # Edges are restored up to twice the preview's size (the cost grows with the pixels filled in), the
        # rest of the way is bilinear.
        guided = (min(full[0], 2 * size[0]), min(full[1], 2 * size[1]))
        if self.family.preview_guided and guided[0] * guided[1] <= self.GUIDED_MAX_PIXELS:
            output = guided_upsample(output, small, batch, size=guided).clamp(-1, 1)
            if guided == full:
                return output
        return F.interpolate(output, size=full, mode="bilinear", align_corners=False)

    def preview_size(self, full: tuple[int, int]) -> tuple[int, int]:
        """The input size a preview of a ``full``-sized input runs at (see :meth:`preview_tensor`)."""
        multiple = self.family.preview_multiple(self.generator)
        if not multiple:
            return full
        candidates = []
        for scale in self.PREVIEW_SCALES:
            size = tuple(max(multiple, round(side * scale / multiple) * multiple) for side in full)
            if size not in candidates:
                candidates.append(size)
        for size in candidates:
            estimate = self._estimate_ms(size, full)
            if estimate is None or estimate <= self.preview_budget_ms:
                return size  # a size not yet timed is tried, to learn its cost
        return candidates[-1]

    def _estimate_ms(self, size: tuple[int, int], full: tuple[int, int]) -> float | None:
        """Expected time of a pass at ``size``: measured, scaled from the nearest measured size, or None when
        it should be timed first (one kind of pass timed at ``size`` but not the other)."""
        refresh, reuse = self._pass_ms.get((*size, True)), self._pass_ms.get((*size, False))
        if size == full or (refresh is not None and reuse is not None):
            return self._measured_ms(size, full)
        if refresh is not None or reuse is not None:
            return None
        timed = {key[:2] for key in self._pass_ms}
        if not timed:
            return None
        nearest = min(timed, key=lambda s: abs(s[0] * s[1] - size[0] * size[1]))
        known = self._measured_ms(nearest, full)
        return None if known is None else known * size[0] * size[1] / (nearest[0] * nearest[1])

    def _measured_ms(self, size: tuple[int, int], full: tuple[int, int]) -> float | None:
        """The timed cost at ``size``: full passes as they are, previews averaged over refresh and reuse."""
        refresh, reuse = self._pass_ms.get((*size, True)), self._pass_ms.get((*size, False))
        if size == full or refresh is None or reuse is None:
            return refresh if refresh is not None else reuse
        n = self.PREVIEW_REFRESH_EVERY
        return (refresh + (n - 1) * reuse) / n

    def _timed_pass(self, run: Any, batch: torch.Tensor, refreshed: bool = True, **options: Any) -> torch.Tensor:
        """Run the network under the lock, timing it by input size and kind (``refreshed``: nothing reused)."""
        with self._lock, inference_mode(self.generator, self.batch_stats):
            start = time.perf_counter()
            output = run(self.generator, batch.to(self.device), **options).float()
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            elapsed = (time.perf_counter() - start) * 1000.0
            key = (batch.shape[-2], batch.shape[-1], refreshed)
            previous = self._pass_ms.get(key)
            self._pass_ms[key] = elapsed if previous is None else 0.7 * previous + 0.3 * elapsed
        return output

    def translate(self, image: np.ndarray, keep_size: bool = False, preview: bool = False,
                  **options: Any) -> np.ndarray:
        """RGB uint8 (H, W, 3) -> RGB uint8 (label-map families take a colour label map; see ``prepare_input``).

        Families trained at a fixed size (pix2pix) see the input resized to that size and answer at it (or back
        at the input size with ``keep_size``); fully convolutional ones (CycleGAN) keep the input size.
        ``preview`` trades detail for speed (see :meth:`preview_tensor`); the output size is the same.
        """
        from engine.data.datasets import resize_rgb

        batch = self.family.prepare_input(image, self.card)
        run = self.preview_tensor if preview else self.translate_tensor
        output = from_minus_one_one(run(batch, **options))[0].permute(1, 2, 0).cpu().numpy()
        if keep_size and output.shape[:2] != image.shape[:2]:
            output = resize_rgb(output, image.shape[0], image.shape[1])
        return output


EXPORT_SCALES = (1, 2, 4)


def upscale(output: np.ndarray, drawing: np.ndarray | None, factor: int) -> np.ndarray:
    """A model's output at ``factor`` x its size, for export: guided by the drawing it came from where that has
    hard boundaries to follow (label maps, edges: pass ``drawing``), else bicubic.

    Args:
        output: (h, w, 3) uint8 RGB, the model's answer.
        drawing: (H, W, 3) uint8 RGB input to follow, enlarged with nearest neighbours (its edges stay hard);
            None for plain bicubic enlargement.
        factor: 1, 2 or 4.
    """
    if factor not in EXPORT_SCALES:
        raise ConfigError(f"invalid export scale {factor}: expected one of {', '.join(map(str, EXPORT_SCALES))}",
                          value=factor)
    if factor == 1:
        return output
    import cv2

    height, width = output.shape[0] * factor, output.shape[1] * factor
    if drawing is None:
        return cv2.resize(output, (width, height), interpolation=cv2.INTER_CUBIC)

    def minus_one_one(rgb: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float() / 127.5 - 1

    small = cv2.resize(drawing, (output.shape[1], output.shape[0]), interpolation=cv2.INTER_AREA)
    full = cv2.resize(drawing, (width, height), interpolation=cv2.INTER_NEAREST)
    result = guided_upsample(minus_one_one(output), minus_one_one(small), minus_one_one(full), radius=1,
                             eps=1e-2).clamp(-1, 1)
    return ((result[0].permute(1, 2, 0).numpy() + 1) * 127.5 + 0.5).astype(np.uint8)
