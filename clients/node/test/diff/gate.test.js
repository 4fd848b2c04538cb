'use strict';
// Gate (APIv4) through ccxt and the agent, against ccxt with the real secret.
//
// Same scheme, same layout: with ccxt's clock at the agent's Timestamp (whole seconds), every
// field is equal byte for byte, SIGN included. (ccxt sends the query percent-encoded and signs
// it unencoded, as Gate verifies it; the adapter decodes it, and the agent signs and the bot
// sends it unencoded.)
// ccxt's first private call reads GET /api/v4/account/detail to learn the account mode.

const test = require('node:test');
const assert = require('node:assert/strict');

const { World } = require('../helpers/world');
const h = require('./harness');
const verify = require('./verify');

// Gate's documentation example credentials (docs/sources.md, "Gate").
const credentials = { apiKey: 'key', secret: 'secret' };
const ORDER_ID = '12332324';

const spotOrder = (extra) => ({
  id: ORDER_ID,
  text: 't-123456',
  create_time: '1548000000',
  update_time: '1548000100',
  create_time_ms: 1548000000123,
  update_time_ms: 1548000100123,
  currency_pair: 'BTC_USDT',
  status: 'open',
  type: 'limit',
  account: 'spot',
  side: 'buy',
  amount: '0.01',
  price: '50000',
  time_in_force: 'gtc',
  left: '0.01',
  filled_total: '0',
  fee: '0',
  fee_currency: 'BTC',
  ...extra,
});

const spec = {
  id: 'gate',
  scheme: 'gate',
  key: 'gate-main',
  credentials,
  markets: (ex) => [
    h.spot(ex, { id: 'BTC_USDT', base: 'BTC', quote: 'USDT' }),
    { ...h.linearSwap(ex, { id: 'BTC_USDT', base: 'BTC', quote: 'USDT', amountTick: 1 }), settleId: 'usdt', contractSize: 0.0001 },
  ],
  respond(req) {
    const { path } = verify.parts(req.url);
    if (path === '/api/v4/account/detail') {
      return { user_id: 1667201533, ip_whitelist: [], currency_pairs: [], key: { mode: 1 }, tier: 0 };
    }
    if (path === '/api/v4/spot/orders') return spotOrder({});
    if (path === `/api/v4/spot/orders/${ORDER_ID}`) return spotOrder({ status: 'cancelled' });
    if (path === '/api/v4/spot/open_orders') return [{ currency_pair: 'BTC_USDT', total: 1, orders: [spotOrder({})] }];
    if (path === '/api/v4/spot/accounts') return [{ currency: 'USDT', available: '1000', locked: '0' }];
    const swapOrder = { id: 15675394, contract: 'BTC_USDT', size: -2, left: -2, price: '90000', tif: 'gtc', status: 'open', create_time: 1546569968, is_reduce_only: false, text: 'api' };
    if (path === '/api/v4/futures/usdt/orders') return swapOrder;
    if (path === '/api/v4/futures/usdt/batch_orders') return [{ ...swapOrder, succeeded: true }, { ...swapOrder, id: 15675395, succeeded: true }];
    if (path === '/api/v4/futures/usdt/orders/15675394') return { ...swapOrder, price: '91000' };
    throw new Error(`no canned answer for ${req.method} ${path}`);
  },
};

let world;
test.before(async () => {
  world = new World();
  world.addKey(spec.key, 'gate', [credentials.apiKey, credentials.secret]);
  await world.start();
  world.unlock();
});
test.after(() => world.close());

async function run(op, check) {
  const r = await h.differential(world, spec, op);
  r.agent.forEach((req, i) => h.assertSame(req, r.ccxt[i], `request ${i}`));
  if (check) check(r);
}

/** The request to `path`, after the account-mode lookup ccxt makes on its first call. */
const last = (r) => r.agent.at(-1);

test('gate create_order (spot limit buy)', () =>
  run((ex) => ex.createOrder('BTC/USDT', 'limit', 'buy', 0.01, 50000), (r) => {
    assert.equal(r.agent[0].url, 'https://api.gateio.ws/api/v4/account/detail');
    assert.equal(last(r).url, 'https://api.gateio.ws/api/v4/spot/orders');
    assert.equal(last(r).body, '{"currency_pair":"BTC_USDT","type":"limit","account":"spot","side":"buy","amount":"0.01","price":"50000"}');
    assert.equal(r.result.id, ORDER_ID);
  }));

test('gate cancel_order', () =>
  run((ex) => ex.cancelOrder(ORDER_ID, 'BTC/USDT'), (r) => {
    assert.equal(last(r).url, `https://api.gateio.ws/api/v4/spot/orders/${ORDER_ID}?account=spot&currency_pair=BTC_USDT`);
    assert.equal(last(r).method, 'DELETE');
  }));

test('gate fetch_balance', () =>
  run((ex) => ex.fetchBalance(), (r) => {
    assert.equal(last(r).url, 'https://api.gateio.ws/api/v4/spot/accounts');
    assert.equal(r.result.USDT.free, 1000);
  }));

test('gate fetch_open_orders', () =>
  run((ex) => ex.fetchOpenOrders('BTC/USDT'), (r) => {
    assert.match(last(r).url, /^https:\/\/api\.gateio\.ws\/api\/v4\/spot\/open_orders\?/);
    assert.equal(r.result.length, 1);
  }));

test('gate USDT perpetual create_order (futures)', () =>
  run((ex) => ex.createOrder('BTC/USDT:USDT', 'limit', 'sell', 2, 90000), (r) => {
    assert.equal(last(r).url, 'https://api.gateio.ws/api/v4/futures/usdt/orders');
    assert.match(last(r).body, /"contract":"BTC_USDT","size":-2/);
    assert.equal(r.result.id, '15675394');
  }));

// ccxt writes `settle` and `textIsRequired` into each order of a batch, and the spot amend's
// `currency_pair` and `account` into a futures amend.
test('gate USDT perpetual create_orders (batch)', () =>
  run((ex) => ex.createOrders([
    { symbol: 'BTC/USDT:USDT', type: 'limit', side: 'buy', amount: 2, price: 50000 },
    { symbol: 'BTC/USDT:USDT', type: 'limit', side: 'sell', amount: 2, price: 90000 },
  ]), (r) => {
    assert.equal(last(r).url, 'https://api.gateio.ws/api/v4/futures/usdt/batch_orders');
    assert.equal(r.result.length, 2);
  }));

test('gate USDT perpetual edit_order (amend)', () =>
  run((ex) => ex.editOrder('15675394', 'BTC/USDT:USDT', 'limit', 'sell', 2, 91000), (r) => {
    assert.equal(last(r).method, 'PUT');
    assert.equal(last(r).url, 'https://api.gateio.ws/api/v4/futures/usdt/orders/15675394');
  }));
