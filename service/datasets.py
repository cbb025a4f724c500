"""Uploaded data sets: stored with their row, or not at all; deleted only when no job uses them."""

from __future__ import annotations

import io

import numpy as np

from service.artifacts import dataset_key
from service.errors import Conflict, NotFound, PayloadTooLarge
from service.models import Dataset, new_id
from service.principal import Principal
from service.repositories import datasets as dataset_repo, owners as owner_repo
from service.runtime import Runtime
from wgan.data.sources import info_for_array


def store_upload(rt: Runtime, principal: Principal, array: np.ndarray, name: str) -> Dataset:
    """Keep a checked array as the principal's data set, compressed, within the owner's storage quota:
    the file first, then its row; the file goes again if the row cannot be written."""
    dataset_id = new_id()
    info = info_for_array(dataset_id, array)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, x=array)
    size = buffer.getbuffer().nbytes
    quota = rt.settings.max_storage_bytes_per_owner
    with rt.db.reads() as session:
        _check_quota(dataset_repo.stored_bytes(session, principal.owner_id), size, quota)
    key = dataset_key(dataset_id)
    rt.store.put_bytes(key, buffer.getvalue())
    row = Dataset(
        id=dataset_id,
        owner_id=principal.owner_id,
        name=name,
        kind=info.kind,
        shape=list(info.shape),
        count=info.count or 0,
        artifact_key=key,
        size_bytes=size,
    )
    try:
        with rt.db.transaction() as session:
            # Again under the owner's lock: two uploads at once cannot both fit in the last of the quota.
            owner_repo.lock(session, principal.owner_id)
            _check_quota(dataset_repo.stored_bytes(session, principal.owner_id), size, quota)
            session.add(row)
    except BaseException:
        rt.store.delete_prefix(key)
        raise
    return row


def _check_quota(used: int, size: int, quota: int) -> None:
    if used + size > quota:
        raise PayloadTooLarge(
            f"this data set takes {size:,} bytes stored and the owner already keeps {used:,}: "
            f"the quota is {quota:,} bytes (WGAN_MAX_STORAGE_BYTES_PER_OWNER); delete uploads no job uses"
        )


def delete_upload(rt: Runtime, principal: Principal, dataset_id: str) -> None:
    with rt.db.transaction() as session:
        row = dataset_repo.get(session, dataset_id, principal)
        if row is None:
            raise NotFound(f"no data set {dataset_id}")
        if dataset_repo.in_use(session, dataset_id):
            raise Conflict("jobs use this data set; delete them first")
        session.delete(row)
        key = row.artifact_key
    rt.store.delete_prefix(key)
