"""The asyncio client: the same API as :class:`tapsign.Agent`, awaitable.

An instance belongs to the event loop it first connects on. One request at a time goes over
its connection (an ``asyncio.Lock``), so tasks may share it. A forked child never uses its
parent's connection; its first request, on the child's own event loop, opens one.
"""

from __future__ import annotations

import asyncio
import os
import socket
import weakref
from typing import Any, AsyncIterator, Callable, Dict, NamedTuple, Optional, Sequence, Tuple, TypeVar

from . import _wire, errors
from ._wire import Event, SignedRequest, Status
from .client import DEFAULT_NAME, _closes, _is_stale

__all__ = ["Agent"]

T = TypeVar("T")


class _Conn(NamedTuple):
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    # The socket under the stream's transport, the very object it closes: a forked child
    # closes it without the event loop (see Agent._forked).
    sock: socket.socket


class _Dropped(Exception):
    pass


async def _read_msg(reader: asyncio.StreamReader) -> Dict[str, Any]:
    try:
        header = await reader.readexactly(4)
        body = await reader.readexactly(_wire.body_len(header))
    except asyncio.IncompleteReadError:
        raise _Dropped("the agent closed the connection") from None
    except (ConnectionError, OSError) as e:
        raise _Dropped(str(e)) from None
    return _wire.decode(body)


async def _roundtrip(conn: _Conn, frame: bytes) -> Dict[str, Any]:
    reader, writer = conn.reader, conn.writer
    write_error: Optional[BaseException] = None
    try:
        writer.write(frame)
        await writer.drain()
    except (ConnectionError, OSError) as e:
        write_error = e  # a refusal (busy) may still be waiting to be read
    try:
        return await _read_msg(reader)
    except _Dropped as e:
        raise _Dropped(str(write_error or e)) from None


async def _close(conn: _Conn) -> None:
    writer = conn.writer
    writer.close()
    try:
        await writer.wait_closed()
    except (ConnectionError, OSError):
        pass


