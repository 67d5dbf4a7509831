"""Fuzz targets: every loader that takes a file a user or a stranger can hand to Ganvas.

Each target is a function of raw bytes (what atheris feeds) that writes them where the loader expects a file
and calls it. The rule they check: a loader either returns a well-formed result or raises an error of
:mod:`engine.core.errors`; anything else (``KeyError``, ``MemoryError``, a torch ``TypeError``) is a crash, and an
input taking longer than :data:`HANG_SECONDS` is a hang.

Structured targets (checkpoint headers, project and palette JSON, dataset folders) take bytes too: they are
decoded into the structure (JSON text placed in an otherwise valid container; a small recipe for a folder),
so the same functions serve the coverage-guided byte fuzzer and the seeded hypothesis runs in the test suite.
"""

from __future__ import annotations

import io
import json
import random
import shutil
import struct
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HANG_SECONDS = 5.0


# --- mutators: how an input is derived from a seed (the short runs' hypothesis strategies and atheris' custom
# mutator both call them with a seeded random.Random, so a run is reproducible from its seed) -------------------
INTERESTING_INTS = (0, 1, -1, 2**31 - 1, -(2**31), 2**32 - 1, 2**63 - 1, 2**64, 10**30, 255, 256, 65535, 100000)


def mutate_bytes(data: bytes, rng: random.Random) -> bytes:
    """A few byte-level edits: overwrite, insert interesting integers, delete or duplicate a range, truncate."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        where = rng.randint(0, len(out))
        action = rng.randrange(6)
        if action == 0 and out:
            for _ in range(rng.randint(1, 8)):
                out[rng.randrange(len(out))] = rng.randrange(256)
        elif action == 1:  # an interesting integer over whatever was there (sizes, counts, offsets)
            form = rng.choice(("<I", ">I", "<Q", ">Q"))
            mask = 0xFFFFFFFF if form[1] == "I" else 0xFFFFFFFFFFFFFFFF
            packed = struct.pack(form, rng.choice(INTERESTING_INTS) & mask)
            out[where:where + len(packed)] = packed
        elif action == 2:
            del out[where:where + rng.randint(1, 64)]
        elif action == 3 and out:
            start = rng.randrange(len(out))
            out[where:where] = out[start:start + rng.randint(1, 256)]
        elif action == 4 and rng.random() < 0.3:
            del out[where:]
        else:
            out[where:where] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
    return bytes(out)


def random_json(rng: random.Random, depth: int = 0) -> object:
    """A JSON value of any type, with the values loaders trip over (wrong types, huge numbers, deep nesting)."""
    pick = rng.randrange(12 if depth < 3 else 8)
    if pick == 0:
        return None
    if pick == 1:
        return rng.random() < 0.5
    if pick == 2:
        return rng.choice(INTERESTING_INTS)
    if pick == 3:
        return rng.choice((0.5, -1.5, 1e308, -1e-308, 3.0))
    if pick == 4:
        return rng.choice(("", "1", "pix2pix", "stylegan2", "../../etc/passwd", "a" * 1000, "256x256", "NaN"))
    if pick == 5:
        return rng.randint(-3, 300)
    if pick == 6:
        nested: object = []
        for _ in range(rng.choice((2, 50, 5000))):
            nested = [nested]
        return nested
    if pick == 7:
        return rng.choice(([], {}, [256, 256], [0, 0], [1], ["x", "y"]))
    if pick in (8, 9):
        return [random_json(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return {rng.choice(("format", "family", "step", "size", "ngf", "kind", "name", "x")): random_json(rng, depth + 1)
            for _ in range(rng.randint(0, 3))}


def mutate_json_value(value: object, rng: random.Random) -> object:
    """Replace, delete or add one node somewhere inside a decoded JSON value."""
    if not isinstance(value, dict | list) or not value or rng.random() < 0.15:
        return random_json(rng)
    if isinstance(value, dict):
        key = rng.choice(list(value))
        action = rng.randrange(4)
        if action == 0:
            return {k: v for k, v in value.items() if k != key}
        if action == 1:
            return {**value, rng.choice(("extra", "step", "format_version", "version", key + "_")): random_json(rng)}
        return {**value, key: mutate_json_value(value[key], rng)}
    index = rng.randrange(len(value))
    return [mutate_json_value(v, rng) if i == index else v for i, v in enumerate(value)]


def mutate_json(data: bytes, rng: random.Random) -> bytes:
    """Structural edits when ``data`` is JSON (a field gets the wrong type, vanishes, nests deeply), else bytes."""
    try:
        value = json.loads(data)
    except (ValueError, RecursionError):
        return mutate_bytes(data, rng)
    if rng.random() < 0.1:
        return mutate_bytes(data, rng)
    for _ in range(rng.randint(1, 3)):
        value = mutate_json_value(value, rng)
    try:
        return json.dumps(value).encode()
    except (ValueError, RecursionError):
        return data


def mutate_recipe(data: bytes, rng: random.Random) -> bytes:
    """A dataset recipe (see :func:`build_dataset`) with some of its bytes redrawn."""
    out = bytearray(data + bytes(max(0, 6 - len(data))))
    for _ in range(rng.randint(1, 3)):
        out[rng.randrange(6)] = rng.randrange(256)
    if rng.random() < 0.3:
        out += bytes(rng.randrange(256) for _ in range(rng.randint(1, 24)))
    return bytes(out)


@dataclass(frozen=True)
class Target:
    """One fuzz target: ``run(data, work)`` exercises a loader on ``data`` inside the empty folder ``work``;
    ``seeds(folder)`` returns real files' bytes to start from (``folder`` is a scratch folder); ``mutate``
    derives an input from a seed."""

    name: str
    run: Callable[[bytes, Path], None]
    seeds: Callable[[Path], list[bytes]]
    what: str
    mutate: Callable[[bytes, random.Random], bytes] = mutate_bytes


# --- seeds: real files of every kind, built with Ganvas itself -------------------------------------------------
SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def image_seeds(folder: Path) -> list[bytes]:
    """A few real photos (when ../shared/data is there) and every format and depth the I/O layer reads."""
    import cv2

    seeds = []
    for pattern in ("facades/train/1.jpg", "emoji/*/*.png", "horse2zebra/trainA/*.jpg"):
        for path in sorted(SHARED_DATA.glob(pattern))[:1]:
            seeds.append(path.read_bytes())
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
    variants = [(".png", rgb), (".png", rgb[:, :, 0]), (".png", (rgb.astype(np.uint16) * 257)),
                (".png", np.dstack([rgb, rgb[:, :, :1]])), (".jpg", rgb), (".bmp", rgb), (".tif", rgb),
                (".webp", rgb), (".tif", rgb.astype(np.float32) / 255)]
    for suffix, array in variants:
        ok, encoded = cv2.imencode(suffix, array)
        if ok:
            seeds.append(encoded.tobytes())
    return seeds


TINY_PIX2PIX = {"depth": 5, "ngf": 4, "ndf": 4}


def checkpoint_seeds(folder: Path) -> list[bytes]:
    """A tiny pix2pix checkpoint with the header training writes (configs, step, dataset, metrics)."""
    import torch

    from engine.core.checkpoint import flatten_state, save_checkpoint
    from engine.core.config import DataConfig, TrainConfig, to_dict
    from engine.core.registry import get_family

    family = get_family("pix2pix")
    config = family.config_cls(**TINY_PIX2PIX)
    torch.manual_seed(0)
    generator = family.inference_network(config)
    meta = {"family": "pix2pix", "model_config": to_dict(config), "train_config": to_dict(TrainConfig(size=(32, 32))),
            "data_config": to_dict(DataConfig()), "step": 2, "dataset": {"layout": "aligned", "pairs": 4},
            "metrics": {"losses": {"G_L1": 0.5}}}
    path = save_checkpoint(folder / "seed.safetensors", flatten_state("net.G", generator.state_dict()), meta)
    return [path.read_bytes()]


def header_seeds(folder: Path) -> list[bytes]:
    """The JSON header of :func:`checkpoint_seeds`' checkpoint."""
    from engine.core.checkpoint import read_metadata

    checkpoint_seeds(folder)
    return [json.dumps(read_metadata(folder / "seed.safetensors")).encode()]


