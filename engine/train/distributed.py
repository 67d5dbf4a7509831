"""Training on several processes at once (one per GPU; gloo processes on a CPU) with ``torch.distributed``.

``torchrun --nproc-per-node N -m engine.train.train_process ...`` starts N copies of the training process; each joins
the process group (:func:`init_from_env`) and runs the same loop on its own shard of every batch. Data
parallelism as in DistributedDataParallel: every rank starts from rank 0's weights, gradients are averaged
across ranks before each optimizer step, buffers (batch-norm statistics, StyleGAN's ``w_avg``) follow rank 0's
after each step, so the networks stay identical on every rank. The averaging is done here rather than by the
``DistributedDataParallel`` wrapper because GAN steps break its assumptions: a discriminator runs with frozen
parameters inside the generator's step, the lazy regularisers (R1, path length) need double backward and run
on some steps only; averaging the gradients an optimizer is about to apply is exact in all of these cases (the
StyleGAN2-ADA and StyleGAN3 training loops do the same).

Randomness that differs between ranks (dropout, crops, flips, latents, image pools) is seeded per rank and saved
per rank in the checkpoint, so a run resumed on the same number of ranks continues exactly; on another number
of ranks, ranks without saved state start fresh streams.
"""

from __future__ import annotations

import datetime
import os
import random
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from engine.core.errors import ConfigError, TrainingError

RANK_PREFIX = "rank"  # checkpoint tensors of rank r >= 1 are stored as ``rank{r}.<key>``
TIMEOUT = datetime.timedelta(minutes=10)  # a collective that waits longer than this fails the run


