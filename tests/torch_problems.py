"""Whole problems recomputed in PyTorch from their YAML mapping: network, siamese and recurrent specs.

Each interpreter reads the spec as written (yaml.safe_load's mapping) and the tables of pytorch_reference.py,
builds the model with the references there, and returns what autograd gives under the names of the
solution's results (`loss`, `loss(2)`, `fc1.W.grad(1)`, `x.grad`, `h.grad`, `fc1.W.updated(3)`, `h2`, …), as
float arrays.  Nothing of the engine is used but its number parser.
"""

from __future__ import annotations

import numpy as np
import torch

import pytorch_reference as R
from pytorch_reference import entry, number, option, tensor, values


def _float(value) -> np.ndarray:
    return value.detach().numpy().copy() if isinstance(value, torch.Tensor) else np.asarray(value, dtype=float)


# ----- the sequential (graph) model ------------------------------------------------------------------
def forward(model: list, c: dict, X: torch.Tensor, weights: dict) -> dict:
    """{'x': X, layer name: its output} on the batch X; `weights` (layer name → {key: leaf}) is filled from
    the mapping on first use and reused after (training steps)."""
    nodes, H = {"x": X}, X
    for i, (kind, p) in enumerate(model):
        name = p.get("name") or f"{kind}{i + 1}"
        inputs = [nodes[n] for n in p["inputs"]] if p.get("inputs") else [H]
        if kind in R.MULTI:
            H = R.MULTI[kind](*inputs)
        else:
            if name not in weights:
                weights[name] = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True)
                                 for k, v in R.layer_weights(kind, p, c, tuple(inputs[0].shape[1:])).items()}
            H = R.LAYERS[kind](p, c, inputs[0], weights[name])
        nodes[name] = H
    nodes[None] = H                                    # the model's output
    return nodes


def _sparse(x: dict, model: list, c: dict) -> np.ndarray:
    """Zeros but the listed entries; `shape: infer`: the smallest square image the model accepts."""
    entries = [(tuple(e["at"]), number(e.get("value", R.PROBLEM["sparse_value"]))) for e in x.get("entries", [])]
    shape = x.get("shape", R.PROBLEM["sparse_shape"])
    if shape == "infer":
        shape = _smallest_input(model, c, 1 + max((max(at) for at, _ in entries), default=0))
    out = np.zeros(shape)
    for at, v in entries:
        out[at] = v
    return out


def _smallest_input(model: list, c: dict, least: int) -> tuple:
    """n × n (C × n × n when the first convolution's kernels have an input-channel axis), n from `least` up."""
    first = next((p for kind, p in model if kind == "conv2d"), {})
    kernels = values(first.get("kernels", first.get("W", 0)))
    channels = (kernels.shape[1] * first.get("groups", 1),) if kernels.ndim == 4 else ()
    for n in range(least, 200):
        try:
            with torch.no_grad():
                forward(model, c, torch.zeros((1,) + channels + (n, n), dtype=torch.float64), {})
        except RuntimeError:
            continue
        return channels + (n, n)
    raise AssertionError("no square input fits the model")


def _examples(spec: dict):
    data = spec["data"]
    return (data, True) if isinstance(data, list) else ([data], False)


def _tasks(spec: dict, loss_p: dict) -> dict:
    """What the tasks ask: wrt names, method, reduction, upstream, a train step or training."""
    asked = {"wrt": [], "method": R.PROBLEM["method"], "reduction": None, "upstream": None, "lr": None,
             "train": None}
    for task in spec.get("tasks", ["forward"]):
        if task == "forward":
            continue
        (kind, options), = task.items()
        options = options or {}
        if kind == "gradient":
            asked["wrt"] += options["wrt"]
            asked["upstream"] = options.get("upstream")
        elif kind == "train_step":
            asked["lr"] = number(options["lr"])
        elif kind == "train":
            asked["train"] = options
        asked["method"] = options.get("method", asked["method"])
        asked["reduction"] = options.get("reduction", asked["reduction"])
    asked["reduction"] = asked["reduction"] or loss_p.get("reduction") or R.PROBLEM["reduction"]
    return asked


