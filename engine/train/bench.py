"""``ganvas bench``: training iterations per second and inference milliseconds per image (medians)."""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from engine.core.config import DataConfig, TrainConfig
from engine.core.device import describe_device, resolve_device
from engine.core.errors import ConfigError
from engine.core.registry import get_family
from engine.infer.mode import inference_mode
from engine.train.common import autocast, prepare_module


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench_train(family_name: str, config: Any, *, size: tuple[int, int], batch_size: int = 1,
                device: str = "auto", steps: int = 5, warmup: int = 2, repeat: int = 3, compile: str = "auto",
                amp: bool = True, reference: bool = False, cpu_bf16: bool = False) -> dict[str, Any]:
    """Median seconds per training iteration on a small synthetic dataset in the family's layout (``cpu_bf16``:
    bf16 autocast on a CPU with bf16 units, as ``TrainConfig.cpu_bf16``).

    ``reference`` trains as the pix2pix/CycleGAN reference code does: fp32, eager, NCHW, no cuDNN autotuning
    (``amp`` and ``compile`` are then ignored).
    """
    family = get_family(family_name)
    dev = resolve_device(device)
    if reference:
        amp, compile = False, "off"
    with tempfile.TemporaryDirectory() as tmp:
        data_path = family.write_synthetic_dataset(Path(tmp), size, count=max(8, batch_size * 2))
        train = TrainConfig(steps=10**6, batch_size=batch_size, size=size, device=str(dev), compile=compile,
                            amp=amp, channels_last=not reference, cpu_bf16=cpu_bf16 and not reference)
        trainer = family.make_trainer(config, train, DataConfig(path=str(data_path), preprocess="none",
                                                                flip=True), dev)
        torch.backends.cudnn.benchmark = dev.type == "cuda" and not reference
        for _ in range(warmup):
            trainer.train_step(trainer.next_batch())
        _sync(dev)
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            for _ in range(steps):
                losses = trainer.train_step(trainer.next_batch())
            torch.stack(list(losses.values())).sum().item()  # one sync at the end of the repeat
            times.append((time.perf_counter() - start) / steps)
    median = statistics.median(times)
    return {"family": family_name, "device": describe_device(dev), "size": f"{size[0]}x{size[1]}",
            "batch_size": batch_size, "s_per_iter": round(median, 4), "it_per_s": round(1 / median, 3),
            "ms_per_image": round(1000 * median / batch_size, 1), "compile": compile,
            "amp": amp and dev.type == "cuda", "precision": trainer.precision.kind, "reference": reference,
            "repeats": [round(t, 4) for t in times]}


def bench_infer(family_name: str, config: Any, *, size: tuple[int, int], batch_size: int = 1,
                device: str = "auto", steps: int = 10, warmup: int = 2, repeat: int = 3, compile: str = "off",
                amp: bool = True, backend: str = "torch") -> dict[str, Any]:
    """Median milliseconds per image of the family's generator forward pass (on ``backend``: see
    :meth:`engine.infer.inference.InferenceSession.use_backend`; ``compile`` and ``amp`` are torch's)."""
    if backend != "torch":
        return _bench_backend(family_name, config, size=size, batch_size=batch_size, steps=steps, warmup=warmup,
                              repeat=repeat, backend=backend)
    family = get_family(family_name)
    dev = resolve_device(device)
    generator = family.build_generator(config)
    forward = prepare_module(generator, dev, TrainConfig(compile=compile, amp=amp))
    example = family.example_input(config, size, batch_size).to(dev)
    settings = TrainConfig(amp=amp)
    times = []
    with inference_mode(generator, family.inference_batch_stats), autocast(dev, settings):
        for _ in range(warmup):
            forward(example)
        _sync(dev)
        for _ in range(repeat):
            start = time.perf_counter()
            for _ in range(steps):
                out = forward(example)
            _sync(dev)
            times.append((time.perf_counter() - start) / steps / batch_size)
    del out
    median = statistics.median(times)
    params = sum(p.numel() for p in generator.parameters())
    return {"family": family_name, "device": describe_device(dev), "backend": "torch", "size": f"{size[0]}x{size[1]}",
            "batch_size": batch_size, "generator_params": params, "ms_per_image": round(1000 * median, 2),
            "repeats_ms": [round(1000 * t, 2) for t in times]}


def _bench_backend(family_name: str, config: Any, *, size: tuple[int, int], batch_size: int, steps: int,
                   warmup: int, repeat: int, backend: str) -> dict[str, Any]:
    """:func:`bench_infer` through an inference session's full pass on a compiled backend (CPU)."""
    from engine.infer.inference import InferenceSession, ModelCard

    family = get_family(family_name)
    card = ModelCard(family_name, family.input_kind, size, 0, dict(vars(config)), trained=False)
    torch.manual_seed(0)  # the same weights each time: the compile cache (keyed by content) is reused
    session = InferenceSession(family.inference_network(config), card, torch.device("cpu"))
    return _bench_session(session, config, size=size, batch_size=batch_size, steps=steps, warmup=warmup,
                          repeat=repeat, backend=backend)


def bench_checkpoint(checkpoint: str, *, family: str | None = None, size: tuple[int, int] | None = None,
                     batch_size: int = 1, device: str = "auto", steps: int = 10, warmup: int = 2, repeat: int = 3,
                     backend: str = "torch") -> dict[str, Any]:
    """Median milliseconds per image of a checkpoint's full pass (a file, run folder or bundled model's name) as
    the app runs it: through its inference session on ``backend``, at ``size`` (default: its native size).

    Raises:
        ConfigError: the checkpoint is not of ``family`` (when given).
    """
    from engine.core.config import from_dict
    from engine.infer.inference import InferenceSession

    session = InferenceSession.from_checkpoint(checkpoint, device="cpu" if backend != "torch" else device)
    if family is not None and session.card.family != family:
        raise ConfigError(f"{checkpoint} is a {session.card.family} model, not {family}", value=checkpoint)
    config = from_dict(session.family.config_cls, session.card.config)
    result = _bench_session(session, config, size=size or session.size, batch_size=batch_size, steps=steps,
                            warmup=warmup, repeat=repeat, backend=backend)
    return {"checkpoint": checkpoint, **result}


def _bench_session(session: Any, config: Any, *, size: tuple[int, int], batch_size: int, steps: int, warmup: int,
                   repeat: int, backend: str) -> dict[str, Any]:
    """Time ``session.translate_tensor`` (the full pass) on ``backend``; ``prepare_s`` is the backend's set-up
    (export and compile on first use, a load from the compile cache after). ``openvino-int8`` is calibrated on
    the example input itself: its speed is what counts here (``scripts/int8_trial.py`` measures its accuracy)."""
    from engine.infer.backends import INT8

    example = session.family.example_input(config, size, batch_size)
    start = time.perf_counter()
    note = session.use_backend(backend, **({"calibration": [example]} if backend == INT8 else {}))
    prepare_s = time.perf_counter() - start
    times = []
    for _ in range(warmup):
        session.translate_tensor(example)
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(steps):
            session.translate_tensor(example)
        _sync(session.device)
        times.append((time.perf_counter() - start) / steps / batch_size)
    median = statistics.median(times)
    params = sum(p.numel() for p in session.generator.parameters())
    return {"family": session.card.family, "device": describe_device(session.device), "backend": session.backend,
            "note": note, "prepare_s": round(prepare_s, 2), "size": f"{size[0]}x{size[1]}",
            "batch_size": batch_size, "generator_params": params, "ms_per_image": round(1000 * median, 2),
            "repeats_ms": [round(1000 * t, 2) for t in times]}
