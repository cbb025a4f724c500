"""The anchor of `bench request-cost`: a minimal FastAPI + SQLAlchemy app making the reads and writes the
service's GET and POST /api/v1/jobs make, on the same tables, behind the same uvicorn settings.

What the service's requests cost above this one's is the service's own overhead. It is written the way a
careful minimal app would be: one thread-pool trip per request, Core statements, one connection, and a
submission's Redis writes (its event announced, its sent-marker, its task) in one round trip. It takes
the body the service takes, the engine's TrainSpec (any app serving this endpoint validates it), and
stores it whole; what it leaves out is the service's own work on it: resolving its defaults against the
data set and counting its cost.

    python -m bench.anchor_app --port 8001   (WGAN_DATABASE_URL and WGAN_BROKER_URL as for the service)
"""

# No `from __future__ import annotations`: FastAPI reads the endpoints' annotations at run time.
import argparse
import hashlib
import json
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

import redis
from fastapi import Depends, FastAPI, HTTPException, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from sqlalchemy import Connection, create_engine, text

from service.settings import Settings
from wgan.config import TrainSpec

KEY = text("SELECT owner_id FROM api_keys WHERE key_hash = :hash AND revoked_at IS NULL")
JOB = text(
    "SELECT id, name, status, spec, queue, progress_step, total_steps, created_at, started_at, finished_at "
    "FROM jobs WHERE id = :id AND owner_id = :owner"
)
INSERT_JOB = text(
    "INSERT INTO jobs (id, owner_id, name, status, spec, queue, progress_step, total_steps, cancel_requested, "
    "attempts, enqueued_at, event_seq, created_at) VALUES (:id, :owner, :name, 'queued', :spec, :queue, 0, :steps, "
    "false, 0, :now, 1, :now)"
)
INSERT_EVENT = text("INSERT INTO events (job_id, seq, type, data, created_at) VALUES (:id, 1, 'status', :data, :now)")
KEY_PREFIX = "bench-anchor:"
QUEUE_KEY = f"{KEY_PREFIX}queue"
MARKER_SECONDS = 3600
BEARER = HTTPBearer(auto_error=False)
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)]


class JobOut(BaseModel):
    id: str
    name: str
    status: str
    spec: dict[str, Any]
    queue: str
    step: int
    total_steps: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


def create_anchor(database_url: str, redis_url: str) -> FastAPI:
    # The pool as the service's (service.db.make_engine): no connection opened and closed per request.
    engine = create_engine(database_url, pool_size=10, max_overflow=0)
    reads = engine.execution_options(isolation_level="AUTOCOMMIT")
    broker = redis.Redis.from_url(redis_url)
    app = FastAPI()

    def owner_of(connection: Connection, credentials: HTTPAuthorizationCredentials | None) -> str:
        if credentials is None:
            raise HTTPException(401, "an API key is required")
        digest = hashlib.sha256(credentials.credentials.encode()).hexdigest()
        owner = connection.execute(KEY, {"hash": digest}).scalar()
        if owner is None:
            raise HTTPException(401, "the API key is not valid")
        return str(owner)

    @app.get("/api/v1/jobs/{job_id}")
    def get_job(job_id: str, credentials: Credentials) -> JobOut:
        with reads.connect() as connection:
            owner = owner_of(connection, credentials)
            row = connection.execute(JOB, {"id": job_id, "owner": owner}).mappings().first()
        if row is None:
            raise HTTPException(404, f"no job {job_id}")
        spec = row["spec"] if isinstance(row["spec"], dict) else json.loads(row["spec"])
        return JobOut(**{**row, "spec": spec, "step": row["progress_step"]})

    @app.post("/api/v1/jobs", status_code=202)
    def create_job(spec: TrainSpec, response: Response, credentials: Credentials) -> JobOut:
        now = datetime.now(UTC)
        job_id = str(uuid.uuid4())
        queue = "gpu" if spec.device == "cuda" else "cpu"
        with engine.begin() as connection:
            owner = owner_of(connection, credentials)
            values = {"id": job_id, "owner": owner, "name": spec.name or spec.dataset.name, "queue": queue, "now": now}
            connection.execute(INSERT_JOB, {**values, "spec": spec.model_dump_json(), "steps": spec.steps})
            connection.execute(INSERT_EVENT, {"id": job_id, "data": '{"status":"queued"}', "now": now})
        # The service's Redis writes for a new job, in one round trip as it makes them: the job's first event
        # announced, its sent-marker, its task.
        pipe = broker.pipeline(transaction=True)
        pipe.publish(f"{KEY_PREFIX}events:{job_id}", '{"status":"queued"}')
        pipe.set(f"{KEY_PREFIX}sent:{job_id}", queue, ex=MARKER_SECONDS)
        pipe.lpush(QUEUE_KEY, json.dumps({"task": "train", "args": [job_id], "queue": queue}))
        pipe.execute()
        response.headers["Location"] = f"/api/v1/jobs/{job_id}"
        return JobOut(
            id=job_id,
            name=str(values["name"]),
            status="queued",
            spec=spec.model_dump(mode="json"),
            queue=queue,
            step=0,
            total_steps=spec.steps,
            created_at=now,
            started_at=None,
            finished_at=None,
        )

    return app


def main() -> None:
    import uvicorn

    from app.http_protocol import bounded_head_protocol

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    port = parser.parse_args().port
    settings = Settings()
    # The server as `wgan-service serve` runs it (wgan_service.cli), so the comparison is of the apps.
    uvicorn.run(
        create_anchor(settings.database_url, settings.broker_url),
        host="127.0.0.1",
        port=port,
        log_config=None,
        access_log=False,
        http=bounded_head_protocol(settings.http_max_header_bytes),
        limit_concurrency=settings.http_max_connections,
        timeout_keep_alive=settings.http_keep_alive_seconds,
    )


if __name__ == "__main__":
    main()
