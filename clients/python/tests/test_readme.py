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


def test_the_bybit_note_names_the_calls_that_send_no_parameter() -> None:
    """Red-team round 25: Bybit's refusal of a request without parameters met a trader on
    fetch_trading_fees() and fetch_margin_mode() with no word of it in the README. The note
    names them, how to call each, and the docs section; the calls exist on ccxt's class."""
    import ccxt

    note = README[README.index("- **Bybit**") :]
    note = note[: note.index("\n- **")]
    for said in (
        'fetch_trading_fees({"category": "linear"})',
        'fetch_ledger("USDT")',
        "fetch_margin_mode(symbol)",
        "GET /v5/account/info",
        "parameterless = true",
        '"Requests without\n  parameters"',
    ):
        assert said in note, said
    for call in ("fetch_trading_fees", "fetch_trading_fee", "fetch_ledger", "fetch_margin_mode"):
        assert callable(getattr(ccxt.bybit, call, None)), call
