"""English phrases for PyTorch's further layers: activations, layer normalization, dropout,
global max pooling and embedding."""

PHRASES = {
    # activations
    "forward.leaky_relu": "LeakyReLU activation:",
    "backward.leaky_relu": "Backward pass through the LeakyReLU activation:",
    "forward.elu": "ELU activation:",
    "backward.elu": "Backward pass through the ELU activation:",
    "forward.softplus": "Softplus activation:",
    "backward.softplus": "Backward pass through softplus (its derivative is the sigmoid):",
    "forward.gelu": "GELU activation:",
    "backward.gelu": "Backward pass through the GELU activation:",
    "forward.log_softmax": "Log-softmax activation:",
    "backward.log_softmax": "Backward pass through log-softmax:",
    "convention.leaky_relu": "LeakyReLU: negative slope {slope} (PyTorch's default 0.01); at 0 the derivative is {slope}, as in PyTorch.",
    "convention.elu": "ELU: α = {alpha}; at 0 the derivative is α, as in PyTorch.",
    "convention.softplus": "Softplus: β = {beta}; where βx > {threshold} it is x itself (PyTorch's threshold).",
    "convention.gelu_none": "GELU in its exact form x Φ(x), Φ the standard normal distribution function (PyTorch's approximate='none').",
    "convention.gelu_tanh": "GELU in PyTorch's tanh approximation ½x(1 + tanh(√(2/π)(x + 0.044715x³))).",
    # layer normalization
    "stats.layernorm": "Statistics of layer normalization {layer}, for each example separately (normalized last axes: {count}):",
    "normalize.layernorm": "Normalization:",
    "affine.layernorm": "Scaling and shift:",
    "backward.layernorm": "Backward pass through layer normalization {layer} (including the example's statistics):",
    "convention.layernorm": "Layer normalization: biased variance (n in the denominator), ε = {eps} (PyTorch's default is 1e-5).",
    # dropout
    "forward.dropout": "Dropout {layer} with the given mask m (p = {p}):",
    "forward.dropout_eval": "Dropout {layer} in evaluation mode:",
    "backward.dropout": "Backward pass through dropout {layer} (the gradient passes where the mask is 1):",
    "convention.dropout_inverted": "Dropout is inverted (as PyTorch): in training the kept activations are scaled by 1/(1 − p), in evaluation the layer is the identity.",
    "convention.dropout_plain": "Dropout without scaling in training (the textbook form): in evaluation the activations are scaled by 1 − p.",
    "convention.dropout_eval": "Dropout {layer} is in evaluation mode.",
    "mistake.dropout_plain": "dropout without the 1/(1 − p) scaling in training (the textbook form)",
    "mistake.dropout_inverted": "inverted dropout: kept units scaled by 1/(1 − p) in training (PyTorch)",
    # global max pooling
    "forward.global_max_pool": "Global max pooling (separately for each feature map):",
    "backward.global_max_pool": "Backward pass through global max pooling: each map's gradient goes to its maximum (mask M):",
    # embedding
    "forward.embedding": "Embedding {layer}: the rows of W chosen by the indices (one-hot rows times W):",
    "backward.embedding": "Gradient of embedding {layer}: each upstream row is added to the row of W it came from (the indices get no gradient):",
    "convention.embedding_padding": "Embedding {layer}: row {index} is the padding row (PyTorch's padding index) and gets no gradient.",
    "convention.weights_in_out": "Weights stored input × output, as in the courses of the Andrew Ng / MIT 6.036 tradition: $\\mathbf{{z}} = \\mathbf{{W}}^\\top \\mathbf{{x}} + \\mathbf{{b}}$; W, its gradient $\\partial L/\\partial \\mathbf{{W}} = \\mathbf{{x}}\\, \\partial L/\\partial \\mathbf{{z}}$ and its updates are given in that layout (PyTorch's W is their transpose).",
    # scaled dot-product attention
    "forward.attention": "Scaled dot-product attention {layer} (one head), softmax(QKᵀ/√d)V as in PyTorch. {details}",
    "attention.projections": "Queries, keys and values: projections of the input X (weights stored output × input, as in PyTorch):",
    "attention.scores": "Scores: the dot products of the queries with the keys, scaled:",
    "attention.weights": "Attention weights: the softmax of each row of scores:",
    "attention.weights_masked": "Attention weights: the softmax of each row of scores over the keys the mask allows (a masked position counts as a score of −∞, so its weight is 0):",
    "attention.output": "Output: each row is the average of the values weighted by its attention weights:",
    "backward.attention": "Backward pass through attention {layer}:",
    "attention.softmax_backward": "Through the softmax of each row (rowsum adds the entries of a row):",
    "attention.input_backward": "The input X enters the queries, the keys and the values, so its gradient has three parts:",
}
