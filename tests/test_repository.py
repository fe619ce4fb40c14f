"""The repository stands on its own: nothing outside it is needed, and nothing but the product is in it.

A user's clone has only what git tracks, so every tracked file is checked: no reference to the
folder beside the repository or to documents kept there, no absolute path of one machine, and no
log or scratch file. The patterns are written with character classes (and the examples below
split in two) so that this file does not match itself.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

OUTSIDE_DOCUMENTS = re.compile(
    rb"\.\./share[d]"  # the folder beside the repository, which a clone does not have
    rb"|(?<![\w-])(?:DATA_CONTRAC[T]|DESIG[N]|STYL[E])\.md"  # documents kept there
)
MACHINE_PATH = re.compile(rb"(?<![\w.~-])/(?:wor[k]|roo[t]|tm[p])/")

# file → why it may name an absolute machine path. None needs one today: tests write into
# pytest's tmp_path, and the product writes where the user tells it.
ALLOWED_MACHINE_PATHS: dict[str, str] = {}

# Never part of the product, wherever they are: logs, editor and merge leftovers, caches, warehouses.
STRAY_ANYWHERE = re.compile(r"(^|/)(\.DS_Store|__pycache__/.*|[^/]*\.(log|tmp|bak|orig|rej|swp|pyc|duckdb))$")
# At the top level also: notes and outputs (*.txt except licences and requirements, *.out, patches)
# and scratch scripts.
STRAY_AT_ROOT = re.compile(
    r"^(?!(requirements|LICENSE|NOTICE|COPYING)[^/]*\.txt$)([^/]*\.(txt|out|patch|diff)|(scratch|tmp|temp)[^/]*)$"
)


def _tracked() -> list[str]:
    if shutil.which("git") is None:
        pytest.skip("git is not installed: the tracked files cannot be listed")
    done = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z"], capture_output=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"{ROOT} is not a git checkout (an unpacked archive?): {done.stderr.decode().strip()}")
    return [name for name in done.stdout.decode().split("\0") if name and (ROOT / name).is_file()]


def _matches(pattern: re.Pattern[bytes], files: list[str]) -> list[str]:
    found = []
    for name in files:
        for number, line in enumerate((ROOT / name).read_bytes().splitlines(), start=1):
            for match in pattern.finditer(line):
                found.append(f"{name}:{number}: {match.group().decode(errors='replace')}")
    return found


def test_no_file_refers_to_documents_outside_the_repository():
    found = _matches(OUTSIDE_DOCUMENTS, _tracked())
    assert not found, "a clone has only the repository; refer to files inside it:\n" + "\n".join(found)


def test_no_file_holds_an_absolute_path_of_one_machine():
    files = [name for name in _tracked() if name not in ALLOWED_MACHINE_PATHS]
    found = _matches(MACHINE_PATH, files)
    assert not found, "nothing may depend on where the repository was cloned:\n" + "\n".join(found)


def test_the_allow_list_names_tracked_files():
    assert set(ALLOWED_MACHINE_PATHS) <= set(_tracked())


def test_no_stray_files():
    stray = [name for name in _tracked() if STRAY_ANYWHERE.search(name) or STRAY_AT_ROOT.match(name)]
    assert not stray, "logs, notes and scratch files are not part of the product:\n" + "\n".join(stray)


@pytest.mark.parametrize(
    ("name", "stray"),
    [
        ("run.log", True), ("notes.txt", True), ("out/result.log", True), ("scratch_fit.py", True),
        ("tmp.py", True), ("fix.patch", True), ("src/pkg/__pycache__/m.cpython-311.pyc", True),
        ("roi.duckdb", True), ("requirements.txt", False), ("requirements-dev.txt", False),
        ("LICENSE", False), ("LICENSE.txt", False), ("README.md", False), ("docs/notes.txt", False),
        ("tests/data/x.csv", False),
    ],
)
def test_the_stray_file_rules(name: str, stray: bool):
    assert bool(STRAY_ANYWHERE.search(name) or STRAY_AT_ROOT.match(name)) is stray


@pytest.mark.parametrize(
    ("line", "found"),
    [
        (b"see ../" b"shared/realdata", True), (b"DATA_" b"CONTRACT.md", True), (b"docs/DES" b"IGN.md", True),
        (b"STYLE" b".md", True), (b"MY_STYLE.md", False), (b"docs/data-contract.md", False),
    ],
)
def test_the_outside_document_pattern(line: bytes, found: bool):
    assert bool(OUTSIDE_DOCUMENTS.search(line)) is found


@pytest.mark.parametrize(
    ("line", "found"),
    [
        (b'open("/' b'tmp/x")', True), (b"cd /" b"work/main", True), (b"HOME=/" b"root/", True),
        (b"https://example.com/wor" b"k/x", False), (b"network/", False), (b"tmp_path / 'x'", False),
    ],
)
def test_the_machine_path_pattern(line: bytes, found: bool):
    assert bool(MACHINE_PATH.search(line)) is found
