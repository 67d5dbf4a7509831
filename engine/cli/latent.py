"""``ganvas generate | interpolate | directions | edit | mix | project | nearest``: the StyleGAN2 latent tools on
the command line.

Wire-up in :mod:`engine.cli.main`: ``add_latent_commands(commands, COMMANDS)`` adds the sub-commands to the parser
and their functions to the dispatch table. Heavy imports happen inside the commands, so ``ganvas --help`` stays
fast. Errors are :class:`~engine.core.errors.GanvasError` (one line in the CLI).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

LAYER_NAMES = "coarse, middle or fine"  # engine.families.stylegan2.latent.LAYER_GROUPS (not imported here: it loads torch)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True, help="stylegan2 checkpoint file or run folder")
    p.add_argument("--device", default="auto", help="auto|cpu|cuda|cuda:N|mps (default auto)")


def add_latent_commands(subparsers: Any, registry: dict[str, Callable[[argparse.Namespace], int]] | None = None
                        ) -> None:
    """Add the latent sub-commands to ``subparsers``; with ``registry``, also their command functions."""
    gen = subparsers.add_parser("generate", help="(stylegan2) images of seeds",
                                description="Render the images of seeds with a StyleGAN2 checkpoint.")
    _common(gen)
    gen.add_argument("--seeds", default="0-7", help="seeds, e.g. 0-7 or 1,5,9 (default 0-7)")
    gen.add_argument("--psi", default="1", help="truncation: 1 = none, 0 = the average image; several values "
                     "(e.g. 1,0.7,0.4,0) make a truncation series, one grid column each")
    gen.add_argument("--cutoff", type=int, help="truncate only layers below this index (default all)")
    gen.add_argument("--noise-mode", default="const", choices=("const", "random", "none"))
    gen.add_argument("--out", required=True, help="output folder (seed_NNNN.png plus latents with --save-latents)")
    gen.add_argument("--save-latents", action="store_true", help="also write seed_NNNN.npz latents")
    gen.add_argument("--grid", type=int, metavar="COLUMNS",
                     help="also write grid.png with this many images per row (a series: one row per seed)")

    inter = subparsers.add_parser("interpolate", help="(stylegan2) GIF or MP4 walking between seeds or latents")
    _common(inter)
    keys = inter.add_mutually_exclusive_group(required=True)
    keys.add_argument("--seeds", help="key seeds in order, e.g. 1,2,3")
    keys.add_argument("--latents", nargs="+", metavar="NPZ", help="key latent files (linear in W+)")
    inter.add_argument("--frames", type=int, default=24, help="total frames, ends included (default 24)")
    inter.add_argument("--fps", type=float, default=12.0)
    inter.add_argument("--space", choices=("w", "z"), default="w", help="linear in w or spherical in z (seeds)")
    inter.add_argument("--psi", type=float, default=1.0)
    inter.add_argument("--out", required=True, help="output .gif or .mp4")

    dirs = subparsers.add_parser("directions", help="(stylegan2) find edit directions with PCA or SeFa")
    _common(dirs)
    dirs.add_argument("--method", choices=("pca", "sefa"), default="sefa")
    dirs.add_argument("--k", type=int, default=8, help="number of directions (default 8)")
    dirs.add_argument("--layers", help=f"layer range, inclusive, e.g. 0-4, or {LAYER_NAMES} (default all)")
    dirs.add_argument("--samples", type=int, default=10_000, help="(pca) sampled latents (default 10000)")
    dirs.add_argument("--out", help="output .npz (default NAME.directions_<method>.npz beside a model file NAME.safetensors, "
                      "directions_<method>.npz in a run folder)")

    edit = subparsers.add_parser("edit", help="(stylegan2) move a latent along a direction, as a grid")
    _common(edit)
    src = edit.add_mutually_exclusive_group(required=True)
    src.add_argument("--seed", help="seed(s) to edit, e.g. 3 or 0-3 (one grid row each)")
    src.add_argument("--latent", nargs="+", metavar="NPZ", help="latent file(s) to edit")
    edit.add_argument("--psi", type=float, default=1.0, help="truncation for seeds")
    edit.add_argument("--directions", required=True, help="directions .npz (from ganvas directions)")
    edit.add_argument("--index", default="0", help="direction index(es), e.g. 0 or 0-3 (one grid per index)")
    edit.add_argument("--strengths", default="-3,0,3", help="comma-separated strengths (grid columns)")
    edit.add_argument("--layers", help=f"layer range, inclusive, or {LAYER_NAMES} (default: the directions' own, "
                      "else all)")
    edit.add_argument("--out", required=True, help="output folder")

    mix = subparsers.add_parser("mix", help="(stylegan2) style mixing grid: row seeds take some layers of column "
                                "seeds", description="Style mixing: each row seed keeps its own styles except on "
                                "--layers, which come from the column seed. Writes one grid: the column seeds on top, "
                                "the row seeds on the left, the mixes between.")
    _common(mix)
    mix.add_argument("--rows", default="0-3", help="seeds that give all other layers, one row each (default 0-3)")
    mix.add_argument("--columns", default="4-7", help="seeds that give --layers, one column each (default 4-7)")
    mix.add_argument("--layers", default="coarse", help=f"layer range taken from the column seeds, inclusive, e.g. "
                     f"0-2, or {LAYER_NAMES} (default coarse)")
    mix.add_argument("--psi", type=float, default=1.0, help="truncation of every seed (default 1)")
    mix.add_argument("--out", required=True, help="output grid image, e.g. mix.png")

    proj = subparsers.add_parser("project", help="(stylegan2) find the latent of a real image")
    _common(proj)
    proj.add_argument("image", help="image to project (centre-cropped to a square and resized)")
    proj.add_argument("--steps", type=int, default=300)
    proj.add_argument("--space", choices=("w", "w+"), default="w")
    proj.add_argument("--lr", type=float, default=0.1, help="Adam learning rate (default 0.1)")
    proj.add_argument("--no-noise", action="store_true", help="keep the constant noise instead of optimising it")
    proj.add_argument("--seed", type=int, default=0)
    proj.add_argument("--lpips", metavar="VGG16.pth", help="add LPIPS to the loss, on this VGG16 backbone (e.g. "
                      "torchvision's vgg16-397923af.pth; Ganvas downloads nothing)")
    proj.add_argument("--lpips-linear", metavar="LIN.pth", help="LPIPS linear weights (the authors' vgg.pth); "
                      "without them every feature channel weighs 1")
    proj.add_argument("--lpips-weight", type=float, default=1.0, help="weight of LPIPS in the loss (default 1)")
    proj.add_argument("--out", required=True, help="output folder (target.png, projected.png, latent.npz)")
    proj.add_argument("--no-progress", action="store_true")
    near = subparsers.add_parser("nearest", help="(stylegan2) samples beside their nearest training images",
                                 description="Check that a StyleGAN2 makes new images rather than copies: each "
                                 "sample of the seeds beside its nearest training image, with the pixel RMS "
                                 "distance (0-255).")
    _common(near)
    near.add_argument("--data", help="training image folder (default: the one the checkpoint was trained on)")
    near.add_argument("--seeds", default="0-15", help="seeds, e.g. 0-15 (default)")
    near.add_argument("--psi", type=float, default=0.7, help="truncation (default 0.7)")
    near.add_argument("--columns", type=int, default=4, help="sample|match pairs per grid row (default 4)")
    near.add_argument("--out", required=True, help="output grid image, e.g. nearest.png")
    if registry is not None:
        registry.update(LATENT_COMMANDS)


# --- commands ---------------------------------------------------------------------------------------------------


def _session(args: argparse.Namespace) -> Any:
    from engine.families.stylegan2.latent import LatentSession

    return LatentSession.from_checkpoint(args.checkpoint, device=args.device)


def _to_minus_one_one_chw(image: Any) -> Any:
    """An (H, W, 3) uint8 array as a (3, H, W) float tensor in [-1, 1], as the grid and metric helpers take."""
    import torch

    from engine.data.augment import to_minus_one_one

    return to_minus_one_one(torch.from_numpy(image).permute(2, 0, 1))


def _psi_list(text: str) -> list[float]:
    from engine.core.errors import ConfigError

    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values:
        raise ConfigError(f"invalid --psi {text!r}: expected a number or a list like 1,0.7,0.4,0")
    return values


def cmd_generate(args: argparse.Namespace) -> int:
    from engine.core.imageio import write_image
    from engine.families.stylegan2.latent import parse_index_list, save_latent
    from engine.train.common import image_grid

    session = _session(args)
    seeds, psis = parse_index_list(args.seeds), _psi_list(args.psi)
    out = Path(args.out)
    rows: list[list[Any]] = [[] for _ in seeds]
    for psi in psis:
        suffix = f"_psi{psi:g}" if len(psis) > 1 else ""
        images = session.generate(seeds, psi=psi, cutoff=args.cutoff, noise_mode=args.noise_mode)
        for row, seed, image in zip(rows, seeds, images, strict=True):
            write_image(out / f"seed_{seed:04d}{suffix}.png", image)
            row.append(_to_minus_one_one_chw(image))
            if args.save_latents:
                save_latent(out / f"seed_{seed:04d}{suffix}.npz", session.latent_from_seed(seed, psi, args.cutoff))
    if args.grid:
        cells = [cell for row in rows for cell in row]
        columns = len(psis) if len(psis) > 1 else max(1, args.grid)
        write_image(out / "grid.png", image_grid([cells[i: i + columns] for i in range(0, len(cells), columns)]))
    print(f"ganvas: wrote {len(seeds) * len(psis)} image(s) to {out}", file=sys.stderr)
    return 0


def cmd_interpolate(args: argparse.Namespace) -> int:
    from engine.core.errors import ConfigError
    from engine.families.stylegan2.latent import load_latent, parse_index_list, write_animation

    session = _session(args)
    if args.seeds:
        keys: list[Any] = parse_index_list(args.seeds)
    else:
        if args.space == "z":
            raise ConfigError("--space z needs --seeds (saved latents live in W)")
        keys = [load_latent(p, session.num_ws, session.w_dim) for p in args.latents]
    ws = session.interpolate(keys, args.frames, space=args.space, psi=args.psi)
    path = write_animation(args.out, session.synthesize(ws), fps=args.fps)
    print(f"ganvas: wrote {args.frames} frames to {path}", file=sys.stderr)
    return 0


def cmd_directions(args: argparse.Namespace) -> int:
    from engine.families.stylegan2.latent import default_directions_path, parse_layer_range, save_directions

    session = _session(args)
    layers = parse_layer_range(args.layers, session.num_ws) if args.layers else None
    if args.method == "pca":
        directions = session.directions_pca(args.k, samples=args.samples, layers=layers)
    else:
        directions = session.directions_sefa(args.k, layers=layers)
    path = save_directions(args.out or default_directions_path(session.path, args.method), directions)
    label = "explained variance" if args.method == "pca" else "eigenvalue"
    for index, value in enumerate(directions.values.tolist()):
        print(f"{index:3d}  {label} {value:.4g}")
    print(f"ganvas: wrote {len(directions)} {args.method} direction(s) to {path}", file=sys.stderr)
    return 0


def cmd_edit(args: argparse.Namespace) -> int:
    import torch

    from engine.core.errors import ConfigError
    from engine.core.imageio import write_image
    from engine.families.stylegan2.latent import (
        load_directions,
        load_latent,
        parse_index_list,
        parse_layer_range,
    )
    from engine.train.common import image_grid

    session = _session(args)
    directions = load_directions(args.directions, session.w_dim)
    if args.layers:
        layers = parse_layer_range(args.layers, session.num_ws)
    else:
        layers = directions.layers or (0, session.num_ws)
    try:
        strengths = [float(s) for s in args.strengths.split(",") if s.strip()]
    except ValueError:
        raise ConfigError(f"invalid --strengths {args.strengths!r}: expected numbers like -3,0,3") from None
    if args.seed is not None:
        sources = [(f"seed{s}", session.w_from_seed(s, args.psi)) for s in parse_index_list(args.seed)]
        noises: list[Any] = [None] * len(sources)
    else:
        latents = [load_latent(p, session.num_ws, session.w_dim) for p in args.latent]
        sources = [(Path(p).stem, lat.ws) for p, lat in zip(args.latent, latents, strict=True)]
        noises = [lat.noise for lat in latents]
    out = Path(args.out)
    for index in parse_index_list(args.index):
        if not 0 <= index < len(directions):
            raise ConfigError(f"--index {index} out of range: the file has {len(directions)} directions")
        rows = []
        for (_, ws), noise in zip(sources, noises, strict=True):
            edited = torch.stack([session.apply_direction(ws, directions.vectors[index], s, layers)
                                  for s in strengths])
            images = session.synthesize(edited, noise=noise)
            rows.append([_to_minus_one_one_chw(im) for im in images])
        path = write_image(out / f"direction_{index:02d}.png", image_grid(rows))
        print(f"ganvas: wrote {path}", file=sys.stderr)
    return 0


def cmd_mix(args: argparse.Namespace) -> int:
    import torch

    from engine.core.imageio import write_image
    from engine.families.stylegan2.latent import parse_index_list, parse_layer_range
    from engine.train.common import image_grid

    session = _session(args)
    row_seeds, column_seeds = parse_index_list(args.rows), parse_index_list(args.columns)
    layers = parse_layer_range(args.layers, session.num_ws)
    row_ws = [session.w_from_seed(s, args.psi) for s in row_seeds]
    column_ws = [session.w_from_seed(s, args.psi) for s in column_seeds]
    corner = torch.ones(3, session.resolution, session.resolution)  # white
    header = [_to_minus_one_one_chw(im) for im in session.synthesize(torch.stack(column_ws))]
    rows = [[corner, *header]]
    for ws, source in zip(row_ws, session.synthesize(torch.stack(row_ws)), strict=True):
        mixed = session.synthesize(torch.stack([session.mix(ws, other, layers) for other in column_ws]))
        rows.append([_to_minus_one_one_chw(source), *(_to_minus_one_one_chw(im) for im in mixed)])
    path = write_image(args.out, image_grid(rows))
    print(f"ganvas: wrote {path} ({len(row_seeds)} x {len(column_seeds)} mixes, layers {layers[0]}-{layers[1] - 1} "
          "from the column seeds)", file=sys.stderr)
    return 0


def cmd_project(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from engine.core.errors import ConfigError
    from engine.core.imageio import read_image, write_image
    from engine.families.stylegan2.family import square_resize
    from engine.families.stylegan2.latent import save_latent
    from engine.infer.metrics import image_metrics

    if args.lpips_linear and not args.lpips:
        raise ConfigError("--lpips-linear needs --lpips VGG16.pth (the backbone)")
    session = _session(args)
    image = read_image(args.image)
    out = Path(args.out)
    perceptual = None
    if args.lpips:
        from engine.infer.perceptual import load_lpips

        perceptual = load_lpips(args.lpips, args.lpips_linear, session.device)
    final = None
    with tqdm(total=args.steps, unit="step", dynamic_ncols=True, disable=args.no_progress) as bar:
        for event in session.project(image, steps=args.steps, space=args.space, lr=args.lr,
                                     optimize_noise=not args.no_noise, seed=args.seed, perceptual=perceptual,
                                     perceptual_weight=args.lpips_weight):
            if event.kind == "step":
                bar.update(event.step - bar.n)
                bar.set_postfix({"loss": f"{event.loss:.4g}", "mse": f"{event.mse:.4g}"}, refresh=False)
            else:
                final = event
    assert final is not None and final.latent is not None and final.image is not None
    final.latent.provenance["image"] = str(args.image)
    target = square_resize(image, session.resolution)
    write_image(out / "target.png", target)
    write_image(out / "projected.png", final.image)
    save_latent(out / "latent.npz", final.latent)
    projected, wanted = _to_minus_one_one_chw(final.image)[None], _to_minus_one_one_chw(target)[None]
    scores = image_metrics(projected, wanted)
    if perceptual is not None:
        scores["LPIPS"] = perceptual(projected.to(session.device), wanted.to(session.device))[0].cpu()
    print("reconstruction: " + ", ".join(f"{name} {value.item():.4g}" for name, value in scores.items()))
    print(f"ganvas: projected {args.image} into {args.space} (loss {final.loss:.4g}); wrote {out}", file=sys.stderr)
    return 0


def cmd_nearest(args: argparse.Namespace) -> int:
    from engine.core.errors import ConfigError
    from engine.core.imageio import write_image
    from engine.families.stylegan2.latent import parse_index_list
    from engine.families.stylegan2.nearest import load_training_images, nearest_report, side_by_side

    session = _session(args)
    dataset = session.meta.get("dataset") or {}
    folder = args.data or dataset.get("folder")
    if not folder:
        raise ConfigError("the checkpoint does not name its training folder: pass --data DIR")
    seeds = parse_index_list(args.seeds)
    samples = session.generate(seeds, psi=args.psi)
    files, images = load_training_images(folder, session.resolution, tuple(dataset.get("background", (255,) * 3)))
    report = nearest_report(samples, files, images)
    for seed, path, rms in zip(seeds, report.files, report.rms, strict=True):
        print(f"seed {seed:4d}  RMS {rms:6.1f}  {path}")
    print(f"{len(files)} training images; RMS to the nearest: median {report.median:.1f}, "
          f"min {report.minimum:.1f} (0 = a copy)")
    path = write_image(args.out, side_by_side(samples, images[report.indices], columns=max(1, args.columns)))
    print(f"ganvas: wrote {path}", file=sys.stderr)
    return 0


LATENT_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "generate": cmd_generate, "interpolate": cmd_interpolate, "directions": cmd_directions, "edit": cmd_edit,
    "project": cmd_project, "nearest": cmd_nearest, "mix": cmd_mix,
}
