'use strict';
// Binance through ccxt and the agent, against ccxt with the real secret.
//
// Difference, by design: ccxt writes `timestamp` as the FIRST parameter
// (`timestamp=T&symbol=...&signature=...`); the agent never edits the bot's bytes and
// appends `timestamp=T&signature=...` at the END. Binance signs the bytes as sent, in any
// order (docs/exchanges.md, "Binance"), so both are valid requests but their signatures
// differ. The test checks the same parameters and the same timestamp, and each signature
// against the scheme (hex HMAC-SHA256 over query ‖ body, `signature` last), ccxt's included.
// ccxt's default recvWindow (10 s, above the agent's 5 s cap) is dropped by attach(); the
// reference runs with the same options.

const test = require('node:test');
const assert = require('node:assert/strict');

const { World } = require('../helpers/world');
const h = require('./harness');
const verify = require('./verify');

const credentials = {
  apiKey: 'vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A',
  secret: 'NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j',
};

const order = (extra) => ({
  symbol: 'BTCUSDT',
  orderId: 28,
  clientOrderId: 'x-TKT5PX2F0123456789abcdefghijkl',
  transactTime: 1507725176595,
  price: '50000.00',
  origQty: '0.01000000',
  executedQty: '0.00000000',
  status: 'NEW',
  timeInForce: 'GTC',
  type: 'LIMIT',
  side: 'BUY',
  ...extra,
});

const spec = {
  id: 'binance',
  scheme: 'binance',
  key: 'binance-main',
  credentials,
  config: { options: { recvWindow: undefined } },
  markets: (ex) => [
    h.spot(ex, { id: 'BTCUSDT', base: 'BTC', quote: 'USDT', info: { orderTypes: ['LIMIT', 'MARKET', 'LIMIT_MAKER'] } }),
    h.linearSwap(ex, { id: 'BTCUSDT', base: 'BTC', quote: 'USDT', info: { orderTypes: ['LIMIT', 'MARKET'] } }),
    {
      ...h.linearSwap(ex, { id: 'BTCUSD_PERP', base: 'BTC', quote: 'USD', settle: 'BTC', amountTick: 1, contractSize: 100 }),
      linear: false,
      inverse: true,
      info: { orderTypes: ['LIMIT', 'MARKET', 'STOP', 'STOP_MARKET', 'TAKE_PROFIT', 'TAKE_PROFIT_MARKET'] },
    },
  ],
  respond(req) {
    const { path } = verify.parts(req.url);
    if (path === '/api/v3/order') return order(req.method === 'DELETE' ? { status: 'CANCELED' } : {});
    if (path === '/api/v3/openOrders') return [order({})];
    if (path === '/api/v3/account') {
      return { balances: [{ asset: 'BTC', free: '0.50000000', locked: '0.01000000' }], updateTime: 1700000000000 };
    }
    if (path === '/fapi/v1/order') return order({ orderId: 4021, side: 'SELL', avgPrice: '0.0', reduceOnly: false });
    if (path === '/fapi/v1/batchOrders') return [order({ orderId: 4022 }), order({ orderId: 4023, side: 'SELL' })];
    if (path === '/fapi/v1/marginType') return { code: 200, msg: 'success' };
    if (path === '/dapi/v1/algoOrder') {
      return { algoId: 91, clientAlgoId: 'x-xcKtGhcu0123456789abcdefghijkl', algoType: 'CONDITIONAL', orderType: 'STOP_MARKET', symbol: 'BTCUSD_PERP', side: 'SELL', algoStatus: 'NEW', triggerPrice: '45000', quantity: '1' };
    }
    throw new Error(`no canned answer for ${req.method} ${path}`);
  },
};

/** `a=1&b=2` → its pairs, and where the query or body carrying the signature is. */
function carrier(req) {
  const { query } = verify.parts(req.url);
  return req.body ? req.body : query;
}

