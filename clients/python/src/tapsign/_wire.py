"""The protocol without I/O: frames, messages, answers, socket discovery and the peer check.

Shared by the blocking client (``tapsign.client``) and the asyncio one (``tapsign.aio``), which
only move bytes. docs/protocol.md is the reference; the frame bytes here match the agent's
golden frames (compact JSON, fields in the documented order).
"""

from __future__ import annotations

import json
import os
import re
import socket
import stat
import struct
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence
from urllib.parse import unquote_to_bytes

from . import errors

PROTOCOL_VERSION = 1
MAX_FRAME = 64 * 1024
SOCK_ENV = "TAPSIGN_SOCK"

# Linux's SO_PEERCRED; `socket` exposes it on Linux only. The agent runs on Linux.
SO_PEERCRED = 17
_UCRED = struct.Struct("3i")  # pid, uid, gid


# ---------------------------------------------------------------- frames


def encode(msg: Mapping[str, Any]) -> bytes:
    """One whole frame: 4-byte big-endian length, then compact UTF-8 JSON."""
    body = json.dumps(msg, separators=(",", ":"), ensure_ascii=False).encode()
    if len(body) > MAX_FRAME:
        raise errors.BadRequest(
            f"the request is {len(body)} bytes, over the protocol's {MAX_FRAME}-byte limit: "
            "send a smaller query or body"
        )
    return struct.pack(">I", len(body)) + body


def body_len(header: bytes) -> int:
    """The body length a frame header announces, checked before anything is allocated."""
    (n,) = struct.unpack(">I", header)
    if n > MAX_FRAME:
        raise errors.ProtocolError(
            f"the agent announced a {n}-byte frame, over the {MAX_FRAME}-byte limit"
        )
    return int(n)


def decode(body: bytes) -> Dict[str, Any]:
    """Parse one frame body into a message; an `error` message becomes its exception."""
    try:
        msg = json.loads(body.decode())
    except (UnicodeDecodeError, ValueError) as e:
        raise errors.ProtocolError(f"the agent sent a frame that is not JSON: {e}") from None
    if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
        raise errors.ProtocolError("the agent sent a message without a type")
    if msg["type"] == "error":
        raise errors.from_wire(msg.get("code"), msg.get("message"))
    return msg


def expect(msg: Dict[str, Any], kind: str) -> Dict[str, Any]:
    if msg["type"] != kind:
        raise errors.ProtocolError(f"expected a {kind!r} answer, the agent sent {msg['type']!r}")
    return msg


# ---------------------------------------------------------------- requests


def hello(client: str) -> Dict[str, Any]:
    return {"type": "hello", "version": PROTOCOL_VERSION, "client": client}


def check_hello(msg: Dict[str, Any]) -> str:
    """The agent's self-description; refuses an agent of another protocol version."""
    expect(msg, "hello")
    if msg.get("version") != PROTOCOL_VERSION:
        raise errors.VersionMismatch(
            f"the agent speaks protocol version {msg.get('version')}, this client "
            f"{PROTOCOL_VERSION}: upgrade the older side",
            "version_mismatch",
        )
    return str(msg.get("agent", ""))


def unlock(
    keys: Optional[Sequence[str]] = None,
    ttl_secs: Optional[int] = None,
    idle_secs: Optional[int] = None,
    max_signatures: Optional[int] = None,
    pin: Optional[str] = None,
    extend: bool = False,
    token: Optional[str] = None,
) -> Dict[str, Any]:
    msg: Dict[str, Any] = {"type": "unlock"}
    # Sent whenever given, an empty list too: the agent refuses that (bad_request), where
    # leaving it out asks for every key. Dropping `[]` turned a bot's empty list of keys into
    # the widest session (red-team round 20).
    if isinstance(keys, (str, bytes)):
        # A name alone would be sent as its letters, a key each.
        raise TypeError("keys is a list of key names: for one key, pass [name]")
    if keys is not None:
        msg["keys"] = list(keys)
    for name, value in (
        ("ttl_secs", ttl_secs),
        ("idle_secs", idle_secs),
        ("max_signatures", max_signatures),
    ):
        if value is not None:
            msg[name] = int(value)
    # The token to use, by id: the PIN goes to it alone (red-team round 24).
    if token is not None:
        msg["token"] = str(token)
    if pin is not None:
        msg["pin"] = pin
    if extend:
        msg["extend"] = True
    return msg


KINDS = ("rest", "ws_login")


