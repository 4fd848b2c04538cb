'use strict';
// The Agent against a real agent (the `tapsign` binary, soft token, private home): the
// session's life, the refusals a bot meets, events, and reconnecting after the agent drops
// the connection or restarts.

const test = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const path = require('node:path');

const tapsign = require('..');
const { World, sleep } = require('./helpers/world');

const { Agent } = tapsign;

const BINANCE = ['vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A', 'NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j'];

let world;
test.before(async () => {
  world = new World();
  world.addKey('binance-main', 'binance', BINANCE);
  world.addKey('bybit-ws', 'bybit', ['XXXXXXXXXX', 'test-secret']);
  world.addKey('bybit-rest', 'bybit', ['YYYYYYYYYY', 'test-secret']);
  // A short idle-connection timeout to see the reconnect; Bybit websocket logins allowed for
  // one key; room for a few connections.
  world.config('[server]\nidle_connection_timeout = "1s"\n\n[keys.bybit-ws]\nws_login = true\n');
  await world.start();
});
test.after(() => world.close());

test('hello names the agent; status is served while locked', async () => {
  const agent = new Agent({ path: world.sock, client: 'node-test/1' });
  try {
    assert.match(await agent.hello(), /^tapsign \d/);
    const status = await agent.status();
    assert.equal(status.state, 'locked');
    assert.ok(status.warnings.some((w) => /soft token/.test(w)), 'the soft token warning is shown');
  } finally {
    agent.close();
  }
});

test('locked, sign is refused with Locked and the agent message; unlock opens, lock ends', async () => {
  const agent = new Agent({ path: world.sock });
  try {
    await agent.lock();
    await assert.rejects(agent.sign('binance-main', 'GET', '/api/v3/account'), (e) => {
      assert.ok(e instanceof tapsign.Locked, e.name);
      assert.equal(e.code, 'locked');
      assert.match(e.message, /tapsign unlock/);
      return true;
    });
    const opened = await agent.unlock({ keys: ['binance-main'], ttl_secs: 600 });
    assert.equal(opened.state, 'unlocked');
    assert.deepEqual(opened.session.keys.map((k) => k.name), ['binance-main']);
    const s = await agent.sign('binance-main', 'GET', '/api/v3/openOrders', { query: 'symbol=BTCUSDT' });
    assert.match(s.query, /^symbol=BTCUSDT&timestamp=\d+&signature=[0-9a-f]{64}$/);
    assert.equal(s.headers['X-MBX-APIKEY'], BINANCE[0]);
    await agent.lock();
    await assert.rejects(agent.sign('binance-main', 'GET', '/api/v3/account'), tapsign.Locked);
  } finally {
    agent.close();
  }
});

// Red-team round 20: `keys: []` reached the agent, which read it as every key: a bot whose
// computed list came up empty got the widest session. The agent refuses it now.
test('unlock({ keys: [] }) is refused with BadRequest and opens nothing', async () => {
  const agent = new Agent({ path: world.sock });
  try {
    await agent.lock();
    await assert.rejects(agent.unlock({ keys: [], ttl_secs: 600 }), (e) => {
      assert.ok(e instanceof tapsign.BadRequest, e.name);
      assert.match(e.message, /name at least one key/);
      return true;
    });
    assert.equal((await agent.status()).state, 'locked');
  } finally {
    agent.close();
  }
});

test('the refusals a bot meets arrive as their classes', async () => {
  const agent = new Agent({ path: world.sock });
  try {
    await agent.unlock();
    await assert.rejects(
      agent.sign('binance-main', 'POST', '/sapi/v1/capital/withdraw/apply', { body: 'coin=BTC&network=BTC&amount=1' }),
      (e) => e instanceof tapsign.PolicyDenied && /withdraw/.test(e.message),
    );
    await assert.rejects(agent.sign('no-such-key', 'GET', '/api/v3/account'), tapsign.UnknownKey);
    await assert.rejects(agent.sign('binance-main', 'get', '/api/v3/account'), tapsign.BadRequest);
    await assert.rejects(
      agent.sign('binance-main', 'GET', '/api/v3/account', { query: 'recvWindow=60000' }),
      (e) => e instanceof tapsign.BadRequest && /recvWindow=60000 is above the agent's cap/.test(e.message),
    );
    // The connection survives refusals.
    assert.equal((await agent.status()).state, 'unlocked');
  } finally {
    await agent.lock();
    agent.close();
  }
});

