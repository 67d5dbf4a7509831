"""Bundled models: making them from runs (fp16, no machine paths), finding them by name, and the shipped ones
still giving the outputs they gave when they were bundled."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.cli.main import main as cli
from engine.core import bundled, checkpoint
from engine.core.config import DataConfig, TrainConfig
from engine.core.errors import CheckpointError, ConfigError
from engine.core.imageio import read_image, write_image
from engine.core.registry import get_family
from engine.families.stylegan2.latent import LatentSession
from engine.infer.inference import InferenceSession
from engine.train.training import RunSpec, run_training
from tests.engine.helpers import write_aligned_dataset
from tests.engine.test_pix2pix_engine import TINY

pytestmark = pytest.mark.usefixtures("one_torch_thread")
ROOT = Path(__file__).resolve().parents[2]
REFERENCES = ROOT / "tests" / "fixtures" / "bundled"
CARD = {"title": "Tiny test model", "task": "test", "draw_mode": "label", "dataset": "synthetic pairs",
        "licence": "CC0", "recipe": "ganvas train pix2pix --steps 2", "wall_time": "1 s",
        "metrics": {"facade_score_pixel_acc": 0.5}}


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(((a.astype(np.float64) - b.astype(np.float64)) ** 2).mean())
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("bundle")
    data = write_aligned_dataset(root / "data")
    spec = RunSpec("pix2pix", TINY, TrainConfig(steps=2, size=(32, 32), device="cpu", sample_every=2,
                                                checkpoint_every=2), DataConfig(path=str(data.resolve())))
    assert run_training(spec, root / "run").kind == "done"
    return root / "run"


def test_bundle_is_fp16_generator_with_its_discriminator_beside_and_no_machine_path(tiny_run, tmp_path):
    out = bundled.make_bundle(tiny_run, tmp_path / "tiny.safetensors", CARD)
    model = checkpoint.load_checkpoint(out)
    assert {name.split(".")[1] for name in model.tensors} == {"G"}
    assert all(t.dtype == torch.float16 for t in model.tensors.values() if t.is_floating_point())
    disc = checkpoint.load_checkpoint(bundled.discriminator_path(out))
    assert {name.split(".")[1] for name in disc.tensors} == {"D"}
    header = json.dumps(model.meta)
    assert str(tmp_path.parent) not in header and str(tiny_run) not in header
    assert model.meta["data_config"]["path"] == "" and model.meta["dataset"]["name"] == "synthetic pairs"
    assert model.meta["card"]["title"] == "Tiny test model" and "optimizers" not in model.meta
    # loads as float32 and answers like the training checkpoint it came from
    image = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    session = InferenceSession.from_checkpoint(out, device="cpu")
    assert next(session.generator.parameters()).dtype == torch.float32
    assert session.card.title == "Tiny test model" and session.card.draw_as == "label"
    original = InferenceSession.from_checkpoint(tiny_run, device="cpu").translate(image)
    assert psnr(session.translate(image), original) >= 40.0


def test_bundle_refuses_incomplete_cards_and_machine_paths(tiny_run, tmp_path):
    with pytest.raises(ConfigError, match="lacks licence"):
        bundled.make_bundle(tiny_run, tmp_path / "a.safetensors", {k: v for k, v in CARD.items() if k != "licence"})
    with pytest.raises(ConfigError, match="paths of this machine"):
        bundled.make_bundle(tiny_run, tmp_path / "b.safetensors", {**CARD, "recipe": f"train --data {tmp_path}"})
    assert not (tmp_path / "a.safetensors").exists() and not (tmp_path / "b.safetensors").exists()


def test_weights_beyond_fp16_are_refused_by_bundles_and_kept_fp32_in_snapshots(tiny_run, tmp_path):
    """fp16 tops out at 65504: a bundle refuses such a weight (it would become Inf), a step snapshot keeps it fp32."""
    source = checkpoint.load_checkpoint(tiny_run)
    tensors = dict(source.tensors)
    name = next(n for n in tensors if n.startswith("net.G") and tensors[n].is_floating_point())
    tensors[name] = tensors[name].clone().fill_(1e6)
    big = tmp_path / "big.safetensors"
    checkpoint.save_checkpoint(big, tensors, source.meta)
    with pytest.raises(CheckpointError, match="float16"):
        bundled.make_bundle(big, tmp_path / "out.safetensors", CARD)
    assert not (tmp_path / "out.safetensors").exists()
    runs = checkpoint.RunCheckpoints(tmp_path / "run")
    runs.save(7, tensors, source.meta)
    snapshot = checkpoint.load_checkpoint(runs.step_files()[0])
    assert snapshot.tensors[name].dtype == torch.float32 and bool(snapshot.tensors[name].isfinite().all())


def test_bundled_models_are_found_by_name_and_damaged_ones_are_named(tiny_run, tmp_path, monkeypatch, capsys):
    folder = tmp_path / "models"
    bundled.make_bundle(tiny_run, folder / "tiny.safetensors", CARD)
    (folder / "broken.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    monkeypatch.setattr(checkpoint, "models_folder", lambda: folder)
    monkeypatch.setattr(bundled, "models_folder", lambda: folder)
    assert checkpoint.resolve_checkpoint("tiny") == folder / "tiny.safetensors"
    models = {m.name: m for m in bundled.list_bundled()}
    assert models["tiny"].title == "Tiny test model" and models["tiny"].error is None
    assert "broken.safetensors" in models["broken"].error
    assert cli(["models"]) == 0
    listing = capsys.readouterr().out
    assert "tiny: Tiny test model" in listing and "broken: DAMAGED" in listing
    assert cli(["translate", "--checkpoint", "tiny", str(ROOT / "assets/samples/facade_labels.png"),
                "--out", str(tmp_path / "out")]) == 0
    assert read_image(tmp_path / "out" / "facade_labels.png").shape == (32, 32, 3)
    assert cli(["info", "nonexistent-model"]) == 5
    assert "nor a bundled model" in capsys.readouterr().err


# --- the shipped models --------------------------------------------------------------------------------------
# A fixed input per shipped model (a bundled drawing, or a real photo the model never trained on) and the
# inference options; the stored output in tests/fixtures/bundled was written when the model was bundled
# (GANVAS_WRITE_REFERENCES=1 rewrites it). A code change that silently alters a model's output fails here.
def reference_cases(shared: Path) -> dict[str, list[tuple[str, Path | None, dict]]]:
    horse = shared / "horse2zebra" / "trainA" / "n02381460_835.jpg"  # held back from the bundled model's training
    zebra = shared / "horse2zebra" / "trainB" / "n02391049_9136.jpg"
    return {
        "facades": [("sample", ROOT / "assets/samples/facade_labels.png", {})],
        "horse2zebra": [("horse", horse, {"direction": "AtoB"}), ("zebra", zebra, {"direction": "BtoA"})],
        "emoji-faces": [("sketch", ROOT / "assets/samples/face_sketch.png", {})],
        "facades-spade": [("sample-seed1", ROOT / "assets/samples/facade_labels.png", {"seed": 1})],
        "emoji-stylegan2": [("seeds0-3", None, {"seeds": [0, 1, 2, 3], "psi": 0.7})],
    }


def shipped_output(name: str, source: Path | None, options: dict) -> np.ndarray:
    """A bundled model's output: a translation of ``source``, or (StyleGAN2) its seeds side by side."""
    if source is None:
        return np.concatenate(list(LatentSession.from_checkpoint(name, device="cpu").generate(**options)), axis=1)
    return InferenceSession.from_checkpoint(name, device="cpu").translate(read_image(source), **options)


