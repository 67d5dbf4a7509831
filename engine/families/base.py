"""What every model family provides to the shared training loop, the CLI and the GUI.

A family is a config class, :meth:`Family.build_generator`, :meth:`Family.make_trainer` and
:meth:`Family.open_session` (a :class:`~engine.infer.sessions.Translator` or a
:class:`~engine.infer.sessions.LatentExplorer`), plus what it declares about itself (:meth:`Family.info`: dataset
layouts, a small untrained config, inference options, canvas hints). The hooks sessions, previews, compiled
backends and evaluation call are grouped in small classes a family overrides where it differs.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from engine.core.config import DataConfig, TrainConfig
from engine.core.errors import ConfigError
from engine.core.family_spec import FamilyInfo, InferenceOption
from engine.infer.eval_batch import EvalBatch
from engine.infer.inference import InferenceSession
from engine.infer.loading import LoadedNetwork
from engine.train.trainer import Trainer

if TYPE_CHECKING:
    from engine.infer.sessions import ModelSession


class InferenceHooks:
    """How a session turns inputs into outputs with the family's inference network."""

    name: ClassVar[str]
    config_cls: ClassVar[type]
    generator_key: ClassVar[str] = "G"
    resize_to_native: ClassVar[bool] = True  # inference resizes inputs to the training size
    inference_batch_stats: ClassVar[bool] = True  # batch norm at inference: the input's statistics (else running)
    inference_options: ClassVar[tuple[InferenceOption, ...]] = ()  # keywords of infer(), declared

    @classmethod
    def build_generator(cls, config: Any) -> nn.Module:
        raise NotImplementedError

    @classmethod
    def inference_network(cls, config: Any) -> nn.Module:
        """The module an inference session holds (by default the generator)."""
        return cls.build_generator(config)

    @classmethod
    def inference_weights(cls, checkpoint: Any) -> dict[str, torch.Tensor]:
        """The state dict of :meth:`inference_network` taken from a loaded checkpoint."""
        return checkpoint.group(f"net.{cls.generator_key}")

    @classmethod
    def prepare_input(cls, image: np.ndarray, card: Any) -> torch.Tensor:
        """An input image as the batch :meth:`infer` takes: by default RGB uint8 (H, W, 3) -> (1, 3, H, W) in
        [-1, 1], resized to the card's training size when ``resize_to_native``. Label-map families snap colours
        to their palette here instead."""
        from engine.data.augment import to_minus_one_one
        from engine.data.datasets import resize_rgb

        resized = resize_rgb(image, *card.size) if cls.resize_to_native else image
        return to_minus_one_one(torch.from_numpy(np.ascontiguousarray(resized)).permute(2, 0, 1)[None])

    @classmethod
    def infer(cls, network: nn.Module, batch: torch.Tensor, **options: Any) -> torch.Tensor:
        """Run the inference network on (B, C, H, W) in [-1, 1]; families add options (direction, style...)."""
        cls.check_options(options)
        return network(batch)

    @classmethod
    def check_options(cls, options: dict[str, Any]) -> None:
        """Refuse options the family does not declare in :attr:`inference_options`, and values outside a declared
        option's choices."""
        declared = {option.name: option for option in cls.inference_options}
        unknown = [name for name in options if name not in declared]
        if unknown:
            takes = f"takes the options {', '.join(declared)}" if declared else "takes no inference options"
            raise ConfigError(f"{cls.name} {takes} (got {', '.join(unknown)})")
        for name, value in options.items():
            choices = declared[name].choices
            if choices and value not in choices:
                raise ConfigError(f"invalid {name} {value!r}: expected {' or '.join(map(str, choices))}", value=value)

    @classmethod
    def model_options(cls, model_config: dict[str, Any]) -> tuple[str, ...]:
        """The inference options a model with this config takes; by default all of :attr:`inference_options`."""
        return tuple(option.name for option in cls.inference_options)

    @classmethod
    def example_input(cls, config: Any, size: tuple[int, int], batch_size: int = 1) -> torch.Tensor:
        """A random generator input of the given size (for benchmarks, backends and tests)."""
        return torch.rand(batch_size, getattr(config, "in_channels", 3), *size) * 2 - 1


