"""Snapshots: files written from the engine's own output, kept only to notice that the output changed.

A snapshot records what the engine printed when it was last written, not what is right: regenerated
after a bug, it approves the bug.  So no snapshot counts as verification (every key is confirmed from its
own source in test_key_sources.py, the numbers by the PyTorch oracles), and a snapshot is rewritten only
with a reason, given as the value of EXAMSOLVER_UPDATE_SNAPSHOTS:

    EXAMSOLVER_UPDATE_SNAPSHOTS="why the output changed" python -m pytest tests/test_documents.py -k snapshot
    EXAMSOLVER_UPDATE_SNAPSHOTS="why the results changed" python -m pytest tests/test_snapshots.py

Every file written is recorded in tests/snapshots/REASONS (its content's hash, its name, the reason);
a snapshot whose content no line records (edited by hand, or written without a reason) fails here.
Review the diff, and cite the reason in the commit that changes a snapshot.

tests/snapshots/: the Markdown, LaTeX and beamer documents of 2022 tasks 1 and 3 (test_documents.py),
and seed_results.json, the results of the seed problems as an earlier engine gave them (below).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
SNAPSHOTS = Path(__file__).parent / "snapshots"
REASONS = SNAPSHOTS / "REASONS"
UPDATE = "EXAMSOLVER_UPDATE_SNAPSHOTS"


def update_reason() -> str | None:
    """The reason given for rewriting snapshots, or None when they are only compared."""
    reason = os.environ.get(UPDATE, "").strip()
    if not reason:
        return None
    if len(reason.split()) < 3:
        pytest.fail(f'{UPDATE}={reason!r}: give the reason the output changed, in words '
                    f'({UPDATE}="minus signs of operands kept in the steps")')
    return reason


def digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def recorded() -> dict:
    """{file name: [content hashes that have a reason]} from tests/snapshots/REASONS."""
    out: dict = {}
    for line in REASONS.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            sha, name, _date, reason = line.split("\t")
            assert reason.strip(), f"REASONS: no reason for {name}"
            out.setdefault(name, []).append(sha)
    return out


def unrecorded(path: Path, text: str) -> bool:
    """Whether the file's content differs from text or has no reason recorded (e.g. after a merge)."""
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        return True
    return digest(text) not in recorded().get(path.name, [])


def write_snapshot(path: Path, text: str, reason: str) -> None:
    path.write_text(text, encoding="utf-8")
    line = f"{digest(text)}\t{path.name}\t{datetime.date.today().isoformat()}\t{reason}\n"
    with REASONS.open("a", encoding="utf-8") as log:
        log.write(line)


def compare_snapshot(path: Path, text: str, rerun: str) -> None:
    """Fail with a diff when the text differs from the snapshot (rewrite it, with a reason, when one
    is given and the text changed or its content has no reason yet)."""
    reason = update_reason()
    if reason is not None and unrecorded(path, text):
        write_snapshot(path, text, reason)
    how = f'{UPDATE}="<why it changed>" python -m pytest {rerun}'
    assert path.exists(), f"snapshot {path.name} missing: if intended, {how}"
    expected = path.read_text(encoding="utf-8")
    if text != expected:
        import difflib

        diff = "".join(list(difflib.unified_diff(expected.splitlines(True), text.splitlines(True),
                                                 str(path), "now"))[:60])
        pytest.fail(f"{path.name} changed (a change, not necessarily an error; if intended: {how}):\n{diff}")


def test_every_snapshot_was_written_with_a_reason():
    reasons = recorded()
    files = sorted(p for p in SNAPSHOTS.iterdir() if p != REASONS)
    assert files
    for path in files:
        sha = digest(path.read_text(encoding="utf-8"))
        assert sha in reasons.get(path.name, []), (
            f"{path.name}: its content ({sha}) has no reason in {REASONS.name}: "
            f'rewrite it with {UPDATE}="<why>" instead of by hand')


# ----- the seed problems' results, as an earlier engine gave them ----------------------------------
SEED_RESULTS = SNAPSHOTS / "seed_results.json"


def _results(name: str) -> dict:
    from examsolver.pipeline import solve_file

    return solve_file(ROOT / "problems" / name).results


def _text(value) -> str:
    from examsolver.render.jsonout import exact_text

    if isinstance(value, (str, bool, int)) or type(value).__module__.startswith("sympy"):
        return str(value)
    return exact_text(value)


def _compared(value) -> bool:
    """Values of the number tower are compared; text, counts and sympy expressions are not."""
    return not (isinstance(value, (str, bool, int)) or type(value).__module__.startswith("sympy"))


@pytest.mark.parametrize("name", sorted(json.loads(SEED_RESULTS.read_text(encoding="utf-8"))))
def test_seed_results_unchanged_since_the_snapshot(name):
    """A change detector: every result the snapshot holds is still there, with the same exact value."""
    from examsolver.spec.expr import parse_value

    snapshot = json.loads(SEED_RESULTS.read_text(encoding="utf-8"))
    results = _results(name)
    if (reason := update_reason()) is not None:
        snapshot[name] = {key: _text(results[key]) for key in snapshot[name] if key in results}
        text = json.dumps(snapshot, ensure_ascii=False, indent=1)
        if unrecorded(SEED_RESULTS, text):
            write_snapshot(SEED_RESULTS, text, reason)
    assert set(snapshot[name]) <= set(results), "results named in the snapshot are gone"
    for key, before in snapshot[name].items():
        if not _compared(results[key]):
            continue
        was = np.asarray(parse_value(before), dtype=object)
        now = np.asarray(results[key], dtype=object)
        assert was.shape == now.shape or was.size == now.size, key
        assert all(a == b for a, b in zip(was.flat, now.flat)), (f"{key} changed since the snapshot "
                                                                  f"(was {before}, now {_text(results[key])})")