@pytest.mark.realdata
def test_every_shipped_model_loads_and_reproduces_its_reference_output(shared_data):
    shipped = bundled.list_bundled()
    assert shipped, "no bundled models in assets/models"
    cases = reference_cases(shared_data)
    for model in shipped:
        assert model.error is None, model.error
        assert model.path.stat().st_size <= 25 * 10**6, f"{model.name} is over 25 MB"
        assert model.name in cases, f"add a reference input for bundled model {model.name!r}"
        for label, source, options in cases[model.name]:
            output = shipped_output(model.name, source, options)
            reference = REFERENCES / f"{model.name}-{label}.png"
            if os.environ.get("GANVAS_WRITE_REFERENCES") == "1":
                write_image(reference, output)
            assert psnr(output, read_image(reference)) >= 40.0, f"{model.name} {label} drifted from its reference"
    total = sum(m.path.stat().st_size for m in shipped)
    total += sum(p.stat().st_size for p in (bundled.models_folder() / bundled.DISCRIMINATORS).glob("*"))
    assert total <= 100 * 10**6


def test_a_new_run_starts_from_a_bundled_model_with_its_discriminator(tiny_run, tmp_path, monkeypatch, capsys):
    from engine.families.pix2pix.family import Pix2Pix
    from engine.train.finetune import load_initial_weights, read_source

    folder = tmp_path / "models"
    bundled.make_bundle(tiny_run, folder / "tiny.safetensors", CARD)
    monkeypatch.setattr(checkpoint, "models_folder", lambda: folder)
    source = read_source("tiny")
    assert {name.split(".")[1] for name in source.tensors} == {"G", "D"}
    trainer = Pix2Pix.make_trainer(TINY, TrainConfig(steps=2, size=(32, 32), device="cpu"),
                                   DataConfig(path=str(write_aligned_dataset(tmp_path / "own"))), torch.device("cpu"))
    record = load_initial_weights(trainer, source)
    assert record == {"source": "tiny", "step": 2, "networks": ["G", "D"], "fresh": []}
    for name in ("G", "D"):
        for key, value in trainer.nets[name].state_dict().items():
            assert torch.equal(value, source.tensors[f"net.{name}.{key}"].to(value.dtype)), key
    # through the CLI: the run records where it started; a model of another family is refused
    data = write_aligned_dataset(tmp_path / "own2")
    assert cli(["train", "pix2pix", "--data", str(data), "--init", "tiny", "--steps", "2", "--size", "32",
                "--device", "cpu", "--out", str(tmp_path / "ft"), "--no-progress"]) == 0
    meta = checkpoint.read_metadata(tmp_path / "ft")
    assert meta["init"]["source"] == "tiny" and meta["model_config"]["ngf"] == TINY.ngf and meta["step"] == 2
    assert cli(["train", "cyclegan", "--data", str(data), "--init", "tiny", "--out", str(tmp_path / "x")]) == 2
    assert "is a pix2pix model" in capsys.readouterr().err