def sign(
    key: str, method: str, path: str, query: str = "", body: str = "", kind: str = "rest"
) -> Dict[str, Any]:
    for name, value in (("key", key), ("method", method), ("path", path), ("query", query), ("body", body)):
        if not isinstance(value, str):
            raise errors.BadRequest(f"{name} must be a str, not {type(value).__name__}")
    if kind not in KINDS:
        raise errors.BadRequest(f"kind must be one of {KINDS}, not {kind!r}")
    msg: Dict[str, Any] = {
        "type": "sign",
        "key": key,
        "method": method,
        "path": path,
        "query": query,
        "body": body,
    }
    if kind != "rest":  # the default is left out, as the agent's own encoder does
        msg["kind"] = kind
    return msg


# ---------------------------------------------------------------- answers


@dataclass(frozen=True)
class SignedRequest:
    """The request to send, exactly as the agent returned it: send these strings byte for
    byte (no re-encoding, no re-ordering), promptly (the agent stamped the time)."""

    method: str
    path: str
    query: str
    body: str
    headers: Dict[str, str]

    def url(self, base: str) -> str:
        """``base`` (``https://api.binance.com``) + path + ``?query`` (no ``?`` when empty)."""
        return base.rstrip("/") + self.path + ("?" + self.query if self.query else "")

    @classmethod
    def from_wire(cls, msg: Dict[str, Any], sent: Optional[Mapping[str, Any]] = None) -> "SignedRequest":
        """Checks the answer is what the bot may send as it is: every field a string (never
        ``None`` made into ``'None'``), and a path from the host's root (``@evil.example/x``
        appended to a base URL would name another host); with ``sent``, that it answers that
        ``sign`` request (:func:`check_answers`)."""
        expect(msg, "signed")
        fields = []
        for name in ("method", "path", "query", "body"):
            value = msg.get(name)
            if not isinstance(value, str):
                raise errors.ProtocolError(
                    f"the agent's signed answer has no string {name!r} ({type(value).__name__})"
                )
            fields.append(value)
        headers = msg.get("headers")
        if not isinstance(headers, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
        ):
            raise errors.ProtocolError("the agent's signed answer has headers that are not strings")
        if not fields[1].startswith("/"):
            raise errors.ProtocolError(
                f"the agent's signed answer has a path that does not start with '/': {fields[1][:80]!r}"
            )
        signed = cls(*fields, dict(headers))
        if sent is not None:
            check_answers(sent, signed)
        return signed


def check_answers(sent: Mapping[str, Any], signed: SignedRequest) -> None:
    """Checks that ``signed`` is the answer to the ``sign`` request ``sent``: same method and
    path, and the bot's query and body as docs/protocol.md and docs/exchanges.md say the agent
    returns them. A connection whose answers belong to other requests (one shared by forked
    processes, say) would otherwise hand the bot another order, signed, as its own.

    The answer does not name the key, so the same request signed with another key of the same
    exchange passes; only the connection being this process's own prevents that."""
    if (signed.method, signed.path) != (sent["method"], sent["path"]):
        raise _not_ours(f"{signed.method} {signed.path[:80]}", f"{sent['method']} {sent['path'][:80]}")
    query, body = sent["query"], sent["body"]
    if sent.get("kind", "rest") == "ws_login":
        # The login message is the body; the agent adds no query and no headers.
        if signed.query or signed.headers:
            raise errors.ProtocolError(
                "the agent's ws_login answer has a query or headers, which a login never has: "
                "it is not the answer to this request"
            )
        return
    got = (signed.query, signed.body)
    if got == (query, body) or _binance_shape(query, body, got) or _kraken_shape(sent, got):
        return
    part = "query" if signed.query != query else "body"
    raise _not_ours(f"{part} {getattr(signed, part)[:80]!r}", f"{part} {sent[part][:80]!r}")


def _not_ours(got: str, sent: str) -> errors.ProtocolError:
    return errors.ProtocolError(
        f"the agent's signed answer ({got}) is not the answer to this request ({sent}): the "
        "connection is out of step, and it is closed"
    )


# Binance (agent/src/sign/binance.rs): the agent appends `recvWindow` (only when the bot sent
# none), `timestamp` (only when the bot sent none) and always `signature`, in that order, to
# the body when there is one, else to the query. The signature is lowercase hex HMAC-SHA256,
# or an Ed25519 signature in base64 with `+`, `/`, `=` percent-encoded.
_BINANCE_ADDED = re.compile(
    r"(recvWindow=[0-9]+&)?(timestamp=[0-9]+&)?"
    r"signature=(?:[0-9a-f]{64}|(?:[A-Za-z0-9]|%2B|%2F){86}%3D%3D)"
)


