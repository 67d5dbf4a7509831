"""``ganvas eval``: metrics of a checkpoint's generator over a dataset split.

* pixel metrics (L1 / PSNR / SSIM, CycleGAN's cycle L1) from each family's ``evaluate``;
* FID and KID (:mod:`engine.infer.fid`) of generated against real images, and LPIPS of outputs against their
  targets (:mod:`engine.infer.perceptual`), over the family's :meth:`~engine.families.base.Family.eval_batches`;
* a static results page of input | output | target rows (:mod:`engine.infer.results_page`).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine.core.config import DataConfig, from_dict, replace
from engine.core.errors import ConfigError
from engine.data.augment import to_minus_one_one
from engine.data.datasets import PairedImages
from engine.infer.eval_batch import EvalBatch
from engine.infer.inference import InferenceSession
from engine.infer.metrics import image_metrics


def paired_batches(session: InferenceSession, data: DataConfig, split_dir: Path, limit: int | None = None,
                   batch_size: int = 4) -> Iterator[EvalBatch]:
    """Inputs, outputs and targets of the (input, target) pairs of ``split_dir`` at the model's size."""
    size = session.size
    data = replace(data, preprocess="resize_and_crop", load_size=size, flip=False, cache=False)
    pairs = PairedImages(split_dir, data, size)
    count = len(pairs) if limit is None else min(limit, len(pairs))
    in_channels = 3
    for start in range(0, count, batch_size):
        batch = to_minus_one_one(torch.stack([pairs[i] for i in range(start, min(count, start + batch_size))]))
        inputs = batch[:, :in_channels]
        yield EvalBatch(session.translate_tensor(inputs).cpu(), batch[:, in_channels:], inputs)


def evaluate_paired(session: InferenceSession, data: DataConfig, split_dir: Path, limit: int | None = None,
                    batch_size: int = 4) -> dict[str, Any]:
    """Mean L1 / PSNR / SSIM of ``session`` on the (input, target) pairs of ``split_dir`` at the model's size."""
    return pixel_metrics(paired_batches(session, data, split_dir, limit, batch_size))


def pixel_metrics(batches: Iterator[EvalBatch]) -> dict[str, Any]:
    """Mean L1 / PSNR / SSIM of outputs against their paired targets over ``batches``."""
    totals: dict[str, float] = {}
    count = 0
    for batch in batches:
        count += len(batch.outputs)
        for name, values in image_metrics(batch.outputs, batch.targets).items():
            totals[name] = totals.get(name, 0.0) + float(values.sum())
    return {"images": count, **{name: total / max(1, count) for name, total in totals.items()}}


@dataclass(frozen=True)
class EvalExtras:
    """What ``ganvas eval`` computes besides the family's pixel metrics.

    Attributes:
        fid: compute FID and KID (needs ``inception`` or ``features``).
        inception: Inception-v3 weights file (see :mod:`engine.infer.fid`).
        samples: generated images for families that sample from noise (StyleGAN2); 50k is the standard.
        kid_subsets, kid_subset_size: KID's subsets (100 of 1000 images is the usual choice).
        lpips: VGG16 backbone weights for LPIPS of outputs against paired targets; ``lpips_linear`` the
            LPIPS authors' ``vgg.pth`` (without it channels weigh 1: a plain deep-feature distance).
        html: folder to write the results page to; ``html_rows`` rows at most.
    """

    fid: bool = False
    inception: str | None = None
    samples: int = 50_000
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    lpips: str | None = None
    lpips_linear: str | None = None
    html: str | None = None
    html_rows: int = 50

    def __post_init__(self) -> None:
        for name, least in (("samples", 2), ("kid_subsets", 1), ("kid_subset_size", 2), ("html_rows", 1)):
            if getattr(self, name) < least:
                raise ConfigError(f"{name} must be at least {least}, got {getattr(self, name)}",
                                  value=getattr(self, name))

    @property
    def wanted(self) -> bool:
        return self.fid or self.inception is not None or self.lpips is not None or self.html is not None


