import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from engine.cli.main import main as cli_main
from engine.core.checkpoint import load_checkpoint
from engine.core.config import DataConfig, TrainConfig
from engine.core.errors import ConfigError, DatasetError
from engine.core.imageio import read_image, write_image
from engine.core.registry import get_family
from engine.families.cyclegan.family import (
    CycleGAN,
    CycleGANConfig,
    discriminator_losses,
    generator_losses,
    tile_overlap,
)
from engine.families.cyclegan.tiling import pad_and_run
from engine.families.cyclegan.unaligned import UnalignedImages, unaligned_split
from engine.infer.evaluation import evaluate_checkpoint
from engine.infer.inference import InferenceSession
from engine.train.training import RunSpec, run_training
from models.resnet_generator import ResnetGenerator

TINY = dict(ngf=8, ndf=8, n_blocks=2)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _write_domains(root: Path, n_a: int = 3, n_b: int = 5, size: tuple[int, int] = (40, 48)) -> Path:
    rng = np.random.default_rng(1)
    for domain, count in (("trainA", n_a), ("trainB", n_b)):
        for index in range(count):
            write_image(root / domain / f"{index}.png", rng.integers(0, 256, (*size, 3), dtype=np.uint8))
    return root


def _spec(data: Path, steps: int, size: int = 32, **model) -> RunSpec:
    config = CycleGANConfig(**{**TINY, "pool_size": 2, **model})
    train = TrainConfig(steps=steps, size=(size, size), device="cpu", deterministic=True, decay_start=2,
                        sample_every=2, checkpoint_every=2, compile="off")
    return RunSpec("cyclegan", config, train, DataConfig(path=str(data)))


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cyc")
    data = _write_domains(root / "data")
    run_training(_spec(data, steps=2), root / "run")
    return root / "run"


# --- config ----------------------------------------------------------------------------------------------


def test_config_validation_and_auto_config():
    assert get_family("cyclegan") is CycleGAN
    config = CycleGANConfig()
    assert (config.ngf, config.ndf, config.n_blocks, config.norm, config.gan_mode) == (64, 64, 9, "instance", "lsgan")
    assert (config.lambda_a, config.lambda_b, config.lambda_identity, config.pool_size) == (10, 10, 0.5, 50)
    for bad in (dict(gan_mode="wgan"), dict(norm="layer"), dict(upsampling="pixelshuffle"), dict(n_blocks=-1),
                dict(lambda_a=-1.0), dict(pool_size=-2), dict(ngf=0), dict(out_channels=1)):
        with pytest.raises(ConfigError):
            CycleGANConfig(**bad)
    assert CycleGANConfig(out_channels=1, lambda_identity=0).out_channels == 1
    assert CycleGAN.auto_config((128, 128), {}).n_blocks == 6
    assert CycleGAN.auto_config((256, 256), {}).n_blocks == 9
    assert CycleGAN.auto_config((128, 128), {"n_blocks": 9}).n_blocks == 9


# --- losses against hand-computed cases -------------------------------------------------------------------


class _Shift(nn.Module):
    def __init__(self, amount: float) -> None:
        super().__init__()
        self.amount = amount

    def forward(self, x):
        return x + self.amount


class _Const(nn.Module):
    """A 'discriminator' answering ``value`` on a 2x2 patch grid."""

    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def forward(self, x):
        return torch.full((x.shape[0], 1, 2, 2), self.value)


