"""Frozen, validated, JSON-serialisable configs.

Each family has a frozen dataclass for its networks and shares :class:`TrainConfig` and :class:`DataConfig`.
Every field is declared with :func:`setting`, which keeps its help text with it (the CLI's ``--help`` and the app's
forms read it through :func:`field_help`). Fields are validated in ``__post_init__`` and the whole config travels
inside every checkpoint, so a checkpoint alone rebuilds its network.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Iterable
from typing import Any, TypeVar

from engine.core.errors import ConfigError

C = TypeVar("C")


def check(condition: bool, field: str, value: object, expected: str) -> None:
    """Raise :class:`ConfigError` naming ``field`` unless ``condition`` holds."""
    if not condition:
        raise ConfigError(f"invalid {field}={value!r}: expected {expected}", value=value)


def check_choice(field: str, value: object, choices: Iterable[object]) -> None:
    choices = tuple(choices)
    check(value in choices, field, value, "one of " + ", ".join(map(str, choices)))


def check_positive(field: str, value: float, *, allow_zero: bool = False) -> None:
    ok = value >= 0 if allow_zero else value > 0
    check(ok, field, value, "a number >= 0" if allow_zero else "a number > 0")


def setting(default: Any, help_text: str, *, follows_size: bool = False) -> Any:
    """A config field with its default and its help text (``metadata["help"]``), which the CLI's ``--help`` and
    the app's forms show (:func:`field_help`).

    ``follows_size`` marks a network's copy of the training size (:attr:`TrainConfig.size`, the one the user
    states): the family's ``auto_config`` fills it in, the CLI's flag for it is a deprecated alias of ``--size``
    and the app's form shows it without letting it be edited (:func:`size_fields`).
    """
    metadata = {"help": help_text, **({"follows_size": True} if follows_size else {})}
    return dataclasses.field(default=default, metadata=metadata)


def field_help(cls: type) -> dict[str, str]:
    """The help text of each field of a config dataclass (empty for a field declared without :func:`setting`)."""
    return {f.name: f.metadata.get("help", "") for f in dataclasses.fields(cls)}  # type: ignore[arg-type]


OPTIMIZER_FIELDS = ("lr_g", "lr_d", "betas")  # every family config's Adam settings (see check_optimizer)


def check_optimizer(config: Any) -> None:
    """Validate a family config's Adam settings, ``lr_g`` (generator side), ``lr_d`` (discriminator side) and
    ``betas`` (both sides), and store the betas as a tuple of floats (the CLI may parse ``0,0.9`` as ints)."""
    for name in ("lr_g", "lr_d"):
        value = getattr(config, name)
        check(isinstance(value, int | float) and math.isfinite(value) and value > 0, name, value,
              "a finite number > 0")
    betas = config.betas
    check(len(betas) == 2 and all(0 <= b < 1 for b in betas), "betas", betas, "two values in [0, 1)")
    object.__setattr__(config, "betas", tuple(float(b) for b in betas))


def upgrade_config_keys(meta: dict[str, Any]) -> dict[str, Any]:
    """``meta`` (a checkpoint header or a run spec) with configs stored before the families shared one
    vocabulary translated to today's fields; ``meta`` itself is left alone.

    Adam settings were ``train_config.lr``, ``beta1``, ``beta2`` (pix2pix, CycleGAN), ``model_config.lr_g``,
    ``lr_d``, ``adam_betas`` (SPADE) and ``model_config.learning_rate``, ``adam_betas`` (StyleGAN2); today every
    model config has ``lr_g``, ``lr_d`` and ``betas``. A model config's own settings win over the shared train
    fields, which SPADE and StyleGAN2 refused to take (so they held the defaults there).

    Example:
        >>> old = {"model_config": {"ngf": 8}, "train_config": {"steps": 4, "lr": 0.001, "beta1": 0.5, "beta2": 0.9}}
        >>> new = upgrade_config_keys(old)
        >>> new["model_config"], new["train_config"]
        ({'ngf': 8, 'lr_g': 0.001, 'lr_d': 0.001, 'betas': [0.5, 0.9]}, {'steps': 4})
    """
    model, train = meta.get("model_config"), meta.get("train_config")
    if not isinstance(model, dict):
        return meta
    model, train = dict(model), dict(train) if isinstance(train, dict) else None
    if "learning_rate" in model:
        lr = model.pop("learning_rate")
        model.setdefault("lr_g", lr)
        model.setdefault("lr_d", lr)
    if "adam_betas" in model:
        model.setdefault("betas", model.pop("adam_betas"))
    shared = {key: train.pop(key) for key in ("lr", "beta1", "beta2") if key in train} if train is not None else {}
    if "lr" in shared:
        model.setdefault("lr_g", shared["lr"])
        model.setdefault("lr_d", shared["lr"])
    if "beta1" in shared or "beta2" in shared:
        model.setdefault("betas", [shared.get("beta1", 0.5), shared.get("beta2", 0.999)])
    upgraded = {**meta, "model_config": model}
    return upgraded if train is None else {**upgraded, "train_config": train}


def size_fields(cls: type) -> tuple[str, ...]:
    """The fields of a config dataclass that copy the training size (declared with ``follows_size``)."""
    return tuple(f.name for f in dataclasses.fields(cls) if f.metadata.get("follows_size"))  # type: ignore[arg-type]


def _as_size(value: Any) -> tuple[int, int]:
    """A size copy as (H, W): an (H, W) tuple or list, or the side of a square."""
    return tuple(value) if isinstance(value, tuple | list) else (value, value)  # type: ignore[return-value]


def check_size_fields(config: Any, size: tuple[int, int]) -> None:
    """Refuse a model config whose copies of the training size (its ``follows_size`` fields: an (H, W) tuple or
    the side of a square) differ from ``size``."""
    for name in size_fields(type(config)):
        value = getattr(config, name)
        if _as_size(value) != tuple(size):
            raise ConfigError(f"model {name} {value} differs from --size {size[0]}x{size[1]}", value=value)


def with_size_fields(cls: type, size: tuple[int, int], overrides: dict[str, Any]) -> dict[str, Any]:
    """``overrides`` with ``cls``'s copies of the training size filled in from ``size`` (in the shape of each
    field's default); an override of such a field that differs from ``size`` is refused, naming its flag."""
    filled = dict(overrides)
    for f in dataclasses.fields(cls):
        if not f.metadata.get("follows_size"):
            continue
        if f.name in overrides and _as_size(overrides[f.name]) != tuple(size):
            raise ConfigError(f"--{f.name.replace('_', '-')} {overrides[f.name]} differs from --size "
                              f"{size[0]}x{size[1]}", value=overrides[f.name])
        filled[f.name] = tuple(size) if isinstance(f.default, tuple) else size[0]
    return filled


