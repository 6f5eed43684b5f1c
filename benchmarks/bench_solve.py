"""Wall-clock time of `examsolver solve problems/2022_z3.yaml` against the slides' PyTorch check
script and against a bare `import sympy`, on the same machine in the same run.

Targets (issue #11): the exact solution takes at most 0.2× the PyTorch script's time and at most
1.0× a bare `python -c "import sympy"`; `examsolver --help` at most 0.2× the solve.  Beside them, the
libraries a solve imports, imported alone (STACK): the floor under any solve with this stack.  Each command
runs N times (default 7), interleaved so that machine noise hits all of them alike; the median is
reported.  A timing script, not a test.

examsolver's bytecode is compiled first: torch and sympy were installed by pip, which compiles
theirs, while an editable install compiles ours only when Python may write it (not where
PYTHONDONTWRITEBYTECODE is set, as on our development machines), and compiling ~60 modules
from source at every start would add ~0.05 s that no user with a normal install pays.

    python benchmarks/bench_solve.py [-n 7] [--spec problems/2022_z3.yaml] [--instructions]

Wall-clock ratios on a shared machine move by ±0.03 from run to run.  `--instructions` counts
each command's instructions once under valgrind's callgrind instead (all threads; ~3 minutes,
mostly the PyTorch script): the same count every run, whatever else the machine is doing.
"""

from __future__ import annotations

import argparse
import compileall
import os
import re
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
    solve = [exe, "solve", str(spec), "--lang", "en"]
    return {
        "examsolver solve": solve,
        "PyTorch check script": [sys.executable, str(ROOT / "benchmarks" / "torch_check_z3.py")],
        "python -c 'import sympy'": [sys.executable, "-c", "import sympy"],
        "examsolver --help": [exe, "--help"],
        "the libraries alone": [sys.executable, "-c", _importer(imported_by(solve))],
        "python -c 'import typer'": [sys.executable, "-c", "import typer"],
    }


# The floors under the targets, shown beside them (not targets themselves): "the libraries alone" imports
# every module from other projects and the standard library that the solve imports, in its order (read
# from a run of the solve, so it follows the code), and `import typer` is the floor under `--help`.
_MODULES = """
import runpy, sys
sys.argv = {argv!r}
try:
    runpy.run_module("examsolver", run_name="__main__")
except SystemExit:
    pass
print("\\n".join(m for m in sys.modules if not m.startswith(("examsolver", "__main__", "__editable__"))),
      file=sys.stderr)
"""


def imported_by(argv: list) -> list:
    code = _MODULES.format(argv=argv)
    done = subprocess.run([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          cwd=ROOT, text=True, check=True)
    return done.stderr.split()


def _importer(modules: list) -> str:
    return (f"import importlib\nfor m in {modules!r}:\n    try:\n        importlib.import_module(m)\n"
            f"    except Exception:\n        pass")


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


def instructions(argv: list) -> int:
    """Instructions executed by the command (every thread), counted by callgrind."""
    done = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *argv],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT, text=True,
                          env={**os.environ, "COLUMNS": "120"})
    found = re.search(r"Collected\s*:\s*(\d+)", done.stderr)
    if done.returncode != 0 or not found:
        sys.exit(f"{' '.join(argv)} failed under valgrind:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def count(cmds: dict) -> dict:
    compileall.compile_dir(ROOT / "examsolver", quiet=1)
    return {name: [instructions(_unbudgeted(argv))] for name, argv in cmds.items()}


def _unbudgeted(argv: list) -> list:
    """The command without the 3 s CPU budget of a solve: under valgrind (~50× slower) the budget
    would stop the solve early and the count would be of a refusal."""
    if len(argv) > 1 and argv[1] == "solve":
        return [argv[0], "--max-seconds", "0", *argv[1:]]
    return argv


def report(measured: dict, unit: str) -> int:
    median = {name: statistics.median(values) for name, values in measured.items()}
    width = max(len(n) for n in measured)
    if unit == "instructions":
        print(f"{'command':<{width}}  {'instructions':>15}")
        for name in measured:
            print(f"{name:<{width}}  {median[name]:15,.0f}")
    else:
        print(f"{'command':<{width}}  {'median s':>9}  {'min s':>7}  {'max s':>7}  runs")
        for name, values in measured.items():
            print(f"{name:<{width}}  {median[name]:9.3f}  {min(values):7.3f}  {max(values):7.3f}  {len(values)}")
    solve, torch_script, sympy_import, help_, stack, typer = (median[k] for k in measured)
    ratio_torch, ratio_sympy, ratio_help = solve / torch_script, solve / sympy_import, help_ / solve
    ok_torch, ok_sympy, ok_help = ratio_torch <= 0.2, ratio_sympy <= 1.0, ratio_help <= 0.2
    print()
    print(f"solve / PyTorch script = {ratio_torch:.3f}  (target ≤ 0.20)  {'met' if ok_torch else 'MISSED'}")
    print(f"solve / import sympy   = {ratio_sympy:.3f}  (target ≤ 1.00)  {'met' if ok_sympy else 'MISSED'}")
    print(f"--help / solve         = {ratio_help:.3f}  (target ≤ 0.20)  {'met' if ok_help else 'MISSED'}")
    own = f"{solve - stack:+,.0f} instructions" if unit == "instructions" else f"{solve - stack:+.3f} s"
    print(f"libraries alone / PyTorch script = {stack / torch_script:.3f}  (the floor under a solve with this "
          f"stack; the solve's own part: {own})")
    print(f"import typer / solve   = {typer / solve:.3f}  (the floor under --help: --help is {help_ / typer:.2f}× it)")
    return 0 if ok_torch and ok_sympy and ok_help else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--runs", type=int, default=7, help="timed runs per command (median reported)")
    parser.add_argument("--spec", type=Path, default=ROOT / "problems" / "2022_z3.yaml", help="problem to solve")
    parser.add_argument("--instructions", action="store_true",
                        help="count instructions under valgrind (deterministic) instead of timing")
    args = parser.parse_args()
    if args.instructions and shutil.which("valgrind") is None:
        sys.exit("--instructions needs valgrind (apt-get install valgrind)")
    how = "instructions counted once each" if args.instructions else f"{args.runs} runs each"
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, {how}; examsolver's bytecode compiled first "
          f"(PYTHONDONTWRITEBYTECODE={os.environ.get('PYTHONDONTWRITEBYTECODE', 'unset')})\n")
    cmds = commands(args.spec)
    if args.instructions:
        return report(count(cmds), "instructions")
    return report(measure(cmds, args.runs), "seconds")


if __name__ == "__main__":
    sys.exit(main())
