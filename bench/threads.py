"""OpenMP wait policy and thread count: the trainer's steps/s alone and beside a second training process.

OpenMP reads its settings when torch loads, so each setting runs in its own subprocess
(`python -m bench.threads CASE SECONDS`, which prints its rates as JSON).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from bench.common import REPO, Benchmark, Context, Result, median, num, table

CASES = (("toy128-gp", 10), ("toy512-gp", 2))  # (case, steps per chunk)
SETTINGS: tuple[tuple[str, str, int], ...] = (
    ("PASSIVE, 2 threads (what the worker and the benchmarks use)", "PASSIVE", 2),
    ("PASSIVE, 1 thread", "PASSIVE", 1),
    ("ACTIVE, 2 threads", "ACTIVE", 2),
)
ROUNDS = 3


def probe(case_name: str, seconds: float, chunk: int) -> list[float]:
    """Rates of the engine's trainer for `case_name` (as the speed benchmark builds it), one per round."""
    from bench.pairs import CASES_BY_NAME, TrainerSide, make_run

    side = TrainerSide(make_run(CASES_BY_NAME[case_name]).trainer)
    try:
        side(chunk)  # warm-up
        rates = []
        for _ in range(ROUNDS):
            steps, start = 0, time.perf_counter()
            while time.perf_counter() - start < seconds:
                side(chunk)
                steps += chunk
            rates.append(steps / (time.perf_counter() - start))
        return rates
    finally:
        side.close()


def _command(case: str, seconds: float, chunk: int) -> list[str]:
    return [sys.executable, "-m", "bench.threads", case, str(seconds), str(chunk)]


def measure(policy: str, threads: int, case: str, chunk: int, seconds: float, copies: int) -> list[float]:
    """Start `copies` identical probes at once; the rates of the first."""
    env = {**os.environ, "OMP_WAIT_POLICY": policy, "WGAN_BENCH_THREADS": str(threads)}
    procs = [
        subprocess.Popen(_command(case, seconds, chunk), cwd=REPO, env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(copies)
    ]
    outputs = [proc.communicate()[0] for proc in procs]
    if any(proc.returncode for proc in procs):
        raise RuntimeError(f"a probe failed: {[proc.returncode for proc in procs]}")
    rates: list[float] = json.loads(outputs[0])
    return rates


def run(ctx: Context) -> Result:
    seconds = 1.0 if ctx.quick else 4.0
    rows = []
    for label, policy, threads in SETTINGS:
        for case, chunk in CASES:
            alone = measure(policy, threads, case, chunk, seconds, copies=1)
            shared = measure(policy, threads, case, chunk, seconds, copies=2)
            rows.append(
                {
                    "setting": label,
                    "policy": policy,
                    "threads": threads,
                    "case": case,
                    "alone": alone,
                    "beside_another": shared,
                    "alone_median": median(alone),
                    "beside_another_median": median(shared),
                }
            )
    return {"seconds_per_round": seconds, "rounds": ROUNDS, "rows": rows}


def render(data: Result) -> str:
    rows = [
        (r["setting"], r["case"], num(r["alone_median"], 1), num(r["beside_another_median"], 1)) for r in data["rows"]
    ]
    return f"""\
The engine's trainer (built as in the speed benchmark: metrics every 10 steps, checkpoints every 500) in a
fresh process per setting, {data["rounds"]} rounds of about {data["seconds_per_round"]:.0f} s each, median
generator steps/s; "beside another" runs two such processes at once on the 2 cores (the rate of one of them),
as happens when a second job, the API or a neighbour shares the host. These rates are not comparable with the
other sections' (other runs, other moments of a shared machine), only with each other.

{table(["OpenMP setting", "case", "alone, steps/s", "beside another, steps/s"], rows)}
"""


BENCHMARK = Benchmark(
    name="threads",
    title="OpenMP wait policy and thread count",
    summary="trainer steps/s under OMP_WAIT_POLICY PASSIVE/ACTIVE and 1 or 2 threads, alone and beside another",
    run=run,
    render=render,
)


def main(argv: list[str]) -> int:
    import torch

    torch.set_num_threads(int(os.environ.get("WGAN_BENCH_THREADS", "2")))
    case, seconds, chunk = argv[0], float(argv[1]), int(argv[2])
    print(json.dumps(probe(case, seconds, chunk)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
