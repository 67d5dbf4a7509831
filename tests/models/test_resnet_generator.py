import pytest
import torch

from models.cycle_losses import cycle_loss, identity_loss
from models.resnet_generator import ResnetGenerator

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("n_blocks", [6, 9])
@pytest.mark.parametrize("upsampling", ["transpose", "resize", "bilinear"])
def test_shapes(n_blocks, upsampling):
    torch.manual_seed(0)
    net = ResnetGenerator(3, 3, ngf=8, n_blocks=n_blocks, upsampling=upsampling)
    assert net.stride == 4
    for h, w in [(64, 64), (32, 48), (44, 20)]:
        out = net(torch.randn(2, 3, h, w))
        assert out.shape == (2, 3, h, w)


def test_channels_norms_and_dropout():
    torch.manual_seed(0)
    for norm in ["instance", "batch", "none"]:
        net = ResnetGenerator(1, 4, ngf=8, n_blocks=2, norm=norm, dropout=True)
        assert net(torch.randn(2, 1, 32, 36)).shape == (2, 4, 32, 36)


def test_range_is_tanh_bounded():
    torch.manual_seed(0)
    net = ResnetGenerator(ngf=8, n_blocks=6)
    out = net(torch.randn(1, 3, 64, 64) * 50)
    assert out.min() >= -1 and out.max() <= 1
    assert out.std() > 0


def test_init_is_normal_002():
    torch.manual_seed(0)
    net = ResnetGenerator(ngf=16, n_blocks=2)
    conv = net.model[1]
    assert abs(conv.weight.std().item() - 0.02) < 0.003
    assert abs(conv.weight.mean().item()) < 0.003


@pytest.mark.parametrize("size", [(63, 64), (64, 66), (30, 30)])
def test_bad_size_raises(size):
    net = ResnetGenerator(ngf=8, n_blocks=1)
    with pytest.raises(ValueError, match="divisible by 4"):
        net(torch.zeros(1, 3, *size))


def test_bad_options_raise():
    with pytest.raises(ValueError, match="upsampling"):
        ResnetGenerator(upsampling="pixelshuffle")
    with pytest.raises(ValueError, match="norm"):
        ResnetGenerator(norm="layer")


def test_gradients_reach_the_stem():
    net = ResnetGenerator(ngf=8, n_blocks=2, upsampling="resize")
    net(torch.randn(1, 3, 32, 32)).mean().backward()
    assert net.model[1].weight.grad is not None and net.model[1].weight.grad.abs().sum() > 0


def test_cycle_loss_hand_computed():
    real = torch.tensor([[0.0, 1.0], [-1.0, 0.5]])
    rec = torch.tensor([[0.5, 1.0], [0.0, -0.5]])
    # |diffs| = 0.5, 0, 1, 1 -> mean 0.625; weight 10 -> 6.25
    assert cycle_loss(real, rec, 10.0).item() == pytest.approx(6.25)
    assert cycle_loss(real, real, 10.0).item() == 0.0


def test_identity_loss_hand_computed():
    real = torch.tensor([1.0, -1.0, 0.0, 0.25])
    same = torch.tensor([0.0, -1.0, 0.5, 0.25])
    # |diffs| = 1, 0, 0.5, 0 -> mean 0.375; CycleGAN weight 0.5 * 10 -> 1.875
    assert identity_loss(real, same, 0.5 * 10.0).item() == pytest.approx(1.875)


def test_losses_are_differentiable():
    real = torch.zeros(1, 3, 4, 4)
    fake = torch.ones(1, 3, 4, 4, requires_grad=True)
    (cycle_loss(real, fake, 2.0) + identity_loss(real, fake, 1.0)).backward()
    assert torch.allclose(fake.grad, torch.full_like(fake, 3.0 / fake.numel()))
