'use strict';
// Kraken (spot REST) through ccxt and the agent, against ccxt with the real secret.
//
// Same scheme, same layout: both put `nonce` first in the form body. With ccxt's nonce at the
// agent's (a strictly increasing counter, at least its clock in ms), every field is equal
// byte for byte, API-Sign included, but on an order ccxt sends without a `deadline`: the agent
// stamps its own after the nonce (agent/src/sign/kraken.rs), and signs the body with it.

const test = require('node:test');
const assert = require('node:assert/strict');

const { World } = require('../helpers/world');
const h = require('./harness');
const verify = require('./verify');

// Kraken's published example private key (docs/sources.md, "Kraken"); the API key is made up.
const credentials = {
  apiKey: 'kraken-api-key-for-tests',
  secret: 'kQH5HW/8p1uGOVjbgWA7FunAmGO8lsSUXNsu3eow76sz84Q18fWxnyRzBHCd3pd5nE9qa99HAZtuZuj6F1huXg==',
};
const TXID = 'OQCLML-BW3P3-BUCMWZ';
const ok = (result) => ({ error: [], result });

const spec = {
  id: 'kraken',
  scheme: 'kraken',
  key: 'kraken-main',
  credentials,
  markets(ex) {
    const market = {
      ...h.spot(ex, {
      id: 'XXBTZUSD',
      base: 'BTC',
      quote: 'USD',
      baseId: 'XXBT',
      quoteId: 'ZUSD',
      amountTick: 1e-8,
      priceTick: 0.1,
      info: { altname: 'XBTUSD', wsname: 'XBT/USD' },
      }),
      altname: 'XBTUSD',
    };
    // What ccxt's fetchMarkets records, to read the altname pairs Kraken's answers carry.
    ex.options.marketsByAltname = { XBTUSD: market };
    return [market];
  },
  respond(req) {
    const { path } = verify.parts(req.url);
    if (path === '/0/private/AddOrder') return ok({ descr: { order: 'buy 1.25000000 XBTUSD @ limit 37500.0' }, txid: [TXID] });
    if (path === '/0/private/CancelOrder') return ok({ count: 1 });
    if (path === '/0/private/OpenOrders') {
      return ok({
        open: {
          [TXID]: {
            refid: null,
            userref: 0,
            status: 'open',
            opentm: 1688666559.8974,
            starttm: 0,
            expiretm: 0,
            descr: { pair: 'XBTUSD', type: 'buy', ordertype: 'limit', price: '37500.0', price2: '0', leverage: 'none', order: 'buy 1.25 XBTUSD @ limit 37500.0', close: '' },
            vol: '1.25000000',
            vol_exec: '0.00000000',
            cost: '0.00000',
            fee: '0.00000',
            price: '0.00000',
            misc: '',
            oflags: 'fciq',
          },
        },
      });
    }
    if (path === '/0/private/BalanceEx') return ok({ ZUSD: { balance: '1000.0000', hold_trade: '0.0000' } });
    if (path === '/0/private/TradesHistory') {
      return ok({
        trades: {
          'THVRQM-33VKH-UCI7BS': {
            ordertxid: TXID,
            postxid: 'TKH2SE-M7IF5-CFI7LT',
            pair: 'XXBTZUSD',
            time: 1688667796.8802,
            type: 'buy',
            ordertype: 'limit',
            price: '37500.00000',
            cost: '750.00000',
            fee: '1.20000',
            vol: '0.02000000',
            margin: '0.00000',
            misc: '',
          },
        },
        count: 1,
      });
    }
    throw new Error(`no canned answer for ${req.method} ${path}`);
  },
};

let world;
test.before(async () => {
  world = new World();
  world.addKey(spec.key, 'kraken', [credentials.apiKey, credentials.secret]);
  await world.start();
  world.unlock();
});
test.after(() => world.close());

