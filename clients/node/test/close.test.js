'use strict';
// ccxt's `close()` on an attached instance closes the agent connection of an Agent `attach`
// made for it, and never one the caller passed in (red-team round 23, F3: 63 instances
// attached and closed one after another held every connection the agent serves, and every
// bot on the agent was answered `busy` for up to 10 minutes).

const test = require('node:test');
const assert = require('node:assert/strict');

const tapsign = require('..');
const { attach } = require('../lib/ccxt');
const { World } = require('./helpers/world');
const { fakeAgent, serve, golden } = require('./helpers/fake-agent');
const h = require('./diff/harness');

const ccxt = h.loadCcxt();

// More instances than the agent serves connections (64, one kept back for status and lock:
// docs/protocol.md, "Limits").
const INSTANCES = 70;
const AGENT_CONNECTIONS = 63;

/** A ccxt bybit instance whose requests are answered here; nothing leaves the machine. */
function bybit() {
  const ex = new ccxt.bybit({ enableRateLimit: false, options: { enableUnifiedAccount: true } });
  h.record(ex, () => ({ retCode: 0, retMsg: 'OK', result: { list: [] }, time: 1 }));
  return ex;
}

/** One signed call (Bybit's wallet balance). */
const signedCall = (ex) => ex.privateGetV5AccountWalletBalance({ accountType: 'UNIFIED' });

test('70 instances attached, used and closed one after another: every call is signed by the real agent', async () => {
  const world = new World();
  try {
    world.addKey('bybit-main', 'bybit', ['XXXXXXXXXX', 'test-secret']);
    await world.start();
    world.unlock();
    const failures = [];
    for (let i = 0; i < INSTANCES; i++) {
      const ex = attach(bybit(), { key: 'bybit-main', path: world.sock });
      try {
        await signedCall(ex);
      } catch (e) {
        failures.push(`instance ${i}: ${e.constructor.name}: ${e.message}`);
      }
      await ex.close();
    }
    assert.deepEqual(failures, []);
  } finally {
    await world.close();
  }
});

/**
 * A stand-in agent that signs whatever it is asked and holds to the real agent's connection
 * limit for signing: past `AGENT_CONNECTIONS` open at once, a connection is answered `busy`
 * and closed.
 * `open()` is how many are open now, `most` the most seen at once.
 */
async function countingAgent() {
  let open = 0;
  const counts = { most: 0 };
  const fake = await fakeAgent(async (peer) => {
    if (open >= AGENT_CONNECTIONS) {
      peer.send(golden('response_error_busy'));
      peer.close();
      return;
    }
    open += 1;
    counts.most = Math.max(counts.most, open);
    peer.sock.once('close', () => {
      open -= 1;
    });
    await serve((msg) => {
      const { type, key, kind, ...request } = msg;
      void type;
      void key;
      void kind;
      return { type: 'signed', ...request, headers: { 'X-BAPI-API-KEY': 'k', 'X-BAPI-SIGN': 's' } };
    })(peer);
  });
  return { fake, counts, open: () => open };
}

/** Until `cond()` holds (the fake agent sees a close a moment after the client closes). */
async function until(cond) {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
}

test("close() closes the connection of the Agent attach made: at most one is open at a time", async () => {
  const { fake, counts, open } = await countingAgent();
  try {
    for (let i = 0; i < INSTANCES; i++) {
      const ex = attach(bybit(), { key: 'bybit-main', path: fake.path });
      await signedCall(ex);
      await ex.close();
      await until(() => open() === 0);
      assert.equal(open(), 0, `instance ${i}: its connection is still open after close()`);
    }
    assert.equal(counts.most, 1);
    assert.equal(fake.peers.length, INSTANCES);
  } finally {
    await fake.close();
  }
});

test('close() leaves an Agent passed in open: instances sharing it use one connection', async () => {
  const { fake, counts, open } = await countingAgent();
  const agent = new tapsign.Agent({ path: fake.path });
  try {
    for (let i = 0; i < INSTANCES; i++) {
      const ex = attach(bybit(), { key: 'bybit-main', agent });
      await signedCall(ex);
      await ex.close();
    }
    assert.equal(fake.peers.length, 1, 'one connection for every instance');
    assert.equal(open(), 1, "the caller's Agent is still connected");
    assert.equal(counts.most, 1);
    // And it still signs, on the same connection.
    await agent.sign('bybit-main', 'GET', '/v5/account/wallet-balance', { query: 'accountType=UNIFIED' });
    assert.equal(fake.peers.length, 1);
  } finally {
    agent.close();
    await fake.close();
  }
});

test('attaching again to another agent closes the connection of the Agent attach made before', async () => {
  const { fake, open } = await countingAgent();
  const agent = new tapsign.Agent({ path: fake.path });
  try {
    const ex = attach(bybit(), { key: 'bybit-main', path: fake.path });
    await signedCall(ex);
    assert.equal(open(), 1);
    attach(ex, { key: 'bybit-main', agent });
    await until(() => open() === 0);
    assert.equal(open(), 0, 'the first Agent is closed');
    await signedCall(ex);
    assert.equal(open(), 1);
    await ex.close();
    assert.equal(open(), 1, "the caller's Agent stays open");
  } finally {
    agent.close();
    await fake.close();
  }
});

test('a call after close() connects again, as ccxt reopens its own', async () => {
  const { fake, open } = await countingAgent();
  try {
    const ex = attach(bybit(), { key: 'bybit-main', path: fake.path });
    await signedCall(ex);
    await ex.close();
    await until(() => open() === 0);
    await signedCall(ex);
    assert.equal(open(), 1);
    await ex.close();
    await until(() => open() === 0);
    assert.equal(open(), 0);
  } finally {
    await fake.close();
  }
});
