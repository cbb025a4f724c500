"""Sampling over HTTP from a warm checkpoint against a bare forward pass + PNG encode in one process."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import numpy as np
import torch

from app.compute_gate import cores
from bench import raw_http
from bench.common import Benchmark, Context, Result, cpu_seconds, num, table, verdict
from bench.service_stack import service_stack, wait_finished
from service.settings import Settings
from tests.support.isolated import Stack
from tests.support.processes import ServiceProcess, start_api
from wgan.render import PNG_COMPRESS_LEVEL, encode_png, grid_png, image_grid, to_uint8
from wgan.sampling import Sampler, SamplingRuntime, load_sampler, sample

BAR = 1.15
BAR_KEPT = 0.90
N = 64
# A request for a few samples (a thumbnail, a preview): alone it costs a whole chunk of 64 rows; in line
# with others it can share one (app.sample_batches).
SMALL_N = 4
CONCURRENT = 16
# Gated windows, each between two bare ones: the host's own load moves from one window to the next by
# several percent (one gated window against the bare ones around it kept 83 % in one run and 87 % in the
# next, at the same code), so the ratio is taken per round and the median reported. Five rounds, not three:
# with three, rounds of one run spread 84-96 % and one run's median read 89.7 % where eight others read
# 90-93 %; the median of five moves less with one round's luck.
ROUNDS = 5
# Every window starts with this long untimed: a process idle through the other side's window comes back
# with its caches cold, and its first window read 46 req/s where the next ones read 48-50 (same API, same
# run; bare windows between). Both sides are warmed alike.
WARM_UP_SECONDS = 2.0
# Where a warm-up's request numbers start (each request is a new seed, warm-up or not).
WARM_UP_NUMBERS = 500_000
# One client's requests and the bare work, one of each in turn: over a lean raw connection (the bar's, as
# wrk or the 16 clients below ask), over httpx (whose own parsing of a 50 KiB answer is in its latency),
# the bare work on the API's runtime, and on the other runtime.
ONE_CLIENT = ("http", "httpx", "bare", "other")
# A 32×32 DCGAN at width 64 on the digits: the size the issue names.
SPEC = {
    "dataset": {"name": "digits"},
    "model": {"arch": "dcgan", "image_size": 32, "hidden_dim": 64},
    "batch_size": 16,
    "steps": 2,
    "checkpoint_every": 2,
    "evaluate": False,
}


def _percentiles(seconds: list[float]) -> dict[str, float]:
    ms = np.asarray(seconds) * 1000
    return {"p50": float(np.percentile(ms, 50)), "p99": float(np.percentile(ms, 99)), "n": len(seconds)}


def _http(client: httpx.Client, job_id: str, seed: int) -> float:
    start = time.perf_counter()
    response = client.get(f"/api/v1/jobs/{job_id}/samples", params={"n": N, "seed": seed})
    elapsed = time.perf_counter() - start
    response.raise_for_status()
    return elapsed


def _throughput(
    base_url: str, headers: dict[str, str], job_id: str, seconds: float, pid: int, n: int = N
) -> dict[str, Any]:
    """CONCURRENT clients asking one after another for `seconds` (bench.raw_http, so the clients leave the
    cores to the API): requests/s, each request's latency, and the API process's CPU per request (from
    /proc) beside the clients' own."""
    host = base_url.split("://", 1)[-1]

    def make(number: int) -> bytes:
        return raw_http.request("GET", f"/api/v1/jobs/{job_id}/samples?n={n}&seed={number}", host, headers)

    raw_http.run(base_url, CONCURRENT, WARM_UP_SECONDS, lambda number: make(WARM_UP_NUMBERS + number))
    cpu = cpu_seconds(pid)
    load = raw_http.run(base_url, CONCURRENT, seconds, make)
    served = max(1, len(load.latencies))
    return {
        "server_cpu_ms": 1000 * (cpu_seconds(pid) - cpu) / served,
        "client_cpu_ms": 1000 * load.client_cpu_seconds / served,
        "requests_per_second": len(load.latencies) / load.seconds,
        "errors": load.errors,
        "requests": len(load.latencies),
        **_percentiles(load.latencies),
    }


