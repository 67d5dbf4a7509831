"""The two kinds of session a family opens (:meth:`engine.families.base.Family.open_session`), as protocols.

A :class:`Translator` turns an image into an image (pix2pix, CycleGAN, SPADE); a :class:`LatentExplorer` generates
images from latents and edits them (StyleGAN2). Code that holds a session asks ``isinstance(session,
LatentExplorer)`` (the protocols are runtime-checkable) instead of probing for attributes. Importing this module
imports no torch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import numpy as np
    import torch

    from engine.infer.loading import ModelCard

# The latent tools' records (Latent, Directions, ProjectionProgress) belong to the family that owns a latent space
# (engine.families.stylegan2.latent); below the families they are opaque here.
Latent = Directions = ProjectionProgress = Any


@runtime_checkable
class Translator(Protocol):
    """An image-to-image model: ``translate(image) -> image``; thread-safe."""

    card: ModelCard
    device: torch.device
    backend: str
    backend_note: str

    @property
    def size(self) -> tuple[int, int]: ...

    @property
    def options(self) -> tuple[str, ...]:
        """The inference options (keywords of :meth:`translate`) this model takes."""

    def translate(self, image: np.ndarray, keep_size: bool = False, preview: bool = False,
                  **options: Any) -> np.ndarray: ...

    def preview_size(self, full: tuple[int, int]) -> tuple[int, int]: ...

    def use_backend(self, name: str, cache_dir: str | Path | None = None) -> str: ...


@runtime_checkable
class LatentExplorer(Protocol):
    """A generator of images from latents, with the latent tools (sampling, mixing, directions, projection)."""

    card: ModelCard
    device: torch.device
    meta: dict[str, Any]
    path: Path | None

    @property
    def num_ws(self) -> int: ...

    @property
    def w_dim(self) -> int: ...

    @property
    def z_dim(self) -> int: ...

    @property
    def resolution(self) -> int: ...

    def provenance(self) -> dict[str, Any]: ...

    def w_from_seed(self, seed: int, psi: float = 1.0, cutoff: int | None = None) -> torch.Tensor: ...

    def truncate(self, ws: torch.Tensor, psi: float, cutoff: int | None = None) -> torch.Tensor: ...

    def synthesize(self, ws: torch.Tensor, noise_mode: str = "const",
                   noise: Sequence[torch.Tensor] | None = None, batch_size: int = 16) -> np.ndarray: ...

    def mix(self, ws_a: torch.Tensor, ws_b: torch.Tensor, layers: tuple[int, int]) -> torch.Tensor: ...

    def interpolate(self, keys: Sequence[int | Latent | torch.Tensor], frames: int, space: str = "w",
                    psi: float = 1.0) -> torch.Tensor: ...

    def saved_or_new_directions(self, method: str, k: int = 8, samples: int = 10_000) -> Directions: ...

    def apply_direction(self, ws: torch.Tensor, direction: torch.Tensor, strength: float,
                        layers: tuple[int, int] | None = None) -> torch.Tensor: ...

    def project(self, image: np.ndarray, steps: int = 300, space: str = "w", lr: float = 0.1,
                optimize_noise: bool = True, noise_weight: float = 1e5, ssim_weight: float = 1.0,
                initial_noise: float = 0.05, should_stop: Callable[[], bool] | None = None,
                seed: int = 0, perceptual: torch.nn.Module | None = None,
                perceptual_weight: float = 1.0) -> Iterator[ProjectionProgress]: ...


ModelSession = Translator | LatentExplorer
