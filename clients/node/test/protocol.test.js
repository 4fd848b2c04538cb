'use strict';
// The client's side of docs/protocol.md against a scripted agent: the frames it sends are the
// golden ones byte for byte, every golden answer decodes to what it means, and the failure
// cases a real agent will not produce on demand (a malformed frame, a drop between request and
// answer, a held-back answer) end as the errors they should.

const test = require('node:test');
const assert = require('node:assert/strict');

const tapsign = require('..');
const { fakeAgent, serve, golden } = require('./helpers/fake-agent');

const { Agent } = tapsign;

test('the Agent sends the golden request frames byte for byte', async () => {
  const seen = [];
  const fake = await fakeAgent(async (peer) => {
    seen.push(['hello', await peer.nextRaw()]);
    peer.send(golden('response_hello'));
    for (;;) {
      let raw;
      try {
        raw = await peer.nextRaw();
      } catch {
        return;
      }
      const msg = JSON.parse(raw.subarray(4));
      seen.push([msg.type, raw]);
      const answers = {
        status: 'response_status_locked',
        lock: 'response_locked',
        sign: 'response_signed_headers',
        unlock: 'response_unlocked',
        subscribe: 'response_subscribed',
      };
      // The golden answer is binance-spot's; another request gets its own back.
      const { type, key, kind, ...request } = msg;
      void kind;
      const own = { type: 'signed', ...request, headers: { 'X-Fake': String(key) } };
      peer.send(type === 'sign' && key !== 'binance-spot' ? own : golden(answers[type]));
    }
  });
  const agent = new Agent({ path: fake.path, client: 'mybot/1.2' });
  try {
    await agent.status();
    await agent.lock();
    await agent.sign('binance-spot', 'GET', '/api/v3/openOrders', { query: 'symbol=BTCUSDT', body: '' });
    await agent.sign('upbit-main', 'POST', '/v1/orders', {
      body: '{"market":"KRW-BTC","side":"bid","price":"5000","ord_type":"price"}',
    });
    await agent.unlock();
    await agent.unlock({ ttl_secs: 3600, extend: true });
    await agent.unlock({
      keys: ['upbit-main', 'binance-spot'],
      ttl_secs: 3600,
      idle_secs: 600,
      max_signatures: 500,
      pin: '123456',
    });
    await agent.unlock({ token: 'fido2-c47a10dc', pin: '4321' });
    const events = agent.events();
    const first = events.next();
    // The subscription is up once its `subscribe` arrived; then end it.
    while (!seen.some(([t]) => t === 'subscribe')) await new Promise((r) => setTimeout(r, 5));
    fake.peers.at(-1).send(golden('response_event_expiring'));
    assert.equal((await first).value.event, 'expiring_soon');
    await events.return();
  } finally {
    agent.close();
    await fake.close();
  }
  const want = {
    hello: ['request_hello'],
    status: ['request_status'],
    lock: ['request_lock'],
    sign: ['request_sign_get_query', 'request_sign_post_body'],
    unlock: ['request_unlock_defaults', 'request_unlock_extend', 'request_unlock_full', 'request_unlock_token'],
    subscribe: ['request_subscribe'],
  };
  for (const [type, names] of Object.entries(want)) {
    const sent = seen.filter(([t]) => t === type).map(([, raw]) => raw);
    for (const name of names) {
      assert.ok(
        sent.some((raw) => raw.equals(golden(name))),
        `no frame equal to ${name}.frame among the ${type} frames sent: ${sent.map((r) => r.subarray(4)).join(' | ')}`,
      );
    }
  }
  // Every connection (shared, four unlocks, events) opened with the golden hello.
  assert.equal(seen.filter(([t]) => t === 'hello').length, 6);
});

