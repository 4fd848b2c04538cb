'use strict';
// Bitget through ccxt and the agent, against ccxt with the real secret.
//
// Same scheme, same layout: with ccxt's clock at the agent's ACCESS-TIMESTAMP, every field is
// equal byte for byte, ACCESS-SIGN included. (ccxt sends the query percent-encoded and signs
// it decoded, as Bitget verifies it; the adapter decodes it, and the agent signs and the bot
// sends it unencoded: a value ccxt encodes is the one difference, in the URL only.) ccxt sorts the query by name, as Bitget (and the
// agent) want. ccxt's first private call tries GET /api/v3/account/settings to learn whether
// the account is unified (UTA); here it answers as a classic account, so the calls go to the
// v2 API, which most accounts use.

const test = require('node:test');
const assert = require('node:assert/strict');

const tapsign = require('../..');
const { attach } = require('../../lib/ccxt');
const { World } = require('../helpers/world');
const h = require('./harness');
const verify = require('./verify');

const credentials = { apiKey: 'bitget-api-key-for-tests', secret: 'test-secret', password: 'bitget-test-passphrase' };
const ORDER_ID = '1098394857473';
const ok = (data) => ({ code: '00000', msg: 'success', requestTime: 1695808949356, data });

const spec = {
  id: 'bitget',
  scheme: 'bitget',
  key: 'bitget-main',
  credentials,
  markets: (ex) => [
    h.spot(ex, { id: 'BTCUSDT', base: 'BTC', quote: 'USDT' }),
    h.linearSwap(ex, { id: 'BTCUSDT', base: 'BTC', quote: 'USDT' }),
  ],
  respond(req) {
    const { path } = verify.parts(req.url);
    if (path === '/api/v3/account/settings') {
      // Bitget's answer for a classic account: not 00000, so ccxt stays on the v2 API.
      return { code: '40084', msg: 'You are in Classic Account mode, and cannot call UTA endpoints', requestTime: 1695808949356, data: null };
    }
    if (path === '/api/v2/spot/trade/place-order' || path === '/api/v2/mix/order/place-order') {
      return ok({ orderId: ORDER_ID, clientOid: '121211212122' });
    }
    if (path === '/api/v2/spot/trade/cancel-order') return ok({ orderId: ORDER_ID, clientOid: '' });
    if (path === '/api/v2/spot/trade/unfilled-orders') {
      return ok([
        {
          userId: '123456',
          symbol: 'BTCUSDT',
          orderId: ORDER_ID,
          clientOid: '121211212122',
          priceAvg: '50000',
          size: '0.01',
          orderType: 'limit',
          side: 'buy',
          status: 'live',
          basePrice: '0',
          baseVolume: '0',
          quoteVolume: '0',
          enterPointSource: 'API',
          cTime: '1695808949356',
          uTime: '1695808949356',
        },
      ]);
    }
    if (path === '/api/v2/spot/account/assets') {
      return ok([{ coin: 'USDT', available: '1000', frozen: '0', locked: '0', limitAvailable: '0', uTime: '1695808949356' }]);
    }
    throw new Error(`no canned answer for ${req.method} ${path}`);
  },
};

let world;
test.before(async () => {
  world = new World();
  world.addKey(spec.key, 'bitget', [credentials.apiKey, credentials.secret, credentials.password]);
  await world.start();
  world.unlock();
});
test.after(() => world.close());

async function run(op, check) {
  const r = await h.differential(world, spec, op);
  r.agent.forEach((req, i) => h.assertSame(req, r.ccxt[i], `request ${i}`));
  if (check) check(r);
}

const last = (r) => r.agent.at(-1);

test('bitget create_order (spot limit buy, v2)', () =>
  run((ex) => ex.createOrder('BTC/USDT', 'limit', 'buy', 0.01, 50000), (r) => {
    assert.equal(r.agent[0].url, 'https://api.bitget.com/api/v3/account/settings');
    assert.equal(last(r).url, 'https://api.bitget.com/api/v2/spot/trade/place-order');
    assert.equal(r.result.id, ORDER_ID);
  }));

test('bitget cancel_order', () =>
  run((ex) => ex.cancelOrder(ORDER_ID, 'BTC/USDT'), (r) => {
    assert.equal(last(r).url, 'https://api.bitget.com/api/v2/spot/trade/cancel-order');
  }));

test('bitget fetch_balance', () =>
  run((ex) => ex.fetchBalance(), (r) => {
    assert.match(last(r).url, /^https:\/\/api\.bitget\.com\/api\/v2\/spot\/account\/assets/);
    assert.equal(r.result.USDT.free, 1000);
  }));

