"""Compiled backends: same outputs as torch, a compile cache that survives restarts and corruption, and a
clean fallback to torch for a model a backend cannot take."""

from __future__ import annotations

import logging
import os
import time

import pytest
import torch
from torch import nn

import engine.infer.backends
import engine.infer.export
from engine.families.pix2pix.family import Pix2Pix
from engine.infer.backends import BF16, available_backends, cache_root, native_bf16
from engine.infer.graphs import ExportGraph
from engine.infer.inference import InferenceSession

pytestmark = pytest.mark.usefixtures("one_torch_thread")
CONFIG = {"depth": 6, "ngf": 8}


def pix2pix_session() -> InferenceSession:
    return InferenceSession.untrained("pix2pix", size=(64, 64), device="cpu", **CONFIG)  # seeded: same weights


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("compiled")


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_compiled_backend_matches_torch_and_reuses_the_cache(backend, cache, monkeypatch):
    assert backend in available_backends()
    session = pix2pix_session()
    batch = torch.rand(1, 3, 64, 64) * 2 - 1
    expected = session.translate_tensor(batch)
    assert session.use_backend(backend, cache_dir=cache) == f"backend {backend}"
    assert session.backend == backend
    assert (session.translate_tensor(batch) - expected).abs().max() <= 1e-4
    # A second launch finds the exported (and for OpenVINO the compiled) model: nothing is exported again.
    monkeypatch.setattr(engine.infer.export, "export_onnx", lambda *args, **kwargs: pytest.fail("exported again"))
    again = pix2pix_session()
    again.use_backend(backend, cache_dir=cache)
    assert again.backend == backend and again._compiled.rebuilt == []
    assert (again.translate_tensor(batch) - expected).abs().max() <= 1e-4
    if backend == "openvino":
        assert list(next(cache.iterdir()).glob("generator.1x3x64x64.*.blob"))


def test_a_corrupt_cache_is_rebuilt(cache):
    session = pix2pix_session()
    session.use_backend("openvino", cache_dir=cache)
    folder = next(cache.iterdir())
    for path in folder.iterdir():
        path.write_bytes(b"not a model")
    batch = torch.rand(1, 3, 64, 64) * 2 - 1
    expected = session.translate_tensor(batch)
    fresh = pix2pix_session()
    assert fresh.use_backend("openvino", cache_dir=cache) == "backend openvino"
    assert fresh._compiled.rebuilt == ["generator"]
    assert (fresh.translate_tensor(batch) - expected).abs().max() <= 1e-4
    assert (folder / "generator.onnx").read_bytes()[:4] != b"not "


