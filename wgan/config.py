"""The typed training spec: what to train and how, with each loss kind's paper defaults."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

LossKind = Literal["wgan-clip", "wgan-gp", "wgan-lp", "vanilla"]
Arch = Literal["mlp", "dcgan"]
DeviceName = Literal["auto", "cpu", "cuda"]
CriticNorm = Literal["none", "layer", "batch"]
CriticSchedule = Literal["constant", "paper"]
Precision = Literal["fp32", "bf16"]
OptimizerKind = Literal["adam", "rmsprop"]
DataKind = Literal["points", "images"]
Fit = Literal["resize", "pad"]

# The sides a DCGAN builds: doublings from a 4×4 base, and 28 (MNIST's side) as 4 → 7 → 14 → 28.
DCGAN_IMAGE_SIZES = (16, 28, 32, 64)
PENALISED_KINDS = ("wgan-gp", "wgan-lp")


class SpecError(ValueError):
    """A spec that is well-formed but inconsistent with itself or with its data set."""

    def __init__(self, loc: tuple[str | int, ...], msg: str) -> None:
        super().__init__(f"{'.'.join(map(str, loc))}: {msg}")
        self.loc = loc
        self.msg = msg


# Names end up in databases and file listings, where control characters (a NUL above all) break things.
NO_CONTROL_CHARACTERS = r"^[^\x00-\x1f\x7f]*$"
MAX_NAME = 200


class _Strict(BaseModel):
    # Unknown fields are refused, and so are values of the wrong JSON type: "steps": "100" is a
    # mistake to report, not a string to coerce.
    model_config = ConfigDict(extra="forbid", strict=True)


class DatasetRef(_Strict):
    """A built-in data set by `name`, or an uploaded one by `id`: exactly one of the two."""

    # The schema says "exactly one" as well, so that clients generated from it (and schemathesis) agree.
    model_config = ConfigDict(
        json_schema_extra={
            "oneOf": [
                {"required": ["name"], "properties": {"name": {"type": "string"}, "id": {"type": "null"}}},
                {"required": ["id"], "properties": {"id": {"type": "string"}, "name": {"type": "null"}}},
            ]
        }
    )

    name: str | None = Field(default=None, min_length=1, max_length=64, pattern=NO_CONTROL_CHARACTERS)
    id: str | None = Field(default=None, min_length=1, max_length=64)
    fit: Fit | None = Field(
        default=None,
        description="How images whose side is not model.image_size get there: 'resize' (antialiased bilinear, "
        "the default) or 'pad' (centred on the darkest value; needs image_size at least the images' side). "
        "The job shows which was used; null when the sizes already match or the data are points.",
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> DatasetRef:
        if (self.name is None) == (self.id is None):
            raise ValueError("give exactly one of 'name' (a built-in data set) or 'id' (an upload)")
        return self


class ModelSpec(_Strict):
    arch: Arch | None = Field(
        default=None, description="Network family. Default: 'mlp' for points, 'dcgan' for images."
    )
    latent_dim: Annotated[int, Field(ge=1, le=1024)] | None = None
    hidden_dim: Annotated[int, Field(ge=1, le=4096)] | None = Field(
        default=None, description="MLP layer width, or the DCGAN base channel width."
    )
    depth: Annotated[int, Field(ge=1, le=16)] | None = Field(
        default=None, description="MLP hidden layers; for DCGAN the up/down-sampling blocks, set by image_size."
    )
    image_size: Annotated[int, Field(ge=4, le=256)] | None = None
    channels: Literal[1, 3] | None = None
    generator_batch_norm: bool | None = Field(
        default=None, description="Batch norm in the generator (default: on for DCGAN, off for MLP)."
    )
    critic_norm: CriticNorm | None = Field(
        default=None, description="Normalisation in the critic; 'batch' is refused with a gradient penalty."
    )
    spectral_norm: bool = False


class LossSpec(_Strict):
    kind: LossKind = "wgan-gp"
    gp_weight: Annotated[float, Field(ge=0, le=1e4)] | None = None
    clip_value: Annotated[float, Field(gt=0, le=10)] | None = None
    critic_schedule: CriticSchedule | None = Field(
        default=None,
        description="'paper': 100 critic iterations for the first 25 generator steps and every 500th "
        "(WGAN 2017; default for wgan-clip); 'constant': always n_critic.",
    )


class OptimizerSpec(_Strict):
    kind: OptimizerKind | None = None
    lr: Annotated[float, Field(gt=0, le=1.0)] | None = None
    # Lax only in taking a JSON array for the pair; each beta is still strictly a number.
    betas: (
        Annotated[
            tuple[Annotated[float, Field(ge=0, lt=1, strict=True)], Annotated[float, Field(ge=0, lt=1, strict=True)]],
            Field(strict=False),
        ]
        | None
    ) = None


class TrainSpec(_Strict):
    """A training job's spec. Every field but `dataset` may be left out; `resolve` fills them."""

    name: str | None = Field(default=None, max_length=MAX_NAME, pattern=NO_CONTROL_CHARACTERS)
    dataset: DatasetRef
    model: ModelSpec = Field(default_factory=ModelSpec)
    loss: LossSpec = Field(default_factory=LossSpec)
    optimizer: OptimizerSpec = Field(default_factory=OptimizerSpec)
    n_critic: Annotated[int, Field(ge=1, le=100)] | None = None
    batch_size: Annotated[int, Field(ge=1, le=65536)] | None = Field(
        default=None,
        description="Examples per batch. Default: 256 for points (the WGAN-GP toy script's), 64 for images "
        "(the WGAN papers').",
    )
    steps: Annotated[int, Field(ge=1, le=10_000_000)] = 2000
    seed: Annotated[int, Field(ge=0, le=2**63 - 1)] = 0
    checkpoint_every: Annotated[int, Field(ge=1)] = 500
    log_every: Annotated[int, Field(ge=1)] = 10
    device: DeviceName = "auto"
    precision: Precision = Field(default="fp32", description="'bf16' autocasts on CUDA; the penalty stays fp32.")
    compile: bool = Field(
        default=False,
        description="torch.compile the networks (the critic only without a gradient penalty: compiled graphs "
        "do not support its double backward).",
    )
    evaluate: bool = Field(
        default=True,
        description="At each checkpoint, measure the generator against the data: the exact W1 in data space "
        "for every data set, mode coverage on the Gaussian mixtures.",
    )
    generator_ema: Annotated[float, Field(ge=0, lt=1)] | None = Field(
        default=None,
        description="Decay of an exponential moving average of the generator's weights (Yazıcı et al. 2019), "
        "updated after every generator step; samples and evaluations use the average. 0 turns it off. "
        "Default: 0.99 on 2-D points (it steadies the toys' oscillation between modes), 0 on images.",
    )