def test_identity_generators_give_zero_cycle_and_identity():
    real_a, real_b = torch.rand(2, 3, 8, 8) * 2 - 1, torch.rand(2, 3, 8, 8) * 2 - 1
    config = CycleGANConfig(**TINY)
    losses, fake_a, fake_b = generator_losses(nn.Identity(), nn.Identity(), _Const(0.0), _Const(1.0),
                                              real_a, real_b, config)
    assert set(losses) == {"G_A", "G_B", "cycle_A", "cycle_B", "idt_A", "idt_B"}
    for name in ("cycle_A", "cycle_B", "idt_A", "idt_B"):
        assert losses[name].item() == 0.0
    assert torch.equal(fake_a, real_b) and torch.equal(fake_b, real_a)
    # lsgan: (0 - 1)^2 for D_A's answer on fake A, (1 - 1)^2 for D_B's answer on fake B
    assert losses["G_A"].item() == 1.0 and losses["G_B"].item() == 0.0
    assert all(v.dim() == 0 for v in losses.values())


def test_cycle_and_identity_terms_with_known_shifts():
    # G_AB(x) = x + 0.5, G_BA(x) = x - 0.25:
    #   rec_a = a + 0.25 -> cycle_A = lambda_a * 0.25;  rec_b = b + 0.25 -> cycle_B = lambda_b * 0.25
    #   G_BA(a) = a - 0.25 -> idt_A = 0.5 * lambda_a * 0.25;  G_AB(b) = b + 0.5 -> idt_B = 0.5 * lambda_b * 0.5
    real_a, real_b = torch.zeros(1, 3, 4, 4), torch.full((1, 3, 4, 4), 0.2)
    config = CycleGANConfig(**TINY, lambda_a=2.0, lambda_b=4.0, lambda_identity=0.5, gan_mode="vanilla")
    losses, _, _ = generator_losses(_Shift(0.5), _Shift(-0.25), _Const(0.0), _Const(0.0), real_a, real_b, config)
    assert losses["cycle_A"].item() == pytest.approx(0.5)
    assert losses["cycle_B"].item() == pytest.approx(1.0)
    assert losses["idt_A"].item() == pytest.approx(0.25)
    assert losses["idt_B"].item() == pytest.approx(1.0)
    assert losses["G_A"].item() == pytest.approx(math.log(2))  # BCE(logit 0, target 1)
    no_identity = CycleGANConfig(**TINY, lambda_identity=0.0)
    losses, _, _ = generator_losses(_Shift(0.5), _Shift(-0.25), _Const(0.0), _Const(0.0), real_a, real_b,
                                    no_identity)
    assert losses["idt_A"].item() == 0.0 and losses["idt_B"].item() == 0.0
    assert losses["cycle_A"].item() == pytest.approx(2.5)


def test_discriminator_losses_known_values():
    x = torch.zeros(1, 3, 4, 4)
    config = CycleGANConfig(**TINY)  # lsgan: 0.5 * ((real - 1)^2 + fake^2)
    out = discriminator_losses(_Const(1.0), _Const(0.5), x, x, x, x, config)
    assert out["D_A"].item() == pytest.approx(0.5 * (0 + 1))
    assert out["D_B"].item() == pytest.approx(0.5 * (0.25 + 0.25))


def test_train_step_reports_the_loss_function_on_its_batch(tmp_path):
    data = _write_domains(tmp_path / "data")
    spec = _spec(data, steps=4)
    trainer = CycleGAN.make_trainer(spec.model, spec.train, spec.data, torch.device("cpu"))
    real_a, real_b = trainer.next_batch()
    assert real_a.shape == real_b.shape == (1, 3, 32, 32)
    before = {name: {k: v.clone() for k, v in net.state_dict().items()} for name, net in trainer.nets.items()}
    nets = trainer.nets
    with torch.no_grad():
        expected, _, _ = generator_losses(nets["G_AB"], nets["G_BA"], nets["D_A"], nets["D_B"], real_a, real_b,
                                          spec.model)
    losses = trainer.train_step((real_a, real_b))
    assert list(losses) == ["D_A", "D_B", "G_A", "G_B", "cycle_A", "cycle_B", "idt_A", "idt_B"]
    for name, value in expected.items():
        assert torch.equal(losses[name], value), name
    assert all(v.dim() == 0 and not v.requires_grad for v in losses.values())
    # every network moved
    for name, net in trainer.nets.items():
        assert any(not torch.equal(before[name][k], v) for k, v in net.state_dict().items()), name
    assert len(trainer.pool_a) == len(trainer.pool_b) == 1


