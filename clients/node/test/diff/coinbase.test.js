'use strict';
// Coinbase (Advanced Trade / CDP keys) through ccxt and the agent, against ccxt with the
// real key.
//
// Difference, by design: the JWT's layout. ES256 signatures are randomized, so no two tokens
// are equal anyway; the claims differ too:
//   ccxt:  header {alg,typ,kid,nonce: 32 hex}, claims {aud:["retail_rest_api_proxy"],
//          iss:"coinbase-cloud", nbf, exp, sub, iat, uri}
//   agent: header {alg,kid,nonce: 64 hex,typ}, claims {sub, iss:"cdp", nbf, exp, uri}
// The agent follows Coinbase's CDP documentation and SDK (docs/sources.md, "Coinbase"): the
// test checks its token against that layout and its ES256 signature with the key's public
// half, and the claims that carry meaning — sub, uri, nbf, exp — equal ccxt's at the same
// time. ccxt's token is checked to verify under the same key. Everything outside the
// Authorization header is equal byte for byte.

const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');

const { World } = require('../helpers/world');
const h = require('./harness');
const verify = require('./verify');

// The public test key of Coinbase's Advanced Trade SDK.
const credentials = {
  apiKey: 'organizations/test-organization/apiKeys/test-api-key',
  secret:
    '-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIKwf3Uox30cRWzRBOPoPOH5p0Gpb0Dt8zUKXUEM5fMkGoAoGCCqGSM49\nAwEHoUQDQgAEbAtpLlSZYVOwYICz+uEyxcS29vRIujiES/gQ1DC7FV4zK4JuYE9v\nqDyGZQYjdXHLM7I6f/QnnOITL+dXYWBHRA==\n-----END EC PRIVATE KEY-----\n',
};
const ORDER_ID = '11111-00000-000000';

const openOrder = {
  order_id: ORDER_ID,
  product_id: 'BTC-USD',
  side: 'BUY',
  client_order_id: 'ccxt-5f0e2c4a-1b3d-4c5e-8f60-718293a4b5c6',
  status: 'OPEN',
  created_time: '2024-01-01T00:00:00Z',
  order_configuration: { limit_limit_gtc: { base_size: '0.01', limit_price: '50000', post_only: false } },
  filled_size: '0',
  average_filled_price: '0',
};

const spec = {
  id: 'coinbase',
  scheme: 'coinbase',
  key: 'coinbase-main',
  credentials,
  markets: (ex) => [h.spot(ex, { id: 'BTC-USD', base: 'BTC', quote: 'USD', amountTick: 1e-8 })],
  respond(req) {
    const { path } = verify.parts(req.url);
    if (path === '/api/v3/brokerage/orders') {
      return {
        success: true,
        success_response: { order_id: ORDER_ID, product_id: 'BTC-USD', side: 'BUY', client_order_id: openOrder.client_order_id },
      };
    }
    if (path === '/api/v3/brokerage/orders/batch_cancel') {
      return { results: [{ success: true, failure_reason: 'UNKNOWN_CANCEL_FAILURE_REASON', order_id: ORDER_ID }] };
    }
    if (path === '/api/v3/brokerage/orders/historical/batch') return { orders: [openOrder], has_next: false, cursor: '' };
    if (path === '/api/v3/brokerage/orders/historical/fills') {
      return {
        fills: [
          {
            entry_id: 'e1',
            trade_id: 't1',
            order_id: ORDER_ID,
            trade_time: '2024-01-01T00:00:01Z',
            trade_type: 'FILL',
            price: '50000',
            size: '0.01',
            commission: '0.5',
            product_id: 'BTC-USD',
            side: 'BUY',
            liquidity_indicator: 'MAKER',
          },
        ],
        cursor: '',
      };
    }
    if (path === '/v2/accounts') {
      return {
        pagination: { next_uri: null },
        data: [{ id: 'acc-usd', name: 'USD Wallet', type: 'fiat', currency: { code: 'USD' }, balance: { amount: '1000.00', currency: 'USD' } }],
      };
    }
    throw new Error(`no canned answer for ${req.method} ${path}`);
  },
};

const AUTH = 'Authorization';

