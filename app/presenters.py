"""Rows → response models, with the links a client follows. A job and an experiment are presented by the
service layer (service.views), since webhooks send them as REST returns them."""

from __future__ import annotations

import json

from app import schemas
from service.models import CheckpointRow, Dataset, Webhook, WebhookDelivery
from service.views import (
    experiment_links as experiment_links,
    experiment_view as experiment,
    job_links as job_links,
    job_view as job,
)
from wgan.config import image_fitting

__all__ = [
    "checkpoint",
    "dataset",
    "delivery",
    "experiment",
    "experiment_links",
    "job",
    "job_links",
    "webhook",
    "webhook_links",
]


def checkpoint(row: CheckpointRow) -> schemas.CheckpointOut:
    return schemas.CheckpointOut.model_validate(row)


def dataset(row: Dataset) -> schemas.DatasetOut:
    return schemas.DatasetOut(
        id=row.id,
        name=row.name,
        kind=row.kind,
        shape=row.shape,
        count=row.count,
        builtin=False,
        description="Uploaded." + (f" {image_fitting(tuple(row.shape))}" if row.kind == "images" else ""),
        created_at=row.created_at,
    )


def webhook_links(webhook_id: str) -> schemas.WebhookLinks:
    base = f"/api/v1/webhooks/{webhook_id}"
    return schemas.WebhookLinks(self=base, deliveries=f"{base}/deliveries")


def webhook(row: Webhook) -> schemas.Webhook:
    return schemas.Webhook(
        id=row.id,
        url=row.url,
        events=row.events,
        description=row.description,
        created_at=row.created_at,
        links=webhook_links(row.id),
    )


def delivery(row: WebhookDelivery) -> schemas.Delivery:
    return schemas.Delivery(
        id=row.id,
        webhook_id=row.webhook_id,
        message_id=row.message_id,
        event=row.event,
        status=row.status,
        attempts=row.attempts,
        last_status_code=row.last_status_code,
        last_error=row.last_error,
        last_attempt_at=row.last_attempt_at,
        next_attempt_at=row.next_attempt_at,
        created_at=row.created_at,
        delivered_at=row.delivered_at,
        payload=json.loads(row.payload),
    )