def pth_seeds(folder: Path) -> list[bytes]:
    """A PyTorch state dict of the tiny pix2pix generator, as ``torch.save`` writes it (a zip of pickles)."""
    import torch

    from engine.core.registry import get_family

    family = get_family("pix2pix")
    torch.manual_seed(0)
    state = family.build_generator(family.config_cls(**TINY_PIX2PIX)).state_dict()
    torch.save(state, folder / "seed.pth")
    return [(folder / "seed.pth").read_bytes()]


def latent_seeds(folder: Path) -> list[bytes]:
    """A saved latent (``w`` and ``w+``) and a directions file."""
    import torch

    from engine.families.stylegan2.latent import Directions, Latent, save_directions, save_latent

    ws = torch.linspace(-1, 1, 4 * 8).reshape(4, 8)
    paths = [save_latent(folder / "w.npz", Latent(ws[:1].repeat(4, 1), "w", seed=3, psi=0.7)),
             save_latent(folder / "wplus.npz", Latent(ws, "w+", noise=[torch.zeros(1, 1, 4, 4)])),
             save_directions(folder / "dirs.npz", Directions(ws, torch.arange(4.0), "pca", (0, 4)))]
    return [path.read_bytes() for path in paths]


def project_seeds(folder: Path) -> list[bytes]:
    """A project with every member: canvas, output, latents, style image."""
    from engine.core.project import ModelReference, Project, save_project

    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (8, 12, 3), dtype=np.uint8)
    project = Project(canvas=image, model=ModelReference("untrained", "pix2pix", {"ngf": 4}), palette="facades",
                      style={"direction": "AtoB"}, settings={"brush": 5}, output=image[::-1].copy(),
                      latents={"w": np.zeros((1, 8), np.float32)}, style_image=image[:, ::-1].copy())
    return [save_project(folder / "seed.ganvas", project).read_bytes()]


