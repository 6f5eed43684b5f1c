"""The scaling specs' networks in float64 PyTorch: forward, loss and gradients, printed.

    python benchmarks/torch_scaling.py rnn|mlp|cnn SPEC

Reads the same spec file as examsolver (written as JSON by benchmarks/scaling.py), so both solve the
same network; a TA's check script, timed as a whole process by scaling.py.
"""

import json
import sys
from fractions import Fraction

import torch
import torch.nn.functional as F


def t(nested, grad=False):
    to = lambda v: [to(x) for x in v] if isinstance(v, list) else float(Fraction(str(v)))
    return torch.tensor(to(nested), dtype=torch.float64, requires_grad=grad)


def rnn(spec):
    cell, out = spec["cell"]["rnn"], spec["output"]
    P = {k: t(cell[k], True) for k in ("W_hh", "W_xh", "b_h")} | {k: t(out[k], True) for k in ("W_hy", "b_y")}
    h, loss = t(cell["h0"]), 0
    for x, y in zip(spec["inputs"], spec["targets"]):
        h = torch.tanh(P["W_hh"] @ h + P["W_xh"] @ t(x) + P["b_h"])
        loss = loss + F.cross_entropy((P["W_hy"] @ h + P["b_y"])[None], torch.tensor([y]))
    loss.backward()
    return loss, P


def mlp(spec):
    fc1, fc2 = spec["model"][0]["linear"], spec["model"][2]["linear"]
    P = {"W1": t(fc1["W"], True), "b1": t(fc1["b"], True), "W2": t(fc2["W"], True), "b2": t(fc2["b"], True)}
    h = torch.relu(P["W1"] @ t(spec["data"]["x"]) + P["b1"])
    loss = F.cross_entropy((P["W2"] @ h + P["b2"])[None], torch.tensor([spec["data"]["y"]]))
    loss.backward()
    with torch.no_grad():
        for p in P.values():
            p -= 0.1 * p.grad
    return loss, P


def cnn(spec):
    conv, fc = spec["model"][0]["conv2d"], spec["model"][4]["linear"]
    K, W = t(conv["kernels"], True), t(fc["W"], True)
    x = t(spec["data"]["x"])[None, None]
    h = F.max_pool2d(torch.relu(F.conv2d(x, K[:, None])), 2, 2)
    loss = F.cross_entropy((W @ h.flatten())[None], torch.tensor([spec["data"]["y"]]))
    loss.backward()
    return loss, {"K": K}


if __name__ == "__main__":
    kind, path = sys.argv[1], sys.argv[2]
    with open(path, encoding="utf-8") as f:
        loss, params = {"rnn": rnn, "mlp": mlp, "cnn": cnn}[kind](json.load(f))
    print("loss", float(loss.detach()))
    for name, p in params.items():
        print(name, p.grad.flatten()[:8].tolist())
