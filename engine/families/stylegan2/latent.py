"""Latent tools for a StyleGAN2 generator: sampling, truncation, style mixing, interpolation, directions, editing
and projection of real images.

Conventions:

* ``ws`` are extended latents of shape (num_ws, w_dim) per image (W+); a latent in W has all rows equal.
* Layer ranges are half-open ``(start, end)`` ``ws`` indices; the CLI's inclusive ``0-4`` means ``(0, 5)``.
* Images are RGB ``uint8`` arrays (H, W, 3), as everywhere in the engine.
* Noise is the generator's constant per-layer noise (``noise_mode="const"``) unless said otherwise, so the
  same latent always renders the same image.

Files: latents and directions are small ``.npz`` files (arrays plus a JSON ``meta`` string, no pickles).

Example:
    >>> from engine.families.stylegan2.family import StyleGAN2Config
    >>> session = LatentSession.untrained(StyleGAN2Config(resolution=32, z_dim=32, w_dim=32,
    ...                                                   channel_base=512, channel_max=32), device="cpu")
    >>> session.generate([0, 1], psi=0.7).shape
    (2, 32, 32, 3)
"""

from __future__ import annotations

import contextlib
import json
import math
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import kornia
import numpy as np
import torch
import torch.nn.functional as F

from engine.core.config import to_dict
from engine.core.device import resolve_device
from engine.core.errors import CheckpointError, ConfigError, ProjectError, StorageError
from engine.core.imageio import atomic_write_bytes
from engine.data.augment import from_minus_one_one, to_minus_one_one
from engine.families.stylegan2.family import StyleGAN2, StyleGAN2Config, square_resize
from engine.infer.loading import LoadedNetwork, ModelCard, load_network, untrained_network
from models.stylegan2 import NOISE_MODES, Generator

LATENT_FORMAT = "ganvas-latent"
DIRECTIONS_FORMAT = "ganvas-directions"
FILE_VERSION = 1
SPACES = ("w", "w+")


# ----------------------------------------------------------------------------------------------------------
# Saved latents and directions


@dataclass
class Latent:
    """One image's latent: ``ws`` (num_ws, w_dim) plus where it came from.

    Attributes:
        ws: (num_ws, w_dim) float32 tensor on the CPU.
        space: ``w`` (all rows equal; saved as one vector) or ``w+``.
        seed, psi: the seed and truncation it was sampled with (``None`` for projections and edits).
        noise: optional per-layer noise maps (from projection), used instead of the constant noise.
        provenance: free JSON (checkpoint, step, projected image, edits applied...).
    """

    ws: torch.Tensor
    space: str = "w+"
    seed: int | None = None
    psi: float | None = None
    noise: list[torch.Tensor] | None = None
    provenance: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.space not in SPACES:
            raise ConfigError(f"latent space must be one of {', '.join(SPACES)}", value=self.space)
        if self.ws.ndim != 2:
            raise ConfigError(f"latent ws must have shape (num_ws, w_dim), got {tuple(self.ws.shape)}")


def latent_arrays(latent: Latent) -> dict[str, np.ndarray]:
    """A latent as plain arrays: ``w`` (w_dim,) for W or ``ws`` (num_ws, w_dim) for W+, and ``noise_<i>``."""
    ws = latent.ws.detach().float().cpu().numpy()
    arrays: dict[str, np.ndarray] = {"w": ws[0]} if latent.space == "w" else {"ws": ws}
    for index, noise in enumerate(latent.noise or []):
        arrays[f"noise_{index}"] = noise.detach().float().cpu().numpy()
    return arrays


def save_latent(path: str | Path, latent: Latent) -> Path:
    """Write a latent ``.npz``: :func:`latent_arrays` and JSON meta."""
    meta = {"format": LATENT_FORMAT, "version": FILE_VERSION, "space": latent.space, "num_ws": latent.ws.shape[0],
            "seed": latent.seed, "psi": latent.psi, "provenance": latent.provenance}
    return _write_npz(path, latent_arrays(latent), meta)


MAX_NUM_WS = 64  # style vectors a generator takes (18 at 1024 px); a file asking for more is damaged


def load_latent(path: str | Path, num_ws: int | None = None, w_dim: int | None = None) -> Latent:
    """Read a latent ``.npz``; with ``num_ws``/``w_dim`` check it fits a generator.

    Raises:
        CheckpointError: not a Ganvas latent file, or a latent of another generator.
    """
    arrays, meta = _read_npz(path, LATENT_FORMAT)
    return latent_from_arrays(arrays, meta, num_ws, w_dim, path)


