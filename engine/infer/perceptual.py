"""LPIPS for projection, from weight files the user supplies (Ganvas downloads nothing).

* Backbone: a VGG16 state dict, e.g. torchvision's ``vgg16-397923af.pth`` (ImageNet). Its ``features.*``
  tensors are used, the classifier is ignored; a bare ``features`` state dict (``0.weight`` ...) works too.
* Linear weights (optional): the LPIPS authors' ``vgg.pth`` (keys ``lin0.model.1.weight`` ... ``lin4``), which
  turns plain deep-feature distance into the calibrated LPIPS. Without it every channel weighs 1.

Both are read with ``torch.load(weights_only=True)`` (or as ``.safetensors``); no code in them runs.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from engine.core.checkpoint import load_pth_state_dict, load_weights
from engine.core.errors import CheckpointError
from models.lpips import LPIPS, TAP_CHANNELS


def _read_tensors(path: str | Path) -> dict[str, torch.Tensor]:
    path = Path(path)
    if path.suffix != ".safetensors":
        return load_pth_state_dict(path)
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if not path.is_file():
        raise CheckpointError("file not found", path=path)
    try:
        return load_file(path)
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"not a readable safetensors file ({exc})", path=path) from exc


def backbone_state(state: dict[str, torch.Tensor], path: str | Path) -> dict[str, torch.Tensor]:
    """The VGG16 ``features`` tensors of a state dict, keyed ``N.weight`` / ``N.bias``.

    Raises:
        CheckpointError: no convolution tensors in either layout (the file is named).
    """
    features = {k.removeprefix("features."): v for k, v in state.items() if k.startswith("features.")}
    if not features:
        features = {k: v for k, v in state.items() if re.fullmatch(r"\d+\.(weight|bias)", k)}
    if not features:
        raise CheckpointError("holds no VGG16 'features.N.weight' tensors (expected e.g. torchvision's "
                              "vgg16-397923af.pth)", path=path)
    return features


def linear_weights(state: dict[str, torch.Tensor], path: str | Path) -> list[torch.Tensor]:
    """The five per-channel weight tensors ``lin0`` ... ``lin4`` of an LPIPS weight file, in order.

    Raises:
        CheckpointError: a layer is missing (the file is named).
    """
    found = {}
    for key, value in state.items():
        match = re.match(r"(?:.*\.)?lin(\d)\.", key)
        if match and key.endswith("weight"):
            found[int(match[1])] = value
    weights = []
    for index in range(len(TAP_CHANNELS)):
        if index not in found:
            raise CheckpointError(f"holds no LPIPS weight 'lin{index}.model.1.weight' (expected the LPIPS authors' "
                                  "vgg.pth)", path=path)
        weights.append(found[index])  # its width is checked by LPIPS.set_linear_weights
    return weights


def load_lpips(backbone: str | Path, linear: str | Path | None = None,
               device: str | torch.device = "cpu") -> LPIPS:
    """An :class:`~models.lpips.LPIPS` with the user's VGG16 backbone and, optionally, LPIPS linear weights.

    Raises:
        CheckpointError: a missing, unreadable or foreign file, named in the message.
    """
    metric = LPIPS()
    load_weights(metric.features, backbone_state(_read_tensors(backbone), backbone), "a VGG16 backbone", backbone)
    if linear is not None:
        try:
            metric.set_linear_weights(linear_weights(_read_tensors(linear), linear))
        except ValueError as exc:
            raise CheckpointError(str(exc), path=linear) from exc
    return metric.to(device)
