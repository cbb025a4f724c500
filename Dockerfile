# syntax=docker/dockerfile:1
# One image for the API, the workers and the one-shot migration.
#   CPU (default):  docker build -t wgan-service .
#   CUDA:           docker build --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu128 -t wgan-service:cuda .
# The torch wheel comes from TORCH_INDEX first; the project's exact pin (torch==2.13.0) then accepts it.

ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim AS build
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
RUN pip install --index-url "${TORCH_INDEX}" torch==2.13.0
WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY wgan ./wgan
COPY service ./service
COPY app ./app
COPY worker ./worker
COPY wgan_service ./wgan_service
COPY migrations ./migrations
# The Python client, which `wgan-service submit` uses; the distribution maps it from client/.
COPY client/wgan_client ./client/wgan_client
# A plain install into the venv (not -e): the image needs no source tree, the migrations and the
# dashboard's files travel as package data. Every other dependency at the version the tests ran
# with; torch==2.13.0 there accepts the build above.
RUN pip install -c constraints.txt . \
    && python -c "import sklearn.datasets; sklearn.datasets.load_digits()"

FROM python:${PYTHON_VERSION}-slim AS runtime
# Production by default: it refuses SQLite and CORS '*', and serves /metrics only with WGAN_METRICS_TOKEN.
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 WGAN_ENVIRONMENT=production \
    WGAN_DATA_DIR=/data WGAN_CACHE_DIR=/data/cache WGAN_HOST=0.0.0.0 WGAN_LOG_JSON=true WGAN_WORKER_ALIVE_FILE=/tmp/wgan-worker-alive
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin wgan \
    && mkdir -p /data && chown wgan:wgan /data
COPY --from=build /opt/venv /opt/venv
WORKDIR /data
USER wgan
VOLUME ["/data"]
EXPOSE 8000
# For the default command (the API). docker-compose.yml gives workers their own check (their alive file)
# and the one-shot migration none.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 CMD ["wgan-service", "healthcheck", "api"]
CMD ["wgan-service", "serve"]
