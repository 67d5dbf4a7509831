"""Importing run folders of the pix2pix/CycleGAN reference implementation (../shared/interop/reference_runs).

The expected outputs there were computed by the reference's own networks in ``eval()`` mode; an import with
``--batch-norm running`` must reproduce them through an inference session. Ganvas's default for imports is batch
norm with the input's statistics (the reference's ``test.py`` without ``--eval``), checked separately.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from engine.cli.main import main as cli
from engine.core import checkpoint as ckpt
from engine.core.errors import CheckpointError
from engine.infer.importing import reference_checkpoint
from engine.infer.inference import InferenceSession, model_card
from engine.infer.reference import read_train_opt
from models.resnet_generator import ResnetGenerator

pytestmark = [pytest.mark.usefixtures("one_torch_thread")]

TOLERANCE = 1e-5
RUNS = {  # run folder -> (family, [(Ganvas network, expected output key, direction)])
    "pix2pix_facades_ngf8": ("pix2pix", [("G", "latest_net_G_eval", None)]),
    "horse2zebra_ngf8": ("cyclegan", [("G_AB", "latest_net_G_A_eval", "AtoB"), ("G_BA", "latest_net_G_B_eval", "BtoA")]),
}


@pytest.fixture(scope="module")
def reference_runs(shared_data):
    folder = shared_data.parent / "interop" / "reference_runs"
    if not folder.is_dir():
        pytest.fail(f"{folder} is missing")
    return folder


def _translate(session: InferenceSession, batch: torch.Tensor, direction: str | None) -> torch.Tensor:
    return session.translate_tensor(batch, **({"direction": direction} if direction else {}))


@pytest.mark.realdata
@pytest.mark.parametrize("run_name", sorted(RUNS))
def test_import_reproduces_the_reference_outputs_in_eval_mode(reference_runs, tmp_path, run_name):
    run = reference_runs / run_name
    family, outputs = RUNS[run_name]
    out = tmp_path / "imported.safetensors"
    assert cli(["import", str(run), "--out", str(out), "--batch-norm", "running"]) == 0
    expected = np.load(run / "expected_outputs.npz")
    session = InferenceSession.from_checkpoint(out, device="cpu")
    assert session.card.family == family and session.card.trained
    batch = torch.from_numpy(expected["input"])
    for _, key, direction in outputs:
        difference = (_translate(session, batch, direction) - torch.from_numpy(expected[key])).abs().max()
        assert float(difference) <= TOLERANCE, f"{key}: max abs difference {float(difference):.3g}"
    # The discriminators come along, equal to the reference's tensors.
    saved = ckpt.load_checkpoint(out)
    options = read_train_opt(run / "train_opt.txt")
    for name, file in {"pix2pix": {"D": "latest_net_D.pth"},
                       "cyclegan": {"D_A": "latest_net_D_A.pth", "D_B": "latest_net_D_B.pth"}}[family].items():
        reference = torch.load(run / file, weights_only=True)
        assert saved.group(f"net.{name}").keys() == reference.keys()
        assert all(torch.equal(saved.group(f"net.{name}")[k], v) for k, v in reference.items())
    config = saved.meta["model_config"]
    assert config["ngf"] == int(options["ngf"]) and config["norm"] == options["norm"]
    assert tuple(saved.meta["train_config"]["size"]) == (int(options["crop_size"]),) * 2
    assert saved.meta["data_config"]["direction"] == options["direction"]


@pytest.mark.realdata
def test_pix2pix_import_defaults_to_the_inputs_batch_statistics(reference_runs):
    """Without ``--batch-norm running`` batch norm uses the input's statistics (dropout off), as Ganvas's own
    pix2pix does; that differs from the eval-mode outputs on this barely trained network."""
    run = reference_runs / "pix2pix_facades_ngf8"
    expected = np.load(run / "expected_outputs.npz")
    batch = torch.from_numpy(expected["input"])
    session = InferenceSession.from_checkpoint(run, device="cpu")  # the folder opens directly
    output = session.translate_tensor(batch)
    network = session.generator
    network.train()
    for module in network.modules():
        if isinstance(module, torch.nn.Dropout):
            module.eval()
    with torch.no_grad():
        by_hand = network(batch)
    assert float((output - by_hand).abs().max()) <= TOLERANCE
    assert float((output - torch.from_numpy(expected["latest_net_G_eval"])).abs().max()) > 0.1


@pytest.mark.realdata
def test_a_lone_pth_is_configured_from_its_tensors(reference_runs, tmp_path):
    for name, source in (("G.pth", "pix2pix_facades_ngf8/latest_net_G.pth"),
                         ("h2z_net_G_A.pth", "horse2zebra_ngf8/latest_net_G_A.pth")):
        shutil.copy(reference_runs / source, tmp_path / name)
    tensors, meta = reference_checkpoint(tmp_path / "G.pth", batch_norm="running")
    with_options = reference_checkpoint(reference_runs / "pix2pix_facades_ngf8", batch_norm="running")[1]
    for key in ("depth", "ngf", "norm", "in_channels", "out_channels"):
        assert meta["model_config"][key] == with_options["model_config"][key]
    assert meta["imported"]["options"] == "read off the tensors"
    # A .pth inside a run folder takes the whole run (both CycleGAN generators and train_opt.txt).
    whole = model_card(reference_runs / "horse2zebra_ngf8" / "latest_net_G_B.pth")
    assert whole.family == "cyclegan" and whole.size == (128, 128)
    # One CycleGAN generator alone cannot make a two-way checkpoint.
    assert cli(["import", str(tmp_path / "h2z_net_G_A.pth"), "--out", str(tmp_path / "x.safetensors")]) == 5


@pytest.mark.realdata
def test_import_pth_takes_both_cyclegan_generators(reference_runs, tmp_path):
    run = reference_runs / "horse2zebra_ngf8"
    out = tmp_path / "h2z.safetensors"
    flags = ["cyclegan", "--size", "128", "--ngf", "8", "--n-blocks", "9"]
    assert cli(["import-pth", str(run / "latest_net_G_A.pth"), "--out", str(out), *flags]) == 2
    assert cli(["import-pth", str(run / "latest_net_G_A.pth"), "--out", str(out), *flags,
                "--pth-b", str(run / "latest_net_G_B.pth")]) == 0
    expected = np.load(run / "expected_outputs.npz")
    session = InferenceSession.from_checkpoint(out, device="cpu")
    output = session.translate_tensor(torch.from_numpy(expected["input"]), direction="BtoA")
    assert float((output - torch.from_numpy(expected["latest_net_G_B_eval"])).abs().max()) <= TOLERANCE


def _reference_resnet_state(net: ResnetGenerator, without_bias: bool) -> dict[str, torch.Tensor]:
    """``net``'s tensors as the reference names them (``conv_block``), its convs without bias if asked."""
    state = {k.replace(".body.", ".conv_block."): v for k, v in net.state_dict().items()}
    last = max(int(k.split(".")[1]) for k in state)
    if without_bias:
        state = {k: v for k, v in state.items() if not k.endswith("bias") or int(k.split(".")[1]) == last}
    return state


