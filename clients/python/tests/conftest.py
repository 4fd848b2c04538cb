"""Fixtures: one agent for the whole run, with every exchange's test credential, unlocked."""

from __future__ import annotations

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