class _DataDependent(nn.Module):
    """A network no graph exporter can take: Python control flow on a value of its input."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 2 if float(x.mean()) > 0 else x


def test_a_model_the_backend_cannot_take_falls_back_to_torch(cache, monkeypatch, caplog):
    def untraceable(network, card):
        return [ExportGraph("generator", _DataDependent(), (torch.zeros(1, 3, 64, 64),), ("input",), ("output",))]

    monkeypatch.setattr(Pix2Pix, "export_graphs", classmethod(lambda cls, network, card: untraceable(network, card)))
    session = pix2pix_session()
    batch = torch.rand(1, 3, 64, 64) * 2 - 1
    expected = session.translate_tensor(batch)
    with caplog.at_level(logging.INFO, logger="ganvas"):
        note = session.use_backend("openvino", cache_dir=cache / "other")
    assert session.backend == "torch" and session.backend_note == note
    assert note.startswith("backend openvino failed, using torch (") and "cannot be exported" in note
    assert [record.levelname for record in caplog.records if record.name == "ganvas"] == ["WARNING"]
    assert torch.equal(session.translate_tensor(batch), expected)


def test_auto_times_every_backend_and_keeps_the_fastest(cache):
    session = pix2pix_session()
    note = session.use_backend("auto", cache_dir=cache)
    assert session.backend in (*available_backends(), BF16)
    assert note.startswith(f"backend {session.backend} (auto: ")
    for backend in available_backends():
        assert f"{backend} " in note
    assert (BF16 in note) == native_bf16()  # timed only where the CPU has bf16 units


@pytest.mark.skipif(not native_bf16(), reason="this CPU has no bf16 units (AMX or AVX-512 BF16)")
def test_bf16_stays_close_to_torch_and_auto_drops_it_when_it_does_not(cache, monkeypatch):
    from tests.engine.test_bundled import psnr

    session = pix2pix_session()
    images = [label_blocks(200 + i) for i in range(3)]
    fp32 = [session.translate(image) for image in images]
    assert session.use_backend(BF16, cache_dir=cache) == f"backend {BF16}"
    assert list(cache.glob("*/generator.bf16.1x3x64x64.*.blob"))  # cached apart from the fp32 blob
    for image, reference in zip(images, fp32, strict=True):
        assert 40.0 <= psnr(session.translate(image), reference) < float("inf")  # close, yet not fp32 itself
    monkeypatch.setattr(engine.infer.backends, "AUTO_MIN_PSNR", 1000.0)
    note = pix2pix_session().use_backend("auto", cache_dir=cache)
    assert f"; {BF16} failed: its output is " in note and "dB from torch's (auto needs 1000)" in note


def test_bf16_without_bf16_units_falls_back_to_torch_with_the_reason(cache, monkeypatch):
    monkeypatch.setattr(engine.infer.backends, "native_bf16", lambda: False)
    session = pix2pix_session()
    note = session.use_backend(BF16, cache_dir=cache)
    assert session.backend == "torch"
    assert note == (f"backend {BF16} failed, using torch (the {BF16} backend needs a CPU with bf16 units (AMX or "
                    "AVX-512 BF16); this one has none)")
    assert BF16 not in pix2pix_session().use_backend("auto", cache_dir=cache)


def label_blocks(seed: int):
    """A 64 x 64 RGB image of 8 x 8 flat colour blocks (a label map's kind of input)."""
    import numpy as np

    colours = np.random.default_rng(seed).integers(0, 256, (8, 8, 3))
    return np.kron(colours, np.ones((8, 8, 1))).astype(np.uint8)


def test_int8_is_opt_in_calibrated_close_to_fp32_and_cached(cache, monkeypatch):
    import nncf

    from tests.engine.test_bundled import psnr

    session = pix2pix_session()
    held_out = [label_blocks(100 + i) for i in range(3)]
    fp32 = [session.translate(image) for image in held_out]
    note = session.use_backend("openvino-int8", cache_dir=cache, calibration=[label_blocks(i) for i in range(6)])
    assert note == "backend openvino-int8" and session.backend == "openvino-int8"
    for image, reference in zip(held_out, fp32, strict=True):
        assert 35.0 <= psnr(session.translate(image), reference) < float("inf")  # close, yet not fp32 itself
    quantized = next(cache.glob("*/generator.int8-*.xml"))
    assert 'type="FakeQuantize"' in quantized.read_text()
    # the same calibration again: the quantized model comes from the cache; none given: torch, and why
    monkeypatch.setattr(nncf, "quantize", lambda *args, **kwargs: pytest.fail("quantized again"))
    again = pix2pix_session()
    again.use_backend("openvino-int8", cache_dir=cache, calibration=[label_blocks(i) for i in range(6)])
    assert again.backend == "openvino-int8"
    assert "needs calibration inputs" in pix2pix_session().use_backend("openvino-int8", cache_dir=cache)
    assert "openvino-int8" not in pix2pix_session().use_backend("auto", cache_dir=cache)  # never picked by auto


def test_cache_root_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("GANVAS_CACHE_DIR", str(tmp_path / "c"))
    assert cache_root() == tmp_path / "c"
    monkeypatch.delenv("GANVAS_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache_root() == tmp_path / "ganvas" / "compiled"
    with pytest.raises(engine.infer.backends.ConfigError, match="unknown backend 'tpu'"):
        pix2pix_session().use_backend("tpu")


def test_cli_export_and_translate_on_a_backend(tmp_path, cache, monkeypatch, capsys):
    import numpy as np
    import onnx

    from engine.cli.main import main
    from engine.core.checkpoint import save_checkpoint
    from engine.core.imageio import read_image, write_image
    from engine.families.pix2pix.family import Pix2PixConfig

    config = Pix2PixConfig(depth=6, ngf=8)
    network = pix2pix_session().generator
    checkpoint = save_checkpoint(tmp_path / "p2p.safetensors", {f"net.G.{k}": v for k, v in network.state_dict().items()},
                                 {"family": "pix2pix", "model_config": vars(config), "train_config": {"size": [64, 64]},
                                  "step": 3})
    assert main(["export", str(checkpoint), "--out", str(tmp_path / "p2p.onnx")]) == 0
    assert "wrote" in capsys.readouterr().err
    assert {p.key for p in onnx.load(str(tmp_path / "p2p.onnx")).metadata_props} >= {"ganvas.opset", "ganvas.step"}
    assert main(["export", str(checkpoint), "--out", str(tmp_path / "x.onnx"), "--graph", "mapping"]) == 2
    assert "pix2pix models have the graphs generator" in capsys.readouterr().err
    image = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    write_image(tmp_path / "in.png", image)
    monkeypatch.setenv("GANVAS_CACHE_DIR", str(cache))  # the same model as above: compiled already
    outputs = {}
    for backend in ("torch", "openvino", "openvino-int8"):
        assert main(["translate", "--checkpoint", str(checkpoint), "--backend", backend, str(tmp_path / "in.png"),
                     "--out", str(tmp_path / backend)]) == 0
        outputs[backend] = read_image(tmp_path / backend / "in.png").astype(int)
    err = capsys.readouterr().err
    assert "backend openvino\n" in err and "backend openvino-int8\n" in err  # int8 calibrated on the input itself
    assert np.abs(outputs["torch"] - outputs["openvino"]).max() <= 1  # uint8 rounding of a 1e-4 difference
    assert 0 < np.abs(outputs["torch"] - outputs["openvino-int8"]).mean() <= 2


def test_cli_bench_times_a_checkpoint_on_each_backend(tmp_path, cache, monkeypatch, capsys):
    import json

    from engine.cli.main import main
    from engine.core.checkpoint import save_checkpoint
    from engine.families.pix2pix.family import Pix2PixConfig

    network = pix2pix_session().generator
    checkpoint = save_checkpoint(tmp_path / "p2p.safetensors", {f"net.G.{k}": v for k, v in network.state_dict().items()},
                                 {"family": "pix2pix", "model_config": vars(Pix2PixConfig(**CONFIG)),
                                  "train_config": {"size": [64, 64]}, "step": 3})
    monkeypatch.setenv("GANVAS_CACHE_DIR", str(cache))
    assert main(["bench", "infer", "pix2pix", "--checkpoint", str(checkpoint), "--backend",
                 "torch,openvino,openvino-int8", "--steps", "1", "--repeat", "2", "--warmup", "0", "--json"]) == 0
    results = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["backend"] for r in results] == ["torch", "openvino", "openvino-int8"]  # int8: on its example input
    for result in results:
        assert result["checkpoint"] == str(checkpoint) and result["size"] == "64x64"  # its native size
        assert result["generator_params"] == sum(p.numel() for p in network.parameters())
        assert len(result["repeats_ms"]) == 2 and result["ms_per_image"] > 0
    assert main(["bench", "infer", "cyclegan", "--checkpoint", str(checkpoint), "--steps", "1"]) == 2
    assert "is a pix2pix model, not cyclegan" in capsys.readouterr().err


def test_the_bench_sitting_stops_at_once_without_a_virtual_display(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "scripts" / "bench_sitting.py"
    done = subprocess.run([sys.executable, str(script), "--out", str(tmp_path / "s.md")], capture_output=True,
                          text=True, env={"PATH": str(tmp_path)}, timeout=60)
    assert done.returncode == 2 and not (tmp_path / "s.md").exists()
    assert "xvfb-run and Xvfb not found" in done.stderr and "--skip-app" in done.stderr


def test_the_cache_is_pruned_least_recently_used_first(tmp_path, monkeypatch):
    from engine.infer.backends import USED_STAMP, prune_cache

    now = time.time()
    folders = {}
    for name, age_s in (("oldest", 7200), ("older", 3600), ("recent", 60), ("kept", 9000)):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "generator.onnx").write_bytes(b"x" * 1000)
        (folder / USED_STAMP).touch()
        os.utime(folder / USED_STAMP, (now - age_s, now - age_s))
        folders[name] = folder
    assert prune_cache(tmp_path, limit_bytes=4000) == []  # within the limit: nothing goes
    # over it: the least recently used go first, never the folder in use nor one used minutes ago
    assert prune_cache(tmp_path, limit_bytes=2500, keep=folders["kept"]) == [folders["oldest"], folders["older"]]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept", "recent"]
    monkeypatch.setenv("GANVAS_CACHE_LIMIT_MB", "lots")
    with pytest.raises(engine.infer.backends.ConfigError, match="GANVAS_CACHE_LIMIT_MB='lots' is not a number"):
        prune_cache(tmp_path)
    session = pix2pix_session()  # a bad limit never stops inference: the cache is just not pruned
    assert session.use_backend("openvino", cache_dir=tmp_path / "c") == "backend openvino"
    assert session._compiled.rebuilt == []


def test_compiling_stamps_the_model_folder_and_prunes_others(cache, tmp_path, monkeypatch):
    from engine.infer.backends import USED_STAMP

    stale = tmp_path / "stale"
    stale.mkdir()
    (stale / "generator.onnx").write_bytes(b"x" * 4096)
    os.utime(stale / "generator.onnx", (0, 0))  # used long ago (no stamp: its newest file tells)
    monkeypatch.setenv("GANVAS_CACHE_LIMIT_MB", "0.001")
    session = pix2pix_session()
    assert session.use_backend("openvino", cache_dir=tmp_path) == "backend openvino"
    assert not stale.exists()
    assert len(list(tmp_path.glob(f"*/{USED_STAMP}"))) == 1  # the model just compiled stays, stamped