def test_norm_none_and_errors_of_reference_folders(tmp_path):
    """``--norm none`` reference convs have no bias (zero here); missing files and foreign nets are named."""
    torch.manual_seed(0)
    nets = {}
    for name in ("G_A", "G_B"):
        net = ResnetGenerator(3, 3, ngf=4, n_blocks=2, norm="none")
        for module in list(net.modules())[:-3]:
            if isinstance(module, torch.nn.Conv2d | torch.nn.ConvTranspose2d):
                torch.nn.init.zeros_(module.bias)
        nets[name] = net
        torch.save(_reference_resnet_state(net, without_bias=True), tmp_path / f"latest_net_{name}.pth")
    (tmp_path / "train_opt.txt").write_text("----- Options -----\n  netG: resnet_2blocks\n  ngf: 4\n"
                                            "  norm: none   \t[default: instance]\n  crop_size: 32\n"
                                            "  model: cycle_gan\n----- End -----\n")
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    session = InferenceSession.from_checkpoint(tmp_path, device="cpu")
    with torch.no_grad():
        assert torch.allclose(session.translate_tensor(x, direction="BtoA"), nets["G_B"](x), atol=1e-6)
    (tmp_path / "latest_net_G_B.pth").unlink()
    with pytest.raises(CheckpointError, match="latest_net_G_B.pth is missing"):
        reference_checkpoint(tmp_path)
    (tmp_path / "train_opt.txt").write_text("netG: unet_256\nmodel: cycle_gan\n")
    torch.save(_reference_resnet_state(nets["G_B"], without_bias=True), tmp_path / "latest_net_G_B.pth")
    with pytest.raises(CheckpointError, match="train_opt.txt: a CycleGAN generator with netG unet_256"):
        reference_checkpoint(tmp_path)
    (tmp_path / "lone").mkdir()
    torch.save({"x": torch.zeros(1)}, tmp_path / "lone" / "other.pth")
    with pytest.raises(CheckpointError, match="other.pth: not a reference U-Net or ResNet"):
        reference_checkpoint(tmp_path / "lone" / "other.pth")


