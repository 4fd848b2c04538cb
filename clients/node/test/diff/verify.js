'use strict';
// Independent checks of each exchange's signing scheme, written from the schemes' definitions
// in docs/exchanges.md (sources: docs/sources.md) with node:crypto only: nothing here
// comes from the agent, the adapter or ccxt. verify.test.js checks these functions against
// the exchanges' published vectors before they are trusted with the agent's output.

const assert = require('node:assert/strict');
const crypto = require('node:crypto');

const hmac = (alg, key, msg, enc) => crypto.createHmac(alg, key).update(msg).digest(enc);
const sha512hex = (s) => crypto.createHash('sha512').update(s).digest('hex');
const b64url = (buf) => Buffer.from(buf).toString('base64url');

/** `https://host/p?q` → { path, query } by string. */
function parts(url) {
  const rest = url.slice(url.indexOf('/', url.indexOf('://') + 3));
  const q = rest.indexOf('?');
  return q < 0 ? { path: rest, query: '' } : { path: rest.slice(0, q), query: rest.slice(q + 1) };
}

function header(headers, name) {
  const k = Object.keys(headers).find((h) => h.toLowerCase() === name.toLowerCase());
  assert.ok(k, `header ${name} is missing from ${JSON.stringify(Object.keys(headers))}`);
  return headers[k];
}

/** A JWT's three parts, decoded; the claims keep their byte order. */
function jwtParts(token) {
  const [h, p, s] = token.split('.');
  assert.ok(h && p && s, `not a JWT: ${token}`);
  return {
    signingInput: `${h}.${p}`,
    headerJson: Buffer.from(h, 'base64url').toString(),
    payloadJson: Buffer.from(p, 'base64url').toString(),
    payloadB64: p,
    headerB64: h,
    signature: Buffer.from(s, 'base64url'),
  };
}

/** `k=v&...` of a JSON object's top-level pairs in body order, arrays as `k[]=v` (Upbit's rule). */
function bodyPairs(body) {
  // Parsed by hand so the order is the body's even for keys that look like integers.
  const obj = JSON.parse(body);
  const keys = [...body.matchAll(/"((?:[^"\\]|\\.)*)"\s*:/g)].map((m) => JSON.parse(`"${m[1]}"`));
  const top = keys.filter((k, i) => keys.indexOf(k) === i && Object.prototype.hasOwnProperty.call(obj, k));
  const out = [];
  for (const k of top) {
    const v = obj[k];
    if (Array.isArray(v)) for (const x of v) out.push(`${k}[]=${x}`);
    else out.push(`${k}=${v}`);
  }
  return out.join('&');
}

/** Upbit and Bithumb: the string whose SHA-512 is `query_hash`, or undefined without params. */
function hashedParams(method, query, body) {
  if (['POST', 'PUT', 'PATCH'].includes(method) && body) return bodyPairs(body) || undefined;
  return query || undefined;
}

function freshMs(ms, slackMs = 120_000) {
  assert.ok(Math.abs(Date.now() - Number(ms)) < slackMs, `time ${ms} is not within ${slackMs} ms of now`);
}

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

// Each verifier takes the request as sent ({ url, method, headers, body }) and the key, throws
// when the request is not signed as the exchange defines it, and returns the stamp it carries
// ({ ms } or { nonce }); the caller checks the stamp is fresh.

/** The Upbit/Bithumb JWT: claims in the documented order, HMAC keyed with the raw secret. */
function jwtHs(req, { apiKey, secret }, alg, hash) {
  const token = header(req.headers, 'Authorization').replace(/^Bearer /, '');
  const j = jwtParts(token);
  assert.equal(j.headerJson, JSON.stringify({ alg, typ: 'JWT' }));
  const claims = JSON.parse(j.payloadJson);
  const { query } = parts(req.url);
  const params = hashedParams(req.method, query, req.body || '');
  const want = { access_key: apiKey, nonce: claims.nonce };
  if (alg === 'HS256') want.timestamp = claims.timestamp;
  if (params !== undefined) {
    want.query_hash = sha512hex(params);
    want.query_hash_alg = 'SHA512';
  }
  assert.equal(j.payloadJson, JSON.stringify(want), 'claims, in the documented order');
  assert.match(claims.nonce, UUID_V4);
  assert.deepEqual(j.signature, hmac(hash, secret, j.signingInput));
  return claims;
}

