'use strict';
// The adapter's string surgery on ccxt's requests, case by case: nothing but ccxt's own
// auth comes off, and no byte of the rest is re-encoded.

const test = require('node:test');
const assert = require('node:assert/strict');

const { SCHEMES, splitUrl, withoutParams, unencodedQuery, REFUSED_UNENCODED } = require('../lib/ccxt/schemes');
const { BadRequest } = require('../lib/errors');

test('splitUrl cuts by string, leaving every byte of path and query as it was', () => {
  assert.deepEqual(splitUrl('https://api.upbit.com/v1/orders/open?market=KRW-BTC&states[]=wait'), {
    origin: 'https://api.upbit.com',
    path: '/v1/orders/open',
    query: 'market=KRW-BTC&states[]=wait',
  });
  assert.deepEqual(splitUrl('https://api.bybit.com/v5/order/realtime?'), {
    origin: 'https://api.bybit.com',
    path: '/v5/order/realtime',
    query: '',
  });
  assert.deepEqual(splitUrl('https://h/a%2Fb'), { origin: 'https://h', path: '/a%2Fb', query: '' });
});

test("binance: only ccxt's timestamp and signature come off, wherever they are", () => {
  const req = {
    url: 'https://api.binance.com/api/v3/order?timestamp=1&symbol=BTCUSDT&orderId=28&signature=ab',
    method: 'DELETE',
    headers: { 'X-MBX-APIKEY': 'placeholder', 'User-Agent': 'ua' },
  };
  const r = SCHEMES.binance.unsign(req);
  assert.equal(r.query, 'symbol=BTCUSDT&orderId=28');
  assert.deepEqual(r.headers, { 'User-Agent': 'ua' });
  assert.equal(r.hadBody, false);
  const post = SCHEMES.binance.unsign({ url: 'https://fapi.binance.com/fapi/v1/order', method: 'POST', body: 'timestamp=1&symbol=X&signatureX=keep&signature=ab', headers: {} });
  assert.equal(post.body, 'symbol=X&signatureX=keep');
  assert.equal(withoutParams('', () => true), '');
});

test("kraken: ccxt's leading nonce comes off a form or a JSON body", () => {
  const form = SCHEMES.kraken.unsign({ url: 'https://api.kraken.com/0/private/AddOrder', method: 'POST', body: 'nonce=123&pair=XBTUSD', headers: { 'API-Key': 'p', 'API-Sign': 's' } });
  assert.equal(form.body, 'pair=XBTUSD');
  assert.deepEqual(form.headers, {});
  const json = SCHEMES.kraken.unsign({ url: 'https://api.kraken.com/0/private/CancelOrderBatch', method: 'POST', body: '{"nonce":"123","orders":["A"]}', headers: {} });
  assert.equal(json.body, '{"orders":["A"]}');
  const bare = SCHEMES.kraken.unsign({ url: 'https://api.kraken.com/0/private/Balance', method: 'POST', body: 'nonce=123', headers: {} });
  assert.equal(bare.body, '');
});

test('upbit and bithumb: the query is sent unencoded, as they hash it', () => {
  assert.equal(unencodedQuery('market=KRW-BTC&limit=10', 'Upbit'), 'market=KRW-BTC&limit=10');
  assert.equal(unencodedQuery('states%5B%5D=wait&states%5B%5D=watch', 'Upbit'), 'states[]=wait&states[]=watch');
  assert.equal(unencodedQuery('pairs=KRW-BTC%2CKRW-ETH', 'Upbit'), 'pairs=KRW-BTC,KRW-ETH');
  for (const ambiguous of ['a=x%26y', 'a=x%3Dy', 'a=x%20y', 'a=x%2By', 'a=%E2%82%A9', 'a=%zz']) {
    assert.throws(() => unencodedQuery(ambiguous, 'Upbit'), BadRequest, ambiguous);
  }
});

test('upbit and bithumb: an apostrophe, which fetch would send as %27, is refused too', () => {
  // ccxt leaves an apostrophe unencoded (encodeURIComponent), and fetch encodes it.
  for (const q of ["identifier=o'1", 'identifier=o%271', 'identifier=x%23y', 'identifier=x+y', 'identifier=x%09y']) {
    assert.throws(
      () => unencodedQuery(q, 'Upbit'),
      (e) => e instanceof BadRequest && e.message.includes(`may not contain ${REFUSED_UNENCODED}`),
      q,
    );
  }
  // Every other printable ASCII character goes out as it is.
  assert.equal(unencodedQuery('a=x!*()~-._[],:;@$/?"<>{}|^`\\y', 'Upbit'), 'a=x!*()~-._[],:;@$/?"<>{}|^`\\y');
  assert.equal(unencodedQuery('', 'Upbit'), '');
});

test('header schemes drop exactly their auth headers, in any case', () => {
  const kept = { 'Content-Type': 'application/json', Referer: 'CCXT', 'X-CHANNEL-API-CODE': 'p4sve', 'KC-API-PARTNER': 'ccxt' };
  const cases = {
    bybit: ['X-BAPI-API-KEY', 'X-BAPI-TIMESTAMP', 'X-BAPI-RECV-WINDOW', 'X-BAPI-SIGN', 'X-BAPI-SIGN-TYPE'],
    okx: ['OK-ACCESS-KEY', 'OK-ACCESS-PASSPHRASE', 'OK-ACCESS-TIMESTAMP', 'OK-ACCESS-SIGN'],
    coinbase: ['Authorization'],
    gate: ['KEY', 'Timestamp', 'SIGN'],
    kucoin: ['KC-API-KEY', 'KC-API-SIGN', 'KC-API-TIMESTAMP', 'KC-API-PASSPHRASE', 'KC-API-KEY-VERSION', 'KC-API-PARTNER-SIGN'],
    bitget: ['ACCESS-KEY', 'ACCESS-SIGN', 'ACCESS-TIMESTAMP', 'ACCESS-PASSPHRASE'],
  };
  for (const [name, auth] of Object.entries(cases)) {
    const headers = { ...kept, ...Object.fromEntries(auth.map((h, i) => [i % 2 ? h.toLowerCase() : h, 'x'])) };
    const r = SCHEMES[name].unsign({ url: 'https://h/p?b=2&a=1', method: 'GET', headers });
    assert.deepEqual(r.headers, kept, name);
    assert.equal(r.query, 'b=2&a=1', name);
  }
});

test('gate: the query ccxt encoded is decoded, as Gate verifies it', () => {
  const r = SCHEMES.gate.unsign({ url: 'https://api.gateio.ws/api/v4/spot/orders?currency_pair=BTC_USDT&text=t-a%3Ab', method: 'GET', headers: {} });
  assert.equal(r.query, 'currency_pair=BTC_USDT&text=t-a:b');
  assert.throws(() => SCHEMES.gate.unsign({ url: 'https://h/p?a=x%26b%3D1', method: 'GET', headers: {} }), BadRequest);
});

test('kucoin: without a partner header or partner key, no partner signature is made up', () => {
  const signed = { headers: { 'KC-API-TIMESTAMP': '1', 'KC-API-KEY': 'k' } };
  assert.deepEqual(SCHEMES.kucoin.finish({ A: '1' }, signed, { options: {} }), { A: '1' });
  assert.deepEqual(
    SCHEMES.kucoin.finish({ 'KC-API-PARTNER': 'other', 'KC-API-PARTNER-VERIFY': 'true', A: '1' }, signed, { options: { partner: { spot: { id: 'ccxt', key: 'x' } } } }),
    { A: '1' },
  );
});
