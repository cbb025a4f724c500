"""The typed training spec: what to train and how, with each loss kind's paper defaults."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

LossKind = Literal["wgan-clip", "wgan-gp", "wgan-lp", "vanilla"]
Arch = Literal["mlp", "dcgan"]
DeviceName = Literal["auto", "cpu", "cuda"]
CriticNorm = Literal["none", "layer", "batch"]
CriticSchedule = Literal["constant", "paper"]
Precision = Literal["fp32", "bf16"]
OptimizerKind = Literal["adam", "rmsprop"]

DCGAN_IMAGE_SIZES = (16, 32, 64)
PENALISED_KINDS = ("wgan-gp", "wgan-lp")


class SpecError(ValueError):
    """A spec that is well-formed but inconsistent with itself or with its data set."""

    def __init__(self, loc: tuple[str | int, ...], msg: str) -> None:
        super().__init__(f"{'.'.join(map(str, loc))}: {msg}")
        self.loc = loc
        self.msg = msg


# Names end up in databases and file listings, where control characters (a NUL above all) break things.
NO_CONTROL_CHARACTERS = r"^[^\x00-\x1f\x7f]*$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DatasetRef(_Strict):
    """A built-in data set by `name`, or an uploaded one by `id`: exactly one of the two."""

    name: str | None = Field(default=None, min_length=1, max_length=64, pattern=NO_CONTROL_CHARACTERS)
    id: str | None = Field(default=None, min_length=1, max_length=64)

    @model_validator(mode="after")
    def _exactly_one(self) -> DatasetRef:
        if (self.name is None) == (self.id is None):
            raise ValueError("give exactly one of 'name' (a built-in data set) or 'id' (an upload)")
        return self


class ModelSpec(_Strict):
    arch: Arch = "mlp"
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
    betas: tuple[Annotated[float, Field(ge=0, lt=1)], Annotated[float, Field(ge=0, lt=1)]] | None = None


class TrainSpec(_Strict):
    """A training job's spec. Every field but `dataset` may be left out; `resolve` fills them."""

    name: str | None = Field(default=None, max_length=200, pattern=NO_CONTROL_CHARACTERS)
    dataset: DatasetRef
    model: ModelSpec = Field(default_factory=ModelSpec)
    loss: LossSpec = Field(default_factory=LossSpec)
    optimizer: OptimizerSpec = Field(default_factory=OptimizerSpec)
    n_critic: Annotated[int, Field(ge=1, le=100)] | None = None
    batch_size: Annotated[int, Field(ge=1, le=65536)] = 256
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
        default=True, description="At each checkpoint, measure the exact W1 and mode coverage (2-D data sets)."
    )


# Each loss kind's paper defaults: (n_critic, optimizer kind, lr, betas, critic schedule).
_PAPER_DEFAULTS: dict[str, tuple[int, OptimizerKind, float, tuple[float, float] | None, CriticSchedule]] = {
    "wgan-clip": (5, "rmsprop", 5e-5, None, "paper"),  # Arjovsky et al. 2017, Algorithm 1
    "wgan-gp": (5, "adam", 1e-4, (0.0, 0.9), "constant"),  # Gulrajani et al. 2017, Algorithm 1
    "wgan-lp": (5, "adam", 1e-4, (0.0, 0.9), "constant"),  # Petzka et al. 2018 follow WGAN-GP
    "vanilla": (1, "adam", 2e-4, (0.5, 0.999), "constant"),  # Radford et al. 2016 (DCGAN)
}
# When the spec picks an optimizer other than its loss's paper default.
_OPTIMIZER_FALLBACK: dict[str, tuple[float, tuple[float, float] | None]] = {
    "adam": (1e-4, (0.5, 0.9)),
    "rmsprop": (5e-5, None),
}
DEFAULT_GP_WEIGHT = 10.0
DEFAULT_CLIP_VALUE = 0.01
DEFAULT_LATENT_POINTS = 2
DEFAULT_LATENT_IMAGES = 64
DEFAULT_MLP_WIDTH = 512
DEFAULT_MLP_DEPTH = 3
DEFAULT_DCGAN_WIDTH = 64