test('a websocket login comes back as the body to send', async () => {
  const agent = new Agent({ path: world.sock });
  try {
    await agent.unlock();
    const s = await agent.sign('bybit-ws', 'GET', '/v5/private', { kind: 'ws_login' });
    const msg = JSON.parse(s.body);
    assert.equal(msg.op, 'auth');
    assert.equal(msg.args[0], 'XXXXXXXXXX');
    assert.deepEqual(s.headers, {});
    // Not allowed for a key without ws_login = true.
    await assert.rejects(agent.sign('bybit-rest', 'GET', '/v5/private', { kind: 'ws_login' }), tapsign.PolicyDenied);
    // A Binance HMAC key cannot log in at all: said as such, whatever its config.
    await assert.rejects(agent.sign('binance-main', 'GET', '/ws-api/v3', { kind: 'ws_login' }), tapsign.BadRequest);
  } finally {
    await agent.lock();
    agent.close();
  }
});

test('many concurrent signs on one Agent each get their own signature', async () => {
  const agent = new Agent({ path: world.sock });
  try {
    await agent.unlock();
    const signed = await Promise.all(
      Array.from({ length: 50 }, (_, i) => agent.sign('binance-main', 'GET', '/api/v3/allOrders', { query: `symbol=BTCUSDT&limit=${i + 1}` })),
    );
    signed.forEach((s, i) => assert.ok(s.query.startsWith(`symbol=BTCUSDT&limit=${i + 1}&timestamp=`), s.query));
    assert.equal(new Set(signed.map((s) => s.query)).size, 50);
  } finally {
    await agent.lock();
    agent.close();
  }
});

test('after the agent closes an idle connection, the next call reconnects', async () => {
  const agent = new Agent({ path: world.sock });
  try {
    await agent.status();
    const first = agent._conn;
    await sleep(1600); // over the 1 s idle_connection_timeout
    assert.equal((await agent.status()).state, 'locked');
    assert.notEqual(agent._conn, first, 'a new connection');
  } finally {
    agent.close();
  }
});

test('after the agent restarts, the same Agent talks to the new one', async () => {
  const agent = new Agent({ path: world.sock });
  try {
    await agent.unlock();
    await agent.sign('binance-main', 'GET', '/api/v3/account');
    await world.stop();
    await assert.rejects(agent.status(), tapsign.AgentNotRunning);
    await world.start();
    // A restarted agent has no session: the bot hears Locked, not a broken connection.
    await assert.rejects(agent.sign('binance-main', 'GET', '/api/v3/account'), tapsign.Locked);
    assert.equal((await agent.status()).state, 'locked');
  } finally {
    agent.close();
  }
});

test('events() reports unlock and lock as they happen', async () => {
  const agent = new Agent({ path: world.sock });
  const events = agent.events();
  try {
    const first = events.next();
    await sleep(200); // the subscription is in place
    world.unlock();
    const unlocked = (await first).value;
    assert.equal(unlocked.event, 'unlocked');
    assert.ok(unlocked.expires_in_secs > 0);
    world.run(['lock']);
    const locked = (await events.next()).value;
    assert.equal(locked.event, 'locked');
    assert.equal(locked.code, 'locked');
  } finally {
    await events.return();
    agent.close();
  }
});

test('an idle Agent does not keep a bot process alive', async () => {
  // A script that makes a call and never closes its Agent must still exit.
  const script = `
    const { Agent } = require(${JSON.stringify(path.resolve(__dirname, '..'))});
    new Agent({ path: ${JSON.stringify(world.sock)} }).status().then((s) => console.log(s.state));
  `;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => {
    out += d;
  });
  const code = await Promise.race([
    new Promise((r) => child.once('exit', r)),
    sleep(10_000).then(() => 'still running'),
  ]);
  if (code === 'still running') child.kill();
  assert.equal(code, 0);
  assert.equal(out.trim(), 'locked');
});
