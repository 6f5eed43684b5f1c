"""Phrases of the graph: ops that combine nodes, sums over a node's consumers, given gradients."""

PHRASES = {
    "forward.add": "Sum of the nodes (residual connection) {layer}:",
    "backward.add": "Backward pass through the sum {layer}: every summand receives the upstream gradient:",
    "forward.concat": "Concatenation {layer}:",
    "backward.concat": "Backward pass through the concatenation {layer}: each part receives its rows of the gradient:",
    "forward.mul": "Elementwise product {layer}:",
    "backward.mul": "Backward pass through the elementwise product {layer}:",
    "forward.matmul": "Matrix product {layer}:",
    "backward.matmul": "Backward pass through the matrix product {layer}:",
    "backward.node_sum": "The node feeds {count} others: its gradient is the sum of what flows back through each:",
    "backward.given": "The given upstream gradient:",
    "update.parameter_single": "Update of {name}:",
    "update.parameter_summed": "Update of {name} with the summed gradient:",
    "loss.sum": "The loss is the sum of the output's entries:",
    "backward.sum": "The gradient of a sum is 1 in every entry:",
}
