"""The blocking client: one connection, shared safely between threads (not between processes:
a forked child makes its own)."""

from __future__ import annotations

import os
import select
import socket
import threading
import time
import weakref
from typing import Any, Callable, Dict, Iterator, Optional, Sequence, TypeVar

from . import _wire, errors
from ._wire import Event, SignedRequest, Status

__all__ = ["Agent", "connect_socket"]

DEFAULT_NAME = "tapsign-python/0.1.0"

T = TypeVar("T")


def _recv_exact(sock: socket.socket, n: int, deadline: Optional[float]) -> bytes:
    """``n`` bytes, all of them before ``deadline`` (``time.monotonic()``; None: no limit): an
    agent that trickles its answer a byte at a time times out like one that says nothing."""
    buf = bytearray()
    while len(buf) < n:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("timed out")
            sock.settimeout(left)
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise _Dropped("the agent closed the connection")
        buf += chunk
    return bytes(buf)


class _Dropped(Exception):
    """The connection is gone (reset, closed, broken pipe); the caller decides on a retry."""


def _deadline(sock: socket.socket) -> Optional[float]:
    timeout = sock.gettimeout()
    return None if timeout is None else time.monotonic() + timeout


def _read_msg(sock: socket.socket, deadline: Optional[float] = None) -> Dict[str, Any]:
    """One whole message before ``deadline`` (by default the socket's timeout from now)."""
    timeout = sock.gettimeout()
    if deadline is None:
        deadline = _deadline(sock)
    try:
        header = _recv_exact(sock, 4, deadline)
        return _wire.decode(_recv_exact(sock, _wire.body_len(header), deadline))
    finally:
        sock.settimeout(timeout)


def _roundtrip(sock: socket.socket, frame: bytes) -> Dict[str, Any]:
    """Send one request, read its answer, both within the socket's timeout. An agent that
    refuses a connection (busy) answers and closes at once, so our write can fail while its
    answer waits: read it anyway."""
    deadline = _deadline(sock)
    write_error: Optional[BaseException] = None
    try:
        sock.sendall(frame)
    except socket.timeout:
        raise
    except OSError as e:
        write_error = e
    try:
        return _read_msg(sock, deadline)
    except socket.timeout:
        raise
    except (OSError, _Dropped) as e:
        raise _Dropped(str(write_error or e)) from None


