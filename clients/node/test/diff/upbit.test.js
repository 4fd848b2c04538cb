'use strict';
// Upbit through ccxt and the agent, against ccxt with the real secret.
//
// Difference, by design: ccxt signs Upbit's JWT with HS256; the agent signs HS512, which
// Upbit's docs recommend ("HS512 is recommended"; both are accepted: docs/sources.md,
// mistake 5). So the JWT's header and signature differ. The test checks the claims segment byte for
// byte against ccxt's (same access_key, the agent's nonce, the same query_hash), ccxt's
// signature as HS256 over its own token, and the agent's token against the documented
// scheme (HS512, claims in the documented order). Everything else in the request is equal.

const test = require('node:test');
const assert = require('node:assert/strict');

const { World } = require('../helpers/world');
const h = require('./harness');
const verify = require('./verify');

const credentials = { apiKey: 'a7Xd92LmQW3vBtRzYpMj5CxNKeT1HuVs0fFgJcAw', secret: 'test-secret-not-real' };

const order = (extra) => ({
  uuid: 'cdd92199-2897-4e14-9448-f923320408ad',
  side: 'bid',
  ord_type: 'limit',
  price: '100000000',
  state: 'wait',
  market: 'KRW-BTC',
  created_at: '2023-01-01T00:00:00+09:00',
  volume: '0.01',
  remaining_volume: '0.01',
  reserved_fee: '500',
  remaining_fee: '500',
  paid_fee: '0',
  locked: '1000500',
  executed_volume: '0',
  trades_count: 0,
  ...extra,
});

const spec = {
  id: 'upbit',
  scheme: 'upbit',
  key: 'upbit-main',
  credentials,
  markets: (ex) => [h.spot(ex, { id: 'KRW-BTC', base: 'BTC', quote: 'KRW', amountTick: 1e-8, priceTick: 1000 })],
  respond(req) {
    const { path } = verify.parts(req.url);
    if (path === '/v1/orders' && req.method === 'POST') {
      const body = JSON.parse(req.body);
      return order(body.ord_type === 'price' ? { ord_type: 'price', price: body.price, volume: null } : {});
    }
    if (path === '/v1/order' && req.method === 'DELETE') return order({ state: 'cancel' });
    if (path === '/v1/orders/open') return [order({})];
    if (path === '/v1/accounts') {
      return [{ currency: 'KRW', balance: '1000000.0', locked: '0.0', avg_buy_price: '0', avg_buy_price_modified: false, unit_currency: 'KRW' }];
    }
    throw new Error(`no canned answer for ${req.method} ${path}`);
  },
};

const AUTH = 'Authorization';

function compare(agentReq, ccxtReq) {
  assert.equal(agentReq.url, ccxtReq.url);
  assert.equal(agentReq.body, ccxtReq.body);
  assert.deepEqual(h.headersWithout(agentReq.headers, [AUTH]), h.headersWithout(ccxtReq.headers, [AUTH]));
  const a = verify.jwtParts(verify.header(agentReq.headers, AUTH).replace(/^Bearer /, ''));
  const c = verify.jwtParts(verify.header(ccxtReq.headers, AUTH).replace(/^Bearer /, ''));
  assert.equal(a.payloadB64, c.payloadB64, 'the same claims, byte for byte');
  assert.equal(c.headerJson, '{"alg":"HS256","typ":"JWT"}', 'ccxt signs HS256');
  assert.equal(a.headerJson, '{"alg":"HS512","typ":"JWT"}', 'the agent signs HS512, as Upbit recommends');
  assert.deepEqual(c.signature, verify.hmac('sha256', credentials.secret, c.signingInput));
}

let world;
test.before(async () => {
  world = new World();
  world.addKey(spec.key, 'upbit', [credentials.apiKey, credentials.secret]);
  await world.start();
  world.unlock();
});
test.after(() => world.close());

async function run(op, check) {
  const r = await h.differential(world, spec, op);
  r.agent.forEach((req, i) => compare(req, r.ccxt[i]));
  if (check) check(r);
}

test('upbit create_order (limit bid)', () =>
  run((ex) => ex.createOrder('BTC/KRW', 'limit', 'buy', 0.01, 100000000), (r) => {
    assert.equal(r.agent[0].url, 'https://api.upbit.com/v1/orders');
    assert.equal(r.agent[0].body, '{"market":"KRW-BTC","side":"bid","ord_type":"limit","price":"100000000","volume":"0.01"}');
    assert.equal(r.result.id, 'cdd92199-2897-4e14-9448-f923320408ad');
  }));

test('upbit cancel_order', () =>
  run((ex) => ex.cancelOrder('cdd92199-2897-4e14-9448-f923320408ad', 'BTC/KRW'), (r) => {
    assert.equal(r.agent[0].url, 'https://api.upbit.com/v1/order?uuid=cdd92199-2897-4e14-9448-f923320408ad');
    assert.equal(r.agent[0].method, 'DELETE');
  }));

test('upbit fetch_balance', () =>
  run((ex) => ex.fetchBalance(), (r) => {
    assert.equal(r.agent[0].url, 'https://api.upbit.com/v1/accounts');
    assert.equal(r.result.KRW.total, 1000000);
  }));

test('upbit fetch_open_orders', () =>
  run((ex) => ex.fetchOpenOrders('BTC/KRW'), (r) => {
    assert.match(r.agent[0].url, /^https:\/\/api\.upbit\.com\/v1\/orders\/open\?market=KRW-BTC/);
    assert.equal(r.result.length, 1);
  }));

test('upbit market buy for a KRW amount (ord_type "price")', () =>
  run((ex) => ex.createMarketBuyOrderWithCost('BTC/KRW', 5000), (r) => {
    assert.equal(r.agent[0].body, '{"market":"KRW-BTC","side":"bid","ord_type":"price","price":"5000"}');
  }));
