"""Optimizers against torch.optim: parameters and optimizer state after every step, exact vs float64.

Two kinds of runs: gradients of a least-squares objective of the parameters (the loop feeds the
updated parameters back, as training does), and fixed gradient sequences (the state of the
adaptive optimizers stays inside the exact ring for more steps; see examsolver/engine/optim).
"""

from __future__ import annotations

import random
from fractions import Fraction

import numpy as np
import pytest
import torch

from examsolver.engine.optim import Training, build, results, run
from examsolver.engine.optim.base import divide, root
from examsolver.engine.scalar import Exact, sqrt
from examsolver.engine.tensor import tensor, to_float

TORCH = {"sgd": torch.optim.SGD, "adagrad": torch.optim.Adagrad, "rmsprop": torch.optim.RMSprop,
         "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}
# our state key → torch.optim state key, per optimizer
STATE = {"sgd": {"v": "momentum_buffer"}, "adagrad": {"r": "sum"},
         "rmsprop": {"r": "square_avg", "m": "grad_avg", "v": "momentum_buffer"},
         "adam": {"m": "exp_avg", "v": "exp_avg_sq", "vmax": "max_exp_avg_sq"}}
STATE["adamw"] = STATE["adam"]


def fractions(rng, shape, denominator=4, low=-8, high=8, nonzero=False):
    def draw():
        while True:
            value = Fraction(rng.randint(low, high), denominator)
            if value or not nonzero:
                return value
    return np.array([draw() for _ in range(int(np.prod(shape)))], dtype=object).reshape(shape)


def torch_value(option):
    if isinstance(option, Exact):
        return float(option)
    if isinstance(option, (list, tuple)):
        return tuple(torch_value(o) for o in option)
    return float(Fraction(option)) if isinstance(option, (str, Fraction)) else option


class Problem:
    """½‖W x + b − y‖² over W (2×2) and b (2): gradients exact and by autograd."""

    def __init__(self, seed):
        rng = random.Random(seed)
        self.x, self.y = fractions(rng, (2,), nonzero=True), fractions(rng, (2,))
        self.start = {"W": fractions(rng, (2, 2)), "b": fractions(rng, (2,))}

    def grad_fn(self, params):
        r = params["W"].dot(tensor(self.x)) + params["b"] - tensor(self.y)
        return {"W": np.outer(r, tensor(self.x)), "b": r}

    def torch_grads(self, tparams):
        W, b = tparams["W"], tparams["b"]
        x, y = (torch.tensor(v.astype(float), dtype=torch.float64) for v in (self.x, self.y))
        loss = 0.5 * ((W @ x + b - y) ** 2).sum()
        loss.backward()


class Fixed:
    """The same gradients whatever the parameters: g⁽ᵗ⁾ drawn in advance."""

    def __init__(self, seed, steps):
        rng = random.Random(seed)
        self.start = {"W": fractions(rng, (2, 2)), "b": fractions(rng, (2,))}
        self.grads = [{"W": fractions(rng, (2, 2), nonzero=True), "b": fractions(rng, (2,), nonzero=True)}
                      for _ in range(steps)]
        self.t = 0

    def grad_fn(self, params):
        self.t += 1
        return {k: tensor(v) for k, v in self.grads[self.t - 1].items()}

    def torch_grads(self, tparams):
        g = self.grads[self.t_torch]
        for k, p in tparams.items():
            p.grad = torch.tensor(g[k].astype(float), dtype=torch.float64)
        self.t_torch += 1


def compare(kind, options, problem, steps, clip=None):
    spec = {"optimizer": {kind: options}, "steps": steps, **(clip or {})}
    training = Training.model_validate(spec)
    records = run(build(training), {k: tensor(v) for k, v in problem.start.items()}, problem.grad_fn, steps,
                  clip_grad_norm=training.clip_grad_norm, clip_grad_value=training.clip_grad_value)
    tparams = {k: torch.tensor(v.astype(float), dtype=torch.float64, requires_grad=True)
               for k, v in problem.start.items()}
    topt = TORCH[kind](list(tparams.values()), **{k: torch_value(v) for k, v in options.items()})
    problem.t_torch = 0
    for record in records:
        topt.zero_grad()
        problem.torch_grads(tparams)
        if clip and "clip_grad_norm" in clip:
            max_norm = torch_value(clip["clip_grad_norm"]["max_norm"])
            total = torch.nn.utils.clip_grad_norm_(list(tparams.values()), max_norm)
            assert float(record.scalars[f"grad_norm({record.t})"]) == pytest.approx(total.item(), rel=1e-9)
        if clip and "clip_grad_value" in clip:
            torch.nn.utils.clip_grad_value_(list(tparams.values()), torch_value(clip["clip_grad_value"]["clip_value"]))
        topt.step()
        for name, p in tparams.items():
            close(record.params[name], p.detach().numpy())
            torch_state = topt.state[p]
            for ours, theirs in STATE[kind].items():
                if ours in record.state[name]:
                    close(record.state[name][ours], torch_state[theirs].numpy())
    return records


def close(exact, expected):
    got = np.asarray(to_float(exact), dtype=float)
    assert np.allclose(got, expected, rtol=1e-9, atol=1e-12), (got, expected)


SGD = [{"lr": "1/2"}, {"lr": "1/4", "momentum": "1/2"}, {"lr": "1/4", "momentum": "3/4", "dampening": "1/4"},
       {"lr": "1/8", "momentum": "1/2", "nesterov": True}, {"lr": "1/4", "momentum": "1/2", "weight_decay": "1/4"},
       {"lr": "1/8", "momentum": "3/4", "nesterov": True, "weight_decay": "1/2"}]


@pytest.mark.parametrize("options", SGD)
@pytest.mark.parametrize("seed", [1, 2])
def test_sgd_on_a_least_squares_objective(options, seed):
    compare("sgd", options, Problem(seed), steps=3)


ADAPTIVE = [
    ("adagrad", {"lr": "1/2"}),
    ("adagrad", {"lr": "1/2", "lr_decay": "1/4", "weight_decay": "1/8", "initial_accumulator_value": "1/4", "eps": 0}),
    ("adagrad", {"lr": "1/2", "eps": "1e-10"}),
    ("rmsprop", {"lr": "1/4", "alpha": "3/4", "eps": 0}),
    ("rmsprop", {"lr": "1/4", "alpha": "1/2", "centered": True, "eps": 0}),
    ("rmsprop", {"lr": "1/4", "alpha": "3/4", "momentum": "1/2", "weight_decay": "1/4", "eps": 0}),
    ("rmsprop", {}),
    ("adam", {"lr": "1/4", "betas": ["1/2", "3/4"], "eps": 0}),
    ("adam", {"lr": "1/4", "betas": ["1/2", "3/4"], "eps": 0, "amsgrad": True}),
    ("adam", {"lr": "1/4", "betas": ["1/2", "3/4"], "weight_decay": "1/4", "eps": 0}),
    ("adam", {}),
    ("adam", {"lr": "1/4", "betas": ["1/2", "3/4"], "weight_decay": "1/2", "decoupled_weight_decay": True}),
    ("adamw", {"lr": "1/4", "betas": ["1/2", "3/4"], "eps": 0}),
    ("adamw", {"lr": "1/4", "betas": ["1/2", "7/8"], "weight_decay": "1/2", "amsgrad": True}),
    ("adamw", {}),
]


@pytest.mark.parametrize("kind, options", ADAPTIVE)
def test_adaptive_optimizers_on_fixed_gradients(kind, options):
    steps = 3 if options else 2    # PyTorch's defaults (β₂ = 0.999, ε = 10⁻⁸): radicands past 10¹² at step 3
    compare(kind, options, Fixed(7, steps), steps=steps)


@pytest.mark.parametrize("kind, options", [(k, o) for k, o in ADAPTIVE if o.get("eps") == 0])
def test_adaptive_optimizers_on_a_least_squares_objective(kind, options):
    compare(kind, options, Problem(3), steps=2)


CLIPS = [{"clip_grad_norm": {"max_norm": "1/2"}}, {"clip_grad_norm": {"max_norm": 100}},
         {"clip_grad_value": {"clip_value": "3/4"}}]


@pytest.mark.parametrize("clip", CLIPS)
@pytest.mark.parametrize("kind, options", [("sgd", {"lr": "1/4", "momentum": "1/2"}),
                                           ("adam", {"lr": "1/4", "betas": ["1/2", "3/4"], "eps": 0})])
def test_clipping_against_torch(clip, kind, options):
    """clip_grad_norm_ (total norm over all parameters, + 10⁻⁶ as PyTorch) and clip_grad_value_."""
    records = compare(kind, options, Problem(5), steps=2 if kind == "adam" else 3, clip=clip)
    if "clip_grad_norm" in clip:
        coef = records[0].scalars["clip_coef(1)"]
        assert (coef == 1) == (clip["clip_grad_norm"]["max_norm"] == 100)


def sgd_run(options, conventions, problem, steps=3):
    training = Training.model_validate({"optimizer": {"sgd": options}, "steps": steps, "conventions": conventions})
    return run(build(training), {k: tensor(v) for k, v in problem.start.items()}, problem.grad_fn, steps)


@pytest.mark.parametrize("nesterov", [False, True])
def test_velocity_form_is_pytorch_momentum_with_v_scaled_by_minus_eta(nesterov):
    options = {"lr": "1/4", "momentum": "1/2", "nesterov": nesterov}
    ours = sgd_run(options, {"momentum": "velocity"}, Problem(4))
    theirs = compare("sgd", options, Problem(4), steps=3)
    for a, b in zip(ours, theirs):
        for name in a.params:
            assert np.all(a.params[name] == b.params[name])
            assert np.all(a.state[name]["v"] == b.state[name]["v"] * Fraction(-1, 4))


@pytest.mark.parametrize("nesterov", [False, True])
def test_ema_form_against_a_float_implementation(nesterov):
    beta, lr = 0.75, 0.5
    problem = Fixed(11, 3)
    records = sgd_run({"lr": "1/2", "momentum": "3/4", "nesterov": nesterov}, {"momentum": "ema"}, problem)
    theta = {k: v.astype(float) for k, v in problem.start.items()}
    v = {k: np.zeros_like(x) for k, x in theta.items()}
    for record, grads in zip(records, problem.grads):
        for k in theta:
            g = grads[k].astype(float)
            v[k] = beta * v[k] + (1 - beta) * g
            theta[k] = theta[k] - lr * ((beta * v[k] + (1 - beta) * g) if nesterov else v[k])
            close(record.state[k]["v"], v[k])
            close(record.params[k], theta[k])


def test_adam_without_bias_correction_against_a_float_implementation():
    problem = Fixed(12, 3)
    training = Training.model_validate({"optimizer": {"adam": {"lr": "1/4", "betas": ["1/2", "3/4"], "eps": 0}},
                                        "conventions": {"bias_correction": False}})
    records = run(build(training), {k: tensor(v) for k, v in problem.start.items()}, problem.grad_fn, 3)
    theta = {k: v.astype(float) for k, v in problem.start.items()}
    m = {k: np.zeros_like(x) for k, x in theta.items()}
    s = {k: np.zeros_like(x) for k, x in theta.items()}
    for record, grads in zip(records, problem.grads):
        for k in theta:
            g = grads[k].astype(float)
            m[k], s[k] = 0.5 * m[k] + 0.5 * g, 0.75 * s[k] + 0.25 * g * g
            theta[k] = theta[k] - 0.25 * m[k] / np.sqrt(s[k])
            close(record.params[k], theta[k])
            assert "mhat" not in record.state[k]


def test_result_names():
    problem = Problem(1)
    training = Training.model_validate({"optimizer": {"adam": {"lr": "1/4", "betas": ["1/2", "3/4"], "eps": 0}},
                                        "clip_grad_norm": {"max_norm": 1}})
    records = run(build(training), {k: tensor(v) for k, v in problem.start.items()}, problem.grad_fn, 2,
                  clip_grad_norm=training.clip_grad_norm)
    names = set(results(records))
    for t in (1, 2):
        for key in ("grad", "g", "m", "v", "mhat", "vhat", "updated"):
            assert {f"W.{key}({t})", f"b.{key}({t})"} <= names
        assert {f"grad_norm({t})", f"clip_coef({t})", f"bias_correction1({t})", f"bias_correction2({t})"} <= names


@pytest.mark.parametrize("spec, message", [
    ({"optimizer": {"adam": {"lr": 1, "beta": [0.9, 0.99]}}}, "beta"),
    ({"optimizer": {"adamax": {}}}, "adamax"),
    ({"optimizer": {"sgd": {"lr": 1}}, "steps": 0}, "steps"),
    ({"optimizer": "sgd", "clip_grad_norm": {"max_norm": 1}, "clip_grad_value": {"clip_value": 1}}, "not both"),
])
def test_spec_refuses_unknown_keys(spec, message):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=message):
        Training.model_validate(spec)