def latent_from_arrays(arrays: dict[str, np.ndarray], meta: dict[str, Any] | None = None, num_ws: int | None = None,
                       w_dim: int | None = None, path: str | Path | None = None) -> Latent:
    """The :class:`Latent` of :func:`latent_arrays`' arrays (``meta``: a latent file's; default a W+ latent),
    checked against a generator's ``num_ws``/``w_dim`` when given.

    Raises:
        CheckpointError: malformed arrays, or a latent of another generator (naming ``path`` when given).
    """
    meta = meta if meta is not None else {"space": "w+"}
    try:
        if meta["space"] == "w":
            w = torch.from_numpy(arrays["w"]).float()
            repeats = meta["num_ws"]
            if not isinstance(repeats, int) or not 1 <= repeats <= MAX_NUM_WS or w.ndim != 1:
                raise ValueError(f"w of shape {tuple(w.shape)} repeated {repeats!r} times")
            ws = w[None].repeat(repeats, 1)
        else:
            ws = torch.from_numpy(arrays["ws"]).float()
        if ws.ndim != 2:
            raise ValueError(f"ws has shape {tuple(ws.shape)}, expected (num_ws, w_dim)")
        count = sum(1 for k in arrays if k.startswith("noise_"))
        noise = [torch.from_numpy(arrays[f"noise_{i}"]).float() for i in range(count)] or None
        provenance = meta.get("provenance", {})
        if not isinstance(provenance, dict):
            raise ValueError("provenance is not a mapping")
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"latent file is malformed ({type(exc).__name__}: {exc})", path=path) from exc
    if (num_ws is not None and ws.shape[0] != num_ws) or (w_dim is not None and ws.shape[1] != w_dim):
        raise CheckpointError(f"latent has shape {tuple(ws.shape)}, the generator needs ({num_ws}, {w_dim})",
                              path=path)
    return Latent(ws, meta["space"], meta.get("seed"), meta.get("psi"), noise, provenance)


@dataclass
class Directions:
    """Edit directions in W: ``vectors`` (k, w_dim), unit norm, ordered by ``values`` (descending).

    Attributes:
        vectors: (k, w_dim) float32.
        values: explained-variance ratios (``pca``) or eigenvalues of ``A^T A`` (``sefa``), (k,).
        method: ``pca`` or ``sefa``.
        layers: the ``ws`` range (start, end) the directions were computed for (SeFa) or are meant for.
        provenance: free JSON (checkpoint, step, samples...).
    """

    vectors: torch.Tensor
    values: torch.Tensor
    method: str
    layers: tuple[int, int] | None = None
    provenance: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return self.vectors.shape[0]


def save_directions(path: str | Path, directions: Directions) -> Path:
    arrays = {"vectors": directions.vectors.detach().float().cpu().numpy(),
              "values": directions.values.detach().double().cpu().numpy()}
    meta = {"format": DIRECTIONS_FORMAT, "version": FILE_VERSION, "method": directions.method,
            "layers": list(directions.layers) if directions.layers is not None else None,
            "provenance": directions.provenance}
    return _write_npz(path, arrays, meta)


def load_directions(path: str | Path, w_dim: int | None = None) -> Directions:
    arrays, meta = _read_npz(path, DIRECTIONS_FORMAT)
    try:
        vectors = torch.from_numpy(arrays["vectors"]).float()
        values = torch.from_numpy(arrays["values"])
        if vectors.ndim != 2 or values.ndim != 1 or len(values) != len(vectors):
            raise ValueError(f"vectors {tuple(vectors.shape)} and values {tuple(values.shape)} do not match")
        layers = tuple(meta["layers"]) if meta.get("layers") is not None else None
        if layers is not None and (len(layers) != 2 or not all(isinstance(n, int) for n in layers)):
            raise ValueError(f"layers {layers!r} is not (start, end)")
        method, provenance = meta["method"], meta.get("provenance", {})
        if not isinstance(method, str) or not isinstance(provenance, dict):
            raise ValueError("method or provenance has the wrong type")
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"directions file is malformed ({type(exc).__name__}: {exc})", path=path) from exc
    if w_dim is not None and vectors.shape[1] != w_dim:
        raise CheckpointError(f"directions have w_dim {vectors.shape[1]}, the generator has {w_dim}", path=path)
    return Directions(vectors, values, method, layers, provenance)  # type: ignore[arg-type]


def default_directions_path(checkpoint: str | Path, method: str) -> Path:
    """Where a checkpoint's directions live: ``<name>.directions_<method>.npz`` beside a model file (so several
    models in one folder, such as the bundled ones, keep their own), ``directions_<method>.npz`` inside a run
    folder and beside a run's ``latest.safetensors``.

    >>> default_directions_path("assets/models/emoji.safetensors", "pca").name
    'emoji.directions_pca.npz'
    """
    checkpoint = Path(checkpoint)
    if checkpoint.is_dir():
        return checkpoint / f"directions_{method}.npz"
    if checkpoint.stem == "latest":
        return checkpoint.parent / f"directions_{method}.npz"
    return checkpoint.with_name(f"{checkpoint.stem}.directions_{method}.npz")