async function run(op, check) {
  const r = await h.differential(world, spec, op);
  r.agent.forEach((req, i) => h.assertSame(req, r.ccxt[i], `request ${i}`));
  if (check) check(r);
}

// The agent's deadline after its nonce: at most 30 s past its clock, in whole seconds.
const STAMPED = /^(nonce=\d+)&deadline=(\d{4}-\d\d-\d\dT\d\d%3A\d\d%3A\d\dZ)(&.*)?$/;

/** Every field equal but the agent's deadline and the API-Sign over it (verified apart). */
function assertSameButTheDeadline(agentReq, ccxtReq, what) {
  const m = STAMPED.exec(agentReq.body);
  assert.ok(m, `${what}: the agent's deadline follows its nonce: ${agentReq.body}`);
  const ahead = Date.parse(decodeURIComponent(m[2])) - Date.now();
  assert.ok(ahead > 0 && ahead <= 30_000, `${what}: the deadline is ${ahead} ms ahead`);
  assert.equal(agentReq.url, ccxtReq.url, `${what}: url`);
  assert.equal(`${m[1]}${m[3] ?? ''}`, ccxtReq.body, `${what}: body but the deadline`);
  assert.deepEqual(h.headersWithout(agentReq.headers, ['API-Sign']), h.headersWithout(ccxtReq.headers, ['API-Sign']));
}

test('kraken create_order (AddOrder, limit buy): the agent stamps a deadline', async () => {
  const r = await h.differential(world, spec, (ex) => ex.createOrder('BTC/USD', 'limit', 'buy', 1.25, 37500));
  assert.equal(r.agent.length, 1);
  assertSameButTheDeadline(r.agent[0], r.ccxt[0], 'request 0');
  assert.equal(r.agent[0].url, 'https://api.kraken.com/0/private/AddOrder');
  assert.match(r.agent[0].body, /^nonce=\d+&deadline=[^&]+&pair=XXBTZUSD&type=buy&ordertype=limit&volume=1\.25&price=37500$/);
  assert.equal(r.result.id, TXID);
});

test("kraken create_order with the bot's own deadline: byte for byte", () => {
  const deadline = new Date(Math.floor(Date.now() / 1000) * 1000 + 20_000).toISOString().replace('.000Z', 'Z');
  return run((ex) => ex.createOrder('BTC/USD', 'limit', 'buy', 1.25, 37500, { deadline }), (r) => {
    assert.match(r.agent[0].body, new RegExp(`^nonce=\\d+&.*&deadline=${encodeURIComponent(deadline)}$`));
  });
});

test('kraken cancel_order', () =>
  run((ex) => ex.cancelOrder(TXID, 'BTC/USD'), (r) => {
    assert.match(r.agent[0].body, new RegExp(`^nonce=\\d+&txid=${TXID}$`));
  }));

test('kraken fetch_balance (BalanceEx)', () =>
  run((ex) => ex.fetchBalance(), (r) => {
    assert.match(r.agent[0].body, /^nonce=\d+$/);
    assert.equal(r.result.USD.total, 1000);
  }));

test('kraken fetch_open_orders', () =>
  run((ex) => ex.fetchOpenOrders('BTC/USD'), (r) => {
    assert.equal(r.agent[0].url, 'https://api.kraken.com/0/private/OpenOrders');
    assert.equal(r.result.length, 1);
  }));

test('kraken fetch_my_trades (TradesHistory)', () =>
  run((ex) => ex.fetchMyTrades('BTC/USD'), (r) => {
    assert.equal(r.agent[0].url, 'https://api.kraken.com/0/private/TradesHistory');
    assert.equal(r.result.length, 1);
  }));

test('kraken nonces grow from one signature to the next', async () => {
  const a = await h.differential(world, spec, (ex) => ex.fetchBalance());
  const b = await h.differential(world, spec, (ex) => ex.fetchBalance());
  assert.ok(b.stamps[0].nonce > a.stamps[0].nonce, `${b.stamps[0].nonce} after ${a.stamps[0].nonce}`);
});
