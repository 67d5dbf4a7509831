"""Read run folders of the PyTorch pix2pix/CycleGAN reference implementation (junyanz/pytorch-CycleGAN-and-pix2pix).

A reference run folder holds ``train_opt.txt`` (every option of the run) and state dicts saved with
``torch.save(net.state_dict())``: ``latest_net_G.pth`` (+ ``latest_net_D.pth``) for pix2pix,
``latest_net_G_A.pth`` / ``latest_net_G_B.pth`` (+ ``latest_net_D_A.pth`` / ``latest_net_D_B.pth``) for CycleGAN.
Ganvas's U-Net, ResNet generator and PatchGAN have the reference's module nesting, so the tensors load under the
same names except for these differences, which :func:`to_ganvas_state` maps:

* residual blocks: ``conv_block`` there, ``body`` here;
* ``--norm none``: the reference's convolutions have no bias there, Ganvas's have one (set to zero: same output);
* instance norm buffers written by PyTorch < 0.4 (``running_mean`` ... of ``InstanceNorm2d``): dropped, as the
  reference's own loader does.

Only tensors are read (``torch.load(weights_only=True)``); nothing in the files runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from engine.core.checkpoint import load_pth_state_dict
from engine.core.errors import CheckpointError

OPTIONS_FILE = "train_opt.txt"
NORM_BUFFERS = ("running_mean", "running_var", "num_batches_tracked")
# Reference networks Ganvas has: netG name -> (Ganvas family, generator kind).
_NETG = re.compile(r"(unet)_(\d+)|(resnet)_(\d+)blocks")


def read_train_opt(path: str | Path) -> dict[str, str]:
    """The options recorded in a reference ``train_opt.txt`` as strings (``name: value  [default: ...]``).

    Raises:
        CheckpointError: the file is missing or holds no option lines.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise CheckpointError(f"cannot read the reference options ({exc.strerror})", path=path) from exc
    options = {}
    for line in text.splitlines():
        name, sep, rest = line.partition(":")
        if not sep or line.lstrip().startswith("-"):
            continue
        options[name.strip()] = rest.split("\t")[0].strip()
    if not options:
        raise CheckpointError("holds no options (expected lines such as 'netG: unet_256')", path=path)
    return options


@dataclass(frozen=True)
class ReferenceRun:
    """What a reference run folder (or a lone ``.pth``) holds: options and the state-dict files to import.

    Attributes:
        folder: the run folder.
        options: ``train_opt.txt`` as strings (empty for a lone ``.pth``: options are then read off the tensors).
        generators: Ganvas network name (``G``, ``G_AB``, ``G_BA``) -> ``.pth`` file.
        discriminators: Ganvas network name (``D``, ``D_A``, ``D_B``) -> ``.pth`` file (those present).
    """

    folder: Path
    options: dict[str, str]
    generators: dict[str, Path]
    discriminators: dict[str, Path] = field(default_factory=dict)

    @property
    def family(self) -> str:
        return "cyclegan" if "G_AB" in self.generators else "pix2pix"


def is_reference_source(path: str | Path) -> bool:
    """True for a ``.pth`` file or a folder with reference weights (``*_net_G*.pth``) in it."""
    path = Path(path)
    if path.is_dir():
        return any(path.glob("*_net_G*.pth"))
    return path.suffix.lower() in (".pth", ".pt")


