"""Counting problems: every count checked against PyTorch modules' own parameter counts."""

import numpy as np
import pytest

from examsolver.engine.ops import LAYERS
from examsolver.pipeline import solve_document, solve_file
from examsolver.render.output import render_solution
from examsolver.errors import EngineError, SpecError
from examsolver.spec.load import load_text

from conftest import PROBLEMS


def _numel(*modules, buffers=False) -> int:
    if buffers:
        return sum(b.numel() for m in modules for name, b in m.named_buffers() if name.startswith("running"))
    return sum(p.numel() for m in modules for p in m.parameters())


def test_lstm_two_layers_both_bias_conventions():
    torch = pytest.importorskip("torch")
    s = solve_file(PROBLEMS / "2022_z5.yaml")
    lstm = torch.nn.LSTM(2, 3, num_layers=2)
    assert _numel(lstm) == 180
    assert s.results["lstm_two_biases.params.total"] == _numel(lstm)
    # one bias per gate: PyTorch's count without its second bias vector (bias_hh) in each layer
    one_bias = _numel(lstm) - lstm.bias_hh_l0.numel() - lstm.bias_hh_l1.numel()
    assert s.results["lstm_one_bias.params.total"] == one_bias == 156
    assert s.results["lstm_one_bias.params.lstm1"] == 72
    assert s.results["lstm_one_bias.params.lstm2"] == 84


def test_seed000_task4_rnn_with_softmax_output():
    torch = pytest.importorskip("torch")
    s = solve_file(PROBLEMS / "000_t4.yaml")
    rnn, out = torch.nn.RNN(5000, 500, bias=False), torch.nn.Linear(500, 5000)
    # PyTorch's RNN has two bias vectors; the exam's cell has one b_h
    assert s.results["params.total"] == _numel(rnn, out) + 500 == 5_255_500
    assert list(s.results["shape.rnn.W_xh"]) == list(rnn.weight_ih_l0.shape)
    assert list(s.results["shape.rnn.W_hh"]) == list(rnn.weight_hh_l0.shape)
    assert list(s.results["shape.rnn.W_hy"]) == list(out.weight.shape)
    assert all(c.status == "match" for c in s.checks)


def test_seed002_rnn_and_its_largest_matrix():
    torch = pytest.importorskip("torch")
    s = solve_file(PROBLEMS / "002_rnn_params.yaml")
    rnn, out = torch.nn.RNN(100, 1000, bias=False), torch.nn.Linear(1000, 100)
    assert s.results["params.total"] == _numel(rnn, out) + 1000 == 1_201_100
    assert s.results["largest"] == "W_hh"
    assert s.results["largest.count"] == rnn.weight_hh_l0.numel()


def test_seed002_bn_conv_relu():
    torch = pytest.importorskip("torch")
    s = solve_file(PROBLEMS / "002_bn_conv_relu.yaml")
    bn, conv = torch.nn.BatchNorm2d(32), torch.nn.Conv2d(32, 32, 3, padding=1)
    assert s.results["params.conv"] == _numel(conv) == 9248
    assert s.results["params.bn"] == _numel(bn) == 64
    assert s.results["params.total"] == 9312
    assert s.results["buffers.bn"] == _numel(bn, buffers=True) == 64


def test_seed004_task4_chain():
    torch = pytest.importorskip("torch")
    s = solve_file(PROBLEMS / "004_t4.yaml")
    net = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.Linear(5, 2), torch.nn.Linear(2, 4))
    assert s.results["params.total"] == _numel(net) == 44
    assert [int(w) for w in s.results["widths"]] == [3, 5, 2, 4]
    from examsolver.render.terminal import TerminalRenderer  # noqa: F401  (renderer exists)
    from examsolver.render.math import PlainPrinter
    from examsolver.solution import Step

    formulas = [PlainPrinter().print(b.forms[0]) for sec in s.sections for b in sec.blocks
                if isinstance(b, Step) and b.lhs is not None and b.lhs.base == "y"]
    assert formulas == ["W₃ (W₂ (W₁ x + b₁) + b₂) + b₃"]


