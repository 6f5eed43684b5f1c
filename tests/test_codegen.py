"""Generated numpy code (from the symbolic kind) against finite differences and at extreme inputs."""

import importlib.util
import warnings

import numpy as np
import pytest

from examsolver.pipeline import solve_document
from examsolver.spec.load import load_file


def _solve(problems_dir, name):
    return solve_document(load_file(problems_dir / f"{name}.yaml"), answers={})


def _module(source: str, tmp_path, name: str):
    path = tmp_path / f"{name}.py"
    path.write_text(source)       # code the engine generated, imported as a module
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _numeric_grad(f, x, eps=1e-6):
    grad = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[index] += eps
        down[index] -= eps
        grad[index] = (f(up) - f(down)) / (2 * eps)
    return grad


def test_softplus_layer_matches_finite_differences_on_any_rank(problems_dir, tmp_path):
    source = _solve(problems_dir, "2022_z4").results["code.Softplus"]
    layer = _module(source, tmp_path, "softplus_layer").Softplus()
    rng = np.random.default_rng(0)
    for shape in [(5,), (3, 4), (2, 3, 4)]:
        x = rng.normal(scale=3, size=shape)
        upstream = rng.normal(size=shape)
        layer.forward(x)
        analytic = layer.backward_inputs(upstream)
        numeric = _numeric_grad(lambda v: float(np.sum(upstream * np.log1p(np.exp(v)))), x)
        assert analytic.shape == shape
        assert np.allclose(analytic, numeric, atol=1e-6)
        assert np.allclose(layer.forward(x), np.log1p(np.exp(x)))


def test_softplus_layer_is_stable_where_the_slides_code_overflows(problems_dir, tmp_path):
    source = _solve(problems_dir, "2022_z4").results["code.Softplus"]
    layer = _module(source, tmp_path, "softplus_stable").Softplus()
    x = np.array([1000.0, -1000.0, 0.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            y = layer.forward(x)
            g = layer.backward_inputs(np.ones_like(x))
    assert np.allclose(y, [1000.0, 0.0, np.log(2)])
    assert np.allclose(g, [1.0, 0.0, 0.5])
    # the slides' version: exp(1000) = inf, inf/(inf + 1) = nan in the backward pass
    with np.errstate(all="ignore"):
        e = np.exp(x)
        slides_grad = e / (e + 1)
    assert np.isnan(slides_grad[0])


def test_equation_layer_matches_finite_differences_on_a_batch(problems_dir, tmp_path):
    source = _solve(problems_dir, "000_t3").results["code.EquationLayer"]
    module = _module(source, tmp_path, "equation_layer")
    rng = np.random.default_rng(1)
    params = np.array([3.0, 4.0])
    inputs = rng.normal(size=(6, 2))      # no ties p1 = p2 with probability 1
    upstream = rng.normal(size=(6, 2))

    def forward(p, w):
        q1 = w[0] * p[:, 0] * p[:, 1] + w[1] * np.maximum(p[:, 0], p[:, 1])
        q2 = w[0] * p[:, 0] ** 2 + w[1] * p[:, 1] ** 2
        return np.stack([q1, q2], axis=-1)

    layer = module.EquationLayer(params)
    assert np.allclose(layer.forward(inputs), forward(inputs, params))
    d_in = layer.backward_inputs(upstream)
    (_, d_w), name = layer.backward_params(upstream)
    assert np.allclose(d_in, _numeric_grad(lambda p: float(np.sum(upstream * forward(p, params))), inputs), atol=1e-5)
    assert np.allclose(d_w, _numeric_grad(lambda w: float(np.sum(upstream * forward(inputs, w))), params), atol=1e-5)
    assert name == "equationlayer"


def test_equation_layer_batch_of_one_and_tie_rule(problems_dir, tmp_path):
    source = _solve(problems_dir, "000_t3").results["code.EquationLayer"]
    layer = _module(source, tmp_path, "equation_tie").EquationLayer([3.0, 4.0])
    layer.forward(np.array([[2.0, 2.0]]))
    d_in = layer.backward_inputs(np.array([[1.0, 0.0]]))
    # ∂q1/∂p1 = w1·p2 + w2 (the tie goes to the first argument), ∂q1/∂p2 = w1·p1
    assert np.allclose(d_in, [[3 * 2 + 4, 3 * 2]])


@pytest.mark.parametrize("function, reference", [
    ("squared_loss_grad", lambda z, y: (1 / (1 + np.exp(-z)) - y) ** 2),
    ("nll_loss_grad", lambda z, y: -(y * np.log(1 / (1 + np.exp(-z))) + (1 - y) * np.log(1 - 1 / (1 + np.exp(-z))))),
])
def test_loss_functions_match_finite_differences_for_any_batch(problems_dir, tmp_path, function, reference):
    source = _solve(problems_dir, "000_t1").results[f"code.{function}"]
    fn = getattr(_module(source, tmp_path, function), function)
    rng = np.random.default_rng(2)
    for n in (1, 7):
        z = rng.normal(scale=2, size=n)
        y = rng.integers(0, 2, size=n).astype(float)
        loss, grad = fn(z, y)
        assert np.isclose(loss, np.mean(reference(z, y)))
        assert np.allclose(grad, _numeric_grad(lambda v: float(np.mean(reference(v, y))), z), atol=1e-6)


def test_loss_functions_do_not_overflow(problems_dir, tmp_path):
    results = _solve(problems_dir, "000_t1").results
    fn = getattr(_module(results["code.nll_loss_grad"], tmp_path, "nll_stable"), "nll_loss_grad")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            loss, grad = fn(np.array([1000.0, -1000.0]), np.array([0.0, 1.0]))
    assert np.isclose(loss, 1000.0)
    assert np.allclose(grad, [0.5, -0.5])


@pytest.mark.parametrize("name", ["000_t1", "000_t3", "2022_z4"])
def test_generated_code_imports_numpy_once_as_np(problems_dir, name):
    """The slides' code has one `import numpy as np`; ours had `import numpy` above it too."""
    sources = [v for k, v in _solve(problems_dir, name).results.items() if k.startswith("code.")]
    assert sources
    for source in sources:
        assert source.count("import numpy") == 1 and source.startswith("import numpy as np\n")
        assert "numpy." not in source


def test_numpy_printer_writes_np_for_every_function():
    import sympy as sp

    from examsolver.engine.codegen import to_numpy

    x = sp.Symbol("x")
    text = to_numpy(sp.exp(x) + sp.log(x) + sp.tanh(x) + sp.sqrt(x) + sp.pi + sp.Piecewise((x, x > 0), (0, True)))
    assert "numpy." not in text and all(f"np.{f}(" in text for f in ("exp", "log", "tanh", "sqrt", "select"))