@dataclass(frozen=True)
class LossDefaults:
    """What a loss kind trains with when the spec leaves it out."""

    n_critic: int
    optimizer: OptimizerKind
    lr: float
    betas: tuple[float, float] | None
    critic_schedule: CriticSchedule
    gp_weight: float = 10.0


# Images: each loss kind's paper.
_IMAGE_DEFAULTS: dict[LossKind, LossDefaults] = {
    "wgan-clip": LossDefaults(5, "rmsprop", 5e-5, None, "paper"),  # Arjovsky et al. 2017, Algorithm 1
    "wgan-gp": LossDefaults(5, "adam", 1e-4, (0.0, 0.9), "constant"),  # Gulrajani et al. 2017, Algorithm 1
    "wgan-lp": LossDefaults(5, "adam", 1e-4, (0.0, 0.9), "constant"),  # Petzka et al. 2018 follow WGAN-GP
    "vanilla": LossDefaults(1, "adam", 2e-4, (0.5, 0.999), "constant"),  # Radford et al. 2016 (DCGAN)
}
# 2-D points: the paper's image settings (λ 10, lr 1e-4, betas (0, 0.9)) leave the toys unlearnt in a
# first job's budget. The WGAN-GP authors' own toy script (gan_toy.py) uses λ 0.1 and Adam betas
# (0.5, 0.9); its lr 1e-4 needs 3,000+ steps, and 1e-3 with the generator's moving average converges
# fastest of those measured (λ then matters little). BENCHMARKS.md: "quality-sweep" compares them,
# "defaults" runs the result through the service.
_POINT_PENALISED = LossDefaults(5, "adam", 1e-3, (0.5, 0.9), "constant", gp_weight=0.1)
_POINT_DEFAULTS: dict[LossKind, LossDefaults] = {
    **_IMAGE_DEFAULTS,
    "wgan-gp": _POINT_PENALISED,
    "wgan-lp": _POINT_PENALISED,
}
DEFAULTS: dict[DataKind, dict[LossKind, LossDefaults]] = {"images": _IMAGE_DEFAULTS, "points": _POINT_DEFAULTS}

