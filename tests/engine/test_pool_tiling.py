import pytest
import torch
from torch import nn

from engine.core.errors import CheckpointError, ConfigError
from engine.families.cyclegan.pool import ImagePool
from engine.families.cyclegan.tiling import pad_and_run, translate_tiled

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _batch(start, n=2):
    # images whose every pixel holds a unique id, so returned images can be traced back
    ids = torch.arange(start, start + n, dtype=torch.float32)
    return ids.view(n, 1, 1, 1).expand(n, 3, 4, 4).clone()


def test_pool_returns_input_until_full():
    pool = ImagePool(size=6)
    g = torch.Generator().manual_seed(0)
    for k in range(3):
        images = _batch(2 * k)
        assert torch.equal(pool.query(images, g), images)
    assert len(pool) == 6


def test_pool_swaps_about_half_once_full():
    size = 10
    pool = ImagePool(size=size)
    g = torch.Generator().manual_seed(123)
    pool.query(_batch(0, size), g)
    stored = set(range(size))
    swapped = total = 0
    for k in range(200):
        images = _batch(1000 + 4 * k, 4)
        out = pool.query(images, g)
        assert out.shape == images.shape
        for new, got in zip(images, out, strict=True):
            total += 1
            new_id, got_id = int(new[0, 0, 0]), int(got[0, 0, 0])
            if got_id != new_id:
                swapped += 1
                assert got_id in stored  # an image that was in the pool
                stored.remove(got_id)
                stored.add(new_id)
    assert len(stored) == size == len(pool)
    assert 0.4 < swapped / total < 0.6


def test_pool_state_dict_round_trip():
    g = torch.Generator().manual_seed(7)
    pool = ImagePool(size=5)
    for k in range(4):
        pool.query(_batch(10 * k, 3), g)
    state = pool.state_dict()
    assert state["images"].shape == (5, 3, 4, 4) and int(state["count"]) == 5

    clone = ImagePool(size=5)
    clone.load_state_dict(state)
    g_state = g.get_state()
    g2 = torch.Generator()
    g2.set_state(g_state)
    for k in range(20):
        images = _batch(500 + 3 * k, 3)
        assert torch.equal(pool.query(images, g), clone.query(images, g2))


def test_pool_partial_state_and_empty_state():
    g = torch.Generator().manual_seed(0)
    pool = ImagePool(size=4)
    empty = pool.state_dict()
    assert int(empty["count"]) == 0
    pool.query(_batch(0, 2), g)
    clone = ImagePool(size=4)
    clone.load_state_dict(pool.state_dict())
    assert len(clone) == 2
    clone.load_state_dict(empty)
    assert len(clone) == 0


def test_pool_rejects_bad_state_and_size():
    pool = ImagePool(size=2)
    with pytest.raises(CheckpointError):
        pool.load_state_dict({"images": torch.zeros(3, 3, 4, 4), "count": torch.tensor(3)})
    with pytest.raises(CheckpointError):
        pool.load_state_dict({"count": torch.tensor(1)})
    with pytest.raises(ConfigError):
        ImagePool(size=-1)


def test_pool_size_zero_is_passthrough():
    pool = ImagePool(size=0)
    g = torch.Generator().manual_seed(0)
    images = _batch(0, 3)
    before = g.get_state()
    assert pool.query(images, g) is images
    assert torch.equal(g.get_state(), before)
    assert len(pool) == 0 and int(pool.state_dict()["count"]) == 0


def _small_net() -> nn.Module:
    # receptive radius 3 px, well under overlap // 4 for the overlaps below
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1, padding_mode="reflect"), nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1, padding_mode="reflect"), nn.ReLU(),
        nn.Conv2d(8, 2, 3, padding=1, padding_mode="reflect"), nn.Tanh(),
    )
    return net.eval()


def test_tiled_matches_untiled():
    net = _small_net()
    image = torch.rand(1, 3, 200, 300) * 2 - 1
    calls = []

    def fn(x):
        calls.append(tuple(x.shape[-2:]))
        return net(x)

    with torch.no_grad():
        whole = pad_and_run(net, image, 4)
    tiled = translate_tiled(fn, image, tile=128, overlap=32, stride_multiple=4)
    assert tiled.shape == (1, 2, 200, 300)
    assert len(calls) > 1 and all(h <= 128 and w <= 128 and h % 4 == 0 and w % 4 == 0 for h, w in calls)
    assert (tiled - whole).abs().max().item() < 1e-4


def test_tiled_matches_untiled_with_odd_size_and_one_tiled_axis():
    net = _small_net()
    image = torch.rand(1, 3, 61, 203) * 2 - 1
    with torch.no_grad():
        whole = pad_and_run(net, image, 4)
    tiled = translate_tiled(net, image, tile=64, overlap=24, stride_multiple=4)
    assert tiled.shape == (1, 2, 61, 203)
    assert (tiled - whole).abs().max().item() < 1e-4


@pytest.mark.parametrize("size", [(101, 77), (200, 300), (33, 130)])
def test_identity_reproduces_input_exactly(size):
    image = torch.rand(1, 3, *size)
    out = translate_tiled(lambda t: t, image, tile=64, overlap=16)
    assert out.shape == image.shape
    assert torch.equal(out, image)


def test_odd_sizes_come_back_at_original_size():
    net = _small_net()
    for size in [(101, 77), (5, 3), (257, 130)]:
        image = torch.rand(1, 3, *size)
        assert translate_tiled(net, image, tile=512).shape == (1, 2, *size)
        assert translate_tiled(net, image, tile=64, overlap=16).shape == (1, 2, *size)
        assert pad_and_run(net, image, 4).shape == (1, 2, *size)


def test_pad_and_run_pads_to_the_multiple():
    seen = []

    def fn(x):
        seen.append(tuple(x.shape[-2:]))
        return x * 2

    image = torch.rand(1, 3, 101, 77)
    out = pad_and_run(fn, image, 8)
    assert seen == [(104, 80)]
    assert torch.equal(out, image * 2)


def test_large_image_runs_tile_by_tile():
    image = torch.rand(1, 3, 2048, 2048)
    seen = []

    def fn(x):
        seen.append(tuple(x.shape[-2:]))
        return x.mean(dim=1, keepdim=True)

    out = translate_tiled(fn, image, tile=512, overlap=64)
    assert out.shape == (1, 1, 2048, 2048)
    assert all(s == (512, 512) for s in seen) and len(seen) == 25
    assert torch.allclose(out, image.mean(dim=1, keepdim=True), atol=1e-6)


def test_tiling_rejects_bad_options():
    image = torch.rand(1, 3, 100, 100)
    with pytest.raises(ConfigError):
        translate_tiled(lambda t: t, image, tile=64, overlap=64)
    with pytest.raises(ConfigError):
        translate_tiled(lambda t: t, image, tile=2, stride_multiple=4)
    with pytest.raises(ValueError):
        translate_tiled(lambda t: t, image[0])
    with pytest.raises(ValueError, match="tile size"):
        translate_tiled(lambda t: t[..., :-4, :], image, tile=64, overlap=16)
