"""One config vocabulary: every family's Adam settings are ``lr_g``, ``lr_d`` and ``betas`` in its model config.
Configs stored in the older names read as today's, and the older flags still parse into today's fields."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
from safetensors import safe_open

from engine.cli.args import add_config_flags, config_overrides
from engine.core.checkpoint import read_metadata
from engine.core.config import OPTIMIZER_FIELDS, TrainConfig, field_help, from_dict, upgrade_config_keys
from engine.core.errors import ConfigError
from engine.core.registry import get_family, list_families

OLD = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "old_format"


def raw_header(path: Path) -> dict:
    """A checkpoint's JSON header as stored, without the reader's translation."""
    with safe_open(str(path), framework="pt") as handle:
        return json.loads(handle.metadata()["ganvas"])


# (family, old model-config keys, old train-config keys, today's lr_g, lr_d, betas) of the old-format fixtures
OLD_SHAPES = [
    ("pix2pix", (), ("lr", "beta1", "beta2"), 2e-4, 2e-4, (0.5, 0.999)),
    ("cyclegan", (), ("lr", "beta1", "beta2"), 2e-4, 2e-4, (0.5, 0.999)),
    ("spade", ("lr_g", "lr_d", "adam_betas"), ("lr", "beta1", "beta2"), 1e-4, 4e-4, (0.0, 0.9)),
    ("stylegan2", ("learning_rate", "adam_betas"), ("lr", "beta1", "beta2"), 0.0025, 0.0025, (0.0, 0.99)),
]


@pytest.mark.parametrize(("family", "old_model", "old_train", "lr_g", "lr_d", "betas"), OLD_SHAPES)
def test_old_checkpoint_configs_read_in_todays_names(family, old_model, old_train, lr_g, lr_d, betas):
    stored = raw_header(OLD / f"{family}.safetensors")
    assert set(old_model) <= set(stored["model_config"]) and set(old_train) <= set(stored["train_config"])
    meta = read_metadata(OLD / f"{family}.safetensors")
    assert not {"learning_rate", "adam_betas"} & set(meta["model_config"])
    assert not {"lr", "beta1", "beta2"} & set(meta["train_config"])
    config = from_dict(get_family(family).config_cls, meta["model_config"])
    assert (config.lr_g, config.lr_d, config.betas) == (lr_g, lr_d, betas)
    from_dict(TrainConfig, meta["train_config"])
    assert upgrade_config_keys(meta) == meta  # today's names pass unchanged


def test_upgrade_keeps_a_model_configs_own_settings_and_leaves_its_input_alone():
    old = {"family": "spade", "model_config": {"lr_g": 1e-3, "lr_d": 2e-3, "adam_betas": [0.1, 0.8]},
           "train_config": {"steps": 5, "lr": 2e-4, "beta1": 0.5, "beta2": 0.999}, "step": 5}
    before = json.loads(json.dumps(old))
    new = upgrade_config_keys(old)
    assert new == {"family": "spade", "model_config": {"lr_g": 1e-3, "lr_d": 2e-3, "betas": [0.1, 0.8]},
                   "train_config": {"steps": 5}, "step": 5}
    assert old == before
    stylegan = upgrade_config_keys({"model_config": {"learning_rate": 0.002, "adam_betas": [0.0, 0.99]}})
    assert stylegan == {"model_config": {"lr_g": 0.002, "lr_d": 0.002, "betas": [0.0, 0.99]}}
    lone_beta = upgrade_config_keys({"model_config": {}, "train_config": {"beta2": 0.9}})
    assert lone_beta["model_config"] == {"betas": [0.5, 0.9]} and lone_beta["train_config"] == {}
    assert upgrade_config_keys({"family": "pix2pix"}) == {"family": "pix2pix"}  # nothing to translate


def family_parser(family: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    add_config_flags(parser, get_family(family).config_cls)
    return parser


@pytest.mark.parametrize("family", ["pix2pix", "cyclegan", "spade", "stylegan2"])
def test_every_family_takes_the_same_optimizer_flags_and_the_old_ones(family):
    cls = get_family(family).config_cls
    parser = family_parser(family)
    new = parser.parse_args(["--lr-g", "0.001", "--lr-d", "0.003", "--betas", "0.2,0.9"])
    assert config_overrides(new, cls) == {"lr_g": 0.001, "lr_d": 0.003, "betas": (0.2, 0.9)}
    old = parser.parse_args(["--lr", "0.001", "--beta1", "0.2"])
    default_beta2 = cls().betas[1]
    assert config_overrides(old, cls) == {"lr_g": 0.001, "lr_d": 0.001, "betas": (0.2, default_beta2)}
    stylegan_names = parser.parse_args(["--learning-rate", "0.004", "--adam-betas", "0,0.95"])
    assert config_overrides(stylegan_names, cls) == {"lr_g": 0.004, "lr_d": 0.004, "betas": (0, 0.95)}
    assert cls(**config_overrides(stylegan_names, cls)).betas == (0.0, 0.95)  # stored as floats
    mixed = parser.parse_args(["--lr", "0.001", "--lr-d", "0.004", "--betas", "0.1,0.8", "--beta2", "0.7"])
    assert config_overrides(mixed, cls) == {"lr_g": 0.001, "lr_d": 0.004, "betas": (0.1, 0.7)}  # today's win
    assert config_overrides(parser.parse_args([]), cls) == {}
    help_text = " ".join(parser.format_help().split())
    for flag, note in (("--lr", "deprecated: sets --lr-g and --lr-d"), ("--beta1", "deprecated: sets the first"),
                       ("--learning-rate", "deprecated: sets --lr-g"), ("--adam-betas", "deprecated: use --betas")):
        assert f"{flag} " in help_text and note in help_text


def test_the_cli_maps_a_deprecated_flag_into_the_run(tmp_path):
    """``ganvas train spade --lr`` was refused; it now sets both learning rates (as it did for pix2pix)."""
    from engine.cli.main import build_parser

    args = build_parser().parse_args(["train", "spade", "--data", str(tmp_path), "--lr", "0.0003"])
    assert config_overrides(args, get_family("spade").config_cls) == {"lr_g": 0.0003, "lr_d": 0.0003}
    assert not {"lr", "beta1", "beta2"} & set(config_overrides(args, TrainConfig))


def test_bad_optimizer_settings_name_their_field():
    for family in list_families():
        cls = get_family(family).config_cls
        assert set(OPTIMIZER_FIELDS) <= set(field_help(cls)) and all(field_help(cls)[n] for n in OPTIMIZER_FIELDS)
        with pytest.raises(ConfigError, match="lr_d"):
            cls(lr_d=float("nan"))
        with pytest.raises(ConfigError, match="betas"):
            cls(betas=(0.5, 1.0))


def test_every_config_field_carries_its_help():
    """The CLI and the app's forms read help from the fields themselves (``metadata["help"]``)."""
    from engine.core.config import DataConfig

    for cls in [TrainConfig, DataConfig, *(get_family(name).config_cls for name in list_families())]:
        missing = [name for name, text in field_help(cls).items() if not text.strip()]
        assert not missing, f"{cls.__name__} fields without help: {missing}"


