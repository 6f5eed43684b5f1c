"""The "layers" plot: a fully connected network drawn as columns of nodes joined by edges.

data: {"layers": [{"size": 3, "label": "x"}, {"size": 5, "label": "h1"}, …]}; every node is joined to
every node of the next column.  Columns wider than MAX_NODES show their first and last nodes with dots.
"""

from __future__ import annotations

from examsolver.render.plots import plot

MAX_NODES = 12


def _positions(size: int) -> list:
    shown = size if size <= MAX_NODES else MAX_NODES
    return [(shown - 1) / 2 - i for i in range(shown)]


@plot("layers")
def _layers(ax, data: dict, labels: dict) -> None:
    columns = data["layers"]
    ys = [_positions(int(c["size"])) for c in columns]
    for x, (left, right) in enumerate(zip(ys, ys[1:])):
        for y0 in left:
            for y1 in right:
                ax.plot([x, x + 1], [y0, y1], color="0.6", linewidth=0.6, zorder=1)
    for x, (column, heights) in enumerate(zip(columns, ys)):
        ax.scatter([x] * len(heights), heights, s=260, color="white", edgecolors="black", zorder=2)
        if int(column["size"]) > MAX_NODES:
            ax.text(x, 0, "⋮", ha="center", va="center", zorder=3)
        top = max(heights) + 0.9
        ax.text(x, top, f"{column.get('label', '')} ({column['size']})", ha="center", va="bottom")
    ax.set_axis_off()
    ax.margins(0.15)