def to_dict(config: Any) -> dict[str, Any]:
    """A JSON-ready dict of a (possibly nested) config dataclass; tuples become lists."""
    return dataclasses.asdict(config)


def _coerce(tp: Any, value: Any) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp) and isinstance(value, dict):
        return from_dict(tp, value)
    if origin is tuple and isinstance(value, list | tuple):
        return tuple(value)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            if dataclasses.is_dataclass(arg) and isinstance(value, dict):
                return from_dict(arg, value)
            if typing.get_origin(arg) is tuple and isinstance(value, list):
                return tuple(value)
    return value


def _has_type(tp: Any, value: Any) -> bool:
    """Whether a JSON-decoded (and coerced) ``value`` fits the annotation ``tp``; unknown annotations pass."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return any(_has_type(arg, value) for arg in typing.get_args(tp))
    if tp is type(None):
        return value is None
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if tp is str:
        return isinstance(value, str)
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, tuple):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_has_type(args[0], item) for item in value)
        return len(args) == len(value) and all(_has_type(a, item) for a, item in zip(args, value, strict=True))
    if dataclasses.is_dataclass(tp):
        return isinstance(value, tp)  # type: ignore[arg-type]
    return True


def from_dict(cls: type[C], data: dict[str, Any]) -> C:
    """Rebuild a config dataclass from :func:`to_dict` output; unknown keys and values of the wrong type
    (a string step, a float channel count) are a :class:`ConfigError`."""
    if not isinstance(data, dict):
        raise ConfigError(f"{cls.__name__} expects a mapping, got {type(data).__name__}", value=data)
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{cls.__name__} has no field(s) {', '.join(unknown)}", value=unknown)
    kwargs = {key: _coerce(hints[key], value) for key, value in data.items()}
    for key, value in kwargs.items():
        if not _has_type(hints[key], value):
            raise ConfigError(f"{cls.__name__}.{key} has the wrong type ({value!r})", value=value)
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"{cls.__name__}: {exc}") from exc


def replace(config: C, **changes: Any) -> C:
    """``dataclasses.replace`` that re-validates and reports unknown fields as :class:`ConfigError`."""
    try:
        return dataclasses.replace(config, **changes)  # type: ignore[type-var]
    except TypeError as exc:
        raise ConfigError(str(exc)) from exc


def parse_size(text: str | int) -> tuple[int, int]:
    """Parse ``N`` or ``HxW`` into ``(height, width)``.

    Example:
        >>> parse_size("256"), parse_size("128x256")
        ((256, 256), (128, 256))
    """
    if isinstance(text, int):
        return (text, text)
    parts = str(text).lower().split("x")
    try:
        numbers = [int(p) for p in parts]
    except ValueError:
        raise ConfigError(f"invalid size {text!r}: expected N or HxW", value=text) from None
    if len(numbers) == 1:
        numbers *= 2
    check(len(numbers) == 2 and min(numbers) > 0, "size", text, "N or HxW with positive numbers")
    return numbers[0], numbers[1]


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """How a dataset folder is read and augmented.

    Field help lives with each field (``metadata["help"]``, see :func:`setting`).
    """

    path: str = setting("", "dataset folder.")
    layout: str = setting("auto", "``auto`` or one of the layouts a family accepts (``aligned``, ``paired``, "
                          "``unaligned``, ...).")
    direction: str = setting("AtoB", "``AtoB`` uses A as input and B as target; ``BtoA`` swaps them.")
    preprocess: str = setting("resize_and_crop", "``resize_and_crop`` (resize to load size, random crop), "
                              "``scale_width`` (scale so the width is the load width, keep aspect, random "
                              "crop) or ``none`` (use as is; sizes must fit the network).")
    load_size: tuple[int, int] | None = setting(None, "(height, width) before cropping; ``None`` means 1.117 "
                                                "x the crop size (286 for 256).")
    flip: bool = setting(True, "random horizontal flips, identical on input and target.")
    background: tuple[int, int, int] = setting((255, 255, 255), "RGB colour transparent pixels are "
                                               "composited onto.")
    cache: bool = setting(True, "keep decoded images in RAM when they fit in ``cache_limit_mb``.")
    cache_limit_mb: int = setting(4096, "RAM budget (MB) of ``cache``: a dataset whose decoded images need "
                                  "more is not cached (images are read from disk each time).")
    draw_as: str = setting("", "what the input side is, so the app's canvas draws it: ``label``, ``edges``, "
                           "``sketch`` or ``photo``; empty = the family's default (the training window fills "
                           "it in from the dataset check).")

    def __post_init__(self) -> None:
        check_choice("direction", self.direction, ("AtoB", "BtoA"))
        check_choice("draw_as", self.draw_as, ("", "label", "edges", "sketch", "photo"))
        check_choice("preprocess", self.preprocess, ("resize_and_crop", "scale_width", "none"))
        check(
            len(self.background) == 3 and all(0 <= int(c) <= 255 for c in self.background),
            "background", self.background, "three integers 0-255",
        )
        if self.load_size is not None:
            check(len(self.load_size) == 2 and min(self.load_size) > 0, "load_size", self.load_size,
                  "(height, width) with positive numbers")
        check_positive("cache_limit_mb", self.cache_limit_mb, allow_zero=True)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Options shared by every family's training loop.

    Field help lives with each field (``metadata["help"]``, see :func:`setting`).
    """

    steps: int = setting(1000, "total optimisation steps (one D and one G update each).")
    batch_size: int = setting(1, "images per step.")
    size: tuple[int, int] = setting((256, 256), "training crop (height, width).")
    decay_start: int | None = setting(None, "step from which the LR decays linearly to zero at ``steps``; "
                                      "``None`` means half way.")
    seed: int = setting(0, "seeds Python, NumPy, torch and the data sampler.")
    device: str = setting("auto", "``auto|cpu|cuda|cuda:N|mps``.")
    deterministic: bool = setting(False, "deterministic kernels (bit-for-bit resume on CPU).")
    amp: bool = setting(True, "mixed precision on CUDA: bf16 on GPUs that support it, else fp16 with a "
                        "gradient scaler (ignored elsewhere; on the CPU see ``cpu_bf16``).")
    cpu_bf16: bool = setting(False, "bf16 autocast when training on a CPU with bf16 units (AMX or AVX-512 BF16: "
                             "recent Xeons), about twice as fast a step there; ignored on other CPUs and "
                             "devices. Off by default: its effect on quality is not yet measured.")
    compile: str = setting("auto", "``torch.compile`` the generator (``auto`` = on CUDA only).")
    channels_last: bool = setting(True, "channels-last memory layout on CUDA (faster convolutions with "
                                  "tensor cores).")
    sync_batchnorm: bool = setting(False, "with several GPUs, batch norm normalises over the whole batch of "
                                   "all processes (SyncBatchNorm) instead of each process's share.")
    sample_every: int = setting(100, "write a sample grid every this many steps.")
    checkpoint_every: int = setting(200, "write a checkpoint every this many steps.")
    log_every: int = setting(1, "write the losses kept for each step to the log every this many steps (at "
                         "least 20 on a GPU: one host sync per write).")
    keep_last: int = setting(3, "step checkpoints kept besides ``latest``.")

    def __post_init__(self) -> None:
        check_positive("steps", self.steps)
        check_positive("batch_size", self.batch_size)
        check(len(self.size) == 2 and min(self.size) > 0, "size", self.size, "(height, width) > 0")
        if self.decay_start is not None:
            check(0 <= self.decay_start <= self.steps, "decay_start", self.decay_start, f"0..{self.steps}")
        check_choice("compile", self.compile, ("auto", "on", "off"))
        for name in ("sample_every", "checkpoint_every", "log_every", "keep_last"):
            check_positive(name, getattr(self, name))

    @property
    def decay_from(self) -> int:
        return self.steps // 2 if self.decay_start is None else self.decay_start