def test_layers_diagram_renders():
    pytest.importorskip("matplotlib")
    from examsolver.render.plots import PLOTS, render_figure
    from examsolver.solution import Figure

    assert "layers" in PLOTS
    s = solve_file(PROBLEMS / "004_t4.yaml")
    figure = next(b for sec in s.sections for b in sec.blocks if isinstance(b, Figure))
    assert render_figure(figure, "svg", "hr").startswith(b"<?xml")


def test_symbolic_counts():
    import sympy

    K, M, C = sympy.symbols("K M C")
    anchor = solve_file(PROBLEMS / "002_anchor.yaml")
    assert sympy.simplify(anchor.results["candidates.positive"] - (M - 1)) == 0
    assert sympy.simplify(anchor.results["candidates.negative"] - (K - 1) * M) == 0
    bn = solve_file(PROBLEMS / "004_t7.yaml")
    assert sympy.simplify(bn.results["params.bn"] - 2 * C) == 0
    assert sympy.simplify(bn.results["buffers.bn"] - 2 * C) == 0


def test_anchor_counts_by_enumeration():
    K, M = 3, 4
    s = solve_document(load_text(f"id: a\nkind: counting\nanchor_candidates: {{classes: {K}, per_class: {M}}}\n"))
    labels = [k for k in range(K) for _ in range(M)]
    anchor = 0
    positives = sum(1 for i, y in enumerate(labels) if i != anchor and y == labels[anchor])
    negatives = sum(1 for y in labels if y != labels[anchor])
    assert (s.results["candidates.positive"], s.results["candidates.negative"]) == (positives, negatives)


def test_gru_count_matches_torch():
    torch = pytest.importorskip("torch")
    text = """
id: g
kind: counting
architectures:
  - layers: [{gru: {input_size: 7, hidden_size: 5}}]
"""
    s = solve_document(load_text(text))
    assert s.results["params.total"] == _numel(torch.nn.GRU(7, 5))


def test_symbolic_letters_are_recovered_from_the_op():
    s = solve_document(load_text("id: c\nkind: counting\narchitectures:\n"
                                 "  - layers: [{conv1d: {name: c, in_channels: 4, out_channels: 6, kernel_size: 3}}]\n"))
    assert s.results["params.total"] == 6 * 4 * 3 + 6


def test_a_layer_without_a_count_is_a_clear_error():
    missing = next((k for k, cls in LAYERS.items() if not cls.is_activation
                    and "param_shapes" not in {n for c in cls.__mro__[:-2] for n in vars(c)}), None)
    if missing is None:
        pytest.skip("every layer kind has a parameter count")
    with pytest.raises(EngineError, match="no parameter count"):
        LAYERS[missing].param_shapes({})


def test_bad_sizes_are_spec_errors():
    with pytest.raises(SpecError, match="hidden_size"):
        solve_document(load_text("id: c\nkind: counting\narchitectures:\n  - layers: [{lstm: {input_size: 2}}]\n"))
    with pytest.raises(SpecError, match="not a size"):
        solve_document(load_text("id: c\nkind: counting\narchitectures:\n"
                                 "  - layers: [{linear: {in_features: '1+1', out_features: 2}}]\n"))


@pytest.mark.parametrize("layer, option", [("conv2d: {in_channels: 3, out_channels: 8, kernel_size: 3, padding_mode: reflect}",
                                            "padding_mode"),
                                           ("lstm: {input_size: 2, hidden_size: 3, proj_size: 2}", "proj_size"),
                                           ("gru: {input_size: 2, hidden_size: 3, groups: 2}", "groups")])
def test_options_the_count_would_ignore_are_refused(layer, option):
    """A count that silently ignored `padding_mode` or `num_layers` would be confidently wrong."""
    with pytest.raises(SpecError, match=option):
        solve_document(load_text(f"id: c\nkind: counting\narchitectures:\n  - layers: [{{{layer}}}]\n"))


