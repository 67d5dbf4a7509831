"""Figures for the bundled models' cards (docs/models/*.md): input | untrained | trained | real rows.

Run from the repository root with the project's venv, after the model is in assets/models:

    python scripts/model_card_figures.py facades docs/images/model-facades.png
    python scripts/model_card_figures.py horse2zebra docs/images/model-horse2zebra.png
    python scripts/model_card_figures.py emoji-faces docs/images/model-emoji-faces.png
    python scripts/model_card_figures.py facades-spade docs/images/model-facades-spade.png
    python scripts/model_card_figures.py emoji-stylegan2 docs/images/model-emoji-stylegan2.png

The untrained column is the same network config with fresh weights (seed 0), so the card shows what training
added. Inputs are validation images (facades) or horses and zebras held back from training.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import torch

from engine.core.checkpoint import read_metadata, resolve_checkpoint
from engine.core.imageio import read_image, write_image
from engine.infer.inference import InferenceSession

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
FACADES_VAL = [1, 7, 23, 42, 77]
HORSES = ["n02381460_8088", "n02381460_8104", "n02381460_835", "n02381460_8449"]  # held back from training
ZEBRAS = ["n02391049_9136", "n02391049_9137", "n02391049_9193", "n02391049_924"]


def title_band(text: str, width: int) -> np.ndarray:
    band = np.full((22, width, 3), 255, np.uint8)
    cv2.putText(band, text, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return band


def stack(images: list[np.ndarray], axis: int, gap: int = 4) -> np.ndarray:
    """Concatenate along ``axis`` (0 rows, 1 columns) with white gaps."""
    parts: list[np.ndarray] = []
    for image in images:
        if parts:
            shape = list(image.shape)
            shape[axis] = gap
            parts.append(np.full(shape, 255, np.uint8))
        parts.append(image)
    return np.concatenate(parts, axis=axis)


def grid(rows: list[list[np.ndarray]], titles: list[str], side: int = 192) -> np.ndarray:
    """A titled grid of ``side``-pixel cells."""
    header = stack([title_band(t, side) for t in titles], axis=1)
    lines = [stack([cv2.resize(img, (side, side), interpolation=cv2.INTER_AREA) for img in row], axis=1)
             for row in rows]
    return stack([header, *lines], axis=0)


def untrained_like(name: str) -> InferenceSession:
    meta = read_metadata(resolve_checkpoint(name))
    size = tuple(meta["train_config"]["size"])
    return InferenceSession.untrained(meta["family"], size=size, device="cpu", **meta["model_config"])


def facades(out: Path) -> None:
    trained, untrained = InferenceSession.from_checkpoint("facades", "cpu"), untrained_like("facades")
    rows = []
    for index in FACADES_VAL:
        pair = read_image(SHARED / "facades" / "val" / f"{index}.jpg")
        photo, labels = pair[:, :256], pair[:, 256:]
        rows.append([labels, untrained.translate(labels), trained.translate(labels), photo])
    write_image(out, grid(rows, ["label map (val)", "untrained", "trained", "real photo"]))


def horse2zebra(out: Path) -> None:
    trained, untrained = InferenceSession.from_checkpoint("horse2zebra", "cpu"), untrained_like("horse2zebra")
    rows = []
    for stem, direction, folder in [(h, "AtoB", "trainA") for h in HORSES] + [(z, "BtoA", "trainB") for z in ZEBRAS]:
        photo = read_image(SHARED / "horse2zebra" / folder / f"{stem}.jpg")
        rows.append([photo, untrained.translate(photo, direction=direction),
                     trained.translate(photo, direction=direction)])
    write_image(out, grid(rows, ["held-back photo", "untrained", "trained"]))


def emoji_faces(out: Path) -> None:
    """Held-out face emoji (the dataset builder's val split) as edges, then the bundled hand-drawn sample."""
    import tempfile

    from emoji_faces import gather

    from engine.core.imageio import list_images
    from engine.data.dataset_builder import VAL_EVERY, center_square, make_drawing

    trained, untrained = InferenceSession.from_checkpoint("emoji-faces", "cpu"), untrained_like("emoji-faces")
    with tempfile.TemporaryDirectory() as folder:
        gather(SHARED / "emoji", Path(folder))
        photos = list_images(Path(folder), recursive=True)
        held_out = [center_square(read_image(p), 128) for i, p in enumerate(photos) if i % VAL_EVERY == VAL_EVERY - 1]
    rows = []
    for photo in held_out[::3][:5]:
        edges = make_drawing(photo, "edges")
        rows.append([edges, untrained.translate(edges), trained.translate(edges), photo])
    sketch = read_image(Path(__file__).resolve().parents[1] / "assets/samples/face_sketch.png")
    rows.append([sketch, untrained.translate(sketch), trained.translate(sketch), np.full_like(sketch, 255)])
    write_image(out, grid(rows, ["edges (held out) / sketch", "untrained", "trained", "real emoji"]))


def facades_spade(out: Path) -> None:
    """The validation grid (style from seed 0) and, beside OUT as ``*-styles.png``, one label map under six
    seeds (top) and three style photos each followed by the map in its style (bottom)."""
    trained, untrained = InferenceSession.from_checkpoint("facades-spade", "cpu"), untrained_like("facades-spade")
    pairs = [read_image(SHARED / "facades" / "val" / f"{index}.jpg") for index in FACADES_VAL]
    rows = [[pair[:, 256:], untrained.translate(pair[:, 256:], seed=0), trained.translate(pair[:, 256:], seed=0),
             pair[:, :256]] for pair in pairs]
    write_image(out, grid(rows, ["label map (val)", "untrained", "trained (seed 0)", "real photo"]))
    labels = pairs[0][:, 256:]
    side = 160
    cell = lambda image: cv2.resize(image, (side, side), interpolation=cv2.INTER_AREA)  # noqa: E731
    seeds = [cell(labels)] + [cell(trained.translate(labels, seed=seed)) for seed in range(1, 7)]
    styles = [cell(labels)]
    for pair in pairs[1:4]:
        styles += [cell(pair[:, :256]), cell(trained.translate(labels, style=pair[:, :256]))]
    write_image(out.with_name(out.stem + "-styles.png"), stack([stack(seeds, 1), stack(styles, 1)], 0))


def numbered(image: np.ndarray, number: int, side: int = 128) -> np.ndarray:
    """``image`` at ``side`` pixels with ``number`` in its top-left corner."""
    cell = cv2.resize(image, (side, side), interpolation=cv2.INTER_NEAREST)
    cv2.putText(cell, str(number), (3, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
    return cell


def emoji_stylegan2(out: Path) -> None:
    """Seeds 0-47 at psi 0.7, numbered, trained (OUT) and untrained (``*-untrained.png``); an interpolation strip
    in w between seeds (``*-interpolation.png``); one sample moved along the first PCA and SeFa directions saved
    beside the model (``*-directions.png``)."""
    from engine.families.stylegan2.latent import LatentSession, default_directions_path, load_directions

    trained = LatentSession.from_checkpoint("emoji-stylegan2", "cpu")
    meta = read_metadata(resolve_checkpoint("emoji-stylegan2"))
    untrained = LatentSession.untrained(device="cpu", **meta["model_config"])
    seeds = list(range(48))
    for session, path in ((trained, out), (untrained, out.with_name(out.stem + "-untrained.png"))):
        images = [numbered(image, seed) for seed, image in zip(seeds, session.generate(seeds, psi=0.7), strict=True)]
        write_image(path, stack([stack(images[row * 8:row * 8 + 8], 1) for row in range(6)], 0))
    strips = []
    for keys in ((0, 10, 21, 30), (5, 14, 27, 42)):
        frames = trained.synthesize(trained.interpolate(list(keys), frames=12, psi=0.7))
        strips.append(stack([cv2.resize(f, (96, 96), interpolation=cv2.INTER_AREA) for f in frames], 1, gap=2))
    write_image(out.with_name(out.stem + "-interpolation.png"), stack(strips, 0))
    rows = []
    base = trained.w_from_seed(3, psi=0.7)
    for method in ("pca", "sefa"):
        directions = load_directions(default_directions_path(trained.path, method), trained.w_dim)
        for index in range(3):
            ws = torch.stack([trained.apply_direction(base, directions.vectors[index], strength)
                              for strength in (-4, -2, 0, 2, 4)])
            row = [cv2.resize(f, (96, 96), interpolation=cv2.INTER_AREA) for f in trained.synthesize(ws)]
            rows.append(stack(row, 1, gap=2))
    write_image(out.with_name(out.stem + "-directions.png"), stack(rows, 0))


if __name__ == "__main__":
    {"facades": facades, "horse2zebra": horse2zebra, "emoji-faces": emoji_faces,
     "facades-spade": facades_spade, "emoji-stylegan2": emoji_stylegan2}[sys.argv[1]](Path(sys.argv[2]))