@dataclass
class DistContext:
    """This process's place among the training processes; the default is a single process (all no-ops)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    control: Any = field(default=None, repr=False)  # gloo group for host-side agreements and object gathers

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0 writes checkpoints, logs, samples and progress; the others only train."""
        return self.rank == 0

    # --- what the trainer calls during a step -------------------------------------------------------------
    def average_gradients(self, optimizer: torch.optim.Optimizer) -> None:
        """Replace each gradient ``optimizer`` is about to apply by its mean over the ranks (one all-reduce).

        Every rank runs the same code on the same parameters, so the set of parameters with a gradient is the
        same on every rank.
        """
        if not self.enabled:
            return
        grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        if grads:
            _all_reduce_mean(grads, self.world_size)

    def mean(self, tensor: torch.Tensor) -> torch.Tensor:
        """The mean of ``tensor`` over the ranks (e.g. StyleGAN2's running mean path length)."""
        if not self.enabled:
            return tensor
        out = tensor.detach().clone()
        dist.all_reduce(out)
        return out / self.world_size

    # --- what the training loop calls -----------------------------------------------------------------
    def agree(self, flag: bool) -> bool:
        """True on every rank when any rank passes True (a stop request seen by one process stops all)."""
        if not self.enabled:
            return flag
        value = torch.tensor([int(flag)])
        dist.all_reduce(value, op=dist.ReduceOp.MAX, group=self.control)
        return bool(value.item())

    def after_step(self, trainer: Any, losses: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Give every rank rank 0's buffers and return the losses averaged over the ranks (the whole batch)."""
        if not self.enabled:
            return losses
        buffers = [b for net in trainer.nets.values() for b in net.buffers() if b.is_floating_point()]
        if buffers:
            flat = torch.cat([b.detach().reshape(-1).float() for b in buffers])
            dist.broadcast(flat, 0)
            _unflatten_into(flat, buffers)
        if not losses:
            return losses
        names = list(losses)
        values = torch.stack([losses[name].detach().float() for name in names])
        dist.all_reduce(values)
        values /= self.world_size
        return dict(zip(names, values.unbind(), strict=True))

    def prepare(self, trainer: Any, seed: int) -> None:
        """Shard the trainer's sampler, seed this rank's randomness and start from rank 0's weights."""
        trainer.dist = self
        if not self.enabled:
            return
        trainer.sampler.shard(self.rank, self.world_size)
        if trainer.train.sync_batchnorm:
            if trainer.device.type != "cuda":
                raise ConfigError("sync_batchnorm needs CUDA GPUs (SyncBatchNorm has no CPU implementation)",
                                  value=trainer.device.type)
            for net in trainer.nets.values():  # in place: parameters, optimizers and compiled wrappers stay valid
                torch.nn.SyncBatchNorm.convert_sync_batchnorm(net)
        if self.rank > 0:
            _reseed_rank(trainer, seed * 1_000_003 + self.rank)
        for net in trainer.nets.values():
            for tensor in [*net.parameters(), *net.buffers()]:
                dist.broadcast(tensor.data, 0)

    def gather_rank_states(self, trainer: Any, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        """Add the per-rank state of ranks 1..N-1 to rank 0's checkpoint payload (every rank must call it)."""
        meta["world_size"] = self.world_size
        if not self.enabled:
            return
        state = None if self.rank == 0 else _rank_state(trainer)
        gathered: list[Any] | None = [None] * self.world_size if self.rank == 0 else None
        dist.gather_object(state, gathered, dst=0, group=self.control)
        if gathered is None:
            return
        infos = []
        for rank, (rank_tensors, info) in enumerate(gathered[1:], start=1):
            tensors.update({f"{RANK_PREFIX}{rank}.{key}": value for key, value in rank_tensors.items()})
            infos.append(info)
        meta["ranks"] = infos

    def restore_rank_state(self, trainer: Any, tensors: dict[str, torch.Tensor], meta: dict[str, Any],
                           step: int) -> None:
        """After the shared state is restored: ranks >= 1 take their own saved randomness, or, when the
        checkpoint came from fewer ranks, fresh streams derived from the seed, the rank and the step."""
        if self.rank == 0:
            return
        saved = meta.get("ranks", [])
        if self.rank - 1 < len(saved):
            prefix = f"{RANK_PREFIX}{self.rank}."
            own = {key[len(prefix):]: value for key, value in tensors.items() if key.startswith(prefix)}
            _load_rank_state(trainer, own, saved[self.rank - 1])
        else:
            _reseed_rank(trainer, (trainer.train.seed * 1_000_003 + self.rank) * 1_000_003 + step)


def _all_reduce_mean(tensors: list[torch.Tensor], world_size: int) -> None:
    flat = torch.cat([t.reshape(-1) for t in tensors])
    dist.all_reduce(flat)
    flat /= world_size
    _unflatten_into(flat, tensors)


def _unflatten_into(flat: torch.Tensor, tensors: list[torch.Tensor]) -> None:
    offset = 0
    for tensor in tensors:
        count = tensor.numel()
        tensor.copy_(flat[offset: offset + count].view_as(tensor))
        offset += count


# --- per-rank randomness ------------------------------------------------------------------------------------


def _generators(trainer: Any) -> dict[str, torch.Generator]:
    """The trainer's own random generators by attribute name (augmentation, latents, image pools...)."""
    return {name: value for name, value in sorted(vars(trainer).items()) if isinstance(value, torch.Generator)}


def _reseed_rank(trainer: Any, seed: int) -> None:
    seed %= 2**62
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    for offset, generator in enumerate(_generators(trainer).values(), start=1):
        generator.manual_seed(seed + offset)


def _rank_state(trainer: Any) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors = {"rng.torch": torch.get_rng_state()}
    if trainer.device.type == "cuda":
        tensors["rng.cuda"] = torch.cuda.get_rng_state(trainer.device)
    tensors.update({f"generator.{name}": g.get_state() for name, g in _generators(trainer).items()})
    extra_tensors, extra_info = trainer.extra_state()
    tensors.update({f"extra.{key}": value.detach().cpu().contiguous() for key, value in extra_tensors.items()})
    version, state, gauss = random.getstate()
    np_name, np_keys, *np_rest = np.random.get_state()
    info = {"python": [version, list(state), gauss], "numpy": [np_name, np_keys.tolist(), *np_rest],
            "extra": extra_info}
    return tensors, info


def _load_rank_state(trainer: Any, tensors: dict[str, torch.Tensor], info: dict[str, Any]) -> None:
    trainer.load_extra_state({k[len("extra."):]: v for k, v in tensors.items() if k.startswith("extra.")},
                             info.get("extra", {}))
    for name, generator in _generators(trainer).items():
        generator.set_state(tensors[f"generator.{name}"].cpu())
    torch.set_rng_state(tensors["rng.torch"].cpu())
    if "rng.cuda" in tensors and trainer.device.type == "cuda":
        torch.cuda.set_rng_state(tensors["rng.cuda"].cpu(), trainer.device)
    version, state, gauss = info["python"]
    random.setstate((version, tuple(state), gauss))
    np_name, np_keys, *np_rest = info["numpy"]
    np.random.set_state((np_name, np.asarray(np_keys, dtype=np.uint32), *np_rest))


# --- process group ------------------------------------------------------------------------------------------

_context = DistContext()


def context() -> DistContext:
    """This process's :class:`DistContext` (a single process unless :func:`init_from_env` joined a group)."""
    return _context


def world_size_from_env() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def init_from_env(device: torch.device) -> DistContext:
    """Join the process group torchrun describes in the environment (``RANK``, ``WORLD_SIZE``, ...).

    The backend is nccl on CUDA and gloo on the CPU; host-side agreements always use a gloo group. Without
    ``WORLD_SIZE`` > 1 this is a single process and nothing is initialised.

    Raises:
        ConfigError: several processes asked for a device they cannot share (MPS, or fewer GPUs than ranks).
    """
    global _context
    world_size = world_size_from_env()
    if world_size <= 1 or _context.enabled:
        return _context
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise ConfigError(f"{world_size} training processes per machine but only "
                              f"{torch.cuda.device_count()} CUDA device(s); use --nproc "
                              f"{torch.cuda.device_count()} or fewer", value=world_size)
        torch.cuda.set_device(local_rank)
        backend = "nccl"
    elif device.type == "cpu":
        backend = "gloo"
    else:
        raise ConfigError(f"training on several processes needs CUDA or the CPU, not {device.type}",
                          value=device.type)
    dist.init_process_group(backend, timeout=TIMEOUT)
    control = dist.new_group(backend="gloo", timeout=TIMEOUT) if backend != "gloo" else None
    _context = DistContext(rank=rank, world_size=world_size, local_rank=local_rank, control=control)
    return _context


def local_device(device: torch.device) -> torch.device:
    """The device this rank trains on: ``cuda:LOCAL_RANK`` for CUDA runs on several processes."""
    if _context.enabled and device.type == "cuda":
        return torch.device("cuda", _context.local_rank)
    return device


def shutdown() -> None:
    """Leave the process group at the end of a run: every rank first waits for the others (a rank tearing down
    its connections while a peer still uses them can make gloo abort that peer)."""
    global _context
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
    _context = DistContext()


def describe_failure(exc: BaseException) -> TrainingError | None:
    """A clear error for a collective that failed because another rank died (None for other errors)."""
    text = str(exc).lower()
    markers = ("connection closed", "connection reset", "broken pipe", "timed out", "nccl", "gloo",
               "socket", "peer")
    if _context.enabled and isinstance(exc, RuntimeError) and any(m in text for m in markers):
        return TrainingError("lost contact with the other training processes: one of them stopped or died "
                             "(torchrun's report names it)")
    return None
