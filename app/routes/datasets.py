"""/api/v1/datasets: the built-in data sets, and uploads checked before anything is stored."""

from __future__ import annotations

import io
import re
from pathlib import PurePath
from typing import Annotated

import numpy as np
from fastapi import APIRouter, File, Form, HTTPException, Response, UploadFile, status

from app import presenters, schemas
from app.deps import UPLOADS, CallerDep
from app.openapi import PROBLEMS
from app.replies import reply
from service import datasets as dataset_service
from service.errors import InvalidInput, NotFound
from service.repositories import datasets as dataset_repo
from service.settings import Settings
from wgan.config import MAX_NAME, NO_CONTROL_CHARACTERS, image_fitting
from wgan.data.files import DataError, ReadLimits, read_npz, read_zip
from wgan.data.sources import BUILTIN

router = APIRouter(prefix="/api/v1/datasets", tags=["datasets"])
READERS = {".npz": read_npz, ".zip": read_zip}
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")


@router.get("", response_model=schemas.DatasetList, responses=PROBLEMS(401), summary="Built-in and uploaded data sets")
def list_datasets(caller: CallerDep) -> Response:
    builtin = [
        schemas.DatasetOut(
            id=None,
            name=info.name,
            kind=info.kind,
            shape=list(info.shape),
            count=info.count,
            builtin=True,
            description=info.description + (f" {image_fitting(info.shape)}" if info.kind == "images" else ""),
        )
        for info in BUILTIN.values()
    ]
    with caller.reads() as (session, principal):
        uploads = [presenters.dataset(row) for row in dataset_repo.for_owner(session, principal)]
    return reply(schemas.DatasetList(items=builtin + uploads))


def _name_from_filename(filename: str | None) -> str:
    # A file name is the client's to choose: control characters (a NUL breaks Postgres) are dropped.
    stem = CONTROL_CHARACTERS.sub("", PurePath(filename or "").stem).strip()
    return stem[:MAX_NAME] or "upload"


def _limits(settings: Settings) -> ReadLimits:
    return ReadLimits(
        max_examples=settings.max_upload_examples,
        max_image_side=settings.max_upload_image_side,
        max_expanded_bytes=settings.max_upload_expanded_bytes,
        max_members=settings.max_upload_examples,
    )


def _read_upload(upload: UploadFile, settings: Settings) -> np.ndarray:
    suffix = PurePath(upload.filename or "").suffix.lower()
    reader = READERS.get(suffix)
    if reader is None:
        raise HTTPException(
            415,
            f"upload a .zip of PNG/JPEG images or an .npz with an array 'x', not {suffix or 'a file without a suffix'}",
        )
    # Read where the upload already is (a spooled temporary file), never copied whole into memory.
    body = upload.file
    if body.seek(0, io.SEEK_END) == 0:
        raise InvalidInput("the upload is empty", [(("body", "file"), "the file is empty")])
    body.seek(0)
    try:
        return reader(body, _limits(settings))
    except DataError as exc:
        raise InvalidInput(str(exc), [(("body", "file"), str(exc))]) from exc


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=schemas.UploadedDataset,
    responses=PROBLEMS(401, 413, 415, 422, 429),
    summary="Upload a data set: a .zip of PNG/JPEG images or an .npz with an array x",
)
def upload_dataset(
    caller: CallerDep,
    file: Annotated[UploadFile, File(description=".zip of PNG/JPEG images, or .npz with an array 'x'")],
    name: Annotated[str | None, Form(max_length=MAX_NAME, pattern=NO_CONTROL_CHARACTERS)] = None,
) -> Response:
    # Key and budget first: an upload is checked before its (costly) parsing.
    principal = caller.principal(UPLOADS)
    rt = caller.rt
    array = _read_upload(file, rt.settings)
    row = dataset_service.store_upload(rt, principal, array, name or _name_from_filename(file.filename))
    made = schemas.UploadedDataset(id=row.id, name=row.name, shape=row.shape, count=row.count, kind=row.kind)
    return reply(made, status.HTTP_201_CREATED, {"Location": f"/api/v1/datasets/{row.id}"})


@router.get("/{dataset_id}", response_model=schemas.DatasetOut, responses=PROBLEMS(401, 404), summary="An upload")
def get_dataset(caller: CallerDep, dataset_id: str) -> Response:
    with caller.reads() as (session, principal):
        row = dataset_repo.get(session, dataset_id, principal)
    if row is None:
        raise NotFound(f"no data set {dataset_id}")
    return reply(presenters.dataset(row))


@router.delete(
    "/{dataset_id}", status_code=204, responses=PROBLEMS(401, 404, 409), summary="Delete an upload no job uses"
)
def delete_dataset(caller: CallerDep, dataset_id: str) -> Response:
    dataset_service.delete_upload(caller.rt, caller.principal(), dataset_id)
    return Response(status_code=204)
