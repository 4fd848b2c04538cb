"""ccxt market structures for the tests, set with ``set_markets`` instead of loading them from
the exchange: only what the calls under test read (ids, type, precision, contract fields, and
the few ``info`` fields an exchange's code looks at)."""

from __future__ import annotations

from typing import Any, Dict, Optional


def market(
    symbol: str,
    id: str,
    type: str = "spot",
    *,
    settle: Optional[str] = None,
    settle_id: Optional[str] = None,
    linear: Optional[bool] = None,
    amount: float = 0.00001,
    price: float = 0.01,
    contract_size: Optional[float] = None,
    info: Optional[Dict[str, Any]] = None,
    **extra: Any,
) -> Dict[str, Any]:
    base, rest = symbol.split("/")
    quote = rest.split(":")[0]
    contract = type in ("swap", "future")
    m: Dict[str, Any] = {
        "id": id,
        "symbol": symbol,
        "base": base,
        "quote": quote,
        "settle": settle,
        "baseId": extra.pop("base_id", base),
        "quoteId": extra.pop("quote_id", quote),
        "settleId": settle_id,
        "type": type,
        "spot": type == "spot",
        "margin": False,
        "swap": type == "swap",
        "future": type == "future",
        "option": False,
        "contract": contract,
        "linear": linear if contract else None,
        "inverse": (not linear) if contract else None,
        "contractSize": contract_size,
        "active": True,
        "precision": {"amount": amount, "price": price},
        "limits": {
            "amount": {"min": None, "max": None},
            "price": {"min": None, "max": None},
            "cost": {"min": None, "max": None},
            "leverage": {"min": None, "max": None},
        },
        "info": info or {},
    }
    m.update(extra)
    return m