/** Upbit: JWT HS512 over {access_key, nonce, query_hash, query_hash_alg}. */
function upbit(req, key) {
  return { uuid: jwtHs(req, key, 'HS512', 'sha512').nonce };
}

/** Bithumb API 2.0: Upbit's model, HS256, plus a `timestamp` claim in ms. */
function bithumb(req, key) {
  const claims = jwtHs(req, key, 'HS256', 'sha256');
  assert.equal(typeof claims.timestamp, 'number');
  return { uuid: claims.nonce, ms: claims.timestamp };
}

/** Binance: hex HMAC-SHA256 over query ‖ body; `signature` last; API key header. */
function binance(req, { apiKey, secret }) {
  assert.equal(header(req.headers, 'X-MBX-APIKEY'), apiKey);
  const { query } = parts(req.url);
  const body = req.body || '';
  const carrier = body ? body : query;
  const m = /^(.*)&signature=([0-9a-f]{64})$/.exec(carrier);
  assert.ok(m, `signature is not the last parameter of ${carrier}`);
  const payload = body ? query + m[1] : m[1];
  assert.equal(m[2], hmac('sha256', secret, payload, 'hex'));
  const ts = /(?:^|&)timestamp=(\d+)/.exec(payload);
  assert.ok(ts, 'a timestamp is signed');
  return { ms: Number(ts[1]) };
}

/** Bybit v5: hex HMAC-SHA256 over ts + key + recvWindow + (query | body). */
function bybit(req, { apiKey, secret }) {
  const ts = header(req.headers, 'X-BAPI-TIMESTAMP');
  const recv = header(req.headers, 'X-BAPI-RECV-WINDOW');
  assert.equal(header(req.headers, 'X-BAPI-API-KEY'), apiKey);
  const { query } = parts(req.url);
  const payload = req.method === 'POST' ? req.body || '' : query;
  assert.equal(header(req.headers, 'X-BAPI-SIGN'), hmac('sha256', secret, ts + apiKey + recv + payload, 'hex'));
  return { ms: Number(ts) };
}