def test_a_label_model_fine_tuned_on_edges_draws_edges_not_its_palette(tmp_path):
    """Starting from a model that draws facades label maps, a run on edges -> photo pairs (read by the dataset
    check) clears the palette, so the app offers the edges pen for it; an explicit --palette is kept."""
    from dataclasses import replace

    source = tmp_path / "labels-model"
    spec = RunSpec("pix2pix", replace(TINY, palette="facades"),
                   TrainConfig(steps=1, size=(32, 32), device="cpu", sample_every=1, checkpoint_every=1),
                   DataConfig(path=str(write_aligned_dataset(tmp_path / "data"))))
    assert run_training(spec, source).kind == "done"
    edges = tmp_path / "edges"
    edges.mkdir()
    rng = np.random.default_rng(0)
    for index in range(3):
        drawing = np.full((32, 32, 3), 255, np.uint8)
        drawing[8 + index, :] = drawing[:, 20 - index] = 0
        write_image(edges / f"{index}.png", np.concatenate([drawing, rng.integers(0, 256, (32, 32, 3), np.uint8)], 1))
    common = ["train", "pix2pix", "--data", str(edges), "--init", str(source), "--steps", "1", "--size", "32",
              "--device", "cpu", "--no-progress"]
    assert cli([*common, "--out", str(tmp_path / "ft")]) == 0
    assert checkpoint.read_metadata(tmp_path / "ft")["model_config"]["palette"] == ""
    assert cli([*common, "--palette", "facades", "--out", str(tmp_path / "kept")]) == 0
    assert checkpoint.read_metadata(tmp_path / "kept")["model_config"]["palette"] == "facades"


def _train_process(spec: dict, tmp_path: Path, name: str, capsys) -> tuple[int, dict]:
    """``python -m engine.train.train_process --spec`` run in this process; (exit code, its last JSON line)."""
    import argparse
    import signal

    from engine.train.train_process import run

    spec_path = tmp_path / f"{name}.json"
    spec_path.write_text(json.dumps(spec))
    args = argparse.Namespace(resume=False, spec=str(spec_path), steps=None, retune=None, device=None,
                              run_dir=str(tmp_path / name))
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        code = run(args, sys.stdout)
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    return code, json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_the_training_process_starts_from_the_model_its_spec_names(tiny_run, tmp_path, monkeypatch, capsys):
    from engine.train.finetune import SPEC_KEY, inspect_source

    folder = tmp_path / "models"
    bundled.make_bundle(tiny_run, folder / "tiny.safetensors", CARD)
    monkeypatch.setattr(checkpoint, "models_folder", lambda: folder)
    info = inspect_source("tiny")  # what the training window shows and locks, from the headers alone
    assert (info.name, info.title, info.family, info.step, info.size) == ("tiny", CARD["title"], "pix2pix", 2, (32, 32))
    assert info.networks == ("G", "D") and info.model_config["ngf"] == TINY.ngf
    data = write_aligned_dataset(tmp_path / "own", count=2)
    spec = RunSpec("pix2pix", TINY, TrainConfig(steps=1, size=(32, 32), device="cpu", sample_every=1,
                                                checkpoint_every=1), DataConfig(path=str(data))).to_json()
    code, last = _train_process({**spec, SPEC_KEY: "tiny"}, tmp_path, "ft", capsys)
    assert code == 0 and last["kind"] == "done", last
    meta = checkpoint.read_metadata(tmp_path / "ft")
    assert meta["init"] == {"source": "tiny", "step": 2, "networks": ["G", "D"], "fresh": []}
    # the run's own record copied into a new spec starts nothing: no weights were loaded, so none is claimed
    copied = json.loads((tmp_path / "ft" / "config.json").read_text())
    assert copied["init"]["source"] == "tiny" and SPEC_KEY not in copied
    assert _train_process(copied, tmp_path, "plain", capsys)[0] == 0
    assert "init" not in checkpoint.read_metadata(tmp_path / "plain")
    # a model of another family is refused before any step, in one error line
    cyclegan = get_family("cyclegan").auto_config((32, 32), {"ngf": 4, "ndf": 4})
    other = {**RunSpec("cyclegan", cyclegan, TrainConfig(steps=1, size=(32, 32), device="cpu"),
                       DataConfig(path=str(data))).to_json(), SPEC_KEY: "tiny"}
    code, last = _train_process(other, tmp_path, "wrong", capsys)
    assert code != 0 and last["kind"] == "error" and "is a pix2pix model; this run trains cyclegan" in last["message"]
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes((folder / "tiny.safetensors").read_bytes()[:-100])
    with pytest.raises(CheckpointError, match="truncated"):
        inspect_source(broken)
