"""OpenMP wait policy and thread count: the trainer's steps/s alone and beside a second training process.

OpenMP reads its settings when torch loads, so each setting runs in its own subprocess
(`python -m bench.threads CASE SECONDS CHUNK`, which prints its rates as JSON). The worker's own setting
is the bounded spin its command starts with (wgan_service.openmp) with its threads following the host's
free cores (worker.cores.ThreadGovernor), revisited every second here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field

from bench.common import REPO, Benchmark, Context, Result, median, num, table
from wgan_service import openmp

CASES = (("toy128-gp", 10), ("toy512-gp", 2))  # (case, steps per chunk)
ADAPT_SECONDS = 1.0
WARMUP_SECONDS = 2.0
ROUNDS = 3


@dataclass(frozen=True)
class Setting:
    label: str
    openmp: dict[str, str] = field(default_factory=dict)  # nothing: OpenMP's defaults
    threads: int = 2
    adapt: bool = False


SETTINGS = (
    Setting("OpenMP defaults, 2 threads (the hand loop's)"),
    Setting("PASSIVE, 2 threads (the API's; the worker's until now)", {"OMP_WAIT_POLICY": "PASSIVE"}),
    Setting("PASSIVE, 1 thread", {"OMP_WAIT_POLICY": "PASSIVE"}, threads=1),
    Setting("GOMP_SPINCOUNT 1e4, 2 threads, fixed", {"GOMP_SPINCOUNT": "10000"}),
    Setting("ACTIVE, 2 threads", {"OMP_WAIT_POLICY": "ACTIVE"}),
    Setting("the worker: GOMP_SPINCOUNT 1e4, threads follow the free cores", {"GOMP_SPINCOUNT": "10000"}, adapt=True),
)


def probe(case_name: str, seconds: float, chunk: int, adapt: bool) -> dict[str, object]:
    """Rates of the engine's trainer for `case_name` (as the speed benchmark builds it), one per round,
    and the threads it ended on."""
    import torch

    from bench.pairs import CASES_BY_NAME, TrainerSide, make_run
    from worker.cores import ThreadGovernor

    side = TrainerSide(make_run(CASES_BY_NAME[case_name]).trainer)
    governor = ThreadGovernor(torch.get_num_threads(), ADAPT_SECONDS if adapt else 0.0)

    def train(until: float) -> int:
        steps = 0
        while time.perf_counter() < until:
            side(chunk)
            governor.tick()
            steps += chunk
        return steps

    try:
        train(time.perf_counter() + WARMUP_SECONDS)  # warm-up, and time for the threads to settle
        rates = []
        for _ in range(ROUNDS):
            start = time.perf_counter()
            steps = train(start + seconds)
            rates.append(steps / (time.perf_counter() - start))
        return {"rates": rates, "threads": governor.threads}
    finally:
        side.close()


def _command(case: str, seconds: float, chunk: int, adapt: bool) -> list[str]:
    return [sys.executable, "-m", "bench.threads", case, str(seconds), str(chunk), "adapt" if adapt else "fixed"]


def measure(setting: Setting, case: str, chunk: int, seconds: float, copies: int) -> dict[str, object]:
    """Start `copies` identical probes at once; what the first reports."""
    env = openmp.unset()
    env.update({**setting.openmp, "WGAN_BENCH_THREADS": str(setting.threads)})
    procs = [
        subprocess.Popen(
            _command(case, seconds, chunk, setting.adapt), cwd=REPO, env=env, stdout=subprocess.PIPE, text=True
        )
        for _ in range(copies)
    ]
    outputs = [proc.communicate()[0] for proc in procs]
    if any(proc.returncode for proc in procs):
        raise RuntimeError(f"a probe failed: {[proc.returncode for proc in procs]}")
    first: dict[str, object] = json.loads(outputs[0])
    return first


def run(ctx: Context) -> Result:
    seconds = 1.0 if ctx.quick else 4.0
    rows = []
    for setting in SETTINGS:
        for case, chunk in CASES:
            alone = measure(setting, case, chunk, seconds, copies=1)
            shared = measure(setting, case, chunk, seconds, copies=2)
            rows.append(
                {
                    "setting": setting.label,
                    "openmp": setting.openmp,
                    "threads": setting.threads,
                    "adapt": setting.adapt,
                    "case": case,
                    "alone": alone["rates"],
                    "beside_another": shared["rates"],
                    "alone_median": median(alone["rates"]),  # type: ignore[arg-type]
                    "beside_another_median": median(shared["rates"]),  # type: ignore[arg-type]
                    "threads_alone": alone["threads"],
                    "threads_beside": shared["threads"],
                }
            )
    return {"seconds_per_round": seconds, "rounds": ROUNDS, "rows": rows}


WORKER = SETTINGS[-1].label
DEFAULTS = SETTINGS[0].label
PASSIVE = SETTINGS[1].label
# Not collapsing beside another: at least this share of what passive waiting (which never collapses) gets there.
BESIDE_BAR = 0.9


def verdicts(data: Result) -> list[dict[str, object]]:
    """Per case: the worker alone against OpenMP's defaults alone (bar 1.0x), and beside another against
    passive waiting beside another (bar BESIDE_BAR)."""
    by = {(r["setting"], r["case"]): r for r in data["rows"]}
    out = []
    for case, _ in CASES:
        worker, defaults, passive = by[(WORKER, case)], by[(DEFAULTS, case)], by[(PASSIVE, case)]
        alone = worker["alone_median"] / defaults["alone_median"]
        beside = worker["beside_another_median"] / passive["beside_another_median"]
        out.append({"case": case, "alone": alone, "beside": beside, "passed": alone >= 1.0 and beside >= BESIDE_BAR})
    return out


def render(data: Result) -> str:
    rows = [
        (
            r["setting"],
            r["case"],
            num(r["alone_median"], 1),
            str(r["threads_alone"]),
            num(r["beside_another_median"], 1),
            str(r["threads_beside"]),
        )
        for r in data["rows"]
    ]
    bars = [
        (v["case"], f"{v['alone']:.2f}x", f"{v['beside']:.2f}x", "met" if v["passed"] else "NOT met")
        for v in verdicts(data)
    ]
    return f"""\
