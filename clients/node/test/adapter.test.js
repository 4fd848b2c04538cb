'use strict';
// The ccxt adapter's promises beyond the signatures themselves (those are the differential
// tests): public requests untouched, no secret on the instance, tapsign's refusals as ccxt's
// error classes with tapsign's message, nothing sent when the agent refuses, concurrency,
// Binance's key-only calls sent as ccxt sends them.

const test = require('node:test');
const assert = require('node:assert/strict');

const tapsign = require('..');
const { attach, PLACEHOLDERS } = require('../lib/ccxt');
const { World } = require('./helpers/world');
const { fakeAgent, serve, golden } = require('./helpers/fake-agent');
const h = require('./diff/harness');
const verify = require('./diff/verify');

const ccxt = h.loadCcxt();

const BINANCE = {
  apiKey: 'vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A',
  secret: 'NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j',
};

let world;
test.before(async () => {
  world = new World();
  world.addKey('binance-main', 'binance', [BINANCE.apiKey, BINANCE.secret]);
  world.addKey('bybit-main', 'bybit', ['XXXXXXXXXX', 'test-secret']);
  world.addKey('bithumb-main', 'bithumb', ['L7rVaYfBIc2BDsnlQGfkR93d6DoOAJCw7mJr5Eso', 'test-secret-not-real']);
  await world.start();
  world.unlock();
});
test.after(() => world.close());

/** A ccxt binance instance with one spot market, answering every request from `answer`. */
function binance(answer = () => ({})) {
  const ex = new ccxt.binance({ enableRateLimit: false });
  ex.setMarkets([h.spot(ex, { id: 'BTCUSDT', base: 'BTC', quote: 'USDT', info: { orderTypes: ['LIMIT', 'MARKET'] } })]);
  const sent = h.record(ex, answer);
  return { ex, sent };
}

test('public requests go out untouched, without asking the agent', async () => {
  const answer = () => ({ symbol: 'BTCUSDT', lastPrice: '50000.00', openTime: 1, closeTime: 2 });
  const plain = binance(answer);
  await plain.ex.fetchTicker('BTC/USDT');
  const attached = binance(answer);
  // No agent at this path: any question to it would fail the call.
  attach(attached.ex, { key: 'binance-main', path: '/nonexistent/agent.sock' });
  const ticker = await attached.ex.fetchTicker('BTC/USDT');
  assert.equal(ticker.last, 50000);
  assert.deepEqual(attached.sent, plain.sent);
  assert.equal(verify.parts(attached.sent[0].url).path, '/api/v3/ticker/24hr');
});

test('the attached instance holds placeholders, never the real credentials', async () => {
  const ex = new ccxt.okx({ apiKey: 'real-key' });
  attach(ex, { key: 'okx-main', path: world.sock });
  assert.equal(ex.apiKey, PLACEHOLDERS.apiKey);
  assert.equal(ex.secret, PLACEHOLDERS.secret);
  assert.equal(ex.password, PLACEHOLDERS.password);
  const everything = JSON.stringify(Object.entries(ex).filter(([, v]) => typeof v !== 'function'));
  assert.ok(!everything.includes('real-key'));
  // Attached again (another key), its own placeholders are no secret.
  attach(ex, { key: 'okx-other', path: world.sock });
  // And the placeholders sign nothing: they are no one's key, and every private request is
  // re-signed by the agent (differential tests).
  assert.notEqual(PLACEHOLDERS.secret, BINANCE.secret);
});

test('attach refuses an instance that holds a secret, as the Python adapter does', () => {
  // Red-team round 24, K3: overwritten in silence, the secret stayed in the bot's configuration.
  const cases = [
    ['binance', { apiKey: BINANCE.apiKey, secret: BINANCE.secret }, 'secret'],
    ['okx', { password: 'passphrase' }, 'password'],
    ['coinbase', { privateKey: 'pem' }, 'privateKey'],
  ];
  for (const [id, credentials, field] of cases) {
    const ex = new ccxt[id](credentials);
    assert.throws(
      () => attach(ex, { key: `${id}-main`, path: world.sock }),
      (e) =>
        e instanceof TypeError &&
        e.message.includes(`holds a ${field}`) &&
        e.message.includes(`tapsign key add ${id}-main --exchange ${id}`) &&
        !e.message.includes(BINANCE.secret),
    );
    assert.equal(ex[field], credentials[field], 'nothing changed on a refused instance');
    assert.equal(typeof ex.sign, 'function');
  }
  // A secret set on an attached instance is refused when it is attached again.
  const ex = attach(new ccxt.binance(), { key: 'binance-main', path: world.sock });
  ex.secret = BINANCE.secret;
  assert.throws(() => attach(ex, { key: 'binance-main', path: world.sock }), /holds a secret/);
});