def evaluate_checkpoint(checkpoint: str | Path, data_path: str | Path, split: str = "val",
                        limit: int | None = None, device: str = "auto", untrained: bool = False,
                        extras: EvalExtras | None = None, features: torch.nn.Module | None = None) -> dict[str, Any]:
    """Evaluate a checkpoint (or, with ``untrained``, a fresh network of its config) on a split.

    ``features`` replaces the Inception network built from ``extras.inception`` (tests pass a random one).
    """
    from engine.infer.importing import open_metadata

    extras = extras or EvalExtras()
    meta = open_metadata(checkpoint)
    if untrained:
        size = tuple(meta["train_config"]["size"])
        session = InferenceSession.untrained(meta["family"], size=size, device=device, **meta["model_config"])
    else:
        session = InferenceSession.from_checkpoint(checkpoint, device=device)
    family = session.family
    data = replace(from_dict(DataConfig, meta["data_config"]), path=str(data_path))
    split_dir = family.resolve_split(data_path, split)
    result: dict[str, Any] = {"family": meta["family"], "step": 0 if untrained else int(meta.get("step", 0)),
                              "split": split}
    if family.paired_metrics:
        result.update(family.evaluate(session, data, split_dir, limit))
    elif not extras.wanted:
        raise ConfigError(f"{family.name} has no paired targets to compare with: ask for --fid (generated samples "
                          "against the training images)")
    if extras.wanted:
        title = f"Ganvas results: {Path(checkpoint).name} ({meta['family']}) on {Path(data_path).name}, {split}"
        result.update(_distribution_metrics(session, data, split_dir, limit, extras, features, result, title))
    return result


def _distribution_metrics(session: InferenceSession, data: DataConfig, split_dir: Any, limit: int | None,
                          extras: EvalExtras, features: torch.nn.Module | None,
                          so_far: dict[str, Any], title: str) -> dict[str, Any]:
    """FID / KID / LPIPS over the family's eval batches, and the results page; timed."""
    from engine.infer.fid import fid as frechet
    from engine.infer.fid import kid, load_inception, missing_weights_error

    start = time.perf_counter()
    if (extras.fid or extras.inception) and features is None:
        if extras.inception is None:
            raise missing_weights_error()
        features = load_inception(extras.inception, session.device)
    lpips = None
    if extras.lpips is not None:
        from engine.infer.perceptual import load_lpips

        lpips = load_lpips(extras.lpips, extras.lpips_linear, session.device)
    page = None
    if extras.html is not None:
        from engine.infer.results_page import ResultsPage

        page = ResultsPage(extras.html, max_rows=extras.html_rows)
    generated: dict[str, list[np.ndarray]] = defaultdict(list)
    real: dict[str, list[np.ndarray]] = defaultdict(list)
    lpips_sum, lpips_count = 0.0, 0
    for batch in session.family.eval_batches(session, data, split_dir, limit, extras.samples):
        if features is not None:
            for store, images in ((generated, batch.outputs), (real, batch.targets)):
                if images is not None:
                    store[batch.group].append(features(images.to(session.device)).cpu().double().numpy())
        if lpips is not None and batch.paired and batch.outputs is not None and batch.targets is not None:
            with torch.no_grad():
                distances = lpips(batch.outputs.to(session.device).float(), batch.targets.to(session.device).float())
            lpips_sum, lpips_count = lpips_sum + float(distances.sum()), lpips_count + len(distances)
        if page is not None:
            page.add(batch)
    result: dict[str, Any] = {}
    if features is not None:
        for group in sorted(set(generated) | set(real)):
            prefix = f"{group}_" if group else ""
            ours, theirs = np.concatenate(generated[group]), np.concatenate(real[group])
            result[f"{prefix}FID"] = frechet(ours, theirs)
            kernel = kid(ours, theirs, extras.kid_subsets, extras.kid_subset_size)
            result[f"{prefix}KID"], result[f"{prefix}KID_std"] = kernel.mean, kernel.std
            result[f"{prefix}FID_images"] = f"{len(ours)} generated, {len(theirs)} real"
            if min(len(ours), len(theirs)) <= ours.shape[1]:
                result["FID_note"] = (f"fewer images than feature dimensions ({ours.shape[1]}): FID is biased high; "
                                      "compare only at equal image counts (KID is unbiased)")
        result["inception"] = getattr(features, "kind", "custom")
        if result["inception"] == "torchvision":
            result["inception_note"] = "torchvision weights: not comparable with published FID/KID"
    if lpips is not None:
        if lpips_count == 0:
            raise ConfigError(f"{session.family.name} outputs have no paired targets: LPIPS does not apply")
        result["LPIPS"] = lpips_sum / lpips_count
        result["LPIPS_kind"] = "lpips" if extras.lpips_linear else "vgg features (no linear weights)"
    result["metrics_seconds"] = round(time.perf_counter() - start, 1)
    if page is not None:
        result["html"] = str(page.write({**so_far, **result}, title))
    return result