@pytest.mark.parametrize(("family", "flag", "field"), [("spade", "--image-size", "image_size"),
                                                       ("stylegan2", "--resolution", "resolution")])
def test_the_size_is_stated_once(family, flag, field):
    """``--size`` states the size; a network's copy of it is filled in from there, and its old flag sets --size."""
    from engine.cli.main import build_parser
    from engine.core.config import size_fields

    cls = get_family(family).config_cls
    assert size_fields(cls) == (field,)
    args = build_parser().parse_args(["train", family, "--data", "d", flag, "64"])
    assert args.size == "64" and field not in config_overrides(args, cls)
    config = get_family(family).auto_config((64, 64), {})
    assert getattr(config, field) in ((64, 64), 64)
    with pytest.raises(ConfigError, match="differs from --size"):
        get_family(family).auto_config((64, 64), {field: (128, 128) if field == "image_size" else 128})
    for other in ("pix2pix", "cyclegan"):
        assert size_fields(get_family(other).config_cls) == ()


def test_a_size_copy_that_differs_from_the_training_size_is_refused():
    from engine.core.config import check_size_fields

    for family, field in (("stylegan2", "resolution"), ("spade", "image_size")):
        config = get_family(family).auto_config((64, 64), {})
        check_size_fields(config, (64, 64))
        with pytest.raises(ConfigError, match=f"model {field} .* differs from --size 32x32"):
            check_size_fields(config, (32, 32))
    check_size_fields(get_family("pix2pix").auto_config((64, 64), {}), (32, 32))  # no copy: nothing to refuse
