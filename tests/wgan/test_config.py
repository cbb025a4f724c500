"""The spec: defaults by loss kind and kind of data, strict types, and the inconsistent specs `resolve` refuses."""

import pytest
from pydantic import ValidationError

from wgan.config import SpecError, TrainSpec, dcgan_depth, image_fitting, is_resolved, resolve

POINTS = ("points", (2,))
DIGITS = ("images", (1, 8, 8))


def spec(**fields) -> TrainSpec:
    return TrainSpec.model_validate({"dataset": {"name": "8gaussians"}, **fields})


@pytest.mark.parametrize(
    ("kind", "optimizer", "lr", "betas", "n_critic", "schedule"),
    [
        ("wgan-clip", "rmsprop", 5e-5, None, 5, "paper"),
        ("wgan-gp", "adam", 1e-4, (0.0, 0.9), 5, "constant"),
        ("wgan-lp", "adam", 1e-4, (0.0, 0.9), 5, "constant"),
        ("vanilla", "adam", 2e-4, (0.5, 0.999), 1, "constant"),
    ],
)
def test_on_images_each_loss_kind_gets_its_papers_defaults(kind, optimizer, lr, betas, n_critic, schedule):
    unresolved = TrainSpec.model_validate({"dataset": {"name": "digits"}, "loss": {"kind": kind}})
    resolved = resolve(unresolved, *DIGITS)
    assert resolved.optimizer.kind == optimizer
    assert resolved.optimizer.lr == lr
    assert resolved.optimizer.betas == betas
    assert resolved.n_critic == n_critic
    assert resolved.loss.critic_schedule == schedule
    assert resolved.loss.gp_weight == 10.0
    assert resolved.loss.clip_value == 0.01
    assert resolved.generator_ema == 0.0
    assert is_resolved(resolved)
    assert not is_resolved(unresolved)
    # Resolving twice changes nothing.
    assert resolve(resolved, *DIGITS) == resolved


@pytest.mark.parametrize("kind", ["wgan-gp", "wgan-lp"])
def test_on_points_the_penalised_kinds_get_the_toy_settings(kind):
    # The WGAN-GP authors' toy script's λ and betas; the learning rate and the average as measured.
    resolved = resolve(spec(loss={"kind": kind}), *POINTS)
    assert resolved.loss.gp_weight == 0.1
    assert (resolved.optimizer.kind, resolved.optimizer.lr, resolved.optimizer.betas) == ("adam", 1e-3, (0.5, 0.9))
    assert (resolved.n_critic, resolved.loss.critic_schedule) == (5, "constant")
    assert resolved.generator_ema == 0.99
    assert resolve(resolved, *POINTS) == resolved


@pytest.mark.parametrize("kind", ["wgan-clip", "vanilla"])
def test_on_points_the_other_kinds_keep_their_papers_optimisers(kind):
    on_points = resolve(spec(loss={"kind": kind}), *POINTS)
    on_images = resolve(TrainSpec.model_validate({"dataset": {"name": "digits"}, "loss": {"kind": kind}}), *DIGITS)
    assert on_points.optimizer == on_images.optimizer
    assert on_points.n_critic == on_images.n_critic


def test_the_spec_decides_over_every_data_kind_default():
    chosen = resolve(
        spec(loss={"gp_weight": 10.0}, optimizer={"lr": 1e-4, "betas": (0.0, 0.9)}, generator_ema=0.0), *POINTS
    )
    assert (chosen.loss.gp_weight, chosen.optimizer.lr, chosen.optimizer.betas) == (10.0, 1e-4, (0.0, 0.9))
    assert chosen.generator_ema == 0.0


def test_what_the_spec_gives_wins_over_defaults():
    resolved = resolve(
        spec(
            loss={"kind": "wgan-gp", "gp_weight": 0.0, "critic_schedule": "paper"},
            optimizer={"lr": 3e-4, "betas": [0.5, 0.9]},
            n_critic=2,
            model={"hidden_dim": 128, "depth": 4, "latent_dim": 8},
        ),
        *POINTS,
    )
    assert resolved.loss.gp_weight == 0.0  # zero is a choice, not a missing value
    assert resolved.loss.critic_schedule == "paper"
    assert (resolved.optimizer.lr, resolved.optimizer.betas) == (3e-4, (0.5, 0.9))
    assert resolved.n_critic == 2
    assert (resolved.model.hidden_dim, resolved.model.depth, resolved.model.latent_dim) == (128, 4, 8)


