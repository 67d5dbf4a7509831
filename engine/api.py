"""The engine's public API: all the desktop app imports of the engine (import-linter holds it to that).

Importing this module imports no torch, so the window can appear first: what is cheap (errors, image files,
palettes, dataset checks, run logs, configs, project files) is imported here; what needs torch (models, devices,
families, training specs, label-map conversion, latent tools) is imported inside the function that needs it.
:func:`load_engine` does that import once, off the UI thread, and returns an :class:`Engine`, a typed handle on
what the app needs when a model is loaded.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.core.config import (
    OPTIMIZER_FIELDS,
    DataConfig,
    TrainConfig,
    field_help,
    from_dict,
    replace,
    size_fields,
    to_dict,
)
from engine.core.errors import ConfigError, GanvasError
from engine.core.family_spec import FamilyInfo, InferenceOption
from engine.core.imageio import list_images, read_image, write_image
from engine.core.project import PROJECT_SUFFIX, ModelReference, Project, load_project, save_project
from engine.core.run_log import (
    CONFIG_FILE,
    SAMPLE_NAME,
    bucket_means,
    checkpoint_header,
    disk_usage,
    latest_sample_path,
    read_log,
    read_run_config,
    sample_path,
    sample_steps,
    smoothed,
)
from engine.data.dataset_builder import (
    CANNY_DEFAULTS,
    XDOG_DEFAULTS,
    build_pairs,
    center_square,
    make_drawing,
)
from engine.data.dataset_check import DatasetReport, check_dataset, classify_drawing, palette_mismatch
from engine.data.palette import Palette, PaletteClass, list_palettes
from engine.infer.sessions import LatentExplorer, ModelSession, Translator
from engine.train.train_process import command as training_command

if TYPE_CHECKING:
    import torch

    from engine.core.bundled import BundledModel
    from engine.data.labels import ConvertReport, SnapReport
    from engine.families.stylegan2.latent import Latent
    from engine.infer.canvas_input import CanvasImage
    from engine.infer.loading import ModelCard
    from engine.train.finetune import SourceInfo
    from engine.train.training import RunSpec

__all__ = [
    "CANNY_DEFAULTS", "CONFIG_FILE", "PROJECT_SUFFIX", "SAMPLE_NAME", "XDOG_DEFAULTS", "ConfigError", "DataConfig",
    "DatasetReport", "Engine", "FamilyConfigs", "FamilyInfo", "GanvasError", "InferenceOption", "LatentExplorer",
    "ModelReference", "ModelSession", "Palette", "PaletteClass", "Project", "TrainConfig", "Translator",
    "bucket_means", "build_pairs", "center_square", "check_dataset", "checkpoint_header", "classify_drawing",
    "convert_color_maps", "cpu_has_bf16", "cuda_available", "cuda_device_count", "describe_retune", "device_name", "disk_usage",
    "OPTIMIZER_FIELDS", "extract_palette", "family_configs", "family_info", "family_names", "field_help", "from_dict",
    "fit_palette_to_data", "index_to_color", "replace", "size_fields",
    "init_spec_key", "inspect_init_source", "latest_sample_path", "layer_groups", "layer_resolution", "list_bundled",
    "latent_arrays", "latent_from_arrays", "list_images", "list_palettes", "load_engine", "load_latent", "load_lpips",
    "load_palette", "load_project",
    "make_drawing", "model_card", "new_latent", "open_model", "palette_mismatch", "prepare_canvas_image", "read_checkpoint_metadata",
    "read_image", "read_log", "read_run_config", "run_cli", "run_spec_from_json", "sample_path", "sample_steps",
    "save_latent", "save_project", "smoothed", "snap_to_palette", "to_dict", "training_command", "untrained_model",
    "upscale", "write_animation", "write_image",
]


# --- models ------------------------------------------------------------------------------------------------
def open_model(source: str | Path, device: str = "auto", backend: str = "torch") -> ModelSession:
    """Open a checkpoint file, run folder, bundled model name or reference run: a :class:`Translator` (image to
    image) or a :class:`LatentExplorer` (StyleGAN2), as its family opens it. Slow: call it off the UI thread."""
    from engine.infer.loading import open_model as open_loaded

    return open_loaded(source, device, backend)


def untrained_model(family: str, size: tuple[int, int] | None = None, device: str = "auto",
                    **config: Any) -> ModelSession:
    """A family's network with random weights, made of ``config`` fields; with none, the small network the family
    declares (``FamilyInfo.untrained_config``), quick on a CPU, to try the controls before training."""
    from engine.infer.loading import untrained_model as open_untrained

    return open_untrained(family, size, device, **(config or family_info(family).untrained_config))


def model_card(path: str | Path) -> ModelCard:
    """A checkpoint's card (family, input kind, size, steps, config...) from its header alone."""
    from engine.infer.loading import model_card as read_card

    return read_card(path)