# --- data --------------------------------------------------------------------------------------------------


def test_unaligned_layouts_and_conversion(tmp_path):
    root = _write_domains(tmp_path / "root", n_a=2, n_b=3)
    write_image(tmp_path / "root" / "trainB" / "grey.png", np.full((40, 48), 90, np.uint8))
    rgba = np.zeros((40, 48, 4), np.uint8)  # written as BGRA by OpenCV: fully transparent
    import cv2

    cv2.imwrite(str(tmp_path / "root" / "trainA" / "clear.png"), rgba)
    images = UnalignedImages(DataConfig(path=str(root), background=(10, 20, 30)), (32, 32))
    assert (len(images.a), len(images.b), len(images)) == (3, 4, 4)
    clear = images.a[images.a.files.index(root / "trainA" / "clear.png")]
    assert clear.shape == (3, 36, 36)  # load size 1.117 x 32
    assert clear[:, 0, 0].tolist() == [10, 20, 30]
    grey = images.b[images.b.files.index(root / "trainB" / "grey.png")]
    assert grey.shape[0] == 3 and bool((grey == 90).all())
    # two arbitrary folders, and BtoA swaps the domains
    pair = f"{root / 'trainB'},{root / 'trainA'}"
    swapped = UnalignedImages(DataConfig(path=pair, direction="BtoA"), (32, 32))
    assert swapped.a.folder == root / "trainA" and swapped.b.folder == root / "trainB"
    with pytest.raises(DatasetError):
        UnalignedImages(DataConfig(path=str(tmp_path / "root" / "trainA")), (32, 32))
    with pytest.raises(DatasetError):
        UnalignedImages(DataConfig(path=f"{root / 'trainA'},{root / 'nope'}"), (32, 32))
    with pytest.raises(DatasetError):
        UnalignedImages(DataConfig(path=str(root), layout="aligned"), (32, 32))


def test_eval_split_resolution(tmp_path):
    root = _write_domains(tmp_path / "root")
    split = unaligned_split(root, "val")
    assert split.fallback and split.folder_a == root / "trainA"
    _write_domains(tmp_path / "root2")
    (tmp_path / "root2" / "testA").mkdir()
    (tmp_path / "root2" / "testB").mkdir()
    split = unaligned_split(tmp_path / "root2", "val")
    assert not split.fallback and split.folder_b == tmp_path / "root2" / "testB"
    assert not unaligned_split(root, "train").fallback


def test_b_is_drawn_at_random_from_the_augment_generator(tmp_path):
    data = _write_domains(tmp_path / "data", n_a=2, n_b=5)
    spec = _spec(data, steps=4, size=32)
    one = CycleGAN.make_trainer(spec.model, spec.train, spec.data, torch.device("cpu"))
    two = CycleGAN.make_trainer(spec.model, spec.train, spec.data, torch.device("cpu"))
    batches = [one.next_batch() for _ in range(6)]
    for real_a, real_b in batches:
        other_a, other_b = two.next_batch()
        assert torch.equal(real_a, other_a) and torch.equal(real_b, other_b)
    assert one.sampler.epoch == 1  # epoch = max(|A|, |B|) = 5 draws
    assert len({tuple(b.flatten()[:8].tolist()) for _, b in batches}) > 2  # B varies


# --- exact resume --------------------------------------------------------------------------------------------