function compare(agentReq, ccxtReq, stamp) {
  const a = carrier(agentReq).split('&');
  const c = carrier(ccxtReq).split('&');
  const ts = `timestamp=${stamp.ms}`;
  // ccxt: timestamp first; the agent: timestamp second to last; signature last in both.
  assert.equal(c[0], ts, 'ccxt puts its timestamp first');
  assert.equal(a.at(-2), ts, 'the agent appends its timestamp before the signature');
  assert.match(a.at(-1), /^signature=[0-9a-f]{64}$/);
  assert.match(c.at(-1), /^signature=[0-9a-f]{64}$/);
  assert.deepEqual(a.slice(0, -2), c.slice(1, -1), 'the same parameters, in the same order');
  // ccxt's own request is valid under the scheme too: both sign their bytes at the same time.
  assert.equal(verify.binance(ccxtReq, credentials).ms, stamp.ms);
  // Everything outside the signed parameters is identical.
  assert.equal(verify.parts(agentReq.url).path, verify.parts(ccxtReq.url).path);
  assert.equal(agentReq.url.split('?')[0], ccxtReq.url.split('?')[0]);
  assert.deepEqual(agentReq.headers, ccxtReq.headers);
}

let world;
test.before(async () => {
  world = new World();
  world.addKey(spec.key, 'binance', [credentials.apiKey, credentials.secret]);
  await world.start();
  world.unlock();
});
test.after(() => world.close());

async function run(op, check) {
  const r = await h.differential(world, spec, op);
  r.agent.forEach((req, i) => compare(req, r.ccxt[i], r.stamps[i]));
  if (check) check(r);
}

test('binance create_order (spot limit buy)', () =>
  run((ex) => ex.createOrder('BTC/USDT', 'limit', 'buy', 0.01, 50000), (r) => {
    assert.equal(r.agent.length, 1);
    assert.equal(r.agent[0].method, 'POST');
    assert.match(r.agent[0].body, /^symbol=BTCUSDT&side=BUY&newClientOrderId=x-TKT5PX2F0123456789abcdefghijkl&/);
    assert.equal(r.result.id, '28');
  }));

test('binance cancel_order', () =>
  run((ex) => ex.cancelOrder('28', 'BTC/USDT'), (r) => {
    assert.equal(r.agent[0].method, 'DELETE');
    assert.match(r.agent[0].url, /^https:\/\/api\.binance\.com\/api\/v3\/order\?symbol=BTCUSDT&orderId=28&timestamp=\d+&signature=/);
    assert.equal(r.result.status, 'canceled');
  }));

test('binance fetch_balance', () =>
  run((ex) => ex.fetchBalance(), (r) => {
    assert.match(r.agent[0].url, /\/api\/v3\/account\?timestamp=\d+&signature=[0-9a-f]{64}$/);
    assert.equal(r.result.BTC.free, 0.5);
  }));

test('binance fetch_open_orders', () =>
  run((ex) => ex.fetchOpenOrders('BTC/USDT'), (r) => {
    assert.match(r.agent[0].url, /\/api\/v3\/openOrders\?symbol=BTCUSDT&timestamp=/);
    assert.equal(r.result.length, 1);
  }));

test('binance USDⓈ-M futures create_order (fapi)', () =>
  run((ex) => ex.createOrder('BTC/USDT:USDT', 'limit', 'sell', 0.002, 90000), (r) => {
    assert.match(r.agent[0].url, /^https:\/\/fapi\.binance\.com\/fapi\/v1\/order$/);
    assert.match(r.agent[0].body, /^symbol=BTCUSDT&side=SELL&/);
    assert.equal(r.result.id, '4021');
  }));