def network(spec: dict) -> dict:
    """Every loss, gradient and update a network spec asks for, and the named layers' values."""
    c = spec.get("conventions") or {}
    model = [entry(item) for item in spec["model"]]
    examples, batched = _examples(spec)
    xs = [_sparse(d["x"], model, c) if isinstance(d["x"], dict) else values(d["x"]) for d in examples]
    X = torch.tensor(np.stack(xs), dtype=torch.float64, requires_grad=True)
    loss_kind, loss_p = entry(spec["loss"]) if spec.get("loss") else (None, {})
    asked = _tasks(spec, loss_p)
    weights: dict = {}
    nodes = forward(model, c, X, weights)
    results = {}
    for _, p in model:
        if p.get("name"):
            _per_example(results, p["name"], nodes[p["name"]], batched)
    params = {f"{layer}.{key}": leaf for layer, ws in weights.items() for key, leaf in ws.items()}
    if asked["train"] is not None:
        return {**results, **_train(spec, model, c, X, loss_kind, loss_p, asked, weights, params)}
    wanted = list(params) if asked["lr"] is not None else asked["wrt"]
    tensors = [params[n] if n in params else nodes[n] for n in wanted]

    def grads(outputs, seeds=None):
        found = torch.autograd.grad(outputs, tensors, seeds, retain_graph=True, allow_unused=True)
        return [torch.zeros_like(t) if g is None else g for t, g in zip(tensors, found)]

    if asked["upstream"]:
        given = list(asked["upstream"].items())
        seeds = [tensor(G).reshape(nodes[n].shape) for n, G in given]
        for name, g in zip(wanted, grads([nodes[n] for n, _ in given], seeds)):
            results[f"{name}.grad"] = _float(g if batched or name in params else g[0])
        return results
    losses = [R.LOSSES[loss_kind](loss_p, c, nodes[None][m], tensor(d["y"])) for m, d in enumerate(examples)]
    mean = asked["reduction"] == "mean" and batched
    L = torch.stack(losses).sum() / (len(losses) if mean else 1)
    results["loss"] = _float(L)
    if batched:
        _per_example(results, "loss", torch.stack(losses), True)
    if asked["method"] == "per_example" and batched:
        rows = [grads(loss_m) for loss_m in losses]
        for k, name in enumerate(wanted):
            for m, row in enumerate(rows):
                results[f"{name}.grad({m + 1})"] = _float(row[k] if name in params else row[k][m])
            if name in params:
                results[f"{name}.grad"] = _float(sum(row[k] for row in rows) / (len(rows) if mean else 1))
    else:
        for name, g in zip(wanted, grads(L)):
            results[f"{name}.grad"] = _float(g if batched or name in params else g[0])
    if asked["lr"] is not None:
        for name in params:
            results[f"{name}.updated"] = results[f"{name}.grad"] * -asked["lr"] + _float(params[name])
    return results


def _per_example(results: dict, name: str, value: torch.Tensor, batched: bool) -> None:
    if batched:
        for m, row in enumerate(value):
            results[f"{name}({m + 1})"] = _float(row)
    else:
        results[name] = _float(value[0])


def _train(spec, model, c, X, loss_kind, loss_p, asked, weights, params) -> dict:
    """torch.optim over the steps: each step's gradient, the clipped one, the state and the parameters."""
    train = asked["train"]
    examples, batched = _examples(spec)
    kind, opt = R.optimizer(train["optimizer"], list(params.values()), train.get("conventions"))
    decay = opt.defaults.get("weight_decay", 0) if kind not in ("adamw",) and not opt.defaults.get(
        "decoupled_weight_decay") else 0
    results = {}
    for t in range(1, train.get("steps", 1) + 1):
        opt.zero_grad()
        out = forward(model, c, X, weights)[None]
        losses = [R.LOSSES[loss_kind](loss_p, c, out[m], tensor(d["y"])) for m, d in enumerate(examples)]
        L = torch.stack(losses).sum() / (len(losses) if asked["reduction"] == "mean" and batched else 1)
        if t == 1:
            results["loss"] = _float(L)
            if batched:
                _per_example(results, "loss", torch.stack(losses), True)
        L.backward()
        for name, leaf in params.items():
            results[f"{name}.grad({t})"] = _float(leaf.grad)
            if t == 1:
                results[f"{name}.grad"] = _float(leaf.grad)
        if train.get("clip_grad_norm"):
            total = torch.nn.utils.clip_grad_norm_(list(params.values()), number(train["clip_grad_norm"]["max_norm"]))
            results[f"grad_norm({t})"] = _float(total)
        if train.get("clip_grad_value"):
            torch.nn.utils.clip_grad_value_(list(params.values()), number(train["clip_grad_value"]["clip_value"]))
        for name, leaf in params.items():
            results[f"{name}.g({t})"] = _float(leaf.grad + decay * leaf.detach())
        opt.step()
        for name, leaf in params.items():
            results[f"{name}.updated({t})"] = _float(leaf)
            for ours, theirs in R.OPTIMIZER_STATE[kind].items():
                if theirs in opt.state[leaf]:
                    results[f"{name}.{ours}({t})"] = _float(opt.state[leaf][theirs])
    return results


