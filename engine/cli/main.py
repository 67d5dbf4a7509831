"""The ``ganvas`` command line: train, translate, eval, info, bench.

Every user mistake surfaces as a :class:`~engine.core.errors.GanvasError`, printed as one line with a non-zero exit
code; tracebacks are for bugs only.
"""

from __future__ import annotations

import argparse
import functools
import json
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from engine.cli.dataset import add_dataset_commands
from engine.cli.export import add_export_command
from engine.cli.history import add_history_command
from engine.cli.latent import add_latent_commands
from engine.cli.models import add_models_commands
from engine.cli.palette import add_palette_commands
from engine.core.errors import GanvasError

TRAIN_SKIP = ("size", "device", "seed", "steps", "batch_size")


def _family_names() -> list[str]:
    from engine.core.registry import list_families

    return list_families()


def _recipes_help() -> str:
    """Each family's named recipes with the settings they set, from the registry (``--recipe`` help)."""
    from engine.core.registry import get_family

    parts = []
    for name in _family_names():
        for recipe, values in get_family(name).recipes.items():
            settings = ", ".join(f"{field} {value}" for field, value in values.items())
            parts.append(f"{recipe} for {name} ({settings})")
    return "; ".join(parts)


def build_parser() -> argparse.ArgumentParser:
    from engine.cli.args import add_config_flags
    from engine.core.config import DataConfig, TrainConfig
    from engine.core.device import DEVICE_CHOICES
    from engine.core.registry import get_family
    from engine.infer.backends import BACKEND_CHOICES

    parser = argparse.ArgumentParser(prog="ganvas", description="Image-to-image translation with GANs. "
                                     "Run without arguments to open the desktop app.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    recipes_help = _recipes_help()

    def common_train_flags(p: argparse.ArgumentParser) -> None:
        p.add_argument("--data", help="dataset folder (see docs/datasets.md)")
        p.add_argument("--out", help="run folder (default: runs/<family>)")
        p.add_argument("--size", help="training size N or HxW (default 256)")
        p.add_argument("--steps", type=int, help="total training steps")
        p.add_argument("--batch-size", type=int, help="images per step")
        p.add_argument("--device", help=f"one of {', '.join(DEVICE_CHOICES)} (default auto)")
        p.add_argument("--seed", type=int, help="random seed (default 0)")
        p.add_argument("--resume", metavar="RUN_DIR", help="continue a run exactly where it stopped (after the "
                       "family name, retunable options such as stylegan2's --r1-gamma may change)")
        p.add_argument("--init", metavar="CHECKPOINT", help="start a new run from this model's weights (a run "
                       "folder, checkpoint or bundled model name; its network config is kept): fine-tuning")
        p.add_argument("--recipe", default="default", help="a named set of the family's settings applied before "
                       f"the flags: default (the config's defaults), or {recipes_help} "
                       "(docs/recipes.md)")
        p.add_argument("--no-progress", action="store_true", help="print no progress bar")
        p.add_argument("--nproc", type=int, help="train on this many processes with torchrun: one per GPU "
                       "(gloo processes on a CPU); --batch-size is per process (see docs/multi-gpu.md)")

    train = commands.add_parser("train", help="train a model (or --resume RUN_DIR)",
                                description="Train a model family on a dataset folder.")
    common_train_flags(train)
    families = train.add_subparsers(dest="family", metavar="FAMILY")
    for name in _family_names():
        family = get_family(name)
        fp = families.add_parser(name, help=family.description, description=family.description)
        common_train_flags(fp)
        add_config_flags(fp, family.config_cls)
        add_config_flags(fp, TrainConfig, skip=TRAIN_SKIP)
        add_config_flags(fp, DataConfig, skip=("path",))

    translate = commands.add_parser("translate", help="run a trained generator on images")
    translate.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders")
    translate.add_argument("--checkpoint", required=True, help="checkpoint file, run folder or bundled model name")
    translate.add_argument("--out", required=True, help="output folder")
    translate.add_argument("--device", default="auto")
    translate.add_argument("--half", choices=("left", "right"),
                           help="use one half of aligned A|B images as input (e.g. right for facades labels)")
    translate.add_argument("--keep-size", action="store_true", help="resize outputs back to the input size")
    translate.add_argument("--direction", choices=("AtoB", "BtoA"), help="(CycleGAN) translation direction")
    translate.add_argument("--tile", type=int, default=0, help="(CycleGAN) tiled inference tile size, 0 = auto")
    translate.add_argument("--style", help="(SPADE with an encoder) style reference image")
    translate.add_argument("--seed", type=int, help="(SPADE with an encoder) style seed (default 0)")
    translate.add_argument("--backend", choices=BACKEND_CHOICES, default="torch",
                           help="what runs the network: torch (default), onnxruntime, openvino, or auto (the "
                                "fastest here, timed on the model); compiled models are cached. openvino-bf16: "
                                "bf16 on CPUs with bf16 units (AMX). openvino-int8: quantized to int8 on (up to 32 of) the inputs; see docs/backends.md")

    evaluate = commands.add_parser(
        "eval", help="L1/PSNR/SSIM, FID/KID, LPIPS of a checkpoint on a dataset split; a results page",
        description="Metrics of a checkpoint on a dataset split: pixel metrics against paired targets, FID and "
        "KID of generated against real images (StyleGAN2: samples against the training folder), LPIPS, and a "
        "static results page. Weights for FID and LPIPS come from files you supply (see docs/evaluation.md).")
    evaluate.add_argument("--checkpoint", required=True, help="checkpoint file or run folder (or a reference "
                          "pix2pix/CycleGAN run folder)")
    evaluate.add_argument("--data", required=True, help="dataset folder")
    evaluate.add_argument("--split", default="val", help="split folder name (default val; falls back to test)")
    evaluate.add_argument("--limit", type=int, help="evaluate only the first N items")
    evaluate.add_argument("--device", default="auto")
    evaluate.add_argument("--untrained", action="store_true",
                          help="evaluate a freshly initialised network of the same config instead (baseline)")
    evaluate.add_argument("--json", action="store_true", help="print the result as JSON")
    evaluate.add_argument("--fid", action="store_true", help="FID and KID of generated against real images "
                          "(needs --inception)")
    evaluate.add_argument("--inception", metavar="FILE", help="Inception-v3 weights: pytorch-fid's "
                          "pt_inception-2015-12-05-6726825d.pth (standard FID), or torchvision's inception_v3 "
                          "weights (other numbers); implies --fid")
    evaluate.add_argument("--samples", type=int, default=50_000,
                          help="(StyleGAN2) generated images for FID/KID (default 50000, the standard; fewer for a "
                          "quick look)")
    evaluate.add_argument("--kid-subsets", type=int, default=100, help="KID subsets (default 100)")
    evaluate.add_argument("--kid-subset-size", type=int, default=1000,
                          help="images per KID subset (default 1000, or all when fewer)")
    evaluate.add_argument("--lpips", metavar="VGG16_FILE", help="LPIPS of outputs against paired targets, with "
                          "this VGG16 backbone (e.g. torchvision's vgg16-397923af.pth)")
    evaluate.add_argument("--lpips-linear", metavar="FILE", help="the LPIPS authors' vgg.pth linear weights "
                          "(without them: a plain VGG feature distance)")
    evaluate.add_argument("--html", metavar="DIR", help="write a results page (input | output | target rows and "
                          "the metrics) to DIR/index.html")
    evaluate.add_argument("--html-rows", type=int, default=50, help="rows on the results page (default 50)")

    info = commands.add_parser("info", help="show a checkpoint's model card")
    info.add_argument("checkpoint", help="checkpoint file or run folder")

    commands.add_parser("families", help="list the model families")

    reference = commands.add_parser(
        "import", help="import a pix2pix/CycleGAN reference run folder (train_opt.txt + *_net_G*.pth) safely",
        description="Write one Ganvas checkpoint from a run folder of the PyTorch pix2pix/CycleGAN reference "
        "implementation: networks configured from its train_opt.txt, both CycleGAN generators, the "
        "discriminators when present. A lone .pth is configured from its tensors. See docs/import.md.")
    reference.add_argument("source", help="reference run folder, or a *_net_G*.pth file (read with weights_only=True)")
    reference.add_argument("--out", required=True, help="checkpoint file to write (.safetensors)")
    reference.add_argument("--epoch", default="latest", help="which saved weights: latest (default) or an epoch number")
    reference.add_argument("--batch-norm", choices=("input", "running"), default="input",
                           help="batch norm at inference: the input's statistics (default, as the reference's "
                           "test.py and Ganvas's pix2pix) or the running averages (as test.py --eval)")

    importer = commands.add_parser("import-pth", help="import generator weights from a .pth state dict (safely)")
    importer.add_argument("pth", help="PyTorch state dict file (read with weights_only=True); for CycleGAN the "
                          "A->B generator (the reference's latest_net_G_A.pth)")
    importer.add_argument("--out", required=True, help="checkpoint file to write (.safetensors)")
    import_families = importer.add_subparsers(dest="family", metavar="FAMILY", required=True)
    for name in _family_names():
        family = get_family(name)
        fp = import_families.add_parser(name, help=family.description)
        fp.add_argument("--size", default="256", help="the size the weights were trained at (N or HxW)")
        if name == "cyclegan":
            fp.add_argument("--pth-b", help="the B->A generator's state dict (the reference's latest_net_G_B.pth)")
        add_config_flags(fp, family.config_cls)

    bench = commands.add_parser("bench", help="measure training it/s or inference ms per image")
    bench_kinds = bench.add_subparsers(dest="bench_kind", metavar="train|infer")
    for kind in ("train", "infer"):
        bk = bench_kinds.add_parser(kind, help=f"benchmark {kind}")
        bk_families = bk.add_subparsers(dest="family", metavar="FAMILY")
        for name in _family_names():
            family = get_family(name)
            fp = bk_families.add_parser(name, help=family.description)
            fp.add_argument("--size", help="N or HxW (default 256" + ("; with --checkpoint its native size)"
                                                                     if kind == "infer" else ")"))
            fp.add_argument("--batch-size", type=int, default=1)
            fp.add_argument("--device", default="auto")
            fp.add_argument("--steps", type=int, default=5, help="timed iterations per repeat")
            fp.add_argument("--warmup", type=int, default=2)
            fp.add_argument("--repeat", type=int, default=3)
            fp.add_argument("--compile", choices=("auto", "on", "off"), default="auto")
            fp.add_argument("--no-amp", action="store_true", help="disable mixed precision on CUDA")
            if kind == "train":
                fp.add_argument("--reference", action="store_true", help="train as the reference code does: "
                                "fp32, eager, NCHW, no cuDNN autotuning (the baseline for --device cuda)")
                fp.add_argument("--cpu-bf16", action="store_true", help="bf16 autocast on a CPU with bf16 units "
                                "(AMX, AVX-512 BF16), as ganvas train --cpu-bf16")
            fp.add_argument("--json", action="store_true")
            if kind == "infer":
                fp.add_argument("--backend", default="torch", metavar="NAME[,NAME...]",
                                help=f"one or more of {', '.join(BACKEND_CHOICES[1:])}, comma-separated, timed "
                                     "in turn (default torch)")
                fp.add_argument("--checkpoint", metavar="PATH|NAME",
                                help="time this checkpoint, run folder or bundled model (e.g. facades) through its "
                                     "inference session, as the app runs it, instead of an untrained network "
                                     "(the config flags are then ignored)")
            add_config_flags(fp, family.config_cls)
    add_latent_commands(commands, COMMANDS)
    add_palette_commands(commands, COMMANDS)
    add_history_command(commands, COMMANDS)
    add_models_commands(commands, COMMANDS)
    add_export_command(commands, COMMANDS)
    add_dataset_commands(commands, COMMANDS)
    return parser


# --- commands ------------------------------------------------------------------------------------------------


def _cmd_train(args: argparse.Namespace) -> int:
    from engine.cli.args import config_overrides
    from engine.core.config import DataConfig, TrainConfig, parse_size
    from engine.core.errors import ConfigError
    from engine.core.registry import get_family
    from engine.train.training import RunSpec, train

    retune: dict[str, Any] = {}
    init = None
    if args.resume and args.init:
        raise ConfigError("--init starts a new run; a resumed run already has its weights (drop --init)")
    if args.resume:
        spec, run_dir = None, Path(args.resume)
        refused = _changed_on_resume(args, run_dir)
        if refused:
            raise ConfigError(f"a resumed run keeps its settings; drop {', '.join(refused)} "
                              "(only --steps, --device and the family's retunable options may change)")
        if args.family:
            _check_resume_family(run_dir, args.family)
            retune = config_overrides(args, get_family(args.family).config_cls)
    else:
        if not args.family:
            raise ConfigError("name a family to train (ganvas train FAMILY --data DIR) or use --resume RUN_DIR")
        if not args.data:
            raise ConfigError("--data DIR is required for a new run")
        family = get_family(args.family)
        model_fields = {**family.recipe(args.recipe), **config_overrides(args, family.config_cls)}
        if args.init:
            from engine.train.finetune import fit_palette_to_data, init_model_config, read_source

            init = read_source(args.init)
            model_config = init_model_config(args.family, init, model_fields)
            if getattr(model_config, "palette", "") and "palette" not in model_fields:  # check data only then
                model_config = fit_palette_to_data(args.family, model_config, _input_kind(args))
            init_size = tuple(init.meta.get("train_config", {}).get("size", (256, 256)))
            size = parse_size(args.size) if args.size else init_size
        else:
            size = parse_size(args.size) if args.size else (256, 256)
            model_config = family.auto_config(size, model_fields)
        train_fields = config_overrides(args, TrainConfig)
        train_fields.update({k: v for k, v in {"size": size, "steps": args.steps, "batch_size": args.batch_size,
                                                "device": args.device, "seed": args.seed}.items() if v is not None})
        data_fields = config_overrides(args, DataConfig)
        spec = RunSpec(args.family, model_config, TrainConfig(**train_fields),
                       DataConfig(path=str(args.data), **data_fields))
        run_dir = Path(args.out or f"runs/{args.family}")
    stop_requested = []

    def on_stop_signal(signum: int, frame: Any) -> None:
        if stop_requested:
            raise KeyboardInterrupt
        stop_requested.append(True)
        again = "Ctrl-C again" if signum == signal.SIGINT else "a second signal"
        print(f"\nstopping after this step and saving a checkpoint ({again} to abort)", file=sys.stderr)

    run: Any = functools.partial(train, init=init, check_data=True,
                                 device=args.device if args.resume else None)
    if args.nproc is not None and args.nproc != 1:
        from engine.train.launch import train_processes

        if init is not None:
            raise ConfigError("--init with --nproc is not supported yet: fine-tune in one process")
        if spec is not None and Path(spec.data.path).is_dir():  # as train() does: "DIR_A,DIR_B" is the loader's
            from engine.data.dataset_check import preflight

            preflight(spec.data.path, spec.family, spec.data.layout, str(getattr(spec.model, "palette", "") or ""))
        run = functools.partial(train_processes, nproc=args.nproc)
    previous = {sig: signal.signal(sig, on_stop_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        _render_progress(run(spec, run_dir, resume=bool(args.resume), steps=args.steps if args.resume else None,
                             retune=retune, should_stop=lambda: bool(stop_requested)), quiet=args.no_progress)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def _input_kind(args: argparse.Namespace) -> str:
    """What a new run's input side is: ``--draw-as``, else what the dataset check reads on the side that
    ``--direction`` (or the check's own choice) makes the input; ``""`` when unknown."""
    if getattr(args, "draw_as", None):
        return str(args.draw_as)
    if not Path(args.data).is_dir():
        return ""
    from engine.data.dataset_check import check_dataset

    return check_dataset(args.data).input_kind(getattr(args, "direction", None) or "")


def _check_resume_family(run_dir: Path, family: str) -> None:
    """``train FAMILY --resume RUN`` must name the run's own family (it never turns one family into another)."""
    from engine.core.checkpoint import read_metadata
    from engine.core.errors import ConfigError

    run_family = read_metadata(run_dir).get("family")
    if run_family != family:
        raise ConfigError(f"{run_dir} is a {run_family} run; resume it with `ganvas train {run_family} --resume "
                          f"{run_dir}` or `ganvas train --resume {run_dir}`", value=family)


RESUME_FREE = ("steps", "device")  # not settings of the model: a resumed run may change them


def _changed_on_resume(args: argparse.Namespace, run_dir: Path) -> list[str]:
    """Flags given with ``--resume`` that would change the run's settings (repeating a value is no change)."""
    from engine.cli.args import config_overrides
    from engine.core.checkpoint import read_metadata
    from engine.core.config import DataConfig, TrainConfig

    meta = read_metadata(run_dir)
    stored = {**meta.get("data_config", {}), **meta.get("train_config", {})}
    given = {**config_overrides(args, TrainConfig), **config_overrides(args, DataConfig)}
    given.update({name: getattr(args, name) for name in ("seed", "batch_size") if getattr(args, name) is not None})
    if args.size is not None:
        from engine.core.config import parse_size

        given["size"] = list(parse_size(args.size))
    if args.data is not None:
        given["path"] = str(Path(args.data))
        stored["path"] = str(Path(stored.get("path", "")))
    changed = [name for name, value in given.items() if name not in RESUME_FREE
               and _as_json(value) != _as_json(stored.get(name))]
    changed = ["data" if name == "path" else name for name in changed]
    return sorted(changed + (["out"] if args.out is not None and Path(args.out) != run_dir else []))


def _as_json(value: Any) -> Any:
    return json.loads(json.dumps(value, default=list))


def _render_progress(events: Any, quiet: bool = False) -> None:
    from tqdm import tqdm

    bar = None
    for event in events:
        if event.kind == "start":
            print(f"ganvas: {event.message}", file=sys.stderr)
            bar = tqdm(total=event.total, initial=event.step, unit="it", dynamic_ncols=True, disable=quiet)
        elif event.kind == "step" and bar is not None:
            bar.update(event.step - bar.n)
            seen = {"kimg": f"{event.images / 1000:.3g}"} if event.images else {}
            bar.set_postfix({**seen, **{k: f"{v:.3g}" for k, v in event.losses.items()}}, refresh=False)
        elif event.kind in ("done", "stopped"):
            if bar is not None:
                bar.close()
            print(f"ganvas: {event.message} at step {event.step}; checkpoint {event.path}", file=sys.stderr)


def _collect_inputs(inputs: Sequence[str]) -> list[Path]:
    """The image files named or inside the named folders; none at all is an error."""
    from engine.core.errors import ImageError
    from engine.core.imageio import list_images

    files: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = list_images(path)
            if not found:
                raise ImageError("folder holds no images (JPEG/PNG/BMP/TIFF/WebP)", path=path)
            files.extend(found)
        elif path.exists():
            files.append(path)
        else:
            raise ImageError("input not found", path=path)
    return files


def output_names(files: Sequence[Path], out: Path) -> list[Path]:
    """One ``.png`` under ``out`` per input: ``<stem>.png``, with ``-2``, ``-3``... added where two inputs share a
    stem or the name is one of the inputs, so no output overwrites an input or another output.

    Example:
        >>> [p.name for p in output_names([Path("a/x.jpg"), Path("b/x.jpg"), Path("x.png")], Path("out"))]
        ['x.png', 'x-2.png', 'x-3.png']
    """
    inputs = {_same_file_key(path) for path in files}
    taken: set[Path] = set()
    names = []
    for path in files:
        candidate, number = out / f"{path.stem}.png", 1
        while candidate in taken or _same_file_key(candidate) in inputs:
            number += 1
            candidate = out / f"{path.stem}-{number}.png"
        taken.add(candidate)
        names.append(candidate)
    return names


def _same_file_key(path: Path) -> str:
    return str(path.resolve())


def _cmd_translate(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from engine.core.imageio import read_image, write_image
    from engine.infer.backends import INT8, INT8_CALIBRATION_LIMIT
    from engine.infer.loading import open_model
    from engine.infer.sessions import Translator

    def load(path: Path) -> Any:
        image = read_image(path)
        if args.half:
            half = image.shape[1] // 2
            image = image[:, :half] if args.half == "left" else image[:, half: 2 * half]
        return image

    _refuse_latent_checkpoint(args.checkpoint)
    files = _collect_inputs(args.inputs)
    int8 = args.backend == INT8
    session = open_model(args.checkpoint, device=args.device, backend="torch" if int8 else args.backend)
    assert isinstance(session, Translator)  # latent families were refused above
    if int8:  # calibrated on the inputs themselves
        session.use_backend(INT8, calibration=[load(path) for path in files[:INT8_CALIBRATION_LIMIT]])
    if args.backend != "torch":
        print(f"ganvas: {session.backend_note}", file=sys.stderr)
    out = Path(args.out)
    targets = output_names(files, out)
    options = {k: v for k, v in {"direction": args.direction, "tile": args.tile}.items() if v}
    if args.style:
        options["style"] = read_image(args.style)
    if args.seed is not None:
        options["seed"] = args.seed
    for path, target in tqdm(list(zip(files, targets, strict=True)), unit="img", disable=len(files) < 2):
        result = session.translate(load(path), keep_size=args.keep_size, **options)
        write_image(target, result)
    renamed = [f"{path} -> {target.name}" for path, target in zip(files, targets, strict=True)
               if target.name != f"{path.stem}.png"]
    print(f"ganvas: wrote {len(files)} image(s) to {out}"
          + (f" (renamed to keep every output and input: {'; '.join(renamed)})" if renamed else ""), file=sys.stderr)
    return 0


def _refuse_latent_checkpoint(checkpoint: str) -> None:
    """A StyleGAN2 checkpoint makes images from latents; point to the commands that use it."""
    from engine.core.checkpoint import read_metadata, resolve_checkpoint
    from engine.core.errors import CheckpointError
    from engine.core.registry import get_family

    meta = read_metadata(checkpoint)
    if get_family(meta["family"]).input_kind == "latent":
        raise CheckpointError(f"is a {meta['family']} checkpoint: it generates images from latents rather than "
                              f"translating images; use `ganvas generate --checkpoint {checkpoint} --out DIR` "
                              "(or project, edit, mix, interpolate)", path=resolve_checkpoint(checkpoint))


def _cmd_eval(args: argparse.Namespace) -> int:
    from engine.infer.evaluation import EvalExtras, evaluate_checkpoint

    extras = EvalExtras(fid=args.fid, inception=args.inception, samples=args.samples, kid_subsets=args.kid_subsets,
                        kid_subset_size=args.kid_subset_size, lpips=args.lpips, lpips_linear=args.lpips_linear,
                        html=args.html, html_rows=args.html_rows)
    result = evaluate_checkpoint(args.checkpoint, args.data, split=args.split, limit=args.limit,
                                 device=args.device, untrained=args.untrained, extras=extras)
    if args.json:
        print(json.dumps(result))
    else:
        print("  ".join(f"{k}={v:.4f}" if isinstance(v, float) and abs(v) >= 0.01 else
                        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in result.items()))
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    from engine.core.checkpoint import resolve_checkpoint
    from engine.infer.inference import model_card
    from engine.infer.reference import is_reference_source

    if is_reference_source(args.checkpoint) and not Path(args.checkpoint, "latest.safetensors").is_file():
        path = Path(args.checkpoint)
        print(f"file:     {path} (reference pix2pix/CycleGAN weights, imported in memory)")
    else:
        path = resolve_checkpoint(args.checkpoint)
        print(f"file:     {path} ({path.stat().st_size / 2**20:.1f} MiB)")
    for line in model_card(path).lines():
        print(line)
    return 0


def _cmd_families(args: argparse.Namespace) -> int:
    from engine.core.registry import get_family

    for name in _family_names():
        print(f"{name:10s} {get_family(name).description}")
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from engine.cli.args import config_overrides
    from engine.core.config import parse_size
    from engine.core.errors import ConfigError
    from engine.core.registry import get_family
    from engine.train.bench import bench_checkpoint, bench_infer, bench_train

    if not args.bench_kind or not getattr(args, "family", None):
        raise ConfigError("usage: ganvas bench train|infer FAMILY [options]")
    family = get_family(args.family)
    checkpoint = getattr(args, "checkpoint", None)
    size = parse_size(args.size) if args.size else None
    config = None if checkpoint else family.auto_config(size or (256, 256), config_overrides(args, family.config_cls))
    backends = args.backend.split(",") if args.bench_kind == "infer" else [None]
    for backend in backends:
        common = {"size": size, "batch_size": args.batch_size, "device": args.device, "steps": args.steps,
                  "warmup": args.warmup, "repeat": args.repeat}
        if checkpoint:
            result = bench_checkpoint(checkpoint, family=args.family, backend=backend, **common)
        else:
            run = bench_train if args.bench_kind == "train" else bench_infer
            extra = ({"backend": backend} if backend is not None
                     else {"reference": args.reference, "cpu_bf16": args.cpu_bf16})
            result = run(args.family, config, **{**common, "size": size or (256, 256)}, compile=args.compile,
                         amp=not args.no_amp, **extra)
        if args.json:
            print(json.dumps(result))
        else:
            for key, value in result.items():
                print(f"{key:16s} {value}")
    return 0


def _cmd_import_pth(args: argparse.Namespace) -> int:
    from engine.cli.args import config_overrides
    from engine.core.config import parse_size
    from engine.core.registry import get_family
    from engine.infer.importing import import_pth

    family = get_family(args.family)
    size = parse_size(args.size)
    files = [args.pth, *([args.pth_b] if getattr(args, "pth_b", None) else [])]
    path = import_pth(files, args.family, family.auto_config(size, config_overrides(args, family.config_cls)),
                      size, args.out)
    print(f"ganvas: wrote {path}", file=sys.stderr)
    return 0


def _cmd_import(args: argparse.Namespace) -> int:
    from engine.infer.importing import import_reference
    from engine.infer.inference import model_card

    path = import_reference(args.source, args.out, epoch=args.epoch, batch_norm=args.batch_norm)
    card = model_card(path)
    print(f"ganvas: wrote {path} ({card.family}, {card.size[0]}x{card.size[1]})", file=sys.stderr)
    return 0


COMMANDS = {"train": _cmd_train, "translate": _cmd_translate, "eval": _cmd_eval, "info": _cmd_info,
            "families": _cmd_families, "bench": _cmd_bench, "import": _cmd_import,
            "import-pth": _cmd_import_pth}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ganvas`` command (the desktop launcher calls it when arguments are given)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 0
    try:
        return COMMANDS[args.command](args)
    except GanvasError as exc:
        print(f"ganvas: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("ganvas: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        print("ganvas: error: out of memory; try a smaller --batch-size or --size", file=sys.stderr)
        return 9


if __name__ == "__main__":
    sys.exit(main())