def find_reference_run(path: str | Path, epoch: str = "latest") -> ReferenceRun:
    """The reference run at ``path``: a run folder, or one of its ``.pth`` files (the whole run is taken when
    ``train_opt.txt`` lies beside it; a lone ``.pth`` is taken alone).

    Args:
        path: run folder or ``.pth`` file.
        epoch: which saved weights of a folder: ``latest`` or an epoch number (``5`` -> ``5_net_G.pth``).

    Raises:
        CheckpointError: nothing to import, or a CycleGAN run with one generator missing (the file is named).
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError("not found", path=path)
    if path.is_file():
        options_file = path.parent / OPTIONS_FILE
        match = re.fullmatch(r"(.+)_net_(G|G_A|G_B|D|D_A|D_B)\.pth", path.name)
        if not options_file.is_file() or match is None:
            name = "G_AB" if path.name.endswith("_net_G_A.pth") else "G_BA" if path.name.endswith("_net_G_B.pth") else "G"
            return ReferenceRun(path.parent, {}, {name: path})
        path, epoch = path.parent, match.group(1)
    options_file = path / OPTIONS_FILE
    if not options_file.is_file():
        raise CheckpointError(f"no {OPTIONS_FILE} in this folder: not a reference run folder (pass a .pth file "
                              "to import one generator alone)", path=path)
    options = read_train_opt(options_file)

    def weights(suffix: str) -> Path | None:
        file = path / f"{epoch}_net_{suffix}.pth"
        return file if file.is_file() else None

    if weights("G_A") or weights("G_B"):
        generators = {"G_AB": weights("G_A"), "G_BA": weights("G_B")}
        missing = [f"{epoch}_net_{s}.pth" for s, f in (("G_A", generators["G_AB"]), ("G_B", generators["G_BA"]))
                   if f is None]
        if missing:
            raise CheckpointError(f"a CycleGAN run needs both generators; {', '.join(missing)} is missing", path=path)
        discriminators = {"D_A": weights("D_A"), "D_B": weights("D_B")}
    elif weights("G"):
        generators, discriminators = {"G": weights("G")}, {"D": weights("D")}
    else:
        found = sorted(p.name for p in path.glob("*_net_*.pth")) or ["no *_net_*.pth files"]
        raise CheckpointError(f"no {epoch}_net_G.pth or {epoch}_net_G_A.pth here (found: {', '.join(found[:6])})",
                              path=path)
    return ReferenceRun(path, options, {k: v for k, v in generators.items() if v is not None},
                        {k: v for k, v in discriminators.items() if v is not None})


def netg_kind(options: dict[str, str], source: Path) -> tuple[str, int]:
    """``("unet", depth)`` or ``("resnet", n_blocks)`` from the ``netG`` option."""
    name = options.get("netG", "")
    match = _NETG.fullmatch(name)
    if match is None:
        raise CheckpointError(f"netG {name!r} has no Ganvas counterpart (supported: unet_128, unet_256, "
                              "resnet_6blocks, resnet_9blocks and other unet_N / resnet_Nblocks)", path=source)
    if match.group(1):
        size = int(match.group(2))
        depth = size.bit_length() - 1
        if 2**depth != size:
            raise CheckpointError(f"netG {name!r}: the U-Net size must be a power of two", path=source)
        return "unet", depth
    return "resnet", int(match.group(4))


def options_from_state(state: dict[str, torch.Tensor], source: Path) -> dict[str, str]:
    """Reference options read off a generator's tensors (for a ``.pth`` without ``train_opt.txt``)."""
    def shape(key: str) -> tuple[int, ...]:
        return tuple(state[key].shape)

    has_running = any(k.endswith("running_mean") for k in state)
    if "model.model.0.weight" in state:  # U-Net: one down conv and one up conv per level
        convs = [k for k, v in state.items() if k.endswith("weight") and v.dim() == 4]
        depth = len(convs) // 2
        norm = "batch" if has_running else "instance" if "model.model.1.model.1.bias" in state else "none"
        out_channels = shape("model.model.3.weight")[1]
        return {"model": "pix2pix", "netG": f"unet_{2**depth}", "ngf": str(shape("model.model.0.weight")[0]),
                "input_nc": str(shape("model.model.0.weight")[1]), "output_nc": str(out_channels), "norm": norm,
                "no_dropout": "False", "crop_size": str(2**depth)}
    if "model.1.weight" in state and any(".conv_block." in k for k in state):
        blocks = {k.split(".")[1] for k in state if ".conv_block." in k}
        last = max((k for k, v in state.items() if v.dim() == 4), key=lambda k: int(k.split(".")[1]))
        norm = "batch" if has_running else "instance" if "model.1.bias" in state else "none"
        dropout = any(re.fullmatch(r"model\.\d+\.conv_block\.6\.weight", k) for k in state)
        return {"model": "cycle_gan", "netG": f"resnet_{len(blocks)}blocks", "ngf": str(shape("model.1.weight")[0]),
                "input_nc": str(shape("model.1.weight")[1]), "output_nc": str(shape(last)[0]), "norm": norm,
                "no_dropout": str(not dropout), "crop_size": "256"}
    raise CheckpointError("not a reference U-Net or ResNet generator (no model.model.0.weight or "
                          "model.N.conv_block.* tensors)", path=source)


