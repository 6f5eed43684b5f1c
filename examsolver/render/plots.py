"""Figures: drawn from data the engine computed (never computed here).

A Figure block names a plot kind and carries its data; each kind is a function
registered with @plot that draws on a matplotlib Axes.  matplotlib is imported
only when a figure is actually drawn.  Output is vector graphics: SVG for HTML
and Markdown, PDF for LaTeX.
"""

from __future__ import annotations

import io

PLOTS: dict = {}


def plot(kind: str):
    def register(fn):
        PLOTS[kind] = fn
        return fn

    return register


@plot("curves")
def _curves(ax, data: dict, labels: dict) -> None:
    """data: {"series": [{"x": [...], "y": [...], "label": {"hr":…, "en":…}, "step": bool}],
    "xlabel": {...}, "ylabel": {...}, "points": [{"x":…, "y":…}] optional, "xlim"/"ylim" optional}."""
    for series in data["series"]:
        label = labels.get(id(series))
        if series.get("step"):
            ax.step(series["x"], series["y"], where="post", label=label)
        else:
            ax.plot(series["x"], series["y"], label=label, marker=series.get("marker"))
    for point in data.get("points", []):
        ax.plot([point["x"]], [point["y"]], "o", color="black")
    if "xlim" in data:
        ax.set_xlim(*data["xlim"])
    if "ylim" in data:
        ax.set_ylim(*data["ylim"])
    ax.grid(True, alpha=0.3)


def render_figure(figure, fmt: str, lang: str) -> bytes:
    """The figure as 'svg' or 'pdf' bytes, texts in the given language."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if figure.kind not in PLOTS:
        raise KeyError(f"no plot kind {figure.kind!r} (known: {', '.join(PLOTS)})")
    data = figure.data
    labels = {id(s): _localized(s.get("label"), lang) for s in data.get("series", [])}
    fig, ax = plt.subplots(figsize=data.get("size", (5, 3.5)))
    try:
        PLOTS[figure.kind](ax, data, labels)
        if data.get("xlabel"):
            ax.set_xlabel(_localized(data["xlabel"], lang))
        if data.get("ylabel"):
            ax.set_ylabel(_localized(data["ylabel"], lang))
        if any(labels.values()):
            ax.legend()
        _decimal_comma(ax, lang)
        fig.tight_layout()
        buffer = io.BytesIO()
        # No dates, fixed SVG ids (random by default): the same spec gives the same document bytes.
        with matplotlib.rc_context({"svg.hashsalt": "examsolver"}):
            fig.savefig(buffer, format=fmt, metadata={"Date": None} if fmt == "svg" else {"CreationDate": None})
        return buffer.getvalue()
    finally:
        plt.close(fig)


def _decimal_comma(ax, lang: str) -> None:
    """Tick labels with the language's decimal mark (0,25 in Croatian), as in the text beside them."""
    from examsolver.render.common import DECIMAL_SEPARATOR

    if DECIMAL_SEPARATOR[lang] != ",":
        return
    from matplotlib.ticker import FuncFormatter

    comma = FuncFormatter(lambda v, pos: f"{v:g}".replace(".", ",").replace("-", "−"))
    for axis in (ax.xaxis, ax.yaxis):
        if axis.get_scale() == "linear":
            axis.set_major_formatter(comma)


def _localized(text, lang: str):
    if isinstance(text, dict):
        return text.get(lang) or next(iter(text.values()), None)
    return text


def _discover() -> None:
    """Register the plot kinds of every render/plots_<area>.py module (one file per problem family)."""
    import pkgutil
    from importlib import import_module

    from examsolver import render

    for module in sorted(m.name for m in pkgutil.iter_modules(render.__path__)):
        if module.startswith("plots_"):
            import_module(f"examsolver.render.{module}")


_discover()
