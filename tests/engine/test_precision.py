"""Mixed precision and the CUDA path: the choice logic on any machine, the real thing on a GPU (``cuda`` marker).

``scripts/gpu_check.sh`` runs the ``cuda`` tests on a GPU machine; here they are skipped.
"""

from __future__ import annotations

import warnings

import pytest
import torch

from engine.core import checkpoint as ckpt
from engine.core.config import DataConfig, TrainConfig
from engine.core.device import cpu_has_bf16
from engine.families.pix2pix.family import Pix2PixConfig
from engine.train import common
from engine.train.common import Precision, choose_precision
from engine.train.training import RunSpec, run_training
from models.stylegan2 import ModulatedConv2d, demodulation_coefficients
from tests.engine.helpers import state_equal, write_aligned_dataset

CUDA = torch.device("cuda")
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.mark.parametrize(("device", "amp", "bf16", "expected"), [
    ("cpu", True, True, "fp32"),  # not on the CPU unless cpu_bf16 asks (below)
    ("cuda", False, True, "fp32"),
    ("cuda", True, True, "bf16"),  # Ampere and later
    ("cuda", True, False, "fp16"),  # Volta, Turing: fp16 with a gradient scaler
])
def test_precision_choice(device, amp, bf16, expected):
    assert choose_precision(torch.device(device), amp, bf16_supported=lambda d: bf16) == expected
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a CUDA GradScaler on a machine without CUDA warns and disables itself
        precision = Precision(torch.device(device), amp, bf16_supported=lambda d: bf16)
    assert precision.kind == expected and (precision.scaler is not None) == (expected == "fp16")


@pytest.mark.parametrize(("asked", "units", "expected"), [
    (False, True, "fp32"),  # fp32 unless asked for, even where the CPU has bf16 units
    (True, True, "bf16"),
    (True, False, "fp32"),  # emulated bf16 would be slower than fp32
])
def test_cpu_bf16_only_when_asked_and_the_cpu_has_the_units(asked, units, expected):
    cpu = torch.device("cpu")
    assert choose_precision(cpu, True, bf16_supported=lambda d: units, cpu_bf16=asked) == expected
    precision = Precision(cpu, True, bf16_supported=lambda d: units, cpu_bf16=asked)
    assert precision.kind == expected and precision.scaler is None
    if expected == "bf16":
        with precision.autocast():
            assert torch.nn.functional.linear(torch.randn(2, 4), torch.randn(3, 4)).dtype == torch.bfloat16