# ----- siamese: one model, several inputs, a loss per pair or triplet --------------------------------
def siamese(spec: dict) -> dict:
    c = spec.get("conventions") or {}
    model = [entry(item) for item in spec["model"]]
    loss_kind, loss_p = entry(spec["loss"])
    inputs = {name: tensor(x, grad=True) for name, x in spec["inputs"].items()}
    items = [(pair["inputs"], torch.tensor(1.0 if pair["label"] == "positive" else 0.0, dtype=torch.float64))
             for pair in spec.get("pairs", [])]
    items += [([t["anchor"], t["positive"], t["negative"]], torch.tensor(0.0, dtype=torch.float64)) for t in spec.get("triplets", [])]
    weights, embedded = {}, {}
    for names, _ in items:
        for name in names:
            if name not in embedded:
                embedded[name] = forward(model, c, inputs[name].unsqueeze(0), weights)[None][0]
    results = {f"e{k}": _float(e) for k, e in enumerate(embedded.values(), 1)}
    params = {f"{layer}.{key}": leaf for layer, ws in weights.items() for key, leaf in ws.items()}
    wanted = [name for task in spec.get("tasks", []) if isinstance(task, dict) and "gradient" in task
              for name in task["gradient"]["wrt"]]
    count = len(items)
    mark = (lambda k: f"({k})") if count > 1 else (lambda k: "")
    losses = []
    for k, (names, T) in enumerate(items, 1):
        E = torch.stack([embedded[n] for n in names])
        losses.append(R.LOSSES[loss_kind](loss_p, c, E, T))
        results[f"loss{mark(k)}"] = _float(losses[-1])
        for label, (u, v) in (("d", (0, 1)),) if loss_kind == "contrastive" else (("d_ap", (0, 1)), ("d_an", (0, 2))):
            results[f"{label}{mark(k)}"] = _float(_distance(loss_kind, loss_p, E[u], E[v]))
        _grads(results, losses[-1], wanted, params, inputs, set(names), mark(k))
        for e in dict.fromkeys(names):           # ∂L/∂e of every embedding the item reads
            (g,) = torch.autograd.grad(losses[-1], embedded[e], retain_graph=True)
            results[f"e{list(embedded).index(e) + 1}.grad{mark(k)}"] = _float(g)
    reduction = loss_p.get("reduction") or spec.get("reduction") or R.PROBLEM["siamese_reduction"]
    if count > 1 and reduction != "none":
        total = torch.stack(losses).sum() / (count if reduction == "mean" else 1)
        results["loss"] = _float(total)
        _grads(results, total, wanted, params, inputs, {n for names, _ in items for n in names}, "")
    return results


def _distance(kind: str, p: dict, a, b):
    return torch.linalg.vector_norm(a - b + number(option(kind, p, "eps")), ord=option(kind, p, "p"))


def _grads(results, loss, wanted, params, inputs, used: set, mark: str) -> None:
    names = [n for n in wanted if n in params or n in used]
    tensors = [params[n] if n in params else inputs[n] for n in names]
    found = torch.autograd.grad(loss, tensors, retain_graph=True, allow_unused=True)
    for name, t, g in zip(names, tensors, found):
        results[f"{name}.grad{mark}"] = _float(torch.zeros_like(t) if g is None else g)


# ----- recurrent: one cell unrolled over the sequence ------------------------------------------------
def _blocks(kind: str, v: torch.Tensor) -> dict:
    """The gates' blocks of a stacked pre-activation, in PyTorch's order (GATES)."""
    return dict(zip(R.GATES[kind], v.chunk(len(R.GATES[kind]))))