test('every golden error frame becomes its class, carrying the agent message', async () => {
  const codes = {
    locked: tapsign.Locked,
    expired: tapsign.Expired,
    budget_exhausted: tapsign.BudgetExhausted,
    policy_denied: tapsign.PolicyDenied,
    unknown_key: tapsign.UnknownKey,
    bad_request: tapsign.BadRequest,
    token_absent: tapsign.TokenAbsent,
    wrong_token: tapsign.WrongToken,
    touch_timeout: tapsign.TouchTimeout,
    pin_invalid: tapsign.PinInvalid,
    version_mismatch: tapsign.VersionMismatch,
    keystore: tapsign.KeystoreError,
    busy: tapsign.Busy,
    forbidden: tapsign.Forbidden,
    internal: tapsign.Internal,
  };
  const order = Object.keys(codes);
  let i = 0;
  const fake = await fakeAgent(serve(() => golden(`response_error_${order[i++]}`)));
  const agent = new Agent({ path: fake.path });
  try {
    for (const [code, Cls] of Object.entries(codes)) {
      const err = await agent.status().then(
        () => assert.fail(`${code}: no error`),
        (e) => e,
      );
      assert.ok(err instanceof Cls, `${code} → ${err.name}`);
      assert.ok(err instanceof tapsign.TapsignError);
      assert.equal(err.code, code);
      assert.equal(err.message, `example ${code} message`);
      assert.equal(err.name, Cls.name);
    }
  } finally {
    agent.close();
    await fake.close();
  }
  assert.equal(tapsign.BudgetSpent, tapsign.BudgetExhausted, 'BudgetSpent names the same class');
  // The groups a bot can catch at once, as in the Python client.
  for (const C of [tapsign.Locked, tapsign.Expired, tapsign.BudgetExhausted]) assert.ok(new C('m') instanceof tapsign.NoSession);
  for (const C of [tapsign.PolicyDenied, tapsign.UnknownKey, tapsign.BadRequest]) assert.ok(new C('m') instanceof tapsign.Refused);
  for (const C of [tapsign.TokenAbsent, tapsign.WrongToken, tapsign.TouchTimeout, tapsign.PinInvalid]) {
    assert.ok(new C('m') instanceof tapsign.TokenError);
  }
  assert.ok(!(new tapsign.Busy('m') instanceof tapsign.Refused));
});

test('an error code this client does not know is Internal, keeping the code', async () => {
  const fake = await fakeAgent(serve(() => golden('reject_response_unknown_code')));
  const agent = new Agent({ path: fake.path });
  try {
    await assert.rejects(agent.status(), (e) => e instanceof tapsign.Internal && e.code === 'on_fire' && e.message === 'm');
  } finally {
    agent.close();
    await fake.close();
  }
});

test('status and unlocked answers decode to the documented fields', async () => {
  const fake = await fakeAgent(
    serve((msg) => golden(msg.type === 'unlock' ? 'response_unlocked' : 'response_status_unlocked')),
  );
  const agent = new Agent({ path: fake.path });
  try {
    const status = await agent.status();
    const want = JSON.parse(golden('response_status_unlocked').subarray(4));
    delete want.type;
    assert.deepEqual(status, want);
    assert.equal(status.session.keys[0].name, 'upbit-main');
    const unlocked = await agent.unlock();
    assert.equal(unlocked.state, 'unlocked');
    assert.equal(unlocked.type, undefined);
  } finally {
    agent.close();
    await fake.close();
  }
});

test('a signed answer becomes a SignedRequest whose url() joins host, path and query', async () => {
  const fake = await fakeAgent(serve(() => golden('response_signed_headers')));
  const agent = new Agent({ path: fake.path });
  try {
    const s = await agent.sign('binance-spot', 'GET', '/api/v3/openOrders', { query: 'symbol=BTCUSDT' });
    assert.ok(s instanceof tapsign.SignedRequest);
    assert.equal(s.method, 'GET');
    assert.equal(s.headers['X-MBX-APIKEY'], 'test-access-key');
    assert.equal(
      s.url('https://api.binance.com/'),
      `https://api.binance.com/api/v3/openOrders?${s.query}`,
    );
    const noQuery = new tapsign.SignedRequest({ ...s, query: '' });
    assert.equal(noQuery.url('https://api.binance.com'), 'https://api.binance.com/api/v3/openOrders');
  } finally {
    agent.close();
    await fake.close();
  }
});

test('a frame that is not JSON is a ProtocolError, and the next call reconnects', async () => {
  const bad = Buffer.concat([Buffer.from([0, 0, 0, 3]), Buffer.from('{x}')]);
  const fake = await fakeAgent(serve(() => bad));
  const agent = new Agent({ path: fake.path });
  try {
    await assert.rejects(agent.status(), tapsign.ProtocolError);
    await assert.rejects(agent.status(), tapsign.ProtocolError);
    assert.equal(fake.peers.length, 2, 'a new connection after the bad frame');
  } finally {
    agent.close();
    await fake.close();
  }
});

test('an announced length over 64 KiB is refused before the body arrives', async () => {
  const fake = await fakeAgent(serve(() => golden('reject_oversized_length')));
  const agent = new Agent({ path: fake.path, timeout: 2000 });
  try {
    await assert.rejects(agent.status(), (e) => e instanceof tapsign.ProtocolError && /65537 bytes/.test(e.message));
  } finally {
    agent.close();
    await fake.close();
  }
});

