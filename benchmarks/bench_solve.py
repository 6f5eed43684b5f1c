"""Wall-clock time of `examsolver solve problems/2022_z3.yaml` against the slides' PyTorch check
script and against a bare `import sympy`, on the same machine in the same run.

Targets (DESIGN.md): the exact solution takes at most 1/4 of the PyTorch script's time, and at
most 1.3× a bare `python -c "import sympy"`.  Each command runs N times (default 7), interleaved
so that machine noise hits all of them alike; the median is reported.  A timing script, not a test.

examsolver's bytecode is compiled first: torch and sympy were installed by pip, which compiles
theirs, while an editable install compiles ours only when Python may write it (not where
PYTHONDONTWRITEBYTECODE is set, as on our development machines), and compiling ~60 modules
from source at every start would add ~0.05 s that no user with a normal install pays.

    python benchmarks/bench_solve.py [-n 7] [--spec problems/2022_z3.yaml]
"""

from __future__ import annotations

import argparse
import compileall
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def commands(spec: Path) -> dict:
    exe = shutil.which("examsolver")
    if exe is None:
        sys.exit("the examsolver console script is not installed (pip install -e .)")
    return {
        "examsolver solve": [exe, "solve", str(spec), "--lang", "en"],
        "PyTorch check script": [sys.executable, str(ROOT / "benchmarks" / "torch_check_z3.py")],
        "python -c 'import sympy'": [sys.executable, "-c", "import sympy"],
    }


def once(argv: list) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT,
                          env={**os.environ, "COLUMNS": "120"})
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed:\n{done.stderr.decode(errors='replace')}")
    return elapsed


def measure(cmds: dict, runs: int) -> dict:
    compileall.compile_dir(ROOT / "examsolver", quiet=1)
    times: dict = {name: [] for name in cmds}
    for argv in cmds.values():            # warm the file cache once, untimed
        once(argv)
    for _ in range(runs):
        for name, argv in cmds.items():
            times[name].append(once(argv))
    return times


def report(times: dict) -> int:
    median = {name: statistics.median(values) for name, values in times.items()}
    width = max(len(n) for n in times)
    print(f"{'command':<{width}}  {'median s':>9}  {'min s':>7}  {'max s':>7}  runs")
    for name, values in times.items():
        print(f"{name:<{width}}  {median[name]:9.3f}  {min(values):7.3f}  {max(values):7.3f}  {len(values)}")
    solve, torch_script, sympy_import = (median[k] for k in times)
    ratio_torch, ratio_sympy = solve / torch_script, solve / sympy_import
    ok_torch, ok_sympy = ratio_torch <= 0.25, ratio_sympy <= 1.3
    print()
    print(f"solve / PyTorch script = {ratio_torch:.3f}  (target ≤ 0.25)  {'met' if ok_torch else 'MISSED'}")
    print(f"solve / import sympy   = {ratio_sympy:.3f}  (target ≤ 1.30)  {'met' if ok_sympy else 'MISSED'}")
    return 0 if ok_torch and ok_sympy else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--runs", type=int, default=7, help="timed runs per command (median reported)")
    parser.add_argument("--spec", type=Path, default=ROOT / "problems" / "2022_z3.yaml", help="problem to solve")
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, {args.runs} runs each; examsolver's bytecode "
          f"compiled first (PYTHONDONTWRITEBYTECODE={os.environ.get('PYTHONDONTWRITEBYTECODE', 'unset')})\n")
    return report(measure(commands(args.spec), args.runs))


if __name__ == "__main__":
    sys.exit(main())