def test_resume_is_bit_exact_including_pools(tmp_path):
    data = _write_domains(tmp_path / "data")
    run_training(_spec(data, steps=4), tmp_path / "straight")
    run_training(_spec(data, steps=2), tmp_path / "split")
    run_training(None, tmp_path / "split", resume=True, steps=4)
    straight, split = load_checkpoint(tmp_path / "straight"), load_checkpoint(tmp_path / "split")
    assert straight.step == split.step == 4
    assert set(straight.tensors) == set(split.tensors)
    assert int(straight.tensors["extra.pool_A.count"]) == 2  # the pool is full and has been drawn from
    for prefix in ("net.G_AB.", "net.G_BA.", "net.D_A.", "net.D_B.", "optim.", "extra.pool_", "rng."):
        assert any(k.startswith(prefix) for k in straight.tensors), prefix
    for key, value in straight.tensors.items():
        assert torch.equal(value, split.tensors[key]), key
    read = [json.loads(line) for line in (tmp_path / "straight" / "log.jsonl").read_text().splitlines()]
    resumed = [json.loads(line) for line in (tmp_path / "split" / "log.jsonl").read_text().splitlines()]
    assert read == resumed
    grid = read_image(tmp_path / "split" / "samples" / "latest.png")
    assert grid.shape[1] > 6 * 32 and grid.shape[0] > 3 * 32  # 3 rows, 6 images + gutter


# --- inference ---------------------------------------------------------------------------------------------


