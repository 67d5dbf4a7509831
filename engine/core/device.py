"""Device choice, seeding and deterministic mode."""

from __future__ import annotations

import os
import random

import numpy as np
import torch

from engine.core.errors import DeviceError

DEVICE_CHOICES = ("auto", "cpu", "cuda", "cuda:N", "mps")


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend and backend.is_available())


def resolve_device(spec: str = "auto") -> torch.device:
    """Turn ``auto|cpu|cuda|cuda:N|mps`` into an available :class:`torch.device`.

    ``auto`` prefers CUDA, then MPS, then the CPU.

    Example:
        >>> resolve_device("cpu")
        device(type='cpu')
    """
    spec = (spec or "auto").strip().lower()
    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if spec == "cpu":
        return torch.device("cpu")
    if spec == "mps":
        if not _mps_available():
            raise DeviceError("device 'mps' requested but Metal is not available here", value=spec)
        return torch.device("mps")
    if spec == "cuda" or spec.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise DeviceError(f"device {spec!r} requested but CUDA is not available here", value=spec)
        index_text = spec.partition(":")[2]
        if index_text:
            if not index_text.isdigit():
                raise DeviceError(f"bad CUDA device {spec!r}; expected cuda:N", value=spec)
            if int(index_text) >= torch.cuda.device_count():
                raise DeviceError(
                    f"device {spec!r} requested but only {torch.cuda.device_count()} CUDA device(s) exist",
                    value=spec,
                )
        return torch.device(spec)
    raise DeviceError(f"unknown device {spec!r}; choose one of: {', '.join(DEVICE_CHOICES)}", value=spec)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def set_deterministic(enabled: bool) -> None:
    """Ask torch for deterministic kernels (bit-for-bit reruns on CPU; slower on CUDA)."""
    if enabled:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(enabled, warn_only=True)
    torch.backends.cudnn.deterministic = enabled
    torch.backends.cudnn.benchmark = not enabled


def cuda_device_count() -> int:
    """CUDA devices torch sees (0 without CUDA): how many training processes a run may start."""
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def describe_device(device: torch.device) -> str:
    """Human-readable device name for logs and the status bar."""
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        return f"cpu ({torch.get_num_threads()} threads)"
    return str(device)


CPU_BF16_FLAGS = ("amx_bf16", "avx512_bf16")  # /proc/cpuinfo flags of CPUs that multiply bf16 in hardware


def cpu_has_bf16(cpuinfo: str | os.PathLike[str] = "/proc/cpuinfo") -> bool:
    """Whether this CPU multiplies bf16 natively (AMX or AVX-512 BF16, read from Linux's ``/proc/cpuinfo``;
    False where that file does not exist). Elsewhere bf16 is emulated and slower than fp32."""
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as handle:
            flags = next((line.split(":", 1)[1].split() for line in handle if line.startswith("flags")), [])
    except OSError:
        return False
    return any(flag in flags for flag in CPU_BF16_FLAGS)
