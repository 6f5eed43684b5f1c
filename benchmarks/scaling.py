"""Scaling specs: exam-sized networks far larger than the seeds, each with a float64 PyTorch script of the
same network, timed against each other (medians of interleaved runs, whole processes).

    python benchmarks/scaling.py [-n 5] [--only rnn,mlp,cnn] [--keep DIR]

- rnn: tanh RNN, input 3, hidden 4, 12 steps, softmax output over 3 classes, cross-entropy summed over the
  steps, BPTT gradients of every parameter;
- mlp: MLP 784→100→10 (ReLU, softmax, cross-entropy), one SGD step with lr = 1/10;
- cnn: 28×28 image, 8 kernels 3×3, ReLU, 2×2 max-pool, FC-10, softmax, cross-entropy, gradients with
  respect to the kernels.

Images are small integers / 10, weights small integers / 100 (or / 10): exact rationals, so the
ReLU masks and max-pool winners hit real ties, as in the exams.  The spec is written as JSON (which
YAML reads as it is); the PyTorch script reads the same file, so both solve the same network.
Targets (issue #11): each exact/certified solve takes at most the PyTorch script's whole-process time
and under 2 s of CPU.  A timing script, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def _q(ints: np.ndarray, den: int):
    """Integers over den as the spec's exact text ("3/10"), nested like the array."""
    return np.vectorize(lambda k: str(int(k)) if k % den == 0 else f"{int(k)}/{den}", otypes=[object])(ints).tolist()


def rnn_spec(rng) -> dict:
    H, d, T, K = 4, 3, 12, 3
    w = lambda *shape: _q(rng.integers(-5, 6, shape), 10)
    return {
        "id": "scaling_rnn", "kind": "recurrent",
        "cell": {"rnn": {"W_hh": w(H, H), "W_xh": w(H, d), "b_h": w(H), "h0": [0] * H, "activation": "tanh"}},
        "output": {"W_hy": w(K, H), "b_y": w(K), "activation": "softmax"},
        "inputs": w(T, d), "loss": "cross_entropy", "loss_over": "sum",
        "targets": [int(k) for k in rng.integers(0, K, T)],
        "tasks": ["forward", {"gradient": {"wrt": ["W_hh", "W_xh", "b_h", "W_hy", "b_y"]}}],
    }


def mlp_spec(rng) -> dict:
    return {
        "id": "scaling_mlp",
        "model": [{"linear": {"name": "fc1", "W": _q(rng.integers(-9, 10, (100, 784)), 100),
                              "b": _q(rng.integers(-9, 10, 100), 100)}},
                  "relu",
                  {"linear": {"name": "fc2", "W": _q(rng.integers(-9, 10, (10, 100)), 100),
                              "b": _q(rng.integers(-9, 10, 10), 100)}},
                  "softmax"],
        "loss": "cross_entropy",
        "data": {"x": _q(rng.integers(0, 10, 784), 10), "y": 3},
        "tasks": ["forward", {"train_step": {"lr": "1/10"}}],
    }


def cnn_spec(rng) -> dict:
    return {
        "id": "scaling_cnn",
        "model": [{"conv2d": {"name": "conv1", "kernels": _q(rng.integers(-5, 6, (8, 3, 3)), 10)}},
                  "relu",
                  {"max_pool2d": {"name": "pool1", "kernel_size": 2, "stride": 2}},
                  "flatten",
                  {"linear": {"name": "fc2", "W": _q(rng.integers(-9, 10, (10, 8 * 13 * 13)), 100)}},
                  "softmax"],
        "loss": "cross_entropy",
        "data": {"x": _q(rng.integers(0, 10, (28, 28)), 10), "y": 7},
        "tasks": ["forward", {"gradient": {"wrt": ["conv1.W"]}}],
    }


SPECS = {"rnn": rnn_spec, "mlp": mlp_spec, "cnn": cnn_spec}


def write_specs(out: Path, names) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name in names:
        path = out / f"scaling_{name}.yaml"
        path.write_text(json.dumps(SPECS[name](np.random.default_rng(11))) + "\n", encoding="utf-8")
        paths[name] = path
    return paths


TRUSTED = ("--max-work", str(10**9), "--max-steps", "100")     # the specs go beyond the default limits


def commands(paths: dict) -> dict:
    cmds = {}
    for name, path in paths.items():
        cmds[f"{name}: examsolver solve"] = [sys.executable, "-m", "examsolver", *TRUSTED, "solve", str(path),
                                             "--lang", "en"]
        cmds[f"{name}: PyTorch float64"] = [sys.executable, str(ROOT / "benchmarks" / "torch_scaling.py"), name,
                                             str(path)]
    return cmds


def once(argv: list) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the child) of one whole process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT,
                          env={**os.environ, "COLUMNS": "120"})
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed:\n{done.stderr.decode(errors='replace')[-3000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--runs", type=int, default=5)
    parser.add_argument("--only", default="rnn,mlp,cnn")
    parser.add_argument("--keep", type=Path, help="write the specs here (default: a temporary directory)")
    args = parser.parse_args()
    names = args.only.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        cmds = commands(write_specs(args.keep or Path(tmp), names))
        for argv in cmds.values():        # warm the file cache, untimed
            once(argv)
        wall: dict = {k: [] for k in cmds}
        cpu: dict = {k: [] for k in cmds}
        for _ in range(args.runs):
            for key, argv in cmds.items():
                w, c = once(argv)
                wall[key].append(w)
                cpu[key].append(c)
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, {args.runs} interleaved runs, medians\n")
    print(f"{'command':<28} {'wall s':>7} {'CPU s':>7}")
    for key in cmds:
        print(f"{key:<28} {statistics.median(wall[key]):7.3f} {statistics.median(cpu[key]):7.3f}")
    ok = True
    print()
    for name in names:
        solve, torch = f"{name}: examsolver solve", f"{name}: PyTorch float64"
        ratio = statistics.median(wall[solve]) / statistics.median(wall[torch])
        c = statistics.median(cpu[solve])
        met = ratio <= 1 and c < 2
        ok &= met
        print(f"{name}: solve / PyTorch = {ratio:.2f} (≤ 1), solve CPU = {c:.2f} s (< 2)  {'met' if met else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
