"""What a family declares about itself, in plain data the GUI can read without importing torch."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

OptionKind = Literal["choice", "int", "float", "image"]


@dataclass(frozen=True)
class InferenceOption:
    """A keyword a family's inference takes (``session.translate(image, **{name: value})``).

    Attributes:
        name: the keyword.
        kind: ``choice`` (one of ``choices``), ``int``, ``float`` or ``image`` (an RGB uint8 array).
        help: one line for people.
        default: the value used when the option is not given.
        choices: the allowed values of a ``choice``.
    """

    name: str
    kind: OptionKind
    help: str
    default: Any = None
    choices: tuple[Any, ...] = ()


@dataclass(frozen=True)
class FamilyInfo:
    """A registered family as the CLI and the GUI see it (no classes, no torch).

    Attributes:
        name, description: as registered.
        input_kind: what the canvas draws: ``image``, ``labels`` or ``latent``.
        canvas_mode: what the canvas draws for an image-input model by default (``edges``, ``photo``...).
        keeps_input_size: inference answers at the input's size (fully convolutional) instead of the training size.
        layouts: the dataset layouts it trains on (:mod:`engine.data.dataset_check`'s names).
        untrained_config: config fields of a small untrained network, to try the controls quickly.
        inference_options: the options its inference takes (some only with some configs; see
            :meth:`engine.families.base.Family.model_options`).
    """

    name: str
    description: str
    input_kind: str
    canvas_mode: str = "edges"
    keeps_input_size: bool = False
    layouts: tuple[str, ...] = ()
    untrained_config: dict[str, Any] = field(default_factory=dict)
    inference_options: tuple[InferenceOption, ...] = ()
