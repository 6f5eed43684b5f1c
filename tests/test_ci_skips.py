"""In CI no oracle can be skipped away: tests/conftest.py turns every skip into a failure under CI=true."""

import os
import shutil
import subprocess
import sys

from conftest import ROOT

SKIPPING = '''
import pytest

torch = pytest.importorskip("no_such_oracle_module")


def test_compares_with_the_oracle():
    pass
'''
SKIPPING_INSIDE = '''
import pytest


def test_needs_a_tool():
    pytest.skip("chromium not installed")


@pytest.mark.xfail(strict=True, reason="a known engine bug")
def test_known_bug():
    assert False


def test_runs():
    pass
'''


def _pytest(tmp_path, env: dict) -> subprocess.CompletedProcess:
    shutil.copy(ROOT / "tests" / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "test_module_skip.py").write_text(SKIPPING, encoding="utf-8")
    (tmp_path / "test_inside_skip.py").write_text(SKIPPING_INSIDE, encoding="utf-8")
    clean = {k: v for k, v in os.environ.items() if k not in ("CI", "EXAMSOLVER_REQUIRE_TOOLS")}
    clean["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"          # a bare pytest starts in a fraction of the time
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider",
                           "--continue-on-collection-errors", str(tmp_path)],
                          cwd=tmp_path, env={**clean, **env}, capture_output=True, text=True)


def test_a_skip_fails_in_ci_and_nowhere_else(tmp_path):
    local = _pytest(tmp_path, {})
    assert local.returncode == 0, local.stdout
    assert "1 passed, 2 skipped, 1 xfailed" in local.stdout
    ci = _pytest(tmp_path, {"CI": "true"})
    assert ci.returncode == 1, ci.stdout
    assert "ERROR test_module_skip.py" in ci.stdout and "could not import 'no_such_oracle_module'" in ci.stdout
    assert "FAILED test_inside_skip.py::test_needs_a_tool" in ci.stdout and "chromium not installed" in ci.stdout
    assert "1 failed, 1 passed, 1 xfailed, 1 error" in ci.stdout          # a strict xfail stays what it is


def test_what_requires_the_tools():
    from conftest import tools_required

    assert tools_required({"CI": "true"}) and tools_required({"CI": "1"}) and tools_required({"CI": "TRUE"})
    assert tools_required({"EXAMSOLVER_REQUIRE_TOOLS": "1"}) and tools_required({"CI": "false",
                                                                                  "EXAMSOLVER_REQUIRE_TOOLS": "1"})
    assert not tools_required({}) and not tools_required({"CI": "false"}) and not tools_required({"CI": ""})
