"""Import PyTorch weights into Ganvas checkpoints: reference run folders, or one ``.pth`` with explicit flags.

* :func:`reference_checkpoint` turns a run folder of the pix2pix/CycleGAN reference implementation (see
  :mod:`engine.infer.reference`) into a checkpoint in memory: networks configured from ``train_opt.txt``, both CycleGAN
  generators, and the discriminators when their files are there. :func:`import_reference` writes it to disk;
  :func:`open_checkpoint` lets ``translate``, ``eval`` and the app open such folders (or a ``.pth``) directly.
* :func:`import_pth` loads ``.pth`` generator weights into a network built from a config the user gives.

Only tensors are read (``torch.load(weights_only=True)``); no code in the files runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from engine.core.checkpoint import (
    LATEST,
    Checkpoint,
    flatten_state,
    load_checkpoint,
    load_pth_state_dict,
    load_weights,
    read_metadata,
    save_checkpoint,
)
from engine.core.config import DataConfig, TrainConfig, to_dict
from engine.core.errors import CheckpointError, ConfigError
from engine.core.registry import get_family
from engine.infer.reference import (
    ReferenceRun,
    find_reference_run,
    is_official_spade,
    is_reference_source,
    netg_kind,
    official_spade_to_ganvas,
    option,
    options_from_state,
    read_generator_states,
    to_ganvas_state,
)

BATCH_NORM_MODES = ("input", "running")
REFERENCE_FORMAT = "pytorch-CycleGAN-and-pix2pix"


def open_checkpoint(path: str | Path, prefixes: tuple[str, ...] = ("net.",)) -> Checkpoint:
    """A Ganvas checkpoint (file or run folder; only tensors under ``prefixes``), or a reference run folder /
    ``.pth`` imported in memory."""
    path = Path(path)
    if _is_reference(path):
        tensors, meta = reference_checkpoint(path)
        return Checkpoint(path=path, meta=meta, tensors=tensors)
    return load_checkpoint(path, prefixes=prefixes)


def open_metadata(path: str | Path) -> dict[str, Any]:
    """The metadata of what :func:`open_checkpoint` opens (a Ganvas checkpoint's header alone is read)."""
    path = Path(path)
    if _is_reference(path):
        return reference_checkpoint(path)[1]
    return read_metadata(path)


def _is_reference(path: Path) -> bool:
    return not (path.is_dir() and (path / LATEST).is_file()) and is_reference_source(path)


def import_reference(source: str | Path, out: str | Path, epoch: str = "latest",
                     batch_norm: str = "input") -> Path:
    """Write the reference run (folder or ``.pth``) at ``source`` as one Ganvas checkpoint at ``out``."""
    tensors, meta = reference_checkpoint(source, epoch=epoch, batch_norm=batch_norm)
    return save_checkpoint(out, tensors, meta)


def reference_checkpoint(source: str | Path, epoch: str = "latest",
                         batch_norm: str = "input") -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Tensors and metadata of a Ganvas checkpoint made from a reference run.

    Args:
        source: reference run folder, or a ``.pth`` file (with ``train_opt.txt`` beside it the whole run is
            imported; alone, its options are read off the tensors).
        epoch: ``latest`` or the epoch whose weights to take.
        batch_norm: how batch norm normalises at inference: ``input`` (the statistics of the image being
            translated, as the reference's ``test.py`` does by default and Ganvas does for pix2pix) or ``running``
            (the running averages, as ``test.py --eval`` does).

    Raises:
        CheckpointError: missing files, unsupported networks, or weights that do not fit (the file is named).
    """
    if batch_norm not in BATCH_NORM_MODES:
        raise ConfigError(f"invalid batch_norm {batch_norm!r}: expected input or running", value=batch_norm)
    run = find_reference_run(source, epoch)
    states = read_generator_states(run)
    first = next(iter(run.generators.values()))
    options = run.options or options_from_state(next(iter(states.values())), first)
    if len(run.generators) == 1 and (options.get("model") == "cycle_gan" or "G" not in run.generators):
        raise CheckpointError("holds one CycleGAN generator; a Ganvas CycleGAN checkpoint needs both directions: "
                              "import the run folder (latest_net_G_A.pth, latest_net_G_B.pth, train_opt.txt) or "
                              "give both files to `ganvas import-pth A.pth --out FILE cyclegan --pth-b B.pth`", path=first)
    family_name, model_config, notes = _reference_config(run, options)
    family = get_family(family_name)
    norm = model_config.norm
    tensors: dict[str, torch.Tensor] = {}
    for name, network in _networks(family_name, model_config, run).items():
        file = run.generators.get(name) or run.discriminators[name]
        state = states[name] if name in states else load_pth_state_dict(file)
        if name.startswith("G") and family_name == "cyclegan" and not option(options, "no_dropout", True):
            state = _without_dropout(state)
        load_weights(network, to_ganvas_state(state, network, norm), f"a reference {options.get('netG', name)} "
                     f"network with {options.get('norm', norm)} norm", file)
        tensors.update(flatten_state(f"net.{name}", network.state_dict()))
    train, data = _training_configs(options)
    meta = {
        "family": family.name, "model_config": to_dict(model_config), "train_config": to_dict(train),
        "data_config": to_dict(data), "step": 0,
        "dataset": {"imported_from": run.folder.name},
        "imported": {"format": REFERENCE_FORMAT, "source": str(Path(source)),
                     "files": sorted(p.name for p in [*run.generators.values(), *run.discriminators.values()]),
                     "options": "train_opt.txt" if run.options else "read off the tensors", "notes": notes},
        "inference": {"batch_norm": batch_norm},
    }
    return tensors, meta


def _training_configs(options: dict[str, str]) -> tuple[TrainConfig, DataConfig]:
    """The training size and data settings a reference run recorded (for fine-tuning and the card; its Adam
    settings are in the model config)."""
    crop = option(options, "crop_size", 256)
    load = option(options, "load_size", 0)
    preprocess = options.get("preprocess", "resize_and_crop")
    direction = options.get("direction", "AtoB")
    data = DataConfig(direction=direction if direction in ("AtoB", "BtoA") else "AtoB",
                      preprocess=preprocess if preprocess in ("resize_and_crop", "scale_width", "none")
                      else "resize_and_crop",
                      load_size=(load, load) if load >= crop else None, flip=not option(options, "no_flip", False))
    train = TrainConfig(size=(crop, crop), batch_size=option(options, "batch_size", 1))
    return train, data


def _reference_config(run: ReferenceRun, options: dict[str, str]) -> tuple[str, Any, list[str]]:
    """The Ganvas family and model config of a reference run, plus notes on options that were not carried."""
    source = run.folder / "train_opt.txt" if run.options else next(iter(run.generators.values()))
    kind, number = netg_kind(options, source)
    model = options.get("model", "")
    notes: list[str] = []
    norm = options.get("norm", "batch" if run.family == "pix2pix" else "instance")
    common = {"in_channels": option(options, "input_nc", 3), "out_channels": option(options, "output_nc", 3),
              "ngf": option(options, "ngf", 64), "ndf": option(options, "ndf", 64), "norm": norm,
              "n_layers_d": option(options, "n_layers_D", 3), "lr_g": option(options, "lr", 2e-4),
              "lr_d": option(options, "lr", 2e-4), "betas": (option(options, "beta1", 0.5), 0.999)}
    gan_mode = {"wgangp": "wgan"}.get(options.get("gan_mode", ""), options.get("gan_mode", ""))
    if model == "colorization":
        raise CheckpointError("colorization models (Lab colour space) have no Ganvas counterpart", path=source)
    family = get_family(run.family)
    try:
        if run.family == "pix2pix":
            if kind != "unet":
                raise CheckpointError(f"a pix2pix generator with netG {options['netG']} has no Ganvas counterpart "
                                      "(Ganvas's pix2pix is a U-Net)", path=source)
            extra: dict[str, Any] = {"depth": number, "dropout": not option(options, "no_dropout", False),
                                     "lambda_l1": option(options, "lambda_L1", 100.0)}
            if gan_mode in ("vanilla", "lsgan", "wgan"):
                extra["gan_mode"] = gan_mode
            config = family.config_cls(**common, **extra)
        else:
            if kind != "resnet":
                raise CheckpointError(f"a CycleGAN generator with netG {options['netG']} has no Ganvas counterpart "
                                      "(Ganvas's CycleGAN uses the ResNet generator)", path=source)
            extra = {"n_blocks": number, "lambda_a": option(options, "lambda_A", 10.0),
                     "lambda_b": option(options, "lambda_B", 10.0),
                     "lambda_identity": option(options, "lambda_identity", 0.5),
                     "pool_size": option(options, "pool_size", 50)}
            if gan_mode in ("lsgan", "vanilla"):
                extra["gan_mode"] = gan_mode
            if common["in_channels"] != common["out_channels"]:
                extra["lambda_identity"] = 0.0
            config = family.config_cls(**common, **extra)
            if not option(options, "no_dropout", True):
                notes.append("the generators' dropout layers were left out (they are off at inference)")
    except ConfigError as exc:
        raise CheckpointError(f"the run's options do not make a valid Ganvas config ({exc})", path=source) from exc
    if gan_mode and gan_mode != getattr(config, "gan_mode", gan_mode):
        notes.append(f"gan_mode {options['gan_mode']} is not available; {config.gan_mode} is set for fine-tuning")
    return run.family, config, notes


def _networks(family_name: str, config: Any, run: ReferenceRun) -> dict[str, nn.Module]:
    """Ganvas networks for every file of the run (discriminators only when present and of a kind Ganvas has)."""
    from models.patchgan import PatchDiscriminator
    from models.resnet_generator import ResnetGenerator

    family = get_family(family_name)
    options = run.options
    n_layers = 3 if options.get("netD", "basic") == "basic" else config.n_layers_d
    patch = options.get("netD", "basic") in ("basic", "n_layers")
    networks: dict[str, nn.Module] = {}
    if family_name == "pix2pix":
        networks["G"] = family.build_generator(config)
        if "D" in run.discriminators and patch:
            networks["D"] = PatchDiscriminator(config.in_channels + config.out_channels, config.ndf, n_layers,
                                               config.norm)
        return networks
    networks["G_AB"] = family.build_generator(config)
    networks["G_BA"] = ResnetGenerator(config.out_channels, config.in_channels, config.ngf, config.n_blocks,
                                       config.norm, config.upsampling)
    if {"D_A", "D_B"} <= set(run.discriminators) and patch:
        networks["D_A"] = PatchDiscriminator(config.in_channels, config.ndf, n_layers, config.norm)
        networks["D_B"] = PatchDiscriminator(config.out_channels, config.ndf, n_layers, config.norm)
    return networks


def _without_dropout(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A reference ResNet generator trained with dropout, renamed for Ganvas's block without the Dropout layer
    (``conv_block.6`` / ``.7`` become ``.5`` / ``.6``)."""
    renamed = {}
    for key, value in state.items():
        parts = key.split(".")
        if len(parts) > 3 and parts[2] == "conv_block" and parts[3] in ("6", "7"):
            parts[3] = str(int(parts[3]) - 1)
        renamed[".".join(parts)] = value
    return renamed


def import_pth(pths: str | Path | list[str | Path], family_name: str, config: Any, size: tuple[int, int],
               out: str | Path) -> Path:
    """Load ``.pth`` generator weights into the family's networks built from ``config`` and save a checkpoint.

    CycleGAN takes two files, A -> B then B -> A (the reference's ``G_A`` and ``G_B``); other families one.
    Reference key names (``conv_block``) are mapped as in :func:`engine.infer.reference.to_ganvas_state`.
    """
    files = [Path(p) for p in ([pths] if isinstance(pths, str | Path) else pths)]
    family = get_family(family_name)
    network = family.inference_network(config)
    if not isinstance(network, nn.ModuleDict):  # one generator (other inference networks hold encoders etc.)
        network = family.build_generator(config)
    names = ["G_AB", "G_BA"] if isinstance(network, nn.ModuleDict) else [family.generator_key]
    if len(files) != len(names):
        wanted = "two files: A->B, and B->A with --pth-b (the reference's latest_net_G_A.pth and " \
            "latest_net_G_B.pth)" if len(names) == 2 else "one file"
        raise ConfigError(f"{family_name} import takes {wanted}; got {len(files)} (or import the reference run "
                          "folder with `ganvas import RUN_DIR`)", value=[str(f) for f in files])
    tensors: dict[str, torch.Tensor] = {}
    for name, file in zip(names, files, strict=True):
        target = network[name] if isinstance(network, nn.ModuleDict) else network
        state = load_pth_state_dict(file)
        if family_name == "spade" and is_official_spade(state):
            state = official_spade_to_ganvas(state)
        state = to_ganvas_state(state, target, getattr(config, "norm", ""))
        load_weights(target, state, f"a {family_name} generator with this config", file)
        tensors.update(flatten_state(f"net.{name}", target.state_dict()))
    meta = {"family": family_name, "model_config": to_dict(config),
            "train_config": to_dict(TrainConfig(size=size)), "data_config": to_dict(DataConfig()),
            "step": 0, "dataset": {"imported_from": files[0].name},
            "imported": {"format": "pth", "files": [f.name for f in files]}}
    return save_checkpoint(out, tensors, meta)