def project_json_seeds(folder: Path) -> list[bytes]:
    """The ``project.json`` of :func:`project_seeds`' project."""
    with zipfile.ZipFile(io.BytesIO(project_seeds(folder)[0])) as archive:
        return [archive.read("project.json")]


def palette_seeds(folder: Path) -> list[bytes]:
    """The bundled palettes."""
    from importlib import resources

    return [p.read_bytes() for p in (resources.files("assets") / "palettes").iterdir() if p.name.endswith(".json")]


def run_log_seeds(folder: Path) -> list[bytes]:
    """A log.jsonl as training writes it."""
    return ["".join(json.dumps({"step": s, "lr_factor": 1.0, "G": s / 10, "D": 0.5}) + "\n"
                    for s in range(1, 6)).encode()]


def dataset_seeds(folder: Path) -> list[bytes]:
    """Recipes (see :func:`build_dataset`) for the main layouts: aligned, paired, unaligned, labels+images."""
    return [bytes([0, 3, 16, 32, 0, 0]), bytes([1, 3, 16, 16, 0, 0]), bytes([2, 4, 16, 16, 0, 0]),
            bytes([3, 3, 16, 16, 0, 0]), bytes([4, 12, 16, 16, 2, 1])]


# --- targets ----------------------------------------------------------------------------------------------------
IMAGE_SUFFIXES = (".png", ".jpg", ".bmp", ".tif", ".webp", ".jpeg")


def run_image(data: bytes, work: Path) -> None:
    """``read_image`` on the bytes under each suffix the I/O layer accepts (the suffix only names the file)."""
    from engine.core.errors import ImageError
    from engine.core.imageio import MAX_PIXELS, read_image

    path = work / f"input{IMAGE_SUFFIXES[len(data) % len(IMAGE_SUFFIXES)]}"
    path.write_bytes(data)
    try:
        image = read_image(path)
    except ImageError:
        return
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3, image.shape
    assert 0 < image.shape[0] * image.shape[1] <= MAX_PIXELS


def _use_checkpoint(path: Path) -> None:
    """Everything that opens a checkpoint file: header, card, full load, inference session, resume's spec."""
    from engine.core.checkpoint import load_checkpoint, read_metadata
    from engine.core.errors import GanvasError
    from engine.infer.inference import InferenceSession, model_card

    try:
        read_metadata(path)
        model_card(path).lines()
        load_checkpoint(path)
    except GanvasError:
        return
    for use in (lambda: InferenceSession.from_checkpoint(path, device="cpu"), lambda: _resume_spec(path)):
        try:
            use()
        except GanvasError:
            pass


def _resume_spec(path: Path) -> None:
    """What resuming reads before any training: the run's spec from the header."""
    from engine.train.training import spec_from_checkpoint

    spec_from_checkpoint(path)


