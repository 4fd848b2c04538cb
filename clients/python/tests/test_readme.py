"""Every Python block of the README compiles, so an example cannot drift into a SyntaxError
(red-team round 24: the client READMEs were outside the doc tests). The three-line ccxt bot is
run as it is by test_new_user.py; the Node README's blocks are checked by its own suite."""

from __future__ import annotations

import re

import pytest

from agentworld import REPO

README = (REPO / "clients" / "python" / "README.md").read_text()
BLOCKS = re.findall(r"^```python\n(.*?)^```", README, re.S | re.M)


def test_the_readme_has_its_python_blocks() -> None:
    assert len(BLOCKS) >= 5, BLOCKS


@pytest.mark.parametrize("n", range(len(BLOCKS)))
def test_every_python_block_of_the_readme_compiles(n: int) -> None:
    compile(BLOCKS[n], f"README.md, python block {n + 1}", "exec")
