"""tapsign errors as ccxt exceptions.

Each raised exception is both: a ccxt class (so a bot's existing ``except ccxt.NetworkError``
keeps working) and the tapsign class (so ``except tapsign.Locked`` tells a locked agent apart
from a bad API key). The message is tapsign's, after the exchange id as ccxt writes its own.

| tapsign | ccxt | why |
|---|---|---|
| Locked, Expired, BudgetExhausted | AuthenticationError | no usable session: nothing can be authenticated until the trader unlocks |
| UnknownKey, token errors | AuthenticationError | the credential cannot be used as configured |
| PolicyDenied, Forbidden, NotYourAgent | PermissionDenied | refused for good; do not retry |
| BadRequest | BadRequest | the request breaks a signing rule; the message says which |
| AgentNotRunning, Busy | ExchangeNotAvailable | temporary: ccxt bots back off and retry |
| ConnectionLost | NetworkError | temporary |
| AgentTimeout | RequestTimeout | temporary |
| VersionMismatch, KeystoreError, Internal, ProtocolError | ExchangeError | needs a human |
"""

from __future__ import annotations

from typing import Dict, Tuple, Type

import ccxt  # type: ignore[import-untyped]  # ccxt ships no type information

from .. import errors as t

_MAP: Tuple[Tuple[Type[t.TapsignError], Type[Exception]], ...] = (
    (t.NoSession, ccxt.AuthenticationError),
    (t.UnknownKey, ccxt.AuthenticationError),
    (t.TokenError, ccxt.AuthenticationError),
    (t.PolicyDenied, ccxt.PermissionDenied),
    (t.Forbidden, ccxt.PermissionDenied),
    (t.NotYourAgent, ccxt.PermissionDenied),
    (t.BadRequest, ccxt.BadRequest),
    (t.AgentNotRunning, ccxt.ExchangeNotAvailable),
    (t.Busy, ccxt.ExchangeNotAvailable),
    (t.ConnectionLost, ccxt.NetworkError),
    (t.AgentTimeout, ccxt.RequestTimeout),
)

_cache: Dict[Type[t.TapsignError], Type[Exception]] = {}


def ccxt_class(cls: Type[t.TapsignError]) -> Type[Exception]:
    """The ccxt exception class a tapsign error class is raised as."""
    if cls in _cache:
        return _cache[cls]
    base: Type[Exception] = ccxt.ExchangeError
    for tap, cx in _MAP:
        if issubclass(cls, tap):
            base = cx
            break
    made = type(cls.__name__, (base, cls), {"__module__": __name__, "__doc__": cls.__doc__})
    _cache[cls] = made
    return made


def to_ccxt(e: t.TapsignError, exchange_id: str) -> Exception:
    """``e`` as the ccxt exception above, keeping its code and message."""
    made = ccxt_class(type(e))(f"{exchange_id} tapsign: {e.message}", e.code)
    return made
