"""English words of the document formats (LaTeX article, beamer slides, HTML)."""

PHRASES = {
    "doc.torch_check": "PyTorch check code",
    "doc.key_in_solution": "see the solution",
    "doc.task": "Task {n}",
    "doc.solution_part": "{task} — solution {part}",
    "doc.booklet_title": "Solutions",
    "doc.figure_omitted": "(Figure omitted: write the solution to a file with -o.)",
    "doc.variant_title": "{title} (variant {n})",
    "doc.equation_number": "equation {n}",
}
PHRASES.update({
    "heading.given": "Given",
    "given.layer": "layer {name} ({kind}) {params}",
    "given.linear": "fully connected layer ($\\mathbf{{W}}\\mathbf{{x}} + \\mathbf{{b}}$) with {params}",
    "given.conv1d": "1D convolution with kernels {params}",
    "given.conv2d": "2D convolution with kernels {params}",
    "given.batchnorm": "batch normalization {params}",
    "given.relu": "ReLU activation",
    "given.sigmoid": "sigmoid activation",
    "given.tanh": "tanh activation",
    "given.softmax": "softmax activation",
    "given.global_avg_pool": "global average pooling",
    "given.max_pool2d": "max pooling",
    "given.avg_pool2d": "average pooling",
    "given.flatten": "flattening into a vector",
    "given.example": "the example {x}",
    "given.example_label": "the example {x} with the label {y}",
    "given.loss": "the loss {kind}",
    "given.loss.cross_entropy": "the cross-entropy loss",
    "given.loss.binary_cross_entropy": "the binary cross-entropy loss",
    "given.loss.mse": "the squared loss",
})
