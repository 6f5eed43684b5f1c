"""PyTorch's defaults and what every convention means, written down once, and the PyTorch references built on them.

The oracles of the tests read a spec as its author wrote it: the YAML mapping (yaml.safe_load's dicts, lists,
numbers and number text), never the engine's parsed layers, conventions or weights.  What a spec leaves
unsaid they take from the tables below, and each convention's meaning is implemented here with torch and
torch.nn.functional; a default or a convention changed in the engine then disagrees with them.  Number text
('3/4', 'ln(2)', '[1, 2]*ln(2)') is read by examsolver's expression parser: the one piece of the engine the
oracles share, and it reads numbers, not meaning.

The tables say where the spec's default is not PyTorch's (batchnorm's eps and affine, the triplet's eps and
kink); test_ops_oracle.py checks every entry said to be PyTorch's against torch's own signatures.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

# ----- what a spec means where it says nothing ------------------------------------------------------
CONVENTIONS = {                        # a spec's `conventions:`
    "relu_grad_at_zero": 0,            # torch.relu: ReLU′(0) = 0; another value c is added at x = 0
    "maxpool_ties": "first",           # the first maximum of a window in row-major order takes its gradient
                                       # (PyTorch's CPU max pooling); split: shared equally among the maxima
    "flatten": "channel_first",        # torch.flatten(x, 1) of (N, C, H, W); channel_last: of (N, H, W, C)
    "convolution": "cross_correlation",  # F.conv1d/conv2d slide the kernel unflipped; convolution: flipped
    "dropout": "inverted",             # F.dropout: kept entries × 1/(1 − p) in training, x at evaluation;
                                       # plain: x ⊙ mask in training, (1 − p)·x at evaluation
    "batchnorm_backward": "full",      # autograd through the batch mean and variance; constants: detached
    "weights": "out_in",               # nn.Linear: y = W x + b, W of shape (out, in); in_out: y = Wᵀx + b
}

OPTIMIZER_CONVENTIONS = {              # a `train:` task's `conventions:`
    "momentum": "pytorch",             # torch.optim.SGD: v ← μv + (1 − dampening)g, θ ← θ − ηv
    "bias_correction": True,           # torch.optim.Adam: m̂ = m/(1 − β₁ᵗ), v̂ = v/(1 − β₂ᵗ)
}

OPTIONS = {                            # a layer's or a loss's options left out of the spec
    "linear": {"b": None},             # no b: no bias (nn.Linear(bias=False)), nothing to train
    "conv1d": {"b": None, "stride": 1, "padding": 0, "dilation": 1, "groups": 1},   # no b: no bias
    "conv2d": {"b": None, "stride": 1, "padding": 0, "dilation": 1, "groups": 1},
    "max_pool1d": {"kernel_size": 2, "stride": None, "padding": 0},  # stride None: kernel_size (nn.MaxPool1d)
    "max_pool2d": {"kernel_size": 2, "stride": None, "padding": 0},
    "avg_pool1d": {"kernel_size": 2, "stride": None, "padding": 0, "count_include_pad": True},
    "avg_pool2d": {"kernel_size": 2, "stride": None, "padding": 0, "count_include_pad": True},
    "leaky_relu": {"negative_slope": "1/100"},                        # nn.LeakyReLU
    "elu": {"alpha": 1},                                               # nn.ELU
    "softplus": {"beta": 1, "threshold": 20},                          # nn.Softplus
    "gelu": {"approximate": "none"},                                   # nn.GELU: the exact erf form
    "layernorm": {"eps": "1/100000", "elementwise_affine": True, "bias": True,   # nn.LayerNorm: γ = 1, β = 0
                  "normalized_shape": None},                           # None: the last axis
    "batchnorm": {"training": True,
                  "variance": "biased",    # normalised by the batch's biased variance (nn.BatchNorm in training)
                  "eps": 0,                # the course's (nn.BatchNorm1d: 1e-5): a spec gives eps when it has one
                  "affine": False,         # γ, β only when given (nn.BatchNorm1d: affine=True, γ = 1, β = 0)
                  "momentum": "1/10",      # running r ← (1 − m)·r + m·(batch statistic), as nn.BatchNorm1d
                  "running_mean": 0, "running_var": 1},                # nn.BatchNorm1d's initial buffers
    "dropout": {"p": "1/2", "train": True},                            # nn.Dropout
    "attention": {"is_causal": False, "scale": None},                  # None: 1/√d_k (scaled_dot_product_attention)
    "embedding": {"padding_idx": None},
    # a cell has the biases given and no others (bias=False without them); bias: true adds the usual ones at
    # zero (the RNN's one b_h, PyTorch's pair b_ih, b_hh of LSTM and GRU); bias: false takes none
    "rnn": {"activation": "tanh", "bias": None},                       # nn.RNN: tanh
    "lstm": {"bias": None},
    "gru": {"bias": None},
    # losses (each one example's; the minibatch reduces them, see PROBLEM)
    "cross_entropy": {"label_smoothing": 0, "weight": None,
                      "label_smoothing_convention": "pytorch"},  # ε/K on every class (F.cross_entropy);
                                                                 # wrong_classes: ε/(K − 1) on the wrong ones
    "nll": {"weight": None},
    "binary_cross_entropy_with_logits": {"weight": None, "pos_weight": None},   # summed over the entries
    "mse": {"half": False},            # Σ (o − y)² over the example's entries; half: ½Σ (o − y)²
    "l1": {"grad_at_zero": 0},         # Σ |o − y|; the subgradient at o = y (torch's sign(0) = 0)
    "smooth_l1": {"beta": 1},          # summed over the entries
    "huber": {"delta": 1},
    "kl_div": {"log_target": False},
    "distillation": {"temperature": 1},
    "triplet": {"margin": 1, "p": 2, "squared": False,   # nn.TripletMarginLoss(margin=1, p=2) …
                "eps": 0},                               # … but ε = 0 in the distance (PyTorch: 1e-6), and
                                                         # the hinge's derivative at 0 is ReLU′(0) (PyTorch: 1)
    "contrastive": {"margin": 1, "p": 2, "eps": 0, "half": False, "squared": True},  # L⁺ = d², L⁻ = max(0, m − d)²
}

PROBLEM = {                            # a problem's own options left out
    "reduction": "mean",               # the minibatch loss: the mean of the examples' losses (÷ N)
    "method": "per_example",           # a gradient task backpropagates each example's loss L⁽ⁿ⁾ on its own
    "siamese_reduction": "none",       # a siamese problem's pairs or triplets: one loss each
    "loss_over": "last",               # a recurrent problem's loss: at the last step only
    "output_activation": "softmax",    # a recurrent problem's output o(t) = W_hy h(t) + b_y, then softmax
    "sparse_shape": "infer",           # a sparse input's shape: the smallest square image the model accepts
    "sparse_value": 1,                 # a sparse input's listed entry
}

OPTIMIZERS = {                         # torch.optim's defaults (written out, passed explicitly)
    "sgd": {"lr": "1/1000", "momentum": 0, "dampening": 0, "weight_decay": 0, "nesterov": False},
    "adagrad": {"lr": "1/100", "lr_decay": 0, "weight_decay": 0, "initial_accumulator_value": 0,
                "eps": "1/10000000000"},
    "rmsprop": {"lr": "1/100", "alpha": "99/100", "eps": "1/100000000", "weight_decay": 0, "momentum": 0,
                "centered": False},
    "adam": {"lr": "1/1000", "betas": ["9/10", "999/1000"], "eps": "1/100000000", "weight_decay": 0,
             "amsgrad": False, "decoupled_weight_decay": False},
    "adamw": {"lr": "1/1000", "betas": ["9/10", "999/1000"], "eps": "1/100000000", "weight_decay": "1/100",
              "amsgrad": False},
}
OPTIMIZER_STATE = {                    # the results' names of torch.optim's state
    "sgd": {"v": "momentum_buffer"}, "adagrad": {"r": "sum"},
    "rmsprop": {"r": "square_avg", "m": "grad_avg", "v": "momentum_buffer"},
    "adam": {"m": "exp_avg", "v": "exp_avg_sq", "vmax": "max_exp_avg_sq"},
    "adamw": {"m": "exp_avg", "v": "exp_avg_sq", "vmax": "max_exp_avg_sq"},
}

GATES = {                              # PyTorch's stacked weight blocks, in its row order
    "lstm": "ifgo",                    # W_ih = [W_ii; W_if; W_ig; W_io]; c = f ⊙ c + i ⊙ g, h = o ⊙ tanh(c)
    "gru": "rzn",                      # W_ih = [W_ir; W_iz; W_in]; the reset gate after the product:
}                                      # n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn)), h = (1 − z) ⊙ n + z ⊙ h


# ----- reading the spec ------------------------------------------------------------------------------
def number(text) -> float:
    from examsolver.spec.expr import parse_number

    return float(parse_number(text))


def values(nested) -> np.ndarray:
    """A number, a nested list or a tensor expression of the spec, as float64."""
    from examsolver.spec.expr import parse_nested

    if isinstance(nested, np.ndarray):
        return nested.astype(float)
    return np.vectorize(float, otypes=[float])(np.array(parse_nested(nested), dtype=object))


def tensor(nested, grad: bool = False) -> torch.Tensor:
    return torch.tensor(values(nested), dtype=torch.float64, requires_grad=grad)


def entry(item) -> tuple[str, dict]:
    """`relu`, `{relu: null}`, `{linear: {W: …}}` → (kind, its mapping)."""
    if isinstance(item, str):
        return item, {}
    (kind, params), = item.items()
    return kind, dict(params or {})


def option(kind: str, p: dict, key: str):
    return p[key] if p.get(key) is not None else OPTIONS[kind][key]


def convention(c: dict, key: str):
    return (c or {}).get(key, CONVENTIONS[key])


def _pair(value, dims: int) -> tuple:
    return tuple(value) if isinstance(value, list) else (value,) * dims


# ----- layers: weights, then fn(p, c, X, w) on a batch X (first axis: the examples) -------------------
WEIGHT_KEYS = {                        # the spec's keys that hold trainable tensors (conv's W: `kernels`)
    "linear": ("W", "b"), "conv1d": ("kernels", "W", "b"), "conv2d": ("kernels", "W", "b"),
    "batchnorm": ("gamma", "beta"), "layernorm": ("gamma", "beta"), "embedding": ("W",),
    "attention": ("W_q", "W_k", "W_v", "b_q", "b_k", "b_v"),
    "rnn": ("W_hh", "W_xh", "b_h", "b_ih", "b_hh"), "lstm": ("W_ih", "W_hh", "b_ih", "b_hh", "b"),
    "gru": ("W_ih", "W_hh", "b_ih", "b_hh", "b"),
}


def layer_weights(kind: str, p: dict, c: dict, example_shape: tuple) -> dict:
    """The trainable tensors a layer's mapping declares (float arrays) under the results' names, with
    the ones it implies though it does not give them (a linear layer's zero bias, γ = 1 and β = 0)."""
    given = {"W" if key == "kernels" else key: values(p[key]) for key in WEIGHT_KEYS.get(kind, ())
             if p.get(key) is not None}
    implied = IMPLIED_WEIGHTS.get(kind)
    return implied(given, p, c, example_shape) if implied else given


def _linear_weights(given, p, c, shape):
    if OPTIONS["linear"]["b"] is None:
        return given
    W = given["W"]
    out = () if W.ndim == 1 else (W.shape[1] if convention(c, "weights") == "in_out" else W.shape[0],)
    return {"b": np.full(out, number(OPTIONS["linear"]["b"])), **given}


def _vector_biases(given, p, c, shape):
    return {k: v.reshape(-1) if k.startswith("b") else v for k, v in given.items()}


def _batchnorm_weights(given, p, c, shape):
    given = {k: v.reshape(-1) for k, v in given.items()}
    if option("batchnorm", p, "affine"):           # PyTorch's initial values
        given = {"gamma": np.ones(shape[0]), "beta": np.zeros(shape[0]), **given}
    return given


def _layernorm_weights(given, p, c, shape):
    if not option("layernorm", p, "elementwise_affine"):
        return given
    normalized = _normalized_shape(p, shape)
    implied = {"gamma": np.ones(normalized)}
    if option("layernorm", p, "bias"):
        implied["beta"] = np.zeros(normalized)
    return {**implied, **given}


def _cell_weights(kind: str):
    def weights(given, p, c, shape):
        given = {k: v.reshape(-1, 1) if k.startswith("W") and v.ndim == 1 else v    # a flat list: one column
                 for k, v in given.items()}
        if option(kind, p, "bias") is not True or "b" in given:
            return given
        rows = np.zeros(given["W_hh"].shape[0])
        if kind == "rnn" and not {"b_ih", "b_hh"} & set(given):
            return {"b_h": rows, **given}                               # the slides' one bias, zero
        return {"b_ih": rows, "b_hh": rows, **given}                   # PyTorch's two, zero where not given
    return weights


IMPLIED_WEIGHTS = {"linear": _linear_weights, "conv1d": _vector_biases, "conv2d": _vector_biases,
                   "attention": _vector_biases, "batchnorm": _batchnorm_weights, "layernorm": _layernorm_weights,
                   "rnn": _cell_weights("rnn"), "lstm": _cell_weights("lstm"), "gru": _cell_weights("gru")}


def _normalized_shape(p: dict, example_shape: tuple) -> tuple:
    given = option("layernorm", p, "normalized_shape")
    if given is None:
        return tuple(example_shape[-1:])
    return tuple(given) if isinstance(given, list) else (given,)


def relu(c: dict):
    """torch.relu with the convention's ReLU′(0) = g: g·(x − x.detach()) added where x = 0 (value unchanged)."""
    g = number(convention(c, "relu_grad_at_zero"))

    def run(X):
        return torch.relu(X) + g * (X == 0).to(X.dtype) * (X - X.detach()) if g else torch.relu(X)
    return run


def linear(p, c, X, w):
    W, b = w["W"], w.get("b")
    if W.dim() == 1 or convention(c, "weights") == "in_out":
        return X @ W + (b if b is not None else 0)
    return F.linear(X, W, b)


def convolution(dims: int):
    conv = (F.conv1d, F.conv2d)[dims - 1]

    def run(p, c, X, w):
        kind = f"conv{dims}d"
        K = w["W"] if w["W"].dim() == dims + 2 else w["W"].unsqueeze(1)   # no channel axis: one per group
        if convention(c, "convolution") == "convolution":
            K = K.flip(tuple(range(-dims, 0)))     # a true convolution: cross-correlation with the flipped kernel
        Xc = X if X.dim() == dims + 2 else X.unsqueeze(1)
        return conv(Xc, K, w.get("b"), stride=_pair(option(kind, p, "stride"), dims),
                    padding=_pair(option(kind, p, "padding"), dims),
                    dilation=_pair(option(kind, p, "dilation"), dims), groups=option(kind, p, "groups"))
    return run


def _windows(X, size: tuple, stride: tuple, pad: tuple, fill: float):
    """(N, C, out…, window): every pooling window of X (N, C, spatial…), padded with `fill`."""
    dims = len(size)
    Xp = F.pad(X, [q for k in reversed(range(dims)) for q in (pad[k], pad[k])], value=fill)
    for k in range(dims):
        Xp = Xp.unfold(2 + k, size[k], stride[k])
    return Xp.flatten(-dims)


def _max_of_windows(windows, ties: str):
    """Each window's maximum; its gradient to the first maximum (row-major) or shared equally among them."""
    top = windows == windows.max(dim=-1, keepdim=True).values
    if ties == "first":
        share = F.one_hot(top.to(torch.int64).argmax(dim=-1), windows.shape[-1]).to(windows.dtype)
    else:
        share = top.to(windows.dtype) / top.sum(dim=-1, keepdim=True)
    return (windows.masked_fill(share == 0, 0) * share.detach()).sum(dim=-1)


def pooling(dims: int, how: str):
    def run(p, c, X, w):
        kind = f"{how}_pool{dims}d"
        size = _pair(option(kind, p, "kernel_size"), dims)
        stride = _pair(option(kind, p, "stride") or option(kind, p, "kernel_size"), dims)
        pad = _pair(option(kind, p, "padding"), dims)
        maps = X.dim() == dims + 1                      # one map per example: no channel axis
        Xc = X.unsqueeze(1) if maps else X
        if how == "max":                                # padding is −∞: it never wins
            Y = _max_of_windows(_windows(Xc, size, stride, pad, float("-inf")), convention(c, "maxpool_ties"))
        else:
            avg = (F.avg_pool1d, F.avg_pool2d)[dims - 1]
            Y = avg(Xc, size, stride, pad, count_include_pad=option(kind, p, "count_include_pad"))
        return Y.squeeze(1) if maps else Y
    return run


def global_avg_pool(p, c, X, w):
    return X.flatten(1).mean(dim=1) if X.dim() == 2 else X.flatten(2).mean(dim=2)


def global_max_pool(p, c, X, w):
    windows = X.flatten(1) if X.dim() == 2 else X.flatten(2)
    return _max_of_windows(windows, convention(c, "maxpool_ties"))


def attention(p, c, X, w):
    """F.scaled_dot_product_attention after the nn.Linear projections (a missing one: X itself)."""
    def project(role):
        return F.linear(X, w[f"W_{role}"], w.get(f"b_{role}")) if f"W_{role}" in w else X
    mask = torch.tensor(p["mask"], dtype=torch.bool) if p.get("mask") is not None else None
    scale = option("attention", p, "scale")
    return F.scaled_dot_product_attention(project("q"), project("k"), project("v"), attn_mask=mask,
                                          is_causal=bool(option("attention", p, "is_causal")),
                                          scale=None if scale is None else number(scale))


def flatten(p, c, X, w):
    if X.dim() == 4 and convention(c, "flatten") == "channel_last":
        X = X.permute(0, 2, 3, 1)
    return X.flatten(1)


def batchnorm(p, c, X, w):
    eps = number(option("batchnorm", p, "eps"))
    gamma, beta = w.get("gamma"), w.get("beta")
    C = X.shape[1]
    if not option("batchnorm", p, "training"):        # evaluation: the running statistics
        mean = tensor(option("batchnorm", p, "running_mean")).reshape(-1).expand(C)
        var = tensor(option("batchnorm", p, "running_var")).reshape(-1).expand(C)
        return F.batch_norm(X, mean, var, gamma, beta, training=False, eps=eps)
    biased = option("batchnorm", p, "variance") == "biased"
    constants = convention(c, "batchnorm_backward") == "constants"
    if biased and not constants and eps > 0:          # PyTorch's own (it refuses eps = 0)
        return F.batch_norm(X, None, None, gamma, beta, training=True, eps=eps)
    axes = (0,) + tuple(range(2, X.dim()))
    mu = X.mean(dim=axes, keepdim=True)
    var = X.var(dim=axes, correction=0 if biased else 1, keepdim=True)
    if constants:
        mu, var = mu.detach(), var.detach()
    H = (X - mu) / torch.sqrt(var + eps)
    shape = (1, -1) + (1,) * (X.dim() - 2)
    H = H * gamma.view(shape) if gamma is not None else H
    return H + beta.view(shape) if beta is not None else H


def layernorm(p, c, X, w):
    return F.layer_norm(X, _normalized_shape(p, tuple(X.shape[1:])), w.get("gamma"), w.get("beta"),
                        eps=number(option("layernorm", p, "eps")))


def dropout(p, c, X, w):
    """The spec's mask (one for every example, or one per example) on F.dropout's inverted scaling."""
    keep = 1 - number(option("dropout", p, "p"))
    inverted = convention(c, "dropout") == "inverted"
    if not option("dropout", p, "train"):
        return X if inverted else X * keep
    mask = tensor(p["mask"])
    return X * mask / keep if inverted else X * mask


def embedding(p, c, X, w):
    return F.embedding(X.detach().long(), w["W"], padding_idx=option("embedding", p, "padding_idx"))


def _sequences(X, d: int):
    return X.unsqueeze(-1) if X.dim() == 2 and d == 1 else X        # (N, T) → (N, T, 1)


def _state(p: dict, key: str, H: int, N: int):
    return (tensor(p[key]).reshape(H) if p.get(key) is not None else torch.zeros(H, dtype=torch.float64)).expand(N, H)


def rnn(p, c, X, w):
    """h(t) = f(W_hh h(t−1) + W_xh x(t) + b_h), written out (nn.RNN has no identity): autograd does BPTT."""
    f = {"tanh": torch.tanh, "relu": relu(c), "identity": lambda v: v}[option("rnn", p, "activation")]
    X = _sequences(X, w["W_xh"].shape[1])
    h = _state(p, "h0", w["W_hh"].shape[0], X.shape[0])
    bias = sum((w[k] for k in ("b_h", "b_ih", "b_hh") if k in w), torch.zeros(h.shape[1], dtype=torch.float64))
    out = []
    for t in range(X.shape[1]):
        h = f(h @ w["W_hh"].T + X[:, t] @ w["W_xh"].T + bias)
        out.append(h)
    return torch.stack(out, dim=1)


def gated(kind: str):
    """PyTorch's own nn.LSTM / nn.GRU with the spec's weights (one bias b: PyTorch's b_ih = b, b_hh = 0)."""
    module_class = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[kind]

    def run(p, c, X, w):
        H, d = w["W_hh"].shape[1], w["W_ih"].shape[1]
        bias = any(k in w for k in ("b", "b_ih", "b_hh"))     # the biases the cell has (see _cell_weights)
        module = module_class(d, H, batch_first=True, bias=bias, dtype=torch.float64)
        params = {"weight_ih_l0": w["W_ih"], "weight_hh_l0": w["W_hh"]}
        if bias:
            params["bias_ih_l0"] = w["b"] if "b" in w else w["b_ih"]
            params["bias_hh_l0"] = torch.zeros(len(GATES[kind]) * H, dtype=torch.float64) if "b" in w else w["b_hh"]
        N = X.shape[0]
        h0 = _state(p, "h0", H, N).unsqueeze(0).contiguous()
        state = (h0, _state(p, "c0", H, N).unsqueeze(0).contiguous()) if kind == "lstm" else h0
        return torch.func.functional_call(module, params, (_sequences(X, d), state))[0]
    return run


def _activation(fn):
    return lambda p, c, X, w: fn(X)


LAYERS = {
    "linear": linear, "conv1d": convolution(1), "conv2d": convolution(2),
    "max_pool1d": pooling(1, "max"), "max_pool2d": pooling(2, "max"),
    "avg_pool1d": pooling(1, "avg"), "avg_pool2d": pooling(2, "avg"),
    "global_avg_pool": global_avg_pool, "global_max_pool": global_max_pool,
    "attention": attention, "flatten": flatten, "batchnorm": batchnorm, "layernorm": layernorm,
    "dropout": dropout, "embedding": embedding, "rnn": rnn, "lstm": gated("lstm"), "gru": gated("gru"),
    "relu": lambda p, c, X, w: relu(c)(X),
    "sigmoid": _activation(torch.sigmoid), "tanh": _activation(torch.tanh),
    "softmax": _activation(lambda X: torch.softmax(X, dim=-1)),
    "log_softmax": _activation(lambda X: torch.log_softmax(X, dim=-1)),
    "leaky_relu": lambda p, c, X, w: F.leaky_relu(X, number(option("leaky_relu", p, "negative_slope"))),
    "elu": lambda p, c, X, w: F.elu(X, number(option("elu", p, "alpha"))),
    "softplus": lambda p, c, X, w: F.softplus(X, number(option("softplus", p, "beta")),
                                              number(option("softplus", p, "threshold"))),
    "gelu": lambda p, c, X, w: F.gelu(X, approximate=option("gelu", p, "approximate")),
}

# ops that read several nodes: a function of one batch per input
MULTI = {
    "add": lambda *Xs: sum(Xs[1:], Xs[0]),
    "concat": lambda *Xs: torch.cat(Xs, dim=1),
    "mul": lambda A, B: A * B,
    "matmul": lambda A, B: torch.stack([torch.matmul(a, b) for a, b in zip(A, B)]),
}


# ----- losses: fn(p, c, P, T), one example's output P and target T ----------------------------------
def _weight(p: dict, key: str = "weight"):
    return tensor(p[key]) if p.get(key) is not None else None


def cross_entropy(p, c, P, T):
    """F.cross_entropy on the logits ln p (log_softmax(ln p) = ln p); the wrong_classes smoothing written out."""
    eps, K, w = number(option("cross_entropy", p, "label_smoothing")), P.shape[-1], _weight(p)
    if option("cross_entropy", p, "label_smoothing_convention") == "wrong_classes":
        y = F.one_hot(T.long(), K).to(P.dtype) if T.dim() == 0 else T
        q = (1 - eps) * y + eps / (K - 1) * (1 - y)
        return -((w if w is not None else 1.0) * q * torch.log(P)).sum()
    target = T.long().unsqueeze(0) if T.dim() == 0 else T.unsqueeze(0)

    def ce(logits):
        return F.cross_entropy(logits.unsqueeze(0), target, weight=w, label_smoothing=eps, reduction="none")[0]
    # ce(ln p) = −Σ c_i ln p_i + (Σ c) ln Σ p: the engine's loss is the first term (a function of p off the
    # simplex too), so the second is taken off; Σ c = ce(0)/ln K read from PyTorch (its value is 0 here)
    return ce(torch.log(P)) - ce(torch.zeros(K, dtype=P.dtype)) / np.log(K) * torch.logsumexp(torch.log(P), -1)


def triplet(p, c, P, T):
    """max(0, d(a, p) − d(a, n) + m) on the rows (anchor, positive, negative), the distances as
    F.pairwise_distance (ε from the table); the hinge's derivative at 0 the ReLU convention's."""
    a, pos, neg = P[0:1], P[1:2], P[2:3]
    norm, eps = option("triplet", p, "p"), number(option("triplet", p, "eps"))
    d = [F.pairwise_distance(a, x, p=norm, eps=eps)[0] for x in (pos, neg)]
    if option("triplet", p, "squared"):
        d = [v ** 2 for v in d]
    return relu(c)(d[0] - d[1] + number(option("triplet", p, "margin")))


def contrastive(p, c, P, T):
    """f·d² for a positive pair (T = 1), f·max(0, m − d)² for a negative one; d = ‖a − b + ε‖_p."""
    eps = number(option("contrastive", p, "eps"))
    d = torch.linalg.vector_norm(P[0] - P[1] + eps, ord=option("contrastive", p, "p"))
    power = 2 if option("contrastive", p, "squared") else 1
    f = 0.5 if option("contrastive", p, "half") else 1.0
    return f * (d ** power if int(T) == 1 else torch.clamp(number(option("contrastive", p, "margin")) - d, min=0) ** power)


def l1(p, c, P, T):
    """Σ|o − y|; at o = y the chosen subgradient g₀ added as g₀·(P − P.detach()) (value unchanged)."""
    T = T.reshape(P.shape)
    ties = (P.detach() == T).to(P.dtype)
    g0 = number(option("l1", p, "grad_at_zero"))
    return F.l1_loss(P, T, reduction="sum") + g0 * (ties * (P - P.detach())).sum()


def distillation(p, c, S, T):
    t = number(option("distillation", p, "temperature"))
    return t ** 2 * F.kl_div(F.log_softmax(S / t, dim=-1), F.softmax(T / t, dim=-1), reduction="sum")


LOSSES = {
    "cross_entropy": cross_entropy,
    "nll": lambda p, c, P, T: F.nll_loss(P.unsqueeze(0), T.long().unsqueeze(0), weight=_weight(p),
                                         reduction="none")[0],
    "binary_cross_entropy_with_logits": lambda p, c, S, T: F.binary_cross_entropy_with_logits(
        S, T.reshape(S.shape), weight=_weight(p), pos_weight=_weight(p, "pos_weight"), reduction="sum"),
    "l1": l1,
    "smooth_l1": lambda p, c, P, T: F.smooth_l1_loss(P, T.reshape(P.shape), reduction="sum",
                                                     beta=number(option("smooth_l1", p, "beta"))),
    "huber": lambda p, c, P, T: F.huber_loss(P, T.reshape(P.shape), reduction="sum",
                                             delta=number(option("huber", p, "delta"))),
    "kl_div": lambda p, c, P, T: F.kl_div(P, T.reshape(P.shape), reduction="sum",
                                          log_target=option("kl_div", p, "log_target")),
    "distillation": distillation,
    "binary_cross_entropy": lambda p, c, P, T: F.binary_cross_entropy(P.reshape(-1), T.reshape(-1).expand(P.numel()),
                                                                      reduction="sum"),
    "mse": lambda p, c, P, T: F.mse_loss(P, T.reshape(P.shape), reduction="sum") * (
        0.5 if option("mse", p, "half") else 1.0),
    "sum": lambda p, c, P, T: P.sum(),
    "triplet": triplet,
    "contrastive": contrastive,
}


# ----- optimizers ---------------------------------------------------------------------------------
def optimizer(spec_optimizer, params: list, conventions: dict | None = None):
    """torch.optim's optimizer of a `train:` task's `optimizer:` with every option from the spec or the table."""
    kind, given = entry(spec_optimizer)
    for key, default in OPTIMIZER_CONVENTIONS.items():
        if (conventions or {}).get(key, default) != default:
            raise NotImplementedError(f"no torch.optim form of {key}: {conventions[key]}")
    options = {**OPTIMIZERS[kind], **given}
    read = {k: (tuple(number(b) for b in v) if isinstance(v, list) else v if isinstance(v, bool) else number(v))
            for k, v in options.items()}
    classes = {"sgd": torch.optim.SGD, "adagrad": torch.optim.Adagrad, "rmsprop": torch.optim.RMSprop,
               "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}
    return kind, classes[kind](params, **read)
