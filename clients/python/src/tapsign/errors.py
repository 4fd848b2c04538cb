"""Errors: one class per stable wire code (docs/protocol.md, "Error codes"), plus the errors
the client itself raises (no agent, a lost connection, a socket that is not your agent's).

Match on the class, not on the message: messages are for humans and may change between
releases, codes do not. A code this client does not know becomes :class:`Internal`, as the
protocol asks, with ``.code`` still holding what the agent sent.
"""

from __future__ import annotations

from typing import Dict, Optional, Type


class TapsignError(Exception):
    """Every error this package raises. ``code`` is the agent's wire code, or ``None`` when
    the error happened on this side (no agent, a dropped connection, ...)."""

    code: Optional[str] = None

    def __init__(self, message: str, code: Optional[str] = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        if self.code is None:
            return self.message
        return f"{self.message} [{self.code}]"


# --- Groups, so a bot can catch "no session" or "a token problem" at once. ---


class NoSession(TapsignError):
    """No usable session: stop trading, tell the trader to run `tapsign unlock`, and poll
    `status()` slowly (every 30 s or so) until it says unlocked."""


class Refused(TapsignError):
    """The agent refused this request; retrying it unchanged gets the same answer."""


class TokenError(TapsignError):
    """A hardware-token problem during `unlock`; a human has to act."""


# --- One class per stable code (proto/src/error.rs). ---


class Locked(NoSession):
    """No session is open (never unlocked, `tapsign lock`, screen lock, suspend, token pulled)."""

    code = "locked"


class Expired(NoSession):
    """The session's lifetime or idle timeout ran out."""

    code = "expired"


class BudgetExhausted(NoSession):
    """The session's (or this key's) signature budget is spent."""

    code = "budget_exhausted"


class PolicyDenied(Refused):
    """Never signed (funds movement, key management) or outside the key's allow rules."""

    code = "policy_denied"


class UnknownKey(Refused):
    """No credential of that name in the keystore or in the open session."""

    code = "unknown_key"


class BadRequest(Refused):
    """The request is malformed or breaks a signing rule; the message says what to fix."""

    code = "bad_request"


class TokenAbsent(TokenError):
    """No enrolled token is plugged in."""

    code = "token_absent"


class WrongToken(TokenError):
    """A token is present but not one enrolled here (the message names the right one)."""

    code = "wrong_token"


class TouchTimeout(TokenError):
    """The token wanted a touch and none came in time."""

    code = "touch_timeout"


class PinInvalid(TokenError):
    """The token refused the PIN. Never retry automatically: wrong PINs block the token."""

    code = "pin_invalid"


class VersionMismatch(TapsignError):
    """The agent speaks another protocol version: upgrade the older side."""

    code = "version_mismatch"


class KeystoreError(TapsignError):
    """The keystore could not be read or a file in it is damaged (`tapsign status` says which),
    or the audit log was cut or replaced under the agent: every signature is withheld until the
    trader checks it."""

    code = "keystore"


class Busy(TapsignError):
    """The agent serves its maximum number of connections: reconnect after a growing delay.

    To an unlock: another unlock waits for its touch (the message names who asked for it);
    retry once that one is done."""

    code = "busy"


class Forbidden(TapsignError):
    """The agent refused this process's user: run the bot as the agent's user."""

    code = "forbidden"


class Internal(TapsignError):
    """Something went wrong inside the agent (its log says more), or a code this client does
    not know."""

    code = "internal"


# --- Raised on this side. ---


class AgentNotRunning(TapsignError):
    """No agent answers at the socket path: start it (`tapsign agent`, or its user service),
    or point TAPSIGN_SOCK at it."""


class ConnectionLost(TapsignError):
    """The connection dropped while a request was in flight and the request was not retried
    (see :class:`tapsign.Agent` for which requests are)."""


class AgentTimeout(TapsignError, TimeoutError):
    """No answer within the client's timeout. The connection is dropped (an answer may still
    come); the next request reconnects."""


class NotYourAgent(TapsignError):
    """The socket is served by another user, or its folder is not a private folder of yours:
    it is not your agent, so nothing (no PIN, no request) is sent to it."""


class ProtocolError(TapsignError):
    """The agent sent something this client cannot read (a bad frame, an unexpected answer)."""


BY_CODE: Dict[str, Type[TapsignError]] = {
    str(cls.code): cls
    for cls in (
        Locked,
        Expired,
        BudgetExhausted,
        PolicyDenied,
        UnknownKey,
        BadRequest,
        TokenAbsent,
        WrongToken,
        TouchTimeout,
        PinInvalid,
        VersionMismatch,
        KeystoreError,
        Busy,
        Forbidden,
        Internal,
    )
}


def from_wire(code: object, message: object) -> TapsignError:
    """The exception for an `error` frame. Unknown codes are treated as `internal`."""
    code_s = code if isinstance(code, str) else "internal"
    msg = message if isinstance(message, str) else "the agent gave no message"
    cls = BY_CODE.get(code_s, Internal)
    return cls(msg, code_s)
