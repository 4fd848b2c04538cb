"""Fixtures: one agent for the whole run, with every exchange's test credential, unlocked."""

from __future__ import annotations

import os
import resource
from typing import Iterator

import pytest

import creds
from agentworld import World
from fakeagent import FakeAgent
import tapsign


@pytest.fixture(scope="session")
def world() -> Iterator[World]:
    w = World()
    try:
        for name, (exchange, fields) in creds.KEYS.items():
            w.add_key(name, exchange, fields)
        w.start()
        w.unlock()
        yield w
    finally:
        w.close()


@pytest.fixture(scope="session")
def agent(world: World) -> Iterator[tapsign.Agent]:
    a = tapsign.Agent(world.sock)
    yield a
    a.close()


@pytest.fixture
def fresh_world() -> Iterator[World]:
    """An agent of its own, for tests that lock it or stop it."""
    w = World()
    try:
        w.add_key("binance-main", "binance", creds.BINANCE)
        w.start()
        w.unlock()
        yield w
    finally:
        w.close()


@pytest.fixture
def fake(request: pytest.FixtureRequest) -> Iterator[FakeAgent]:
    """A scripted fake agent; pick the script with ``@fakeagent.using(script)``."""
    agent = FakeAgent(request.param)
    yield agent
    agent.close()


@pytest.fixture
def high_fds() -> Iterator[None]:
    """Descriptors up to 1100 taken, as in a bot with many sockets and files open, so the next
    socket's descriptor is above 1023 (where ``select.select`` refuses it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 1200
    if hard != resource.RLIM_INFINITY and hard < want:
        pytest.skip(f"the hard limit on open files ({hard}) is below {want}")
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    held: list = []
    try:
        while not held or held[-1] < 1100:
            held.append(os.open(os.devnull, os.O_RDONLY))
        yield
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
