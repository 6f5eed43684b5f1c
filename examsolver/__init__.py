"""examsolver: exact worked solutions of deep-learning exam problems written as YAML.

`examsolver.solve(path_or_mapping, lang="hr")` returns the Solution (see examsolver/api.py).
"""


def solve(spec, lang: str = "hr"):
    """Solve a problem spec (path or mapping); the Solution displays itself in Jupyter and
    exposes results by name.  Imported on use, so `import examsolver` stays instant."""
    from examsolver.api import solve as _solve

    return _solve(spec, lang)