def test_another_optimizer_than_the_papers_gets_its_own_defaults():
    adam = resolve(spec(loss={"kind": "wgan-clip"}, optimizer={"kind": "adam"}), *POINTS)
    assert (adam.optimizer.kind, adam.optimizer.lr, adam.optimizer.betas) == ("adam", 1e-4, (0.5, 0.9))
    rms = resolve(spec(loss={"kind": "wgan-gp"}, optimizer={"kind": "rmsprop"}), *POINTS)
    assert (rms.optimizer.kind, rms.optimizer.lr, rms.optimizer.betas) == ("rmsprop", 5e-5, None)


def test_model_defaults_for_points_and_images():
    points = resolve(spec(), *POINTS)
    assert points.model.arch == "mlp"
    assert (points.model.latent_dim, points.model.hidden_dim, points.model.depth) == (2, 128, 3)
    assert points.model.image_size is None
    assert points.model.channels is None
    assert points.model.generator_batch_norm is False
    assert points.name == "8gaussians-wgan-gp"

    digits = TrainSpec.model_validate({"dataset": {"name": "digits"}, "model": {"arch": "dcgan"}})
    dcgan = resolve(digits, *DIGITS)
    assert (dcgan.model.image_size, dcgan.model.channels, dcgan.model.depth) == (16, 1, 2)
    assert (dcgan.model.latent_dim, dcgan.model.hidden_dim, dcgan.batch_size) == (64, 32, 64)
    assert dcgan.model.generator_batch_norm is True
    assert dcgan.model.critic_norm == "layer"  # a per-example norm where there is a penalty
    clip = resolve(digits.model_copy(update={"loss": digits.loss.model_copy(update={"kind": "wgan-clip"})}), *DIGITS)
    assert clip.model.critic_norm == "none"
    mlp_images = resolve(TrainSpec.model_validate({"dataset": {"name": "digits"}, "model": {"arch": "mlp"}}), *DIGITS)
    assert (mlp_images.model.image_size, mlp_images.model.channels) == (8, 1)
    assert mlp_images.model.hidden_dim == 512
    # Left out, the family follows the data: MLPs for points (batch 256), DCGANs for images (batch 64).
    by_data = resolve(TrainSpec.model_validate({"dataset": {"name": "mnist"}}), "images", (1, 28, 28))
    assert (by_data.model.arch, by_data.model.image_size, by_data.batch_size) == ("dcgan", 28, 64)
    assert (points.model.arch, points.batch_size) == ("mlp", 256)


def test_images_of_another_side_are_resized_by_default_or_padded_when_asked():
    upload = ("images", (1, 24, 24))
    dcgan = {"dataset": {"id": "x"}, "model": {"arch": "dcgan"}}
    resized = resolve(TrainSpec.model_validate(dcgan), *upload)
    assert (resized.dataset.fit, resized.model.image_size) == ("resize", 28)
    padded = resolve(TrainSpec.model_validate({**dcgan, "dataset": {"id": "x", "fit": "pad"}}), *upload)
    assert padded.dataset.fit == "pad"
    native = resolve(
        TrainSpec.model_validate({"dataset": {"id": "x"}, "model": {"arch": "mlp"}}), *upload
    )  # an MLP at 24×24
    assert (native.dataset.fit, native.model.image_size) == (None, 24)
    with pytest.raises(SpecError) as refused:
        resolve(
            TrainSpec.model_validate(
                {**dcgan, "dataset": {"id": "x", "fit": "pad"}, "model": {"arch": "dcgan", "image_size": 16}}
            ),
            *upload,
        )
    assert refused.value.loc == ("dataset", "fit")
    assert "28 or 32 or 64" in refused.value.msg
    with pytest.raises(SpecError) as on_points:
        resolve(spec(dataset={"name": "8gaussians", "fit": "pad"}), *POINTS)
    assert on_points.value.loc == ("dataset", "fit")


def test_the_default_name_uses_the_label_given_and_fits_the_name_limit():
    assert resolve(spec(dataset={"id": "3f2a"}), *POINTS, dataset_label="my ring").name == "my ring-wgan-gp"
    assert resolve(spec(dataset={"id": "3f2a"}), *POINTS).name == "3f2a-wgan-gp"
    long = resolve(spec(dataset={"id": "3f2a"}), *POINTS, dataset_label="x" * 300).name
    assert long is not None and len(long) == 200 and long.endswith("-wgan-gp")


def test_a_data_sets_page_says_how_each_network_trains_its_images():
    assert image_fitting((1, 24, 24)) == (
        "24×24 images: DCGAN nets train them resized to 28×28 (dataset.fit 'pad' pads them instead), "
        "MLPs at 24×24; model.image_size picks another size (DCGAN: 16, 28, 32, 64)."
    )
    assert "at their own size" in image_fitting((3, 32, 32)) and "at their own size" in image_fitting((1, 28, 28))
    assert "resized to 64×64" in image_fitting((1, 100, 100)) and "pads" not in image_fitting((1, 100, 100))