test('the API key on the wire is the agent’s, not the placeholder', async () => {
  const { ex, sent } = binance(() => ({ balances: [] }));
  attach(ex, { key: 'binance-main', path: world.sock });
  await ex.fetchBalance();
  assert.equal(sent[0].headers['X-MBX-APIKEY'], BINANCE.apiKey);
  assert.ok(!JSON.stringify(sent).includes(PLACEHOLDERS.apiKey));
});

test('locked: ccxt raises AuthenticationError with tapsign’s message, and nothing is sent', async () => {
  const { ex, sent } = binance();
  attach(ex, { key: 'binance-main', path: world.sock });
  world.run(['lock']);
  try {
    await assert.rejects(ex.createOrder('BTC/USDT', 'limit', 'buy', 0.01, 50000), (e) => {
      assert.ok(e instanceof ccxt.AuthenticationError, e.constructor.name);
      assert.match(e.message, /^binance tapsign: .*tapsign unlock/);
      assert.equal(e.code, 'locked');
      assert.ok(e.tapsign instanceof tapsign.Locked);
      return true;
    });
    assert.equal(sent.length, 0);
  } finally {
    world.unlock();
  }
});

test('a withdrawal through ccxt is PermissionDenied, naming the rule, and nothing is sent', async () => {
  const { ex, sent } = binance();
  ex.currencies = { USDT: { id: 'USDT', code: 'USDT', precision: 0.01, networks: {} } };
  attach(ex, { key: 'binance-main', path: world.sock });
  await assert.rejects(ex.withdraw('USDT', 100, 'TXyz0000000000000000000000000000ab'), (e) => {
    assert.ok(e instanceof ccxt.PermissionDenied, e.constructor.name);
    assert.match(e.message, /refused by built-in rule "binance: \* \/sapi\/\*\/capital\/withdraw\*\*"/);
    return true;
  });
  assert.equal(sent.length, 0);
});

