"""A scripted stand-in for the agent, written from docs/protocol.md (frames: 4-byte big-endian
length + one JSON object; `hello` first; one answer per request), for the client behaviours a
real agent cannot be made to show on demand: dropping a connection mid-request, answering late,
refusing with `busy` before reading anything.

Each accepted connection is handed to ``script(conn, n)`` (``n`` counts connections from 0)
in its own thread; what every connection received is kept in ``received``.
"""

from __future__ import annotations

import json
import os
import socket
import struct
import tempfile
import threading
import time
from typing import Any, Callable, Dict, List, Optional

Script = Callable[["Conn", int], None]


class Conn:
    def __init__(self, sock: socket.socket, log: List[Dict[str, Any]]) -> None:
        self.sock = sock
        self.log = log

    def read(self) -> Optional[Dict[str, Any]]:
        """The next request, or None when the client closed."""
        header = self._exact(4)
        if header is None:
            return None
        (n,) = struct.unpack(">I", header)
        body = self._exact(n)
        if body is None:
            return None
        msg = json.loads(body)
        self.log.append(msg)
        return msg

    def _exact(self, n: int) -> Optional[bytes]:
        buf = b""
        while len(buf) < n:
            try:
                chunk = self.sock.recv(n - len(buf))
            except OSError:
                return None
            if not chunk:
                return None
            buf += chunk
        return buf

    def send(self, msg: Dict[str, Any]) -> None:
        body = json.dumps(msg, separators=(",", ":")).encode()
        self.sock.sendall(struct.pack(">I", len(body)) + body)

    def hello(self) -> bool:
        msg = self.read()
        if msg is None:
            return False
        assert msg["type"] == "hello" and msg["version"] == 1, msg
        self.send({"type": "hello", "version": 1, "agent": "fake 0"})
        return True

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


def signed(msg: Dict[str, Any]) -> Dict[str, Any]:
    """A plausible answer to a `sign`: the request back with one header."""
    return {"type": "signed", "method": msg["method"], "path": msg["path"], "query": msg.get("query", ""),
            "body": msg.get("body", ""), "headers": {"X-Fake": msg["key"]}}


def serve_forever(conn: Conn, n: int) -> None:
    """hello, then answer status/lock/sign until the client closes."""
    if not conn.hello():
        return
    serve_forever_after_hello(conn)


def serve_forever_after_hello(conn: Conn, sign: Callable[[Dict[str, Any]], Dict[str, Any]] = signed) -> None:
    """Answer each request until the client hangs up: a sign with ``sign(msg)``, a lock as
    locked, anything else as a locked agent's status."""
    while True:
        msg = conn.read()
        if msg is None:
            return
        if msg["type"] == "sign":
            conn.send(sign(msg))
        elif msg["type"] == "lock":
            conn.send({"type": "locked"})
        else:
            conn.send({"type": "status", "state": "locked", "agent": "fake 0", "tokens": [], "lock_sources": []})