@pytest.mark.parametrize(
    ("field", "value"), [("steps", "100"), ("batch_size", 32.5), ("seed", True), ("evaluate", "true")]
)
def test_values_of_the_wrong_type_are_refused_not_coerced(field, value):
    with pytest.raises(ValidationError):
        spec(**{field: value})


def test_dcgan_depth_follows_image_size():
    assert [dcgan_depth(s) for s in (16, 28, 32, 64)] == [2, 3, 3, 4]


@pytest.mark.parametrize("kind", ["wgan-gp", "wgan-lp"])
def test_batch_norm_in_a_penalised_critic_is_refused(kind):
    with pytest.raises(SpecError, match="batch norm in the critic breaks the per-sample gradient penalty") as info:
        resolve(spec(loss={"kind": kind}, model={"critic_norm": "batch"}), *POINTS)
    assert info.value.loc == ("model", "critic_norm")
    assert str(info.value).startswith("model.critic_norm: ")


@pytest.mark.parametrize("kind", ["wgan-clip", "vanilla"])
def test_batch_norm_in_an_unpenalised_critic_is_allowed(kind):
    assert resolve(spec(loss={"kind": kind}, model={"critic_norm": "batch"}), *POINTS).model.critic_norm == "batch"


@pytest.mark.parametrize(
    ("fields", "data", "loc", "message"),
    [
        ({"model": {"arch": "dcgan", "image_size": 20}}, DIGITS, ("model", "image_size"), r"one of \(16, 28, 32, 64\)"),
        ({"model": {"arch": "dcgan"}}, POINTS, ("model", "arch"), "point data sets train MLPs only"),
        ({"model": {"image_size": 16}}, POINTS, ("model", "image_size"), "image data sets only"),
        ({"model": {"arch": "dcgan", "depth": 3}}, DIGITS, ("model", "depth"), "a 16px DCGAN has depth 2"),
        ({"model": {"channels": 1}}, ("images", (3, 8, 8)), ("model", "channels"), "has 3 channels, not 1"),
        ({}, ("images", (1, 8, 6)), ("dataset",), "images must be square"),
        (
            {"loss": {"kind": "wgan-clip"}, "optimizer": {"betas": [0.5, 0.9]}},
            POINTS,
            ("optimizer", "betas"),
            "no betas",
        ),
    ],
    ids=["dcgan-size", "dcgan-points", "size-on-points", "dcgan-depth", "fewer-channels", "not-square", "rms-betas"],
)
def test_inconsistent_specs_are_refused_with_the_field(fields, data, loc, message):
    with pytest.raises(SpecError, match=message) as info:
        resolve(spec(**fields), *data)
    assert info.value.loc == loc


def test_grey_data_may_train_a_three_channel_model():
    resolved = resolve(spec(model={"channels": 3, "arch": "dcgan", "image_size": 32}), *DIGITS)
    assert (resolved.model.channels, resolved.model.image_size, resolved.model.depth) == (3, 32, 3)


@pytest.mark.parametrize(
    "fields",
    [
        {"bogus": 1},
        {"loss": {"kind": "wgan-gp", "lambda": 10}},
        {"model": {"layers": 3}},
        {"optimizer": {"momentum": 0.9}},
        {"dataset": {"name": "8gaussians", "path": "/etc/passwd"}},
    ],
)
def test_unknown_fields_are_rejected(fields):
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        TrainSpec.model_validate({"dataset": {"name": "8gaussians"}, **fields})


@pytest.mark.parametrize(
    "fields",
    [
        {"dataset": {}},
        {"dataset": {"name": "8gaussians", "id": "abc"}},
        {"dataset": {"name": "8gaussians"}, "loss": {"kind": "hinge"}},
        {"dataset": {"name": "8gaussians"}, "n_critic": 0},
        {"dataset": {"name": "8gaussians"}, "optimizer": {"lr": 0}},
        {"dataset": {"name": "8gaussians"}, "loss": {"clip_value": -0.01}},
        {"dataset": {"name": "8gaussians"}, "model": {"channels": 2}},
        {"dataset": {"name": "8gaussians"}, "optimizer": {"betas": [1.0, 0.9]}},
    ],
)
def test_invalid_values_are_rejected(fields):
    with pytest.raises(ValidationError):
        TrainSpec.model_validate(fields)
