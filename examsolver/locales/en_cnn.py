"""English phrases for 2D convolution, 2D pooling, flatten and the inferred image size."""

PHRASES = {
    # conv2d
    "forward.conv2d": "Forward pass through the 2D convolutional layer {layer} ({c} {c:kernel|kernels} of size {kh}×{kw}, {details}), one feature map per kernel:",
    "backward.conv2d": "Gradients of the 2D convolutional layer {layer} ({details}): ∂L/∂w = x ⋆ ∂L/∂h, summed over the positions of each kernel:",
    "conv2d.padding_stride": "zero padding {ph}×{pw}, stride {sh}×{sw}{more}",
    # dilation and groups (1D and 2D)
    "conv1d.options": " (stride {s}, zero padding {p}{more})",
    "conv.dilation": ", dilation {d}: dil(w) is the kernel with its entries {d} apart (zeros between them)",
    "conv.groups": ", {g} groups: each kernel reads only the {c} input {c:channel|channels} of its group",
    "conv.dilation_groups": ", dilation {d}: dil(w) is the kernel with its entries {d} apart (zeros between them), {g} groups: each kernel reads only the {c} input {c:channel|channels} of its group",
    "conv.dilated_taps": "With dilation {d} the kernel's entries sit {d} apart in dil(w), so ∂L/∂w consists of those entries of ∂L/∂dil(w):",
    # pooling
    "pool.padding": ", padding {ph}×{pw}",
    "forward.max_pool2d": "Max pooling {layer} (window {kh}×{kw}, stride {sh}×{sw}{padding}), separately for each feature map:",
    "backward.max_pool2d": "Backward pass through max pooling {layer}: each window's gradient goes to its maximum (mask M; up(·) repeats every entry over its window):",
    "forward.avg_pool2d": "Average pooling {layer} (window {kh}×{kw}, stride {sh}×{sw}{padding}), separately for each feature map:",
    "backward.avg_pool2d": "Backward pass through average pooling {layer}: each window's gradient is shared equally by its entries (up(·) repeats every entry over its window):",
    "forward.max_pool1d": "Max pooling {layer} (window {k}, stride {s}, padding {p}), separately for each channel:",
    "backward.max_pool1d": "Backward pass through max pooling {layer}: each window's gradient goes to its maximum (mask M; up(·) repeats every entry over its window):",
    "forward.avg_pool1d": "Average pooling {layer} (window {k}, stride {s}, padding {p}), separately for each channel:",
    "backward.avg_pool1d": "Backward pass through average pooling {layer}: each window's gradient is shared by its entries (up(·) repeats every entry over its window):",
    "convention.avg_pool_pad_included": "Average pooling with padding: the padded zeros count, every window is divided by the kernel size (PyTorch's {option} = True).",
    "convention.avg_pool_pad_excluded": "Average pooling with padding: only the inputs a window covers count (PyTorch's {option} = False).",
    "forward.flatten": "Flattening the feature maps into a vector:",
    "backward.flatten": "Backward pass through flattening (the gradient takes the shape of the feature maps again):",
    # conventions
    "convention.maxpool_first": "Max-pooling ties: the gradient goes to the first maximum of the window in row-major order (as PyTorch).",
    "convention.maxpool_split": "Max-pooling ties: the gradient is split equally among the tied maxima of the window.",
    "convention.flatten_channel_first": "Flattening is channel-first: all of feature map 1 row by row, then map 2, … (order (C, H, W), as PyTorch).",
    "convention.flatten_channel_last": "Flattening is channel-last: for each position (row by row) all channels (order (H, W, C), as TensorFlow/Keras).",
    # warnings
    "warning.maxpool_ties": "{layer}: {count} of {total} pooling windows have more than one maximum. {rule} Another rule would give other gradients.",
    # input size
    "section.input_size": "Size of the input image",
    "input_size.flatten": "The fully connected layer takes {width} inputs, the flattened {channels} feature {channels:map|maps} of size H×W:",
    "input_size.square": "Assuming square feature maps (H = W):",
    "input_size.layer": "Going back through {layer} (window k = {k}, stride s = {s}, padding p = {p}); $n_{{\\text{{in}}}} = (n_{{\\text{{out}}}} - 1) \\cdot s + k - 2p$ is the size whose windows cover the input exactly:",
    "input_size.result": "The input image is {shape}.",
    "input_size.floor": "With the floor rule of PyTorch the input sizes {sizes} all give the same shapes; the larger ones leave their last rows/columns unused, so we take {size}.",
    "input_size.alternative_outside": "With zero padding {p} in every convolution the image would be {shape}; the given entry at ({at}) lies outside it, so that reading does not fit the data.",
    "input_size.alternative_fits": "With zero padding {p} in every convolution the image would be {shape}; the given entries also fit that reading.",
}
