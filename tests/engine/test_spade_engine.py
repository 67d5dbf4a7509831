"""SPADE through the engine: label-map datasets, errors before training, style code, exact resume, CLI."""

from __future__ import annotations

import argparse
import json

import cv2
import numpy as np
import pytest
import torch

from engine.cli.palette import add_palette_commands
from engine.core import checkpoint as ckpt
from engine.core.config import DataConfig, TrainConfig
from engine.core.errors import ConfigError, LabelError
from engine.core.imageio import read_image, write_image
from engine.data.labels import index_to_color
from engine.data.palette import Palette
from engine.families.spade.family import SPADE, SPADEConfig
from engine.families.spade.label_data import LabelImages
from engine.infer.inference import InferenceSession
from engine.train.training import RunSpec, run_training
from tests.engine.helpers import state_equal

SIZE = (64, 64)
TINY = {"image_size": SIZE, "ngf": 8, "ndf": 8, "spade_hidden": 16, "n_layers_D": 3, "z_dim": 16}
FACADES = Palette.load("facades")


def blocky_ids(seed: int, size: int = 64) -> np.ndarray:
    """Rectangles of facades classes, 8-pixel aligned (so they survive resizing with nearest neighbours)."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, FACADES.n_classes, (size // 8, size // 8)).astype(np.uint8)
    return np.kron(coarse, np.ones((8, 8), np.uint8))


def photo_of(ids: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noisy = index_to_color(ids, FACADES).astype(np.int16) // 2 + rng.integers(0, 60, (*ids.shape, 3))
    return noisy.astype(np.uint8)


def write_label_folders(root, count=3, color=False):
    for i in range(count):
        ids = blocky_ids(i)
        write_image(root / "labels" / f"{i}.png", index_to_color(ids, FACADES) if color else ids)
        write_image(root / "images" / f"{i}.png", photo_of(ids, i))
    return root


def write_aligned(root, count=3, jpeg=False):
    root.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        ids = blocky_ids(i)
        pair = np.concatenate([photo_of(ids, i), index_to_color(ids, FACADES)], axis=1)
        if jpeg:
            cv2.imwrite(str(root / f"{i}.jpg"), cv2.cvtColor(pair, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
        else:
            write_image(root / f"{i}.png", pair)
    return root


def spec(data, steps=2, **model):
    train = TrainConfig(steps=steps, size=SIZE, device="cpu", deterministic=True, sample_every=2,
                        checkpoint_every=2)
    return RunSpec("spade", SPADEConfig(**{**TINY, **model}), train, DataConfig(path=str(data), flip=True))


def test_index_colour_and_aligned_loaders_agree(tmp_path):
    data = DataConfig(preprocess="none", cache=True)
    index = LabelImages(write_label_folders(tmp_path / "index"), data, SIZE, FACADES)
    colour = LabelImages(write_label_folders(tmp_path / "colour", color=True), data, SIZE, FACADES)
    aligned = LabelImages(write_aligned(tmp_path / "aligned"), data, SIZE, FACADES)
    jpeg = LabelImages(write_aligned(tmp_path / "jpeg", jpeg=True), data, SIZE, FACADES)  # snapped to the palette
    assert (index.layout, colour.layout, aligned.layout, aligned.label_half) == ("labels", "labels", "aligned",
                                                                                  "right")
    interior = np.zeros(SIZE, bool)  # block interiors, 2 px away from any border (JPEG blurs chroma there)
    for offset in range(2, 6):
        interior[offset::8, :] = True
    interior &= interior.T
    for i in range(3):
        expected = torch.from_numpy(blocky_ids(i))
        for loaded in (index, colour, aligned):
            assert torch.equal(loaded[i][3], expected)
        assert torch.equal(jpeg[i][3][interior], expected[interior])
        assert torch.equal(index[i][:3], colour[i][:3]) and torch.equal(index[i][:3], aligned[i][:3])


def test_unknown_colour_stops_before_training(tmp_path):
    root = write_label_folders(tmp_path / "d", color=True)
    bad = index_to_color(blocky_ids(1), FACADES)
    bad[10:20, 30:40] = (0, 255, 0)  # pure green is no facades class
    write_image(root / "labels" / "1.png", bad)
    with pytest.raises(LabelError, match=r"1\.png: 100 pixels \(2\.44%\).*x=30, y=10 colour \[0, 255, 0\]"):
        run_training(spec(root), tmp_path / "run")
    assert not (tmp_path / "run" / "latest.safetensors").exists()


def test_ttur_fields_and_vgg_note(tmp_path):
    data = write_label_folders(tmp_path / "d", count=2)
    with pytest.raises(ConfigError, match="multiple of 32"):
        SPADEConfig(image_size=(48, 48))
    events = []
    run_training(spec(data, steps=1), tmp_path / "run", on_progress=events.append)
    assert "VGG loss off: no --vgg-weights" in events[0].message
    meta = ckpt.read_metadata(tmp_path / "run")  # the two time-scale rule: D learns 4x as fast, betas 0, 0.9
    assert meta["lr_schedule"]["base_lrs"] == {"G": 2e-4, "D": 8e-4}  # twice the paper's: docs/recipes.md
    assert SPADE.recipe("reference") == {"lr_g": 1e-4, "lr_d": 4e-4}
    assert [meta["optimizers"][name]["param_groups"][0]["betas"] for name in "GD"] == [[0.0, 0.9]] * 2
    assert SPADEConfig(**TINY, contain_dont_care=True).label_nc == 13


def test_exact_resume_with_encoder(tmp_path):
    data = write_label_folders(tmp_path / "d")
    run_training(spec(data, steps=4, use_encoder=True), tmp_path / "straight")
    run_training(spec(data, steps=4, use_encoder=True), tmp_path / "halves",
                 should_stop=iter([False, False, True]).__next__)
    assert ckpt.load_checkpoint(tmp_path / "halves").step == 2
    run_training(None, tmp_path / "halves", resume=True)
    a, b = ckpt.load_checkpoint(tmp_path / "straight"), ckpt.load_checkpoint(tmp_path / "halves")
    assert b.step == 4 and {"net.E", "net.G", "net.D"} <= {".".join(k.split(".")[:2]) for k in a.tensors}
    assert state_equal({k: v for k, v in a.tensors.items() if k.startswith(("net.", "optim."))},
                       {k: v for k, v in b.tensors.items() if k.startswith(("net.", "optim."))})
    grid = read_image(tmp_path / "straight" / "samples" / "latest.png")
    assert grid.shape == (3 * 66 + 2, 3 * 66 + 2, 3)  # rows: label | output | target

    session = InferenceSession.from_checkpoint(tmp_path / "straight", device="cpu")
    labels = index_to_color(blocky_ids(7, 32), FACADES)  # the canvas' colour map, any size
    out = session.translate(labels, seed=1)
    assert out.shape == (64, 64, 3) and session.translate(labels, keep_size=True, seed=1).shape == (32, 32, 3)
    assert np.array_equal(out, session.translate(labels, seed=1))  # same seed, same image
    assert not np.array_equal(out, session.translate(labels, seed=2))
    result = session.family.evaluate(session, DataConfig(path=str(data)), data, limit=2)
    assert result["images"] == 2 and np.isfinite(result["PSNR"])


def test_style_image_changes_output_but_not_layout():
    session = InferenceSession.untrained("spade", size=SIZE, device="cpu", use_encoder=True, **TINY)
    ids = blocky_ids(3)
    labels = index_to_color(ids, FACADES)
    rng = np.random.default_rng(0)
    style_a = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    style_b = np.full((64, 64, 3), 200, np.uint8)
    out_a, out_b = session.translate(labels, style=style_a), session.translate(labels, style=style_b)
    assert np.array_equal(out_a, session.translate(labels, style=style_a))
    assert np.abs(out_a.astype(int) - out_b).mean() > 0.5
    # the layout stays: a label map with another layout changes the image under the same style
    other = session.translate(index_to_color(blocky_ids(4), FACADES), style=style_a)
    assert np.abs(other.astype(int) - out_a).mean() > 0.5
    batch = torch.from_numpy(ids).float()[None, None]  # index map as floats, as the family's infer takes it
    tensor_out = session.translate_tensor(batch, style=torch.from_numpy(style_a).permute(2, 0, 1)[None])
    assert tensor_out.shape == (1, 3, 64, 64)
    foreign = labels.copy()
    foreign[:8, :8] = (0, 255, 0)
    with pytest.raises(LabelError, match="not in palette 'facades'"):
        session.translate(foreign)
    plain = InferenceSession.untrained("spade", size=SIZE, device="cpu", **TINY)
    with pytest.raises(ConfigError, match="no style encoder"):
        plain.translate(labels, style=style_a)


def test_batch_norm_spade_infers_with_running_statistics(tmp_path):
    """With ``param_free_norm="batch"`` each image is normalised with the running statistics, so a batch's
    outputs equal the images translated one by one."""
    data = write_label_folders(tmp_path / "data")
    run_training(spec(data, steps=2, use_encoder=True, param_free_norm="batch", lambda_l1=5.0), tmp_path / "run")
    logged = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert all(row["G_L1"] > 0 for row in logged if "G_GAN" in row)  # the optional L1 term is trained
    session = InferenceSession.from_checkpoint(tmp_path / "run", device="cpu")
    norms = [m for m in session.generator.G.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert norms and all(m.track_running_stats and m.num_batches_tracked > 0 for m in norms)
    before = [m.running_mean.clone() for m in norms]
    ids = torch.from_numpy(np.stack([blocky_ids(5), blocky_ids(6)])).float()[:, None]
    together = session.translate_tensor(ids, seed=1)
    one_by_one = torch.cat([session.translate_tensor(ids[i: i + 1], seed=1) for i in range(2)])
    assert torch.allclose(together[:1], one_by_one[:1], atol=1e-5)  # seed 1 draws the same first code
    assert all(torch.equal(m.running_mean, b) for m, b in zip(norms, before, strict=True))  # stats untouched


def test_palette_cli_extract_and_convert(tmp_path, capsys):
    root = write_label_folders(tmp_path / "d", color=True)
    parser = argparse.ArgumentParser()
    table: dict = {}
    add_palette_commands(parser.add_subparsers(dest="command"), table)

    def run(*argv):
        args = parser.parse_args(argv)
        return table[args.command](args)

    assert run("palette", "extract", str(root / "labels"), "--out", str(tmp_path / "p.json")) == 0
    extracted = Palette.load(tmp_path / "p.json")
    assert {tuple(c) for c in extracted.colors} <= {tuple(c) for c in FACADES.colors}
    assert run("palette", "convert", str(root / "labels"), str(tmp_path / "ids"), "--palette", "facades") == 0
    for i in range(3):
        assert np.array_equal(cv2.imread(str(tmp_path / "ids" / f"{i}.png"), cv2.IMREAD_UNCHANGED), blocky_ids(i))
    assert "wrote 3 index map(s)" in capsys.readouterr().err


@pytest.mark.realdata
def test_facades_two_steps(shared_data, tmp_path):
    last = run_training(spec(shared_data / "facades", steps=2), tmp_path / "run")
    checkpoint = ckpt.load_checkpoint(tmp_path / "run")
    assert last.kind == "done" and checkpoint.meta["dataset"]["label_half"] == "right"
    assert checkpoint.meta["dataset"]["pairs"] == 400
    session = InferenceSession.from_checkpoint(tmp_path / "run", device="cpu")
    label_half = read_image(shared_data / "facades" / "val" / "1.jpg")[:, 256:]  # JPEG colours snap too
    assert session.translate(np.ascontiguousarray(label_half), seed=0).shape == (64, 64, 3)
