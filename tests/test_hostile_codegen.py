"""Generated code is right for any accepted names: symbols drawn to collide with the generator's own
locals, numpy's names and builtins, checked against an independent forward (sympy's lambdify) and
finite differences; names that cannot work are refused, located."""

import itertools

import numpy as np
import pytest
import sympy as sp
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from examsolver.pipeline import solve_document
from examsolver.errors import SpecError
from examsolver.spec.load import load_text
from test_codegen import _module as load_module, _numeric_grad

# names the generator used, numpy's and builtins a symbol could shadow (all accepted symbol names)
COLLIDING = ["g", "g0", "g1", "g2", "loss", "grad", "grads0", "z_size", "grad_params", "float", "sum", "abs",
             "max", "min", "exp", "log", "array", "shape", "dtype", "name", "params", "outputs", "Layer",
             "x", "y", "z", "p", "w", "q", "e", "pi", "numpy_", "np_", "inf", "nan", "len", "range", "stack"]

_counter = itertools.count()


def _module(source: str, tmp_path):
    return load_module(source, tmp_path, f"generated_{next(_counter)}")


def _solve(data: dict):
    return solve_document(load_text(yaml.safe_dump(data), "code.yaml"), answers={})


def _layer_spec(inputs, params, outputs):
    return {"id": "c", "kind": "symbolic", "symbols": list(dict.fromkeys(inputs + params)),
            "tasks": [{"code": {"class": "Gen", "inputs": inputs, "params": params, "outputs": outputs}}]}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(names=st.lists(st.sampled_from(COLLIDING), min_size=3, max_size=3, unique=True),
       with_param=st.booleans())
def test_equation_layer_is_right_for_colliding_names(tmp_path, names, with_param):
    a, b, c = names
    inputs, params = [a, b], ([c] if with_param else [])
    k = c if with_param else "3"
    outputs = [f"{a}*{k} + {b}**2", f"tanh({a})*{k} - {b}"]
    source = _solve(_layer_spec(inputs, params, outputs)).results["code.Gen"]
    layer_cls = _module(source, tmp_path).Gen
    symbols = sp.symbols(inputs + params)
    local = dict(zip(inputs + params, symbols))
    exprs = [sp.sympify(o, locals=local) for o in outputs]            # the test's own reading (trusted text)
    reference = sp.lambdify(symbols, exprs, "numpy")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 2))
    w = np.array([1.7]) if with_param else np.zeros(0)
    upstream = rng.normal(size=(4, 2))

    def forward(xx, ww):
        return np.stack(np.broadcast_arrays(*reference(xx[:, 0], xx[:, 1], *ww)), axis=-1)

    layer = layer_cls(w)
    assert np.allclose(layer.forward(x), forward(x, w))
    d_in = layer.backward_inputs(upstream)
    (_, d_w), _ = layer.backward_params(upstream)
    assert np.allclose(d_in, _numeric_grad(lambda v: float(np.sum(upstream * forward(v, w))), x), atol=1e-5)
    assert d_w.shape == w.shape
    if with_param:
        assert np.allclose(d_w, _numeric_grad(lambda v: float(np.sum(upstream * forward(x, v))), w), atol=1e-5)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(names=st.lists(st.sampled_from(COLLIDING), min_size=2, max_size=2, unique=True),
       function=st.sampled_from(COLLIDING))
def test_loss_function_is_right_for_colliding_names(tmp_path, names, function):
    z, y = names
    loss = f"({z} - {y})**2 + log(1 + exp({z}))"
    data = {"id": "l", "kind": "symbolic", "symbols": [z, y],
            "tasks": [{"code": {"function": function, "loss": loss, "wrt": z, "inputs": [z, y]}}]}
    fn = getattr(_module(_solve(data).results[f"code.{function}"], tmp_path), function)
    rng = np.random.default_rng(1)
    zs, ys = rng.normal(size=5), rng.normal(size=5)

    def reference(v):
        return float(np.mean((v - ys) ** 2 + np.log1p(np.exp(v))))

    value, grad = fn(zs, ys)
    assert np.isclose(value, reference(zs))
    assert np.allclose(grad, _numeric_grad(reference, zs), atol=1e-6)


def test_activation_layer_with_a_colliding_name(tmp_path):
    data = {"id": "a", "kind": "symbolic", "symbols": ["grad"],
            "tasks": [{"code": {"class": "Act", "activation": "grad*tanh(grad)", "wrt": "grad"}}]}
    layer = _module(_solve(data).results["code.Act"], tmp_path).Act()
    x = np.linspace(-2, 2, 7)
    assert np.allclose(layer.forward(x), x * np.tanh(x))
    assert np.allclose(layer.backward_inputs(np.ones_like(x)),
                       _numeric_grad(lambda v: float(np.sum(v * np.tanh(v))), x), atol=1e-6)


@pytest.mark.parametrize("inputs, params, message", [
    (["p"], ["w", "w"], "'w' is already among the params of the code"),
    (["p"], ["p"], "'p' is already among the inputs of the code"),
])
def test_duplicate_code_names_are_refused_where_written(inputs, params, message):
    with pytest.raises(SpecError) as info:
        _solve(_layer_spec(inputs, params, ["w*p"] if "w" in inputs + params else ["p"]))
    (problem,) = info.value.problems
    assert problem.line is not None and message in problem.message


def test_a_loss_whose_variable_is_not_an_input_is_refused():
    data = {"id": "l", "kind": "symbolic", "symbols": ["z", "y"],
            "tasks": [{"code": {"function": "f", "loss": "(z - y)**2", "wrt": "z", "inputs": ["y"]}}]}
    with pytest.raises(SpecError, match="must include z"):
        _solve(data)