class PreviewHooks:
    """Live previews: a coarse pass on a smaller input while the user draws."""

    preview_guided: ClassVar[bool] = True  # previews upsample following the input's edges (it must be an image)

    @classmethod
    def preview_multiple(cls, network: nn.Module) -> int:
        """Input sizes a coarse preview pass (:meth:`infer_preview`) accepts are multiples of this; 0 means the
        family has no preview pass and live previews run at full size."""
        return 0

    @classmethod
    def preview_input(cls, batch: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """``batch`` shrunk to ``size`` for :meth:`infer_preview`: area averaging (images), unless the family's
        inputs are ids that must not be averaged."""
        return F.interpolate(batch, size=size, mode="area")

    @classmethod
    def infer_preview(cls, network: nn.Module, batch: torch.Tensor, state: dict[str, Any], refresh: bool,
                      **options: Any) -> torch.Tensor:
        """A pass on a batch smaller than the native size (a multiple of :meth:`preview_multiple`).

        ``state`` persists between the previews of one session; a family may keep slowly changing features
        there and reuse them unless ``refresh`` is set.
        """
        return cls.infer(network, batch, **options)  # type: ignore[attr-defined]


class ExportHooks:
    """Compiled backends and ONNX export (engine.infer.graphs, engine.infer.backends, engine.infer.export)."""

    @classmethod
    def export_graphs(cls, network: nn.Module, card: Any) -> list[Any]:
        """The inference network as :class:`~engine.infer.graphs.ExportGraph` s computing what ``infer`` does.

        By default one graph ``generator``: image (B, C, H, W) in [-1, 1] -> image, with batch, height and width
        dynamic; batch norm follows ``inference_batch_stats``.
        """
        from engine.core.config import from_dict
        from engine.infer.graphs import ExportGraph, inference_copy

        family: Any = cls
        example = family.example_input(from_dict(family.config_cls, card.config), card.size, batch_size=2)
        stride = getattr(network, "stride", 1)
        notes = {"input": "image (B, C, H, W) in [-1, 1]" + (f"; H and W multiples of {stride}" if stride > 1 else ""),
                 "output": "image (B, C, H, W) in [-1, 1]"}
        return [ExportGraph("generator", inference_copy(network, family.inference_batch_stats), (example,),
                            ("input",), ("output",), {"input": (0, 2, 3)}, notes)]

    @classmethod
    def infer_graphs(cls, run: Any, network: nn.Module, batch: torch.Tensor, **options: Any) -> torch.Tensor:
        """What ``infer`` computes, through the compiled graphs of :meth:`export_graphs`:
        ``run(name, *inputs)`` runs graph ``name``. Raises :class:`~engine.infer.graphs.GraphsUnsupported` for an
        option the graphs cannot express (the session then runs torch for that call)."""
        cls.check_options(options)  # type: ignore[attr-defined]
        return run("generator", batch)


class EvaluationHooks:
    """``ganvas evaluate``: where a split lies, paired metrics, and the images FID/KID/LPIPS compare."""

    paired_metrics: ClassVar[bool] = True  # evaluate() compares outputs with targets (False: noise -> images)

    @classmethod
    def resolve_split(cls, data_path: str | Path, split: str) -> Any:
        """Where ``split`` of a dataset lies; passed to :meth:`evaluate` as ``split_dir`` (default: a folder)."""
        from engine.data.datasets import split_folder

        return split_folder(data_path, split)

    @classmethod
    def evaluate(cls, session: Any, data: DataConfig, split_dir: Path, limit: int | None) -> dict[str, Any]:
        """Metrics over a dataset split (default: L1/PSNR/SSIM against paired targets)."""
        from engine.infer.evaluation import evaluate_paired

        return evaluate_paired(session, data, split_dir, limit)

    @classmethod
    def eval_batches(cls, session: Any, data: DataConfig, split_dir: Any, limit: int | None,
                     samples: int) -> Iterator[EvalBatch]:
        """Generated and real images for FID/KID, LPIPS and the results page (default: paired inputs, outputs and
        targets of ``split_dir``). ``samples`` is for families that generate from noise."""
        from engine.infer.evaluation import paired_batches

        yield from paired_batches(session, data, split_dir, limit)


class Family(InferenceHooks, PreviewHooks, ExportHooks, EvaluationHooks):
    """A registered model family: its config class, how to build its networks, its trainer and its sessions.

    Subclasses set ``config_cls`` (a frozen dataclass) and what they declare (``input_kind``, ``layouts``,
    ``untrained_config``, ``inference_options``, ``default_canvas_mode``), and implement :meth:`build_generator`,
    :meth:`make_trainer` and :meth:`write_synthetic_dataset`; image-to-image families keep the default
    :meth:`open_session`.
    """

    description: ClassVar[str] = ""
    input_kind: ClassVar[str] = "image"  # what the app's canvas draws: image, labels or latent
    default_canvas_mode: ClassVar[str] = "edges"  # what the app's canvas draws for image-input models
    layouts: ClassVar[tuple[str, ...]] = ()  # dataset layouts it trains on (engine.data.dataset_check)
    untrained_config: ClassVar[dict[str, Any]] = {}  # a small network, quick on a CPU, to try the controls
    # Config fields a resumed run may change (loss weights and the like, never shapes): see check_retune.
    retunable: ClassVar[tuple[str, ...]] = ()
    # Named recipes besides the default (the config's own defaults): model-config values ``--recipe NAME`` sets,
    # e.g. pix2pix's ``reference``, the paper's settings that the defaults improve on (docs/recipes.md).
    recipes: ClassVar[dict[str, dict[str, Any]]] = {}

    @classmethod
    def recipe(cls, name: str) -> dict[str, Any]:
        """The model-config values of recipe ``name`` (``default``: none, the config's defaults)."""
        if name == "default":
            return {}
        if name not in cls.recipes:
            known = ", ".join(["default", *sorted(cls.recipes)])
            raise ConfigError(f"{cls.name} has no recipe {name!r}; known: {known}", value=name)
        return dict(cls.recipes[name])

    @classmethod
    def info(cls) -> FamilyInfo:
        """What the family declares, as plain data."""
        return FamilyInfo(cls.name, cls.description, cls.input_kind, cls.default_canvas_mode,
                          not cls.resize_to_native, cls.layouts, dict(cls.untrained_config), cls.inference_options)

    # --- training --------------------------------------------------------------------------------------------
    @classmethod
    def make_trainer(cls, config: Any, train: TrainConfig, data: DataConfig, device: torch.device) -> Trainer:
        raise NotImplementedError

    @classmethod
    def auto_config(cls, size: tuple[int, int], overrides: dict[str, Any]) -> Any:
        """The config for a training size with the user's overrides (families may derive fields from size)."""
        return cls.config_cls(**overrides)

    @classmethod
    def check_retune(cls, old: Any, new: Any) -> None:
        """Raise :class:`ConfigError` if a resumed run cannot go from config ``old`` to ``new`` (both differ
        only in :attr:`retunable` fields); by default every such change is allowed."""

    @classmethod
    def write_synthetic_dataset(cls, folder: Path, size: tuple[int, int], count: int = 8) -> Path:
        """Write a small random dataset in this family's layout (for benchmarks); returns the data path."""
        raise NotImplementedError

    # --- sessions --------------------------------------------------------------------------------------------
    @classmethod
    def native_size(cls, config: Any) -> tuple[int, int] | None:
        """The input size a config fixes by itself (None: the size the model was trained at)."""
        return None

    @classmethod
    def open_session(cls, loaded: LoadedNetwork, device: str = "auto", backend: str = "torch") -> ModelSession:
        """The session of a loaded network (:mod:`engine.infer.loading`): by default an image-to-image
        :class:`~engine.infer.inference.InferenceSession` (a :class:`~engine.infer.sessions.Translator`)."""
        return InferenceSession.from_network(loaded, device, backend)