# When the spec picks an optimizer other than its loss's default.
_OPTIMIZER_FALLBACK: dict[OptimizerKind, tuple[float, tuple[float, float] | None]] = {
    "adam": (1e-4, (0.5, 0.9)),
    "rmsprop": (5e-5, None),
}
DEFAULT_CLIP_VALUE = 0.01
DEFAULT_LATENT_POINTS = 2
DEFAULT_LATENT_IMAGES = 64
# MLP width: the toys learn as well at 128 as at 512 per step and train several times faster.
DEFAULT_MLP_WIDTH: dict[DataKind, int] = {"points": 128, "images": 512}
DEFAULT_MLP_DEPTH = 3
# Half the DCGAN paper's 64: at the sides built here (≤ 64 px) it reaches BENCHMARKS.md's MNIST bars
# ("images": 10/10 classes, KL 0.03, FD 18 in 2,000 steps) at a quarter of the cost.
DEFAULT_DCGAN_WIDTH = 32
DEFAULT_ARCH: dict[DataKind, Arch] = {"points": "mlp", "images": "dcgan"}
DEFAULT_BATCH: dict[DataKind, int] = {"points": 256, "images": 64}
# Measured on 8gaussians (BENCHMARKS.md, "quality-sweep"); images keep the plain generator until measured.
DEFAULT_GENERATOR_EMA: dict[DataKind, float] = {"points": 0.99, "images": 0.0}


