"""The CI rule of ``tests/ci_skips.py``, run on a throwaway test file in a pytest subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rag.settings import ROOT

SKIPPING = '''
import pytest

@pytest.fixture
def fixture_that_is_missing():
    pytest.skip("the widget corpus is not at /nowhere; get it with: make widgets")

def test_needs_the_fixture(fixture_that_is_missing):
    pass

def test_marked():
    pytest.skip("needs a tool: apt-get install tool")

@pytest.mark.xfail(reason="known")
def test_expected_failure():
    assert False
'''


def run(tmp_path: Path, ci: str | None) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_skipping.py").write_text(SKIPPING)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["PYTHONPATH"] = str(ROOT / "tests")
    if ci is not None:
        env["CI"] = ci
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rA", "-p", "ci_skips", "-p", "no:cacheprovider",
                           str(tmp_path / "test_skipping.py")], env=env, cwd=tmp_path, capture_output=True, text=True)


@pytest.mark.parametrize("ci", ["true", "1"])
def test_in_ci_a_skip_fails_and_names_what_is_missing(tmp_path: Path, ci: str) -> None:
    proc = run(tmp_path, ci)
    assert proc.returncode == 1, proc.stdout
    # a fixture that skips fails the setup (an error), a test that skips fails; xfail is untouched
    assert "1 failed, 1 xfailed, 1 error" in proc.stdout.splitlines()[-1]
    assert "skipped in CI, where every test must run" in proc.stdout and "make widgets" in proc.stdout


def test_outside_ci_a_skip_stays_a_skip_with_its_reason(tmp_path: Path) -> None:
    proc = run(tmp_path, None)
    assert proc.returncode == 0, proc.stdout
    assert "2 skipped" in proc.stdout and "make widgets" in proc.stdout and "apt-get install tool" in proc.stdout


def test_the_faq_fixture_ships_with_the_repository(faq_dir: Path) -> None:
    assert faq_dir.is_relative_to(ROOT) and len(list(faq_dir.glob("*.md"))) == 4
    assert "Apache" in (faq_dir / "PROVENANCE.txt").read_text()