def test_translate_both_directions_at_odd_size(trained_run):
    session = InferenceSession.from_checkpoint(trained_run, device="cpu")
    assert isinstance(session.generator, nn.ModuleDict)
    image = np.random.default_rng(0).integers(0, 256, (50, 70, 3), dtype=np.uint8)
    a_to_b = session.translate(image, direction="AtoB")
    b_to_a = session.translate(image, direction="BtoA")
    assert a_to_b.shape == b_to_a.shape == (50, 70, 3)
    assert not np.array_equal(a_to_b, b_to_a)
    assert np.array_equal(session.translate(image), a_to_b)  # AtoB is the default
    # the same as the checkpoint's G_BA run by hand (padded to 52x72 and cropped)
    config = CycleGANConfig(**load_checkpoint(trained_run).meta["model_config"])
    g_ba = ResnetGenerator(3, 3, config.ngf, config.n_blocks, config.norm, config.upsampling).eval()
    g_ba.load_state_dict(load_checkpoint(trained_run).group("net.G_BA"))
    batch = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 127.5 - 1
    with torch.no_grad():
        expected = pad_and_run(g_ba, batch, 4)
    expected = ((expected.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)[0].permute(1, 2, 0).numpy()
    assert np.abs(expected.astype(int) - b_to_a.astype(int)).max() <= 1
    with pytest.raises(ConfigError):
        session.translate(image, direction="sideways")
    with pytest.raises(ConfigError):
        session.translate(image, style=3)
    with pytest.raises(ConfigError):
        session.translate(image, tile=-1)


def test_tiled_equals_untiled_when_the_image_fits(trained_run):
    session = InferenceSession.from_checkpoint(trained_run, device="cpu")  # instance norm
    batch = torch.rand(1, 3, 50, 70) * 2 - 1
    whole = session.translate_tensor(batch, direction="BtoA")
    assert torch.equal(session.translate_tensor(batch, direction="BtoA", tile=128), whole)


def test_tiled_matches_untiled_when_the_receptive_field_is_covered():
    # norm none and no residual blocks: receptive radius 15 px < overlap // 4 = 16 px for 256 px tiles, so
    # tiling must reproduce the untiled result. (With instance norm, or 9 blocks, tiles only come close.)
    session = InferenceSession.untrained("cyclegan", size=(64, 64), device="cpu", ngf=8, ndf=8, n_blocks=0,
                                         norm="none")
    torch.manual_seed(0)
    for module in session.generator.modules():
        if isinstance(module, nn.Conv2d | nn.ConvTranspose2d):
            nn.init.kaiming_normal_(module.weight)
    assert tile_overlap(256) == 64
    batch = torch.rand(1, 3, 300, 390) * 2 - 1
    whole = session.translate_tensor(batch, direction="AtoB")
    tiled = session.translate_tensor(batch, direction="AtoB", tile=256)
    assert tiled.shape == whole.shape == (1, 3, 300, 390)
    assert whole.std() > 0.2
    assert (tiled - whole).abs().max().item() < 1e-4


def test_large_images_are_tiled_automatically_on_cpu():
    shapes = []

    class Recorder(nn.Module):
        def forward(self, x):
            shapes.append(tuple(x.shape[-2:]))
            return -x

    network = nn.ModuleDict({"G_AB": Recorder(), "G_BA": Recorder()})
    small = torch.rand(1, 3, 1024, 1022)
    assert torch.equal(CycleGAN.infer(network, small, direction="BtoA"), -small)
    assert shapes == [(1024, 1024)]  # padded to a multiple of 4, one piece
    shapes.clear()
    large = torch.rand(1, 3, 1030, 1030)
    out = CycleGAN.infer(network, large)
    assert out.shape == large.shape and torch.allclose(out, -large)
    assert len(shapes) > 1 and all(max(s) <= 512 for s in shapes)


# --- evaluation, CLI, benchmarks ---------------------------------------------------------------------------------


def test_eval_reports_cycle_l1_both_ways(trained_run):
    data = trained_run.parent / "data"
    result = evaluate_checkpoint(trained_run, data, device="cpu")
    assert result["family"] == "cyclegan" and result["step"] == 2
    assert result["images_A"] == 3 and result["images_B"] == 5
    assert 0 < result["cycle_L1_A"] < 1 and 0 < result["cycle_L1_B"] < 1
    limited = evaluate_checkpoint(trained_run, data, device="cpu", limit=1)
    assert limited["images_A"] == limited["images_B"] == 1


def test_cli_train_translate_eval_bench(tmp_path, capsys):
    data = _write_domains(tmp_path / "data", n_a=2, n_b=2)
    run = tmp_path / "run"
    assert cli_main(["train", "cyclegan", "--data", f"{data / 'trainA'},{data / 'trainB'}", "--size", "32",
                     "--ngf", "8", "--ndf", "8", "--n-blocks", "1", "--steps", "1", "--out", str(run),
                     "--device", "cpu", "--no-progress", "--pool-size", "3"]) == 0
    meta = load_checkpoint(run).meta
    assert meta["model_config"]["pool_size"] == 3 and meta["model_config"]["n_blocks"] == 1
    image = tmp_path / "in.png"
    write_image(image, np.zeros((30, 42, 3), np.uint8))
    assert cli_main(["translate", "--checkpoint", str(run), "--direction", "BtoA", str(image),
                     "--out", str(tmp_path / "out"), "--device", "cpu"]) == 0
    assert read_image(tmp_path / "out" / "in.png").shape == (30, 42, 3)
    capsys.readouterr()
    assert cli_main(["eval", "--checkpoint", str(run), "--data", f"{data / 'trainA'},{data / 'trainB'}",
                     "--device", "cpu", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["images_A"] == 2
    for kind in ("train", "infer"):
        assert cli_main(["bench", kind, "cyclegan", "--size", "32", "--ngf", "8", "--n-blocks", "1",
                         "--device", "cpu", "--steps", "1", "--warmup", "0", "--repeat", "1", "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["family"] == "cyclegan"


@pytest.mark.realdata
def test_two_steps_on_horse2zebra(shared_data, tmp_path):
    data = shared_data / "horse2zebra"
    last = run_training(_spec(data, steps=2, size=32), tmp_path / "run")
    assert last.kind == "done" and all(math.isfinite(v) for v in last.losses.values())
    meta = load_checkpoint(tmp_path / "run").meta
    assert meta["dataset"]["images_A"] == 1067 and meta["dataset"]["images_B"] == 1334
    result = evaluate_checkpoint(tmp_path / "run", data, device="cpu", limit=2)
    assert result["images_A"] == 2 and "no test split" in result["folders"]