def test_official_spade_generator_names_and_old_spectral_norm_import(tmp_path):
    """A generator laid out as NVlabs/SPADE saves it (``head_0``, ``mlp_shared``, old-API spectral norm tensors
    ``weight_orig``/``weight_u``/``weight_v``) imports with ``import-pth spade`` and computes the same image."""
    from models.spade import SPADEGenerator

    torch.manual_seed(0)
    official = SPADEGenerator(13, 3, ngf=4, size=(64, 64), spectral=False, hidden=8)
    for block in official.blocks:
        for name in ("conv_0", "conv_1", "conv_s"):
            if hasattr(block, name):
                setattr(block, name, torch.nn.utils.spectral_norm(getattr(block, name)))  # the API SPADE used
    label = torch.nn.functional.one_hot(torch.randint(13, (1, 64, 64)), 13).permute(0, 3, 1, 2).float()
    official.train()
    with torch.no_grad():
        official(label)  # one power iteration: u and v are no longer their initial values
    official.eval()
    with torch.no_grad():
        expected = official(label)
    names = {0: "head_0", 1: "G_middle_0", 2: "G_middle_1", 3: "up_0", 4: "up_1", 5: "up_2", 6: "up_3"}
    parts = {"shared": "mlp_shared", "gamma": "mlp_gamma", "beta": "mlp_beta", "norm": "param_free_norm"}
    state = {}
    for key, value in official.state_dict().items():
        words = key.split(".")
        if words[0] == "blocks":
            words[0:2] = [names[int(words[1])]]
        words = [{"head": "fc", "to_image": "conv_img"}.get(words[0], words[0])] + [parts.get(w, w) for w in words[1:]]
        state[".".join(words)] = value
    assert "head_0.conv_0.weight_orig" in state and "up_0.norm_s.mlp_shared.0.weight" in state
    torch.save(state, tmp_path / "latest_net_G.pth")
    out = tmp_path / "spade.safetensors"
    assert cli(["import-pth", str(tmp_path / "latest_net_G.pth"), "--out", str(out), "spade", "--size", "64",
                "--palette", "facades", "--contain-dont-care", "--ngf", "4", "--spade-hidden", "8"]) == 0
    session = InferenceSession.from_checkpoint(out, device="cpu")
    assert float((session.translate_tensor(label) - expected).abs().max()) <= TOLERANCE