def run_checkpoint(data: bytes, work: Path) -> None:
    """The bytes as a ``.safetensors`` checkpoint (seeded with a real one: header and tensors mutate)."""
    path = work / "model.safetensors"
    path.write_bytes(data)
    _use_checkpoint(path)


def run_checkpoint_header(data: bytes, work: Path) -> None:
    """The bytes as the JSON header of a checkpoint whose tensors are the tiny pix2pix generator's."""
    from safetensors.torch import save_file

    path = work / "model.safetensors"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return  # safetensors headers are UTF-8 JSON; the byte target covers the rest
    save_file(_tiny_generator_tensors(), str(path), metadata={"ganvas": text})
    _use_checkpoint(path)


_TENSORS: dict = {}


def _tiny_generator_tensors() -> dict:
    if not _TENSORS:
        import torch

        from engine.core.checkpoint import flatten_state
        from engine.core.registry import get_family

        family = get_family("pix2pix")
        torch.manual_seed(0)
        net = family.inference_network(family.config_cls(**TINY_PIX2PIX))
        _TENSORS.update(flatten_state("net.G", net.state_dict()))
    return _TENSORS


def run_pth(data: bytes, work: Path) -> None:
    """``import_pth`` of the bytes as a ``.pth`` into the tiny pix2pix generator; no pickled code may run."""
    from engine.core.errors import GanvasError
    from engine.core.registry import get_family
    from engine.infer.importing import import_pth

    path = work / "weights.pth"
    path.write_bytes(data)
    family = get_family("pix2pix")
    try:
        import_pth(path, "pix2pix", family.config_cls(**TINY_PIX2PIX), (32, 32), work / "out.safetensors")
    except GanvasError:
        pass


def run_latent(data: bytes, work: Path) -> None:
    """The bytes as a latent and as a directions ``.npz``."""
    from engine.core.errors import GanvasError
    from engine.families.stylegan2.latent import load_directions, load_latent

    path = work / "latent.npz"
    path.write_bytes(data)
    for load in (lambda: load_latent(path, num_ws=4, w_dim=8), lambda: load_latent(path),
                 lambda: load_directions(path, w_dim=8)):
        try:
            load()
        except GanvasError:
            pass


def run_project(data: bytes, work: Path) -> None:
    """The bytes as a ``.ganvas`` project file."""
    from engine.core.errors import GanvasError
    from engine.core.project import load_project

    path = work / "drawing.ganvas"
    path.write_bytes(data)
    try:
        load_project(path)
    except GanvasError:
        pass


def run_project_json(data: bytes, work: Path) -> None:
    """The bytes as ``project.json`` inside an otherwise valid project."""
    import cv2

    ok, canvas = cv2.imencode(".png", np.zeros((4, 4, 3), np.uint8))
    with zipfile.ZipFile(work / "drawing.ganvas", "w") as archive:
        archive.writestr("project.json", data)
        archive.writestr("canvas.png", canvas.tobytes())
    run_project((work / "drawing.ganvas").read_bytes(), work)


def run_palette(data: bytes, work: Path) -> None:
    """The bytes as a palette ``.json`` file, loaded and used (colour lookups, label conversion)."""
    from engine.core.errors import GanvasError
    from engine.data.palette import Palette

    path = work / "palette.json"
    path.write_bytes(data)
    try:
        palette = Palette.load(path)
    except GanvasError:
        return
    palette.to_dict()
    assert palette.colors.shape == (palette.n_classes, 3)


def run_run_log(data: bytes, work: Path) -> None:
    """The bytes as a run's ``log.jsonl`` and ``config.json``: history windows and the resume rewind."""
    from engine.core.run_log import loss_windows, read_log, read_run_config, run_batch_size
    from engine.train.training import _LossLog

    (work / "log.jsonl").write_bytes(data)
    (work / "config.json").write_bytes(data[:200])
    records = read_log(work)
    loss_windows(records)
    read_run_config(work)
    run_batch_size(work)
    _LossLog(work / "log.jsonl").rewind(3)


