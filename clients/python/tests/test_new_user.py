"""As a new user would: a fresh venv, `pip install ./clients/python` and ccxt, then the three
lines of the README's "A ccxt bot in three lines" give a signed order from ccxt's binance.

Nothing goes over the network: a prelude, run before the README's lines, answers ccxt's HTTP
layer (``ccxt.Exchange.fetch``) with canned exchange data and records what would be sent.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import creds
import test_diff_binance
from agentworld import REPO
from diffkit import Sent

PACKAGE = REPO / "clients" / "python"

PRELUDE = textwrap.dedent(
    '''
    import json, ccxt
    SYMBOL = {"symbol": "BTCUSDT", "status": "TRADING", "baseAsset": "BTC", "quoteAsset": "USDT",
              "baseAssetPrecision": 8, "quotePrecision": 8, "quoteAssetPrecision": 8,
              "orderTypes": ["LIMIT", "MARKET"], "isSpotTradingAllowed": True, "permissions": ["SPOT"],
              "filters": [{"filterType": "PRICE_FILTER", "minPrice": "0.01", "maxPrice": "1000000", "tickSize": "0.01"},
                          {"filterType": "LOT_SIZE", "minQty": "0.00001", "maxQty": "9000", "stepSize": "0.00001"}]}
    SENT = []
    def fetch(self, url, method="GET", headers=None, body=None):
        SENT.append({"method": method, "url": url, "headers": dict(headers or {}), "body": body})
        path = url.split("?")[0]
        if path.endswith("/api/v3/exchangeInfo"):
            return {"timezone": "UTC", "serverTime": 1, "symbols": [SYMBOL]}
        if path.endswith("exchangeInfo"):
            return {"symbols": []}
        if path.endswith("/api/v3/order"):
            return {"symbol": "BTCUSDT", "orderId": 1, "status": "NEW", "price": "50000", "origQty": "0.001",
                    "executedQty": "0", "type": "LIMIT", "side": "BUY", "transactTime": 1}
        return []
    ccxt.Exchange.fetch = fetch
    '''
)


def readme_lines() -> str:
    readme = (PACKAGE / "README.md").read_text()
    block = re.search(r"<!-- three-lines[^>]*-->\s*```python\n(.*?)```", readme, re.S)
    assert block, "the README's three-line block"
    code = block.group(1)
    assert len(code.strip().splitlines()) == 3, code
    return code


def pinned_ccxt() -> str:
    pins = (REPO / "scripts" / "python-env").read_text()
    return re.search(r"^\s*(ccxt==\S+)", pins, re.M).group(1)


def test_pip_install_then_three_lines_sign_a_binance_order(world: Any, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = str(venv / "bin" / "python")
    subprocess.run([py, "-m", "pip", "install", "-q", "--disable-pip-version-check", str(PACKAGE), pinned_ccxt()],
                   check=True, cwd=tmp_path)
    script = PRELUDE + readme_lines() + "\nprint(json.dumps({'sent': SENT, 'id': order['id']}))\n"
    env = {"PATH": "/usr/bin:/bin", "TAPSIGN_SOCK": world.sock, "HOME": str(tmp_path)}
    done = subprocess.run([py, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["id"] == "1"
    orders = [Sent(**s) for s in out["sent"] if s["url"].split("?")[0].endswith("/api/v3/order")]
    assert len(orders) == 1
    order = orders[0]
    assert order.method == "POST" and order.header("X-MBX-APIKEY") == creds.BINANCE[0]
    assert "symbol=BTCUSDT&side=BUY" in order.body and "quantity=0.001&price=50000" in order.body
    test_diff_binance.verify(order)
    for s in out["sent"]:
        assert "tapsign-" not in json.dumps(s).lower(), f"a placeholder or marker went out: {s}"
