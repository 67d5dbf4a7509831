"""ONNX export of every family: ONNX Runtime computes what the torch session computes (max abs diff <= 1e-4)."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from engine.infer.export import OPSET, export_session, graph_paths
from engine.infer.inference import InferenceSession

pytestmark = pytest.mark.usefixtures("one_torch_thread")
TOLERANCE = 1e-4


def run_onnx(path, *inputs: torch.Tensor) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [item.name for item in session.get_inputs()]
    return session.run(None, {name: tensor.numpy() for name, tensor in zip(names, inputs, strict=True)})[0]


def props(path) -> dict[str, str]:
    return {prop.key: prop.value for prop in onnx.load(str(path)).metadata_props}


def test_pix2pix_export_keeps_batch_statistics_and_dynamic_size(tmp_path):
    session = InferenceSession.untrained("pix2pix", size=(64, 64), device="cpu", depth=6, ngf=8, dropout=True)
    [path] = export_session(session, tmp_path / "p2p.onnx")
    assert path == tmp_path / "p2p.onnx"
    meta = props(path)
    assert meta["ganvas.opset"] == str(OPSET) and meta["ganvas.family"] == "pix2pix"
    assert meta["ganvas.batch_norm"] == "batch statistics"
    assert json.loads(meta["ganvas.model_config"])["ngf"] == 8
    assert onnx.load(str(path)).opset_import[0].version == OPSET
    torch.manual_seed(1)
    for batch in (torch.rand(2, 3, 64, 64) * 2 - 1, torch.rand(1, 3, 128, 64) * 2 - 1):  # batch and H dynamic
        expected = session.translate_tensor(batch)
        got = run_onnx(path, batch)
        assert got.shape == tuple(expected.shape)
        assert np.abs(got - expected.numpy()).max() <= TOLERANCE
    # Batch statistics really are the input's: one image alone differs from the same image in a batch of two.
    pair = torch.rand(2, 3, 64, 64) * 2 - 1
    assert np.abs(run_onnx(path, pair)[:1] - run_onnx(path, pair[:1])).max() > 1e-3


def test_cyclegan_exports_each_direction(tmp_path):
    session = InferenceSession.untrained("cyclegan", size=(64, 64), device="cpu", ngf=8, n_blocks=2,
                                         in_channels=3, out_channels=1, lambda_identity=0.0)
    paths = export_session(session, tmp_path / "horse.onnx")
    assert [p.name for p in paths] == ["horse.AtoB.onnx", "horse.BtoA.onnx"]
    assert props(paths[1])["ganvas.graph"] == "BtoA"
    assert graph_paths(tmp_path / "ba.onnx", ["BtoA"]) == {"BtoA": tmp_path / "ba.onnx"}  # one graph: FILE itself
    image_a, image_b = torch.rand(1, 3, 48, 80) * 2 - 1, torch.rand(2, 1, 64, 64) * 2 - 1
    for path, image, direction in ((paths[0], image_a, "AtoB"), (paths[1], image_b, "BtoA")):
        expected = session.translate_tensor(image, direction=direction)
        got = run_onnx(path, image)
        assert got.shape == tuple(expected.shape)
        assert np.abs(got - expected.numpy()).max() <= TOLERANCE


def test_spade_exports_generator_and_style_encoder(tmp_path):
    session = InferenceSession.untrained("spade", size=(64, 64), device="cpu", ngf=8, use_encoder=True, z_dim=16,
                                         image_size=(64, 64))
    generator_path, encoder_path = export_session(session, tmp_path / "spade.onnx")
    assert (generator_path.name, encoder_path.name) == ("spade.generator.onnx", "spade.encoder.onnx")
    config = session.generator.config
    label = session.family.example_input(config, (64, 64), batch_size=2)
    style = torch.rand(1, 3, 64, 64) * 2 - 1
    expected = session.translate_tensor(label[:1], style=style)
    z = run_onnx(encoder_path, torch.nn.functional.interpolate(style, size=(session.generator.E.input_size,) * 2,
                                                              mode="bilinear", align_corners=False))
    got = run_onnx(generator_path, label[:1], torch.from_numpy(z))
    assert np.abs(got - expected.numpy()).max() <= TOLERANCE
    seeded = session.translate_tensor(label, seed=3)
    z = torch.randn(2, config.z_dim, generator=torch.Generator().manual_seed(3))
    assert np.abs(run_onnx(generator_path, label, z) - seeded.numpy()).max() <= TOLERANCE


def test_stylegan2_exports_mapping_with_truncation_input_and_synthesis(tmp_path):
    session = InferenceSession.untrained("stylegan2", size=(32, 32), device="cpu", resolution=32, z_dim=32, w_dim=32,
                                         mapping_layers=2, channel_base=256, channel_max=32)
    with torch.no_grad():  # a w_avg away from zero, so truncation shows
        session.generator.mapping_network.w_avg.normal_()
    mapping, synthesis = export_session(session, tmp_path / "sg.onnx")
    z = torch.randn(2, 32)
    for psi, cutoff in ((1.0, None), (0.5, None), (0.3, 2)):
        expected = session.translate_tensor(z, psi=psi, cutoff=cutoff, noise_mode="const")
        num_ws = session.generator.num_ws
        ws = run_onnx(mapping, z, torch.tensor([psi]), torch.tensor([num_ws if cutoff is None else cutoff]))
        got = run_onnx(synthesis, torch.from_numpy(ws))
        assert np.abs(got - expected.numpy()).max() <= TOLERANCE
    assert props(mapping)["ganvas.note.psi"].startswith("truncation")
