'use strict';
// Bybit (v5) through ccxt and the agent, against ccxt with the real secret.
//
// Same scheme, same layout: with ccxt's clock at the agent's X-BAPI-TIMESTAMP, every field is
// equal byte for byte, X-BAPI-SIGN included (ccxt's recvWindow, 5000 ms, is the agent's
// default cap).
//
// Configuration, not a difference: ccxt's bybit first calls GET /v5/user/query-api (and
// /v5/account/info) to learn the account type. The agent refuses /v5/user/** (the API-key and
// sub-account family, built-in rule "bybit: * /v5/user/**"), so a bot sets
// options.enableUnifiedAccount / enableUnifiedMargin, as here (clients/node/README.md).

const test = require('node:test');
const assert = require('node:assert/strict');

const { World } = require('../helpers/world');
const h = require('./harness');
const verify = require('./verify');

const credentials = { apiKey: 'XXXXXXXXXX', secret: 'test-secret' };
const ok = (result) => ({ retCode: 0, retMsg: 'OK', result, retExtInfo: {}, time: 1672211918471 });
const ORDER_ID = '1321003749386327552';

const spec = {
  id: 'bybit',
  scheme: 'bybit',
  key: 'bybit-main',
  credentials,
  config: { options: { enableUnifiedAccount: true, enableUnifiedMargin: false } },
  markets: (ex) => [
    h.spot(ex, { id: 'BTCUSDT', base: 'BTC', quote: 'USDT' }),
    h.linearSwap(ex, { id: 'BTCUSDT', base: 'BTC', quote: 'USDT' }),
  ],
  respond(req) {
    const { path } = verify.parts(req.url);
    if (path === '/v5/order/create' || path === '/v5/order/cancel') return ok({ orderId: ORDER_ID, orderLinkId: '' });
    if (path === '/v5/order/realtime') {
      return ok({
        category: 'spot',
        list: [
          {
            orderId: ORDER_ID,
            symbol: 'BTCUSDT',
            side: 'Buy',
            orderType: 'Limit',
            price: '50000',
            qty: '0.01',
            orderStatus: 'New',
            cumExecQty: '0',
            createdTime: '1672211918471',
            updatedTime: '1672211918471',
            timeInForce: 'GTC',
          },
        ],
      });
    }
    if (path === '/v5/account/wallet-balance') {
      return ok({
        list: [
          {
            accountType: 'UNIFIED',
            coin: [{ coin: 'USDT', walletBalance: '1000', locked: '0', equity: '1000', availableToWithdraw: '1000' }],
          },
        ],
      });
    }
    if (path === '/v5/position/set-leverage') return ok({});
    throw new Error(`no canned answer for ${req.method} ${path}`);
  },
};

let world;
test.before(async () => {
  world = new World();
  world.addKey(spec.key, 'bybit', [credentials.apiKey, credentials.secret]);
  await world.start();
  world.unlock();
});
test.after(() => world.close());

async function run(op, check) {
  const r = await h.differential(world, spec, op);
  r.agent.forEach((req, i) => h.assertSame(req, r.ccxt[i], `request ${i}`));
  if (check) check(r);
}

test('bybit create_order (spot limit buy)', () =>
  run((ex) => ex.createOrder('BTC/USDT', 'limit', 'buy', 0.01, 50000), (r) => {
    assert.equal(r.agent.length, 1, 'no account-type lookup with the options set');
    assert.equal(r.agent[0].url, 'https://api.bybit.com/v5/order/create');
    assert.equal(r.agent[0].body, '{"symbol":"BTCUSDT","side":"Buy","orderType":"Limit","price":"50000","category":"spot","qty":"0.01"}');
    assert.equal(r.result.id, ORDER_ID);
  }));

test('bybit cancel_order', () =>
  run((ex) => ex.cancelOrder(ORDER_ID, 'BTC/USDT'), (r) => {
    assert.equal(r.agent[0].url, 'https://api.bybit.com/v5/order/cancel');
  }));

test('bybit fetch_balance', () =>
  run((ex) => ex.fetchBalance(), (r) => {
    assert.equal(r.agent[0].url, 'https://api.bybit.com/v5/account/wallet-balance?accountType=UNIFIED');
    assert.equal(r.result.USDT.total, 1000);
  }));

test('bybit fetch_open_orders', () =>
  run((ex) => ex.fetchOpenOrders('BTC/USDT'), (r) => {
    assert.equal(r.agent[0].url, 'https://api.bybit.com/v5/order/realtime?symbol=BTCUSDT&category=spot');
    assert.equal(r.result.length, 1);
  }));

test('bybit set_leverage on a USDT perpetual', () =>
  run((ex) => ex.setLeverage(5, 'BTC/USDT:USDT'), (r) => {
    assert.equal(r.agent[0].url, 'https://api.bybit.com/v5/position/set-leverage');
    assert.equal(r.agent[0].body, '{"symbol":"BTCUSDT","buyLeverage":"5","sellLeverage":"5","category":"linear"}');
  }));