@pytest.mark.parametrize("kind, c_in, c_out, k, groups, dilation", [("conv2d", 4, 8, 3, 2, 1), ("conv2d", 6, 6, 3, 6, 2),
                                                                  ("conv1d", 6, 9, 5, 3, 2), ("conv1d", 3, 3, 2, 1, 3)])
def test_groups_and_dilation_count_as_pytorch(kind, c_in, c_out, k, groups, dilation):
    """W is c_out × c_in/groups × k…: groups divide the weights, dilation changes none of them."""
    torch = pytest.importorskip("torch")
    text = (f"id: c\nkind: counting\narchitectures:\n  - layers: [{{{kind}: {{in_channels: {c_in}, out_channels: {c_out}, "
            f"kernel_size: {k}, groups: {groups}, dilation: {dilation}}}}}]\n")
    module = getattr(torch.nn, kind.replace("conv", "Conv"))(c_in, c_out, k, groups=groups, dilation=dilation)
    assert solve_document(load_text(text)).results["params.total"] == _numel(module)


def test_attention_counts_the_input_projections_of_one_head():
    """W_q, W_k, W_v (d × d) and their biases: nn.MultiheadAttention's in_proj with one head."""
    torch = pytest.importorskip("torch")
    s = solve_document(load_text("id: c\nkind: counting\narchitectures:\n  - layers: [{attention: {embed_dim: 6}}]\n"))
    mha = torch.nn.MultiheadAttention(6, 1)
    assert s.results["params.total"] == mha.in_proj_weight.numel() + mha.in_proj_bias.numel()


@pytest.mark.parametrize("kind, options, size", [
    ("conv2d", "kernel_size: 3, dilation: 2, padding: 1, stride: 2", [32, 31]),
    ("conv2d", "kernel_size: [3, 2], dilation: [1, 3], padding: [0, 2], stride: [2, 1], groups: 2", [9, 12]),
    ("conv1d", "kernel_size: 5, dilation: 3, stride: 2, groups: 4", 50)])
def test_conv_output_shape_follows_pytorch_with_dilation(kind, options, size):
    torch = pytest.importorskip("torch")
    text = (f"id: c\nkind: counting\narchitectures:\n  - layers: [{{{kind}: {{name: c, in_channels: 4, "
            f"out_channels: 8, {options}, input_size: {size}}}}}]\n")
    s = solve_document(load_text(text))
    spec = load_text(text).data["architectures"][0]["layers"][0][kind]
    args = {k: spec[k] for k in ("stride", "padding", "dilation", "groups") if k in spec}
    module = getattr(torch.nn, kind.replace("conv", "Conv"))(4, 8, spec["kernel_size"], **args)
    x = torch.zeros((1, 4) + (tuple(size) if isinstance(size, list) else (size,)))
    table = next(b for sec in s.sections for b in sec.blocks if hasattr(b, "rows"))
    shapes = {row[1].base: row[3] for row in table.rows if row[0] == "c"}
    from examsolver.render.math import PlainPrinter

    assert PlainPrinter().print(shapes["h"]).replace(" ", "") == "×".join(map(str, module(x).shape[1:]))


def test_groups_that_do_not_divide_the_channels_are_refused():
    with pytest.raises(SpecError, match="divisible by groups"):
        solve_document(load_text("id: c\nkind: counting\narchitectures:\n"
                                 "  - layers: [{conv2d: {in_channels: 3, out_channels: 8, kernel_size: 3, groups: 2}}]\n"))


def test_parameterless_layers_count_zero():
    s = solve_document(load_text("id: c\nkind: counting\narchitectures:\n  - name: n\n    layers:\n"
                                 "      - conv2d: {in_channels: 1, out_channels: 2, kernel_size: 3}\n"
                                 "      - max_pool2d: {kernel_size: 2}\n      - flatten\n"
                                 "      - linear: {in_features: 8, out_features: 1}\n"))
    assert s.results["n.params.total"] == 2 * 9 + 2 + 8 + 1


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("layers,bidirectional,bias", [(1, True, True), (2, False, True), (3, True, True),
                                                       (2, True, False), (1, False, False)])