test('an answer of the wrong type is a ProtocolError', async () => {
  const fake = await fakeAgent(serve(() => golden('response_locked')));
  const agent = new Agent({ path: fake.path });
  try {
    await assert.rejects(agent.status(), (e) => e instanceof tapsign.ProtocolError && /"locked".*"status"/.test(e.message));
  } finally {
    agent.close();
    await fake.close();
  }
});

test('a kept connection the agent dropped is reopened and the call sent once more', async () => {
  const fake = await fakeAgent(async (peer, index) => {
    await peer.greet();
    const msg = await peer.next();
    if (index === 0 && msg.type === 'status') {
      peer.send(golden('response_status_locked'));
      // The second request on this connection is read, then the agent goes away unanswered
      // (a restart, the idle-connection timeout).
      await peer.next();
      peer.destroy();
      return;
    }
    peer.send(golden('response_status_locked'));
  });
  const agent = new Agent({ path: fake.path });
  try {
    await agent.status();
    const status = await agent.status();
    assert.equal(status.state, 'locked');
    assert.equal(fake.peers.length, 2);
  } finally {
    agent.close();
    await fake.close();
  }
});

test('a fresh connection that drops is reported once, not retried in a loop', async () => {
  const fake = await fakeAgent(async (peer) => {
    await peer.greet();
    await peer.next();
    peer.destroy();
  });
  const agent = new Agent({ path: fake.path });
  try {
    await assert.rejects(agent.status(), tapsign.ConnectionLost);
    assert.equal(fake.peers.length, 1);
  } finally {
    agent.close();
    await fake.close();
  }
});

test('no answer within the timeout is a Timeout, and the next call gets a new connection', async () => {
  let calls = 0;
  const fake = await fakeAgent(serve(() => (++calls === 1 ? undefined : golden('response_status_locked'))));
  const agent = new Agent({ path: fake.path, timeout: 200 });
  try {
    await assert.rejects(agent.status(), (e) => e instanceof tapsign.AgentTimeout && e.code === null);
    assert.equal((await agent.status()).state, 'locked');
    assert.equal(fake.peers.length, 2);
  } finally {
    agent.close();
    await fake.close();
  }
});

test('concurrent calls on one Agent go one at a time and each gets its own answer', async () => {
  let inFlight = 0;
  let most = 0;
  const fake = await fakeAgent(
    serve(async (msg) => {
      inFlight++;
      most = Math.max(most, inFlight);
      await new Promise((r) => setTimeout(r, Math.random() * 5));
      inFlight--;
      return { type: 'signed', method: msg.method, path: msg.path, query: msg.query, body: '', headers: { sig: msg.query } };
    }),
  );
  const agent = new Agent({ path: fake.path });
  try {
    const results = await Promise.all(
      Array.from({ length: 40 }, (_, i) => agent.sign('k', 'GET', '/p', { query: `i=${i}` })),
    );
    results.forEach((s, i) => assert.equal(s.headers.sig, `i=${i}`));
    assert.equal(most, 1, 'the agent never saw a second request before answering the first');
    assert.equal(fake.peers.length, 1, 'one shared connection');
  } finally {
    agent.close();
    await fake.close();
  }
});

test('a waiting unlock does not hold up status and sign on the same Agent', async () => {
  let release;
  const touched = new Promise((r) => {
    release = r;
  });
  const fake = await fakeAgent(
    serve(async (msg) => {
      if (msg.type === 'unlock') {
        await touched; // a human has not touched the token yet
        return golden('response_unlocked');
      }
      if (msg.type === 'status') return golden('response_status_locked');
      return golden('response_signed_headers');
    }),
  );
  const agent = new Agent({ path: fake.path });
  try {
    const unlocking = agent.unlock();
    assert.equal((await agent.status()).state, 'locked');
    await agent.sign('binance-spot', 'GET', '/api/v3/openOrders', { query: 'symbol=BTCUSDT' });
    release();
    assert.equal((await unlocking).state, 'unlocked');
  } finally {
    agent.close();
    await fake.close();
  }
});