def dcgan_sides(image_size: int) -> list[int]:
    """The feature maps' sides from the 4×4 base up to `image_size`: 32 → [4, 8, 16, 32], 28 → [4, 7, 14, 28]."""
    if image_size not in DCGAN_IMAGE_SIZES:
        raise ValueError(f"a DCGAN builds sides {DCGAN_IMAGE_SIZES}, not {image_size}")
    sides = [image_size]
    while sides[-1] > 4:
        side = sides[-1]
        sides.append(side // 2 if side % 2 == 0 and side // 2 >= 4 else side - 3)
    return sides[::-1]


def dcgan_depth(image_size: int) -> int:
    """Blocks between the 4×4 base and `image_size` (16 → 2, 28 → 3, 32 → 3, 64 → 4)."""
    return len(dcgan_sides(image_size)) - 1


def default_image_size(native: int, arch: Arch) -> int:
    """The side images of side `native` train at when the spec gives no image_size."""
    if arch == "mlp":
        return native
    for size in DCGAN_IMAGE_SIZES:
        if size >= native:
            return size
    return DCGAN_IMAGE_SIZES[-1]


def image_fitting(shape: tuple[int, ...]) -> str:
    """In words, for a data set's page: the side each network trains images of `shape` at by default, and how."""
    side = shape[-1]
    dcgan = default_image_size(side, "dcgan")
    how = (
        "at their own size"
        if dcgan == side
        else f"resized to {dcgan}×{dcgan} (dataset.fit 'pad' pads them instead)"
        if dcgan > side
        else f"resized to {dcgan}×{dcgan}"
    )
    return (
        f"{side}×{side} images: DCGAN nets train them {how}, MLPs at {side}×{side}; "
        f"model.image_size picks another size (DCGAN: {', '.join(map(str, DCGAN_IMAGE_SIZES))})."
    )


def resolve(
    spec: TrainSpec, data_kind: DataKind, data_shape: tuple[int, ...], dataset_label: str | None = None
) -> TrainSpec:
    """Fill every default from the loss kind and the kind of data, and check consistency.

    `data_shape` is one example's shape: `(dim,)` for points, `(C, H, W)` for images. `dataset_label`
    names the data set in the job's default name (an upload's own name rather than its id).
    Raises SpecError naming the offending field.
    """
    kind = spec.loss.kind
    defaults = DEFAULTS[data_kind][kind]
    opt_kind, lr, betas = defaults.optimizer, defaults.lr, defaults.betas
    arch: Arch = spec.model.arch or DEFAULT_ARCH[data_kind]
    m = spec.model
    fit = spec.dataset.fit
    if data_kind == "points":
        if arch != "mlp":
            raise SpecError(("model", "arch"), "point data sets train MLPs only; use arch 'mlp'")
        if m.image_size is not None or m.channels is not None:
            raise SpecError(("model", "image_size"), "image_size and channels apply to image data sets only")
        if fit is not None:
            raise SpecError(("dataset", "fit"), "fit applies to image data sets only")
        image_size, channels = None, None
        latent = m.latent_dim or DEFAULT_LATENT_POINTS
    else:
        native_c, native_h, native_w = data_shape
        if native_h != native_w:
            raise SpecError(("dataset",), f"images must be square, this data set's are {native_h}×{native_w}")
        image_size = m.image_size or default_image_size(native_h, arch)
        channels = m.channels or native_c
        if arch == "dcgan" and image_size not in DCGAN_IMAGE_SIZES:
            raise SpecError(("model", "image_size"), f"DCGAN image_size must be one of {DCGAN_IMAGE_SIZES}")
        if channels != native_c and native_c != 1:
            raise SpecError(("model", "channels"), f"this data set has {native_c} channels, not {channels}")
        if image_size == native_h:
            fit = None  # nothing to fit
        else:
            fit = fit or "resize"
            if fit == "pad" and image_size < native_h:
                larger = [size for size in DCGAN_IMAGE_SIZES if size >= native_h] if arch == "dcgan" else [native_h]
                raise SpecError(
                    ("dataset", "fit"),
                    f"padding cannot shrink {native_h} px images to {image_size}; use fit 'resize', or an "
                    f"image_size of {' or '.join(map(str, larger)) if larger else 'at least ' + str(native_h)}",
                )
        latent = m.latent_dim or DEFAULT_LATENT_IMAGES

    if arch == "dcgan":
        assert image_size is not None
        depth = dcgan_depth(image_size)
        if m.depth is not None and m.depth != depth:
            raise SpecError(("model", "depth"), f"a {image_size}px DCGAN has depth {depth}; leave depth out")
        width = m.hidden_dim or DEFAULT_DCGAN_WIDTH
        gen_bn = True if m.generator_batch_norm is None else m.generator_batch_norm
        critic_norm = m.critic_norm or ("layer" if kind in PENALISED_KINDS else "none")
    else:
        depth = m.depth or DEFAULT_MLP_DEPTH
        width = m.hidden_dim or DEFAULT_MLP_WIDTH[data_kind]
        gen_bn = bool(m.generator_batch_norm)
        critic_norm = m.critic_norm or "none"
    if critic_norm == "batch" and kind in PENALISED_KINDS:
        raise SpecError(
            ("model", "critic_norm"),
            "batch norm in the critic breaks the per-sample gradient penalty; use 'layer' or 'none'",
        )

    o = spec.optimizer
    if o.kind is not None and o.kind != opt_kind:
        opt_kind = o.kind
        lr, betas = _OPTIMIZER_FALLBACK[opt_kind]
    if opt_kind == "rmsprop":
        if o.betas is not None:
            raise SpecError(("optimizer", "betas"), "RMSprop takes no betas")
        betas = None
    elif o.betas is not None:
        betas = o.betas

    label = dataset_label or spec.dataset.name or spec.dataset.id or "data"
    return spec.model_copy(
        update={
            "name": spec.name or f"{label[: MAX_NAME - len(kind) - 1]}-{kind}",
            "dataset": spec.dataset.model_copy(update={"fit": fit}),
            "model": m.model_copy(
                update={
                    "arch": arch,
                    "latent_dim": latent,
                    "hidden_dim": width,
                    "depth": depth,
                    "image_size": image_size,
                    "channels": channels,
                    "generator_batch_norm": gen_bn,
                    "critic_norm": critic_norm,
                }
            ),
            "loss": spec.loss.model_copy(
                update={
                    "gp_weight": defaults.gp_weight if spec.loss.gp_weight is None else spec.loss.gp_weight,
                    "clip_value": spec.loss.clip_value or DEFAULT_CLIP_VALUE,
                    "critic_schedule": spec.loss.critic_schedule or defaults.critic_schedule,
                }
            ),
            "optimizer": OptimizerSpec(kind=opt_kind, lr=o.lr or lr, betas=betas),
            "n_critic": spec.n_critic or defaults.n_critic,
            "batch_size": spec.batch_size or DEFAULT_BATCH[data_kind],
            "generator_ema": DEFAULT_GENERATOR_EMA[data_kind] if spec.generator_ema is None else spec.generator_ema,
        }
    )


def is_resolved(spec: TrainSpec) -> bool:
    """True when `resolve` has already filled every default (what a trainer needs)."""
    m = spec.model
    return None not in (
        spec.name,
        spec.batch_size,
        m.arch,
        spec.n_critic,
        m.latent_dim,
        m.hidden_dim,
        m.depth,
        m.generator_batch_norm,
        m.critic_norm,
        spec.loss.gp_weight,
        spec.loss.clip_value,
        spec.loss.critic_schedule,
        spec.optimizer.kind,
        spec.optimizer.lr,
        spec.generator_ema,
    )
