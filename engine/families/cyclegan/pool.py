"""History buffer of generated images (Shrivastava et al., 2017), as used by CycleGAN's discriminators.

Showing the discriminator a mix of current and older fakes damps oscillation between the two players.
All randomness comes from a caller-supplied :class:`torch.Generator`, and the buffer is part of the
checkpoint (:meth:`ImagePool.state_dict`), so a resumed run draws exactly what an uninterrupted one would.
"""

from __future__ import annotations

import torch

from engine.core.errors import CheckpointError, ConfigError


class ImagePool:
    """Keeps up to ``size`` generated images and swaps them in for new ones at random.

    Args:
        size: capacity in images; 0 disables the pool (:meth:`query` returns its input).

    Example:
        >>> pool = ImagePool(size=2)
        >>> g = torch.Generator().manual_seed(0)
        >>> fakes = torch.zeros(2, 3, 4, 4)
        >>> pool.query(fakes, g) is not None, len(pool)
        (True, 2)
    """

    def __init__(self, size: int = 50) -> None:
        if size < 0:
            raise ConfigError(f"image pool size must be >= 0, got {size}", value=size)
        self.size = size
        self._images: list[torch.Tensor] = []

    def __len__(self) -> int:
        return len(self._images)

    def query(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Return a batch the shape of ``images`` (B, C, H, W), mixing in stored images once the pool is full.

        Per image: while the pool is not full, store it and return it; once full, with probability 1/2
        return a random stored image and store the new one in its place, else return the new one.
        Pass detached images (``fake.detach()``); the pool stores detached copies either way.
        """
        if self.size == 0:
            return images
        if images.dim() != 4:
            raise ValueError(f"expected a (B, C, H, W) batch, got shape {tuple(images.shape)}")
        if self._images and images.shape[1:] != self._images[0].shape:
            raise ValueError(
                f"pool holds images of shape {tuple(self._images[0].shape)}, got {tuple(images.shape[1:])}"
            )
        out = []
        for image in images:
            new = image.detach().clone()
            if len(self._images) < self.size:
                self._images.append(new)
                out.append(image)
                continue
            coin = torch.rand((), generator=generator, device=generator.device).item()
            if coin < 0.5:
                slot = int(torch.randint(self.size, (), generator=generator, device=generator.device).item())
                old = self._images[slot]
                self._images[slot] = new
                out.append(old.to(device=image.device, dtype=image.dtype))
            else:
                out.append(image)
        return torch.stack(out)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """``images`` (N, C, H, W) stacked on the CPU (N = 0 gives an empty (0,) tensor) and ``count`` (N)."""
        images = torch.stack([i.cpu() for i in self._images]) if self._images else torch.empty(0)
        return {"images": images, "count": torch.tensor(len(self._images), dtype=torch.int64)}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Restore what :meth:`state_dict` returned; the images stay on the CPU until returned by a query."""
        try:
            images, count = state["images"], int(state["count"])
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise CheckpointError(f"image pool state needs 'images' and 'count' ({exc})") from exc
        if count > self.size:
            raise CheckpointError(f"image pool state holds {count} images but the pool size is {self.size}",
                                  value=count)
        if count and (images.dim() != 4 or images.shape[0] != count):
            raise CheckpointError(
                f"image pool state has images of shape {tuple(images.shape)} for count {count}", value=count
            )
        self._images = [images[i].clone() for i in range(count)]
