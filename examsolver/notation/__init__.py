"""How values are written as text (plain, LaTeX, code): shared by the engine (result names,
messages) and the renderers, so the engine never imports a printer."""