test('bitget fetch_open_orders', () =>
  run((ex) => ex.fetchOpenOrders('BTC/USDT'), (r) => {
    assert.match(last(r).url, /^https:\/\/api\.bitget\.com\/api\/v2\/spot\/trade\/unfilled-orders\?/);
    assert.equal(r.result.length, 1);
  }));

test('bitget USDT-M futures create_order (mix place-order)', () =>
  run((ex) => ex.createOrder('BTC/USDT:USDT', 'limit', 'sell', 0.002, 90000), (r) => {
    assert.equal(last(r).url, 'https://api.bitget.com/api/v2/mix/order/place-order');
    assert.match(last(r).body, /"productType":"USDT-FUTURES"/);
    assert.equal(r.result.id, ORDER_ID);
  }));

// Red-team round 22: ccxt sends a Bitget query percent-encoded and signs it decoded, as Bitget
// verifies it; the adapter signed the encoded bytes, so a value ccxt encodes got another
// ACCESS-SIGN than ccxt's. Now decoded, as for Gate: the same signature as ccxt's, over the
// query the bot sends.
test('bitget signs a query value ccxt percent-encodes (*, !, parentheses) as ccxt does, decoded', () =>
  h
    .differential(world, spec, (ex) =>
      ex.privateSpotGetV2SpotTradeUnfilledOrders({ symbol: 'BTCUSDT', idLessThan: 'a*b~!()' }),
    )
    .then((r) => {
      const [sent, ccxts] = [last(r), r.ccxt.at(-1)];
      const path = 'https://api.bitget.com/api/v2/spot/trade/unfilled-orders';
      assert.equal(ccxts.url, `${path}?idLessThan=a%2Ab~%21%28%29&symbol=BTCUSDT`);
      assert.equal(sent.url, `${path}?idLessThan=a*b~!()&symbol=BTCUSDT`);
      assert.deepEqual(sent.headers, ccxts.headers, 'ACCESS-SIGN and the rest, as ccxt signs');
    }));

// A value that cannot go out unencoded (a space, a non-ASCII letter: fetch encodes them again,
// and Bitget would verify other bytes than the agent signed) is refused before the agent is
// asked, as for Gate; nothing is sent.
test('bitget refuses a query value with a space or a non-ASCII letter before the agent is asked', async () => {
  const ccxt = h.loadCcxt();
  for (const value of ['a b', 'ü']) {
    const ex = h.build(spec, {});
    const sent = h.record(ex, spec.respond);
    attach(ex, { key: spec.key, path: '/nonexistent/agent.sock' });
    await assert.rejects(ex.privateSpotGetV2SpotTradeUnfilledOrders({ symbol: 'BTCUSDT', idLessThan: value }), (e) => {
      assert.ok(e instanceof ccxt.BadRequest && e.tapsign instanceof tapsign.BadRequest, `${value}: ${e.constructor.name} ${e.message}`);
      assert.match(e.message, /Bitget signs the query unencoded/);
      return true;
    });
    assert.equal(sent.length, 0, value);
  }
});

// An apostrophe: fetch sends it as %27, so the adapter refuses it before asking, and the agent,
// asked with the same unencoded query, refuses it too; its message lists the characters a value
// may hold without the apostrophe (red-team round 23: it listed it, and said to send unencoded
// a query that was).
test('bitget: the adapter and the agent both refuse an apostrophe in a query value, and say so alike', async () => {
  const ccxt = h.loadCcxt();
  const ex = h.build(spec, {});
  const sent = h.record(ex, spec.respond);
  attach(ex, { key: spec.key, path: '/nonexistent/agent.sock' });
  await assert.rejects(ex.privateSpotGetV2SpotTradeUnfilledOrders({ symbol: 'BTCUSDT', idLessThan: "a'b" }), (e) => {
    assert.ok(e instanceof ccxt.BadRequest, `${e.constructor.name} ${e.message}`);
    assert.match(e.message, /Bitget signs the query unencoded/);
    return true;
  });
  assert.equal(sent.length, 0);

  const agent = new tapsign.Agent({ path: world.sock });
  try {
    await assert.rejects(
      agent.sign(spec.key, 'GET', '/api/v2/spot/trade/unfilled-orders', { query: "idLessThan=a'b&symbol=BTCUSDT" }),
      (e) => {
        assert.ok(e instanceof tapsign.BadRequest, `${e.constructor.name} ${e.message}`);
        assert.ok(e.message.includes('other than letters, digits and -._~,:!*()@$/:'), e.message);
        assert.ok(!e.message.includes('send the query unencoded'), e.message);
        return true;
      },
    );
  } finally {
    agent.close();
  }
});