def upscale(output: np.ndarray, drawing: np.ndarray | None, factor: int) -> np.ndarray:
    """A model's output at ``factor`` (1, 2, 4) x its size, following the drawing's edges where given."""
    from engine.infer.inference import upscale as enlarge

    return enlarge(output, drawing, factor)


def list_bundled() -> list[BundledModel]:
    """The models shipped in ``assets/models`` (name, title, path, family, card, or why one is damaged)."""
    from engine.core.bundled import list_bundled as bundled

    return bundled()


def read_checkpoint_metadata(path: str | Path) -> dict[str, Any]:
    """A checkpoint's JSON header (its family, configs, step...)."""
    from engine.core.checkpoint import read_metadata

    return read_metadata(path)


# --- families ----------------------------------------------------------------------------------------------
def family_names() -> list[str]:
    """The registered families, sorted."""
    from engine.core.registry import list_families

    return list_families()


def family_info(name: str) -> FamilyInfo:
    """What family ``name`` declares (layouts, untrained config, inference options, canvas hints)."""
    from engine.core.registry import get_family

    return get_family(name).info()


@dataclass(frozen=True)
class FamilyConfigs:
    """A family's config as the training forms edit it."""

    name: str
    config_cls: type
    retunable: tuple[str, ...]
    _auto_config: Callable[[tuple[int, int], dict[str, Any]], Any]
    recipes: dict[str, dict[str, Any]] = field(default_factory=dict)  # named recipes besides the defaults

    def auto_config(self, size: tuple[int, int], overrides: dict[str, Any]) -> Any:
        """The config for a training size with the user's overrides (fields a family derives from the size)."""
        return self._auto_config(size, overrides)


def family_configs(name: str) -> FamilyConfigs:
    """Family ``name``'s config class, retunable fields and size-derived defaults."""
    from engine.core.registry import get_family

    family = get_family(name)
    recipes = {recipe: family.recipe(recipe) for recipe in family.recipes}
    return FamilyConfigs(name, family.config_cls, tuple(family.retunable), family.auto_config, recipes)


# --- devices -----------------------------------------------------------------------------------------------
def device_name(spec: str) -> str:
    """What ``spec`` (auto/cpu/cuda/mps) resolves to here, or the error message."""
    from engine.core.device import resolve_device

    try:
        return str(resolve_device(spec))
    except GanvasError as exc:
        return str(exc)


def cpu_has_bf16() -> bool:
    """Whether this CPU has bf16 units, so training may use ``cpu_bf16`` (AMX or AVX-512 BF16)."""
    from engine.core.device import cpu_has_bf16 as has_bf16

    return has_bf16()


def cuda_available() -> bool:
    """Whether ``auto`` resolves to a CUDA GPU here."""
    from engine.core.device import resolve_device

    try:
        return resolve_device("auto").type == "cuda"
    except GanvasError:
        return False


def cuda_device_count() -> int:
    from engine.core.device import cuda_device_count as count

    return count()