def test_stacked_and_bidirectional_cells_count_like_torch(kind, layers, bidirectional, bias):
    """num_layers, bidirectional and bias are read and counted as PyTorch does (the RNN with its two biases)."""
    torch = pytest.importorskip("torch")
    module = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[kind](
        7, 5, num_layers=layers, bidirectional=bidirectional, bias=bias)
    biases = ", biases: two" if kind == "rnn" else ""
    s = solve_document(load_text(f"""
id: c
kind: counting
architectures:
  - layers: [{{{kind}: {{input_size: 7, hidden_size: 5, num_layers: {layers}, bidirectional: {str(bidirectional).lower()},
               bias: {str(bias).lower()}{biases}}}}}]
"""))
    assert s.results["params.total"] == _numel(module)
    for name, p in module.named_parameters():          # weight_ih_l1_reverse → layer2_reverse.W_ih
        what, _, unit = name.partition("_l")
        key = {"weight_ih": "W_xh" if kind == "rnn" else "W_ih", "weight_hh": "W_hh", "bias_ih": "b_ih",
               "bias_hh": "b_hh"}[what]
        layer, _, reverse = unit.partition("_")
        ours = key if layers == 1 and not bidirectional else f"layer{int(layer) + 1}{'_' + reverse if reverse else ''}.{key}"
        assert list(s.results[f"shape.{kind}1.{ours}"]) == list(p.shape), name


def test_stacked_count_with_letters_and_one_bias():
    """Sizes as names: the count is a polynomial; one bias per gate drops PyTorch's b_hh in every unit."""
    s = solve_document(load_text("""
id: c
kind: counting
architectures:
  - layers: [{lstm: {input_size: d, hidden_size: h, num_layers: 2, bidirectional: true, biases: one}}]
"""))
    import sympy

    d, h = sympy.symbols("d h")
    # per direction: layer 1 4h(d + h) + 4h, layer 2 4h(2h + h) + 4h
    assert sympy.expand(s.results["params.total"] - 2 * (4 * h * (d + h) + 4 * h + 4 * h * (3 * h) + 4 * h)) == 0


# ----- receptive fields against the footprint of a gradient -------------------------------------
RECEPTIVE_CASES = {
    "conv_pool_dilated": ["conv2d: {name: c1, in_channels: 1, out_channels: 1, kernel_size: 3}", "relu",
                          "avg_pool2d: {name: p1, kernel_size: 2, stride: 2}",
                          "conv2d: {name: c2, in_channels: 1, out_channels: 1, kernel_size: 3, dilation: 2}"],
    "strided_1d": ["conv1d: {name: c1, in_channels: 1, out_channels: 1, kernel_size: 5, stride: 2}",
                   "avg_pool1d: {name: p1, kernel_size: 3, stride: 1}",
                   "conv1d: {name: c2, in_channels: 1, out_channels: 1, kernel_size: 2, stride: 3, dilation: 3}"],
    "rectangular": ["conv2d: {name: c1, in_channels: 1, out_channels: 1, kernel_size: [3, 1]}",
                    "avg_pool2d: {name: p1, kernel_size: [2, 3], stride: [2, 1]}"],
}


