"""English phrases of the optimizers (engine/optim): steps, state, clipping, conventions."""

PHRASES = {
    "optim.section.step": "Optimizer step {t} ({optimizer})",
    "optim.gradient": "Gradient for {name}:",
    "optim.gradient_l2": "Gradient for {name} with the weight decay term λθ added (L2 regularization):",
    "optim.momentum_first": "Momentum (velocity) of {name}: at the first step it is the gradient itself:",
    "optim.momentum": "Momentum (velocity) update for {name}:",
    "optim.update": "Update of {name}:",
    "optim.update_decoupled": "Update of {name} with decoupled weight decay:",
    "optim.accumulator": "Sum of the squared gradients for {name}:",
    "optim.lr_decay": "Learning rate at step {t}:",
    "optim.square_avg": "Moving average of the squared gradients for {name}:",
    "optim.grad_avg": "Moving average of the gradients for {name} (centered RMSprop):",
    "optim.first_moment": "First moment (moving average of the gradients) for {name}:",
    "optim.second_moment": "Second moment (moving average of the squared gradients) for {name}:",
    "optim.amsgrad": "AMSGrad: the largest second moment so far for {name}:",
    "optim.bias_correction": "Bias correction of the moments for {name}:",
    "optim.clip_norm": "Total norm of the gradients of all parameters:",
    "optim.clip_coef": "Clipping factor: the gradients are scaled down to the total norm c_max:",
    "optim.clip_none": "Clipping factor: the total norm does not exceed c_max, so the gradients stay as they are:",
    "optim.convention.sgd": "Gradient descent without momentum: θ ← θ − ηg.",
    "optim.convention.sgd_pytorch": "SGD with momentum as in PyTorch: v ← μv + (1 − τ)g (v = g at the first step), "
                                    "θ ← θ − ηv.",
    "optim.convention.sgd_ema": "Momentum as an exponential moving average: v ← βv + (1 − β)g with v⁽⁰⁾ = 0, "
                                "θ ← θ − ηv (PyTorch: v ← μv + g).",
    "optim.convention.sgd_velocity": "Momentum as a velocity: v ← μv − ηg with v⁽⁰⁾ = 0, θ ← θ + v (PyTorch's rule "
                                     "with v = −η·v_PyTorch).",
    "optim.convention.nesterov": "SGD with Nesterov momentum as in PyTorch: v ← μv + g (v = g at the first step), "
                                 "and the step takes the gradient plus the momentum applied once more: θ ← θ − η(g + μv).",
    "optim.convention.nesterov_ema": "Nesterov momentum as an exponential moving average: v ← βv + (1 − β)g with "
                                     "v⁽⁰⁾ = 0, θ ← θ − η(βv + (1 − β)g).",
    "optim.convention.nesterov_velocity": "Nesterov momentum as a velocity: v ← μv − ηg with v⁽⁰⁾ = 0, "
                                          "θ ← θ + μv − ηg.",
    "optim.convention.adagrad": "Adagrad as in PyTorch: r ← r + g ⊙ g, θ ← θ − η g ⊘ (√r + ε).",
    "optim.convention.rmsprop": "RMSprop as in PyTorch: r ← αr + (1 − α)g ⊙ g, θ ← θ − η g ⊘ (√r + ε), "
                                "ε outside the square root.",
    "optim.convention.adam": "Adam as in PyTorch: bias-corrected moments, θ ← θ − η m̂ ⊘ (√v̂ + ε); weight decay "
                             "is added to the gradient (L2).",
    "optim.convention.adamw": "AdamW as in PyTorch: decoupled weight decay, θ ← (1 − ηλ)θ − η m̂ ⊘ (√v̂ + ε).",
    "optim.convention.adam_no_bias_correction": "Adam without bias correction: the moments are used as they are "
                                                "(m̂ = m, v̂ = v), θ ← θ − η m ⊘ (√v + ε); weight decay is added to "
                                                "the gradient (L2).",
    "optim.convention.adamw_no_bias_correction": "AdamW without bias correction: decoupled weight decay, the moments "
                                                 "used as they are (m̂ = m, v̂ = v), θ ← (1 − ηλ)θ − η m ⊘ (√v + ε).",
    "optim.convention.clip_norm_pytorch": "Gradients clipped by their total norm as PyTorch's `clip_grad_norm_` "
                                          "does: g ← g · min(1, c/(‖g‖ + 10⁻⁶)) with c = {c}.",
    "optim.convention.clip_norm_exact": "Gradients clipped by their total norm: g ← g · min(1, c/‖g‖) with c = {c} "
                                        "(PyTorch adds 10⁻⁶ to the norm).",
    "optim.convention.clip_value": "Every gradient entry is clipped to [−c, c] with c = {c} "
                                   "(as PyTorch's `clip_grad_value_`).",
}
