"""Command line: `python -m wgan train ...` and `python -m wgan sample ...`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import ValidationError
from tqdm import tqdm

from wgan.checkpoint import (
    Checkpoint,
    CheckpointError,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    manifest_path,
    save_checkpoint,
)
from wgan.config import SpecError, TrainSpec
from wgan.data.files import DataError, read_data
from wgan.data.sources import BUILTIN
from wgan.devices import DeviceUnavailable
from wgan.trainer import Hooks, MetricPoint, TrainingDiverged

SPEC_FILE = "spec.json"
METRICS_FILE = "metrics.jsonl"
UPLOAD_FILE = "data.npz"


def _train_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "train",
        help="train a GAN and write checkpoints to --out",
        description="Train a WGAN (or vanilla GAN). Options left out take the loss kind's paper "
        "defaults; the resolved spec is written to OUT/spec.json.",
    )
    p.add_argument(
        "--dataset",
        required=True,
        help=f"a built-in data set ({', '.join(BUILTIN)}) or a path to an .npz (array 'x'), "
        ".zip or folder of PNG/JPEG images",
    )
    p.add_argument("--out", type=Path, required=True, help="run folder for the spec, metrics and checkpoints")
    p.add_argument("--spec", type=Path, help="a JSON job spec (as POST /api/v1/jobs takes); flags override it")
    p.add_argument("--loss", choices=["wgan-clip", "wgan-gp", "wgan-lp", "vanilla"], help="loss kind (wgan-gp)")
    p.add_argument("--arch", choices=["mlp", "dcgan"], help="network family (mlp)")
    p.add_argument("--steps", type=int, help="generator updates (2000)")
    p.add_argument("--batch-size", type=int, help="examples per batch (256)")
    p.add_argument("--n-critic", type=int, help="critic updates per generator update (paper default)")
    p.add_argument("--latent-dim", type=int, help="noise dimension (2 for points, 64 for images)")
    p.add_argument("--hidden-dim", type=int, help="MLP width or DCGAN base width (512 / 64)")
    p.add_argument("--depth", type=int, help="MLP hidden layers (3)")
    p.add_argument("--image-size", type=int, help="image side for image data (16, 28, 32 or 64 for DCGAN)")
    p.add_argument("--channels", type=int, choices=[1, 3], help="image channels (the data's)")
    p.add_argument(
        "--generator-batch-norm",
        action=argparse.BooleanOptionalAction,
        help="batch norm in the generator (on for DCGAN, off for MLP)",
    )
    p.add_argument("--critic-norm", choices=["none", "layer", "batch"], help="normalisation in the critic")
    p.add_argument("--spectral-norm", action="store_true", help="spectral normalisation on the critic")
    p.add_argument("--gp-weight", type=float, help="penalty weight λ for wgan-gp / wgan-lp (10)")
    p.add_argument("--clip-value", type=float, help="weight clipping bound c for wgan-clip (0.01)")
    p.add_argument(
        "--critic-schedule",
        choices=["constant", "paper"],
        help="'paper': 100 critic iterations early and every 500th step (wgan-clip default)",
    )
    p.add_argument("--optimizer", choices=["adam", "rmsprop"], help="optimizer (paper default for the loss)")
    p.add_argument("--lr", type=float, help="learning rate (paper default for the loss)")
    p.add_argument("--betas", type=float, nargs=2, metavar=("B1", "B2"), help="Adam betas")
    p.add_argument("--seed", type=int, help="seed for initialisation, data and noise (0)")
    p.add_argument("--checkpoint-every", type=int, help="generator steps between checkpoints (500)")
    p.add_argument("--log-every", type=int, help="generator steps between metric points (10)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], help="where to train (auto)")
    p.add_argument("--precision", choices=["fp32", "bf16"], help="bf16 autocast on CUDA (fp32)")
    p.add_argument("--no-evaluate", action="store_true", help="skip the exact W1 at checkpoints (2-D data)")
    p.add_argument(
        "--threads",
        type=_positive_int,
        help="torch threads (torch's default: one per core); 1 is faster for the small 2-D models and beside "
        "another busy process",
    )
    p.add_argument("--fresh", action="store_true", help="start over even if --out holds checkpoints")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _sample_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "sample",
        help="draw samples from a run's checkpoint",
        description="Draw n samples for a seed from a run folder's checkpoint. The output's "
        "suffix picks the format: .png (a grid, or a scatter over the real data for "
        "2-D sets) or .npy (the raw float32 array).",
    )
    p.add_argument("run", type=Path, help="the run folder given to `train --out`")
    p.add_argument("--n", type=_positive_int, default=64, help="how many samples (64)")
    p.add_argument("--seed", type=int, default=0, help="latent seed; the same seed gives the same samples (0)")
    p.add_argument("--checkpoint", type=_checkpoint_arg, default="latest", help="a step number or 'latest' (latest)")
    p.add_argument("--out", type=Path, required=True, help="output file, .png or .npy")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _checkpoint_arg(text: str) -> str:
    if text != "latest" and not text.isdigit():
        raise argparse.ArgumentTypeError(f"give a step number or 'latest', not {text!r}")
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m wgan", description="Train and sample Wasserstein GANs.")
    sub = parser.add_subparsers(dest="command", required=True)
    _train_parser(sub)
    _sample_parser(sub)
    return parser


def _set(tree: dict[str, Any], path: str, value: Any) -> None:
    if value is None:
        return
    *parents, leaf = path.split(".")
    for key in parents:
        tree = tree.setdefault(key, {})
    tree[leaf] = value


def spec_from_args(args: argparse.Namespace) -> tuple[TrainSpec, np.ndarray | None]:
    raw: dict[str, Any] = {}
    if args.spec:
        try:
            raw = json.loads(args.spec.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise SpecError(("spec",), f"cannot read {args.spec}: {exc}") from exc
        if not isinstance(raw, dict):
            raise SpecError(("spec",), f"{args.spec} must hold a JSON object")
    uploaded = None
    if args.dataset in BUILTIN:
        raw["dataset"] = {"name": args.dataset}
    else:
        if not Path(args.dataset).exists():
            raise DataError(
                f"{args.dataset!r} is neither a built-in data set ({', '.join(BUILTIN)}) nor an existing file or folder"
            )
        uploaded = read_data(Path(args.dataset))
        # A dataset id is at most 64 characters (see DatasetRef).
        raw["dataset"] = {"id": Path(args.dataset).stem[:64] or "upload"}
    for path, value in [
        ("loss.kind", args.loss),
        ("model.arch", args.arch),
        ("steps", args.steps),
        ("batch_size", args.batch_size),
        ("n_critic", args.n_critic),
        ("model.latent_dim", args.latent_dim),
        ("model.hidden_dim", args.hidden_dim),
        ("model.depth", args.depth),
        ("model.image_size", args.image_size),
        ("model.channels", args.channels),
        ("model.generator_batch_norm", args.generator_batch_norm),
        ("model.critic_norm", args.critic_norm),
        ("model.spectral_norm", args.spectral_norm or None),
        ("loss.gp_weight", args.gp_weight),
        ("loss.clip_value", args.clip_value),
        ("loss.critic_schedule", args.critic_schedule),
        ("optimizer.kind", args.optimizer),
        ("optimizer.lr", args.lr),
        ("optimizer.betas", args.betas),
        ("seed", args.seed),
        ("checkpoint_every", args.checkpoint_every),
        ("log_every", args.log_every),
        ("device", args.device),
        ("precision", args.precision),
        ("evaluate", False if args.no_evaluate else None),
    ]:
        _set(raw, path, value)
    return TrainSpec.model_validate(raw), uploaded


def _format(point: MetricPoint) -> dict[str, str]:
    shown = {
        "D": f"{point.critic_loss:.4f}",
        "G": f"{point.generator_loss:.4f}",
        "W": f"{point.wasserstein_estimate:.4f}",
    }
    if "exact_w1" in point.evaluation:
        shown["W1"] = f"{point.evaluation['exact_w1']:.4f}"
    return shown


def _keep_metrics_until(path: Path, step: int) -> None:
    if not path.exists():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line)["step"] <= step:
                kept.append(line + "\n")
        except (json.JSONDecodeError, KeyError, TypeError):
            continue  # a line cut short when the run died
    path.write_text("".join(kept))


def train(args: argparse.Namespace) -> int:
    from wgan.assemble import assemble

    if args.threads:
        torch.set_num_threads(args.threads)
    spec, uploaded = spec_from_args(args)
    run = assemble(spec, uploaded)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    checkpoints = out / "checkpoints"
    if uploaded is not None:
        np.savez(out / UPLOAD_FILE, x=uploaded)
    if args.fresh:
        # Left in place, an old run's later checkpoints would be taken as this run's newest.
        for _, old in list_checkpoints(checkpoints):
            old.with_suffix(".safetensors").unlink(missing_ok=True)
            old.unlink()
    latest = None if args.fresh else latest_checkpoint(checkpoints)
    if latest is not None:
        run.trainer.restore(load_checkpoint(latest))
        # Points logged after that checkpoint (by a run that then died) are about to be made again.
        _keep_metrics_until(out / METRICS_FILE, run.trainer.step)
    (out / SPEC_FILE).write_text(run.spec.model_dump_json(indent=2))
    print(
        f"training {run.spec.name} from step {run.trainer.step} on {run.trainer.device}, "
        f"{torch.get_num_threads()} torch thread(s)",
        file=sys.stderr,
    )
    mode = "a" if latest is not None else "w"
    with (
        (out / METRICS_FILE).open(mode) as log,
        tqdm(
            total=run.spec.steps, initial=run.trainer.step, disable=args.quiet, unit="step", dynamic_ncols=True
        ) as bar,
    ):

        def on_metrics(point: MetricPoint) -> None:
            log.write(json.dumps(point.__dict__) + "\n")
            log.flush()
            # The postfix first: update() redraws the bar, and must show this point's losses, not the last one's.
            bar.set_postfix(_format(point), refresh=False)
            bar.update(point.step - bar.n)

        def on_checkpoint(checkpoint: Checkpoint) -> None:
            save_checkpoint(checkpoints, checkpoint)

        run.trainer.fit(Hooks(on_metrics=on_metrics, on_checkpoint=on_checkpoint, evaluate=run.evaluator))
    print(f"done: step {run.trainer.step}, checkpoints in {checkpoints}", file=sys.stderr)
    return 0


def sample_command(args: argparse.Namespace) -> int:
    from wgan.assemble import open_data
    from wgan.render import grid_png, scatter_png, to_uint8
    from wgan.sampling import load_sampler, sample

    checkpoints = args.run / "checkpoints"
    path = (
        latest_checkpoint(checkpoints)
        if args.checkpoint == "latest"
        else manifest_path(checkpoints, int(args.checkpoint))
    )
    if path is None:
        raise CheckpointError(f"{checkpoints} holds no complete checkpoint yet")
    sampler = load_sampler(path)
    samples = sample(sampler, args.n, args.seed)
    out: Path = args.out
    if out.suffix == ".npy":
        np.save(out, samples)
    elif sampler.is_images:
        out.write_bytes(grid_png(to_uint8(samples)))
    else:
        uploaded = np.load(args.run / UPLOAD_FILE)["x"] if sampler.spec.dataset.id else None
        reference = open_data(sampler.spec, torch.device("cpu"), uploaded).reference(2000, 0).numpy()
        out.write_bytes(scatter_png(samples, reference))
    print(f"wrote {args.n} samples from step {sampler.step} to {out}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return train(args) if args.command == "train" else sample_command(args)
    except ValidationError as exc:
        print(f"invalid spec:\n{exc}", file=sys.stderr)
    except (SpecError, DataError, CheckpointError, TrainingDiverged, DeviceUnavailable) as exc:
        print(f"error: {exc}", file=sys.stderr)
    return 2
