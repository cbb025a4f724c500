"""The command line: train, resume, sample, and --help, end to end in tmp folders."""

import argparse
import io
import json
import os
import re
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from PIL import Image

from wgan.checkpoint import latest_checkpoint, list_checkpoints
from wgan.cli import build_parser, main
from wgan.config import TrainSpec, is_resolved
from wgan.sampling import load_sampler, sample

TINY = ["--hidden-dim", "16", "--depth", "2", "--batch-size", "32", "--device", "cpu", "--quiet"]


def train(out, *extra, steps=20):
    args = ["train", "--dataset", "8gaussians", "--steps", str(steps), "--out", str(out)]
    return main([*args, "--checkpoint-every", "10", "--log-every", "5", "--no-evaluate", *TINY, *extra])


def metrics(out):
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def without_timing(points):
    return [{k: v for k, v in p.items() if k != "seconds_per_step"} for p in points]


def test_train_writes_spec_metrics_and_checkpoints_then_sample_reads_them(tmp_path):
    out = tmp_path / "run"
    assert train(out) == 0
    spec = TrainSpec.model_validate_json((out / "spec.json").read_text())
    assert is_resolved(spec)
    assert (spec.steps, spec.model.hidden_dim, spec.loss.kind, spec.optimizer.betas) == (20, 16, "wgan-gp", (0.5, 0.9))
    points = metrics(out)
    assert [p["step"] for p in points] == [5, 10, 15, 20]
    assert {"critic_loss", "generator_loss", "wasserstein_estimate", "gradient_penalty"} <= points[0].keys()
    assert [step for step, _ in list_checkpoints(out / "checkpoints")] == [10, 20]

    png = tmp_path / "x.png"
    assert main(["sample", str(out), "--n", "16", "--out", str(png)]) == 0
    image = Image.open(png)
    assert image.format == "PNG"
    assert image.size == (512, 512)
    first = png.read_bytes()
    assert main(["sample", str(out), "--n", "16", "--out", str(png)]) == 0
    assert png.read_bytes() == first

    npy = tmp_path / "x.npy"
    assert main(["sample", str(out), "--n", "16", "--seed", "3", "--checkpoint", "10", "--out", str(npy)]) == 0
    from wgan.checkpoint import manifest_path

    expected = sample(load_sampler(manifest_path(out / "checkpoints", 10)), 16, 3)
    np.testing.assert_array_equal(np.load(npy), expected)


def test_resuming_continues_exactly_where_it_left_off(tmp_path):
    straight = tmp_path / "straight"
    assert train(straight, steps=30) == 0

    resumed = tmp_path / "resumed"
    assert train(resumed, steps=20) == 0
    # A run that died after logging step 25 but before its next checkpoint left a stray point.
    with (resumed / "metrics.jsonl").open("a") as log:
        log.write(json.dumps({**metrics(resumed)[-1], "step": 25}) + "\n" + '{"step": 2')
    assert train(resumed, steps=30) == 0
    assert [p["step"] for p in metrics(resumed)] == [5, 10, 15, 20, 25, 30]
    assert without_timing(metrics(resumed)) == without_timing(metrics(straight))
    assert latest_checkpoint(resumed / "checkpoints").name == "step-00000030.json"


def test_resuming_with_another_spec_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    assert train(out, steps=10) == 0
    assert train(out, "--loss", "wgan-lp", steps=20) == 2
    assert "the checkpoint was made with a different spec (loss differ)" in capsys.readouterr().err


def test_fresh_starts_over_and_drops_the_old_checkpoints(tmp_path):
    out = tmp_path / "run"
    assert train(out, steps=20) == 0
    assert train(out, "--fresh", "--loss", "wgan-clip", "--critic-schedule", "constant", steps=10) == 0
    assert [step for step, _ in list_checkpoints(out / "checkpoints")] == [10]
    assert [p["step"] for p in metrics(out)] == [5, 10]
    assert load_sampler(latest_checkpoint(out / "checkpoints")).spec.loss.kind == "wgan-clip"


def test_evaluation_at_checkpoints(tmp_path):
    out = tmp_path / "run"
    args = ["train", "--dataset", "8gaussians", "--steps", "4", "--checkpoint-every", "4", "--log-every", "2"]
    assert main([*args, "--out", str(out), *TINY]) == 0
    points = metrics(out)
    assert points[0]["evaluation"] == {}
    assert set(points[1]["evaluation"]) == {
        "exact_w1",
        "modes_covered",
        "modes_well_covered",
        "modes_total",
        "high_quality",
    }
    assert points[1]["evaluation_error"] is None


def test_train_and_sample_an_uploaded_zip_of_images(tmp_path):
    data = tmp_path / "faces.zip"
    rng = np.random.default_rng(0)
    with zipfile.ZipFile(data, "w") as archive:
        for i in range(6):
            buffer = io.BytesIO()
            Image.fromarray(rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)).save(buffer, format="PNG")
            archive.writestr(f"{i}.png", buffer.getvalue())
    out = tmp_path / "run"
    flags = "--arch dcgan --image-size 16 --hidden-dim 4 --batch-size 4 --steps 2 --n-critic 1 --device cpu --quiet"
    assert main(["train", "--dataset", str(data), "--out", str(out), *flags.split()]) == 0
    spec = TrainSpec.model_validate_json((out / "spec.json").read_text())
    assert spec.dataset.id == "faces"
    assert (spec.model.channels, spec.model.image_size) == (3, 16)
    assert np.load(out / "data.npz")["x"].shape == (6, 3, 12, 12)
    grid = tmp_path / "grid.png"
    assert main(["sample", str(out), "--n", "5", "--out", str(grid)]) == 0
    image = Image.open(grid)
    assert image.mode == "RGB"
    assert image.size == (3 * 18 + 2, 2 * 18 + 2)


