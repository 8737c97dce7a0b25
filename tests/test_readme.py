"""The README's quick-start code runs as written."""

import pathlib
import re

import pytest

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


@pytest.mark.slow  # ~20-40 s; CI time budget (make test-all runs it)
def test_readme_quick_start_runs():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "README has no python block"
    namespace: dict = {}
    exec(compile(blocks[0], str(README), "exec"), namespace)  # noqa: S102 - our own README
    budget, frontier = namespace["budget"], namespace["frontier"]
    assert budget.energy.shape == (101, 10)
    assert frontier.eigenvalue.shape == (101,)
