'use strict';
// Bithumb through ccxt and the agent, against ccxt with the real secret.
//
// ccxt 4.5.84 calls Bithumb's API 2.0 (`/v1`, `/v2`) by default, the API the agent signs:
// a JWT HS256 over {access_key, nonce, timestamp, query_hash, query_hash_alg}. With ccxt's
// uuid and clock patched to the agent's nonce and timestamp, every field is equal byte for
// byte, the token included. (ccxt's `generation: 1` option, the legacy `/info` `/trade`
// API, is not signed by the agent; adapter.test.js checks that refusal.)

const test = require('node:test');
const assert = require('node:assert/strict');

const { World } = require('../helpers/world');
const h = require('./harness');
const verify = require('./verify');

const credentials = { apiKey: 'L7rVaYfBIc2BDsnlQGfkR93d6DoOAJCw7mJr5Eso', secret: 'test-secret-not-real' };

const ORDER_ID = 'C0101000003152350309';
const order = (extra) => ({
  uuid: ORDER_ID,
  side: 'bid',
  ord_type: 'limit',
  price: '84000000',
  state: 'wait',
  market: 'KRW-BTC',
  created_at: '2024-04-04T20:31:50+09:00',
  volume: '0.001',
  remaining_volume: '0.001',
  executed_volume: '0',
  trades_count: 0,
  ...extra,
});

const spec = {
  id: 'bithumb',
  scheme: 'bithumb',
  key: 'bithumb-main',
  credentials,
  markets: (ex) => [h.spot(ex, { id: 'KRW-BTC', base: 'BTC', quote: 'KRW', amountTick: 1e-8, priceTick: 1 })],
  respond(req) {
    const { path } = verify.parts(req.url);
    if (path === '/v2/orders' && req.method === 'POST') {
      return { order_id: ORDER_ID, market: 'KRW-BTC', side: 'bid', order_type: 'limit', created_at: '2024-04-04T20:31:50+09:00' };
    }
    if (path === '/v2/order' && req.method === 'DELETE') return { order_id: ORDER_ID, created_at: '2024-04-04T20:32:00+09:00' };
    if (path === '/v1/orders') return [order({})];
    if (path === '/v1/order') return order({});
    if (path === '/v1/accounts') {
      return [{ currency: 'KRW', balance: '51026', locked: '0', avg_buy_price: '0', avg_buy_price_modified: false, unit_currency: 'KRW' }];
    }
    throw new Error(`no canned answer for ${req.method} ${path}`);
  },
};

let world;
test.before(async () => {
  world = new World();
  world.addKey(spec.key, 'bithumb', [credentials.apiKey, credentials.secret]);
  await world.start();
  world.unlock();
});
test.after(() => world.close());

async function run(op, check) {
  const r = await h.differential(world, spec, op);
  r.agent.forEach((req, i) => h.assertSame(req, r.ccxt[i], `request ${i}`));
  if (check) check(r);
}

test('bithumb create_order (API 2.0 limit bid)', () =>
  run((ex) => ex.createOrder('BTC/KRW', 'limit', 'buy', 0.001, 84000000), (r) => {
    assert.equal(r.agent[0].url, 'https://api.bithumb.com/v2/orders');
    assert.equal(r.agent[0].body, '{"market":"KRW-BTC","side":"bid","price":"84000000","volume":"0.001","order_type":"limit"}');
    assert.equal(r.result.id, ORDER_ID);
  }));

test('bithumb cancel_order', () =>
  run((ex) => ex.cancelOrder(ORDER_ID, 'BTC/KRW'), (r) => {
    assert.equal(r.agent[0].url, `https://api.bithumb.com/v2/order?order_id=${ORDER_ID}`);
    assert.equal(r.agent[0].method, 'DELETE');
  }));

test('bithumb fetch_balance', () =>
  run((ex) => ex.fetchBalance(), (r) => {
    assert.equal(r.agent[0].url, 'https://api.bithumb.com/v1/accounts');
    assert.equal(r.result.KRW.total, 51026);
  }));

test('bithumb fetch_open_orders', () =>
  run((ex) => ex.fetchOpenOrders('BTC/KRW'), (r) => {
    assert.match(r.agent[0].url, /^https:\/\/api\.bithumb\.com\/v1\/orders\?market=KRW-BTC&state=wait/);
    assert.equal(r.result.length, 1);
  }));

test('bithumb fetch_order', () =>
  run((ex) => ex.fetchOrder(ORDER_ID, 'BTC/KRW'), (r) => {
    assert.equal(r.agent[0].url, `https://api.bithumb.com/v1/order?uuid=${ORDER_ID}`);
    assert.equal(r.result.id, ORDER_ID);
  }));