test('events() yields pushed events and closes its connection on break', async () => {
  const fake = await fakeAgent(async (peer) => {
    await peer.greet();
    const msg = await peer.next();
    assert.equal(msg.type, 'subscribe');
    peer.send(golden('response_subscribed'));
    peer.send(golden('response_event_expiring'));
    peer.send(golden('response_event_locked'));
  });
  const agent = new Agent({ path: fake.path });
  const got = [];
  try {
    for await (const ev of agent.events()) {
      got.push(ev);
      if (got.length === 2) break;
    }
    assert.deepEqual(got[1], {
      event: 'locked',
      message: 'locked: screen locked (logind Session.Lock)',
      reason: 'screen locked (logind Session.Lock)',
      code: 'locked',
    });
    assert.equal(got[0].signatures_left, 120);
    // The client closed the subscription.
    await new Promise((r) => setTimeout(r, 50));
    assert.ok(fake.peers[0].ended);
  } finally {
    agent.close();
    await fake.close();
  }
});

test('events() ends with ConnectionLost when the agent goes away', async () => {
  const fake = await fakeAgent(async (peer) => {
    await peer.greet();
    await peer.next();
    peer.send(golden('response_subscribed'));
    peer.send(golden('response_event_expiring'));
    setTimeout(() => peer.destroy(), 20);
  });
  const agent = new Agent({ path: fake.path });
  try {
    const it = agent.events();
    assert.equal((await it.next()).value.event, 'expiring_soon');
    await assert.rejects(it.next(), tapsign.ConnectionLost);
  } finally {
    agent.close();
    await fake.close();
  }
});

test('an agent that answers busy at once and closes is heard as Busy, not as a dropped connection', async () => {
  const fake = await fakeAgent((peer) => {
    peer.send(golden('response_error_busy'));
    peer.close();
  });
  const agent = new Agent({ path: fake.path });
  try {
    await assert.rejects(agent.status(), (e) => e instanceof tapsign.Busy && e.message === 'example busy message');
  } finally {
    agent.close();
    await fake.close();
  }
});

test('a refusal whose answer a failed hello lost is heard on a second connection that listens first', async () => {
  // The first connection closes unanswered, as Node reports one whose busy answer arrived
  // before the hello was written; the second answers busy at once.
  const fake = await fakeAgent((peer, i) => {
    if (i === 0) {
      peer.destroy();
      return;
    }
    peer.send(golden('response_error_busy'));
    peer.close();
  });
  const agent = new Agent({ path: fake.path });
  try {
    await assert.rejects(agent.status(), (e) => e instanceof tapsign.Busy && e.message === 'example busy message');
    assert.equal(fake.peers.length, 2);
  } finally {
    agent.close();
    await fake.close();
  }
});

test('a request over 64 KiB is refused before sending, and the connection stays usable', async () => {
  const fake = await fakeAgent(serve(() => golden('response_status_locked')));
  const agent = new Agent({ path: fake.path });
  try {
    await agent.status();
    await assert.rejects(
      agent.sign('k', 'POST', '/p', { body: 'x'.repeat(70000) }),
      (e) => e instanceof tapsign.BadRequest && /65536-byte/.test(e.message),
    );
    await agent.status();
    assert.equal(fake.peers.length, 1);
  } finally {
    agent.close();
    await fake.close();
  }
});

test('bad arguments are TypeErrors that name the problem, and nothing is sent', async () => {
  const fake = await fakeAgent(serve(() => golden('response_signed_headers')));
  const agent = new Agent({ path: fake.path });
  try {
    await assert.rejects(agent.sign('k', 'GET', '/p', { query: 5 }), /query must be a string/);
    await assert.rejects(agent.sign('k', 'GET', '/p', { qurey: 'a=1' }), /unknown option "qurey"/);
    await assert.rejects(agent.sign('k', 'GET', '/p', { kind: 'ws' }), /kind must be "rest" or "ws_login"/);
    await assert.rejects(agent.unlock({ ttl: 5 }), /unknown option "ttl"/);
    assert.throws(() => new Agent({ socket: '/x' }), /unknown option "socket"/);
    assert.equal(fake.peers.length, 0);
  } finally {
    agent.close();
    await fake.close();
  }
});

test('ws_login is sent as kind "ws_login"; rest is left out of the frame', async () => {
  const sent = [];
  const fake = await fakeAgent(
    serve((msg) => {
      sent.push(msg);
      if (msg.kind !== 'ws_login') return { type: 'signed', method: msg.method, path: msg.path, query: '', body: '', headers: { k: '1' } };
      return { type: 'signed', method: 'GET', path: msg.path, query: '', body: '{"op":"auth"}', headers: {} };
    }),
  );
  const agent = new Agent({ path: fake.path });
  try {
    const s = await agent.sign('bybit-main', 'GET', '/v5/private', { kind: 'ws_login' });
    assert.equal(s.body, '{"op":"auth"}');
    await agent.sign('bybit-main', 'GET', '/v5/order/realtime', { kind: 'rest' });
    assert.equal(sent[0].kind, 'ws_login');
    assert.equal('kind' in sent[1], false);
  } finally {
    agent.close();
    await fake.close();
  }
});

