"""Wall-clock time of `examsolver verify problems/` (one process, and `-j N` processes) against one
`examsolver solve problems/2022_z3.yaml`, whole processes, on the same machine in the same run.

Target (issue #11): the verify of every seed problem within 2× one solve.  Each command runs N times
(default 5), interleaved so that machine noise hits all of them alike; medians are reported, with the
seconds per problem kind from one verify's JSON report (where the time goes).  A timing script, not a
test.

    python benchmarks/bench_verify.py [-n 5] [-j 2] [--dir problems]
"""

from __future__ import annotations

import argparse
import collections
import compileall
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

import yaml
from bench_solve import once      # one timed whole process (this directory is on the path as a script's)

ROOT = Path(__file__).resolve().parent.parent


def seconds_by_kind(directory: Path) -> dict:
    """Seconds of each problem kind in one verify (the files' own times, from the JSON report)."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        once([sys.executable, "-m", "examsolver", "verify", str(directory), "--report", "json", str(report)])
        files = json.loads(report.read_text(encoding="utf-8"))["files"]
    kinds: dict = collections.Counter()
    for entry in files:
        data = yaml.safe_load((ROOT / entry["path"]).read_text(encoding="utf-8"))
        kinds[data.get("kind", "network")] += entry["seconds"]
    return dict(kinds.most_common())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--runs", type=int, default=5)
    parser.add_argument("-j", "--jobs", type=int, default=2, help="processes of the parallel verify")
    parser.add_argument("--dir", type=Path, default=ROOT / "problems")
    args = parser.parse_args()
    compileall.compile_dir(ROOT / "examsolver", quiet=1)     # as an installed package would be (bench_solve.py)
    python = [sys.executable, "-m", "examsolver"]
    cmds = {
        "solve 2022_z3": python + ["solve", str(ROOT / "problems" / "2022_z3.yaml"), "--lang", "en"],
        "verify (1 process)": python + ["verify", str(args.dir)],
        f"verify -j {args.jobs}": python + ["verify", "-j", str(args.jobs), str(args.dir)],
    }
    times: dict = {name: [] for name in cmds}
    for argv in cmds.values():       # warm the file cache, untimed
        once(argv)
    for _ in range(args.runs):
        for name, argv in cmds.items():
            times[name].append(once(argv))
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, {args.runs} runs each (interleaved; medians)\n")
    median = {name: statistics.median(values) for name, values in times.items()}
    for name, values in times.items():
        print(f"{name:<22} {median[name]:7.3f} s  (min {min(values):.3f}, max {max(values):.3f})")
    solve = median["solve 2022_z3"]
    print()
    for name in list(cmds)[1:]:
        print(f"{name} / solve = {median[name] / solve:5.2f}  (target ≤ 2)")
    print("\nseconds of one verify by problem kind:",
          ", ".join(f"{kind} {s:.2f}" for kind, s in seconds_by_kind(args.dir).items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