The engine's trainer (built as in the speed benchmark: metrics every 10 steps, checkpoints every 500) in a
fresh process per setting, after {WARMUP_SECONDS:.0f} s of warm-up, {data["rounds"]} rounds of about
{data["seconds_per_round"]:.0f} s each, median generator steps/s; "beside another" runs two such processes at
once on the 2 cores (the rate of one of them, and the threads it ended on), as happens when a second job,
the API or a neighbour shares the host. These rates are not comparable with the other sections' (other runs,
other moments of a shared machine), only with each other.

{table(["OpenMP setting", "case", "alone, steps/s", "threads", "beside another, steps/s", "threads"], rows)}

The worker's setting against the bars: alone, at least OpenMP's defaults alone (1.0x); beside another, at
least {BESIDE_BAR}x of passive waiting beside another (the policy that never collapses).

{table(["case", "worker alone / defaults alone", f"worker beside / passive beside (bar {BESIDE_BAR}x)", "bars"], bars)}
"""


BENCHMARK = Benchmark(
    name="threads",
    title="OpenMP wait policy and thread count",
    summary="trainer steps/s under each OpenMP policy and the worker's adaptive threads, alone and beside another",
    run=run,
    render=render,
)


def main(argv: list[str]) -> int:
    import torch

    torch.set_num_threads(int(os.environ.get("WGAN_BENCH_THREADS", "2")))
    case, seconds, chunk, mode = argv[0], float(argv[1]), int(argv[2]), argv[3]
    print(json.dumps(probe(case, seconds, chunk, adapt=mode == "adapt")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
