"""tapsign: sign exchange requests with a secret the tapsign agent keeps behind a hardware token.

    import tapsign
    agent = tapsign.Agent()            # finds the socket as docs/protocol.md says
    signed = agent.sign("binance-main", "GET", "/api/v3/openOrders", query="symbol=BTCUSDT")
    requests.get(signed.url("https://api.binance.com"), headers=signed.headers)

``tapsign.aio.Agent`` is the asyncio twin; ``tapsign.ccxt.attach`` plugs a ccxt exchange in.
Errors are one class per stable wire code (``tapsign.Locked``, ``tapsign.PolicyDenied``, ...),
all ``tapsign.TapsignError``.
"""

from ._wire import MAX_FRAME, PROTOCOL_VERSION, Event, SignedRequest, Status, discover
from .client import Agent
from .errors import (
    AgentNotRunning,
    AgentTimeout,
    BadRequest,
    BudgetExhausted,
    Busy,
    ConnectionLost,
    Expired,
    Forbidden,
    Internal,
    KeystoreError,
    Locked,
    NoSession,
    NotYourAgent,
    PinInvalid,
    PolicyDenied,
    ProtocolError,
    Refused,
    TapsignError,
    TokenAbsent,
    TokenError,
    TouchTimeout,
    UnknownKey,
    VersionMismatch,
    WrongToken,
)

__version__ = "0.1.0"

__all__ = [
    "Agent",
    "AgentNotRunning",
    "AgentTimeout",
    "BadRequest",
    "BudgetExhausted",
    "Busy",
    "ConnectionLost",
    "Event",
    "Expired",
    "Forbidden",
    "Internal",
    "KeystoreError",
    "Locked",
    "MAX_FRAME",
    "NoSession",
    "NotYourAgent",
    "PROTOCOL_VERSION",
    "PinInvalid",
    "PolicyDenied",
    "ProtocolError",
    "Refused",
    "SignedRequest",
    "Status",
    "TapsignError",
    "TokenAbsent",
    "TokenError",
    "TouchTimeout",
    "UnknownKey",
    "VersionMismatch",
    "WrongToken",
    "discover",
]