def _kept_in_rounds(
    sampler: Sampler, base_url: str, headers: dict[str, str], job_id: str, window: float, pid: int, workers: int
) -> tuple[list[float], list[dict[str, Any]]]:
    """The bare rate (on `workers` threads) and the gated API's, in turns: bare, gated, bare, … ROUNDS gated
    windows, each with a bare window on either side."""
    bare = [_bare_rate(sampler, window, workers, PNG_COMPRESS_LEVEL)]
    gated = []
    for _ in range(ROUNDS):
        gated.append(_throughput(base_url, headers, job_id, window, pid))
        bare.append(_bare_rate(sampler, window, workers, PNG_COMPRESS_LEVEL))
    return bare, gated


AS_CONFIGURED = "as configured"


def _variants(other: SamplingRuntime) -> dict[str, dict[str, str]]:
    """The API beside itself with one setting changed: what each is worth over HTTP."""
    return {
        AS_CONFIGURED: {},
        f"on {other}": {"WGAN_SAMPLE_RUNTIME": other},
        "reading its key, job and checkpoint for every request (`WGAN_SAMPLE_RECALL_SECONDS=0`)": {
            "WGAN_SAMPLE_RECALL_SECONDS": "0"
        },
        "its gate's threads unpinned (`WGAN_SAMPLE_PIN_THREADS=false`)": {"WGAN_SAMPLE_PIN_THREADS": "false"},
    }


def _side_by_side(
    stack: Stack, headers: dict[str, str], job_id: str, window: float, other: SamplingRuntime
) -> dict[str, dict[str, Any]]:
    """16 clients on one API process per variant (_variants), each started for this, in turns: every process
    in order, then in reverse, twice, so that each meets the host's drift alike. Each one's merged windows.
    The API as configured is a fresh process too, so that it differs from the others by its one setting and
    not also by its age (the one that served the runs above has served thousands of requests)."""
    variants = _variants(other)
    urls: dict[str, tuple[str, int]] = {}
    started: list[ServiceProcess] = []
    try:
        for number, (name, changed) in enumerate(variants.items()):
            process, url = start_api({**stack.env, **changed}, stack.log_dir, name=f"{stack.tag}-api-{number}")
            started.append(process)
            with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
                _http(client, job_id, seed=0)  # load the generator before timing
            urls[name] = (url, process.pid)
        windows: dict[str, list[dict[str, Any]]] = {name: [] for name in variants}
        for name in [*variants, *reversed(variants)] * 2:
            url, pid = urls[name]
            windows[name].append(_throughput(url, headers, job_id, window, pid))
    finally:
        for process in started:
            process.stop()
    return {name: _merged(runs) for name, runs in windows.items()}