@pytest.mark.parametrize("options, conventions", [({"momentum": 0, "nesterov": True}, {}),
                                                  ({"momentum": "1/2", "dampening": "1/2", "nesterov": True}, {}),
                                                  ({"momentum": "1/2", "dampening": "1/2"}, {"momentum": "ema"})])
def test_option_combinations_pytorch_refuses(options, conventions):
    with pytest.raises(ValueError):
        build(Training.model_validate({"optimizer": {"sgd": options}, "conventions": conventions}))


def test_defaults_are_pytorchs():
    import inspect

    for kind, cls in TORCH.items():
        ours = build(Training.model_validate({"optimizer": kind})).p
        assert build(Training.model_validate({"optimizer": {kind: None}})).p == ours     # YAML `adam:` alone
        for name, parameter in inspect.signature(cls.__init__).parameters.items():
            if name in type(ours).model_fields:
                assert torch_value(getattr(ours, name)) == pytest.approx(parameter.default), (kind, name)


def test_divide_clears_square_roots_from_the_denominator():
    den = Exact(3) + sqrt(2) * Fraction(1, 5) + sqrt(3)
    value = divide(Exact(1), den)
    assert not value.is_symbolic and value * den == 1
    assert float(value) == pytest.approx(1 / (3 + 2 ** 0.5 / 5 + 3 ** 0.5), rel=1e-12)


