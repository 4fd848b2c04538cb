'use strict';
// What ccxt adds to a private request for each exchange, and how to take it off again.
//
// ccxt builds the request (URL, parameters, body, its own broker ids) with placeholder
// credentials; each scheme here removes what ccxt's signing added — its timestamp or nonce,
// its signature, its auth headers — and leaves the bytes the agent is to sign. The agent
// appends its own stamp and signature (docs/exchanges.md says where, per exchange), and the
// adapter sends its answer byte for byte.

const crypto = require('node:crypto');

const { BadRequest } = require('../errors');

/** `https://host/p/a/t/h?q` → { origin, path, query }, by string, so no byte is re-encoded. */
function splitUrl(url) {
  const scheme = url.indexOf('://');
  const slash = url.indexOf('/', scheme < 0 ? 0 : scheme + 3);
  const origin = slash < 0 ? url : url.slice(0, slash);
  const rest = slash < 0 ? '/' : url.slice(slash);
  const q = rest.indexOf('?');
  return q < 0
    ? { origin, path: rest, query: '' }
    : { origin, path: rest.slice(0, q), query: rest.slice(q + 1) };
}

function findHeader(headers, name) {
  const lower = name.toLowerCase();
  return Object.keys(headers || {}).find((k) => k.toLowerCase() === lower);
}

function withoutHeaders(headers, names) {
  const drop = new Set(names.map((n) => n.toLowerCase()));
  const out = {};
  for (const [k, v] of Object.entries(headers || {})) {
    if (!drop.has(k.toLowerCase())) out[k] = v;
  }
  return out;
}

/** `a=1&b=2` without the pairs whose name `drop(name)` picks; `&`-joined as before. */
function withoutParams(s, drop) {
  if (!s) return '';
  return s
    .split('&')
    .filter((piece) => !drop(piece.split('=', 1)[0]))
    .join('&');
}