def dcgan_depth(image_size: int) -> int:
    """Blocks between the 4×4 base and `image_size` (16 → 2, 32 → 3, 64 → 4)."""
    return image_size.bit_length() - 3


def _default_image_size(native: int, arch: Arch) -> int:
    if arch == "mlp":
        return native
    for size in DCGAN_IMAGE_SIZES:
        if size >= native:
            return size
    return DCGAN_IMAGE_SIZES[-1]


def resolve(spec: TrainSpec, data_kind: Literal["points", "images"], data_shape: tuple[int, ...]) -> TrainSpec:
    """Fill every default from the loss kind's paper and the data set, and check consistency.

    `data_shape` is one example's shape: `(dim,)` for points, `(C, H, W)` for images.
    Raises SpecError naming the offending field.
    """
    kind = spec.loss.kind
    n_critic, opt_kind, lr, betas, schedule = _PAPER_DEFAULTS[kind]
    m = spec.model
    if data_kind == "points":
        if m.arch != "mlp":
            raise SpecError(("model", "arch"), "point data sets train MLPs only; use arch 'mlp'")
        if m.image_size is not None or m.channels is not None:
            raise SpecError(("model", "image_size"), "image_size and channels apply to image data sets only")
        image_size, channels = None, None
        latent = m.latent_dim or DEFAULT_LATENT_POINTS
    else:
        native_c, native_h, native_w = data_shape
        if native_h != native_w:
            raise SpecError(("dataset",), f"images must be square, this data set's are {native_h}×{native_w}")
        image_size = m.image_size or _default_image_size(native_h, m.arch)
        channels = m.channels or native_c
        if m.arch == "dcgan" and image_size not in DCGAN_IMAGE_SIZES:
            raise SpecError(("model", "image_size"), f"DCGAN image_size must be one of {DCGAN_IMAGE_SIZES}")
        if channels != native_c and native_c != 1:
            raise SpecError(("model", "channels"), f"this data set has {native_c} channels, not {channels}")
        latent = m.latent_dim or DEFAULT_LATENT_IMAGES

    if m.arch == "dcgan":
        assert image_size is not None
        depth = dcgan_depth(image_size)
        if m.depth is not None and m.depth != depth:
            raise SpecError(("model", "depth"), f"a {image_size}px DCGAN has depth {depth}; leave depth out")
        width = m.hidden_dim or DEFAULT_DCGAN_WIDTH
        gen_bn = True if m.generator_batch_norm is None else m.generator_batch_norm
        critic_norm = m.critic_norm or ("layer" if kind in PENALISED_KINDS else "none")
    else:
        depth = m.depth or DEFAULT_MLP_DEPTH
        width = m.hidden_dim or DEFAULT_MLP_WIDTH
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

    dataset_label = spec.dataset.name or spec.dataset.id
    return spec.model_copy(
        update={
            "name": spec.name or f"{dataset_label}-{kind}",
            "model": m.model_copy(
                update={
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
                    "gp_weight": DEFAULT_GP_WEIGHT if spec.loss.gp_weight is None else spec.loss.gp_weight,
                    "clip_value": spec.loss.clip_value or DEFAULT_CLIP_VALUE,
                    "critic_schedule": spec.loss.critic_schedule or schedule,
                }
            ),
            "optimizer": OptimizerSpec(kind=opt_kind, lr=o.lr or lr, betas=betas),
            "n_critic": spec.n_critic or n_critic,
        }
    )


def is_resolved(spec: TrainSpec) -> bool:
    """True when `resolve` has already filled every default (what a trainer needs)."""
    m = spec.model
    return None not in (
        spec.name,
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
    )
