"""Every Python block of the README runs, in order, in one namespace, on the demo model.

A block that cannot run offline on a CPU says so in a comment of its own,
``# not run in tests: <why>`` (a model hub, a GPU); it is skipped with that reason and
counted. A block that opens a board runs when the board's names exist and is skipped,
saying which name is missing, otherwise.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

import probekit as pk

README = Path(__file__).resolve().parents[2] / "README.md"
SKIP_MARK = re.compile(r"#\s*not run in tests:\s*(.+)")
BOARD_NAMES = ("ProbeBoard", "board")


def python_blocks(text: str) -> list[tuple[int, str]]:
    """(line number, source) of every fenced ```python block, in order."""
    return [
        (text[: m.start()].count("\n") + 2, m.group(1))
        for m in re.finditer(r"^```python[ \t]*\n(.*?)^```[ \t]*$", text, re.MULTILINE | re.DOTALL)
    ]


def skip_reason(source: str) -> str | None:
    """Why a block is not run here, or None to run it."""
    mark = SKIP_MARK.search(source)
    if mark:
        return mark.group(1).strip()
    for name in BOARD_NAMES:
        if re.search(rf"\bpk\.{name}\b", source) and not hasattr(pk, name):
            return f"pk.{name} does not exist in this version"
    return None


BLOCKS = python_blocks(README.read_text(encoding="utf-8"))


def test_the_readme_has_python_blocks_and_runs_most_of_them():
    skipped = [line for line, source in BLOCKS if SKIP_MARK.search(source)]
    print(f"README: {len(BLOCKS)} python blocks, {len(skipped)} marked not run in tests")
    assert len(BLOCKS) >= 3
    assert len(skipped) <= len(BLOCKS) // 2, f"most README blocks are skipped: lines {skipped}"


def test_block_extraction_and_the_skip_marker():
    text = "x\n```python\na = 1\n```\n```bash\nls\n```\n```python\n# not run in tests: a GPU\n```\n"
    blocks = python_blocks(text)
    assert [line for line, _ in blocks] == [3, 9]
    assert skip_reason(blocks[0][1]) is None
    assert skip_reason(blocks[1][1]) == "a GPU"


@pytest.fixture(scope="module")
def namespace() -> dict[str, Any]:
    """One namespace for all blocks, as a reader pasting them one after another has."""
    return {"__name__": "__readme__"}


@pytest.mark.slow
@pytest.mark.parametrize(("line", "source"), BLOCKS, ids=[f"README.md:{n}" for n, _ in BLOCKS])
def test_readme_block_runs(line, source, namespace, monkeypatch, tmp_path):
    if namespace.get("_failed"):
        pytest.skip(f"the block at README.md:{namespace['_failed']} failed; this one builds on it")
    reason = skip_reason(source)
    if reason:
        pytest.skip(f"README.md:{line}: {reason}")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)  # anything a block writes lands here
    code = compile(source, f"README.md:{line}", "exec")
    try:
        exec(code, namespace)
    except BaseException:
        namespace["_failed"] = line
        raise