# --- training ----------------------------------------------------------------------------------------------
def run_spec_from_json(meta: dict[str, Any]) -> RunSpec:
    """The run spec (family, configs, retunes) stored in a checkpoint header or run config."""
    from engine.train.training import RunSpec

    return RunSpec.from_json(meta)


def describe_retune(entry: dict[str, Any]) -> str:
    """One line for a retune recorded in a run spec."""
    from engine.train.training import describe_retune as describe

    return describe(entry)


def inspect_init_source(source: str | Path) -> SourceInfo:
    """Check that ``source`` (checkpoint, run folder or bundled name) can start a fine-tuning run (headers only)."""
    from engine.train.finetune import inspect_source

    return inspect_source(source)


def fit_palette_to_data(family_name: str, config: Any, draw_as: str) -> Any:
    """A fine-tuned model's config for data whose input side is ``draw_as`` (an image model that drew label maps
    and now learns from edges, sketches or photos no longer draws in its palette)."""
    from engine.train.finetune import fit_palette_to_data as fit

    return fit(family_name, config, draw_as)


def init_spec_key() -> str:
    """The run-spec key naming the model a fine-tuning run starts from."""
    from engine.train.finetune import SPEC_KEY

    return SPEC_KEY


def run_cli(argv: Sequence[str] | None = None) -> int:
    """``ganvas COMMAND ...``: the command line; returns the exit code."""
    from engine.cli.main import main

    return main(None if argv is None else list(argv))


# --- palettes and label maps -------------------------------------------------------------------------------
def load_palette(name: str) -> Palette:
    """A bundled palette by name, or a palette JSON file."""
    return Palette.load(name)


def snap_to_palette(rgb: np.ndarray, palette: Palette, path: str | Path | None = None) -> tuple[np.ndarray, SnapReport]:
    """A colour label map as class ids (unknown colours to the nearest), with a report of the colours that are not
    in ``palette``."""
    from engine.data.labels import snap_to_palette as snap

    return snap(rgb, palette, strict=False, path=path)


def index_to_color(index: np.ndarray, palette: Palette) -> np.ndarray:
    """Class ids -> the palette's colours (RGB uint8)."""
    from engine.data.labels import index_to_color as colour

    return colour(index, palette)


def extract_palette(folder: str | Path, **options: Any) -> Palette:
    """The colours of a folder of label maps, as a palette (see :func:`engine.data.labels.extract_palette`)."""
    from engine.data.labels import extract_palette as extract

    return extract(folder, **options)


def convert_color_maps(src: str | Path, dst: str | Path, palette: Palette, **options: Any) -> ConvertReport:
    """Colour label maps -> index maps in ``palette`` (see :func:`engine.data.labels.convert_color_maps`)."""
    from engine.data.labels import convert_color_maps as convert

    return convert(src, dst, palette, **options)


def prepare_canvas_image(rgb: np.ndarray, mode: str, palette_colors: Sequence[Sequence[int]] = (),
                         palette_name: str = "canvas", palette_names: Sequence[str] = ()) -> CanvasImage:
    """An imported image made into what a canvas of ``mode`` (label, edges, sketch, photo) draws; label canvases
    report the colours that are not in the palette."""
    from engine.infer.canvas_input import prepare_canvas_image as prepare

    return prepare(rgb, mode, palette_colors, palette_name, palette_names=palette_names)


# --- latent tools (StyleGAN2) ------------------------------------------------------------------------------
def layer_groups(num_ws: int) -> dict[str, tuple[int, int]]:
    """Named half-open layer ranges (coarse, middle, fine) of a generator with ``num_ws`` style vectors."""
    from engine.families.stylegan2.latent import layer_groups as groups

    return groups(num_ws)


def layer_resolution(index: int, num_ws: int) -> int:
    """The image resolution style vector ``index`` acts on."""
    from engine.families.stylegan2.latent import layer_resolution as resolution

    return resolution(index, num_ws)


