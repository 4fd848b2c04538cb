// The package from ESM: `import` of both entry points (by the package's own name), the same
// classes as `require` gives, and the adapter on ccxt's ESM build, whose error classes are
// other objects than its CommonJS build's.

import test from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';

import ccxt from 'ccxt';
import tapsignDefault, { Agent, Locked, TapsignError, SignedRequest } from 'tapsign';
import { attach } from 'tapsign/ccxt';

const require = createRequire(import.meta.url);
const { World } = require('./helpers/world.js');
const verify = require('./diff/verify.js');
const h = require('./diff/harness.js');

const KEY = {
  apiKey: 'vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A',
  secret: 'NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j',
};

let world;
test.before(async () => {
  world = new World();
  world.addKey('binance-main', 'binance', [KEY.apiKey, KEY.secret]);
  await world.start();
  world.unlock();
});
test.after(() => world.close());

test('import and require give the same classes', () => {
  const cjs = require('tapsign');
  assert.equal(Agent, cjs.Agent);
  assert.equal(Locked, cjs.Locked);
  assert.equal(tapsignDefault.SignedRequest, SignedRequest);
  assert.ok(new Locked('m') instanceof TapsignError);
  assert.equal(require('tapsign/ccxt').attach, attach);
});

test('the Agent works from ESM', async () => {
  const agent = new Agent({ path: world.sock });
  try {
    const s = await agent.sign('binance-main', 'GET', '/api/v3/account');
    assert.ok(s instanceof SignedRequest);
    verify.binance({ url: s.url('https://api.binance.com'), method: s.method, headers: s.headers, body: s.body }, KEY);
  } finally {
    agent.close();
  }
});

test("the adapter on ccxt's ESM build signs, and raises that build's error classes", async () => {
  const ex = new ccxt.binance({ enableRateLimit: false });
  ex.setMarkets([h.spot(ex, { id: 'BTCUSDT', base: 'BTC', quote: 'USDT', info: { orderTypes: ['LIMIT'] } })]);
  const sent = h.record(ex, () => ({ balances: [{ asset: 'BTC', free: '1', locked: '0' }] }));
  attach(ex, { key: 'binance-main', path: world.sock });
  const balance = await ex.fetchBalance();
  assert.equal(balance.BTC.free, 1);
  verify.binance(sent[0], KEY);
  world.run(['lock']);
  try {
    await assert.rejects(ex.fetchBalance(), (e) => e instanceof ccxt.AuthenticationError && /^binance tapsign: /.test(e.message) && e.code === 'locked');
  } finally {
    world.unlock();
  }
});