def test_root_of_large_rationals():
    assert root(Exact(Fraction(10**14 * 4, 9))) == Exact(Fraction(2 * 10**7, 3))
    assert root(Exact(Fraction(2 * 10**14))) == sqrt(2) * 10**7
    big = 1000000000000037 * 1000000000000091      # square-free past the ring's atoms: a certified value
    value = root(Exact(Fraction(big)))
    assert not value.is_rational() and value * value == big
    assert float(value) == pytest.approx(big ** 0.5, rel=1e-15)


def _problem_results(name):
    from conftest import PROBLEMS

    from examsolver.pipeline import solve_file

    solution = solve_file(str(PROBLEMS / name))
    assert solution.checks and all(c.status == "match" for c in solution.checks)
    return solution.results


def minimize_in_torch(name: str, objective) -> dict:
    """A problem's `minimize` task run by torch.optim from its YAML (start, optimizer with the table's
    defaults, clipping, steps), the objective written here in torch: every gradient, clipped gradient,
    optimizer state, parameter and f(t) under the results' names."""
    import yaml

    import pytorch_reference as R
    from conftest import PROBLEMS

    spec = yaml.safe_load((PROBLEMS / name).read_text(encoding="utf-8"))
    (task,) = [t["minimize"] for t in spec["tasks"] if isinstance(t, dict) and "minimize" in t]
    params = {k: R.tensor(v, grad=True) for k, v in task["from"].items()}
    kind, opt = R.optimizer(task["optimizer"], list(params.values()), task.get("conventions"))
    out = {"f(0)": objective(**params).detach().numpy()}
    for t in range(1, task.get("steps", 1) + 1):
        opt.zero_grad()
        objective(**params).backward()
        for k, p in params.items():
            out[f"{k}.grad({t})"] = p.grad.numpy().copy()
        if task.get("clip_grad_value"):
            torch.nn.utils.clip_grad_value_(list(params.values()), R.number(task["clip_grad_value"]["clip_value"]))
        if task.get("clip_grad_norm"):
            torch.nn.utils.clip_grad_norm_(list(params.values()), R.number(task["clip_grad_norm"]["max_norm"]))
        for k, p in params.items():
            out[f"{k}.g({t})"] = p.grad.numpy().copy()
        opt.step()
        for k, p in params.items():
            out[f"{k}.updated({t})"] = p.detach().numpy().copy()
            out.update({f"{k}.{ours}({t})": opt.state[p][theirs].numpy().copy()
                        for ours, theirs in R.OPTIMIZER_STATE[kind].items() if theirs in opt.state[p]})
        out[f"f({t})"] = objective(**params).detach().numpy()
    return out


