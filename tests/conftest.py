import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PROBLEMS = ROOT / "problems"


@pytest.fixture
def problems_dir():
    return PROBLEMS
