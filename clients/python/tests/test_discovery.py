"""Finding the socket (docs/protocol.md, proto/src/path.rs) and refusing one that is not your
agent's: served by another uid, or in a folder that is a symlink or open to others."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from pathlib import Path
from typing import Any

import pytest

import tapsign
from tapsign import _wire


def test_tapsign_sock_wins() -> None:
    env = {"TAPSIGN_SOCK": "/x/agent.sock", "XDG_RUNTIME_DIR": "/run/user/7"}
    assert _wire.discover(env, uid=7) == _wire.SocketPath("/x/agent.sock", False)


def test_an_empty_tapsign_sock_is_ignored() -> None:
    env = {"TAPSIGN_SOCK": "", "XDG_RUNTIME_DIR": "/rt"}
    assert _wire.discover(env, uid=7) == _wire.SocketPath("/rt/tapsign/agent.sock", True)


def test_run_user_when_it_exists_else_tmpdir(monkeypatch: Any) -> None:
    monkeypatch.setattr(os.path, "isdir", lambda p: p == "/run/user/1000")
    assert _wire.discover({}, uid=1000).path == "/run/user/1000/tapsign/agent.sock"
    assert _wire.discover({"TMPDIR": "/scratch"}, uid=1001).path == "/scratch/tapsign-1001/agent.sock"
    assert _wire.discover({}, uid=1001).path == "/tmp/tapsign-1001/agent.sock"


def test_the_agent_is_found_the_default_way(world: Any, monkeypatch: Any, tmp_path: Path) -> None:
    """XDG_RUNTIME_DIR/tapsign/agent.sock, with the folder the agent would make (0700, ours)."""
    folder = tmp_path / "tapsign"
    folder.mkdir(mode=0o700)
    os.symlink(world.sock, folder / "agent.sock")
    monkeypatch.delenv("TAPSIGN_SOCK", raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    assert tapsign.Agent().status().unlocked


def test_a_symlinked_socket_folder_is_refused(world: Any, monkeypatch: Any, tmp_path: Path) -> None:
    real = tmp_path / "elsewhere"
    real.mkdir(mode=0o700)
    os.symlink(world.sock, real / "agent.sock")
    (tmp_path / "rt").mkdir()
    os.symlink(real, tmp_path / "rt" / "tapsign")
    monkeypatch.delenv("TAPSIGN_SOCK", raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "rt"))
    with pytest.raises(tapsign.NotYourAgent) as raised:
        tapsign.Agent().status()
    assert "symbolic link" in str(raised.value)


def test_a_socket_folder_others_can_write_is_refused(world: Any, monkeypatch: Any, tmp_path: Path) -> None:
    folder = tmp_path / "tapsign"
    folder.mkdir()
    folder.chmod(0o777)
    os.symlink(world.sock, folder / "agent.sock")
    monkeypatch.delenv("TAPSIGN_SOCK", raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    with pytest.raises(tapsign.NotYourAgent):
        tapsign.Agent().status()


def test_the_peer_check_refuses_another_uid() -> None:
    _wire.check_peer_uid(1000, 1000, "/s")
    with pytest.raises(tapsign.NotYourAgent) as raised:
        _wire.check_peer_uid(0, 1000, "/s")
    assert "uid 0" in str(raised.value) and "not your agent" in str(raised.value)


NOBODY = 65534


def serve_as(uid: int, path: str, ready: int, report: int) -> None:
    """In a forked child: become ``uid``, listen at ``path``, and report how many bytes the
    first connection sent."""
    got = 0
    try:
        os.setgid(uid)
        os.setuid(uid)
        s = socket.socket(socket.AF_UNIX)
        s.bind(path)
        s.listen(1)
        os.write(ready, b"1")
        os.close(ready)
        conn, _ = s.accept()
        conn.settimeout(2)
        while True:
            chunk = conn.recv(4096)
            if not chunk:
                break
            got += len(chunk)
    except OSError as e:
        os.write(report, f"error {e}".encode())
        os._exit(1)
    finally:
        os.write(report, str(got).encode())
        os._exit(0)


@pytest.mark.skipif(os.getuid() != 0, reason="serving a socket as another user needs root")
def test_a_socket_served_by_another_user_gets_nothing() -> None:
    """A planted socket (another user's process) must not receive a request, let alone a PIN."""
    shared = Path(tempfile.mkdtemp(prefix="tapsign-other-"))
    shared.chmod(0o777)
    sock = str(shared / "agent.sock")
    ready_r, ready_w = os.pipe()
    report_r, report_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(ready_r)
        os.close(report_r)
        serve_as(NOBODY, sock, ready_w, report_w)
    os.close(ready_w)
    os.close(report_w)
    try:
        started = os.read(ready_r, 1)
        assert started == b"1", f"the other user's server did not start: {os.read(report_r, 200)!r}"
        with pytest.raises(tapsign.NotYourAgent) as raised:
            tapsign.Agent(sock).unlock(pin="123456")
        assert f"uid {NOBODY}" in str(raised.value)
        assert os.read(report_r, 32) == b"0", "not one byte reached the other user's socket"
    finally:
        os.waitpid(pid, 0)
        os.close(ready_r)
        os.close(report_r)
        shutil.rmtree(shared, ignore_errors=True)