def _binance_shape(query: str, body: str, got: "tuple[str, str]") -> bool:
    mine, unchanged, added = (body, query, got[1]) if body else (query, body, got[0])
    if (got[0] if body else got[1]) != unchanged:
        return False
    if mine:
        if not added.startswith(mine + "&"):
            return False
        added = added[len(mine) + 1 :]
    m = _BINANCE_ADDED.fullmatch(added)
    if m is None:
        return False
    # Names as the agent finds them: percent-decoded once, compared without ASCII case.
    names = {_name(piece) for part in (query, body) for piece in part.split("&") if piece}
    if m.group(1) and "recvwindow" in names:
        return False
    return (m.group(2) is None) == ("timestamp" in names)


def _name(pair: str) -> str:
    name = unquote_to_bytes(pair.split("=", 1)[0]).decode("utf-8", "replace")
    return name.lower() if name.isascii() else name


# Kraken (agent/src/sign/kraken.rs): POST with no query; the agent's nonce goes first in the
# body, `nonce=<n>&` before a form body, `"nonce":"<n>"` as the first member of a JSON object.
# On a method that places or changes an order, the agent's `deadline` follows the nonce
# (`&deadline=<time>`, its colons as %3A, or `,"deadline":"<time>"`), exactly when the bot's
# body has none.
_JSON_SPACE = " \t\n\r"
_TIME = r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}%(c)s[0-9]{2}%(c)s[0-9]{2}Z"
_KRAKEN_FORM_STAMPS = re.compile(r"[0-9]+(&deadline=" + _TIME % {"c": "%3A"} + ")?")
_KRAKEN_JSON_STAMPS = re.compile(r'[0-9]+(","deadline":"' + _TIME % {"c": ":"} + ")?")
_KRAKEN_ORDERS = frozenset({"/0/private/AddOrder", "/0/private/AddOrderBatch", "/0/private/AmendOrder", "/0/private/EditOrder"})


def _kraken_shape(sent: Mapping[str, Any], got: "tuple[str, str]") -> bool:
    if sent["method"] != "POST" or sent["query"] or got[0]:
        return False
    body, signed = sent["body"], got[1]
    trimmed = body.lstrip(_JSON_SPACE)
    if trimmed.startswith("{"):
        # The agent signs only a body that is a JSON object, so its spaces are JSON's.
        rest = trimmed[1:].lstrip(_JSON_SPACE)
        head, tail = '{"nonce":"', '"' + ("" if rest.startswith("}") else ",") + rest
        stamps = _KRAKEN_JSON_STAMPS
        try:
            names = {str(k).lower() for k in json.loads(body)}
        except (ValueError, TypeError):
            names = set()
    else:
        head, tail = "nonce=", ("&" + body if body else "")
        stamps = _KRAKEN_FORM_STAMPS
        names = {_name(piece) for piece in body.split("&") if piece}
    if not (signed.startswith(head) and signed.endswith(tail)) or len(signed) < len(head) + len(tail):
        return False
    m = stamps.fullmatch(signed[len(head) : len(signed) - len(tail)])
    if m is None:
        return False
    stamped = sent["path"] in _KRAKEN_ORDERS and "deadline" not in names
    return (m.group(1) is not None) == stamped


@dataclass(frozen=True)
class Status:
    """What `status` (or `unlock`) reports; ``raw`` is the whole message."""

    state: str
    agent: str
    session: Optional[Dict[str, Any]]
    lock_reason: Optional[str]
    tokens: List[Dict[str, Any]]
    warnings: List[str]
    lock_sources: List[Dict[str, Any]]
    # Keys whose config.toml policy differs from their exchange's trading profile.
    key_policies: List[Dict[str, Any]]
    raw: Dict[str, Any] = field(repr=False)
    # Where the audit log's hash chain ends, ``{"seq": 412, "hash": "..."}``: keep copies
    # elsewhere, check later with `tapsign audit verify --head SEQ:HASH` (docs/audit.md).
    # None while the agent cannot read the log or found it tampered with.
    audit_head: Optional[Dict[str, Any]] = None
    # The keystore manifest the agent last verified, ``{"generation": 7, "vault_key": "..."}``,
    # with ``"log_unread": true`` when that unlock could not read the audit log: the agent then
    # vouches for nothing about this keystore until an unlock with the log readable.
    keystore: Optional[Dict[str, Any]] = None
    # Credentials replaced or removed in the last day, by name; ``warnings`` says when and how.
    changed_keys: List[str] = field(default_factory=list)

    @property
    def unlocked(self) -> bool:
        return self.state == "unlocked"

    @classmethod
    def from_wire(cls, msg: Dict[str, Any], kind: str = "status") -> "Status":
        expect(msg, kind)
        return cls(
            state=str(msg.get("state", "locked")),
            agent=str(msg.get("agent", "")),
            session=msg.get("session"),
            lock_reason=msg.get("lock_reason"),
            tokens=list(msg.get("tokens") or []),
            warnings=list(msg.get("warnings") or []),
            lock_sources=list(msg.get("lock_sources") or []),
            key_policies=list(msg.get("key_policies") or []),
            raw=msg,
            audit_head=msg.get("audit_head"),
            keystore=msg.get("keystore"),
            changed_keys=[str(name) for name in msg.get("changed_keys") or []],
        )