def adam_quadratic_in_torch() -> dict:
    return minimize_in_torch("extra_adam_quadratic.yaml",
                             lambda theta: theta[0] ** 2 + 2 * theta[1] ** 2 - theta[0] * theta[1])


def sgd_momentum_clip_in_torch() -> dict:
    return minimize_in_torch("extra_sgd_momentum_clip.yaml", lambda w, b: (2 * w + b - 1) ** 2)


@pytest.mark.parametrize("name, oracle", [("extra_adam_quadratic.yaml", adam_quadratic_in_torch),
                                          ("extra_sgd_momentum_clip.yaml", sgd_momentum_clip_in_torch)])
def test_problem_minimize_against_torch(name, oracle):
    """Every gradient, clipped gradient, optimizer state, update and f(t) of the run torch.optim makes from
    the problem's YAML is a result of the problem, with torch's value."""
    results = _problem_results(name)
    expected = oracle()
    assert set(expected) <= set(results), sorted(set(expected) - set(results))
    for key, value in expected.items():
        close(results[key], value)


def _all_runs():
    """One short run of every optimizer, option and convention that changes the steps shown."""
    configs = [(k, o, {}) for k, o in [("sgd", s) for s in SGD] + ADAPTIVE]
    configs += [("sgd", {"lr": "1/4", "momentum": "1/2", "nesterov": n}, {"conventions": {"momentum": form}})
                for form in ("ema", "velocity") for n in (False, True)]
    configs += [("adam", {"lr": "1/4", "betas": ["1/2", "3/4"], "eps": 0}, {"conventions": {"bias_correction": False}})]
    configs += [("sgd", {"lr": "1/4"}, clip) for clip in CLIPS]
    configs += [("sgd", {"lr": "1/4"}, {**CLIPS[0], "conventions": {"clip_norm": "exact"}})]
    for kind, options, extra in configs:
        training = Training.model_validate({"optimizer": {kind: options}, **extra})
        optimizer = build(training)
        problem = Fixed(3, 2)
        records = run(optimizer, {k: tensor(v) for k, v in problem.start.items()}, problem.grad_fn, 2,
                      clip_grad_norm=training.clip_grad_norm, clip_grad_value=training.clip_grad_value)
        yield optimizer, training, records


