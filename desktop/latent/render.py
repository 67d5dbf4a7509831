"""What the latent editor's controls say, and rendering it (in the worker thread)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class EditState:
    """Everything the sliders say, read in the GUI thread and rendered in the worker thread.

    Layer ranges are half-open ``ws`` indices, as in the engine.
    """

    seed: int
    psi: float
    cutoff: int | None
    strengths: tuple[float, ...]
    edit_layers: tuple[int, int]
    mix_seed: int | None
    mix_layers: tuple[int, int]


@dataclass(frozen=True)
class Rendered:
    """One rendered image and the latent it came from (``ws`` and ``noise`` are engine tensors)."""

    image: np.ndarray
    ws: Any
    noise: Any
    state: EditState
    base: Any  # the Latent the edits started from (None: the seed)


def edited_ws(session: Any, state: EditState, base: Any, directions: Any) -> Any:
    """The ws (num_ws, w_dim) that ``state`` describes, starting from ``base`` (a Latent) or the seed."""
    ws = base.ws if base is not None else session.w_from_seed(state.seed)
    if state.psi != 1.0:
        ws = session.truncate(ws, state.psi, state.cutoff)
    if state.mix_seed is not None:
        ws = session.mix(ws, session.w_from_seed(state.mix_seed, state.psi, state.cutoff), state.mix_layers)
    if directions is not None:
        for vector, strength in zip(directions.vectors, state.strengths, strict=False):
            if strength:
                ws = session.apply_direction(ws, vector, strength, state.edit_layers)
    return ws


def render(session: Any, state: EditState, base: Any, directions: Any) -> Rendered:
    ws = edited_ws(session, state, base, directions)
    noise = base.noise if base is not None else None
    return Rendered(session.synthesize(ws, noise=noise)[0], ws, noise, state, base)


def interpolation_frames(session: Any, start: Rendered, seed_b: int, frames: int, loop: bool) -> list[np.ndarray]:
    """Frames from the shown latent to ``seed_b`` (with the same truncation); with ``loop`` back again."""
    state = start.state
    end = session.w_from_seed(seed_b, state.psi, state.cutoff)
    images = list(session.synthesize(session.interpolate([start.ws, end], frames), noise=start.noise))
    return images + images[-2:0:-1] if loop else images