def _write_npz(path: str | Path, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> Path:
    import io

    path = Path(path)
    if path.suffix.lower() != ".npz":
        raise StorageError("latents and directions are saved as .npz files", path=path)
    buffer = io.BytesIO()
    np.savez(buffer, meta=np.array(json.dumps(meta)), **arrays)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def _read_npz(path: str | Path, kind: str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    from engine.core.project import MAX_TOTAL_BYTES, read_npz_bytes

    path = Path(path)
    if not path.is_file():
        raise CheckpointError("file not found", path=path)
    try:
        if path.stat().st_size > MAX_TOTAL_BYTES:
            raise CheckpointError(f"file is too large for a {kind} file", path=path)
        arrays = read_npz_bytes(path.read_bytes(), path, f"{kind} file")
    except OSError as exc:
        raise CheckpointError(f"not a readable .npz file ({exc.strerror or exc})", path=path) from exc
    except ProjectError as exc:
        raise CheckpointError(f"not a readable .npz file ({str(exc).removeprefix(f'{path}: ')})", path=path) from exc
    try:
        meta = json.loads(str(arrays.pop("meta")))
    except (KeyError, json.JSONDecodeError, RecursionError) as exc:
        raise CheckpointError(f"not a Ganvas {kind} file (no metadata)", path=path) from exc
    if not isinstance(meta, dict) or meta.get("format") != kind:
        format_tag = meta.get("format") if isinstance(meta, dict) else None
        raise CheckpointError(f"not a {kind} file (format {format_tag!r})", path=path)
    if not isinstance(meta.get("version", 0), int) or isinstance(meta.get("version"), bool):
        raise CheckpointError(f"{kind} file version {meta.get('version')!r} is not a version number", path=path)
    if meta.get("version", 0) > FILE_VERSION:
        raise CheckpointError(f"{kind} file version {meta['version']} is newer than this Ganvas", path=path)
    return arrays, meta


# ----------------------------------------------------------------------------------------------------------
# Projection events


@dataclass(frozen=True)
class ProjectionProgress:
    """One event of :meth:`LatentSession.project`.

    ``kind`` is ``step``, ``done`` or ``stopped``; the last event carries the ``latent`` and the
    reconstruction ``image`` (RGB uint8).
    """

    kind: str
    step: int
    total: int
    loss: float
    mse: float = math.nan
    ssim: float = math.nan
    latent: Latent | None = None
    image: np.ndarray | None = None


# ----------------------------------------------------------------------------------------------------------
# The session


def parse_index_list(text: str) -> list[int]:
    """``"0-3,7"`` -> ``[0, 1, 2, 3, 7]`` (inclusive ranges)."""
    out: list[int] = []
    for part in str(text).split(","):
        part = part.strip()
        if not part:
            continue
        start, sep, end = part.partition("-") if not part.startswith("-") else (part, "", "")
        try:
            if sep:
                a, b = int(start), int(end)
                if b < a:
                    raise ValueError
                out.extend(range(a, b + 1))
            else:
                out.append(int(part))
        except ValueError:
            raise ConfigError(f"invalid list {text!r}: expected numbers and ranges like 0-7,9", value=text) from None
    if not out:
        raise ConfigError(f"invalid list {text!r}: empty", value=text)
    return out


# The StyleGAN paper's style groups, by the resolutions their layers draw at: coarse 4-8 px (pose, shape),
# middle 16-32 px (features), fine 64 px and up (colour scheme, texture).
LAYER_GROUPS = {"coarse": (4, 8), "middle": (16, 32), "fine": (64, 1024)}


def layer_resolution(index: int, num_ws: int) -> int:
    """The resolution of the conv that reads ``ws[index]``: 4 px reads 0, each 2^k px from 8 on reads 2k-5 and
    2k-4; the last index feeds only the final ToRGB, at the output resolution."""
    return min(4 if index == 0 else 2 ** ((index + 5) // 2), 2 ** ((num_ws + 2) // 2))


def layer_groups(num_ws: int) -> dict[str, tuple[int, int]]:
    """The half-open ``ws`` ranges of :data:`LAYER_GROUPS` this generator has (a 32 px one has no ``fine``).

    Example:
        >>> layer_groups(8)
        {'coarse': (0, 3), 'middle': (3, 8)}
    """
    groups = {}
    for name, (low, high) in LAYER_GROUPS.items():
        inside = [i for i in range(num_ws) if low <= layer_resolution(i, num_ws) <= high]
        if inside:
            groups[name] = (inside[0], inside[-1] + 1)
    return groups


def parse_layer_range(text: str | None, num_ws: int) -> tuple[int, int]:
    """``"0-4"`` (inclusive) -> ``(0, 5)``; ``None``/``"all"`` -> ``(0, num_ws)``; checked against ``num_ws``.

    ``coarse``, ``middle`` and ``fine`` name the layers that draw at 4-8 px, 16-32 px and 64 px and up.

    Example:
        >>> [parse_layer_range(t, 10) for t in ("2-4", "coarse", "middle", "fine")]
        [(2, 5), (0, 3), (3, 7), (7, 10)]
    """
    name = str(text).strip().lower() if text is not None else ""
    if name in LAYER_GROUPS:
        groups = layer_groups(num_ws)
        if name not in groups:
            low, high = LAYER_GROUPS[name]
            raise ConfigError(f"layers {name!r}: this generator draws nothing at {low}-{high} px; give a range "
                              f"within 0-{num_ws - 1}", value=text)
        return groups[name]
    if name in ("", "all"):
        return 0, num_ws
    indices = parse_index_list(text)
    start, end = min(indices), max(indices) + 1
    if start < 0 or end > num_ws:
        raise ConfigError(f"layers {text!r} out of range: this generator has layers 0-{num_ws - 1}", value=text)
    return start, end


class LatentSession:
    """A StyleGAN2 generator (the EMA copy of a checkpoint) with latent-space tools.

    Thread-safe: calls are serialised by a lock, so a GUI worker thread and the main thread may share it.
    """

    def __init__(self, generator: Generator, config: StyleGAN2Config, device: str | torch.device = "auto",
                 meta: dict[str, Any] | None = None, path: Path | None = None, card: ModelCard | None = None,
                 ) -> None:
        self.device = resolve_device(device) if isinstance(device, str) else device
        self.generator = generator.to(self.device).eval().requires_grad_(False)
        self.config = config
        self.meta = meta or {}
        self.path = path
        self._lock = threading.RLock()
        self.card = card or ModelCard(StyleGAN2.name, StyleGAN2.input_kind, (config.resolution, config.resolution),
                                      0, to_dict(config), trained=False)

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str = "auto") -> LatentSession:
        """Rebuild ``G_ema`` from a StyleGAN2 checkpoint's own config and load its weights (through
        :func:`engine.infer.loading.load_network`, the one loading path)."""
        loaded = load_network(path)
        if loaded.card.family != StyleGAN2.name:
            raise CheckpointError(f"is a {loaded.card.family} checkpoint; latent tools need a stylegan2 one",
                                  path=loaded.path)
        return cls.from_network(loaded, device)

    @classmethod
    def from_network(cls, loaded: LoadedNetwork, device: str = "auto") -> LatentSession:
        """The session of a loaded (or untrained) StyleGAN2 generator: ``StyleGAN2.open_session``."""
        meta = loaded.meta if loaded.meta.get("untrained") else \
            {k: loaded.meta.get(k) for k in ("family", "step", "dataset", "created")}
        return cls(loaded.network, loaded.config, device, meta, loaded.path, loaded.card)

    @classmethod
    def untrained(cls, config: StyleGAN2Config | None = None, device: str = "auto", seed: int = 0,
                  **fields: Any) -> LatentSession:
        """A randomly initialised generator (seeded), e.g. to try the tools before training."""
        config = config or StyleGAN2Config(**fields)
        return cls.from_network(untrained_network(StyleGAN2.name, config=config, seed=seed), device)

    # --- facts --------------------------------------------------------------------------------------------
    @property
    def num_ws(self) -> int:
        return self.generator.num_ws

    @property
    def w_dim(self) -> int:
        return self.generator.w_dim

    @property
    def z_dim(self) -> int:
        return self.generator.z_dim

    @property
    def resolution(self) -> int:
        return self.generator.img_resolution

    @property
    def w_avg(self) -> torch.Tensor:
        return self.generator.w_avg.detach().cpu().clone()

    def provenance(self) -> dict[str, Any]:
        return {"checkpoint": str(self.path) if self.path else None, "step": self.meta.get("step")}

    # --- sampling -------------------------------------------------------------------------------------------
    def z_from_seed(self, seed: int) -> torch.Tensor:
        """The latent z (z_dim,) of a seed: standard normal from ``torch.Generator().manual_seed(seed)``."""
        return torch.randn(self.z_dim, generator=torch.Generator().manual_seed(int(seed)))

    @torch.no_grad()
    def ws_from_z(self, z: torch.Tensor, psi: float = 1.0, cutoff: int | None = None) -> torch.Tensor:
        """z (B, z_dim) -> ws (B, num_ws, w_dim) on the CPU, truncated on layers ``< cutoff``."""
        with self._lock:
            ws = self.generator.mapping(z.to(self.device).float(), psi=psi, cutoff=cutoff)
        return ws.cpu()

    def w_from_seed(self, seed: int, psi: float = 1.0, cutoff: int | None = None) -> torch.Tensor:
        """ws (num_ws, w_dim) of a seed."""
        return self.ws_from_z(self.z_from_seed(seed)[None], psi, cutoff)[0]

    def latent_from_seed(self, seed: int, psi: float = 1.0, cutoff: int | None = None) -> Latent:
        space = "w" if cutoff is None or psi == 1 else "w+"
        return Latent(self.w_from_seed(seed, psi, cutoff), space, int(seed), float(psi), None,
                      {**self.provenance(), "cutoff": cutoff})

    def truncate(self, ws: torch.Tensor, psi: float, cutoff: int | None = None) -> torch.Tensor:
        """Truncation trick on ws (…, num_ws, w_dim): ``w_avg + psi (w - w_avg)`` on layers ``< cutoff``."""
        squeeze = ws.ndim == 2
        ws = ws[None] if squeeze else ws
        out = self.generator.mapping_network.truncate(ws.to(self.device), psi, cutoff).cpu()
        return out[0] if squeeze else out

    @torch.no_grad()
    def synthesize(self, ws: torch.Tensor, noise_mode: str = "const",
                   noise: Sequence[torch.Tensor] | None = None, batch_size: int = 16) -> np.ndarray:
        """ws (num_ws, w_dim) or (B, num_ws, w_dim) -> RGB uint8 (B, R, R, 3).

        Args:
            ws: extended latents.
            noise_mode: ``const`` (repeatable), ``random`` or ``none``.
            noise: per-layer noise maps (e.g. from projection) used instead of the constant noise.
            batch_size: images per forward pass.
        """
        if noise_mode not in NOISE_MODES:
            raise ConfigError(f"noise_mode must be one of {', '.join(NOISE_MODES)}", value=noise_mode)
        ws = ws[None] if ws.ndim == 2 else ws
        self._check_ws(ws)
        outs = []
        with self._lock, self._noise(noise):
            for start in range(0, ws.shape[0], batch_size):
                chunk = ws[start: start + batch_size].to(self.device).float()
                images = self.generator.synthesis(chunk, "const" if noise is not None else noise_mode)
                outs.append(from_minus_one_one(images).permute(0, 2, 3, 1).cpu().numpy())
        return np.concatenate(outs)

    def generate(self, seeds: Sequence[int], psi: float = 1.0, cutoff: int | None = None,
                 noise_mode: str = "const") -> np.ndarray:
        """Images of seeds: RGB uint8 (len(seeds), R, R, 3)."""
        z = torch.stack([self.z_from_seed(s) for s in seeds])
        return self.synthesize(self.ws_from_z(z, psi, cutoff), noise_mode)

    def mix(self, ws_a: torch.Tensor, ws_b: torch.Tensor, layers: tuple[int, int]) -> torch.Tensor:
        """Style mixing: ``ws_b`` on layers ``[start, end)``, ``ws_a`` elsewhere (shapes (…, num_ws, w_dim))."""
        self._check_range(layers)
        squeeze = ws_a.ndim == 2
        a, b = (ws_a[None], ws_b[None]) if squeeze else (ws_a, ws_b)
        out = Generator.mix_styles(a, b, *layers)
        return out[0] if squeeze else out

    # --- interpolation -----------------------------------------------------------------------------------
    def interpolate(self, keys: Sequence[int | Latent | torch.Tensor], frames: int, space: str = "w",
                    psi: float = 1.0) -> torch.Tensor:
        """ws of ``frames`` evenly spaced points along the path through ``keys`` (ends included).

        Args:
            keys: seeds, :class:`Latent` objects or ws tensors (num_ws, w_dim); at least two.
            frames: total number of frames (>= 2).
            space: ``w`` (linear in W+, any keys) or ``z`` (spherical in z, seeds only).
            psi: truncation for seeds.

        Returns:
            (frames, num_ws, w_dim).
        """
        if len(keys) < 2 or frames < 2:
            raise ConfigError("interpolation needs at least two keys and two frames", value=(len(keys), frames))
        if space not in ("w", "z"):
            raise ConfigError("interpolation space must be w or z", value=space)
        positions = torch.linspace(0, len(keys) - 1, frames, dtype=torch.float64)
        segment = positions.floor().long().clamp(max=len(keys) - 2)
        t = (positions - segment).float()
        if space == "z":
            if not all(isinstance(k, int) for k in keys):
                raise ConfigError("spherical interpolation in z needs seeds as keys")
            zs = torch.stack([self.z_from_seed(int(k)) for k in keys])  # type: ignore[arg-type]
            z = torch.stack([slerp(zs[s], zs[s + 1], float(f)) for s, f in zip(segment, t, strict=True)])
            return self.ws_from_z(z, psi)
        key_ws = torch.stack([self._key_ws(k, psi) for k in keys])
        return torch.lerp(key_ws[segment], key_ws[segment + 1], t[:, None, None])

    def _key_ws(self, key: int | Latent | torch.Tensor, psi: float) -> torch.Tensor:
        if isinstance(key, Latent):
            ws = key.ws
        elif isinstance(key, torch.Tensor):
            ws = key
        else:
            ws = self.w_from_seed(int(key), psi)
        self._check_ws(ws[None])
        return ws.float().cpu()

    # --- directions -------------------------------------------------------------------------------------------
    @torch.no_grad()
    def directions_pca(self, k: int = 8, samples: int = 10_000, seed: int = 0,
                       layers: tuple[int, int] | None = None) -> Directions:
        """GANSpace (Härkönen et al., 2020): principal components of ``samples`` mapped w.

        Returns the top ``k`` components (orthonormal rows), ordered by explained-variance ratio.
        The sign of each is fixed so that its largest-magnitude coordinate is positive.
        """
        if not 1 <= k <= self.w_dim or samples < 2:
            raise ConfigError(f"k must be 1..{self.w_dim} and samples >= 2", value=(k, samples))
        z = torch.randn(samples, self.z_dim, generator=torch.Generator().manual_seed(seed))
        w = torch.cat([self.ws_from_z(z[i: i + 4096])[:, 0] for i in range(0, samples, 4096)]).double()
        centred = w - w.mean(dim=0)
        _, singular, vh = torch.linalg.svd(centred, full_matrices=False)
        variance = singular.square()
        ratio = variance / variance.sum()
        vectors = _fix_signs(vh[:k])
        return Directions(vectors.float(), ratio[:k], "pca", layers,
                          {**self.provenance(), "samples": samples, "seed": seed})

    def saved_or_new_directions(self, method: str, k: int = 8, samples: int = 10_000) -> Directions:
        """``k`` directions of ``method`` (``pca``, or ``sefa`` over all layers) from ``directions_<method>.npz``
        beside the checkpoint when that file was made from this checkpoint's step and holds enough of them;
        otherwise computed, and saved there when no such file exists yet (a file made for something else, or
        a read-only folder, is left alone)."""
        if method not in ("pca", "sefa"):
            raise ConfigError(f"unknown direction method {method!r}: expected pca or sefa", value=method)
        path = default_directions_path(self.path, method) if self.path is not None else None
        if path is not None and path.is_file():
            try:
                saved: Directions | None = load_directions(path, self.w_dim)
            except (CheckpointError, StorageError):
                saved = None
            full_range = (None, (0, self.num_ws - 1))
            if (saved is not None and len(saved) >= k and saved.layers in full_range
                    and saved.provenance.get("step") == self.meta.get("step")
                    and (method == "sefa" or saved.provenance.get("samples", 0) >= samples)):
                return Directions(saved.vectors[:k], saved.values[:k], method, saved.layers, saved.provenance)
        directions = self.directions_pca(k, samples=samples) if method == "pca" else self.directions_sefa(k)
        if path is not None and not path.exists():
            with contextlib.suppress(OSError, StorageError):
                save_directions(path, directions)
        return directions

    @torch.no_grad()
    def directions_sefa(self, k: int = 8, layers: tuple[int, int] | None = None) -> Directions:
        """SeFa (Shen & Zhou, 2021): top eigenvectors of ``A^T A``, ``A`` the stacked style-affine weights of
        the synthesis conv layers in ``layers`` (``ws`` indices; all conv layers when ``None``)."""
        num_layers = self.num_ws - 1
        layers = layers or (0, num_layers)
        if not 0 <= layers[0] < layers[1] <= self.num_ws:
            raise ConfigError(f"layers must lie in 0-{self.num_ws - 1}", value=layers)
        conv_range = (layers[0], min(layers[1], num_layers))
        if conv_range[0] >= conv_range[1]:
            raise ConfigError(f"SeFa needs at least one synthesis conv layer (0-{num_layers - 1})", value=layers)
        if not 1 <= k <= self.w_dim:
            raise ConfigError(f"k must be 1..{self.w_dim}", value=k)
        weights = self.generator.modulation_weights(conv_range).double().cpu()
        eigenvalues, eigenvectors = torch.linalg.eigh(weights.T @ weights)
        order = torch.argsort(eigenvalues, descending=True)[:k]
        vectors = _fix_signs(eigenvectors[:, order].T)
        return Directions(vectors.float(), eigenvalues[order], "sefa", layers, self.provenance())

    def apply_direction(self, ws: torch.Tensor, direction: torch.Tensor, strength: float,
                        layers: tuple[int, int] | None = None) -> torch.Tensor:
        """``ws + strength * direction`` on layers ``[start, end)`` (all when ``None``); a new tensor."""
        layers = layers or (0, self.num_ws)
        self._check_range(layers)
        if direction.shape != (self.w_dim,):
            raise ConfigError(f"direction must have shape ({self.w_dim},), got {tuple(direction.shape)}")
        layer = torch.arange(self.num_ws)[:, None]
        mask = ((layer >= layers[0]) & (layer < layers[1])).to(ws.dtype)
        return ws + strength * mask * direction.to(ws.dtype)

    # --- projection ------------------------------------------------------------------------------------------
    def project(self, image: np.ndarray, steps: int = 300, space: str = "w", lr: float = 0.1,
                optimize_noise: bool = True, noise_weight: float = 1e5, ssim_weight: float = 1.0,
                initial_noise: float = 0.05, should_stop: Callable[[], bool] | None = None,
                seed: int = 0, perceptual: torch.nn.Module | None = None,
                perceptual_weight: float = 1.0) -> Iterator[ProjectionProgress]:
        """Find the latent whose image matches ``image`` (RGB uint8, any size: centre-cropped and resized).

        Minimises pixel MSE + ``ssim_weight`` * (1 - multi-scale SSIM) with Adam on ``w`` (one vector,
        starting at ``w_avg``) or ``w+`` (one per layer), optionally also on the per-layer noise maps with a
        multi-scale autocorrelation penalty (``noise_weight``) that keeps them noise-like. The learning rate
        ramps up over the first 5 % of steps and down with a cosine over the last 25 %; small Gaussian
        perturbations of w (``initial_noise`` x the spread of w, fading out by 75 %) help leave poor starts.
        With ``perceptual`` (an LPIPS module, see :func:`engine.infer.perceptual.load_lpips`; its weights are the
        user's), ``perceptual_weight`` x its distance joins the loss.

        Yields:
            ``step`` events (``loss`` = MSE + ssim_weight * (1 - MS-SSIM) [+ perceptual_weight * LPIPS], without
            the noise penalty), then one ``done`` or ``stopped`` event carrying the latent and the reconstruction.
        """
        if space not in SPACES:
            raise ConfigError(f"projection space must be one of {', '.join(SPACES)}", value=space)
        if steps < 1:
            raise ConfigError("projection needs at least one step", value=steps)
        res = self.resolution
        target = to_minus_one_one(torch.from_numpy(square_resize(image, res)).permute(2, 0, 1)[None]).to(self.device)
        if perceptual is not None:
            perceptual = perceptual.to(self.device)
            with torch.no_grad():
                target_taps = perceptual.tapped(target)  # the target is fixed: its features once, not every step
        generator = torch.Generator().manual_seed(seed)
        with self._lock:
            w_avg = self.generator.w_avg.detach().clone()
            sample_w = self.ws_from_z(torch.randn(2000, self.z_dim, generator=generator))[:, 0]
            w_std = float((sample_w - sample_w.mean(0)).square().sum(1).mean().sqrt())
            rows = 1 if space == "w" else self.num_ws
            w_opt = w_avg[None].repeat(rows, 1).to(self.device).requires_grad_(True)
            layers = self.generator.synthesis_network.layers()
            noises = [torch.randn(layer.resolution, layer.resolution, generator=generator).to(self.device)
                      for layer in layers]
            params = [w_opt] + ([n.requires_grad_(True) for n in noises] if optimize_noise else [])
            optimizer = torch.optim.Adam(params, lr=lr, betas=(0.9, 0.999))
            last_recon = math.nan
            step = 0
            stopped = False
            for step in range(1, steps + 1):
                if should_stop is not None and should_stop():
                    stopped, step = True, step - 1
                    break
                t = (step - 1) / max(1, steps - 1)
                ramp = min(1.0, (1 - t) / 0.25) if t > 0.75 else 1.0
                ramp = 0.5 - 0.5 * math.cos(ramp * math.pi)
                ramp *= min(1.0, t / 0.05) if steps > 20 else 1.0
                for group in optimizer.param_groups:
                    group["lr"] = lr * max(ramp, 0.01)
                jitter = w_std * initial_noise * max(0.0, 1 - t / 0.75) ** 2
                w_in = w_opt + torch.randn(w_opt.shape, generator=generator).to(self.device) * jitter
                ws = w_in[None].expand(1, self.num_ws, -1) if rows == 1 else w_in[None]
                with torch.enable_grad(), self._noise(noises if optimize_noise else None):
                    synth = self.generator.synthesis(ws, "const" if optimize_noise else "const")
                    mse = F.mse_loss(synth, target)
                    dssim = _ms_ssim_loss(synth, target)
                    loss = mse + ssim_weight * dssim
                    if perceptual is not None:
                        loss = loss + perceptual_weight * perceptual.distance(perceptual.tapped(synth),
                                                                              target_taps).mean()
                    reported = float(loss.detach())
                    if optimize_noise:
                        loss = loss + noise_weight * _noise_regularisation(noises)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                optimizer.step()
                if optimize_noise:
                    with torch.no_grad():
                        for n in noises:
                            n.sub_(n.mean()).div_(n.std() + 1e-8)
                last_recon = reported
                yield ProjectionProgress("step", step, steps, last_recon, float(mse.detach()),
                                         1 - 2 * float(dssim.detach()))
            w_final = w_opt.detach()
            ws_final = w_final.expand(self.num_ws, -1).cpu() if rows == 1 else w_final.cpu()
            noise_final = [n.detach().cpu().clone() for n in noises] if optimize_noise else None
            latent = Latent(ws_final.clone(), space, None, None, noise_final,
                            {**self.provenance(), "projection": {"steps": step, "space": space, "lr": lr,
                                                                 "loss": last_recon, "time": time.time()}})
        reconstruction = self.synthesize(latent.ws, noise=latent.noise)[0]
        yield ProjectionProgress("stopped" if stopped else "done", step, steps, last_recon, latent=latent,
                                 image=reconstruction)

    def reconstruction_loss(self, image: np.ndarray, latent: Latent) -> float:
        """MSE + (1 - multi-scale SSIM) between ``image`` (resized) and the latent's rendering."""
        target = to_minus_one_one(torch.from_numpy(square_resize(image, self.resolution)).permute(2, 0, 1)[None])
        rendered = to_minus_one_one(torch.from_numpy(self.synthesize(latent.ws, noise=latent.noise)).permute(0, 3, 1, 2))
        return float(F.mse_loss(rendered, target) + _ms_ssim_loss(rendered, target))

    # --- helpers -------------------------------------------------------------------------------------------------
    def _check_ws(self, ws: torch.Tensor) -> None:
        if ws.ndim != 3 or tuple(ws.shape[1:]) != (self.num_ws, self.w_dim):
            raise ConfigError(f"latents must have shape (B, {self.num_ws}, {self.w_dim}), got {tuple(ws.shape)}")

    def _check_range(self, layers: tuple[int, int]) -> None:
        if not 0 <= layers[0] < layers[1] <= self.num_ws:
            raise ConfigError(f"layer range {layers} outside 0..{self.num_ws}", value=layers)

    def _noise(self, noise: Sequence[torch.Tensor] | None) -> Any:
        return _NoiseOverride(self.generator, noise, self.device)


class _NoiseOverride:
    """Temporarily replace each synthesis layer's constant noise with given maps (gradients flow into them)."""

    def __init__(self, generator: Generator, noise: Sequence[torch.Tensor] | None, device: torch.device) -> None:
        self.layers = generator.synthesis_network.layers()
        self.noise, self.device = noise, device
        self.saved: list[torch.Tensor] = []

    def __enter__(self) -> None:
        if self.noise is None:
            return
        if len(self.noise) != len(self.layers):
            raise ConfigError(f"expected {len(self.layers)} noise maps, got {len(self.noise)}")
        self.saved = [layer.noise_const for layer in self.layers]
        for layer, noise in zip(self.layers, self.noise, strict=True):
            layer.noise_const = noise.to(self.device)

    def __exit__(self, *exc: object) -> None:
        for layer, original in zip(self.layers, self.saved, strict=False):
            layer.noise_const = original


def slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """Spherical interpolation between vectors ``a`` and ``b`` (falls back to linear when nearly parallel)."""
    a_n, b_n = a / a.norm(), b / b.norm()
    omega = torch.arccos((a_n * b_n).sum().clamp(-1.0, 1.0))
    if float(omega) < 1e-6:
        return torch.lerp(a, b, t)
    return (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / torch.sin(omega)


def _fix_signs(vectors: torch.Tensor) -> torch.Tensor:
    index = vectors.abs().argmax(dim=1)
    signs = torch.sign(vectors.gather(1, index[:, None]))
    return vectors * torch.where(signs == 0, torch.ones_like(signs), signs)


def _ms_ssim_loss(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean over scales (full, 1/2, 1/4 ... while >= 16 px) of kornia's SSIM loss ``(1 - SSIM) / 2``."""
    x, y = (x + 1) / 2, (y + 1) / 2
    losses = []
    while True:
        window = 11 if min(x.shape[-2:]) >= 32 else 7
        losses.append(kornia.losses.ssim_loss(x, y, window, max_val=1.0))
        if min(x.shape[-2:]) < 32 or len(losses) == 3:
            break
        x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
    return torch.stack(losses).mean()


def _noise_regularisation(noises: Sequence[torch.Tensor]) -> torch.Tensor:
    """Squared autocorrelation at one-pixel shifts, at every scale down to 8x8 (keeps noise maps white)."""
    total = noises[0].new_zeros(())
    for noise in noises:
        n = noise[None, None]
        while True:
            total = total + (n * torch.roll(n, 1, dims=3)).mean().square()
            total = total + (n * torch.roll(n, 1, dims=2)).mean().square()
            if n.shape[-1] <= 8:
                break
            n = F.avg_pool2d(n, 2)
    return total


# ----------------------------------------------------------------------------------------------------------
# Animations


def write_animation(path: str | Path, frames: Sequence[np.ndarray] | np.ndarray, fps: float = 12.0) -> Path:
    """Write RGB uint8 frames as an animated ``.gif`` (OpenCV's animation encoder, loops forever) or ``.mp4``
    (``cv2.VideoWriter`` with the ``mp4v`` codec).

    Raises:
        StorageError: another suffix, or the encoder failed (the file is not left half-written).
    """
    path = Path(path)
    frames = [np.ascontiguousarray(f[:, :, ::-1]) for f in frames]  # RGB -> BGR
    if not frames:
        raise StorageError("no frames to write", path=path)
    suffix = path.suffix.lower()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{suffix}")
    try:
        if suffix == ".gif":
            animation = cv2.Animation()
            animation.frames = frames
            animation.durations = [int(round(1000 / fps))] * len(frames)
            animation.loop_count = 0
            ok, encoded = cv2.imencodeanimation(".gif", animation)
            if not ok:
                raise StorageError("the GIF encoder failed", path=path)
            atomic_write_bytes(path, np.asarray(encoded).tobytes())
            return path
        if suffix == ".mp4":
            height, width = frames[0].shape[:2]
            writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
            if not writer.isOpened():
                raise StorageError("cannot open an mp4v video writer (OpenCV built without FFmpeg?)", path=path)
            for frame in frames:
                writer.write(frame)
            writer.release()
            tmp.replace(path)
            return path
    except OSError as exc:
        raise StorageError(f"cannot write animation ({exc.strerror})", path=path) from exc
    finally:
        tmp.unlink(missing_ok=True)
    raise StorageError("animations are written as .gif or .mp4", path=path)
