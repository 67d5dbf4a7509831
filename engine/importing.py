"""Import generator weights from a PyTorch ``.pth`` state dict into a Ganvas checkpoint.

Only tensors are read (``torch.load(weights_only=True)``); no code in the file runs. The pix2pix U-Net has
the same module nesting as the widely used reference implementation, so its ``latest_net_G.pth`` files load.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.checkpoint import flatten_state, load_pth_state_dict, load_weights, save_checkpoint
from engine.config import DataConfig, TrainConfig, to_dict
from engine.registry import get_family


def import_pth(pth: str | Path, family_name: str, config: Any, size: tuple[int, int], out: str | Path) -> Path:
    """Load ``pth`` into the family's generator built from ``config`` and save it as a checkpoint at ``out``."""
    family = get_family(family_name)
    state = load_pth_state_dict(pth)
    generator = family.build_generator(config)
    load_weights(generator, state, f"a {family_name} generator with this config", pth)
    meta = {"family": family_name, "model_config": to_dict(config),
            "train_config": to_dict(TrainConfig(size=size)), "data_config": to_dict(DataConfig()),
            "step": 1, "dataset": {"imported_from": Path(pth).name}}
    return save_checkpoint(out, flatten_state(f"net.{family.generator_key}", generator.state_dict()), meta)