test('a hello of another protocol version is VersionMismatch, and the connection is closed', async () => {
  const fake = await fakeAgent(async (peer) => {
    await peer.next();
    peer.send({ type: 'hello', version: 2, agent: 'tapsign 9.0.0' });
    await peer.next().catch(() => {});
  });
  const agent = new Agent({ path: fake.path });
  try {
    await assert.rejects(agent.status(), (e) => e instanceof tapsign.VersionMismatch && /version 2/.test(e.message));
    await assert.rejects(agent.sign('k', 'GET', '/x'), tapsign.VersionMismatch);
    assert.equal(fake.peers.length, 2, 'a new connection each time; nothing sent after hello');
    assert.ok(fake.peers[0].ended);
  } finally {
    agent.close();
    await fake.close();
  }
});

test('a signed answer that cannot be sent as it is is a ProtocolError', async () => {
  const good = { type: 'signed', method: 'GET', path: '/api/v3/order', query: 'a=1', body: '', headers: { 'X-Fake': 'k' } };
  const bad = [
    { path: '@evil.example/x' },
    { path: 'api/v3/order' },
    { path: '' },
    { query: null },
    { body: undefined },
    { method: 1 },
    { headers: { 'X-Fake': null } },
    { headers: { 'X-Fake': 5 } },
    { headers: ['X-Fake'] },
    { headers: null },
  ];
  for (const change of bad) {
    const fake = await fakeAgent(serve(() => ({ ...good, ...change })));
    const agent = new Agent({ path: fake.path });
    try {
      await assert.rejects(agent.sign('k', 'GET', '/api/v3/order', { query: 'a=1' }), tapsign.ProtocolError, JSON.stringify(change));
    } finally {
      agent.close();
      await fake.close();
    }
  }
  const fake = await fakeAgent(serve(() => good));
  const agent = new Agent({ path: fake.path });
  try {
    const s = await agent.sign('k', 'GET', '/api/v3/order', { query: 'a=1' });
    assert.deepEqual([s.method, s.path, s.query, s.body, s.headers], ['GET', '/api/v3/order', 'a=1', '', { 'X-Fake': 'k' }]);
  } finally {
    agent.close();
    await fake.close();
  }
});

test('a frame nobody asked for makes the next call reconnect instead of reading it as the answer', async () => {
  const signed = (msg, path) => ({ type: 'signed', method: msg.method, path, query: '', body: '', headers: {} });
  let answered = 0;
  const fake = await fakeAgent(serve((msg, peer) => {
    if (answered++ > 0) return signed(msg, msg.path);
    peer.send(signed(msg, msg.path));
    return signed(msg, '/extra'); // unasked, after the first answer
  }));
  const agent = new Agent({ path: fake.path });
  try {
    assert.equal((await agent.sign('k', 'GET', '/first')).path, '/first');
    await new Promise((r) => setTimeout(r, 200)); // the unasked frame has arrived
    assert.equal((await agent.sign('k', 'GET', '/second')).path, '/second');
    assert.equal(fake.peers.length, 2);
  } finally {
    agent.close();
    await fake.close();
  }
});

test('an answer to another request is a ProtocolError, and the next call goes on a new connection', async () => {
  // Another process's order, signed, as a connection shared with it would deliver.
  let first = true;
  const fake = await fakeAgent(serve((msg) => {
    const body = first ? msg.body.replace('BUY', 'SELL') : msg.body;
    first = false;
    return { type: 'signed', method: msg.method, path: msg.path, query: msg.query, body, headers: { 'X-Fake': 'k' } };
  }));
  const agent = new Agent({ path: fake.path });
  const order = 'symbol=BTCUSDT&side=BUY&quantity=1';
  try {
    await assert.rejects(
      agent.sign('k', 'POST', '/api/v3/order', { body: order }),
      (e) => e instanceof tapsign.ProtocolError && /side=SELL/.test(e.message) && /not the answer to this request/.test(e.message),
    );
    assert.equal((await agent.sign('k', 'POST', '/api/v3/order', { body: order })).body, order);
    assert.equal(fake.peers.length, 2, 'the connection out of step was closed');
  } finally {
    agent.close();
    await fake.close();
  }
});
