"""One CycleGAN training step three ways on the same networks and optimizers, timed in alternation:

* ``ganvas``: Ganvas's step (engine.families.cyclegan: identity passes and each discriminator's real and fake
  passes batched with torch.cat, as instance norm allows);
* ``reference``: the reference implementation's order (every pass separate, fakes computed once up front);
* ``separate``: Ganvas's step with the batching turned off.

    OMP_NUM_THREADS=2 python scripts/cyclegan_step_profile.py SIZE NGF N_BLOCKS STEPS [profile]

``CL=1`` puts networks and inputs in channels-last memory format; a fifth argument prints torch.profiler's
top operators of Ganvas's step. Used for docs/benchmarks.md (what a CycleGAN step spends its time on).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from engine.families.cyclegan import family as cyclegan
from engine.families.cyclegan.family import CycleGANConfig, discriminator_losses, generator_losses
from models.losses import discriminator_loss, generator_loss
from models.patchgan import PatchDiscriminator

size, ngf, n_blocks, steps = (int(arg) for arg in sys.argv[1:5])
torch.manual_seed(0)
config = CycleGANConfig(ngf=ngf, n_blocks=n_blocks)
g_ab, g_ba = cyclegan.CycleGAN.build_generator(config), cyclegan.CycleGAN.inference_network(config)["G_BA"]
d_a, d_b = (PatchDiscriminator(3, config.ndf, config.n_layers_d, config.norm) for _ in range(2))
opt_g = torch.optim.Adam([*g_ab.parameters(), *g_ba.parameters()], 2e-4, betas=(0.5, 0.999))
opt_d = torch.optim.Adam([*d_a.parameters(), *d_b.parameters()], 2e-4, betas=(0.5, 0.999))
real_a, real_b = torch.randn(1, 3, size, size), torch.randn(1, 3, size, size)
if os.environ.get("CL") == "1":
    for net in (g_ab, g_ba, d_a, d_b):
        net.to(memory_format=torch.channels_last)
    real_a, real_b = (x.contiguous(memory_format=torch.channels_last) for x in (real_a, real_b))


def requires_grad(nets: tuple[nn.Module, ...], flag: bool) -> None:
    for net in nets:
        for p in net.parameters():
            p.requires_grad_(flag)


def ganvas_step() -> None:
    requires_grad((d_a, d_b), False)
    opt_g.zero_grad(set_to_none=True)
    losses, fake_a, fake_b = generator_losses(g_ab, g_ba, d_a, d_b, real_a, real_b, config)
    sum(losses.values()).backward()
    opt_g.step()
    requires_grad((d_a, d_b), True)
    opt_d.zero_grad(set_to_none=True)
    d_losses = discriminator_losses(d_a, d_b, real_a, real_b, fake_a.detach(), fake_b.detach(), config)
    (d_losses["D_A"] + d_losses["D_B"]).backward()
    opt_d.step()


def reference_step() -> None:
    fake_b, fake_a = g_ab(real_a), g_ba(real_b)
    rec_a, rec_b = g_ba(fake_b), g_ab(fake_a)
    requires_grad((d_a, d_b), False)
    opt_g.zero_grad(set_to_none=True)
    identity = F.l1_loss(g_ab(real_b), real_b) * 5 + F.l1_loss(g_ba(real_a), real_a) * 5
    gan = generator_loss(d_b(fake_b), config.gan_mode) + generator_loss(d_a(fake_a), config.gan_mode)
    (gan + F.l1_loss(rec_a, real_a) * 10 + F.l1_loss(rec_b, real_b) * 10 + identity).backward()
    opt_g.step()
    requires_grad((d_a, d_b), True)
    opt_d.zero_grad(set_to_none=True)
    for net, real, fake in ((d_b, real_b, fake_b), (d_a, real_a, fake_a)):
        (discriminator_loss(net(real), net(fake.detach()), config.gan_mode) * 0.5).backward()
    opt_d.step()


def separate_step() -> None:
    batched = cyclegan._forward
    cyclegan._forward = lambda net, inputs, together: batched(net, inputs, False)
    try:
        ganvas_step()
    finally:
        cyclegan._forward = batched


variants: dict[str, Callable[[], None]] = {"ganvas": ganvas_step, "reference": reference_step,
                                           "separate": separate_step}
for step in variants.values():  # warm-up
    step()
times: dict[str, list[float]] = {name: [] for name in variants}
for _ in range(steps):
    for name, step in variants.items():
        start = time.perf_counter()
        step()
        times[name].append(time.perf_counter() - start)
for name, values in times.items():
    values.sort()
    print(f"{name}: median {values[len(values) // 2] * 1000:.0f} ms/step over {steps} (min {values[0] * 1000:.0f})")
if len(sys.argv) > 5:
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        ganvas_step()
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=10))