test('a recvWindow above the agent’s cap is ccxt BadRequest with the agent’s reason', async () => {
  const { ex, sent } = binance();
  attach(ex, { key: 'binance-main', path: world.sock });
  await assert.rejects(ex.fetchOpenOrders('BTC/USDT', undefined, undefined, { recvWindow: 60000 }), (e) => {
    assert.ok(e instanceof ccxt.BadRequest, e.constructor.name);
    assert.match(e.message, /recvWindow=60000 is above the agent's cap of 5000 ms/);
    return true;
  });
  assert.equal(sent.length, 0);
});

test('no agent: ccxt raises ExchangeNotAvailable (a NetworkError) saying how to start it', async () => {
  const { ex } = binance();
  attach(ex, { key: 'binance-main', path: '/nonexistent/agent.sock' });
  await assert.rejects(ex.fetchBalance(), (e) => {
    assert.ok(e instanceof ccxt.ExchangeNotAvailable, e.constructor.name);
    assert.ok(e instanceof ccxt.NetworkError);
    assert.match(e.message, /tapsign agent/);
    return true;
  });
});

test('ccxt’s default recvWindow (10 s) is dropped; one the bot passes is still sent', async () => {
  const { ex, sent } = binance(() => []);
  assert.equal(ex.options.recvWindow, 10000);
  attach(ex, { key: 'binance-main', path: world.sock });
  assert.equal(ex.options.recvWindow, undefined);
  await ex.fetchOpenOrders('BTC/USDT');
  await ex.fetchOpenOrders('BTC/USDT', undefined, undefined, { recvWindow: 3000 });
  assert.ok(!sent[0].url.includes('recvWindow'));
  assert.match(sent[1].url, /[?&]recvWindow=3000&timestamp=/);
});

test('concurrent calls on one attached instance are each signed for their own request', async () => {
  const { ex, sent } = binance((req) => (req.method === 'POST' ? { orderId: 1, symbol: 'BTCUSDT', status: 'NEW' } : []));
  attach(ex, { key: 'binance-main', path: world.sock });
  await Promise.all([
    ...Array.from({ length: 8 }, (_, i) => ex.createOrder('BTC/USDT', 'limit', 'buy', 0.01, 50000 + i)),
    ...Array.from({ length: 8 }, () => ex.fetchOpenOrders('BTC/USDT')),
  ]);
  assert.equal(sent.length, 16);
  for (const req of sent) verify.binance(req, BINANCE);
  const prices = sent.filter((r) => r.method === 'POST').map((r) => /price=(\d+)/.exec(r.body)[1]);
  assert.deepEqual(prices.sort(), Array.from({ length: 8 }, (_, i) => String(50000 + i)));
});

test('bybit without account-type options: the agent refuses ccxt’s /v5/user/query-api lookup', async () => {
  // ccxt's bybit reads the API key's own info to learn the account type before its first
  // private call; /v5/user/** is the API-key and sub-account family the agent never signs.
  // A bot sets options.enableUnifiedAccount/enableUnifiedMargin (README); this is what it
  // sees without them.
  const ex = new ccxt.bybit({ enableRateLimit: false });
  ex.setMarkets([h.spot(ex, { id: 'BTCUSDT', base: 'BTC', quote: 'USDT' })]);
  const sent = h.record(ex, () => ({ retCode: 0, retMsg: 'OK', result: {} }));
  attach(ex, { key: 'bybit-main', path: world.sock });
  await assert.rejects(ex.createOrder('BTC/USDT', 'limit', 'buy', 0.01, 50000), (e) => {
    assert.ok(e instanceof ccxt.PermissionDenied, e.constructor.name);
    assert.match(e.message, /bybit: \* \/v5\/user\/\*\*.*\/v5\/user\/query-api/);
    // What ccxt asked it for, and the options that spare it (red-team round 26, F7).
    assert.match(e.message, /ccxt asks this itself.*enableUnifiedAccount: true/);
    return true;
  });
  assert.ok(!sent.some((r) => r.url.includes('/v5/user/')), 'the refused request was not sent');
});

test('bithumb’s legacy API (ccxt generation 1) is refused by the agent, not sent', async () => {
  const ex = new ccxt.bithumb({ enableRateLimit: false });
  ex.setMarkets([h.spot(ex, { id: 'KRW-BTC', base: 'BTC', quote: 'KRW', amountTick: 1e-8, priceTick: 1 })]);
  const sent = h.record(ex, () => ({ status: '0000', data: {} }));
  attach(ex, { key: 'bithumb-main', path: world.sock });
  await assert.rejects(ex.fetchBalance({ generation: 1 }), (e) => {
    assert.ok(e instanceof ccxt.ExchangeError, e.constructor.name);
    assert.match(e.message, /^bithumb tapsign: /);
    assert.ok(['bad_request', 'policy_denied'].includes(e.code), e.code);
    return true;
  });
  assert.equal(sent.length, 0);
});

test('a request with placeholder credentials that skipped sign() is never sent', async () => {
  const { ex, sent } = binance();
  attach(ex, { key: 'binance-main', path: world.sock });
  await assert.rejects(
    ex.fetch('https://api.binance.com/api/v3/account', 'GET', { 'X-MBX-APIKEY': PLACEHOLDERS.apiKey }),
    (e) => e instanceof ccxt.ExchangeError && /placeholder credentials/.test(e.message),
  );
  assert.equal(sent.length, 0);
});

test('attach checks its arguments and can be repeated to change the key', async () => {
  assert.throws(() => attach({}, { key: 'k' }), /ccxt exchange instance/);
  assert.throws(() => attach(new ccxt.binance(), {}), /options.key/);
  assert.throws(() => attach(new ccxt.binance(), { key: 'k', sock: '/x' }), /unknown option "sock"/);
  assert.throws(() => attach(new ccxt.poloniex(), { key: 'k' }), /does not sign for ccxt's "poloniex"/);
  const { ex, sent } = binance(() => ({ balances: [] }));
  attach(ex, { key: 'no-such-key', path: world.sock });
  attach(ex, { key: 'binance-main', path: world.sock });
  await ex.fetchBalance();
  verify.binance(sent[0], BINANCE);
  // ccxt classes derived from one of the ten map to its scheme.
  attach(new ccxt.binanceusdm(), { key: 'binance-main', path: world.sock });
  attach(new ccxt.kucoinfutures(), { key: 'kucoin-main', path: world.sock });
});

// Red-team round 22: the Python adapter matched ccxt classes by inheritance and sent Binance.US,
// Bybit EU, Bybit Indonesia and Gate EU the agent's signed requests and API key; both adapters
// go by the ccxt id exactly. `scheme` names the exchange outright, one of the ten only.
test('ccxt classes for other companies\' hosts are refused; scheme must name one of the ten', async () => {
  for (const id of ['binanceus', 'bybiteu', 'bybitid', 'gateeu']) {
    const ex = new ccxt[id]();
    assert.throws(() => attach(ex, { key: 'binance-main', path: world.sock }), (e) => {
      assert.match(e.message, new RegExp(`does not sign for ccxt's "${id}"`));
      assert.match(e.message, /options\.scheme/);
      return true;
    });
    assert.notEqual(ex.apiKey, PLACEHOLDERS.apiKey, `${id}: not attached`);
  }
  for (const scheme of ['binanceus', 'toString', 'constructor', '__proto__']) {
    assert.throws(() => attach(new ccxt.binance(), { key: 'k', scheme }), /is not one of tapsign's exchanges/);
  }
  const ex = new ccxt.binanceus({ enableRateLimit: false });
  const sent = h.record(ex, () => ({ balances: [] }));
  attach(ex, { key: 'binance-main', path: world.sock, scheme: 'binance' });
  await ex.privateGetAccount();
  assert.ok(sent.length > 0 && sent.every((r) => r.url.startsWith('https://api.binance.us/')), JSON.stringify(sent));
});

test('an apostrophe in a query is refused before the agent is asked: fetch would send it as %27', async () => {
  // Upbit and Bithumb hash the query unencoded, Bybit signs it as sent: in each a %27 on the
  // wire is not what the agent signed. Nothing is sent, the agent is not asked.
  const cases = [
    ['bybit', 'bybit-main', (ex) => ex.privateGetV5OrderRealtime({ category: 'linear', orderLinkId: "o'1" })],
    ['upbit', 'upbit-main', (ex) => ex.privateDeleteOrder({ identifier: "o'1" })],
    ['bithumb', 'bithumb-main', (ex) => ex.privateGetV1Order({ identifier: "o'1" })],
  ];
  for (const [id, key, call] of cases) {
    const ex = new ccxt[id]({ enableRateLimit: false, options: { enableUnifiedAccount: true, enableUnifiedMargin: false } });
    const sent = h.record(ex, () => ({}));
    attach(ex, { key, path: '/nonexistent/agent.sock' });
    await assert.rejects(call(ex), (e) => {
      assert.ok(e instanceof ccxt.BadRequest && e.tapsign instanceof tapsign.BadRequest, `${id}: ${e.constructor.name} ${e.message}`);
      assert.match(e.message, /'/);
      return true;
    });
    assert.equal(sent.length, 0, id);
  }
});

// The calls ccxt's binance `sign` sends with the API key alone (its `path` is historicalTrades,
// userDataStream, listenKey or userListenToken), one per API family that has them.
const KEY_ONLY_CALLS = [
  ['binanceusdm', 'fapiPrivatePostListenKey', {}],
  ['binanceusdm', 'fapiPrivatePutListenKey', {}],
  ['binanceusdm', 'fapiPrivateDeleteListenKey', {}],
  ['binancecoinm', 'dapiPrivatePostListenKey', {}],
  ['binance', 'eapiPrivatePostListenKey', {}],
  ['binance', 'papiPostListenKey', {}],
  ['binance', 'publicPostUserDataStream', {}],
  ['binance', 'publicPutUserDataStream', { listenKey: 'lk1' }],
  ['binance', 'publicDeleteUserDataStream', { listenKey: 'lk1' }],
  ['binance', 'sapiPostUserDataStream', {}],
  ['binance', 'sapiPutUserDataStream', { listenKey: 'lk1' }],
  ['binance', 'sapiPostUserListenToken', {}],
  ['binance', 'publicGetHistoricalTrades', { symbol: 'BTCUSDT', limit: 5 }],
  ['binanceusdm', 'fapiPublicGetHistoricalTrades', { symbol: 'BTCUSDT' }],
  ['binancecoinm', 'dapiPublicGetHistoricalTrades', { symbol: 'BTCUSD_PERP' }],
];

test('Binance key-only calls (listenKey, userDataStream, historicalTrades) go out as ccxt sends them, with the real API key', async () => {
  // Red-team round 21: these were sent to the agent to sign and refused as outside the
  // trading profile, with advice to write a config entry; Binance wants no signature there.
  for (const [id, call, params] of KEY_ONLY_CALLS) {
    const plain = new ccxt[id]({ enableRateLimit: false, apiKey: BINANCE.apiKey, secret: BINANCE.secret });
    const plainSent = h.record(plain, () => ({ listenKey: 'lk1' }));
    await plain[call]({ ...params });
    const ex = new ccxt[id]({ enableRateLimit: false });
    const sent = h.record(ex, () => ({ listenKey: 'lk1' }));
    attach(ex, { key: 'binance-main', path: world.sock });
    await ex[call]({ ...params });
    // The account read that taught the adapter the API key was signed, never sent.
    assert.deepEqual(sent, plainSent, call);
    assert.equal(sent[0].headers['X-MBX-APIKEY'], BINANCE.apiKey, call);
    assert.ok(!/timestamp|signature/.test(sent[0].url + (sent[0].body || '')), call);
  }
});

test('paths ccxt signs that merely end like a key-only one go to the agent', async () => {
  // ccxt signs /sapi/v1/equity/listenKey (Binance wants it signed) and the isolated-margin
  // /sapi/v1/userDataStream/isolated: the agent's binance profile has neither, so both are
  // refused, and nothing is sent.
  for (const [call, params] of [
    ['sapiPostEquityListenKey', {}],
    ['sapiPostUserDataStreamIsolated', { symbol: 'BTCUSDT' }],
  ]) {
    const { ex, sent } = binance();
    attach(ex, { key: 'binance-main', path: world.sock });
    await assert.rejects(ex[call](params), (e) => {
      assert.ok(e instanceof ccxt.PermissionDenied, `${call}: ${e.constructor.name} ${e.message}`);
      assert.equal(e.code, 'policy_denied', call);
      return true;
    });
    assert.equal(sent.length, 0, call);
  }
});

test('the API key for key-only calls comes from a signed answer; the probe is signed once, never sent', async () => {
  const frames = [];
  const fake = await fakeAgent(serve((msg, peer) => {
    frames.push(msg);
    const { type, key, kind, ...request } = msg;
    void type;
    void kind;
    if (key === 'locked-key') peer.send(golden('response_error_locked'));
    else if (key === 'spot-only' && request.path !== '/api/v3/account') {
      peer.send({ type: 'error', code: 'policy_denied', message: `refused: ${request.path} is left out by this key's only list` });
    } else if (key === 'nothing') {
      peer.send({ type: 'error', code: 'policy_denied', message: `refused: ${request.path}` });
    }
    else if (key === 'okx-key') peer.send({ type: 'signed', ...request, headers: { 'OK-ACCESS-SIGN': 's' } });
    else peer.send({ type: 'signed', ...request, headers: { 'X-MBX-APIKEY': `AK-${key}` } });
  }));
  const signs = () => frames.filter((f) => f.type === 'sign').map((f) => `${f.key} ${f.method} ${f.path}`);
  try {
    const ex = new ccxt.binanceusdm({ enableRateLimit: false });
    const sent = h.record(ex, () => ({ listenKey: 'lk1', assets: [], positions: [] }));
    attach(ex, { key: 'k1', path: fake.path });
    await ex.fapiPrivatePostListenKey();
    await ex.fapiPrivatePutListenKey();
    // The call's own family's read first (round 21's recheck: a futures key's `only` list
    // refused the spot read).
    assert.deepEqual(signs(), ['k1 GET /fapi/v2/balance'], 'one probe, then the key is known');
    assert.deepEqual(
      sent.map((r) => [r.method, verify.parts(r.url).path, r.headers['X-MBX-APIKEY']]),
      [
        ['POST', '/fapi/v1/listenKey', 'AK-k1'],
        ['PUT', '/fapi/v1/listenKey', 'AK-k1'],
      ],
    );
    // Attached to another key: its API key is learnt again, here from a signed call.
    attach(ex, { key: 'k2', path: fake.path });
    await ex.fapiPrivateV2GetAccount();
    await ex.fapiPrivateDeleteListenKey();
    assert.deepEqual(signs().slice(1), ['k2 GET /fapi/v2/account']);
    assert.equal(sent.at(-1).headers['X-MBX-APIKEY'], 'AK-k2');

    // A read refused by the key's policy: the next family's is asked.
    frames.length = 0;
    attach(ex, { key: 'spot-only', path: fake.path });
    await ex.fapiPrivatePostListenKey();
    assert.deepEqual(signs(), ['spot-only GET /fapi/v2/balance', 'spot-only GET /dapi/v1/balance', 'spot-only GET /api/v3/account']);
    assert.equal(sent.at(-1).headers['X-MBX-APIKEY'], 'AK-spot-only');
    // Every read refused: the refusal says how the key is learnt and what to do; nothing sent.
    const before = sent.length;
    attach(ex, { key: 'nothing', path: fake.path });
    await assert.rejects(ex.fapiPrivatePostListenKey(), (e) => {
      assert.ok(e instanceof ccxt.PermissionDenied, e.constructor.name);
      assert.match(e.message, /make one signed call with this key first/);
      return true;
    });
    // A probe the agent refuses otherwise is the call's error, and nothing is sent.
    attach(ex, { key: 'locked-key', path: fake.path });
    await assert.rejects(ex.fapiPrivatePostListenKey(), (e) => e instanceof ccxt.AuthenticationError && e.code === 'locked');
    // A key of another exchange has no Binance API key to give.
    attach(ex, { key: 'okx-key', path: fake.path });
    await assert.rejects(ex.fapiPrivatePostListenKey(), (e) => {
      assert.ok(e instanceof ccxt.BadRequest, e.constructor.name);
      assert.match(e.message, /"okx-key" in another exchange's scheme \(no X-MBX-APIKEY header\)/);
      return true;
    });
    assert.equal(sent.length, before);
  } finally {
    await fake.close();
  }
});

test('an OKX spot stop-loss or take-profit goes to the agent with tdMode cash; one that asked for margin keeps its cross', async () => {
  // Red-team round 22: ccxt writes its margin mode (`cross` unless defaultMarginMode says
  // otherwise) into a spot `conditional`/`oco` algo order, the agent refuses `cross` on a spot
  // pair as a margin order, and a bot's ordinary stop-loss was refused.
  const signs = [];
  const fake = await fakeAgent(serve((msg) => {
    const { type, key, kind, ...request } = msg;
    void key;
    void kind;
    if (type === 'sign') signs.push(request);
    return { type: 'signed', ...request, headers: { 'OK-ACCESS-KEY': 'k', 'OK-ACCESS-SIGN': 's' } };
  }));
  try {
    const ex = new ccxt.okx({ enableRateLimit: false });
    ex.setMarkets([h.spot(ex, { id: 'BTC-USDT', base: 'BTC', quote: 'USDT', info: { instType: 'SPOT' } })]);
    ex.uuid16 = () => h.FIXED.uuid16;
    const answer = [{ algoId: '1', algoClOrdId: '', clOrdId: '', sCode: '0', sMsg: '', tag: '' }];
    const sent = h.record(ex, () => ({ code: '0', msg: '', data: answer }));
    const plain = new ccxt.okx({ enableRateLimit: false });
    plain.setMarkets(Object.values(ex.markets));
    plain.uuid16 = ex.uuid16;
    const ccxtWrote = (args) => plain.json(plain.createOrderRequest(...args));
    attach(ex, { key: 'okx-main', path: fake.path });

    const orders = [
      ['BTC/USDT', 'market', 'sell', 1, undefined, { stopLossPrice: 55000 }],
      ['BTC/USDT', 'limit', 'sell', 1, 70000, { takeProfitPrice: 69000 }],
      // ccxt sends an `oco` to the algo endpoint for type 'oco' only.
      ['BTC/USDT', 'oco', 'sell', 1, undefined, { stopLossPrice: 55000, takeProfitPrice: 69000 }],
    ];
    for (const args of orders) {
      const wrote = ccxtWrote(args);
      assert.match(wrote, /"tdMode":"cross"/, 'ccxt writes cross for a spot conditional order');
      await ex.createOrder(...args);
      const asked = signs.at(-1);
      assert.equal(asked.path, '/api/v5/trade/order-algo');
      // The one value changed, every other byte as ccxt wrote it; sent as signed.
      assert.equal(asked.body, wrote.replace('"tdMode":"cross"', '"tdMode":"cash"'));
      assert.equal(sent.at(-1).body, asked.body);
    }

    // A bot that asked for margin: ccxt puts `ccy` in, and the body goes to the agent as it is
    // (which refuses it unless the key's config says `margin = true`).
    const margin = ['BTC/USDT', 'market', 'sell', 1, undefined, { stopLossPrice: 55000, marginMode: 'cross' }];
    const wrote = ccxtWrote(margin);
    await ex.createOrder(...margin);
    assert.equal(signs.at(-1).body, wrote);
    assert.match(wrote, /"tdMode":"cross"/);
    assert.match(wrote, /"ccy":"BTC"/);
  } finally {
    await fake.close();
  }
});
