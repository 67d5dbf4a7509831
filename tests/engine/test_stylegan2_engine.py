"""StyleGAN2 family (training, exact resume) and the latent tools, on a tiny 32 px generator."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from engine.core.config import DataConfig, TrainConfig
from engine.families.stylegan2.family import StyleGAN2, StyleGAN2Config, diff_augment
from engine.families.stylegan2.latent import (
    Latent,
    LatentSession,
    load_directions,
    load_latent,
    parse_layer_range,
    save_directions,
    save_latent,
    write_animation,
)
from engine.train.training import RunSpec, run_training
from tests.engine.helpers import state_equal

TINY = {"z_dim": 32, "w_dim": 32, "channel_base": 512, "channel_max": 32, "mapping_layers": 2}


@pytest.fixture(scope="module")
def session() -> LatentSession:
    torch.set_num_threads(min(2, torch.get_num_threads()))
    s = LatentSession.untrained(StyleGAN2Config(resolution=32, **TINY), device="cpu")
    with torch.no_grad():  # a w_avg away from zero, as after training
        z = torch.randn(256, 32, generator=torch.Generator().manual_seed(0))  # not the global RNG: order-free
        s.generator.mapping_network.w_avg.copy_(s.ws_from_z(z)[:, 0].mean(0))
    return s


def test_truncation_zero_gives_the_average_image(session):
    images = session.generate([0, 5], psi=0.0)
    # A batch of two like generate's: one image alone takes the fused convolution, whose rounding differs.
    average = session.synthesize(session.generator.w_avg.cpu()[None, None].repeat(2, session.num_ws, 1))
    assert np.array_equal(images[0], average[0]) and np.array_equal(images[1], average[0])
    cut = session.truncate(session.w_from_seed(3)[None], 0.0, cutoff=2)[0]
    assert torch.allclose(cut[:2], session.w_avg.expand(2, -1)) and torch.equal(cut[2:], session.w_from_seed(3)[2:])


def test_style_mixing_full_range_equals_second_latent(session):
    a, b = session.w_from_seed(1), session.w_from_seed(2)
    assert torch.equal(session.mix(a, b, (0, session.num_ws)), b)
    mixed = session.mix(a, b, (2, 4))
    assert torch.equal(mixed[:2], a[:2]) and torch.equal(mixed[2:4], b[2:4]) and torch.equal(mixed[4:], a[4:])


def test_pca_directions_orthonormal_with_decreasing_variance(session):
    d = session.directions_pca(k=6, samples=1500)
    gram = d.vectors.double() @ d.vectors.double().T
    assert torch.allclose(gram, torch.eye(6, dtype=torch.float64), atol=1e-5)
    assert bool((d.values[:-1] >= d.values[1:]).all()) and 0 < float(d.values.sum()) <= 1


def test_sefa_directions_are_eigenvectors(session):
    layers = parse_layer_range("0-3", session.num_ws)
    assert layers == (0, 4)
    d = session.directions_sefa(k=5, layers=layers)
    weights = session.generator.modulation_weights(layers).double()
    a = weights.T @ weights
    for vector, value in zip(d.vectors.double(), d.values, strict=True):
        assert torch.allclose(a @ vector, value * vector, rtol=1e-4, atol=1e-4 * float(d.values[0]))
        assert abs(float(vector.norm()) - 1) < 1e-5
    edited = session.apply_direction(session.w_from_seed(0), d.vectors[0], 3.0, layers)
    delta = edited - session.w_from_seed(0)
    assert torch.allclose(delta[:4], 3.0 * d.vectors[0].expand(4, -1)) and delta[4:].abs().max() == 0


def test_projection_lowers_the_reconstruction_loss(session):
    target = session.generate([7], psi=0.8)[0]
    start = Latent(session.w_avg[None].repeat(session.num_ws, 1), "w")
    before = session.reconstruction_loss(target, start)
    events = list(session.project(target, steps=12, space="w", lr=0.1))
    assert [e.kind for e in events[:-1]] == ["step"] * 12 and events[-1].kind == "done"
    final = events[-1]
    assert final.image.shape == (32, 32, 3) and final.latent.ws.shape == (session.num_ws, 32)
    assert session.reconstruction_loss(target, final.latent) < 0.8 * before
    stopped = list(session.project(target, steps=50, should_stop=lambda: True))
    assert stopped[-1].kind == "stopped" and stopped[-1].latent is not None


def test_latent_and_directions_files_round_trip(session, tmp_path):
    latent = session.latent_from_seed(4, psi=0.7)
    path = save_latent(tmp_path / "a.npz", latent)
    back = load_latent(path, session.num_ws, session.w_dim)
    assert torch.equal(back.ws, latent.ws) and (back.seed, back.psi, back.space) == (4, 0.7, "w")
    plus = Latent(torch.randn(session.num_ws, 32), "w+", noise=[torch.randn(4, 4)], provenance={"x": 1})
    back = load_latent(save_latent(tmp_path / "b.npz", plus))
    assert torch.equal(back.ws, plus.ws) and torch.equal(back.noise[0], plus.noise[0]) and back.provenance == {"x": 1}
    d = session.directions_sefa(k=3, layers=(1, 3))
    back_d = load_directions(save_directions(tmp_path / "d.npz", d), session.w_dim)
    assert torch.equal(back_d.vectors, d.vectors) and torch.equal(back_d.values, d.values)
    assert (back_d.method, back_d.layers) == ("sefa", (1, 3))
    from engine.core.errors import CheckpointError

    with pytest.raises(CheckpointError, match="not a ganvas-latent"):
        load_latent(tmp_path / "d.npz")


@pytest.mark.parametrize("suffix", [".gif", ".mp4"])
def test_animation_files_have_the_right_frame_count(session, tmp_path, suffix):
    ws = session.interpolate([1, 2, 3], frames=7, space="z" if suffix == ".gif" else "w")
    assert ws.shape == (7, session.num_ws, 32)
    # the ends are the seeds' latents: exactly in w; in z up to float32 rounding of the slerp (measured <= 7e-7)
    assert torch.allclose(ws[0], session.w_from_seed(1), atol=1e-6)
    assert torch.allclose(ws[-1], session.w_from_seed(3), atol=1e-6)
    path = write_animation(tmp_path / f"walk{suffix}", session.synthesize(ws))
    if suffix == ".gif":
        ok, animation = cv2.imreadanimation(str(path))
        assert ok and len(animation.frames) == 7 and animation.frames[0].shape[:2] == (32, 32)
    else:
        capture = cv2.VideoCapture(str(path))
        count = 0
        while capture.read()[0]:
            count += 1
        capture.release()
        assert count == 7


def test_diffaug_is_differentiable_and_seeded():
    x = torch.rand(3, 3, 16, 16, requires_grad=True)
    ops = ("colour", "translation", "cutout")
    a = diff_augment(x, ops, torch.Generator().manual_seed(1))
    b = diff_augment(x, ops, torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and a.shape == x.shape
    a.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def _spec(data: Path, steps: int) -> RunSpec:
    config = StyleGAN2.auto_config((32, 32), {**TINY, "r1_interval": 2, "pl_interval": 2, "ema_kimg": 0.01,
                                              "pl_weight": 2.0, "style_mixing_prob": 0.9})  # every regulariser
    train = TrainConfig(steps=steps, batch_size=2, size=(32, 32), device="cpu", deterministic=True, seed=3,
                        sample_every=100, checkpoint_every=100, log_every=1)
    return RunSpec("stylegan2", config, train, DataConfig(path=str(data)))


def test_exact_resume_bit_for_bit(tmp_path):
    from engine.core.checkpoint import load_checkpoint

    data = StyleGAN2.write_synthetic_dataset(tmp_path / "data" / "sub", (40, 40), count=5).parent
    run_training(_spec(data, 2), tmp_path / "straight")
    run_training(_spec(data, 1), tmp_path / "split")
    last = run_training(None, tmp_path / "split", resume=True, steps=2)
    assert last.kind == "done" and last.step == 2 and last.images == 4  # progress counts images seen (kimg)
    a, b = load_checkpoint(tmp_path / "straight"), load_checkpoint(tmp_path / "split")
    for prefix in ("net.G", "net.D", "net.G_ema", "optim.G", "optim.D", "extra"):
        assert state_equal(a.group(prefix), b.group(prefix)), prefix
    assert torch.equal(a.tensors["rng.augment"], b.tensors["rng.augment"])
    assert a.meta["extra"] == b.meta["extra"] == {"step": 2, "kimg": 0.004}
    assert a.meta["dataset"]["images"] == 5
    # The checkpoint alone rebuilds the generator for the latent tools.
    session = LatentSession.from_checkpoint(tmp_path / "straight", device="cpu")
    assert session.generate([0]).shape == (1, 32, 32, 3)


def test_resume_retunes_loss_weights_and_refuses_other_changes(tmp_path, capsys):
    from engine.cli.main import main
    from engine.core.checkpoint import load_checkpoint

    data = StyleGAN2.write_synthetic_dataset(tmp_path / "data" / "sub", (40, 40), count=3).parent
    run = tmp_path / "run"
    run_training(_spec(data, 1), run)
    assert main(["train", "stylegan2", "--resume", str(run), "--steps", "2", "--r1-gamma", "0.1",
                 "--no-progress"]) == 0
    meta = load_checkpoint(run).meta
    assert meta["model_config"]["r1_gamma"] == 0.1 and meta["retunes"] == [{"step": 1, "r1_gamma": [1.0, 0.1]}]
    for argv, problem in ((["--channel-max", "16"], "channel_max cannot change"),
                          (["--lr", "0.001"], "lr_d, lr_g cannot change"),
                          (["--pl-weight", "0"], "cannot turn its regulariser on or off"),
                          (["--batch-size", "4"], "drop batch_size")):
        assert main(["train", "stylegan2", "--resume", str(run), "--steps", "3", *argv]) != 0
        assert problem in capsys.readouterr().err
    assert load_checkpoint(run).step == 2  # refused retunes train nothing
    # repeating the run's own values changes nothing (old and new flag names alike)
    assert main(["train", "stylegan2", "--resume", str(run), "--steps", "3", "--lr", "0.0025", "--betas", "0,0.99",
                 "--channel-max", str(meta["model_config"]["channel_max"]), "--no-progress"]) == 0
    assert load_checkpoint(run).step == 3 and load_checkpoint(run).meta["retunes"] == meta["retunes"]


def test_cli_latent_commands(tmp_path, capsys):
    import argparse

    from engine.cli.latent import LATENT_COMMANDS, add_latent_commands
    from engine.core.checkpoint import load_checkpoint
    from engine.core.errors import ConfigError, DatasetError
    from engine.core.imageio import read_image, write_image

    data = StyleGAN2.write_synthetic_dataset(tmp_path / "data", (32, 32), count=2)
    run_training(_spec(data, 1), tmp_path / "run")
    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers(dest="command")
    registry: dict = {}
    add_latent_commands(commands, registry)
    assert registry == LATENT_COMMANDS
    ck = str(tmp_path / "run")

    def run(*argv: str) -> int:
        args = parser.parse_args(list(argv))
        return registry[args.command](args)

    assert run("generate", "--checkpoint", ck, "--seeds", "0-2", "--psi", "0.7", "--out", str(tmp_path / "g"),
               "--save-latents") == 0
    assert read_image(tmp_path / "g" / "seed_0002.png").shape == (32, 32, 3)
    assert run("generate", "--checkpoint", ck, "--seeds", "1-2", "--psi", "1,0.5,0", "--grid", "8",
               "--out", str(tmp_path / "t")) == 0  # a truncation series: rows are seeds, columns psi
    series = read_image(tmp_path / "t" / "grid.png")
    assert series.shape == (2 + 2 * 34, 2 + 3 * 34, 3)
    assert np.array_equal(series[2:34, 2:34], read_image(tmp_path / "t" / "seed_0001_psi1.png"))
    assert np.array_equal(series[36:68, 70:102], read_image(tmp_path / "t" / "seed_0002_psi0.png"))
    assert np.array_equal(read_image(tmp_path / "t" / "seed_0001_psi0.png"), series[36:68, 70:102])  # w_avg
    with pytest.raises(ConfigError, match="invalid --psi"):
        run("generate", "--checkpoint", ck, "--psi", "high", "--out", str(tmp_path / "x"))
    assert run("directions", "--checkpoint", ck, "--method", "sefa", "--k", "2", "--layers", "0-2") == 0
    assert (tmp_path / "run" / "directions_sefa.npz").is_file()
    shutil.copy(tmp_path / "run" / "latest.safetensors", tmp_path / "faces.safetensors")  # a model file, by path
    assert run("directions", "--checkpoint", str(tmp_path / "faces.safetensors"), "--method", "pca", "--k", "2",
               "--samples", "64") == 0
    assert (tmp_path / "faces.directions_pca.npz").is_file()
    assert run("edit", "--checkpoint", ck, "--latent", str(tmp_path / "g" / "seed_0001.npz"), "--directions",
               str(tmp_path / "run" / "directions_sefa.npz"), "--index", "1", "--out", str(tmp_path / "e")) == 0
    assert read_image(tmp_path / "e" / "direction_01.png").shape[1] > 3 * 32
    capsys.readouterr()
    assert run("project", "--checkpoint", ck, str(tmp_path / "g" / "seed_0000.png"), "--steps", "3",
               "--out", str(tmp_path / "p"), "--no-progress") == 0
    scores = dict(part.split() for part in capsys.readouterr().out.split(": ", 1)[1].split(", "))
    target, projected = (read_image(tmp_path / "p" / f).astype(float) / 255 for f in ("target.png", "projected.png"))
    assert float(scores["L1"]) == pytest.approx(np.abs(target - projected).mean(), rel=1e-3)
    assert float(scores["PSNR"]) == pytest.approx(-10 * np.log10(((target - projected) ** 2).mean()), rel=1e-3)
    assert 0 < float(scores["SSIM"]) <= 1
    assert load_latent(tmp_path / "p" / "latent.npz").provenance["image"].endswith("seed_0000.png")
    from models.lpips import vgg16_features  # LPIPS on the user's VGG16 file (random weights here)

    torch.save({f"features.{k}": v for k, v in vgg16_features().state_dict().items()}, tmp_path / "vgg16.pth")
    assert run("project", "--checkpoint", ck, str(tmp_path / "g" / "seed_0000.png"), "--steps", "2",
               "--lpips", str(tmp_path / "vgg16.pth"), "--out", str(tmp_path / "pl"), "--no-progress") == 0
    assert float(capsys.readouterr().out.split("LPIPS ")[1].split()[0]) > 0
    # mix: column seeds on top, row seeds on the left; with every layer from the column seed, a mix is that seed.
    assert run("mix", "--checkpoint", ck, "--rows", "1-2", "--columns", "3-5", "--layers", "all",
               "--out", str(tmp_path / "mix_all.png")) == 0
    grid = read_image(tmp_path / "mix_all.png")
    assert grid.shape == (2 + 3 * 34, 2 + 4 * 34, 3)

    def cell(row: int, column: int) -> np.ndarray:
        return grid[2 + 34 * row: 34 * (row + 1), 2 + 34 * column: 34 * (column + 1)]

    assert (cell(0, 0) == 255).all()
    assert all(np.array_equal(cell(r, c), cell(0, c)) for r in (1, 2) for c in (1, 2, 3))
    assert not np.array_equal(cell(1, 0), cell(0, 1))
    assert run("mix", "--checkpoint", ck, "--rows", "1", "--columns", "3", "--layers", "middle",
               "--out", str(tmp_path / "mix.png")) == 0
    part = read_image(tmp_path / "mix.png")[36:68, 36:68]
    assert not np.array_equal(part, cell(0, 1)) and not np.array_equal(part, cell(1, 0))
    with pytest.raises(ConfigError, match="draws nothing at 64-1024 px"):
        run("mix", "--checkpoint", ck, "--layers", "fine", "--out", str(tmp_path / "x.png"))
    assert run("interpolate", "--checkpoint", ck, "--seeds", "1,2", "--frames", "3", "--out",
               str(tmp_path / "i.gif")) == 0
    # nearest: with a generated image added to the training folder, that seed's nearest image is the copy.
    data_folder = Path(load_checkpoint(ck).meta["dataset"]["folder"])
    write_image(data_folder / "copy_of_seed_2.png", read_image(tmp_path / "g" / "seed_0002.png"))
    capsys.readouterr()
    assert run("nearest", "--checkpoint", ck, "--seeds", "1-2", "--psi", "0.7", "--columns", "1",
               "--out", str(tmp_path / "n.png")) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith("seed    2  RMS    0.0") and lines[1].endswith("copy_of_seed_2.png")
    assert lines[2].startswith("3 training images") and "min 0.0" in lines[2]
    assert read_image(tmp_path / "n.png").shape[:2] == (2 * (32 + 4) + 4, 2 * 32 + 2 + 8)
    with pytest.raises(DatasetError, match="no images found"):
        (tmp_path / "empty").mkdir()
        run("nearest", "--checkpoint", ck, "--data", str(tmp_path / "empty"), "--out", str(tmp_path / "x.png"))


@pytest.mark.realdata
def test_minibatch_std_never_groups_real_with_generated_images(tmp_path):
    data = StyleGAN2.write_synthetic_dataset(tmp_path / "data" / "sub", (40, 40), count=4).parent
    spec = _spec(data, 1)
    trainer = StyleGAN2.make_trainer(spec.model, spec.train, spec.data, torch.device("cpu"))
    seen: list[int] = []
    trainer.D.mbstd.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0].shape[0]))
    trainer.train_step(trainer.next_batch())
    # D main pass on fakes, on reals (R1 on reals at step 2 of the interval), G pass on fakes: one batch each.
    assert seen and set(seen) == {spec.train.batch_size}


def test_trains_two_steps_on_emoji(request, tmp_path):
    try:  # tests/conftest.py may provide the shared data root
        root = Path(request.getfixturevalue("shared_data"))
    except pytest.FixtureLookupError:
        root = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
    folder = root / "emoji" / "twitter"
    if not folder.is_dir():
        if os.environ.get("GANVAS_REQUIRE_DATA") == "1":
            pytest.fail(f"real data missing: {folder}")
        pytest.skip(f"real data missing: {folder}")
    spec = _spec(folder, 2)
    spec.data = DataConfig(path=str(folder), cache=False)
    last = run_training(spec, tmp_path / "run")
    assert last.kind == "done" and (tmp_path / "run" / "samples" / "latest.png").is_file()


def test_directions_are_saved_beside_the_checkpoint_and_reused(tmp_path, monkeypatch):
    s = LatentSession.untrained(StyleGAN2Config(resolution=32, **TINY), device="cpu")
    s.path, s.meta = tmp_path / "latest.safetensors", {"step": 7}
    calls = []
    monkeypatch.setattr(s, "directions_sefa", lambda k, layers=None, f=s.directions_sefa: calls.append(k) or f(k))
    first = s.saved_or_new_directions("sefa", k=3)
    assert calls == [3] and (tmp_path / "directions_sefa.npz").is_file()
    again = s.saved_or_new_directions("sefa", k=2)  # fewer than saved: read from the file
    assert calls == [3] and torch.equal(again.vectors, first.vectors[:2])
    s.meta = {"step": 8}  # the checkpoint moved on: stale file, recomputed, the file left as it was
    s.saved_or_new_directions("sefa", k=3)
    assert calls == [3, 3] and load_directions(tmp_path / "directions_sefa.npz").provenance["step"] == 7
    pca = s.saved_or_new_directions("pca", k=2, samples=64)
    assert torch.equal(s.saved_or_new_directions("pca", k=2, samples=64).vectors, pca.vectors)


def test_models_sharing_a_folder_keep_their_own_directions(tmp_path):
    """Bundled models live side by side in assets/models: each model file has its own directions files."""
    for name in ("faces", "flags"):
        s = LatentSession.untrained(StyleGAN2Config(resolution=32, **TINY), device="cpu")
        s.path, s.meta = tmp_path / f"{name}.safetensors", {"step": 3}
        s.saved_or_new_directions("sefa", k=2)
    assert sorted(p.name for p in tmp_path.glob("*.npz")) == ["faces.directions_sefa.npz", "flags.directions_sefa.npz"]