// What a decoded value may not hold: '&', '=', '#', '%', '+' and whitespace could not be told
// apart from the query's own syntax (ccxt encodes a space as %20, so a literal '+' was a '+'),
// and fetch (WHATWG URL) encodes an apostrophe, a control or a non-ASCII character again on the
// way out, so the exchange would hash other bytes than the agent signed.
const NOT_UNENCODED = /[&=#%+'\s]|[^\x21-\x7e]/;
const REFUSED_UNENCODED = "& = # % + ' or a space, control or non-ASCII character";

/**
 * Upbit and Bithumb hash the query unencoded and want it sent the same way, and Gate and Bitget
 * verify it decoded (docs/exchanges.md, Upbit, Gate, Bitget); ccxt percent-encodes it. Decode it, unless a value would then
 * be ambiguous in a query string or changed by fetch on the way out.
 */
function unencodedQuery(query, exchange) {
  return query
    .split('&')
    .map((piece) =>
      piece
        .split('=')
        .map((part) => {
          let plain;
          try {
            plain = decodeURIComponent(part);
          } catch {
            plain = undefined;
          }
          if (plain === undefined || NOT_UNENCODED.test(plain)) {
            throw new BadRequest(
              `${exchange} signs the query unencoded, and ${JSON.stringify(part)} cannot be sent ` +
                `unencoded: a value there may not contain ${REFUSED_UNENCODED}`,
            );
          }
          return plain;
        })
        .join('='),
    )
    .join('&');
}

/** The request ccxt built, split; `query`/`body` are edited by the scheme. */
function base(req) {
  const { origin, path, query } = splitUrl(req.url);
  return {
    origin,
    method: req.method,
    path,
    query,
    body: req.body === undefined || req.body === null ? '' : String(req.body),
    hadBody: req.body !== undefined && req.body !== null,
    headers: req.headers || {},
  };
}

// Each scheme: `auth` names ccxt's auth headers (their presence marks a signed request);
// `unsign(req, exchange)` returns what the agent signs plus the headers ccxt set that stay;
// `finish(headers, signed, exchange)` adjusts the final headers, where ccxt adds something
// derived from the signature's own inputs.
// `signedMarketReads`: ccxt's loadMarkets makes signed account reads whenever the instance
// holds credentials (the placeholders count); attach turns them off (skipSignedMarketReads).
const SCHEMES = {
  upbit: {
    auth: ['Authorization'],
    unsign(req) {
      const r = base(req);
      r.query = unencodedQuery(r.query, 'Upbit');
      r.headers = withoutHeaders(r.headers, this.auth);
      return r;
    },
  },

  bithumb: {
    // API 2.0 (JWT) and the legacy API's headers; the agent signs only API 2.0 and refuses the
    // legacy one with a message that says so.
    auth: ['Authorization', 'Api-Key', 'Api-Sign', 'Api-Nonce'],
    unsign(req) {
      const r = base(req);
      r.query = unencodedQuery(r.query, 'Bithumb');
      r.headers = withoutHeaders(r.headers, this.auth);
      return r;
    },
  },

  binance: {
    auth: ['X-MBX-APIKEY'],
    // GET /sapi/v1/capital/config/getall, /sapi/v1/margin/allPairs, .../isolated/allPairs
    signedMarketReads: true,
    // ccxt's binance `sign` sends these (its `path`, under any of its API families: listenKey
    // on /fapi, /dapi, /eapi, /papi; userDataStream on /api and /sapi; userListenToken;
    // historicalTrades) with the API key alone, no timestamp and no signature. They are not
    // the agent's to sign: Binance refuses the parameters the agent would add (-1104), and a
    // config entry for one would make its signatures good on every endpoint taking the same
    // parameters. So they go out as ccxt builds them, with the real API key, learnt from a
    // signed answer (if none yet, from `probes`, balance reads signed and never sent, the
    // call's own API family first: a futures key's `only` list refuses the spot read). ccxt
    // signs the paths that merely end like these (`equity/listenKey`,
    // `userDataStream/isolated`), and so they go to the agent.
    keyOnly: {
      paths: new Set(['historicalTrades', 'userDataStream', 'listenKey', 'userListenToken']),
      header: 'X-MBX-APIKEY',
      probes: [
        ['/fapi/', 'GET', '/fapi/v2/balance'],
        ['/dapi/', 'GET', '/dapi/v1/balance'],
        ['/api/', 'GET', '/api/v3/account'],
      ],
    },
    unsign(req) {
      // ccxt writes `timestamp=<its clock>&<params>&signature=<hmac>` into the query (GET,
      // DELETE) or the body; the agent appends its own `timestamp` and `signature`.
      const r = base(req);
      const ccxtAuth = (name) => name === 'timestamp' || name === 'signature';
      r.query = withoutParams(r.query, ccxtAuth);
      r.body = withoutParams(r.body, ccxtAuth);
      r.headers = withoutHeaders(r.headers, this.auth);
      return r;
    },
  },

  bybit: {
    auth: ['X-BAPI-API-KEY', 'X-BAPI-TIMESTAMP', 'X-BAPI-RECV-WINDOW', 'X-BAPI-SIGN', 'X-BAPI-SIGN-TYPE'],
    signedMarketReads: true, // GET /v5/asset/coin/query-info
    unsign(req) {
      const r = base(req);
      r.headers = withoutHeaders(r.headers, this.auth);
      return r;
    },
  },

  okx: {
    auth: ['OK-ACCESS-KEY', 'OK-ACCESS-PASSPHRASE', 'OK-ACCESS-TIMESTAMP', 'OK-ACCESS-SIGN'],
    signedMarketReads: true, // GET /api/v5/asset/currencies
    unsign(req) {
      const r = base(req);
      r.body = okxSpotAlgoCash(r.method, r.path, r.body);
      r.headers = withoutHeaders(r.headers, this.auth);
      return r;
    },
  },

  coinbase: {
    auth: ['Authorization', 'CB-ACCESS-KEY', 'CB-ACCESS-SIGN', 'CB-ACCESS-TIMESTAMP'],
    unsign(req) {
      const r = base(req);
      r.headers = withoutHeaders(r.headers, this.auth);
      return r;
    },
  },

  kraken: {
    auth: ['API-Key', 'API-Sign'],
    unsign(req) {
      // ccxt puts `nonce` first in the body, form or JSON; the agent writes its own there.
      const r = base(req);
      if (r.body.startsWith('{')) {
        r.body = r.body.replace(/^\{"nonce":"?\d+"?,?/, '{');
      } else {
        r.body = withoutParams(r.body, (name) => name === 'nonce');
      }
      r.headers = withoutHeaders(r.headers, this.auth);
      return r;
    },
  },

  gate: {
    // Gate verifies the query decoded (docs/exchanges.md, Gate), and the agent takes it
    // unencoded: as for Upbit, the query ccxt encoded is decoded, and sent as signed.
    auth: ['KEY', 'Timestamp', 'SIGN'],
    unsign(req) {
      const r = base(req);
      r.query = unencodedQuery(r.query, 'Gate');
      r.headers = withoutHeaders(r.headers, this.auth);
      return r;
    },
  },

  kucoin: {
    auth: [
      'KC-API-KEY',
      'KC-API-SIGN',
      'KC-API-TIMESTAMP',
      'KC-API-PASSPHRASE',
      'KC-API-KEY-VERSION',
      'KC-API-PARTNER-SIGN',
    ],
    unsign(req) {
      const r = base(req);
      r.headers = withoutHeaders(r.headers, this.auth);
      return r;
    },
    // ccxt's broker attribution: KC-API-PARTNER-SIGN = base64(HMAC-SHA256(partner key,
    // timestamp + partner id + API key)), keyed with ccxt's public partner key, never the
    // trader's secret. Recomputed with the agent's timestamp and API key.
    finish(headers, signed, exchange) {
      const idName = findHeader(headers, 'KC-API-PARTNER');
      if (!idName) return headers;
      const id = headers[idName];
      const secret = partnerSecret(exchange.options && exchange.options.partner, id);
      const ts = signed.headers['KC-API-TIMESTAMP'];
      const apiKey = signed.headers['KC-API-KEY'];
      if (!secret || ts === undefined || apiKey === undefined) {
        return withoutHeaders(headers, ['KC-API-PARTNER', 'KC-API-PARTNER-VERIFY', 'KC-BROKER-NAME']);
      }
      const sign = crypto.createHmac('sha256', secret).update(ts + id + apiKey).digest('base64');
      return { ...headers, 'KC-API-PARTNER-SIGN': sign };
    },
  },

  bitget: {
    // Bitget verifies the query decoded, as ccxt signs it (docs/exchanges.md, Bitget): taken
    // unencoded, as Gate's (red-team round 22: signed encoded, a value that needs encoding was
    // signed over other bytes than Bitget hashes).
    auth: ['ACCESS-KEY', 'ACCESS-SIGN', 'ACCESS-TIMESTAMP', 'ACCESS-PASSPHRASE'],
    unsign(req) {
      const r = base(req);
      r.query = unencodedQuery(r.query, 'Bitget');
      r.headers = withoutHeaders(r.headers, this.auth);
      return r;
    },
  },
};

/**
 * ccxt's OKX spot stop-loss or take-profit with the `tdMode` it meant: `cash`.
 *
 * ccxt 4.5 writes `tdMode` `cash` for a spot order, then overwrites it with its margin mode
 * (`options.defaultMarginMode`, `cross` unless set) on `conditional` and `oco` algo orders
 * (what `stopLossPrice` and `takeProfitPrice` place), citing an OKX error 51000 of old. On a
 * spot pair `cross` is a margin order, which borrows what the balance does not cover, and the
 * agent refuses it unless the key's config says `margin = true` (docs/policy.md, "Borrowing"):
 * a bot's ordinary stop-loss was refused (red-team round 22). ccxt puts `ccy` in whenever
 * margin was asked for (`marginMode` or `margin` in params), so a body without it is a spot
 * order that asked for none: `cash` goes to the agent instead, that one value changed and
 * every other byte as ccxt wrote it (the agent signs what is sent). A body that asked for
 * margin, or any other, is left as it is. The Python adapter does the same.
 */
function okxSpotAlgoCash(method, path, body) {
  if (method !== 'POST' || path !== '/api/v5/trade/order-algo') return body;
  let order;
  try {
    order = JSON.parse(body);
  } catch {
    return body;
  }
  if (!order || typeof order !== 'object' || Array.isArray(order)) return body;
  const { instId, tdMode, ordType } = order;
  const spotPair = typeof instId === 'string' && /^[^-]+-[^-]+$/.test(instId);
  if (
    !spotPair ||
    !['cross', 'isolated'].includes(tdMode) ||
    !['conditional', 'oco'].includes(ordType) ||
    Object.prototype.hasOwnProperty.call(order, 'ccy')
  ) {
    return body;
  }
  // One `tdMode`, written as ccxt writes it: the bytes to change are that value's alone.
  const was = `"tdMode":${JSON.stringify(tdMode)}`;
  const at = body.indexOf(was);
  if (at < 0 || body.split('"tdMode"').length !== 2) return body;
  const cash = body.slice(0, at) + '"tdMode":"cash"' + body.slice(at + was.length);
  // Only ccxt's compact JSON is edited: the result must read as the same order with `cash`.
  let edited;
  try {
    edited = JSON.parse(cash);
  } catch {
    return body;
  }
  return JSON.stringify(edited) === JSON.stringify({ ...order, tdMode: 'cash' }) ? cash : body;
}

function partnerSecret(partner, id) {
  if (!partner || typeof partner !== 'object') return undefined;
  for (const p of [partner.spot, partner.future, partner]) {
    if (p && typeof p === 'object' && p.id === id) return p.secret || p.key;
  }
  return undefined;
}

// ccxt ids whose keys the agent signs as one of its ten exchanges: exactly these ids, not the
// classes ccxt derives from them for other companies' hosts (binanceus, bybiteu, bybitid,
// gateeu). The Python adapter's IDS is the same table.
const BY_CCXT_ID = {
  upbit: 'upbit',
  bithumb: 'bithumb',
  binance: 'binance',
  binanceusdm: 'binance',
  binancecoinm: 'binance',
  bybit: 'bybit',
  okx: 'okx',
  myokx: 'okx',
  okxus: 'okx',
  coinbase: 'coinbase',
  coinbaseadvanced: 'coinbase',
  kraken: 'kraken',
  gate: 'gate',
  gateio: 'gate',
  kucoin: 'kucoin',
  kucoinfutures: 'kucoin',
  bitget: 'bitget',
};

module.exports = {
  SCHEMES,
  base,
  BY_CCXT_ID,
  splitUrl,
  findHeader,
  withoutHeaders,
  withoutParams,
  unencodedQuery,
  REFUSED_UNENCODED,
};
