"""The mutation check: small deliberate bugs put into a copy of the repository, one at a time, each
against the tests that should catch it.  A benchmark of the test suite, not a test (it is not part of
the pytest run: one mutant costs a pytest run of its subset, the whole list half an hour on two cores).

    python benchmarks/mutants.py                 # every mutant against its subset of tests
    python benchmarks/mutants.py --all           # every mutant against the whole suite (slow)
    python benchmarks/mutants.py --only relu_default tanh_vjp_sign -j 2
    python benchmarks/mutants.py --list
    python benchmarks/mutants.py --report mutants.json      # every catching test of every mutant, as JSON

A mutant is an exact search/replace in one file of the copy (or a swap of two phrases of a catalog):
when its text no longer occurs exactly once, the mutant is reported STALE (fix the list), never
skipped.  The subsets are run once unmutated first; a mutant is caught by the tests that fail with it
and passed without it.  Exit status 0 only when every mutant is caught and none is stale.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# every problem's key confirmed from its own source, and the engine's results against those keys
KEYS = ("tests/test_key_sources.py", "tests/test_verify.py::test_problems_directory_passes")
ORACLES = KEYS + ("tests/test_ops_oracle.py",)               # + every op against PyTorch
CONVENTIONS = KEYS + ("tests/test_wording.py", "tests/test_ops_oracle.py", "tests/test_torch_script.py")
SHAPES = KEYS + ("tests/test_counting.py", "tests/test_cnn.py", "tests/test_ops_oracle.py")
OPTIMIZERS = KEYS + ("tests/test_optim.py",)
RECURRENT = KEYS + ("tests/test_recurrent.py", "tests/test_recurrent_stacked.py")
WORDING = ("tests/test_wording.py",)


class Stale(Exception):
    """The mutant's text is not in the file exactly once: the code moved on, the list must follow."""


@dataclass(frozen=True)
class Mutant:
    name: str
    path: str                      # relative to the repository
    old: str                       # exact text, to occur once ('swap': the first phrase key)
    new: str                       # its replacement ('swap': the second phrase key)
    tests: tuple
    swap: bool = False

    def apply(self, text: str) -> str:
        return self._swapped(text) if self.swap else self._replaced(text)

    def _replaced(self, text: str) -> str:
        if text.count(self.old) != 1:
            raise Stale(f"{self.path}: {self.old!r} occurs {text.count(self.old)} times")
        return text.replace(self.old, self.new)

    def _swapped(self, text: str) -> str:
        """The sentences of two phrase keys exchanged (one-line entries of a catalog)."""
        lines = []
        for key in (self.old, self.new):
            found = re.findall(rf'^ *"{re.escape(key)}": (".*"),$', text, re.M)
            if len(found) != 1:
                raise Stale(f"{self.path}: no single one-line entry {key!r}")
            lines.append(found[0])
        first, second = (f'"{key}": {sentence},' for key, sentence in zip((self.old, self.new), lines))
        swapped = text.replace(first, "\0").replace(second, f'"{self.new}": {lines[0]},')
        return swapped.replace("\0", f'"{self.old}": {lines[1]},')


def swap(lang_file: str, a: str, b: str, name: str) -> Mutant:
    lang = Path(lang_file).stem.split("_")[0]
    return Mutant(f"swap_{lang}_{name}", f"examsolver/locales/{lang_file}", a, b, WORDING, swap=True)


