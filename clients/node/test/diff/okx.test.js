'use strict';
// OKX (v5) through ccxt and the agent, against ccxt with the real secret.
//
// Same scheme, same layout: with ccxt's clock at the agent's OK-ACCESS-TIMESTAMP, every
// field is equal byte for byte, OK-ACCESS-SIGN included. ccxt's broker tag and clOrdId
// (a uuid16, fixed in both runs) stay in the body the agent signs.

const test = require('node:test');
const assert = require('node:assert/strict');

const { World } = require('../helpers/world');
const h = require('./harness');
const verify = require('./verify');

// The docs' sample secret (docs/sources.md, "OKX"); key and passphrase are made up.
const credentials = { apiKey: 'okx-api-key-for-tests', secret: '22582BD0CFF14C41EDBF1AB98506286D', password: 'okx-test-passphrase' };
const ok = (data) => ({ code: '0', msg: '', data });
const ORDER_ID = '590908157585625111';

const spec = {
  id: 'okx',
  scheme: 'okx',
  key: 'okx-main',
  credentials,
  markets: (ex) => [
    h.spot(ex, { id: 'BTC-USDT', base: 'BTC', quote: 'USDT', info: { instType: 'SPOT' } }),
    { ...h.linearSwap(ex, { id: 'BTC-USDT-SWAP', base: 'BTC', quote: 'USDT', amountTick: 1, info: { instType: 'SWAP' } }), contractSize: 0.01 },
  ],
  respond(req) {
    const { path } = verify.parts(req.url);
    if (path === '/api/v5/trade/batch-orders' || path === '/api/v5/trade/order') {
      return ok([{ ordId: ORDER_ID, clOrdId: '6b9ad766b55dBCDE0123456789abcdef', tag: '6b9ad766b55dBCDE', sCode: '0', sMsg: '' }]);
    }
    if (path === '/api/v5/trade/cancel-order') return ok([{ ordId: ORDER_ID, clOrdId: '', sCode: '0', sMsg: '' }]);
    if (path === '/api/v5/trade/orders-pending') {
      return ok([
        {
          instType: 'SPOT',
          instId: 'BTC-USDT',
          ordId: ORDER_ID,
          px: '50000',
          sz: '0.01',
          side: 'buy',
          ordType: 'limit',
          state: 'live',
          accFillSz: '0',
          cTime: '1672211918471',
          uTime: '1672211918471',
        },
      ]);
    }
    if (path === '/api/v5/account/balance') {
      return ok([
        { totalEq: '1000', uTime: '1672211918471', details: [{ ccy: 'USDT', availBal: '1000', eq: '1000', cashBal: '1000', frozenBal: '0' }] },
      ]);
    }
    if (path === '/api/v5/account/set-leverage') return ok([{ instId: 'BTC-USDT-SWAP', lever: '5', mgnMode: 'isolated', posSide: '' }]);
    throw new Error(`no canned answer for ${req.method} ${path}`);
  },
};

let world;
test.before(async () => {
  world = new World();
  world.addKey(spec.key, 'okx', [credentials.apiKey, credentials.secret, credentials.password]);
  await world.start();
  world.unlock();
});
test.after(() => world.close());

async function run(op, check) {
  const r = await h.differential(world, spec, op);
  r.agent.forEach((req, i) => h.assertSame(req, r.ccxt[i], `request ${i}`));
  if (check) check(r);
}

test('okx create_order (spot limit buy, sent as batch-orders)', () =>
  run((ex) => ex.createOrder('BTC/USDT', 'limit', 'buy', 0.01, 50000), (r) => {
    assert.equal(r.agent[0].url, 'https://www.okx.com/api/v5/trade/batch-orders');
    assert.match(r.agent[0].body, /^\[\{"instId":"BTC-USDT","side":"buy","ordType":"limit","sz":"0.01",/);
    assert.equal(r.result.id, ORDER_ID);
  }));

test('okx cancel_order', () =>
  run((ex) => ex.cancelOrder(ORDER_ID, 'BTC/USDT'), (r) => {
    assert.equal(r.agent[0].body, `{"instId":"BTC-USDT","ordId":"${ORDER_ID}"}`);
  }));

test('okx fetch_balance', () =>
  run((ex) => ex.fetchBalance(), (r) => {
    assert.equal(r.agent[0].url, 'https://www.okx.com/api/v5/account/balance');
    assert.equal(r.result.USDT.free, 1000);
  }));

test('okx fetch_open_orders', () =>
  run((ex) => ex.fetchOpenOrders('BTC/USDT'), (r) => {
    assert.equal(r.agent[0].url, 'https://www.okx.com/api/v5/trade/orders-pending?instId=BTC-USDT');
    assert.equal(r.result.length, 1);
  }));

test('okx set_leverage (isolated, perpetual swap)', () =>
  run((ex) => ex.setLeverage(5, 'BTC/USDT:USDT', { marginMode: 'isolated', posSide: 'long' }), (r) => {
    assert.equal(r.agent[0].url, 'https://www.okx.com/api/v5/account/set-leverage');
    assert.equal(r.agent[0].body, '{"lever":5,"mgnMode":"isolated","instId":"BTC-USDT-SWAP","posSide":"long"}');
  }));
