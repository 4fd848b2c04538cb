'use strict';
// KuCoin through ccxt and the agent, against ccxt with the real secret.
//
// Same scheme, same layout: with ccxt's clock at the agent's KC-API-TIMESTAMP, every field is
// equal byte for byte: KC-API-SIGN, the v2 KC-API-PASSPHRASE (an HMAC of the passphrase), and
// ccxt's broker attribution KC-API-PARTNER-SIGN, which the adapter recomputes from the
// agent's timestamp and API key with ccxt's public partner key. ccxt's first private call
// reads GET /api/ua/v1/account/mode to learn whether the account is unified.

const test = require('node:test');
const assert = require('node:assert/strict');

const { World } = require('../helpers/world');
const h = require('./harness');
const verify = require('./verify');

// KuCoin's documentation example key and secret; the passphrase is the docs' example too.
const credentials = {
  apiKey: '5c2db93503aa674c74a31734',
  secret: 'f03a5284-5c39-4aaa-9b20-dea10bdcf8e3',
  password: 'Ab12345678)(*&^%$#@',
};
const ORDER_ID = '5bd6e9286d99522a52e458de';
const ok = (data) => ({ code: '200000', data });

const kcOrder = {
  id: ORDER_ID,
  symbol: 'BTC-USDT',
  opType: 'DEAL',
  type: 'limit',
  side: 'buy',
  price: '50000',
  size: '0.01',
  funds: '0',
  dealFunds: '0',
  dealSize: '0',
  fee: '0',
  feeCurrency: 'USDT',
  timeInForce: 'GTC',
  isActive: true,
  cancelExist: false,
  createdAt: 1547026471000,
  tradeType: 'TRADE',
};

const spec = {
  id: 'kucoin',
  scheme: 'kucoin',
  key: 'kucoin-main',
  credentials,
  markets: (ex) => [h.spot(ex, { id: 'BTC-USDT', base: 'BTC', quote: 'USDT' })],
  respond(req) {
    const { path } = verify.parts(req.url);
    if (path === '/api/ua/v1/account/mode') return ok({ selfAccountMode: 'CLASSIC' });
    if (path === '/api/v1/orders' && req.method === 'POST') return ok({ orderId: ORDER_ID });
    if (path === `/api/v1/orders/${ORDER_ID}`) return ok({ cancelledOrderIds: [ORDER_ID] });
    if (path === '/api/v1/orders') return ok({ currentPage: 1, pageSize: 50, totalNum: 1, totalPage: 1, items: [kcOrder] });
    if (path === '/api/v1/accounts') {
      return ok([{ id: 'acc1', currency: 'USDT', type: 'trade', balance: '1000', available: '1000', holds: '0' }]);
    }
    if (path === '/api/v1/fills') {
      return ok({
        currentPage: 1,
        pageSize: 50,
        totalNum: 1,
        totalPage: 1,
        items: [
          {
            symbol: 'BTC-USDT',
            tradeId: '5c35c02709e4f67d5266954e',
            orderId: ORDER_ID,
            side: 'buy',
            liquidity: 'taker',
            price: '50000',
            size: '0.01',
            funds: '500',
            fee: '0.5',
            feeRate: '0.001',
            feeCurrency: 'USDT',
            type: 'limit',
            createdAt: 1547026472000,
          },
        ],
      });
    }
    if (/^\/api\/v[12]\/bullet-private$/.test(path)) {
      // KuCoin's stream token answer (docs-new, websocket introduction).
      return ok({
        token: 'a-stream-token',
        instanceServers: [{ endpoint: 'wss://ws-api-spot.kucoin.com/', encrypt: true, protocol: 'websocket', pingInterval: 18000, pingTimeout: 10000 }],
      });
    }
    throw new Error(`no canned answer for ${req.method} ${path}`);
  },
};

let world;
test.before(async () => {
  world = new World();
  world.addKey(spec.key, 'kucoin', [credentials.apiKey, credentials.secret, credentials.password]);
  await world.start();
  world.unlock();
});
test.after(() => world.close());

async function run(op, check) {
  const r = await h.differential(world, spec, op);
  r.agent.forEach((req, i) => {
    h.assertSame(req, r.ccxt[i], `request ${i}`);
    // ccxt's partner attribution, recomputed by the adapter: its public spot partner key.
    const ts = req.headers['KC-API-TIMESTAMP'];
    assert.equal(req.headers['KC-API-PARTNER'], 'ccxt');
    assert.equal(
      req.headers['KC-API-PARTNER-SIGN'],
      verify.hmac('sha256', '9e58cc35-5b5e-4133-92ec-166e3f077cb8', `${ts}ccxt${credentials.apiKey}`, 'base64'),
    );
  });
  if (check) check(r);
}

const last = (r) => r.agent.at(-1);

test('kucoin create_order (spot limit buy)', () =>
  run((ex) => ex.createOrder('BTC/USDT', 'limit', 'buy', 0.01, 50000), (r) => {
    assert.equal(r.agent[0].url, 'https://api.kucoin.com/api/ua/v1/account/mode');
    assert.equal(last(r).url, 'https://api.kucoin.com/api/v1/orders');
    assert.equal(
      last(r).body,
      '{"clientOid":"5f0e2c4a-1b3d-4c5e-8f60-718293a4b5c6","side":"buy","symbol":"BTC-USDT","type":"limit","size":"0.01","price":"50000"}',
    );
    assert.equal(r.result.id, ORDER_ID);
  }));

test('kucoin cancel_order', () =>
  run((ex) => ex.cancelOrder(ORDER_ID, 'BTC/USDT'), (r) => {
    assert.equal(last(r).url, `https://api.kucoin.com/api/v1/orders/${ORDER_ID}`);
    assert.equal(last(r).method, 'DELETE');
  }));

test('kucoin fetch_balance', () =>
  run((ex) => ex.fetchBalance(), (r) => {
    assert.equal(last(r).url, 'https://api.kucoin.com/api/v1/accounts?type=trade');
    assert.equal(r.result.USDT.free, 1000);
  }));

test('kucoin fetch_open_orders', () =>
  run((ex) => ex.fetchOpenOrders('BTC/USDT'), (r) => {
    assert.equal(last(r).url, 'https://api.kucoin.com/api/v1/orders?symbol=BTC-USDT&tradeType=TRADE&status=active');
    assert.equal(r.result.length, 1);
  }));

test('kucoin fetch_my_trades (fills)', () =>
  run((ex) => ex.fetchMyTrades('BTC/USDT'), (r) => {
    assert.match(last(r).url, /^https:\/\/api\.kucoin\.com\/api\/v1\/fills\?symbol=BTC-USDT/);
    assert.equal(r.result.length, 1);
  }));

// ccxt pro's stream tokens: a classic account's (negotiate), a unified account's
// (authenticateUta), whose `version` ccxt's sign() puts in the path (red-team round 23).
test('kucoin stream tokens (ccxt pro): /api/v1/bullet-private and a unified account’s /api/v2/bullet-private', async () => {
  await run((ex) => ex.privatePostBulletPrivate(), (r) => {
    assert.equal(last(r).url, 'https://api.kucoin.com/api/v1/bullet-private');
  });
  await run((ex) => ex.privatePostBulletPrivate({ version: 'v2' }), (r) => {
    assert.equal(last(r).url, 'https://api.kucoin.com/api/v2/bullet-private');
    assert.equal(last(r).method, 'POST');
  });
});