MODEL = "examsolver/spec/model.py"
MUTANTS = (
    # a sign in a vector-Jacobian product --------------------------------------------------------------
    Mutant("tanh_vjp_sign", "examsolver/engine/ops/activation.py",
           "    def df(self, x, y):\n        return 1 - y * y", "    def df(self, x, y):\n        return y * y - 1", ORACLES),
    Mutant("sigmoid_vjp_sign", "examsolver/engine/ops/activation.py",
           "    def df(self, x, y):\n        return y * (1 - y)", "    def df(self, x, y):\n        return y * (y - 1)",
           ORACLES),
    Mutant("linear_vjp_sign", "examsolver/engine/ops/linear.py",
           "gx = tdot(gy, self._matrix(), axes=np.ndim(gy))", "gx = -tdot(gy, self._matrix(), axes=np.ndim(gy))",
           ORACLES),
    Mutant("conv_vjp_sign", "examsolver/engine/ops/conv.py",
           "gXp[index] = gXp[index] + g * K[k]", "gXp[index] = gXp[index] - g * K[k]", ORACLES),
    # each convention's default (PyTorch's) ------------------------------------------------------------------
    Mutant("relu_default", MODEL, "relu_grad_at_zero: Number = 0", "relu_grad_at_zero: Number = 1", CONVENTIONS),
    Mutant("batchnorm_variance_default", "examsolver/engine/ops/norm.py",
           'variance: Literal["biased", "unbiased"] = "biased"', 'variance: Literal["biased", "unbiased"] = "unbiased"',
           CONVENTIONS),
    Mutant("batchnorm_backward_default", MODEL, 'batchnorm_backward: Literal["full", "constants"] = "full"',
           'batchnorm_backward: Literal["full", "constants"] = "constants"', CONVENTIONS),
    Mutant("convolution_default", MODEL, 'convolution: Literal["cross_correlation", "convolution"] = "cross_correlation"',
           'convolution: Literal["cross_correlation", "convolution"] = "convolution"', CONVENTIONS),
    Mutant("maxpool_ties_default", MODEL, 'maxpool_ties: Literal["first", "split"] = "first"',
           'maxpool_ties: Literal["first", "split"] = "split"', CONVENTIONS),
    Mutant("label_smoothing_default", "examsolver/engine/ops/loss.py",
           'label_smoothing_convention: Literal["pytorch", "wrong_classes"] = "pytorch"',
           'label_smoothing_convention: Literal["pytorch", "wrong_classes"] = "wrong_classes"', CONVENTIONS),
    Mutant("sgd_momentum_default", "examsolver/engine/optim/base.py",
           'momentum: Literal["pytorch", "ema", "velocity"] = Field(\n        "pytorch",',
           'momentum: Literal["pytorch", "ema", "velocity"] = Field(\n        "ema",', CONVENTIONS + OPTIMIZERS[1:]),
    Mutant("flatten_default", MODEL, 'flatten: Literal["channel_first", "channel_last"] = "channel_first"',
           'flatten: Literal["channel_first", "channel_last"] = "channel_last"', CONVENTIONS),
    Mutant("lstm_gate_order", "examsolver/engine/ops/recurrent.py", 'gate_names = ("i", "f", "g", "o")',
           'gate_names = ("f", "i", "g", "o")', RECURRENT + ("tests/test_torch_script.py",)),
    Mutant("gru_reset_before_product", "examsolver/engine/ops/recurrent.py",
           '        hs = graph.apply(E.Affine(), [h, b["W_hh"]] + _present(b, "b_hh"), f"_{t}.{gate}h")\n'
           '        if reset is not None:\n'
           '            hs = graph.apply(E.Hadamard(), [reset, hs], f"_{t}.{gate}rh")\n',
           '        if reset is not None:\n'
           '            h = graph.apply(E.Hadamard(), [reset, h], f"_{t}.{gate}rh")\n'
           '        hs = graph.apply(E.Affine(), [h, b["W_hh"]] + _present(b, "b_hh"), f"_{t}.{gate}h")\n',
           RECURRENT + ("tests/test_torch_script.py",)),
    Mutant("dropout_default", MODEL, 'dropout: Literal["inverted", "plain"] = "inverted"',
           'dropout: Literal["inverted", "plain"] = "plain"', CONVENTIONS),
    Mutant("adam_bias_correction_default", "examsolver/engine/optim/base.py",
           "bias_correction: bool = Field(True,", "bias_correction: bool = Field(False,", CONVENTIONS + OPTIMIZERS[1:]),
    Mutant("minibatch_reduction_default", MODEL,
           'class TrainStep(Strict):\n    lr: Number = Field(description="learning rate η")\n'
           '    reduction: Literal["mean", "sum"] = "mean"',
           'class TrainStep(Strict):\n    lr: Number = Field(description="learning rate η")\n'
           '    reduction: Literal["mean", "sum"] = "sum"', CONVENTIONS),
    # an off-by-one in each shape rule ------------------------------------------------------------------
    Mutant("conv_output_length", "examsolver/engine/ops/conv.py",
           "out_shape = tuple((n - span(k, d)) // s + 1 for", "out_shape = tuple((n - span(k, d)) // s for", SHAPES),
    Mutant("conv_io_shapes", "examsolver/engine/ops/conv.py",
           "out = tuple((n + 2 * p - span(k, d)) // s + 1 for", "out = tuple((n + 2 * p - span(k, d)) // s + 2 for",
           SHAPES),
    Mutant("conv2d_pool2d_out_size", "examsolver/engine/ops/conv2d.py",
           "    return (size + 2 * p - k) // s + 1", "    return (size + 2 * p - k + 1) // s + 1", SHAPES),
    Mutant("conv2d_input_size", "examsolver/engine/ops/conv2d.py",
           "        return (size - 1) * s + k - 2 * p, (k, s, p)", "        return size * s + k - 2 * p, (k, s, p)",
           SHAPES),
    Mutant("pool1d_window_count", "examsolver/engine/ops/pool1d.py",
           "count = (length + 2 * self.pad - self.size) // self.stride + 1",
           "count = (length + 2 * self.pad - self.size) // self.stride", SHAPES),
    Mutant("dilation_span", "examsolver/engine/ops/conv.py", "    return d * (k - 1) + 1", "    return d * k",
           SHAPES),
    # each optimizer's update -----------------------------------------------------------------------------
    Mutant("sgd_update", "examsolver/engine/optim/sgd.py",
           "{prev: ps.theta, ETA: p.lr, g_sym: g}, ps.theta - g * p.lr)",
           "{prev: ps.theta, ETA: p.lr, g_sym: g}, ps.theta - g)", OPTIMIZERS),
    Mutant("sgd_momentum_dampening", "examsolver/engine/optim/sgd.py",
           "        keep = 1 - p.dampening\n", "        keep = 1 - p.momentum\n", OPTIMIZERS),
    Mutant("nesterov_direction", "examsolver/engine/optim/sgd.py",
           "return g_sym + mul(MU, v_sym), g + v * mu", "return g_sym + mul(MU, v_sym), v + g * mu", OPTIMIZERS),
    Mutant("adagrad_update", "examsolver/engine/optim/adagrad.py",
           "ps.theta - edivide(g, esqrt(r) + p.eps) * self.rate(t))", "ps.theta - edivide(g, r + p.eps) * self.rate(t))",
           OPTIMIZERS),
    Mutant("rmsprop_average", "examsolver/engine/optim/rmsprop.py",
           'ps.state["r"] * p.alpha + g * g * (1 - p.alpha))', 'ps.state["r"] * (1 - p.alpha) + g * g * p.alpha)',
           OPTIMIZERS),
    Mutant("adam_second_moment", "examsolver/engine/optim/adam.py",
           'ps.state["v"] * b2 + g * g * (1 - b2)', 'ps.state["v"] * b2 + g * g * (1 - b1)', OPTIMIZERS),
    Mutant("adam_bias_correction_power", "examsolver/engine/optim/adam.py",
           "return 1 - b1 ** t, 1 - b2 ** t", "return 1 - b1 ** (t + 1), 1 - b2 ** (t + 1)", OPTIMIZERS),
    Mutant("adamw_decay", "examsolver/engine/optim/adam.py",
           "shrink = 1 - p.lr * p.weight_decay", "shrink = 1 - p.weight_decay", OPTIMIZERS),
    # two phrases whose meaning differs, swapped --------------------------------------------------------------
    swap("hr.py", "forward.sigmoid", "forward.tanh", "sigmoid_tanh"),
    swap("en.py", "forward.sigmoid", "forward.tanh", "sigmoid_tanh"),
    swap("hr_verify.py", "mistake.relu_grad_at_zero_one", "mistake.relu_grad_at_zero_zero", "relu_mistakes"),
    swap("en_verify.py", "mistake.relu_grad_at_zero_one", "mistake.relu_grad_at_zero_zero", "relu_mistakes"),
    swap("hr.py", "convention.batchnorm_variance_biased", "convention.batchnorm_variance_unbiased",
         "variance_conventions"),
    swap("en.py", "convention.batchnorm_variance_biased", "convention.batchnorm_variance_unbiased",
         "variance_conventions"),
    swap("hr.py", "convention.cross_correlation", "convention.convolution", "convolution_conventions"),
    swap("en.py", "convention.cross_correlation", "convention.convolution", "convolution_conventions"),
    swap("hr_cnn.py", "convention.maxpool_first", "convention.maxpool_split", "maxpool_conventions"),
    swap("en_cnn.py", "convention.maxpool_first", "convention.maxpool_split", "maxpool_conventions"),
)