@dataclass(frozen=True)
class Event:
    """A session event: ``event`` is `unlocked`, `expiring_soon`, `budget_low`, `extended` or
    `locked`. Treat an event name you do not know as informational."""

    event: str
    message: str
    reason: Optional[str] = None
    code: Optional[str] = None
    expires_in_secs: Optional[int] = None
    signatures_left: Optional[int] = None

    @classmethod
    def from_wire(cls, msg: Dict[str, Any]) -> "Event":
        expect(msg, "event")
        return cls(
            event=str(msg.get("event", "")),
            message=str(msg.get("message", "")),
            reason=msg.get("reason"),
            code=msg.get("code"),
            expires_in_secs=msg.get("expires_in_secs"),
            signatures_left=msg.get("signatures_left"),
        )


# ---------------------------------------------------------------- where the agent is


@dataclass(frozen=True)
class SocketPath:
    path: str
    # True when found by the default rules (not TAPSIGN_SOCK, not given by the caller): the
    # agent made that folder itself, private, so anything else there is not its work.
    discovered: bool


def discover(env: Optional[Mapping[str, str]] = None, uid: Optional[int] = None) -> SocketPath:
    """The socket path, first match wins (docs/protocol.md, proto/src/path.rs):
    ``$TAPSIGN_SOCK``; ``$XDG_RUNTIME_DIR/tapsign/agent.sock``;
    ``/run/user/$UID/tapsign/agent.sock`` when ``/run/user/$UID`` exists;
    ``$TMPDIR/tapsign-$UID/agent.sock`` (``/tmp`` without TMPDIR)."""
    env = os.environ if env is None else env
    uid = os.getuid() if uid is None else uid
    if env.get(SOCK_ENV):
        return SocketPath(env[SOCK_ENV], False)
    if env.get("XDG_RUNTIME_DIR"):
        return SocketPath(os.path.join(env["XDG_RUNTIME_DIR"], "tapsign", "agent.sock"), True)
    run_user = f"/run/user/{uid}"
    if os.path.isdir(run_user):
        return SocketPath(os.path.join(run_user, "tapsign", "agent.sock"), True)
    tmp = env.get("TMPDIR") or "/tmp"  # Rust's std::env::temp_dir(), as the agent uses
    return SocketPath(os.path.join(tmp, f"tapsign-{uid}", "agent.sock"), True)


def check_folder(path: str, uid: Optional[int] = None) -> None:
    """A discovered socket's folder must be a real folder (not a symlink, which could be swapped
    later), owned by us and not writable by others: the agent refuses to listen anywhere else,
    so such a folder is someone else's."""
    uid = os.getuid() if uid is None else uid
    folder = os.path.dirname(path) or "."
    try:
        st = os.lstat(folder)
    except FileNotFoundError:
        return  # nothing there: connecting reports "not running"
    problem = None
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        problem = "is a symbolic link or not a folder"
    elif st.st_uid != uid:
        problem = f"belongs to uid {st.st_uid}, not to you (uid {uid})"
    elif st.st_mode & 0o022:
        problem = "can be written by other users"
    if problem:
        raise errors.NotYourAgent(
            f"the socket folder {folder} {problem}: the agent never listens there, so it is "
            "not your agent; remove it and restart `tapsign agent`, or set TAPSIGN_SOCK"
        )


def check_peer_uid(peer_uid: int, my_uid: int, path: str) -> None:
    """The process serving the socket must run as our user: a socket another user planted (a
    swapped folder, an odd TAPSIGN_SOCK) must not receive an unlock request and its PIN."""
    if peer_uid != my_uid:
        raise errors.NotYourAgent(
            f"the socket {path} is served by uid {peer_uid}, not by you (uid {my_uid}): it is "
            "not your agent; check TAPSIGN_SOCK and the socket folder"
        )


def peer_uid(sock: Any) -> int:
    """The uid of the process at the other end of a connected Unix socket (SO_PEERCRED)."""
    raw = sock.getsockopt(socket.SOL_SOCKET, SO_PEERCRED, _UCRED.size)
    _pid, uid, _gid = _UCRED.unpack(raw)
    return int(uid)


def not_running(path: str, e: OSError) -> errors.AgentNotRunning:
    return errors.AgentNotRunning(
        f"no tapsign agent at {path} ({e.strerror or e}): start it with `tapsign agent` (or its "
        "user service), or set TAPSIGN_SOCK to its socket"
    )