def build_dataset(recipe: bytes, folder: Path) -> None:
    """A dataset folder from a few bytes: layout, file count, image sizes, and which files are damaged.

    Byte 0 picks the layout (aligned, paired, unaligned, labels+images, images in sub-folders, train/val
    splits), byte 1 the count (0-15), bytes 2-3 height and width (1-64), byte 4 how files are damaged (none,
    empty, truncated, garbage, a folder named like an image, odd names), byte 5 the first damaged file; the
    rest becomes the garbage written into damaged files.
    """
    import cv2

    recipe = recipe + bytes(6 - min(6, len(recipe)))
    layout, count, height, width, damage, first = recipe[:6]
    count, height, width = count % 16, 1 + height % 64, 1 + width % 64
    garbage = recipe[6:] or b"\x89PNG\r\n\x1a\n"
    kind = layout % 6
    parts = {0: [""], 1: ["A", "B"], 2: ["trainA", "trainB"], 3: ["labels", "images"], 4: ["x", "y/z"],
             5: ["train", "val"]}[kind]
    for part_index, part in enumerate(parts):
        target = folder / part
        target.mkdir(parents=True, exist_ok=True)
        for index in range(count if part_index == 0 else max(0, count - (damage % 3 == 2))):
            value = (index * 37 + part_index * 91) % 256
            array = np.full((height, width * (2 if kind in (0, 5) else 1), 3), value, np.uint8)
            name = f"{index}.png" if damage % 6 != 5 else f"{'.' if index % 2 else ''}{index} é.PNG"
            path = target / name
            if damage % 6 and index >= first % max(1, count):
                mode = damage % 6
                if mode == 1:
                    path.write_bytes(b"")
                elif mode == 2:
                    ok, encoded = cv2.imencode(".png", array)
                    path.write_bytes(encoded.tobytes()[: max(1, len(encoded) // 2)])
                elif mode == 3:
                    path.write_bytes(garbage)
                elif mode == 4:
                    path.mkdir()
                else:
                    cv2.imwrite(str(path), array)
            else:
                ok, encoded = cv2.imencode(".png", array)
                path.write_bytes(encoded.tobytes())


def run_dataset(data: bytes, work: Path) -> None:
    """The dataset check, the training preflight and the datasets' own layout and pairing on a built folder."""
    from engine.core.errors import GanvasError
    from engine.data.dataset_check import check_dataset, preflight
    from engine.data.datasets import detect_layout, pair_files, split_folder

    folder = work / "data"
    build_dataset(data, folder)
    report = check_dataset(folder)
    assert report.layout in ("aligned", "paired", "unaligned", "labels+images", "images", "none"), report.layout
    for family in ("pix2pix", "cyclegan", "spade", "stylegan2"):
        try:
            preflight(folder, family)
        except GanvasError:
            pass
    try:
        split = split_folder(folder)
        detect_layout(split)
        pair_files(split)
    except GanvasError:
        pass


TARGETS: dict[str, Target] = {t.name: t for t in (
    Target("image", run_image, image_seeds, "image decode, every format and bit depth read_image accepts"),
    Target("palette", run_palette, palette_seeds, "palette JSON files", mutate_json),
    Target("checkpoint", run_checkpoint, checkpoint_seeds, "safetensors checkpoints: header and tensors"),
    Target("checkpoint_header", run_checkpoint_header, header_seeds, "checkpoint JSON header (structured)",
           mutate_json),
    Target("pth", run_pth, pth_seeds, ".pth state dicts through import-pth"),
    Target("latent", run_latent, latent_seeds, "latent and directions .npz"),
    Target("project", run_project, project_seeds, ".ganvas project zips"),
    Target("project_json", run_project_json, project_json_seeds, "project.json inside a valid zip (structured)",
           mutate_json),
    Target("dataset", run_dataset, dataset_seeds, "dataset folders: layouts, names, sizes, damaged files",
           mutate_recipe),
    Target("run_log", run_run_log, run_log_seeds, "a run's log.jsonl and config.json"),
)}


def is_ganvas_error(exc: BaseException) -> bool:
    from engine.core.errors import GanvasError

    return isinstance(exc, GanvasError)


def fresh_folder(root: Path) -> Path:
    """An empty ``root/work`` (the previous input's files removed)."""
    work = root / "work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    return work


def describe_crash(exc: BaseException) -> str:
    """``TypeError at engine/x.py:12: message`` (the innermost frame inside the project)."""
    import traceback

    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "/engine/" in f.filename or
              "/models/" in f.filename]
    where = f" at {Path(frames[-1].filename).parent.name}/{Path(frames[-1].filename).name}:{frames[-1].lineno}" \
        if frames else ""
    return f"{type(exc).__name__}{where}: {str(exc)[:200]}"
