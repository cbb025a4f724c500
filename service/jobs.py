"""A job spec resolved against its data set: every default filled in, or the field that is wrong named."""

from __future__ import annotations

from typing import Any

from service.db import Executor
from service.errors import InvalidInput
from service.principal import Principal
from service.repositories import datasets as dataset_repo
from service.settings import Settings
from wgan.config import SpecError, TrainSpec, resolve
from wgan.cost import step_cost
from wgan.data.sources import BUILTIN

BODY = "body"


def resolve_spec(session: Executor, principal: Principal, spec: TrainSpec, settings: Settings) -> TrainSpec:
    """Fill every default against the job's data set, or raise InvalidInput naming the field."""
    if spec.dataset.id is not None:
        found = dataset_repo.basis(session, spec.dataset.id, principal)
        if found is None:
            raise InvalidInput(
                "the data set does not exist", [((BODY, "dataset", "id"), "no uploaded data set with this id")]
            )
        kind, shape, label = found.kind, tuple(found.shape), found.name
    else:
        assert spec.dataset.name is not None
        info = BUILTIN.get(spec.dataset.name)
        if info is None:
            raise InvalidInput(
                "unknown data set",
                [((BODY, "dataset", "name"), f"choose one of {', '.join(BUILTIN)}, or upload one and give its id")],
            )
        kind, shape, label = info.kind, info.shape, info.name
    try:
        resolved = resolve(spec, "points" if kind == "points" else "images", shape, dataset_label=label)
    except SpecError as exc:
        raise InvalidInput(exc.msg, [((BODY, *exc.loc), exc.msg)]) from exc
    image_size = resolved.model.image_size
    if image_size is not None and image_size > settings.max_image_size:
        raise InvalidInput(
            "image too large",
            [
                (
                    (BODY, "model", "image_size"),
                    f"at most {settings.max_image_size}; this data set's images are "
                    f"{shape[-1]} px, so set model.image_size",
                )
            ],
        )
    _check_cost(resolved, settings)
    return resolved


def _check_cost(spec: TrainSpec, settings: Settings) -> None:
    """Refuse a spec whose networks or steps exceed the deployment's bounds, before anything is queued:
    counted on the meta device (wgan.cost), so even a spec far too large to build costs nothing here."""
    cost = step_cost(spec)
    errors: list[tuple[tuple[str, ...], str]] = []
    if cost.params > settings.max_parameters:
        errors.append(
            (
                (BODY, "model", "hidden_dim"),
                f"the generator and critic would have {cost.params:,} parameters together; at most "
                f"{settings.max_parameters:,}: lower model.hidden_dim (or depth, or image_size)",
            )
        )
    if cost.flops_per_step > settings.max_step_flops:
        errors.append(
            (
                (BODY, "batch_size"),
                f"a training step would cost {cost.flops_per_step:.3g} FLOPs; at most {settings.max_step_flops:.3g}: "
                "lower batch_size or n_critic, or the model's size",
            )
        )
    if errors:
        raise InvalidInput("the job is larger than this service trains", errors)


def latest_metrics(stored: dict[str, Any] | None) -> dict[str, Any]:
    """A job's latest metrics as shown: its stored ones (Job.latest_metrics) over empty ones."""
    base: dict[str, Any] = {"step": 0, "critic_loss": None, "generator_loss": None, "wasserstein_estimate": None}
    return {**base, **(stored or {})}
