"""The answers under the other convention at a degenerate input: recomputed from the first node the
convention touches (Solution.under) against solving the whole document again, on the scaling specs.

    python benchmarks/alternatives.py [-n 5] [--only cnn,mlp]

For each spec: the solve itself (no alternatives), then the alternatives both ways, interleaved, CPU
seconds of this process (medians), and whether both ways give the same results.  The CNN (28×28, 8
kernels, ReLU, max-pool) has ReLU zeros and tied max-pool windows, the MLP ReLU zeros.  A timing
script, not a test (tests/test_degeneracy.py checks that both ways agree).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def cpu(fn):
    start = time.process_time()
    value = fn()
    return time.process_time() - start, value


def measure(path: Path, runs: int) -> dict:
    from examsolver.diagnose import Resolver, _same
    from examsolver.diagnose.catalogue import CATALOGUE
    from examsolver.pipeline import solve_document
    from examsolver.spec.load import load_file

    doc = load_file(path)
    times = {"solve": [], "from the graph": [], "whole re-solve": []}
    same = True
    for _ in range(runs):
        seconds, solution = cpu(lambda: solve_document(doc, answers={}, with_alternatives=False))
        times["solve"].append(seconds)
        warned = {w.key for w in solution.warnings}
        entries = [e for e in CATALOGUE if warned.intersection(e.degeneracies)]
        found = {}
        for name, reuse in (("from the graph", True), ("whole re-solve", False)):
            resolver = Resolver(doc, solution, reuse=reuse)
            seconds, found[name] = cpu(lambda: [resolver.results(e) for e in entries])
            times[name].append(seconds)
        for a, b in zip(*found.values()):
            same &= (a is None) == (b is None) and (a is None or all(_same(a[k], b[k]) for k in b))
    return {"entries": [e.name for e in entries], "same": same, **times}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--runs", type=int, default=5)
    parser.add_argument("--only", default="cnn,mlp")
    args = parser.parse_args()
    import scaling

    from examsolver.spec import limits

    limits.configure(work=10**9, seconds=0)       # trusted benchmark specs beyond the default --max-work
    with tempfile.TemporaryDirectory() as tmp:
        paths = scaling.write_specs(Path(tmp), args.only.split(","))
        print(f"{args.runs} runs each, CPU seconds of this process (medians); the machine may be shared\n")
        for name, path in paths.items():
            found = measure(path, args.runs)
            solve, graph, whole = (statistics.median(found[k]) for k in ("solve", "from the graph", "whole re-solve"))
            print(f"{name}: alternatives {', '.join(found['entries'])}; same results both ways: {found['same']}")
            print(f"  solve without alternatives {solve:6.3f} s")
            print(f"  alternatives, whole re-solve {whole:6.3f} s   (solve + them: {solve + whole:6.3f} s)")
            print(f"  alternatives, from the graph {graph:6.3f} s   (solve + them: {solve + graph:6.3f} s)"
                  f"   {whole / graph:4.1f}× less for the alternatives")
    return 0


if __name__ == "__main__":
    sys.exit(main())