def _footprint(layers: list[str], dims: int) -> list:
    """Per layer with a window, the extent of the input that one central output depends on: the nonzero
    region of its gradient through the same layers in PyTorch (positive weights: nothing cancels)."""
    import torch
    import yaml as pyyaml

    modules, names = [], []
    for text in layers:
        entry = pyyaml.safe_load(text) if ":" in text else {text: {}}
        (kind, p), = entry.items()
        p = {k: v for k, v in p.items() if k != "name"}
        if kind.startswith("conv"):
            conv = (torch.nn.Conv1d if dims == 1 else torch.nn.Conv2d)(**p, bias=False, dtype=torch.float64)
            torch.nn.init.ones_(conv.weight)
            modules.append(conv)
        elif kind.startswith("avg_pool"):
            modules.append((torch.nn.AvgPool1d if dims == 1 else torch.nn.AvgPool2d)(p["kernel_size"], p.get("stride")))
        else:
            modules.append(torch.nn.Identity())      # ReLU of positive values: the identity here
        names.append(entry)
    extents = []
    for depth in range(1, len(modules) + 1):
        if isinstance(modules[depth - 1], torch.nn.Identity):
            continue
        x = torch.ones((1, 1) + (97,) * dims, dtype=torch.float64, requires_grad=True)
        out = torch.nn.Sequential(*modules[:depth])(x)
        centre = (0, 0) + tuple(n // 2 for n in out.shape[2:])
        out[centre].backward()
        nonzero = x.grad[0, 0].nonzero()
        extents.append([int(nonzero[:, a].max() - nonzero[:, a].min()) + 1 for a in range(dims)])
    return extents


@pytest.mark.parametrize("name", list(RECEPTIVE_CASES))
def test_receptive_fields_are_the_footprint_of_a_gradient(name):
    layers = RECEPTIVE_CASES[name]
    dims = 1 if "1d" in layers[0] else 2
    spec = "id: rf\nkind: counting\narchitectures:\n  - name: net\n    receptive_field: true\n    layers:\n" + \
        "".join(f"      - {layer}\n" for layer in layers)
    solution = solve_document(load_text(spec, "rf.yaml"))
    with_window = [text.split(":")[0] for text in layers if ":" in text]
    names = [text.split("name: ")[1].split(",")[0] for text in layers if "name: " in text]
    assert len(names) == len(with_window)
    for layer_name, extent in zip(names, _footprint(layers, dims)):
        value = solution.results[f"net.receptive_field.{layer_name}"]
        ours = [int(v) for v in np.asarray(value, dtype=object).flat] if np.ndim(value) else [int(value)] * dims
        assert ours == extent, (layer_name, ours, extent)


def test_receptive_field_ends_where_an_output_sees_everything():
    spec = """id: rf
kind: counting
architectures:
  - name: net
    receptive_field: true
    layers:
      - conv2d: {name: c1, in_channels: 1, out_channels: 2, kernel_size: 3}
      - flatten
      - linear: {name: fc, in_features: 8, out_features: 2}
"""
    solution = solve_document(load_text(spec, "rf.yaml"))
    assert int(solution.results["net.receptive_field.c1"]) == 3
    assert not any(k.startswith("net.receptive_field.fc") for k in solution.results)
    text = render_solution(solution, "term", "en", to_terminal=False)
    assert "every output sees the whole input" in text


def test_a_total_of_letters_and_numbers_stays_exact():
    """A layer counted with a letter plus one counted in numbers: integers in the total, never 1322.0."""
    s = solve_document(load_text("""
id: c
kind: counting
architectures:
  - layers: [{lstm: {input_size: d, hidden_size: 16}}, {linear: {in_features: 16, out_features: 10}}]
"""))
    import sympy

    total = s.results["params.total"]
    assert sympy.expand(total - (64 * sympy.Symbol("d") + 1322)) == 0
    assert not total.atoms(sympy.Float)


def test_shapes_with_letters_are_results_a_key_can_check():
    """W_ih of an LSTM with input size d is 4h × d: the result reads back from the key "[64, d]"."""
    from examsolver.verify import check_answers

    s = solve_document(load_text("""
id: c
kind: counting
architectures:
  - layers: [{lstm: {input_size: d, hidden_size: 16}}]
"""))
    import sympy

    assert s.results["shape.lstm1.W_ih"] == sympy.ImmutableMatrix([64, sympy.Symbol("d")])
    assert list(s.results["shape.lstm1.W_hh"]) == [64, 16]
    checks = check_answers({"shape.lstm1.W_ih": "[64, d]", "shape.lstm1.b_ih": "[64]"}, s.results)
    assert [c.status for c in checks] == ["match", "match"]
    assert [c.status for c in check_answers({"shape.lstm1.W_ih": "[16, d]"}, s.results)] == ["mismatch"]
