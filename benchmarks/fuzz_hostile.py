"""Long fuzz run (issue #12): 10⁵ hostile inputs, reported as inputs tried, internal errors, runs
over 2 s and peak memory.

    nice -n 10 python benchmarks/fuzz_hostile.py --inputs 100000 [--seed 0] [--chunk 2000] [--jobs 2]
    python benchmarks/fuzz_hostile.py --show 12345          # the input number 12345, to reproduce it

Runs over 2 s are counted by wall clock and by CPU time (a shared machine stretches the wall clock).
Inputs come from tests/fuzzing.py (the generator of the bounded fuzz tests): of every 10, six are
expressions (parsed as numbers and as symbolic expressions), three mutated problem files (solved and
rendered) and one answer file (checked with verify).  Input i is drawn from Random(f"{seed}:{i}"), so
every input can be shown again.  Each chunk runs in a child process under the limits of the command
line (CPU budget, 1 GB address space), so a hard crash is counted too and a leak cannot hide.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

SLOW = 2.0


def make_input(seed: int, i: int, problems: list):
    import fuzzing

    rng = random.Random(f"{seed}:{i}")
    kind = ("expr",) * 6 + ("spec",) * 3 + ("answers",)
    kind = kind[i % 10]
    if kind == "expr":
        return kind, fuzzing.random_expression(rng)
    name, data = problems[rng.randrange(len(problems))]
    if kind == "spec":
        return kind, fuzzing.mutate(data, rng)
    return kind, (data, fuzzing.random_answers(list(data.get("answers", {})), rng))


def run_input(kind, value, tmp: Path):
    import fuzzing

    if kind == "expr":
        return fuzzing.run_expression(value)
    if kind == "spec":
        return fuzzing.run_spec(value)
    return fuzzing.run_answers(*value, tmp)


def child(seed: int, start: int, count: int, progress: Path) -> None:
    import fuzzing
    from examsolver.spec import limits

    limits.limit_memory()
    problems = fuzzing.load_problems()
    for name, data in problems:        # warm up: imports and first builds are not an input's time
        fuzzing.run_spec(data)
    summary = {"tried": 0, "ok": 0, "refused": 0, "internal": [], "slow": [], "slow_cpu": [], "max_cpu": 0.0,
               "by_kind": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(start, start + count):
            progress.write_text(str(i))
            kind, value = make_input(seed, i, problems)
            began, cpu = time.perf_counter(), time.process_time()
            outcome, err = run_input(kind, value, Path(tmp))
            seconds, cpu = time.perf_counter() - began, time.process_time() - cpu
            summary["tried"] += 1
            summary["by_kind"][kind] = summary["by_kind"].get(kind, 0) + 1
            if outcome == "internal":
                summary["internal"].append([i, kind, f"{type(err).__name__}: {err}"[:300]])
            else:
                summary[outcome] += 1
            if seconds > SLOW:     # wall clock: on a shared machine, compare with the CPU time
                summary["slow"].append([i, kind, round(seconds, 2), round(cpu, 2)])
            if cpu > SLOW:
                summary["slow_cpu"].append([i, kind, round(seconds, 2), round(cpu, 2)])
            summary["max_cpu"] = max(summary["max_cpu"], cpu)
    summary["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(summary))


def parent(args) -> None:
    """Chunks of inputs in child processes, `--jobs` of them at a time; running totals after each chunk."""
    from concurrent.futures import ThreadPoolExecutor

    total = {"tried": 0, "ok": 0, "refused": 0, "internal": [], "slow": [], "slow_cpu": [], "max_cpu": 0.0,
             "crashes": [], "peak_rss_mb": 0.0, "by_kind": {}}
    began = time.time()
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(max_workers=args.jobs) as pool:
        starts = range(0, args.inputs, args.chunk)
        runs = pool.map(lambda start: _run_chunk(args, start, Path(tmp) / f"progress{start}"), starts)
        for start, (run, progress) in zip(starts, runs):
            _add_chunk(total, args, start, run, progress)
            elapsed = time.time() - began
            print(f"{total['tried']:>7} inputs  {len(total['internal'])} internal  {len(total['crashes'])} crashes  "
                  f"{len(total['slow'])} over {SLOW:g} s ({len(total['slow_cpu'])} of CPU)  peak {total['peak_rss_mb']:.0f} MB  {elapsed:.0f} s",
                  file=sys.stderr, flush=True)
            if args.report:
                Path(args.report).write_text(json.dumps(total, indent=1))
    print(json.dumps(total, indent=1))


def _run_chunk(args, start: int, progress: Path):
    count = min(args.chunk, args.inputs - start)
    run = subprocess.run([sys.executable, __file__, "--child", str(start), str(count), str(progress),
                          "--seed", str(args.seed)], capture_output=True, text=True)
    return run, progress


def _add_chunk(total: dict, args, start: int, run, progress: Path) -> None:
    lines = run.stdout.strip().splitlines()
    if run.returncode != 0 or not lines:
        at = int(progress.read_text()) if progress.exists() else start
        total["crashes"].append([at, run.returncode, run.stderr.strip()[-300:]])
        total["tried"] += at - start + 1
        return
    part = json.loads(lines[-1])
    for key in ("tried", "ok", "refused"):
        total[key] += part[key]
    for key in ("internal", "slow", "slow_cpu"):
        total[key] += part[key]
    total["max_cpu"] = max(total["max_cpu"], part["max_cpu"])
    for kind, n in part["by_kind"].items():
        total["by_kind"][kind] = total["by_kind"].get(kind, 0) + n
    total["peak_rss_mb"] = max(total["peak_rss_mb"], part["peak_rss_mb"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inputs", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--chunk", type=int, default=2000)
    parser.add_argument("--jobs", type=int, default=1, help="chunks run at once, each in its own process")
    parser.add_argument("--report", help="also write the running totals to this JSON file")
    parser.add_argument("--show", type=int, help="print input number N and how it is answered")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    if args.child:
        child(args.seed, int(args.child[0]), int(args.child[1]), Path(args.child[2]))
    elif args.show is not None:
        import fuzzing

        kind, value = make_input(args.seed, args.show, fuzzing.load_problems())
        print(kind, json.dumps(value, ensure_ascii=False, default=str, indent=1))
        with tempfile.TemporaryDirectory() as tmp:
            print(run_input(kind, value, Path(tmp)))
    else:
        parent(args)


if __name__ == "__main__":
    main()
