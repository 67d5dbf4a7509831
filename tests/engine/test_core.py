"""Registry, configs, devices, errors and the CLI's one-line error handling."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from engine.core import registry
from engine.core.config import DataConfig, TrainConfig, from_dict, parse_size, to_dict
from engine.core.device import resolve_device
from engine.core.errors import ConfigError, DeviceError, RegistryError
from engine.families.pix2pix.family import Pix2PixConfig, depth_for_size


def test_registry_lists_and_rejects_unknown_with_choices():
    assert "pix2pix" in registry.list_families()
    with pytest.raises(RegistryError, match="choose one of: .*pix2pix"):
        registry.get_family("pix3pix")


def test_registry_refuses_duplicates():
    with pytest.raises(RegistryError, match="already registered"):
        registry.register_family("pix2pix")(type("Other", (), {}))


def test_configs_are_frozen_validated_and_round_trip():
    config = Pix2PixConfig(ngf=16, depth=7)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.ngf = 3  # type: ignore[misc]
    assert from_dict(Pix2PixConfig, to_dict(config)) == config
    train = TrainConfig(size=(128, 256), steps=10)
    assert from_dict(TrainConfig, to_dict(train)) == train
    with pytest.raises(ConfigError, match="norm"):
        Pix2PixConfig(norm="group")
    with pytest.raises(ConfigError, match="steps"):
        TrainConfig(steps=0)
    with pytest.raises(ConfigError, match="direction"):
        DataConfig(direction="sideways")
    with pytest.raises(ConfigError, match="no field"):
        from_dict(Pix2PixConfig, {"ngf": 8, "colour": 3})


def test_parse_size_and_depth():
    assert parse_size("256") == (256, 256)
    assert parse_size("128x256") == (128, 256)
    with pytest.raises(ConfigError):
        parse_size("big")
    assert depth_for_size((256, 256)) == 8
    assert depth_for_size((128, 128)) == 7
    assert depth_for_size((512, 512)) == 8
    assert depth_for_size((64, 128)) == 6


def test_device_resolution():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type in ("cpu", "cuda", "mps")
    with pytest.raises(DeviceError, match="unknown device"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="CUDA is not available"):
            resolve_device("cuda:0")


def test_cli_prints_one_line_errors(capsys, tmp_path):
    from engine.cli.main import main

    assert main(["info", str(tmp_path / "missing.safetensors")]) == 5
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "missing.safetensors" in err[0] and "not found" in err[0]
    assert main(["train", "pix2pix", "--data", str(tmp_path), "--size", "100"]) == 2
    assert "multiple of" in capsys.readouterr().err


def test_every_command_has_help(capsys):
    from engine.cli.main import main

    for command in (["train", "pix2pix"], ["translate"], ["eval"], ["info"], ["bench", "train", "pix2pix"],
                    ["bench", "infer", "pix2pix"], ["families"]):
        with pytest.raises(SystemExit) as exit_info:
            main([*command, "--help"])
        assert exit_info.value.code == 0
        assert "usage: ganvas" in capsys.readouterr().out


def test_cli_reference_covers_every_command():
    from pathlib import Path

    from engine.cli.docs import subparsers
    from engine.cli.main import build_parser

    reference = (Path(__file__).resolve().parents[2] / "docs" / "cli.md").read_text()
    for name in subparsers(build_parser()):
        assert f"## `ganvas {name}`" in reference, f"docs/cli.md lacks {name}: run python -m engine.cli.docs"


def test_resumed_log_keeps_one_record_per_step_up_to_the_checkpoint(tmp_path):
    import json

    from engine.train.training import _LossLog

    path = tmp_path / "log.jsonl"
    first = [{"step": s, "G": 1.0} for s in range(1, 6)]  # killed at step 5, last checkpoint at 2
    second = [{"step": s, "G": 2.0} for s in range(3, 5)]  # resumed from 2, killed at 4, checkpoint at 3
    path.write_text("".join(json.dumps(r) + "\n" for r in first + second) + '{"step": 5, "G"', encoding="utf-8")
    _LossLog(path).rewind(3)
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [(r["step"], r["G"]) for r in records] == [(1, 1.0), (2, 1.0), (3, 2.0)]


def test_config_flags_parse_optional_numbers_and_sizes():
    """``int | None`` fields parse as numbers, and a (height, width) field takes N or HxW."""
    import argparse

    from engine.cli.args import add_config_flags, config_overrides
    from engine.core.config import DataConfig, TrainConfig

    parser = argparse.ArgumentParser()
    add_config_flags(parser, TrainConfig, skip=("size",))
    add_config_flags(parser, DataConfig, skip=("path",))
    args = parser.parse_args(["--decay-start", "6000", "--load-size", "270", "--background", "0,0,0"])
    assert config_overrides(args, TrainConfig) == {"decay_start": 6000}
    data = config_overrides(args, DataConfig)
    assert data["load_size"] == (270, 270) and data["background"] == (0, 0, 0)
    assert TrainConfig(steps=8000, **config_overrides(args, TrainConfig)).decay_from == 6000