class FakeAgent:
    def __init__(self, script: Script) -> None:
        self.dir = tempfile.mkdtemp(prefix="tapsign-fake-")
        self.path = os.path.join(self.dir, "agent.sock")
        self.script = script
        self.received: List[List[Dict[str, Any]]] = []
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(self.path)
        self.listener.listen(16)
        self.threads: List[threading.Thread] = []
        self._accept = threading.Thread(target=self._loop, daemon=True)
        self._accept.start()

    @property
    def connections(self) -> int:
        return len(self.received)

    def requests(self, kind: str) -> List[Dict[str, Any]]:
        return [m for log in self.received for m in log if m["type"] == kind]

    def _loop(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            log: List[Dict[str, Any]] = []
            n = len(self.received)
            self.received.append(log)
            conn = Conn(sock, log)
            t = threading.Thread(target=self._run, args=(conn, n), daemon=True)
            self.threads.append(t)
            t.start()

    def _run(self, conn: Conn, n: int) -> None:
        try:
            self.script(conn, n)
        finally:
            conn.close()

    def close(self) -> None:
        try:
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        except OSError:
            pass
        self.listener.close()
        self._accept.join(5)
        for t in self.threads:
            t.join(5)
        try:
            os.unlink(self.path)
            os.rmdir(self.dir)
        except OSError:
            pass


def using(script: Script) -> Any:
    """Run a test against a fake agent playing ``script`` (the ``fake`` fixture)."""
    import pytest

    return pytest.mark.parametrize("fake", [script], indirect=True)


# ---------------------------------------------------------------- scripts


def close_after_first_request(conn: Conn, n: int) -> None:
    """Connection 0 answers one request, then closes (the agent's idle timeout)."""
    if n > 0:
        return serve_forever(conn, n)
    conn.hello()
    msg = conn.read()
    assert msg is not None
    conn.send({"type": "locked"} if msg["type"] == "lock" else signed(msg))


def drop_first_sign(conn: Conn, n: int) -> None:
    """Connection 0 reads a request and drops without answering (an agent restart)."""
    if n > 0:
        return serve_forever(conn, n)
    conn.hello()
    conn.read()


def always_drop(conn: Conn, n: int) -> None:
    conn.hello()
    conn.read()


def busy_at_once(conn: Conn, n: int) -> None:
    """The agent at its connection limit: `busy` and close, without reading anything."""
    conn.send({"type": "error", "code": "busy", "message": "the agent is serving 64 connections"})


def slow_first_answer(conn: Conn, n: int) -> None:
    """Answers connection 0's first request late; a client that gave up must not read it as
    the answer to its next request."""
    if n > 0:
        return serve_forever(conn, n)
    conn.hello()
    msg = conn.read()
    time.sleep(2.5)
    if msg is not None:
        try:
            conn.send(signed({**msg, "path": "/stale"}))
        except OSError:
            pass


def answers_with(answer: Dict[str, Any]) -> Script:
    """hello, then answer every request with a `signed` message whose fields ``answer`` sets."""

    def script(conn: Conn, n: int) -> None:
        conn.hello()
        while conn.read() is not None:
            conn.send({"type": "signed", "method": "GET", "path": "/api/v3/order", "query": "a=1", "body": "",
                       "headers": {"X-Fake": "k"}, **answer})

    return script


def extra_frame_after_first_answer(conn: Conn, n: int) -> None:
    """Connection 0 sends an unasked frame after its first answer, then keeps serving: a client
    that reads it as the next answer gets the wrong request back."""
    if n > 0:
        return serve_forever(conn, n)
    conn.hello()
    msg = conn.read()
    if msg is None:
        return
    conn.send(signed(msg))
    conn.send(signed({**msg, "path": "/extra"}))
    serve_forever_after_hello(conn)


def answers_another_request(conn: Conn, n: int) -> None:
    """Connection 0 answers its first `sign` with another process's signed request (the same
    path, the other side's order), as a connection shared across a fork does; then serves."""
    if n > 0:
        return serve_forever(conn, n)
    conn.hello()
    msg = conn.read()
    if msg is None:
        return
    conn.send(signed({**msg, "query": msg["query"].replace("BUY", "SELL"), "body": msg["body"].replace("BUY", "SELL")}))
    serve_forever_after_hello(conn)


def binance_reads_refused_but_futures(conn: Conn, n: int) -> None:
    """A key whose policy (`only`) holds Binance futures alone: the agent refuses every other
    sign as policy_denied, as the real one does, and signs the futures reads with an
    X-MBX-APIKEY header; for the key `binance-nothing`, it refuses every sign."""

    def sign(msg: Dict[str, Any]) -> Dict[str, Any]:
        if msg["path"].startswith("/fapi/") and msg["key"] != "binance-nothing":
            return {**signed(msg), "headers": {"X-MBX-APIKEY": "futures-api-key"}}
        return {"type": "error", "code": "policy_denied",
                "message": f"refused: {msg['path']} is left out by this key's `only` list"}

    if conn.hello():
        serve_forever_after_hello(conn, sign)


def okx_signs(conn: Conn, n: int) -> None:
    """Signs every request as an OKX key's answer does (its OK-ACCESS headers), the request
    back as it was asked: what the adapter asked to have signed is in ``received``."""
    headers = {"OK-ACCESS-KEY": "k", "OK-ACCESS-SIGN": "s", "OK-ACCESS-PASSPHRASE": "p",
               "OK-ACCESS-TIMESTAMP": "2020-12-08T09:08:57.715Z"}
    if conn.hello():
        serve_forever_after_hello(conn, lambda msg: {**signed(msg), "headers": headers})