/** OKX v5: base64 HMAC-SHA256 over isoTs + METHOD + path(?query) + body. */
function okx(req, { apiKey, secret, password }) {
  const ts = header(req.headers, 'OK-ACCESS-TIMESTAMP');
  assert.match(ts, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  const { path, query } = parts(req.url);
  const pre = ts + req.method + path + (query ? `?${query}` : '') + (req.body || '');
  assert.equal(header(req.headers, 'OK-ACCESS-SIGN'), hmac('sha256', secret, pre, 'base64'));
  assert.equal(header(req.headers, 'OK-ACCESS-KEY'), apiKey);
  assert.equal(header(req.headers, 'OK-ACCESS-PASSPHRASE'), password);
  return { ms: Date.parse(ts) };
}

/** Coinbase CDP: JWT ES256, header {alg,kid,nonce,typ}, claims {sub,iss,nbf,exp,uri}. */
function coinbase(req, { apiKey, secret }) {
  const token = header(req.headers, 'Authorization').replace(/^Bearer /, '');
  const j = jwtParts(token);
  const h = JSON.parse(j.headerJson);
  assert.match(h.nonce, /^[0-9a-f]{64}$/);
  assert.equal(j.headerJson, JSON.stringify({ alg: 'ES256', kid: apiKey, nonce: h.nonce, typ: 'JWT' }));
  const c = JSON.parse(j.payloadJson);
  const { path } = parts(req.url);
  const want = { sub: apiKey, iss: 'cdp', nbf: c.nbf, exp: c.nbf + 120, uri: `${req.method} api.coinbase.com${path}` };
  assert.equal(j.payloadJson, JSON.stringify(want));
  const pub = crypto.createPublicKey(crypto.createPrivateKey(secret));
  assert.ok(
    crypto.verify('sha256', Buffer.from(j.signingInput), { key: pub, dsaEncoding: 'ieee-p1363' }, j.signature),
    'the ES256 signature verifies with the key',
  );
  return { ms: c.nbf * 1000, header: h, claims: c };
}

/** Kraken: base64 HMAC-SHA512(b64decode(secret), path ‖ SHA256(nonce + body)). */
function kraken(req, { apiKey, secret }) {
  const { path } = parts(req.url);
  const body = req.body || '';
  const nonce = body.startsWith('{') ? JSON.parse(body).nonce : /^nonce=(\d+)/.exec(body)[1];
  assert.match(String(nonce), /^\d+$/);
  const inner = crypto.createHash('sha256').update(nonce + body).digest();
  const want = hmac('sha512', Buffer.from(secret, 'base64'), Buffer.concat([Buffer.from(path), inner]), 'base64');
  assert.equal(header(req.headers, 'API-Sign'), want);
  assert.equal(header(req.headers, 'API-Key'), apiKey);
  return { nonce: Number(nonce) };
}

/** Gate APIv4: hex HMAC-SHA512 over METHOD\npath\nquery\nsha512(body)\nts. */
function gate(req, { apiKey, secret }) {
  const ts = header(req.headers, 'Timestamp');
  const { path, query } = parts(req.url);
  const pre = [req.method, path, query, sha512hex(req.body || ''), ts].join('\n');
  assert.equal(header(req.headers, 'SIGN'), hmac('sha512', secret, pre, 'hex'));
  assert.equal(header(req.headers, 'KEY'), apiKey);
  return { ms: Number(ts) * 1000 };
}

/** KuCoin: base64 HMAC-SHA256 over ts + METHOD + path(?query) + body; v2 passphrase. */
function kucoin(req, { apiKey, secret, password }) {
  const ts = header(req.headers, 'KC-API-TIMESTAMP');
  const { path, query } = parts(req.url);
  const pre = ts + req.method + path + (query ? `?${query}` : '') + (req.body || '');
  assert.equal(header(req.headers, 'KC-API-SIGN'), hmac('sha256', secret, pre, 'base64'));
  assert.equal(header(req.headers, 'KC-API-PASSPHRASE'), hmac('sha256', secret, password, 'base64'));
  assert.equal(header(req.headers, 'KC-API-KEY-VERSION'), '2');
  assert.equal(header(req.headers, 'KC-API-KEY'), apiKey);
  return { ms: Number(ts) };
}

/** Bitget: base64 HMAC-SHA256 over ts + METHOD + path(?query) + body; passphrase in clear. */
function bitget(req, { apiKey, secret, password }) {
  const ts = header(req.headers, 'ACCESS-TIMESTAMP');
  const { path, query } = parts(req.url);
  const pre = ts + req.method + path + (query ? `?${query}` : '') + (req.body || '');
  assert.equal(header(req.headers, 'ACCESS-SIGN'), hmac('sha256', secret, pre, 'base64'));
  assert.equal(header(req.headers, 'ACCESS-KEY'), apiKey);
  assert.equal(header(req.headers, 'ACCESS-PASSPHRASE'), password);
  if (query) {
    const names = query.split('&').map((p) => p.split('=')[0]);
    assert.deepEqual(names, [...names].sort(), 'Bitget wants the query sorted by name');
  }
  return { ms: Number(ts) };
}

module.exports = {
  upbit,
  bithumb,
  binance,
  bybit,
  okx,
  coinbase,
  kraken,
  gate,
  kucoin,
  bitget,
  parts,
  header,
  jwtParts,
  bodyPairs,
  hmac,
  sha512hex,
  b64url,
  freshMs,
};
