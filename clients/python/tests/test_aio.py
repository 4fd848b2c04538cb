"""The asyncio client: the same behaviours as the blocking one."""

from __future__ import annotations

import asyncio
import time
from typing import Any, List

import pytest

import creds
import diffkit
import fakeagent
import tapsign
import tapsign.aio
from agentworld import World
from fakeagent import Conn, FakeAgent
from fakeagent import busy_at_once, drop_first_sign, slow_first_answer, using


def test_status_sign_lock_against_the_agent(fresh_world: World) -> None:
    async def go() -> None:
        async with tapsign.aio.Agent(fresh_world.sock) as a:
            assert (await a.hello()).startswith("tapsign")
            assert (await a.status()).unlocked
            s = await a.sign("binance-main", "POST", "/api/v3/order", body="symbol=BTCUSDT&side=BUY&type=MARKET&quantity=1")
            payload, sig = s.body.rsplit("&signature=", 1)
            assert sig == diffkit.hmac_hex(creds.BINANCE[1].encode(), payload.encode())
            with pytest.raises(tapsign.PolicyDenied):
                await a.sign("binance-main", "POST", "/sapi/v1/capital/withdraw/apply", body="coin=BTC")
            await a.lock()
            with pytest.raises(tapsign.Locked):
                await a.sign("binance-main", "GET", "/api/v3/account")
            assert (await a.unlock(timeout=30)).unlocked

    asyncio.run(go())


def test_unlock_with_an_empty_list_of_keys_is_refused_not_every_key(fresh_world: World) -> None:
    """Red-team round 20: as the blocking client's: ``[]`` is sent, and refused."""

    async def go() -> None:
        async with tapsign.aio.Agent(fresh_world.sock) as a:
            await a.lock()
            with pytest.raises(tapsign.BadRequest, match="name at least one key"):
                await a.unlock(keys=[], ttl_secs=600, timeout=30)
            assert not (await a.status()).unlocked

    asyncio.run(go())


@using(fakeagent.serve_forever)
def test_one_connection_serves_every_call_when_its_descriptor_is_above_1023(fake: FakeAgent, high_fds: None) -> None:
    """Red-team round 20: as the blocking client's, ``select`` refused a descriptor of 1024 or
    more and every request opened a new connection."""

    async def go() -> None:
        async with tapsign.aio.Agent(fake.path) as a:
            for i in range(5):
                await a.sign("k", "GET", f"/p{i}")
            assert a._conn is not None and a._conn.sock.fileno() >= 1024

    asyncio.run(go())
    assert fake.connections == 1


def test_concurrent_tasks_share_one_connection(agent: tapsign.Agent, world: World) -> None:
    async def go() -> List[str]:
        a = tapsign.aio.Agent(world.sock)
        answers = await asyncio.gather(*[
            a.sign("binance-main", "GET", "/api/v3/openOrders", query=f"symbol=S{i}") for i in range(40)
        ])
        await a.close()
        return [s.query for s in answers]

    for i, q in enumerate(asyncio.run(go())):
        assert q.startswith(f"symbol=S{i}&timestamp=")


def test_events_as_an_async_iterator(fresh_world: World) -> None:
    async def go() -> List[str]:
        a = tapsign.aio.Agent(fresh_world.sock)
        got: List[str] = []

        async def collect() -> None:
            async for event in a.events(timeout=20):
                got.append(event.event)
                if len(got) == 2:
                    return

        task = asyncio.ensure_future(collect())
        await asyncio.sleep(0.3)
        await asyncio.get_running_loop().run_in_executor(None, lambda: fresh_world.run(["lock"]))
        await a.unlock(timeout=30)
        await asyncio.wait_for(task, 20)
        return got

    assert asyncio.run(go()) == ["locked", "unlocked"]


@using(drop_first_sign)
def test_sign_is_retried_once(fake: FakeAgent) -> None:
    async def go() -> str:
        a = tapsign.aio.Agent(fake.path)
        return (await a.sign("k", "GET", "/order")).path

    assert asyncio.run(go()) == "/order"
    assert len(fake.requests("sign")) == 2


@using(drop_first_sign)
def test_unlock_is_never_retried(fake: FakeAgent) -> None:
    async def go() -> None:
        await tapsign.aio.Agent(fake.path).unlock(pin="1234", timeout=5)

    with pytest.raises(tapsign.ConnectionLost):
        asyncio.run(go())
    assert len(fake.requests("unlock")) == 1


@using(busy_at_once)
def test_busy(fake: FakeAgent) -> None:
    with pytest.raises(tapsign.Busy):
        asyncio.run(tapsign.aio.Agent(fake.path).status())


@using(slow_first_answer)
def test_a_cancelled_request_never_hands_its_answer_to_the_next(fake: FakeAgent) -> None:
    async def go() -> str:
        a = tapsign.aio.Agent(fake.path)
        task = asyncio.ensure_future(a.sign("k", "GET", "/first"))
        await asyncio.sleep(0.5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return (await a.sign("k", "GET", "/second")).path

    assert asyncio.run(go()) == "/second"


@using(slow_first_answer)
def test_timeout(fake: FakeAgent) -> None:
    async def go() -> str:
        a = tapsign.aio.Agent(fake.path, timeout=1.0)
        with pytest.raises(tapsign.AgentTimeout):
            await a.sign("k", "GET", "/first")
        return (await a.sign("k", "GET", "/second")).path

    assert asyncio.run(go()) == "/second"


def test_no_agent(tmp_path: Any) -> None:
    with pytest.raises(tapsign.AgentNotRunning):
        asyncio.run(tapsign.aio.Agent(str(tmp_path / "none.sock")).status())


@using(fakeagent.extra_frame_after_first_answer)
def test_bytes_nobody_asked_for_make_the_next_request_reconnect(fake: FakeAgent) -> None:
    async def go() -> List[str]:
        a = tapsign.aio.Agent(fake.path)
        try:
            first = (await a.sign("k", "GET", "/first")).path
            await asyncio.sleep(0.2)  # the unasked frame has arrived
            return [first, (await a.sign("k", "GET", "/second")).path]
        finally:
            await a.close()

    assert asyncio.run(go()) == ["/first", "/second"]
    assert fake.connections == 2


@using(fakeagent.answers_with({"path": "@evil.example/x"}))
def test_a_signed_answer_with_a_path_off_the_root_is_a_protocol_error(fake: FakeAgent) -> None:
    with pytest.raises(tapsign.ProtocolError):
        asyncio.run(tapsign.aio.Agent(fake.path).sign("k", "GET", "/api/v3/order"))


@using(fakeagent.answers_with({"query": None}))
def test_a_signed_answer_without_a_string_query_is_a_protocol_error(fake: FakeAgent) -> None:
    with pytest.raises(tapsign.ProtocolError):
        asyncio.run(tapsign.aio.Agent(fake.path).sign("k", "GET", "/api/v3/order"))


@using(fakeagent.answers_another_request)
def test_an_answer_to_another_request_is_a_protocol_error_and_closes_the_connection(fake: FakeAgent) -> None:
    order = "symbol=BTCUSDT&side=BUY&quantity=1"

    async def go() -> str:
        a = tapsign.aio.Agent(fake.path)
        with pytest.raises(tapsign.ProtocolError):
            await a.sign("k", "POST", "/api/v3/order", body=order)
        return (await a.sign("k", "POST", "/api/v3/order", body=order)).body

    assert asyncio.run(go()) == order
    assert fake.connections == 2, "the next request went on a new connection"