async def _sock_exact(loop: asyncio.AbstractEventLoop, sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        try:
            chunk = await loop.sock_recv(sock, n - len(buf))
        except (ConnectionError, OSError) as e:
            raise _Dropped(str(e)) from None
        if not chunk:
            raise _Dropped("the agent closed the connection")
        buf += chunk
    return bytes(buf)


async def _handshake(loop: asyncio.AbstractEventLoop, sock: socket.socket, name: str) -> str:
    """`hello` on the raw socket, before streams wrap it: an agent that refuses the connection
    (busy) answers and closes at once, and a failed write must not lose that answer (a
    stream's transport would drop what it had read on the write error)."""
    write_error: Optional[BaseException] = None
    try:
        await loop.sock_sendall(sock, _wire.encode(_wire.hello(name)))
    except (ConnectionError, OSError) as e:
        write_error = e
    try:
        header = await _sock_exact(loop, sock, 4)
        body = await _sock_exact(loop, sock, _wire.body_len(header))
    except _Dropped as e:
        raise errors.ConnectionLost(
            f"the agent closed the connection during hello: {write_error or e}"
        ) from None
    return _wire.check_hello(_wire.decode(body))


async def _connect(where: _wire.SocketPath, name: str, timeout: Optional[float]) -> Tuple[_Conn, str]:
    if where.discovered:
        _wire.check_folder(where.path)
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        try:
            await asyncio.wait_for(loop.sock_connect(sock, where.path), timeout)
        except (FileNotFoundError, ConnectionRefusedError) as e:
            raise _wire.not_running(where.path, e) from None
        _wire.check_peer_uid(_wire.peer_uid(sock), os.getuid(), where.path)
        try:
            agent = await asyncio.wait_for(_handshake(loop, sock, name), timeout)
        except asyncio.TimeoutError:
            raise errors.AgentTimeout(f"the agent did not answer hello within {timeout} s") from None
        reader, writer = await asyncio.open_unix_connection(sock=sock)
        return _Conn(reader, writer, sock), agent
    except BaseException:
        sock.close()
        raise


def _stale(conn: _Conn) -> bool:
    """Whether a kept connection may not carry the next request: the agent closed it (its idle
    timeout), or it holds bytes nobody asked for, which would be read as the next answer. Like
    the blocking client's check, it looks at what the stream has buffered and at the socket."""
    reader, writer = conn.reader, conn.writer
    if reader.at_eof() or writer.is_closing() or len(getattr(reader, "_buffer", b"")) > 0:
        return True
    sock = writer.get_extra_info("socket")
    if sock is None:
        return False
    return _is_stale(sock)


# Every live Agent, for the fork hook below; weak, so an Agent is never kept alive by it.
_LIVE: "weakref.WeakSet[Agent]" = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for agent in list(_LIVE):
        agent._forked()


os.register_at_fork(after_in_child=_after_fork_in_child)


class Agent:
    """An asyncio connection to the tapsign agent; see :class:`tapsign.Agent` for what is
    retried after a dropped connection (``status``, ``lock``, ``sign``) and what never is
    (``unlock``), and for what a forked child does."""

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
        self._lock: Optional[asyncio.Lock] = None
        self._conn: Optional[_Conn] = None
        self._pid = 0  # the process that opened _conn
        self.agent: Optional[str] = None
        _LIVE.add(self)

    @property
    def path(self) -> str:
        return self._where.path

    def _guard(self) -> asyncio.Lock:
        # Made on first use, inside the running loop (Python 3.9 binds a Lock to a loop).
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock

    async def connect(self) -> "Agent":
        async with self._guard():
            await self._ensure()
        return self

    async def close(self) -> None:
        async with self._guard():
            await self._drop()

    async def __aenter__(self) -> "Agent":
        return await self.connect()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _forked(self) -> None:
        """In a forked child, before anything else runs: a task of the parent may have held the
        lock, and the connection is the parent's."""
        self._lock = None
        self._forget()

    def _forget(self) -> None:
        """Give up a connection another process opened, without reading or writing on it and
        without its event loop (the parent's, whose epoll the child shares): closing the socket
        object closes this process's descriptor only, which leaves the parent's connection open
        and the transport nothing to close later."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.sock.close()

    async def _ensure(self) -> _Conn:
        if self._conn is not None and self._pid != os.getpid():
            self._forget()  # _forked did this already, unless a fork ran no Python hooks
        if self._conn is not None and _stale(self._conn):
            await self._drop()  # closed by the agent while idle, or out of step
        if self._conn is None:
            self._conn, self.agent = await _connect(self._where, self._name, self._timeout)
            self._pid = os.getpid()
        return self._conn

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await _close(conn)

    async def _call(self, msg: Dict[str, Any], retry: bool, read: Callable[[Dict[str, Any]], T]) -> T:
        """One round trip; ``read`` makes the answer into its result under the lock (see
        :meth:`tapsign.Agent._call`)."""
        frame = _wire.encode(msg)
        async with self._guard():
            for attempt in range(2):
                conn = await self._ensure()
                try:
                    return read(await asyncio.wait_for(_roundtrip(conn, frame), self._timeout))
                except asyncio.TimeoutError:
                    await self._drop()
                    raise errors.AgentTimeout(
                        f"the agent did not answer within {self._timeout} s"
                    ) from None
                except _Dropped as e:
                    await self._drop()
                    if not retry or attempt == 1:
                        raise errors.ConnectionLost(
                            f"lost the connection to the agent: {e}; is it still running?"
                        ) from None
                except errors.TapsignError as e:
                    if _closes(e):
                        await self._drop()
                    raise
                except BaseException:
                    # Cancelled mid-request: the answer would arrive for the next caller.
                    await self._drop()
                    raise
        raise AssertionError("unreachable")

    async def hello(self) -> str:
        await self.connect()
        return self.agent or ""

    async def status(self) -> Status:
        return await self._call({"type": "status"}, True, Status.from_wire)

    async def lock(self) -> None:
        await self._call({"type": "lock"}, True, lambda answer: _wire.expect(answer, "locked"))

    async def sign(
        self,
        key: str,
        method: str,
        path: str,
        query: str = "",
        body: str = "",
        kind: str = "rest",
    ) -> SignedRequest:
        msg = _wire.sign(key, method, path, query, body, kind)
        return await self._call(msg, True, lambda answer: SignedRequest.from_wire(answer, msg))

    async def unlock(
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
        frame = _wire.encode(
            _wire.unlock(keys, ttl_secs, idle_secs, max_signatures, pin, extend, token)
        )
        del pin
        conn, _ = await _connect(self._where, self._name, self._timeout)
        try:
            return Status.from_wire(await asyncio.wait_for(_roundtrip(conn, frame), timeout), "unlocked")
        except asyncio.TimeoutError:
            raise errors.AgentTimeout(f"no answer to unlock within {timeout} s") from None
        except _Dropped as e:
            raise errors.ConnectionLost(f"lost the connection during unlock: {e}") from None
        finally:
            await _close(conn)

    async def events(self, timeout: Optional[float] = None) -> AsyncIterator[Event]:
        """Session events as they happen, on a connection of their own (``async for``)."""
        conn, _ = await _connect(self._where, self._name, self._timeout)
        try:
            try:
                answer = await asyncio.wait_for(
                    _roundtrip(conn, _wire.encode({"type": "subscribe"})), self._timeout
                )
                _wire.expect(answer, "subscribed")
                while True:
                    yield Event.from_wire(await asyncio.wait_for(_read_msg(conn.reader), timeout))
            except asyncio.TimeoutError:
                raise errors.AgentTimeout(f"no event within {timeout} s") from None
            except _Dropped as e:
                raise errors.ConnectionLost(f"the event stream ended: {e}") from None
        finally:
            await _close(conn)