// ccxt writes a batch raw (`batchOrders=[{...}]`) and the batch cancel's list as lower-case
// `orderidlist`, which Binance takes; `set_margin_mode` sends `marginType=ISOLATED`.
test('binance USDⓈ-M futures create_orders (raw JSON batch)', () =>
  run((ex) => ex.createOrders([
    { symbol: 'BTC/USDT:USDT', type: 'limit', side: 'buy', amount: 0.002, price: 50000 },
    { symbol: 'BTC/USDT:USDT', type: 'limit', side: 'sell', amount: 0.002, price: 90000 },
  ]), (r) => {
    assert.match(r.agent[0].body, /^batchOrders=\[\{"symbol":"BTCUSDT"/);
    assert.equal(r.result.length, 2);
  }));

// Each order of a batch is held to the single order's names and values (ccxt's boolean
// reduceOnly, a client id, positionSide; a batch edit).
test('binance USDⓈ-M futures create_orders with order params', () =>
  run((ex) => ex.createOrders([
    { symbol: 'BTC/USDT:USDT', type: 'limit', side: 'buy', amount: 0.002, price: 50000, params: { reduceOnly: true, clientOrderId: 'abc' } },
    { symbol: 'BTC/USDT:USDT', type: 'market', side: 'sell', amount: 0.002, params: { positionSide: 'LONG' } },
  ]), (r) => {
    assert.match(r.agent[0].body, /"reduceOnly":true/);
  }));

test('binance USDⓈ-M futures edit_orders', () =>
  run((ex) => ex.editOrders([
    { id: '1', symbol: 'BTC/USDT:USDT', type: 'limit', side: 'buy', amount: 0.002, price: 50000 },
  ]), (r) => {
    assert.equal(r.agent[0].method, 'PUT');
  }));

test('binance USDⓈ-M futures cancel_orders (orderidlist)', () =>
  run((ex) => ex.cancelOrders(['1', '2'], 'BTC/USDT:USDT'), (r) => {
    assert.equal(r.agent[0].method, 'DELETE');
    assert.match(r.agent[0].url, /orderidlist=%5B1%2C2%5D/);
  }));

test('binance USDⓈ-M futures set_margin_mode isolated', () =>
  run((ex) => ex.setMarginMode('isolated', 'BTC/USDT:USDT'), (r) => {
    assert.match(r.agent[0].body || r.agent[0].url, /marginType=ISOLATED/);
  }));

// ccxt sends a COIN-M stop-loss, take-profit or trigger order to /dapi/v1/algoOrder, with the
// USDⓈ-M algo-order schema, whose client id is `clientAlgoId`. ccxt 4.5.84, the newest on npm
// and the one this suite pins, names it `newClientOrderId` there (it switches to clientAlgoId
// for linear swaps only), a name that endpoint does not take: the profile refuses it before
// anything is sent. ccxt 4.5.85 fixed that ("the fapi/dapi algo order endpoints take
// clientAlgoId instead of newClientOrderId"), and the Python suite signs the same order with
// ccxt 4.5.90. Under a ccxt that sends clientAlgoId this test asks for the order signed and
// equal to ccxt's (red-team round 23, F1).
const COINM_STOP = (ex) => ex.createOrder('BTC/USD:BTC', 'market', 'sell', 1, undefined, { stopLossPrice: 45000 });

test('binance COIN-M stop-loss (dapi algoOrder): signed where ccxt sends clientAlgoId, refused unsent where it does not', async () => {
  const ccxt = h.loadCcxt();
  const plain = h.build(spec, credentials);
  const wrote = plain.createOrderRequest('BTC/USD:BTC', 'market', 'sell', 1, undefined, { stopLossPrice: 45000 });
  if (wrote.clientAlgoId !== undefined) {
    await run(COINM_STOP, (r) => {
      assert.match(r.agent[0].url, /^https:\/\/dapi\.binance\.com\/dapi\/v1\/algoOrder$/);
      assert.match(r.agent[0].body, /&clientAlgoId=/);
    });
    return;
  }
  assert.ok(wrote.newClientOrderId !== undefined, `ccxt ${ccxt.version} names the client id neither way`);
  const ex = h.build(spec, {});
  const { attach } = require('../../lib/ccxt');
  attach(ex, { key: spec.key, path: world.sock });
  const sent = h.record(ex, spec.respond);
  await assert.rejects(COINM_STOP(ex), (e) => {
    assert.ok(e instanceof ccxt.PermissionDenied, `${e.constructor.name}: ${e.message}`);
    assert.match(e.message, /POST \/dapi\/v1\/algoOrder .*takes no parameter named newClientOrderId/);
    return true;
  });
  assert.equal(sent.length, 0, 'nothing was sent');
});
