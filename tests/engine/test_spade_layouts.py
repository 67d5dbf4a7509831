"""The official SPADE dataset layouts are read where they lie: COCO-Stuff's ``train_label/`` + ``train_img/``
(+ ``train_inst/``) and ADE20K's ``annotations/training/`` + ``images/training/``."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from engine.core.config import DataConfig
from engine.core.errors import DatasetError
from engine.data.palette import Palette
from engine.families.spade.family import SPADE
from engine.families.spade.label_data import LabelFolders, LabelImages
from engine.infer.evaluation import EvalExtras, evaluate_checkpoint
from tests.engine.test_fid import FirstFeatures, _checkpoint

pytestmark = [pytest.mark.usefixtures("one_torch_thread")]


def _write_split(root, labels: str, images: str, names, instances: str | None = None) -> None:
    """Index-PNG label maps (facades ids), JPEG photos and 16-bit instance maps under the given folders."""
    from engine.core.imageio import write_image

    rng = np.random.default_rng(0)
    for name in names:
        ids = np.zeros((32, 32), np.uint8)
        ids[8:24, 4:20] = rng.integers(1, 12)
        write_image(root / labels / f"{name}.png", ids)
        write_image(root / images / f"{name}.jpg", rng.integers(0, 256, (32, 32, 3), np.uint8))
        if instances:
            (root / instances).mkdir(parents=True, exist_ok=True)
            import cv2

            cv2.imwrite(str(root / instances / f"{name}.png"), (ids.astype(np.uint16) * 1000))


def test_coco_stuff_layout_with_instances_and_its_validation_split(tmp_path):
    root = tmp_path / "cocostuff"
    _write_split(root, "train_label", "train_img", ["000000000009", "000000000025"], instances="train_inst")
    _write_split(root, "val_label", "val_img", ["000000000139"])
    palette = Palette.load("facades")
    data = DataConfig(path=str(root), cache=False)
    train = LabelImages(root, data, (32, 32), palette, use_instance=True)
    assert train.layout == "spade" and len(train) == 2 and train[0].shape == (5, 36, 36)
    assert train.files[0].instance == root / "train_inst" / "000000000009.png"
    split = SPADE.resolve_split(root, "val")
    assert isinstance(split, LabelFolders) and split.labels == root / "val_label" and split.instances is None
    assert len(LabelImages(split, data, (32, 32), palette)) == 1
    with pytest.raises(DatasetError, match="use_instance is on but there is no val_inst/ folder"):
        LabelImages(split, data, (32, 32), palette, use_instance=True)
    shutil.rmtree(root / "train_img")
    with pytest.raises(DatasetError, match=r"cocostuff: SPADE/COCO-Stuff layout .* missing train_img/"):
        LabelImages(root, data, (32, 32), palette)


def test_ade20k_layout_and_what_is_missing(tmp_path):
    root = tmp_path / "ADEChallengeData2016"
    _write_split(root, "annotations/training", "images/training", ["ADE_train_00000001", "ADE_train_00000002"])
    palette = Palette.load("facades")
    data = DataConfig(path=str(tmp_path), cache=False)
    for folder in (tmp_path, root):  # the download's parent folder or the dataset folder itself
        images = LabelImages(folder, data, (32, 32), palette)
        assert images.layout == "ade20k" and len(images) == 2
    with pytest.raises(DatasetError, match=r"ADE20K layout .*missing annotations/validation/, images/validation/"):
        SPADE.resolve_split(tmp_path, "val")
    shutil.rmtree(root / "images")
    with pytest.raises(DatasetError, match="missing images/training/"):
        LabelImages(root, data, (32, 32), palette)


def test_spade_eval_reads_the_official_validation_split(tmp_path):
    root = tmp_path / "cocostuff"
    _write_split(root, "val_label", "val_img", ["a", "b", "c"])
    checkpoint = _checkpoint(tmp_path / "s.safetensors", "spade", 64, image_size=(64, 64), ngf=4, ndf=4,
                             spade_hidden=8)
    torch.manual_seed(0)
    result = evaluate_checkpoint(checkpoint, root, device="cpu", features=FirstFeatures(),
                                 extras=EvalExtras(fid=True, kid_subsets=2, html=str(tmp_path / "page")))
    assert result["images"] == 3 and result["FID_images"] == "3 generated, 3 real" and "L1" in result
    assert (tmp_path / "page" / "images" / "0002_input.png").is_file()