def test_train_and_sample_uploaded_points(tmp_path):
    data = tmp_path / "ring.npz"
    angles = np.random.default_rng(0).uniform(0, 2 * np.pi, 500)
    np.savez(data, x=np.stack([np.cos(angles), np.sin(angles)], axis=1))
    out = tmp_path / "run"
    assert main(["train", "--dataset", str(data), "--steps", "2", "--no-evaluate", *TINY, "--out", str(out)]) == 0
    assert main(["sample", str(out), "--n", "8", "--out", str(tmp_path / "s.png")]) == 0
    assert Image.open(tmp_path / "s.png").size == (512, 512)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "--dataset", "{tmp}/absent.npz", "--out", "{tmp}/o"], "absent.npz' is neither a built-in"),
        (["train", "--dataset", "moons", "--out", "{tmp}/o"], "'moons' is neither a built-in data set (8gaussians, "),
        (["train", "--dataset", "{tmp}/bad.npz", "--out", "{tmp}/o"], "error: not a readable .npz file"),
        (["train", "--dataset", "8gaussians", "--arch", "dcgan", "--out", "{tmp}/o"], "error: model.arch: point"),
        (["train", "--dataset", "8gaussians", "--steps", "0", "--out", "{tmp}/o"], "invalid spec"),
        (["train", "--dataset", "8gaussians", "--spec", "{tmp}/absent.json", "--out", "{tmp}/o"], "error: spec:"),
        (["sample", "{tmp}", "--out", "{tmp}/x.png"], "holds no complete checkpoint yet"),
        (["sample", "{tmp}", "--checkpoint", "7", "--out", "{tmp}/x.png"], "no checkpoint at"),
    ],
    ids=[
        "missing-file",
        "unknown-name",
        "bad-file",
        "dcgan-points",
        "zero-steps",
        "missing-spec",
        "no-checkpoint",
        "no-step",
    ],
)
def test_errors_are_one_clear_line_and_exit_2(tmp_path, capsys, argv, message):
    (tmp_path / "bad.npz").write_bytes(b"not an npz")
    assert main([a.replace("{tmp}", str(tmp_path)) for a in argv]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["sample", "run", "--n", "0", "--out", "x.png"],
        ["sample", "run", "--checkpoint", "newest", "--out", "x.png"],
        ["train", "--dataset", "8gaussians", "--out", "o", "--loss", "hinge"],
    ],
)
def test_bad_arguments_are_refused_by_the_parser(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_a_spec_file_is_read_and_flags_override_it(tmp_path):
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(json.dumps({"dataset": {"name": "25gaussians"}, "loss": {"kind": "vanilla"}, "seed": 9}))
    out = tmp_path / "run"
    assert train(out, "--spec", str(spec_file), "--seed", "4", steps=2) == 0
    spec = TrainSpec.model_validate_json((out / "spec.json").read_text())
    assert (spec.dataset.name, spec.loss.kind, spec.seed) == ("8gaussians", "vanilla", 4)


def _subcommand_parsers():
    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return sub.choices


@pytest.mark.parametrize("command", ["train", "sample"])
def test_help_documents_every_option(command, capsys):
    parser = _subcommand_parsers()[command]
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    for action in parser._actions:
        assert action.help, action.dest
        assert action.help != argparse.SUPPRESS, action.dest
        for flag in action.option_strings or [action.dest]:
            assert flag in text


def test_python_dash_m_wgan_runs_main_and_exits_with_its_code(tmp_path):
    # One subprocess (importing torch costs seconds): the module entry point and its exit status.
    result = subprocess.run(
        [sys.executable, "-m", "wgan", "sample", str(tmp_path), "--out", str(tmp_path / "x.png")],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        check=False,
    )
    assert result.returncode == 2
    assert "holds no complete checkpoint yet" in result.stderr


def test_threads_sets_torch_threads_and_the_bar_shows_each_points_own_losses(tmp_path):
    # A subprocess: --threads changes the process's torch threads, and tqdm draws to a real stderr.
    out = tmp_path / "run"
    result = subprocess.run(
        [
            *(sys.executable, "-m", "wgan", "train", "--dataset", "8gaussians", "--steps", "40", "--out", str(out)),
            *("--log-every", "5", "--checkpoint-every", "20", "--no-evaluate", "--threads", "1", *TINY[:-1]),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "TQDM_MININTERVAL": "0"},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "1 torch thread(s)" in result.stderr
    logged = {p["step"]: p for p in metrics(out)}
    # Every redraw that shows a step and losses shows that step's losses (not the previous interval's).
    drawn = re.findall(r"(\d+)/40 \[[^\]]*D=(-?[\d.]+), G=(-?[\d.]+)", result.stderr)
    assert len(drawn) >= 4, result.stderr
    for step, critic, generator in drawn:
        point = logged[int(step)]
        assert (critic, generator) == (f"{point['critic_loss']:.4f}", f"{point['generator_loss']:.4f}")