function compare(agentReq, ccxtReq) {
  assert.equal(agentReq.url, ccxtReq.url);
  assert.equal(agentReq.method, ccxtReq.method);
  assert.equal(agentReq.body, ccxtReq.body);
  assert.deepEqual(h.headersWithout(agentReq.headers, [AUTH]), h.headersWithout(ccxtReq.headers, [AUTH]));
  const agent = verify.coinbase(agentReq, credentials); // the documented layout, ES256 verified
  const c = verify.jwtParts(verify.header(ccxtReq.headers, AUTH).replace(/^Bearer /, ''));
  const ch = JSON.parse(c.headerJson);
  const cc = JSON.parse(c.payloadJson);
  assert.deepEqual(Object.keys(ch), ['alg', 'typ', 'kid', 'nonce'], "ccxt's header layout");
  assert.match(ch.nonce, /^[0-9a-f]{32}$/, "ccxt's nonce is 16 random bytes");
  assert.deepEqual(Object.keys(cc), ['aud', 'iss', 'nbf', 'exp', 'sub', 'iat', 'uri'], "ccxt's claims layout");
  assert.equal(cc.iss, 'coinbase-cloud');
  assert.deepEqual(cc.aud, ['retail_rest_api_proxy']);
  for (const claim of ['sub', 'uri', 'nbf', 'exp']) {
    assert.equal(agent.claims[claim], cc[claim], `claim ${claim} equals ccxt's`);
  }
  assert.equal(ch.kid, agent.header.kid);
  const pub = crypto.createPublicKey(crypto.createPrivateKey(credentials.secret));
  assert.ok(
    crypto.verify('sha256', Buffer.from(c.signingInput), { key: pub, dsaEncoding: 'ieee-p1363' }, c.signature),
    "ccxt's token verifies under the same key",
  );
}

let world;
test.before(async () => {
  world = new World();
  world.addKey(spec.key, 'coinbase', [credentials.apiKey, ...credentials.secret.trimEnd().split('\n')]);
  await world.start();
  world.unlock();
});
test.after(() => world.close());

async function run(op, check) {
  const r = await h.differential(world, spec, op);
  r.agent.forEach((req, i) => compare(req, r.ccxt[i]));
  if (check) check(r);
}

test('coinbase create_order (limit GTC buy)', () =>
  run((ex) => ex.createOrder('BTC/USD', 'limit', 'buy', 0.01, 50000), (r) => {
    assert.equal(r.agent[0].url, 'https://api.coinbase.com/api/v3/brokerage/orders');
    assert.match(r.agent[0].body, /^\{"client_order_id":"ccxt-5f0e2c4a-1b3d-4c5e-8f60-718293a4b5c6","product_id":"BTC-USD","side":"BUY"/);
    assert.equal(r.result.id, ORDER_ID);
  }));

test('coinbase cancel_order (batch_cancel)', () =>
  run((ex) => ex.cancelOrder(ORDER_ID, 'BTC/USD'), (r) => {
    assert.equal(r.agent[0].body, `{"order_ids":["${ORDER_ID}"]}`);
  }));

test('coinbase fetch_balance (ccxt default: the v2 accounts endpoint)', () =>
  run((ex) => ex.fetchBalance(), (r) => {
    assert.equal(r.agent[0].url, 'https://api.coinbase.com/v2/accounts?limit=250');
    assert.equal(r.result.USD.total, 1000);
  }));

test('coinbase fetch_open_orders', () =>
  run((ex) => ex.fetchOpenOrders('BTC/USD'), (r) => {
    assert.equal(
      r.agent[0].url,
      'https://api.coinbase.com/api/v3/brokerage/orders/historical/batch?order_status=OPEN&product_id=BTC-USD&limit=100',
    );
    assert.equal(r.result.length, 1);
  }));

test('coinbase fetch_my_trades (fills)', () =>
  run((ex) => ex.fetchMyTrades('BTC/USD'), (r) => {
    assert.match(r.agent[0].url, /^https:\/\/api\.coinbase\.com\/api\/v3\/brokerage\/orders\/historical\/fills\?product_id=BTC-USD/);
    assert.equal(r.result.length, 1);
  }));