def test_cpu_bf16_units_are_read_from_the_cpu_flags(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512_bf16 amx_tile\n")
    assert cpu_has_bf16(info)
    info.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f\n")
    assert not cpu_has_bf16(info)
    assert not cpu_has_bf16(tmp_path / "missing")  # not Linux: no bf16 claimed


@pytest.mark.skipif(not cpu_has_bf16(), reason="this CPU has no bf16 units")
def test_a_cpu_bf16_run_trains_and_keeps_fp32_finite_weights(tmp_path):
    data = write_aligned_dataset(tmp_path / "d", count=2)
    train = TrainConfig(steps=4, size=(32, 32), device="cpu", cpu_bf16=True, checkpoint_every=2)
    spec = RunSpec("pix2pix", Pix2PixConfig(depth=5, ngf=4, ndf=4), train, DataConfig(path=str(data)))
    run_training(spec, tmp_path / "run")
    meta = ckpt.read_metadata(tmp_path / "run")
    assert meta["train_config"]["cpu_bf16"] is True and meta["step"] == 4
    tensors = [t for t in ckpt.load_checkpoint(tmp_path / "run").tensors.values() if t.is_floating_point()]
    assert tensors and all(t.dtype == torch.float32 and torch.isfinite(t).all() for t in tensors)


def test_cpu_runs_store_an_empty_scaler_state(tmp_path):
    data = write_aligned_dataset(tmp_path / "d", count=2)
    spec = RunSpec("pix2pix", Pix2PixConfig(depth=5, ngf=4, ndf=4),
                   TrainConfig(steps=1, size=(32, 32), device="cpu", amp=True), DataConfig(path=str(data)))
    run_training(spec, tmp_path / "run")
    assert ckpt.read_metadata(tmp_path / "run")["grad_scaler"] == {}


def test_demodulation_stays_fp32_under_autocast():
    conv = ModulatedConv2d(8, 8, 3, w_dim=16)
    styles, weight = torch.randn(2, 8) * 3, conv.weight * conv.weight_gain
    reference = demodulation_coefficients(styles, weight)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        coefficients = demodulation_coefficients(styles.bfloat16(), weight)
    assert coefficients.dtype == torch.float32
    torch.testing.assert_close(coefficients, reference, rtol=1e-2, atol=0)  # only the bf16 rounding of styles


# --- on a GPU ------------------------------------------------------------------------------------------------


def _cuda_spec(data, steps=4, amp=True, **model):
    train = TrainConfig(steps=steps, size=(32, 32), batch_size=2, device="cuda", deterministic=True, amp=amp,
                        compile="off", sample_every=2, checkpoint_every=2)
    return RunSpec("pix2pix", Pix2PixConfig(depth=5, ngf=8, ndf=8, **model), train, DataConfig(path=str(data)))


def _stop_after(steps):
    calls = iter(range(10**6))
    return lambda: next(calls) >= steps


@pytest.mark.parametrize("bf16", [True, False], ids=["bf16", "fp16"])
@pytest.mark.cuda
@needs_cuda
def test_cuda_amp_training_resumes_exactly(tmp_path, monkeypatch, bf16):
    if bf16 and not common.bf16_capable(CUDA):
        pytest.skip("this GPU has no bf16")
    monkeypatch.setattr(common, "bf16_capable", lambda device: bf16)
    data = write_aligned_dataset(tmp_path / "d", count=4)
    run_training(_cuda_spec(data), tmp_path / "straight")
    run_training(_cuda_spec(data), tmp_path / "split", should_stop=_stop_after(2))
    run_training(None, tmp_path / "split", resume=True)
    a, b = ckpt.load_checkpoint(tmp_path / "straight"), ckpt.load_checkpoint(tmp_path / "split")
    assert b.step == 4 and all(torch.isfinite(v).all() for v in a.group("net.G").values())
    assert ("scale" in a.meta["grad_scaler"]) == (not bf16) and a.meta["grad_scaler"] == b.meta["grad_scaler"]
    for group in ("net.G", "net.D", "optim.G", "optim.D"):
        assert state_equal(a.group(group), b.group(group)), group


@pytest.mark.cuda
@needs_cuda
def test_cuda_layout_and_autotuning():
    from engine.families.pix2pix.family import Pix2Pix

    config = Pix2PixConfig(depth=5, ngf=8, ndf=8)
    net = Pix2Pix.build_generator(config)
    common.prepare_module(net, CUDA, TrainConfig(compile="off"))
    conv = next(m for m in net.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last) and torch.backends.cudnn.benchmark
    with common.autocast(CUDA, TrainConfig(amp=True)):
        out = net(torch.rand(2, 3, 32, 32, device=CUDA))
    assert out.dtype == (torch.bfloat16 if common.bf16_capable(CUDA) else torch.float16)


@pytest.mark.cuda
@needs_cuda
def test_cuda_stylegan2_regularisers_under_amp(tmp_path):
    from engine.families.stylegan2.family import StyleGAN2, StyleGAN2Config

    data = StyleGAN2.write_synthetic_dataset(tmp_path / "d", (32, 32), count=8)
    config = StyleGAN2Config(resolution=32, z_dim=32, w_dim=32, mapping_layers=2, channel_base=512,
                             channel_max=32, r1_interval=2, pl_interval=2)
    spec = RunSpec("stylegan2", config, TrainConfig(steps=4, size=(32, 32), batch_size=4, device="cuda", amp=True,
                                                    compile="off", sample_every=4, checkpoint_every=4),
                   DataConfig(path=str(data)))
    run_training(spec, tmp_path / "run")
    meta = ckpt.read_metadata(tmp_path / "run")
    losses = meta["metrics"]["losses"]
    assert all(abs(v) < 1e6 for v in losses.values()) and losses["R1"] > 0 and losses["PL"] > 0
