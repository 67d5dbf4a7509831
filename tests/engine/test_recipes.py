"""Named recipes: pix2pix's default recipe (LSGAN, no dropout, Adam 4e-4) with the paper's one option away."""

from __future__ import annotations

import pytest

from engine.cli.main import main as cli
from engine.core.checkpoint import read_metadata
from engine.core.errors import ConfigError
from engine.core.registry import get_family
from tests.engine.helpers import write_aligned_dataset

pytestmark = pytest.mark.usefixtures("one_torch_thread")
TINY_FLAGS = ["--size", "32", "--steps", "1", "--depth", "5", "--ngf", "4", "--ndf", "4", "--device", "cpu",
              "--no-progress"]


def trained_config(tmp_path, name: str, *flags: str) -> dict:
    data = write_aligned_dataset(tmp_path / "data")
    assert cli(["train", "pix2pix", "--data", str(data), "--out", str(tmp_path / name), *TINY_FLAGS, *flags]) == 0
    return read_metadata(tmp_path / name / "latest.safetensors")["model_config"]


def test_default_and_reference_recipes(tmp_path):
    default = trained_config(tmp_path, "default")
    assert (default["gan_mode"], default["dropout"], default["lr_g"], default["lr_d"]) == ("lsgan", False, 4e-4, 4e-4)
    reference = trained_config(tmp_path, "reference", "--recipe", "reference")
    assert (reference["gan_mode"], reference["dropout"], reference["lr_g"]) == ("vanilla", True, 2e-4)
    # flags win over the recipe's values
    mixed = trained_config(tmp_path, "mixed", "--recipe", "reference", "--lr-g", "1e-4")
    assert (mixed["gan_mode"], mixed["lr_g"], mixed["lr_d"]) == ("vanilla", 1e-4, 2e-4)


def test_unknown_recipe_names_the_known_ones():
    with pytest.raises(ConfigError, match="known: default, reference"):
        get_family("pix2pix").recipe("paper")
    assert get_family("cyclegan").recipe("default") == {}


def test_stylegan2_reference_recipe_is_the_papers_regularisation_without_diffaugment():
    family = get_family("stylegan2")
    default = family.auto_config((32, 32), family.recipe("default"))
    assert (default.pl_weight, default.style_mixing_prob, default.augmentations) == (
        0.0, 0.0, ("colour", "translation", "cutout"))
    reference = family.auto_config((32, 32), family.recipe("reference"))
    assert (reference.pl_weight, reference.style_mixing_prob, reference.augmentations) == (2.0, 0.9, ())


def test_recipe_help_lists_every_family_recipe_with_its_settings():
    from engine.cli.main import _recipes_help
    from engine.core.registry import list_families

    recipe_help = _recipes_help()
    for name in list_families():
        for recipe, values in get_family(name).recipes.items():
            assert f"{recipe} for {name} (" in recipe_help
            assert all(f"{field} {value}" in recipe_help for field, value in values.items())
