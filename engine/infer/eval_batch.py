"""What a family hands to evaluation: generated and real images for FID/KID, LPIPS and the results page."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class EvalBatch:
    """Images in [-1, 1] for distribution metrics and the results page.

    Attributes:
        outputs: generated images (B, 3, H, W), or None.
        targets: real images of the output domain, or None; paired with ``outputs`` row by row when ``paired``.
        inputs: what the outputs were made from, shown on the results page (None for noise).
        group: which comparison the batch belongs to (CycleGAN: ``AtoB`` / ``BtoA``; empty otherwise).
        paired: ``targets[i]`` is the ground truth of ``outputs[i]`` (LPIPS compares them).
    """

    outputs: torch.Tensor | None
    targets: torch.Tensor | None
    inputs: torch.Tensor | None = None
    group: str = ""
    paired: bool = True