# ----- running ---------------------------------------------------------------------------------------
def copy_repository(target: Path) -> Path:
    ignore = shutil.ignore_patterns(".git", "__pycache__", "*.egg-info", "test-artifacts", ".pytest_cache")
    shutil.copytree(ROOT, target, ignore=ignore, symlinks=True)
    return target


def pytest_failures(copy: Path, args: tuple, timeout: float) -> tuple[int, set]:
    """(pytest's exit status, the ids of the tests that failed or erred) of a run in the copy."""
    env = dict(os.environ, PYTHONPATH=str(copy), PYTHONDONTWRITEBYTECODE="1")
    env.pop("EXAMSOLVER_UPDATE_SNAPSHOTS", None)
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--tb=no", "-rfE", *args]
    try:
        done = subprocess.run(command, cwd=copy, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return -1, {"(timed out)"}
    failed = {m.group(2) for m in re.finditer(r"^(FAILED|ERROR) (\S+)", done.stdout, re.M)}
    return done.returncode, failed


def check_copy_imports_itself(copy: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(copy))
    found = subprocess.run([sys.executable, "-c", "import examsolver; print(examsolver.__file__)"], cwd=copy,
                           env=env, capture_output=True, text=True, check=True).stdout.strip()
    if not Path(found).resolve().is_relative_to(copy.resolve()):
        sys.exit(f"the copy imports examsolver from {found}, not from itself: mutants would not be tested")


def run_mutant(mutant: Mutant, copy: Path, args: tuple, baseline: set, timeout: float) -> dict:
    path = copy / mutant.path
    original = path.read_text(encoding="utf-8")
    start = time.monotonic()
    try:
        path.write_text(mutant.apply(original), encoding="utf-8")
    except Stale as err:
        return {"name": mutant.name, "status": "STALE", "detail": str(err), "caught_by": [], "seconds": 0}
    try:
        status, failed = pytest_failures(copy, args, timeout)
    finally:
        path.write_text(original, encoding="utf-8")
    caught = sorted(failed - baseline)
    verdict = "caught" if caught or (status not in (0, 1) and status != 5) else "SURVIVED"
    if status == 5:
        verdict = "NO TESTS"
    return {"name": mutant.name, "status": verdict, "caught_by": caught, "seconds": time.monotonic() - start,
            "detail": "" if caught or verdict != "caught" else f"pytest exited {status}"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--all", action="store_true", help="run the whole suite for every mutant")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="only these mutants")
    parser.add_argument("--list", action="store_true", help="list the mutants and their tests")
    parser.add_argument("-j", "--jobs", type=int, default=1, help="mutants run at once (one copy each)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per pytest run")
    parser.add_argument("--report", type=Path, help="write every mutant's verdict and catching tests (JSON)")
    options = parser.parse_args()

    mutants = [m for m in MUTANTS if not options.only or m.name in options.only]
    unknown = set(options.only or ()) - {m.name for m in MUTANTS}
    if unknown:
        parser.error(f"unknown mutants: {', '.join(sorted(unknown))}")
    if options.list:
        for m in mutants:
            print(f"{m.name:32} {m.path:42} {' '.join(('tests/',) if options.all else m.tests)}")
        return 0

    with tempfile.TemporaryDirectory(prefix="mutants-") as tmp:
        copies = [copy_repository(Path(tmp) / f"copy{i}") for i in range(max(1, options.jobs))]
        check_copy_imports_itself(copies[0])
        subsets = {("tests/",) if options.all else m.tests for m in mutants}
        print(f"baseline: {len(subsets)} subset(s) unmutated …", flush=True)
        with ThreadPoolExecutor(len(copies)) as pool:
            runs = list(pool.map(lambda i_s: pytest_failures(copies[i_s[0] % len(copies)], i_s[1], options.timeout),
                                 enumerate(subsets)))
        baseline = {s: failed for s, (_, failed) in zip(subsets, runs)}
        for s, failed in baseline.items():
            if failed:
                print(f"  already failing without a mutant (not counted as catches): {' '.join(s)}: "
                      f"{', '.join(sorted(failed))}")
        free = list(copies)

        def one(mutant):
            copy = free.pop()
            try:
                args = ("tests/",) if options.all else mutant.tests
                result = run_mutant(mutant, copy, args, baseline[args], options.timeout)
            finally:
                free.append(copy)
            shown = ", ".join(result["caught_by"][:3]) + (f" (+{len(result['caught_by']) - 3})"
                                                             if len(result["caught_by"]) > 3 else "")
            print(f"{result['status']:9} {mutant.name:32} {result['seconds']:6.0f} s  "
                  f"{len(result['caught_by']):4} tests  {shown or result['detail']}", flush=True)
            return result

        with ThreadPoolExecutor(len(copies)) as pool:
            results = list(pool.map(one, mutants))

    if options.report:
        options.report.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    bad = [r for r in results if r["status"] != "caught"]
    print(f"\n{len(results) - len(bad)} of {len(results)} mutants caught"
          + (f"; not caught: {', '.join(r['name'] + ' (' + r['status'] + ')' for r in bad)}" if bad else ""))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
