"""FID and KID: distances between the Inception-v3 features of generated and real images.

Features are the 2048-d pool3 activations of the FID Inception-v3 (the TensorFlow ``inception-2015-12-05``
graph as ported by pytorch-fid, whose block definitions are used here), with weights from a file the user
supplies (Ganvas downloads nothing):

* ``pt_inception-2015-12-05-6726825d.pth`` from pytorch-fid's releases: the standard FID network; numbers are
  comparable with pytorch-fid and, closely, with the original TensorFlow code.
* torchvision's ``inception_v3_google-*.pth``: an ImageNet Inception-v3 with other weights and a slightly
  different structure. It runs, but its FID/KID are NOT comparable with published numbers.

Images are resized to 299x299 (bilinear) from [-1, 1], as pytorch-fid does. Files are read with
``torch.load(weights_only=True)``.

* FID (Heusel et al., 2017): ``|mu_1 - mu_2|^2 + Tr(S_1 + S_2 - 2 (S_1 S_2)^(1/2))`` of the feature Gaussians.
* KID (Binkowski et al., 2018): the unbiased estimate of the squared MMD with the cubic polynomial kernel
  ``k(x, y) = (x.y / d + 1)^3``, averaged over random subsets; its standard deviation over the subsets comes too.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from engine.core.checkpoint import load_pth_state_dict, load_weights
from engine.core.errors import CheckpointError, ConfigError

FID_WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"
FID_WEIGHTS_URL = "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/" + FID_WEIGHTS_FILE
FEATURES = 2048
InceptionKind = Literal["fid", "torchvision"]


def missing_weights_error() -> ConfigError:
    """The error for FID/KID without a weights file: which file to get, and from where."""
    return ConfigError(f"FID/KID need the FID Inception-v3 weights, which Ganvas does not download: get "
                       f"{FID_WEIGHTS_FILE} ({FID_WEIGHTS_URL}) and pass it with --inception FILE")


def build_inception(kind: InceptionKind = "fid") -> nn.Module:
    """An Inception-v3 with random weights: the FID variant (pytorch-fid's blocks) or torchvision's."""
    from pytorch_fid.inception import FIDInceptionA, FIDInceptionC, FIDInceptionE_1, FIDInceptionE_2
    from torchvision.models import inception_v3

    if kind == "torchvision":
        return inception_v3(weights=None, aux_logits=True, init_weights=False)
    net = inception_v3(weights=None, aux_logits=False, num_classes=1008, init_weights=False)
    # As pytorch_fid.inception.fid_inception_v3 builds it, without its download.
    net.Mixed_5b = FIDInceptionA(192, pool_features=32)
    net.Mixed_5c = FIDInceptionA(256, pool_features=64)
    net.Mixed_5d = FIDInceptionA(288, pool_features=64)
    net.Mixed_6b = FIDInceptionC(768, channels_7x7=128)
    net.Mixed_6c = FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6d = FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6e = FIDInceptionC(768, channels_7x7=192)
    net.Mixed_7b = FIDInceptionE_1(1280)
    net.Mixed_7c = FIDInceptionE_2(2048)
    return net


class InceptionFeatures(nn.Module):
    """(B, 3, H, W) images in [-1, 1] -> (B, 2048) pool3 features (pytorch-fid's ``InceptionV3`` block 3).

    Args:
        inception: a network from :func:`build_inception` (weights loaded or not).
        kind: which variant it is (reported with the numbers).
        resize: side the images are resized to (299 for real FID; tests use less, at least 75).
    """

    def __init__(self, inception: nn.Module, kind: InceptionKind = "fid", resize: int = 299) -> None:
        super().__init__()
        self.kind, self.resize = kind, resize
        self.blocks = nn.Sequential(
            inception.Conv2d_1a_3x3, inception.Conv2d_2a_3x3, inception.Conv2d_2b_3x3, nn.MaxPool2d(3, stride=2),
            inception.Conv2d_3b_1x1, inception.Conv2d_4a_3x3, nn.MaxPool2d(3, stride=2),
            inception.Mixed_5b, inception.Mixed_5c, inception.Mixed_5d, inception.Mixed_6a, inception.Mixed_6b,
            inception.Mixed_6c, inception.Mixed_6d, inception.Mixed_6e,
            inception.Mixed_7a, inception.Mixed_7b, inception.Mixed_7c, nn.AdaptiveAvgPool2d(1))
        self.eval().requires_grad_(False)

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"Inception features need (B, 3, H, W) RGB images, got {tuple(images.shape)}")
        x = F.interpolate(images.float(), size=(self.resize, self.resize), mode="bilinear", align_corners=False)
        return self.blocks(x).flatten(1)


def load_inception(path: str | Path, device: str | torch.device = "cpu") -> InceptionFeatures:
    """The feature network with the weights in ``path`` (pytorch-fid's FID weights or torchvision's).

    Raises:
        CheckpointError: unreadable, or not an Inception-v3 state dict (the file is named).
    """
    state = load_pth_state_dict(path)
    classes = state.get("fc.weight", torch.empty(0)).shape[:1]
    if classes == (1008,):
        kind: InceptionKind = "fid"
    elif classes == (1000,):
        kind = "torchvision"
    else:
        raise CheckpointError(f"not an Inception-v3 state dict (expected fc.weight of 1008 classes, as in "
                              f"{FID_WEIGHTS_FILE}, or torchvision's 1000)", path=path)
    network = build_inception(kind)
    load_weights(network, state, f"the {kind} Inception-v3", path)
    return InceptionFeatures(network, kind).to(device)


# --- statistics ----------------------------------------------------------------------------------------------


def gaussian_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (d,) and covariance (d, d) of (N, d) features (N >= 2)."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or len(features) < 2:
        raise ConfigError(f"FID needs at least 2 images per set, got {len(features)}", value=len(features))
    return features.mean(axis=0), np.cov(features, rowvar=False)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Frechet distance of two Gaussians (pytorch-fid's ``calculate_frechet_distance``)."""
    from pytorch_fid.fid_score import calculate_frechet_distance

    with warnings.catch_warnings():  # singular covariances (fewer images than dimensions) are handled there
        warnings.simplefilter("ignore")
        return float(calculate_frechet_distance(np.atleast_1d(mu1), np.atleast_2d(sigma1), np.atleast_1d(mu2),
                                                np.atleast_2d(sigma2)))


def fid(generated: np.ndarray, real: np.ndarray) -> float:
    """FID between two (N, d) feature sets."""
    return frechet_distance(*gaussian_stats(generated), *gaussian_stats(real))


def polynomial_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased squared MMD of two (m, d) and (n, d) samples with the kernel ``(x.y / d + 1)^3``."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    m, n, d = len(x), len(y), x.shape[1]
    if m < 2 or n < 2:
        raise ConfigError(f"KID needs at least 2 images per set, got {min(m, n)}", value=min(m, n))
    k_xx = (x @ x.T / d + 1) ** 3
    k_yy = (y @ y.T / d + 1) ** 3
    k_xy = (x @ y.T / d + 1) ** 3
    return float((k_xx.sum() - np.trace(k_xx)) / (m * (m - 1)) + (k_yy.sum() - np.trace(k_yy)) / (n * (n - 1))
                 - 2 * k_xy.mean())


@dataclass(frozen=True)
class KID:
    mean: float
    std: float
    subsets: int
    subset_size: int


def kid(generated: np.ndarray, real: np.ndarray, subsets: int = 100, subset_size: int = 1000, seed: int = 0) -> KID:
    """KID: :func:`polynomial_mmd2` over ``subsets`` random subsets of ``min(subset_size, N_gen, N_real)`` images
    of each set (drawn without replacement within a subset), mean and standard deviation."""
    size = min(subset_size, len(generated), len(real))
    rng = np.random.default_rng(seed)
    values = [polynomial_mmd2(generated[rng.choice(len(generated), size, replace=False)],
                              real[rng.choice(len(real), size, replace=False)]) for _ in range(subsets)]
    return KID(float(np.mean(values)), float(np.std(values)), subsets, size)