def _merged(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """The rounds as one run: medians of the rates, latencies and CPU, the worst p99, every request."""
    return {
        "requests_per_second": float(np.median([run["requests_per_second"] for run in rounds])),
        "window_rates": [run["requests_per_second"] for run in rounds],
        "p50": float(np.median([run["p50"] for run in rounds])),
        "p99": max(run["p99"] for run in rounds),
        "server_cpu_ms": float(np.median([run["server_cpu_ms"] for run in rounds])),
        "client_cpu_ms": float(np.median([run["client_cpu_ms"] for run in rounds])),
        "requests": sum(run["requests"] for run in rounds),
        "errors": sum(run["errors"] for run in rounds),
    }


def _bare_rate(sampler: Sampler, seconds: float, workers: int, level: int, n: int = N) -> float:
    """Latent + forward pass + PNG grid per second, `workers` threads at once on one torch thread each:
    the most the API could serve on this machine with nothing of HTTP around it."""
    counts = [0] * workers

    def loop(index: int, seed: int, stop: float, counted: bool) -> None:
        while time.monotonic() < stop:
            seed += 1
            encode_png(np.ascontiguousarray(image_grid(to_uint8(sample(sampler, n, seed)))), level)
            if counted:
                counts[index] += 1

    def timed(seconds: float, counted: bool, first_seed: int) -> float:
        started, stop = time.perf_counter(), time.monotonic() + seconds
        threads = [
            threading.Thread(target=loop, args=(i, first_seed + 10_000_000 * i, stop, counted)) for i in range(workers)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return time.perf_counter() - started

    timed(WARM_UP_SECONDS, False, WARM_UP_NUMBERS)
    elapsed = timed(seconds, True, 10_000_000)
    return sum(counts) / elapsed


def _png_cost(sampler: Sampler, level: int, repeats: int) -> dict[str, float]:
    grids = [np.ascontiguousarray(image_grid(to_uint8(sample(sampler, N, seed)))) for seed in range(repeats)]
    start = time.perf_counter()
    sizes = [len(encode_png(grid, level)) for grid in grids]
    return {"ms": 1000 * (time.perf_counter() - start) / repeats, "bytes": float(np.mean(sizes))}


def run(ctx: Context) -> Result:
    turns = 20 if ctx.quick else 150
    # One owner's CONCURRENT clients, its cap on requests in progress raised to match: the run measures the
    # machine, not the per-owner cap (which answers 429 past it).
    with service_stack(ctx, max_concurrent_samples_per_owner=str(CONCURRENT)) as stack:
        api = stack.api()
        stack.worker()
        key = stack.key()
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=stack.api_url, headers=headers, timeout=60) as client:
            job = client.post("/api/v1/jobs", json=SPEC).json()
            done = wait_finished(client, job["id"], timeout=600)
            assert done["status"] == "succeeded", done["error"]
            checkpoint = client.get(f"/api/v1/jobs/{job['id']}/checkpoints").json()["items"][-1]
        # Cold: the first request of a freshly started API process (it loads the generator).
        api.stop()
        stack.processes.remove(api)
        stack.api()
        with httpx.Client(base_url=stack.api_url, headers=headers, timeout=60) as client:
            cold = _http(client, job["id"], seed=0) * 1000
            # The same checkpoint, loaded here, for the bare baseline at the API's thread count (1).
            key_path = stack.rows("SELECT artifact_key FROM checkpoints WHERE id = :id", id=checkpoint["id"])[0][0]
            # The API's runtime (WGAN_SAMPLE_RUNTIME) for the bare work; the other one beside it, for the record.
            runtime: SamplingRuntime = Settings.model_fields["sample_runtime"].default
            other: SamplingRuntime = "torch" if runtime == "onnxruntime" else "onnxruntime"
            manifest = stack.root / "artifacts" / key_path
            sampler = load_sampler(manifest, runtime=runtime)
            other_sampler = load_sampler(manifest, runtime=other)
            threads = torch.get_num_threads()
            torch.set_num_threads(1)
            raw = raw_http.Connection(stack.api_url)
            try:
                times: dict[str, list[float]] = {side: [] for side in ONE_CLIENT}
                seed = 1
                host = stack.api_url.split("://", 1)[-1]
                for _ in range(turns):  # one of each in turn: every side sees the same machine load
                    for side in ONE_CLIENT:
                        seed += 1
                        if side == "http":
                            target = f"/api/v1/jobs/{job['id']}/samples?n={N}&seed={seed}"
                            status, seconds = raw.ask(raw_http.request("GET", target, host, headers))
                            assert status == 200, status
                        elif side == "httpx":
                            seconds = _http(client, job["id"], seed)
                        else:
                            start = time.perf_counter()
                            grid_png(to_uint8(sample(sampler if side == "bare" else other_sampler, N, seed)))
                            seconds = time.perf_counter() - start
                        times[side].append(seconds)
            finally:
                raw.close()
                torch.set_num_threads(threads)
            # Many clients at once: the API with its gate (a pass per core, the rest in line) against the
            # bare work at one thread per core, and against the same API with the gate opened to every
            # client (passes thrashing on the cores, as before the gate), in turns.
            window = 5 if ctx.quick else 10
            workers = cores()
            torch.set_num_threads(1)
            try:
                levels = {level: _png_cost(sampler, level, 20) for level in (PNG_COMPRESS_LEVEL, 6)}
                bare, rounds = _kept_in_rounds(
                    sampler, stack.api_url, headers, job["id"], window, stack.processes[-1].pid, workers
                )
                small = {
                    "shared": _throughput(stack.api_url, headers, job["id"], window, stack.processes[-1].pid, SMALL_N),
                    "bare": _bare_rate(sampler, window, workers, PNG_COMPRESS_LEVEL, SMALL_N),
                }
            finally:
                torch.set_num_threads(threads)
        # The same API with one setting changed, beside this one: what that setting alone changes, over HTTP.
        variants = _side_by_side(stack, headers, job["id"], window, other)
        api = stack.processes.pop()
        api.stop()
        # The same small requests with every request on a pass of its own, as before passes were shared.
        stack.env["WGAN_SAMPLE_SHARE_PASSES"] = "false"
        alone_api = stack.api()
        with httpx.Client(base_url=stack.api_url, headers=headers, timeout=60) as client:
            _http(client, job["id"], seed=0)  # load the generator before timing
        small["alone"] = _throughput(stack.api_url, headers, job["id"], window, alone_api.pid, SMALL_N)
        stack.processes.remove(alone_api)
        alone_api.stop()
        del stack.env["WGAN_SAMPLE_SHARE_PASSES"]
        stack.env["WGAN_SAMPLE_CONCURRENCY"] = str(CONCURRENT)
        ungated_api = stack.api()
        with httpx.Client(base_url=stack.api_url, headers=headers, timeout=60) as client:
            _http(client, job["id"], seed=0)  # load the generator before timing
        ungated = _throughput(stack.api_url, headers, job["id"], window, ungated_api.pid)
    http_p, httpx_p, bare_p, other_p = (_percentiles(times[side]) for side in ONE_CLIENT)
    ratio = http_p["p50"] / bare_p["p50"]
    bare_rate = float(np.mean(bare))
    kept_rounds = [run["requests_per_second"] / float(np.mean(bare[i : i + 2])) for i, run in enumerate(rounds)]
    kept = float(np.median(kept_rounds))
    gated = _merged(rounds)
    return {
        "http": http_p,
        "httpx": httpx_p,
        "bare": bare_p,
        "runtime": runtime,
        "other_runtime": {"name": other, **other_p},
        "ratio_p50": ratio,
        "ratio_p99": http_p["p99"] / bare_p["p99"],
        "cold_ms": cold,
        "workers": workers,
        "bare_rate": bare_rate,
        "bare_rates": bare,
        "throughput": gated,
        "rounds": rounds,
        "ungated": ungated,
        "variants": variants,
        "kept": kept,
        "kept_rounds": kept_rounds,
        "warm_up_seconds": WARM_UP_SECONDS,
        "png": {str(level): cost for level, cost in levels.items()},
        "small": small,
        "passed": ratio <= BAR
        and kept >= BAR_KEPT
        and gated["p99"] <= ungated["p99"]
        and gated["errors"] == ungated["errors"] == 0,
    }


def _small(data: Result) -> list[str]:
    small = data.get("small")
    if small is None:
        return []
    shared, alone, bare = small["shared"], small["alone"], small["bare"]

    def served(run: dict[str, Any]) -> str:
        return (
            f"{num(run['requests_per_second'], 1)} req/s; p50 {num(run['p50'], 0)} ms, p99 {num(run['p99'], 0)} ms; "
            f"API CPU {num(run['server_cpu_ms'], 1)} ms/request ({run['requests']} requests, {run['errors']} errors)"
        )

    return [
        "",
        f"{CONCURRENT} clients asking for n = {SMALL_N} each, the same way: alone, such a request costs a whole "
        "chunk of 64 rows, as the bare work below does; in line with others for the same generator, it rides "
        "in the padding of the first one's chunk (`WGAN_SAMPLE_SHARE_PASSES`, on by default), each still "
        "answered with its own bytes.",
        "",
        table(
            ["measure", "value"],
            [
                (f"bare work for n = {SMALL_N}, {data['workers']} threads", f"{num(bare, 1)} /s"),
                ("HTTP, passes shared", served(shared)),
                ("HTTP, a pass per request", served(alone)),
                (
                    "shared / a pass per request",
                    f"{num(shared['requests_per_second'] / alone['requests_per_second'], 2)}× the requests/s",
                ),
            ],
        ),
    ]


def _windows(run: dict[str, Any]) -> str:
    # Each window's own rate: one API's windows spread by several percent on this host, as much as a
    # setting worth a few percent changes them.
    rates = run.get("window_rates")
    return "" if rates is None else " (windows: " + ", ".join(num(rate, 1) for rate in rates) + ")"


def _variant_rows(data: Result) -> list[tuple[str, str, str]]:
    """The gated API as configured and with one setting changed, each its own process, in turns."""
    variants = data.get("variants")
    if variants is None:
        return []
    configured = variants[AS_CONFIGURED]["requests_per_second"]
    return [
        (
            f"HTTP, {CONCURRENT} clients, gated, the API {name}"
            + (f" (on {data['runtime']})" if name == AS_CONFIGURED else "")
            + f", beside the other {len(variants) - 1} in turns",
            f"{num(run['requests_per_second'], 1)} req/s"
            + ("" if name == AS_CONFIGURED else f" = {run['requests_per_second'] / configured:.3f}× as configured")
            + _windows(run)
            + f"; p50 {num(run['p50'], 0)} ms, p99 {num(run['p99'], 0)} ms; "
            f"API CPU {num(run['server_cpu_ms'], 1)} ms/request ({run['requests']} requests, {run['errors']} errors)",
            "–",
        )
        for name, run in variants.items()
    ]


def render(data: Result) -> str:
    http, bare = data["http"], data["bare"]
    rows = [
        (
            "GET /samples?n=64 (PNG), warm, distinct seeds, a raw keep-alive connection",
            num(http["p50"], 1),
            num(http["p99"], 1),
            http["n"],
        ),
    ]
    httpx_p = data.get("httpx")
    if httpx_p is not None:
        rows.append(("the same over httpx", num(httpx_p["p50"], 1), num(httpx_p["p99"], 1), httpx_p["n"]))
    rows += [
        (
            f"bare forward pass + PNG encode, same checkpoint, 1 thread, {data['runtime']} (the API's)",
            num(bare["p50"], 1),
            num(bare["p99"], 1),
            bare["n"],
        ),
    ]
    other = data["other_runtime"]
    rows.append((f"the same on {other['name']}", num(other["p50"], 1), num(other["p99"], 1), other["n"]))
    gated, ungated = data["throughput"], data["ungated"]
    kept = data["kept"]
    png = data["png"]
    levels = sorted(png, key=int)
    return "\n".join(
        [
            f"A 32×32 DCGAN (width 64) checkpoint; n = {N}; each request a new seed, so no response is reused. "
            "The API samples on one thread (`WGAN_API_TORCH_THREADS`) of its runtime (`WGAN_SAMPLE_RUNTIME`: "
            "the generator's ONNX graph on onnxruntime, or torch), so the baseline does too, and the other "
            "runtime beside it; all take turns, one request or pass of each at a time. The bar's client is a "
            "raw keep-alive connection (`bench/raw_http.py`), as wrk or the 16 clients below: httpx's own work "
            "on a 50 KiB answer is in its latency, not the service's, and is shown beside it. In these turns "
            "each request over the raw connection comes about 130 ms after the API last read the key, job and "
            "checkpoint, past the 0.1 s it answers from that read (`WGAN_SAMPLE_RECALL_SECONDS`), so every one "
            "of them reads again, on a database process idle since; the httpx request right after it is "
            "answered from the read.",
            "",
            table(["what", "p50 ms", "p99 ms", "requests"], rows),
            "",
            f"{CONCURRENT} clients at once (one keep-alive connection each on asyncio, `bench/raw_http.py`, "
            "so that the clients leave the two cores to the API), each asking again as soon as it has its "
            "answer, against the bare "
            f"work (latent, forward pass, PNG) on {data['workers']} threads, one per core, in the same run: with "
            "the API's gate (`WGAN_SAMPLE_CONCURRENCY`, default one pass per core, the rest wait in line) and "
            f"with the gate opened to all {CONCURRENT} (every pass at once, as before the gate). "
            f"The gated API and the bare work take turns, {len(data['kept_rounds'])} gated windows each "
            "between two bare ones, and each gated window is set against the mean of the bare windows on "
            "either side: the host's own load moves from window to window; the table gives the median "
            "round, the worst p99 and every request."
            + (
                f" Every window, HTTP or bare, starts with {data['warm_up_seconds']:g} s untimed: a process "
                "idle through the other side's window comes back with its caches cold."
                if data.get("warm_up_seconds")
                else ""
            ),
            "",
            table(
                ["measure", "value", "bar"],
                [
                    (
                        "HTTP p50 / bare p50, one client",
                        num(data["ratio_p50"], 3),
                        f"≤ {BAR}× {verdict(data['ratio_p50'] <= BAR)}",
                    ),
                    ("HTTP p99 / bare p99, one client", num(data["ratio_p99"], 3), "–"),
                    (
                        "cold first request after the API starts (loads the generator)",
                        f"{num(data['cold_ms'], 0)} ms",
                        "–",
                    ),
                    (
                        f"bare rate, {data['workers']} threads",
                        f"{num(data['bare_rate'], 1)} /s, {num(1000 * data['workers'] / data['bare_rate'], 1)} "
                        "ms of a core each (each window: "
                        + ", ".join(num(rate, 1) for rate in data["bare_rates"])
                        + ")",
                        "–",
                    ),
                    (
                        f"HTTP, {CONCURRENT} clients, gated",
                        f"{num(gated['requests_per_second'], 1)} req/s = {100 * kept:.0f}% of bare (rounds: "
                        + ", ".join(f"{100 * r:.0f}%" for r in data["kept_rounds"])
                        + "); p50 "
                        f"{num(gated['p50'], 0)} ms, p99 {num(gated['p99'], 0)} ms; API CPU "
                        f"{num(gated['server_cpu_ms'], 1)} ms/request, clients "
                        f"{num(gated['client_cpu_ms'], 2)} ms ({gated['requests']} requests, "
                        f"{gated['errors']} errors)",
                        f"≥ {100 * BAR_KEPT:.0f}% {verdict(kept >= BAR_KEPT)}",
                    ),
                    (
                        f"HTTP, {CONCURRENT} clients, ungated",
                        f"{num(ungated['requests_per_second'], 1)} req/s; p50 {num(ungated['p50'], 0)} ms, p99 "
                        f"{num(ungated['p99'], 0)} ms; API CPU {num(ungated['server_cpu_ms'], 1)} ms/request "
                        f"({ungated['requests']} requests, {ungated['errors']} errors)",
                        f"gated p99 ≤ this {verdict(gated['p99'] <= ungated['p99'])}",
                    ),
                    *_variant_rows(data),
                    *(
                        (
                            f"PNG of one grid at zlib level {level}"
                            + (" (the API's)" if level == str(PNG_COMPRESS_LEVEL) else ""),
                            f"{num(png[level]['ms'], 2)} ms, {png[level]['bytes'] / 1024:.0f} KiB",
                            "–",
                        )
                        for level in levels
                    ),
                ],
            ),
            *_small(data),
        ]
    )


BENCHMARK = Benchmark(
    name="sampling",
    title="Sampling: warm requests against a bare forward pass",
    summary="sample latency over HTTP vs the bare forward pass + PNG, cold start, 16-client throughput",
    run=run,
    render=render,
)
