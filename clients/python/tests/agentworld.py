"""A private tapsign agent for the tests, as tests/src/lib.rs starts one for the Rust e2e tests:
the real `tapsign` binary, its own TAPSIGN_HOME and socket in a temp folder, the insecure soft
token (tests only), credentials stored with `tapsign key add` (fields on stdin), then
`tapsign unlock`.

The binary is ``$TAPSIGN_BIN`` or ``<repo>/target/debug/tapsign`` (``scripts/test`` builds it).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

REPO = Path(__file__).resolve().parents[3]


def tapsign_bin() -> str:
    explicit = os.environ.get("TAPSIGN_BIN")
    path = Path(explicit) if explicit else REPO / "target" / "debug" / "tapsign"
    if not path.exists():
        raise RuntimeError(
            f"{path} is missing: run `cargo build -p tapsign-cli` first (scripts/test does), "
            "or set TAPSIGN_BIN"
        )
    return str(path)


class World:
    """One agent's world: a home folder, a socket path, maybe a running agent."""

    def __init__(self) -> None:
        self.home = Path(tempfile.mkdtemp(prefix="tapsign-py-"))
        self.sock = str(self.home / "run" / "agent.sock")
        self.log = self.home / "agent.log"
        self.agent: Optional[subprocess.Popen] = None  # type: ignore[type-arg]
        self.keys: Dict[str, str] = {}  # name -> exchange

    def env(self) -> Dict[str, str]:
        env = dict(os.environ)
        no_bus = f"unix:path={self.home / 'no-bus'}"
        env.update(
            TAPSIGN_HOME=str(self.home),
            TAPSIGN_SOCK=self.sock,
            TAPSIGN_INSECURE_SOFT_TOKEN="1",
            # No desktop buses: a developer's screen lock must not lock test agents.
            DBUS_SYSTEM_BUS_ADDRESS=no_bus,
            DBUS_SESSION_BUS_ADDRESS=no_bus,
        )
        for name in ("XDG_RUNTIME_DIR", "XDG_SESSION_ID", "TAPSIGN_BIN"):
            env.pop(name, None)
        return env

    def run(self, args: Sequence[str], stdin: str = "", check: bool = True) -> "subprocess.CompletedProcess[str]":
        done = subprocess.run(
            [tapsign_bin(), *args],
            input=stdin,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"tapsign {' '.join(args)} failed ({done.returncode}): {done.stderr}")
        return done

    def add_key(self, name: str, exchange: str, fields: List[str]) -> None:
        if not (self.home / "soft-token").exists():
            self.run(["token", "add", "--soft"])
        self.run(["key", "add", name, "--exchange", exchange], "\n".join(fields) + "\n")
        self.keys[name] = exchange

    def config(self, toml: str) -> None:
        (self.home / "config.toml").write_text(toml)

    def start(self) -> None:
        with open(self.log, "wb") as log:
            self.agent = subprocess.Popen(
                [tapsign_bin(), "agent"],
                env=self.env(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                try:
                    s.connect(self.sock)
                    return
                except OSError:
                    pass
            if self.agent.poll() is not None:
                raise AssertionError(f"the agent exited ({self.agent.returncode}): {self.agent_log()}")
            time.sleep(0.02)
        raise AssertionError(f"the agent did not answer within 20 s: {self.agent_log()}")

    def unlock(self, *args: str) -> None:
        self.run(["unlock", *args])

    def agent_log(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        if self.agent is not None:
            self.agent.terminate()
            try:
                self.agent.wait(10)
            except subprocess.TimeoutExpired:
                self.agent.kill()
                self.agent.wait()
            self.agent = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.home, ignore_errors=True)
