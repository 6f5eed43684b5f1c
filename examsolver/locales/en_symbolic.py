"""English phrases of the symbolic problem kind (derivatives, Jacobians, code)."""

PHRASES = {
    "symbolic.note": "{text}",
    "symbolic.section.notes": "Remarks",
    "symbolic.section.definitions": "Definitions",
    "symbolic.section.derivative": "Derivative of {f} with respect to {x}",
    "symbolic.section.gradient": "Gradient of {f} with respect to {x}",
    "symbolic.section.jacobian": "Jacobian of {f} with respect to {x}",
    "symbolic.section.evaluate": "Values",
    "symbolic.section.simplify": "Simplification",
    "symbolic.section.integrate": "Integral",
    "symbolic.section.solve": "Solving for {unknown}",
    "symbolic.section.claim": "Checking a claim",
    "symbolic.section.plot": "Graph of the function and its derivative",
    "symbolic.section.code": "Implementation in numpy",
    "symbolic.max_ties": "max is differentiated piecewise: the branch of the larger argument; at a tie the "
                         "gradient goes to the first argument (as for max pooling in PyTorch).",
    "symbolic.not_equal": "Note: {lhs} is not equal to {candidate}.",
    "symbolic.elementwise": "The activation acts on each element separately: {y} = {value} for a "
                            "{n}-dimensional input {x}.",
    "symbolic.diagonal": "Output i depends only on input i, so every off-diagonal entry is 0: the Jacobian is diagonal.",
    "symbolic.not_diagonal": "The Jacobian has non-zero off-diagonal entries.",
    "symbolic.values": "At {values}:",
    "symbolic.domain": "{unknown} ranges over {domain}.",
    "symbolic.case": "Case {case}:",
    "symbolic.no_real_root": "The factor {factor} has no real root (its discriminant is {disc} < 0).",
    "symbolic.root_outside": "The factor {factor} vanishes only at {roots}, outside the admissible range.",
    "symbolic.factor_roots": "The factor {factor} vanishes at {roots}.",
    "symbolic.no_solution": "No admissible value of {unknown} satisfies the equation.",
    "symbolic.solutions": "Solutions for {unknown}: {solutions}.",
    "symbolic.claim_holds": "The claim {claimed} {source} agrees with the derived value {value}.",
    "symbolic.claim_fails": "The claim {claimed} {source} does not agree with the derived value {value}.",
    "symbolic.claim_only_when": "The two agree only when {condition}.",
    "symbolic.plot_caption": "The function and its derivative.",
    "symbolic.code_caption": "Generated code (numpy).",
    "symbolic.code_stable_softplus": "The direct form `np.log(1 + np.exp(x))` overflows for large x: "
                                     "`np.exp(1000) = inf`, and the backward pass $e^x/(1 + e^x)$ becomes `inf/inf = nan`. "
                                     "softplus is therefore computed as `np.logaddexp(0, x)`.",
    "symbolic.code_stable_sigmoid": "The sigmoid is computed without overflow: only exp(−|x|) is ever "
                                    "evaluated ($1/(1 + e^{{-x}})$ for x ≥ 0, $e^x/(1 + e^x)$ for x < 0).",
    "symbolic.section.backprop_forward": "Forward pass (shapes in the symbolic sizes)",
    "symbolic.section.backprop_backward": "Backward pass: gradients of the loss",
    "symbolic.section.backprop_check": "Check of the formulas",
    "symbolic.backprop.input": "The input {x} has {shape} entries.",
    "symbolic.backprop.shape": "{q}, of shape {shape}:",
    "symbolic.backprop.loss.cross_entropy": "Negative log-likelihood (cross-entropy) against the target distribution {g} "
                                  "(for a one-hot target t: $L = -\\ln o_t$):",
    "symbolic.backprop.loss.mse": "Squared loss against the target {g}, without the factor ½:",
    "symbolic.backprop.fused.cross_entropy": "For softmax with the negative log-likelihood, $\\partial L/\\partial {zj} = \\sum_k {gk} ({oj} - \\delta_{{jk}})$ "
                                     "$= {oj} \\sum_k {gk} - {gj}$; since the target {g} is a distribution ($\\sum_k {gk} = 1$), "
                                     "the gradient with respect to the softmax input {z} is {o} − {g}.",
    "symbolic.backprop.grad.mse": "The derivative of the squared loss with respect to the output {o} is 2({o} − {g}).",
    "symbolic.backprop.mask": "ReLU passes the gradient where its input is positive: {m} = {mask} (the derivative "
                              "at 0 is taken as 0; in the results its entries are named {entries}).",
    "symbolic.backprop.checked": "The formulas were instantiated for {sizes} with symbolic entries; all {count} "
                                 "entries of the parameter gradients equal sympy's derivatives of the whole loss.",
    "symbolic.backprop.checked_distribution": "The formulas were instantiated for {sizes} with symbolic entries (and Σg = 1); "
                                     "all {count} entries of the parameter gradients equal sympy's derivatives of "
                                     "the whole loss.",
    "symbolic.section.minimize": "Minimizing {f} with {optimizer}",
}
