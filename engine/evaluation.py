"""``ganvas eval``: image metrics of a checkpoint's generator over a dataset split."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from engine.augment import to_unit_range
from engine.checkpoint import read_metadata
from engine.config import DataConfig, from_dict, replace
from engine.datasets import PairedImages
from engine.inference import InferenceSession
from engine.metrics import image_metrics


def evaluate_paired(session: InferenceSession, data: DataConfig, split_dir: Path, limit: int | None = None,
                    batch_size: int = 4) -> dict[str, Any]:
    """Mean L1 / PSNR / SSIM of ``session`` on the (input, target) pairs of ``split_dir`` at the model's size."""
    size = session.size
    data = replace(data, preprocess="resize_and_crop", load_size=size, flip=False, cache=False)
    pairs = PairedImages(split_dir, data, size)
    count = len(pairs) if limit is None else min(limit, len(pairs))
    totals: dict[str, float] = {}
    in_channels = 3
    for start in range(0, count, batch_size):
        batch = to_unit_range(torch.stack([pairs[i] for i in range(start, min(count, start + batch_size))]))
        output = session.translate_tensor(batch[:, :in_channels])
        for name, values in image_metrics(output.cpu(), batch[:, in_channels:]).items():
            totals[name] = totals.get(name, 0.0) + float(values.sum())
    return {"images": count, **{name: total / count for name, total in totals.items()}}


def evaluate_checkpoint(checkpoint: str | Path, data_path: str | Path, split: str = "val",
                        limit: int | None = None, device: str = "auto", untrained: bool = False) -> dict[str, Any]:
    """Evaluate a checkpoint (or, with ``untrained``, a fresh network of its config) on a split."""
    meta = read_metadata(checkpoint)
    if untrained:
        size = tuple(meta["train_config"]["size"])
        session = InferenceSession.untrained(meta["family"], size=size, device=device, **meta["model_config"])
    else:
        session = InferenceSession.from_checkpoint(checkpoint, device=device)
    data = replace(from_dict(DataConfig, meta["data_config"]), path=str(data_path))
    result = session.family.evaluate(session, data, session.family.resolve_split(data_path, split), limit)
    return {"family": meta["family"], "step": 0 if untrained else int(meta.get("step", 0)), "split": split,
            **result}