def test_every_phrase_of_every_run_is_in_both_catalogs_and_renders():
    from examsolver.engine.optim import add_sections, conventions_used
    from examsolver.locales import catalog
    from examsolver.render.output import render_solution
    from examsolver.solution import Phrase, Solution, Step

    for optimizer, training, records in _all_runs():
        solution = Solution(problem_id="optim", title={"hr": "optim", "en": "optim"})
        solution.conventions = conventions_used(optimizer, training)
        add_sections(solution, records, optimizer)
        solution.number_equations()
        keys = [p.key for p in solution.conventions] + [s.title.key for s in solution.sections]
        keys += [b.text.key for s in solution.sections for b in s.blocks if isinstance(b, Step) and b.text]
        keys += [b.key for s in solution.sections for b in s.blocks if isinstance(b, Phrase)]
        for lang in ("hr", "en"):
            assert set(keys) <= set(catalog(lang)), set(keys) - set(catalog(lang))
            for fmt in ("md", "tex"):
                assert render_solution(solution, fmt, lang, to_terminal=False)


def test_problem_sgd_update_rule_against_torch():
    """The symbolic rules with numbers put in equal torch.optim.SGD's steps (J(θ) = θ³ for the unspecified J)."""
    import sympy as sp

    results = _problem_results("extra_sgd_update_rule.yaml")
    theta, alpha, lam, mu, dJ = sp.symbols("theta alpha lam mu dJ_dtheta")
    values = {theta: sp.Rational(3, 2), alpha: sp.Rational(1, 10), lam: sp.Rational(1, 4), mu: sp.Rational(1, 2)}
    w = torch.tensor(1.5, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([w], lr=0.1)
    (w ** 3 + 0.25 * w ** 2).backward()
    opt.step()
    rule = results["theta.updated(1)"].subs(dJ, 3 * theta ** 2).subs(values)
    assert float(rule) == pytest.approx(w.item(), rel=1e-12)
    w = torch.tensor(1.5, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([w], lr=0.1, momentum=0.5)
    for t in (1, 2):
        opt.zero_grad()
        (w ** 2 / 2).backward()
        opt.step()
        assert float(results[f"q.theta.updated({t})"].subs(values)) == pytest.approx(w.item(), rel=1e-12)
        assert float(results[f"q.theta.v({t})"].subs(values)) == pytest.approx(
            opt.state[w]["momentum_buffer"].item(), rel=1e-12)


@pytest.mark.parametrize("task, message", [
    ('{of: "w**2", wrt: [w], optimizer: adam}', "derived for sgd"),
    ('{of: "w**2", wrt: [w], from: {w: 1}, optimizer: sgd}', "not both"),
    ('{of: "w**2 + a", from: {w: 1}, optimizer: sgd}', "without a starting value: a"),
    ('{of: "w**2", from: {u: [1, 2, 3]}, optimizer: sgd}', "shape"),
    ('{of: "w**2", from: {w: 0}, optimizer: {adam: {eps: 0}}}', "denominator"),
    ('{of: "w**2", from: {w: 1}, optimizer: {sgd: {lr: 1, nesterov: true}}}', "Nesterov"),
    ('{of: "w**2", wrt: [w], optimizer: sgd, hyperparameters: {nesterov: a}}', "not a numeric option"),
])
def test_minimize_refuses_with_a_located_message(tmp_path, task, message):
    from examsolver.pipeline import solve_file
    from examsolver.errors import SpecError

    spec = tmp_path / "bad.yaml"
    spec.write_text(f"id: bad\nkind: symbolic\nsymbols: [w, a]\nvectors: {{u: 2}}\ntasks:\n  - minimize: {task}\n",
                    encoding="utf-8")
    with pytest.raises(SpecError, match=message) as err:
        solve_file(str(spec))
    assert str(err.value).startswith(f"{spec}:6:")
