"""A new family is one package: the toy family (tests/toy_family, network included) registers itself on import
and the CLI trains it and translates with it; the dataset check offers it for its layouts, the GUI's family list
shows it, with no other file changed."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from engine.cli.main import main as cli
from engine.core.checkpoint import read_metadata
from engine.core.imageio import read_image, write_image
from engine.core.registry import get_family, list_families, unregister_family
from engine.data.dataset_check import check_dataset
from engine.infer.loading import open_model, untrained_model
from engine.infer.sessions import LatentExplorer, Translator
from tests.engine.helpers import write_aligned_dataset


@pytest.fixture
def toy():
    """The toy family, registered for one test (forgotten after it, so other tests see the built-ins only)."""
    module = importlib.import_module("tests.toy_family")
    if "toy" not in list_families():  # imported by an earlier test and forgotten since
        module = importlib.reload(module)
    yield module
    unregister_family("toy")


def test_toy_family_trains_and_translates_through_the_cli(toy, tmp_path):
    assert get_family("toy") is toy.Toy and "toy" in list_families()
    data = write_aligned_dataset(tmp_path / "data", count=4, size=32)
    run = tmp_path / "run"
    assert cli(["train", "toy", "--data", str(data), "--out", str(run), "--size", "32", "--steps", "3",
                "--batch-size", "2", "--device", "cpu", "--channels", "4", "--no-progress"]) == 0
    meta = read_metadata(run)
    assert meta["family"] == "toy" and meta["step"] == 3 and meta["model_config"]["channels"] == 4

    inputs = tmp_path / "in"
    write_image(inputs / "a.png", np.full((32, 32, 3), 40, np.uint8))
    assert cli(["translate", str(inputs), "--checkpoint", str(run), "--out", str(tmp_path / "out"),
                "--device", "cpu"]) == 0
    output = read_image(tmp_path / "out" / "a.png")
    session = open_model(run, device="cpu")
    assert isinstance(session, Translator) and not isinstance(session, LatentExplorer)
    assert output.shape == (32, 32, 3)
    np.testing.assert_array_equal(output, session.translate(np.full((32, 32, 3), 40, np.uint8)))


def test_toy_family_declarations_reach_the_dataset_check_and_untrained_models(toy, tmp_path):
    report = check_dataset(write_aligned_dataset(tmp_path / "data", count=4, size=32))
    assert report.layout == "aligned" and set(report.fits) == {"pix2pix", "toy"}
    session = untrained_model("toy", size=(32, 32), device="cpu", **toy.Toy.untrained_config)
    assert isinstance(session, Translator) and session.card.trained is False and session.options == ()
    assert session.translate(np.zeros((32, 32, 3), np.uint8)).shape == (32, 32, 3)
    assert toy.Toy.info().layouts == ("aligned", "paired")


def test_forgotten_toy_family_is_gone(toy):
    unregister_family("toy")
    assert "toy" not in list_families()
