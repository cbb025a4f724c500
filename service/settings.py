"""The one settings object: every knob of the API, the workers and the limits, from WGAN_* variables."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATA_DIR = Path("var")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="WGAN_", env_file=".env", extra="ignore")

    environment: Literal["development", "production"] = Field(
        "development", description="'production' refuses unsafe settings (SQLite, CORS '*')."
    )
    data_dir: Path = Field(DEFAULT_DATA_DIR, description="Where the embedded default keeps its files.")

    # Where things live. Left empty, each falls back to the embedded default under data_dir:
    # a SQLite database, a Celery transport in a SQLite file, artifacts on local disk.
    database_url: str = Field("", description="SQLAlchemy URL; default: a SQLite file under data_dir.")
    db_idle_in_transaction_seconds: float = Field(
        10.0,
        ge=0,
        description="Postgres ends a session idle inside a transaction this long (0: never), so a frozen "
        "process cannot hold the locks a takeover needs. Keep it below claim_stale_seconds.",
    )
    db_pool_size: int = Field(
        10,
        ge=1,
        description="Postgres connections a process keeps open, and never more: a request holds one at most, "
        "and one beyond them waits for a free one rather than open and close a session of its own.",
    )
    db_pool_timeout_seconds: float = Field(
        10.0,
        gt=0,
        description="How long a request waits for a free pooled connection before it is answered 503 "
        "(Retry-After) rather than queue on.",
    )
    broker_url: str = Field("", description="Celery broker; default: kombu's SQLAlchemy transport in a SQLite file.")
    events_url: str = Field("", description="Redis for live events; defaults to broker_url when that is Redis.")
    artifact_url: str = Field("", description="file:///path (default: data_dir/artifacts) or s3://bucket/prefix.")
    s3_endpoint_url: str = Field("", description="S3 endpoint for an s3:// artifact URL (SeaweedFS, MinIO…).")
    artifact_cache_dir: Path | None = Field(
        None, description="Local copies of s3:// artifacts (default: data_dir/artifact-cache)."
    )
    cache_dir: Path | None = Field(
        None, description="Derived files a worker keeps: the digit classifiers' weights (default: data_dir/cache)."
    )
    redis_prefix: str = Field("wgan", description="Prefix of every Redis key and channel, so deployments can share.")

    # API
    host: str = Field("127.0.0.1", description="Address the API binds.")
    port: int = Field(8000, description="Port the API listens on.")
    http_max_header_bytes: int = Field(
        64 * 1024,
        ge=4096,
        description="Largest request head (request line and headers) the API reads; more is refused (431).",
    )
    http_max_connections: int = Field(
        512, ge=1, description="Connections and requests the API process serves at once; beyond it answers 503."
    )
    http_keep_alive_seconds: int = Field(5, ge=1, description="Seconds an idle keep-alive connection stays open.")
    access_log: bool = Field(
        True, description="One log line per HTTP request; off saves its cost where a proxy logs them already."
    )
    cors_origins: list[str] = Field(default_factory=list, description="Allowed browser origins; none by default.")
    sample_cache_size: int = Field(8, ge=1, description="Generators kept loaded for sampling (LRU).")
    max_streams_per_owner: int = Field(
        20, ge=1, description="Event streams one owner may hold open at once (all keys, all API processes); more: 429."
    )
    stream_max_seconds: float = Field(
        1800.0,
        gt=0,
        description="An event stream ends after this long; EventSource reconnects with Last-Event-ID, losing nothing.",
    )
    stream_recheck_seconds: float = Field(
        10.0, gt=0, description="How often an open stream re-checks its key: a revoked key's streams end."
    )
    sse_poll_seconds: float = Field(
        1.0, gt=0, description="Database poll interval of the event stream when no Redis notification arrives."
    )
    api_torch_threads: int = Field(
        1, ge=1, description="Threads of one generator pass in the API process (torch's, or onnxruntime's)."
    )
    sample_concurrency: int = Field(
        0,
        ge=0,
        description="Generator passes (samples, exports) one API process runs at once, each on a thread kept for "
        "them; more wait in line. 0: one per core the process may use.",
    )
    sample_share_passes: bool = Field(
        True,
        description="Sample requests for one generator waiting in line share a pass: those that fit in the padding "
        "of the first one's last chunk of 64 rows are computed with it, each still getting its own bytes.",
    )
    sample_runtime: Literal["onnxruntime", "torch"] = Field(
        "onnxruntime",
        description="What runs the API's generator passes on the CPU: onnxruntime, on the graph the ONNX export "
        "hands out (more requests/s than torch on the CPUs measured: bench sampling; a pass releases the GIL "
        "throughout), or torch. On a GPU, torch.",
    )
    sample_device: Literal["auto", "cpu", "cuda"] = Field(
        "auto",
        description="Where the API runs generators: auto takes the GPU when its host has one (outputs may then "
        "differ from the CPU's in the last bits); cuda without a GPU refuses to start.",
    )

    # Limits on what one request may ask for.
    max_body_bytes: int = Field(64 * 1024, ge=1024, description="Largest JSON body.")
    max_upload_bytes: int = Field(64 * 1024 * 1024, ge=1024, description="Largest data set upload.")
    max_upload_expanded_bytes: int = Field(512 * 1024 * 1024, ge=1024, description="Largest unpacked upload.")
    max_upload_examples: int = Field(100_000, ge=1, description="Most examples (and zip members) in an upload.")
    max_upload_image_side: int = Field(512, ge=8, description="Largest image side in an upload.")
    max_steps: int = Field(1_000_000, ge=1, description="Largest `steps` of a job.")
    max_batch_size: int = Field(4096, ge=1, description="Largest `batch_size` of a job.")
    max_image_size: int = Field(64, ge=16, description="Largest `model.image_size`.")
    max_hidden_dim: int = Field(2048, ge=8, description="Largest `model.hidden_dim`.")
    max_latent_dim: int = Field(512, ge=1, description="Largest `model.latent_dim`.")
    max_parameters: int = Field(
        100_000_000,
        ge=1000,
        description="Most parameters of a job's generator and critic together (their Adam state takes three "
        "times as much again): a DCGAN's widths double with each layer, so hidden_dim alone does not bound it.",
    )
    max_step_flops: float = Field(
        2.5e13,
        gt=0,
        description="Most floating-point operations of one training step (a generator update and its n_critic "
        "critic updates at the job's batch size), as POST /api/v1/jobs/preview counts them.",
    )
    max_sample_flops: float = Field(
        1e12,
        gt=0,
        description="Most generator FLOPs one sample request may cost (n times one example's forward pass); "
        "the API samples on its own CPU threads, so this bounds a request's time (here ~20 s at 5e10 FLOP/s).",
    )
    max_samples: int = Field(1024, ge=1, description="Largest `n` of a sample request.")
    max_walk_frames: int = Field(64, ge=2, description="Most frames of a latent walk (`interpolate=A,B`).")
    max_concurrent_samples_per_owner: int = Field(
        4, ge=1, description="Sample requests of one owner in progress at once (all API processes); more: 429."
    )
    sample_pin_threads: bool = Field(
        True,
        description="Each of the API's sampling threads runs on a core of its own (the process's cores in turn), "
        "keeping its caches warm, when there are no more of them than cores; off leaves them to the scheduler.",
    )
    sample_slot_linger_seconds: float = Field(
        0.1,
        ge=0,
        le=10,
        description="A sample request's slot stays with its API process this long after it ends, for the same "
        "owner's next request there (no round trip to Redis); meanwhile it still counts in other processes.",
    )
    sample_recall_seconds: float = Field(
        0.1,
        ge=0,
        le=1,
        description="What a sample request read of its key, job and checkpoint answers the same key's next sample "
        "requests in its API process this long, with no database read: a revoked key, a deleted job or a newer "
        "'latest' checkpoint is seen that much later there. 0: every request reads.",
    )
    sample_timeout_seconds: float = Field(
        30.0,
        gt=0,
        description="A sample request still generating after this long stops (503); one whose client "
        "disconnected stops at once. Checked between chunks of 64 samples.",
    )
    max_list_limit: int = Field(200, ge=1, description="Largest page of the job and experiment lists.")
    max_experiment_runs: int = Field(64, ge=1, description="Most runs (grid points × seeds) in one experiment.")
    metrics_page_limit: int = Field(10_000, ge=1, description="Largest page of metric points.")
    history_buckets: int = Field(
        2000, ge=1, description="Buckets of a downsampled metric history when the request names no number."
    )
    max_history_buckets: int = Field(10_000, ge=1, description="Most buckets a downsampled history may ask for.")
    idempotency_ttl_seconds: int = Field(24 * 3600, ge=1, description="How long an Idempotency-Key is remembered.")
    rate_jobs_per_minute: int = Field(
        60, ge=0, description="Job submissions per owner (all its keys) in any 60 s (0: no limit)."
    )
    rate_samples_per_minute: int = Field(
        600, ge=0, description="Sample requests per owner (all its keys) in any 60 s (0: no limit)."
    )
    rate_uploads_per_minute: int = Field(
        10, ge=0, description="Data set uploads per owner (all its keys) in any 60 s (0: no limit)."
    )
    rate_auth_failures_per_minute: int = Field(
        20,
        ge=0,
        description="Requests with a bad or revoked key from one client address in any 60 s; beyond, that "
        "address gets 429 before its keys are even looked up (0: no limit).",
    )
    max_storage_bytes_per_owner: int = Field(
        2 * 1024**3,
        ge=1024,
        description="Most bytes of uploaded data sets one owner may keep (as stored, compressed); more: 413.",
    )
    estimate_update_seconds: float = Field(
        7e-4,
        gt=0,
        description="Duration estimates: the fixed cost assumed per optimizer update (measured here on one CPU "
        "thread); jobs that train here correct it.",
    )
    estimate_flops_per_second: float = Field(
        5e10,
        gt=0,
        description="Duration estimates: the arithmetic speed assumed of a worker (one CPU thread here); jobs "
        "that train here correct it.",
    )
    max_running_per_owner: int = Field(
        4, ge=1, description="Jobs of one owner training at once; more wait queued, and start in the order submitted."
    )

    # Workers
    max_stack_runs: int = Field(
        8,
        ge=1,
        description="Most runs of one experiment a worker trains as one stack (at most max_running_per_owner); "
        "1: every run alone.",
    )
    max_stack_bytes: int = Field(
        2 * 1024**3, ge=1, description="Memory a stack may take, by wgan.stacked.run_bytes' estimate per run."
    )
    worker_queues: str = Field("cpu", description="Comma-separated queues: 'cpu', or 'gpu,cpu' on a GPU host.")
    worker_torch_threads: int = Field(
        0,
        ge=0,
        description="Torch threads for training; 0: one for jobs under worker_single_thread_flops per step, "
        "torch's default (a thread per core) for larger ones.",
    )
    worker_omp_spincount: int = Field(
        10_000,
        ge=0,
        description="GOMP_SPINCOUNT of worker processes: how long an idle OpenMP thread spins before it sleeps "
        "(0: it sleeps at once, OMP_WAIT_POLICY=PASSIVE, as the API and the webhook sender do). A bounded spin "
        "trained the 512-wide MLP 1.35x faster than passive waiting here, alone on the host; an explicit "
        "OMP_WAIT_POLICY or GOMP_SPINCOUNT in the environment wins.",
    )
    worker_threads_adapt_seconds: float = Field(
        5.0,
        ge=0,
        description="How often a training worker compares the cores it can have (its own CPU use plus the "
        "host's idle time) with its torch threads, and takes fewer when other processes keep the cores "
        "busy, more when they free them (0: never; the threads stay as chosen at the start).",
    )
    eval_points: int = Field(
        2000, ge=10, le=20_000, description="Generated and real points each checkpoint's exact W1 compares (2-D sets)."
    )
    eval_images: int = Field(
        1000, ge=10, le=10_000, description="Generated and real images each checkpoint's evaluation compares."
    )
    worker_single_thread_flops: float = Field(
        1e10,
        ge=0,
        description="With worker_torch_threads 0, CPU jobs below this many FLOPs per step train on one thread: "
        "small models lose more to waking a second thread than it gives them (here: the 1.5 GFLOP toy and a "
        "6 GFLOP 16 px DCGAN ran faster on one thread, a 23 GFLOP MLP and a 48 GFLOP 32 px DCGAN on two).",
    )
    worker_nice: int = Field(5, ge=0, le=19, description="Niceness of training, so the API stays responsive.")
    heartbeat_seconds: float = Field(1.0, gt=0, description="How often a trainer heartbeats and checks for cancel.")
    claim_stale_seconds: float = Field(30.0, gt=0, description="A claim whose heartbeat is older may be taken over.")
    reaper_seconds: float = Field(10.0, gt=0, description="How often workers look for lost and stuck jobs.")
    requeue_queued_seconds: float = Field(120.0, gt=0, description="A queued job unclaimed this long is re-sent.")
    max_attempts: int = Field(5, ge=1, description="Claims of one job before a lost worker fails it.")
    visibility_timeout_seconds: int = Field(6 * 3600, ge=60, description="Redis redelivers unacked tasks after this.")
    write_retry_seconds: float = Field(60.0, gt=0, description="How long a worker retries a failed database write.")
    worker_alive_file: Path | None = Field(
        None,
        description="A file the worker touches when ready and after each reaper pass (unset: none); "
        "`wgan-service healthcheck worker` calls it healthy while younger than claim_stale_seconds.",
    )

    worker_extension: str = Field(
        "",
        description="'module:factory' of a worker.extensions.WorkerExtension to load into workers (the fault "
        "tests' injected crashes, tracing); empty: none.",
    )

    metrics_token: str = Field(
        "",
        description="Bearer token GET /metrics requires (it lists running jobs and worker hosts). Unset: open "
        "in development, and /metrics is off (404) in production.",
    )
    ops_cache_seconds: float = Field(
        5.0, ge=0, description="How long /metrics and /readyz reuse their database and broker reads."
    )

    max_webhooks_per_owner: int = Field(20, ge=1, description="Webhooks one owner may register.")
    webhook_allowed_networks: list[str] = Field(
        default_factory=list,
        description="CIDR blocks a webhook URL may resolve into although they are not public (JSON list, e.g. "
        "'[\"10.1.0.0/16\"]'). Loopback, private, link-local and metadata addresses are refused otherwise.",
    )
    webhook_timeout_seconds: float = Field(
        10.0, gt=0, le=300, description="Longest one delivery attempt may take, connecting to reading the status."
    )
    webhook_retry_first_seconds: float = Field(5.0, gt=0, description="Wait before a failed delivery's first retry.")
    webhook_retry_factor: float = Field(3.0, ge=1, description="Each retry waits this many times the last wait…")
    webhook_retry_max_seconds: float = Field(6 * 3600.0, gt=0, description="…but never longer than this.")
    webhook_max_attempts: int = Field(
        12, ge=1, description="Attempts before a delivery is given up (the defaults retry for about a day)."
    )
    webhook_concurrency: int = Field(
        8, ge=1, description="Deliveries one `wgan-service webhooks` process makes at once (threads)."
    )
    webhook_sweep_seconds: float = Field(
        5.0, gt=0, description="How often the webhook sender sends due retries and re-sends lost deliveries."
    )
    webhook_retention_seconds: float = Field(
        7 * 24 * 3600.0, gt=0, description="How long finished deliveries are kept for GET …/deliveries."
    )

    log_level: str = Field("INFO", description="Log level of API and workers.")
    log_json: bool = Field(False, description="One JSON object per log line.")

    @field_validator("artifact_cache_dir", "cache_dir", "worker_alive_file", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # `WGAN_WORKER_ALIVE_FILE=` means "none", not the current directory.
        return None if value == "" else value

    @field_validator("webhook_allowed_networks")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for block in value:
            ipaddress.ip_network(block, strict=False)  # a ValueError names the bad block
        return value

    @model_validator(mode="after")
    def _fill_embedded_defaults(self) -> Settings:
        data = self.data_dir.resolve()
        if not self.database_url:
            self.database_url = f"sqlite:///{data / 'wgan.db'}"
        if not self.broker_url:
            self.broker_url = f"sqla+sqlite:///{data / 'broker.db'}"
        if not self.events_url and self.broker_url.startswith(("redis://", "rediss://")):
            self.events_url = self.broker_url
        if not self.artifact_url:
            self.artifact_url = (data / "artifacts").as_uri()
        if self.cache_dir is None:
            self.cache_dir = data / "cache"
        if self.environment == "production":
            if self.database_url.startswith("sqlite"):
                raise ValueError("production needs WGAN_DATABASE_URL pointing at Postgres, not SQLite")
            if "*" in self.cors_origins:
                raise ValueError("production refuses WGAN_CORS_ORIGINS='*'; list the origins")
        return self

    @property
    def embedded(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def queues(self) -> list[str]:
        return [q.strip() for q in self.worker_queues.split(",") if q.strip()]
