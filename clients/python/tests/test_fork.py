"""fork(): an Agent used before a fork is never shared by the processes after it. Children of a
bot that connected at start (a multiprocessing pool on Linux forks) each get their own
connection; on a shared one each would read the others' answers, another order signed, as its
own (red-team round 19)."""

from __future__ import annotations

import asyncio
import json
import os
import select
import signal
import threading
import time
from typing import Any, Callable, Dict, List

import tapsign
import tapsign.aio
from agentworld import World
from fakeagent import FakeAgent, slow_first_answer, using

ROUNDS = 100


def in_children(jobs: Dict[str, Callable[[], Any]], timeout: float = 60) -> Dict[str, Any]:
    """Runs each job in a child forked from this process, all released at the same moment;
    returns what each returned (as JSON), or the error it raised, or that it hung and was
    killed."""
    go_r, go_w = os.pipe()
    pipes: Dict[str, int] = {}
    pids: Dict[str, int] = {}
    for name, job in jobs.items():
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: never return into pytest
            try:
                os.close(go_w)
                os.read(go_r, 1)  # end of file once the parent lets go
                try:
                    out = {"result": job()}
                except BaseException as e:  # noqa: BLE001 - reported to the parent
                    out = {"error": f"{type(e).__name__}: {e}"}
                os.write(w, json.dumps(out).encode())
            finally:
                os._exit(0)
        os.close(w)
        pipes[name], pids[name] = r, pid
    os.close(go_r)
    os.close(go_w)
    got: Dict[str, Any] = {}
    deadline = time.monotonic() + timeout
    for name, r in pipes.items():
        data = b""
        while True:
            ready, _, _ = select.select([r], [], [], max(0.0, deadline - time.monotonic()))
            chunk = os.read(r, 65536) if ready else None
            if not chunk:
                break
            data += chunk
        os.close(r)
        if chunk is None:
            os.kill(pids[name], signal.SIGKILL)
            got[name] = "hung, killed"
        else:
            out = json.loads(data)
            got[name] = out.get("result", out.get("error"))
        os.waitpid(pids[name], 0)
    return got


def own_orders(sign: Callable[[str], tapsign.SignedRequest], side: str) -> Dict[str, int]:
    """Signs ROUNDS requests of this side's own; counts the answers that are not theirs."""
    counts = {"own": 0, "another request's": 0}
    for i in range(ROUNDS):
        query = f"symbol={side}{i}"
        try:
            s = sign(query)
        except tapsign.TapsignError as e:
            name = type(e).__name__
            counts[name] = counts.get(name, 0) + 1
            continue
        counts["own" if s.query.startswith(query + "&timestamp=") else "another request's"] += 1
    return counts


def test_forked_children_never_get_each_others_signatures(fresh_world: World) -> None:
    a = tapsign.Agent(fresh_world.sock, timeout=5)
    a.sign("binance-main", "GET", "/api/v3/openOrders", query="symbol=PARENT")  # connected

    def child(side: str) -> Callable[[], Dict[str, int]]:
        return lambda: own_orders(lambda q: a.sign("binance-main", "GET", "/api/v3/openOrders", query=q), side)

    got = in_children({"BUY": child("BUY"), "SELL": child("SELL")})
    assert got == {side: {"own": ROUNDS, "another request's": 0} for side in ("BUY", "SELL")}
    # The parent's connection is still its own, and still open.
    assert a.sign("binance-main", "GET", "/api/v3/openOrders", query="symbol=AFTER").query.startswith("symbol=AFTER&")


def test_forked_children_of_an_asyncio_bot_never_get_each_others_signatures(fresh_world: World) -> None:
    a = tapsign.aio.Agent(fresh_world.sock, timeout=5)
    asyncio.run(a.sign("binance-main", "GET", "/api/v3/openOrders", query="symbol=PARENT"))  # connected

    def child(side: str) -> Callable[[], Dict[str, int]]:
        async def signs() -> Dict[str, int]:
            counts = {"own": 0, "another request's": 0}
            for i in range(ROUNDS):
                query = f"symbol={side}{i}"
                try:
                    s = await a.sign("binance-main", "GET", "/api/v3/openOrders", query=query)
                except tapsign.TapsignError as e:
                    counts[type(e).__name__] = counts.get(type(e).__name__, 0) + 1
                    continue
                counts["own" if s.query.startswith(query + "&timestamp=") else "another request's"] += 1
            return counts

        return lambda: asyncio.run(signs())  # a child runs its own event loop

    got = in_children({"BUY": child("BUY"), "SELL": child("SELL")})
    assert got == {side: {"own": ROUNDS, "another request's": 0} for side in ("BUY", "SELL")}


@using(slow_first_answer)
def test_a_lock_held_by_another_thread_at_the_fork_does_not_block_the_child(fake: FakeAgent) -> None:
    a = tapsign.Agent(fake.path, timeout=10)
    errors: List[BaseException] = []

    def slow() -> None:
        try:
            a.sign("k", "GET", "/slow")  # holds the Agent's lock until its late answer
        except tapsign.TapsignError as e:
            errors.append(e)

    t = threading.Thread(target=slow)
    t.start()
    deadline = time.monotonic() + 5
    while not fake.requests("sign") and time.monotonic() < deadline:
        time.sleep(0.01)
    assert fake.requests("sign"), "the thread's request is in flight"
    got = in_children({"child": lambda: a.sign("k", "GET", "/child").path}, timeout=10)
    t.join(10)
    assert got == {"child": "/child"}
    assert fake.connections == 2, "the child signed on a connection of its own"