def cell_steps(kind: str, p: dict, c: dict, w: dict, X: torch.Tensor, h0, c0=None) -> list[dict]:
    """Every step's named nodes of one cell on the sequence X (T × d), its equations written out from the
    tables: the RNN's h = f(W_hh h + W_xh x + b), LSTM's and GRU's as GATES says (GRU's reset after the product)."""
    h, cell, steps = h0, c0, []
    if kind == "rnn":
        f = {"tanh": torch.tanh, "relu": R.relu(c), "identity": lambda v: v}[option("rnn", p, "activation")]
        bias = sum((w[k] for k in ("b_h", "b_ih", "b_hh") if k in w), torch.zeros(h0.shape, dtype=torch.float64))
        for x in X:
            a = w["W_hh"] @ h + w["W_xh"] @ x + bias
            h = f(a)
            steps.append({"a": a, "h": h})
        return steps
    zero = torch.zeros(w["W_hh"].shape[0], dtype=torch.float64)
    b_x, b_h = (w["b"], zero) if "b" in w else (w.get("b_ih", zero), w.get("b_hh", zero))
    for x in X:
        gx, gh = _blocks(kind, w["W_ih"] @ x + b_x), _blocks(kind, w["W_hh"] @ h + b_h)
        if kind == "lstm":
            i, f, o = (torch.sigmoid(gx[k] + gh[k]) for k in "ifo")
            g = torch.tanh(gx["g"] + gh["g"])
            cell = f * cell + i * g
            h = o * torch.tanh(cell)
            steps.append({"i": i, "f": f, "g": g, "o": o, "c": cell, "h": h})
        else:
            r, z = (torch.sigmoid(gx[k] + gh[k]) for k in "rz")
            n = torch.tanh(gx["n"] + r * gh["n"])
            h = (1 - z) * n + z * h
            steps.append({"r": r, "z": z, "n": n, "h": h})
    return steps


def recurrent(spec: dict) -> dict:
    c = spec.get("conventions") or {}
    kind, p = entry(spec["cell"])
    if p.get("layers") or p.get("num_layers", 1) > 1 or p.get("bidirectional"):
        raise NotImplementedError("a stack: see test_recurrent_stacked.py (torch.nn modules)")
    w = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in R.layer_weights(kind, p, c, ()).items()}
    H = w["W_hh"].shape[1]
    state = {"h0": tensor(p["h0"] if p.get("h0") is not None else np.zeros(H), grad=True).reshape(H)}
    if kind == "lstm":
        state["c0"] = tensor(p["c0"] if p.get("c0") is not None else np.zeros(H), grad=True).reshape(H)
    xs = values(spec["inputs"])
    X = torch.tensor(xs.reshape(len(xs), -1), dtype=torch.float64)
    steps = cell_steps(kind, p, c, w, X, state["h0"], state.get("c0"))
    results, nodes = {}, {}
    for t, step in enumerate(steps, 1):
        for name, value in step.items():
            nodes[f"{name}{t}"] = value
            results[f"{name}{t}"] = _float(value)
    out = [s["h"] for s in steps]
    params = {**w, **state}
    if spec.get("output"):
        head = spec["output"]
        W_hy = tensor(head["W_hy"], grad=True)
        b_y = tensor(head["b_y"] if head.get("b_y") is not None else np.zeros(W_hy.shape[0]), grad=True)
        params.update(W_hy=W_hy, b_y=b_y)
        act = {"softmax": lambda v: torch.softmax(v, -1), "sigmoid": torch.sigmoid, "identity": lambda v: v}[
            head.get("activation", R.PROBLEM["output_activation"])]
        out = [act(W_hy @ h + b_y) for h in out]
    if not spec.get("loss"):
        return results
    loss_kind, loss_p = entry(spec["loss"])
    over = spec.get("loss_over", R.PROBLEM["loss_over"])
    at = range(len(steps)) if over == "sum" else [len(steps) - 1]
    losses = [R.LOSSES[loss_kind](loss_p, c, out[t], tensor(spec["targets"][t])) for t in at]
    for t, value in zip(at, losses):
        results[f"loss({t + 1})"] = _float(value)
    L = torch.stack(losses).sum()
    results["loss"] = _float(L)
    wanted = [n for task in spec.get("tasks", []) if isinstance(task, dict) and "gradient" in task
              for n in task["gradient"]["wrt"]]
    wanted += [n for n in state if n not in wanted]          # the initial states' gradients come with BPTT
    tensors = [params[n] if n in params else nodes[n] for n in wanted]
    for name, t, g in zip(wanted, tensors, torch.autograd.grad(L, tensors, allow_unused=True)):
        results[f"{name}.grad"] = _float(torch.zeros_like(t) if g is None else g)
    return results


INTERPRETERS = {"network": network, "siamese": siamese, "recurrent": recurrent}


def solve(spec: dict) -> dict:
    """The interpreter of the spec's kind (network unless it says)."""
    return INTERPRETERS[spec.get("kind", "network")](spec)