def connect_socket(sock_path: _wire.SocketPath, name: str, timeout: Optional[float]) -> "tuple[socket.socket, str]":
    """Connect, check whose socket it is, say hello. Returns the socket and the agent's name."""
    if sock_path.discovered:
        _wire.check_folder(sock_path.path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        try:
            sock.connect(sock_path.path)
        except socket.timeout:
            raise errors.AgentTimeout(
                f"connecting to the agent at {sock_path.path} took over {timeout} s"
            ) from None
        except OSError as e:
            # Nobody listens, no such file, a path too long for a socket, a file where a
            # folder should be: no agent there either way; the reason is in the message.
            raise _wire.not_running(sock_path.path, e) from None
        _wire.check_peer_uid(_wire.peer_uid(sock), os.getuid(), sock_path.path)
        try:
            agent = _wire.check_hello(_roundtrip(sock, _wire.encode(_wire.hello(name))))
        except socket.timeout:
            raise errors.AgentTimeout(f"the agent did not answer hello within {timeout} s") from None
        except _Dropped as e:
            raise errors.ConnectionLost(f"the agent closed the connection during hello: {e}") from None
        return sock, agent
    except BaseException:
        sock.close()
        raise


def _closes(e: errors.TapsignError) -> bool:
    """After these the agent closes the connection, or the stream may be out of step."""
    return e.code in ("version_mismatch", "busy", "forbidden") or isinstance(e, errors.ProtocolError)


def _is_stale(sock: Any) -> bool:
    """Whether the agent closed this idle connection (it does after its idle timeout, without
    a message): readable with nothing to read. Any unsolicited bytes make it unusable too.
    ``poll``, not ``select``: ``select`` refuses a descriptor of 1024 or more (ValueError), and
    a bot with that many files and sockets open reconnected before every request (red-team
    round 20). Any event at all (readable, hung up, error, a closed descriptor) is stale."""
    try:
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        return bool(poller.poll(0))
    except (OSError, ValueError):
        return True


# Every live Agent, for the fork hook below; weak, so an Agent is never kept alive by it.
_LIVE: "weakref.WeakSet[Agent]" = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for agent in list(_LIVE):
        agent._forked()


os.register_at_fork(after_in_child=_after_fork_in_child)


class Agent:
    """A connection to the tapsign agent.

    Thread-safe: one request at a time goes over the shared connection (a lock around each
    round trip). It connects on first use and reconnects when the agent has closed an idle
    connection. When the connection drops with a request in flight, these are retried once on
    a new connection: ``status``, ``lock`` and ``sign`` (a signature whose answer was lost never
    reached the bot, so it cannot be used; signing again costs one more from the session's
    budget). ``unlock`` is never retried: it waits for a touch and may carry a PIN, and a
    repeat could spend a PIN attempt. ``unlock`` and ``events`` use their own connections, so
    neither blocks signing.

    Fork-safe: a forked child never uses its parent's connection (both would read each other's
    answers); its first request opens one of its own.

    ``timeout`` bounds each answer, from sending the request to its last byte (``None``: wait
    forever); ``unlock`` waits for a human and
    has no bound unless given one.
    """

    def __init__(
        self,
        path: Optional[str] = None,
        *,
        name: str = DEFAULT_NAME,
        timeout: Optional[float] = 30.0,
    ) -> None:
        self._where = _wire.SocketPath(path, False) if path else _wire.discover()
        self._name = name
        self._timeout = timeout
        self._lock = threading.Lock()
        self._sock: Optional[socket.socket] = None
        self._pid = 0  # the process that opened _sock
        self.agent: Optional[str] = None  # the agent's self-description, after hello
        _LIVE.add(self)

    @property
    def path(self) -> str:
        return self._where.path

    # -------------------------------------------------------- connection

    def connect(self) -> "Agent":
        """Connect and say hello now (otherwise the first request does)."""
        with self._lock:
            self._ensure()
        return self

    def close(self) -> None:
        with self._lock:
            self._drop()

    def __enter__(self) -> "Agent":
        return self.connect()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _forked(self) -> None:
        """In a forked child, before anything else runs: a thread of the parent may have held
        the lock, and no thread here will release it; and the connection is the parent's."""
        self._lock = threading.Lock()
        self._forget()

    def _forget(self) -> None:
        """Give up a connection another process opened, without reading or writing on it:
        closing this process's descriptor leaves the connection open for its owner."""
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()

    def _ensure(self) -> socket.socket:
        if self._sock is not None and self._pid != os.getpid():
            self._forget()  # _forked did this already, unless a fork ran no Python hooks
        if self._sock is not None and _is_stale(self._sock):
            self._drop()
        if self._sock is None:
            self._sock, self.agent = connect_socket(self._where, self._name, self._timeout)
            self._pid = os.getpid()
        return self._sock

    def _drop(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None

    def _call(self, msg: Dict[str, Any], retry: bool, read: Callable[[Dict[str, Any]], T]) -> T:
        """One round trip; ``read`` makes the answer into its result, under the lock, so an
        answer it finds out of step closes the connection before anyone sends on it again."""
        frame = _wire.encode(msg)
        with self._lock:
            for attempt in range(2):
                sock = self._ensure()
                try:
                    return read(_roundtrip(sock, frame))
                except socket.timeout:
                    self._drop()  # an answer may still come: this connection is out of step
                    raise errors.AgentTimeout(
                        f"the agent did not answer within {self._timeout} s"
                    ) from None
                except _Dropped as e:
                    self._drop()
                    if not retry or attempt == 1:
                        raise errors.ConnectionLost(
                            f"lost the connection to the agent: {e}; is it still running?"
                        ) from None
                except errors.TapsignError as e:
                    if _closes(e):
                        self._drop()
                    raise
                except BaseException:
                    # Interrupted mid-request: the answer would arrive for the next caller.
                    self._drop()
                    raise
        raise AssertionError("unreachable")

    # -------------------------------------------------------- requests

    def hello(self) -> str:
        """Connect if needed; the agent's self-description (``tapsign 0.1.0``)."""
        self.connect()
        return self.agent or ""

    def status(self) -> Status:
        return self._call({"type": "status"}, True, Status.from_wire)

    def lock(self) -> None:
        """End the session now and wipe its secrets (a no-op when locked)."""
        self._call({"type": "lock"}, True, lambda answer: _wire.expect(answer, "locked"))

    def sign(
        self,
        key: str,
        method: str,
        path: str,
        query: str = "",
        body: str = "",
        kind: str = "rest",
    ) -> SignedRequest:
        """Have the agent sign what you are about to send; send its answer byte for byte. An
        answer that is not this request's (another method, path, query or body than the agent
        returns for it) is a ``ProtocolError``."""
        msg = _wire.sign(key, method, path, query, body, kind)
        return self._call(msg, True, lambda answer: SignedRequest.from_wire(answer, msg))

    def unlock(
        self,
        keys: Optional[Sequence[str]] = None,
        *,
        ttl_secs: Optional[int] = None,
        idle_secs: Optional[int] = None,
        max_signatures: Optional[int] = None,
        pin: Optional[str] = None,
        extend: bool = False,
        timeout: Optional[float] = None,
        token: Optional[str] = None,
    ) -> Status:
        """Ask for a touch (and the PIN where the token wants one) and open a session, or with
        ``extend=True`` renew the open one. ``keys`` names the keys the session opens; left out
        (``None``), every key; an empty list is refused (``BadRequest``). Waits for a human: no
        timeout unless given. The PIN is sent only to a socket served by your own user, and
        never logged. ``token`` names the enrolled token to use, by id (``status().tokens``):
        the PIN goes to it alone; left out, the agent uses the first token present."""
        frame = _wire.encode(
            _wire.unlock(keys, ttl_secs, idle_secs, max_signatures, pin, extend, token)
        )
        del pin
        sock, _ = connect_socket(self._where, self._name, self._timeout)
        try:
            sock.settimeout(timeout)
            try:
                return Status.from_wire(_roundtrip(sock, frame), "unlocked")
            except socket.timeout:
                raise errors.AgentTimeout(f"no answer to unlock within {timeout} s") from None
            except _Dropped as e:
                raise errors.ConnectionLost(f"lost the connection during unlock: {e}") from None
        finally:
            sock.close()

    def events(self, timeout: Optional[float] = None) -> Iterator[Event]:
        """Session events as they happen, on a connection of their own. Ends with
        :class:`ConnectionLost` when the agent goes away (a restarted agent is locked)."""
        sock, _ = connect_socket(self._where, self._name, self._timeout)
        return _events(sock, timeout)


def _events(sock: socket.socket, timeout: Optional[float]) -> Iterator[Event]:
    try:
        try:
            _wire.expect(_roundtrip(sock, _wire.encode({"type": "subscribe"})), "subscribed")
            sock.settimeout(timeout)
            while True:
                yield Event.from_wire(_read_msg(sock))
        except socket.timeout:
            raise errors.AgentTimeout(f"no event within {timeout} s") from None
        except _Dropped as e:
            raise errors.ConnectionLost(f"the event stream ended: {e}") from None
    finally:
        sock.close()