def read_generator_states(run: ReferenceRun) -> dict[str, dict[str, torch.Tensor]]:
    """The generators' state dicts, read safely, keyed by Ganvas network name."""
    return {name: load_pth_state_dict(file) for name, file in run.generators.items()}


def to_ganvas_state(state: dict[str, torch.Tensor], target: torch.nn.Module, norm: str) -> dict[str, torch.Tensor]:
    """A reference state dict renamed and completed to load into ``target`` (see the module docstring).

    Keys that still do not fit are left for ``load_state_dict`` to report.
    """
    renamed = {key.replace(".conv_block.", ".body."): value for key, value in state.items()}
    expected = target.state_dict()
    if norm == "instance":  # PyTorch < 0.4 wrote instance-norm buffers the reference's loader drops
        renamed = {k: v for k, v in renamed.items() if k in expected or not k.endswith(NORM_BUFFERS)}
    if norm == "none":
        for key, value in expected.items():
            if key.endswith(".bias") and key not in renamed and key[: -len("bias")] + "weight" in renamed:
                renamed[key] = torch.zeros_like(value)
    return renamed


def option(options: dict[str, str], name: str, default: Any) -> Any:
    """``options[name]`` converted to the type of ``default`` (bool from ``True``/``False``)."""
    if name not in options or options[name] == "":
        return default
    text = options[name]
    if isinstance(default, bool):
        return text.lower() == "true"
    if isinstance(default, int):
        return int(float(text))
    if isinstance(default, float):
        return float(text)
    return text


# --- the official SPADE generator (NVlabs/SPADE) ---------------------------------------------------------------

_SPADE_BLOCKS = {"head_0": 0, "G_middle_0": 1, "G_middle_1": 2, "up_0": 3, "up_1": 4, "up_2": 5, "up_3": 6,
                 "up_4": 7}
_SPADE_PARTS = {"mlp_shared": "shared", "mlp_gamma": "gamma", "mlp_beta": "beta", "param_free_norm": "norm"}


def is_official_spade(state: dict[str, torch.Tensor]) -> bool:
    """True for a state dict of NVlabs/SPADE's ``SPADEGenerator`` (``head_0.*``, ``conv_img.*``)."""
    return any(k.startswith("head_0.") for k in state) and any(k.startswith("conv_img.") for k in state)


def official_spade_to_ganvas(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """NVlabs/SPADE generator tensors renamed for Ganvas's :class:`~models.spade.SPADEGenerator`.

    ``fc`` -> ``head``; ``head_0``, ``G_middle_0``, ``G_middle_1``, ``up_0`` ... ``up_4`` -> ``blocks.0`` ...
    ``blocks.7``; ``conv_img`` -> ``to_image``; inside SPADE layers ``mlp_shared`` / ``mlp_gamma`` / ``mlp_beta``
    / ``param_free_norm`` -> ``shared`` / ``gamma`` / ``beta`` / ``norm``; spectral norm of the old API
    (``weight_orig``, ``weight_u``, ``weight_v``) -> the parametrization's ``parametrizations.weight.original``,
    ``.0._u``, ``.0._v`` (the same values: the normalised weight is the same in eval mode).
    """
    renamed = {}
    for key, value in state.items():
        parts = key.split(".")
        if parts[0] == "fc":
            parts[0] = "head"
        elif parts[0] == "conv_img":
            parts[0] = "to_image"
        elif parts[0] in _SPADE_BLOCKS:
            parts[0:1] = ["blocks", str(_SPADE_BLOCKS[parts[0]])]
        parts = [_SPADE_PARTS.get(p, p) for p in parts]
        leaf = parts[-1]
        if leaf in ("weight_orig", "weight_u", "weight_v"):
            parts[-1:] = ["parametrizations", "weight",
                          *{"weight_orig": ["original"], "weight_u": ["0", "_u"], "weight_v": ["0", "_v"]}[leaf]]
        renamed[".".join(parts)] = value
    return renamed