def new_latent(ws: torch.Tensor, space: str = "w+", seed: int | None = None, psi: float | None = None,
               noise: list[torch.Tensor] | None = None, provenance: dict[str, Any] | None = None) -> Latent:
    """A latent record (what :func:`save_latent` writes)."""
    from engine.families.stylegan2.latent import Latent

    return Latent(ws, space, seed, psi, noise, provenance or {})


def save_latent(path: str | Path, latent: Latent) -> Path:
    from engine.families.stylegan2.latent import save_latent as save

    return save(path, latent)


def load_latent(path: str | Path, num_ws: int | None = None, w_dim: int | None = None) -> Latent:
    from engine.families.stylegan2.latent import load_latent as load

    return load(path, num_ws, w_dim)


def latent_arrays(latent: Latent) -> dict[str, np.ndarray]:
    """A latent as named arrays (``ws``, ``noise_<i>``), e.g. for a project file."""
    from engine.families.stylegan2.latent import latent_arrays as arrays

    return arrays(latent)


def latent_from_arrays(arrays: dict[str, np.ndarray], num_ws: int | None = None, w_dim: int | None = None,
                       path: str | Path | None = None) -> Latent:
    """The W+ latent of :func:`latent_arrays`' arrays, checked against a generator's ``num_ws``/``w_dim``."""
    from engine.families.stylegan2.latent import latent_from_arrays as from_arrays

    return from_arrays(arrays, None, num_ws, w_dim, path)


def write_animation(path: str | Path, frames: Sequence[np.ndarray] | np.ndarray, fps: float = 12.0) -> Path:
    """Frames (RGB uint8) as a GIF or video, by the file's suffix."""
    from engine.families.stylegan2.latent import write_animation as write

    return write(path, frames, fps)


def load_lpips(backbone: str) -> torch.nn.Module:
    """The LPIPS perceptual distance on ``backbone`` (its weights are the user's)."""
    from engine.infer.perceptual import load_lpips as load

    return load(backbone)


# --- the loaded engine -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Engine:
    """The engine, imported (torch included): the families and bundled models, read once, and what a window
    does with models. Made by :func:`load_engine` off the UI thread and handed to the GUI thread."""

    families: tuple[FamilyInfo, ...]
    bundled: tuple[BundledModel, ...] = ()

    def family(self, name: str) -> FamilyInfo | None:
        return next((f for f in self.families if f.name == name), None)

    @staticmethod
    def device_name(spec: str) -> str:
        return device_name(spec)

    @staticmethod
    def open_model(source: str | Path, device: str = "auto", backend: str = "torch") -> ModelSession:
        return open_model(source, device, backend)

    @staticmethod
    def untrained_model(family: str, size: tuple[int, int] | None = None, device: str = "auto",
                        **config: Any) -> ModelSession:
        return untrained_model(family, size, device, **config)

    @staticmethod
    def upscale(output: np.ndarray, drawing: np.ndarray | None, factor: int) -> np.ndarray:
        return upscale(output, drawing, factor)

    @staticmethod
    def read_image(path: str | Path) -> np.ndarray:
        return read_image(path)

    @staticmethod
    def write_image(path: str | Path, rgb: np.ndarray) -> Path:
        return write_image(path, rgb)

    @staticmethod
    def prepare_canvas_image(rgb: np.ndarray, mode: str, palette_colors: Sequence[Sequence[int]] = (),
                             palette_name: str = "canvas", palette_names: Sequence[str] = ()) -> CanvasImage:
        return prepare_canvas_image(rgb, mode, palette_colors, palette_name, palette_names)

    @staticmethod
    def load_palette(name: str) -> Palette:
        return load_palette(name)


def load_engine(threads: int = 0) -> Engine:
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
    import engine.infer.inference  # noqa: F401  (torch and the sessions, imported here rather than at first use)

    families = tuple(family_info(name) for name in family_names())
    return Engine(families, tuple(list_bundled()))
