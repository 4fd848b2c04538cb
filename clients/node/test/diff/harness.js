'use strict';
// The differential harness. For one ccxt call on one exchange:
//
// 1. ccxt with the adapter attached (placeholder credentials) runs the call; every HTTP
//    request is captured at ccxt's fetch layer (`fetchImplementation`) and answered with
//    canned JSON: nothing leaves the machine.
// 2. Each captured request must pass the independent check of the exchange's scheme
//    (verify.js), which also reads the agent's stamp (timestamp, nonce) out of it.
// 3. ccxt itself, with the real secret and its clock, nonce and uuid patched to the agent's
//    stamp, runs the same call against the same canned answers.
// 4. The exchange's test compares the two request by request: every field equal, except the
//    differences it names (another API version, another claim layout, parameter order).

const assert = require('node:assert/strict');

const { attach } = require('../../lib/ccxt');
const verify = require('./verify');

let ccxt;
function loadCcxt() {
  if (!ccxt) {
    try {
      ccxt = require('ccxt');
    } catch (e) {
      throw new Error(`ccxt is not installed (run ./run-tests, which installs the pinned version): ${e.message}`);
    }
  }
  return ccxt;
}

// Client order ids ccxt draws at random (broker prefixes + uuid): fixed in both runs, so the
// bodies can be compared byte for byte. They are not part of any signature scheme.
const FIXED = {
  uuid: '5f0e2c4a-1b3d-4c5e-8f60-718293a4b5c6',
  uuid16: '0123456789abcdef',
  uuid22: '0123456789abcdefghijkl',
};

/** A ccxt instance of `spec.id` with `spec`'s markets, rate limiter off, ids fixed. */
function build(spec, credentials) {
  const Exchange = loadCcxt()[spec.id];
  const ex = new Exchange({ enableRateLimit: false, ...structuredClone(spec.config || {}), ...credentials });
  ex.setMarkets(spec.markets(ex));
  ex.uuid = () => FIXED.uuid;
  ex.uuid16 = () => FIXED.uuid16;
  ex.uuid22 = () => FIXED.uuid22;
  return ex;
}

/** Capture every request at ccxt's fetch layer and answer it from `respond`. */
function record(ex, respond) {
  const sent = [];
  ex.fetchImplementation = async (url, params) => {
    const req = {
      url,
      method: params.method,
      headers: { ...params.headers },
      body: params.body,
    };
    sent.push(req);
    const answer = respond(req);
    return new Response(JSON.stringify(answer), {
      status: 200,
      headers: { 'content-type': 'application/json' },
    });
  };
  return sent;
}

/** Make `ex` see the agent's stamp of request `i` while it builds request `i`. */
function patchClock(ex, stamps, sent) {
  const stamp = () => stamps[Math.min(sent.length, stamps.length - 1)];
  ex.milliseconds = () => {
    const s = stamp();
    if (s.ms !== undefined) return s.ms;
    if (s.nonce !== undefined) return s.nonce;
    return Date.now();
  };
  ex.seconds = () => Math.floor(ex.milliseconds() / 1000);
  ex.microseconds = () => ex.milliseconds() * 1000;
  ex.uuid = () => stamp().uuid || FIXED.uuid;
}

/**
 * Run `op` both ways; return { agent: [...requests], ccxt: [...requests], stamps, results }.
 * `spec`: { id, scheme, key (tapsign key name), credentials, config, markets(ex), respond(req) }.
 */
async function differential(world, spec, op) {
  const adapted = build(spec, {});
  attach(adapted, { key: spec.key, path: world.sock });
  const viaAgent = record(adapted, spec.respond);
  const agentResult = await op(adapted);
  assert.ok(viaAgent.length > 0, 'the call sent no request');

  const stamps = viaAgent.map((req) => {
    const stamp = verify[spec.scheme](req, spec.credentials);
    if (stamp.ms !== undefined) verify.freshMs(stamp.ms);
    return stamp;
  });

  const reference = build(spec, spec.credentials);
  const viaCcxt = record(reference, spec.respond);
  patchClock(reference, stamps, viaCcxt);
  const ccxtResult = await op(reference);
  assert.equal(viaCcxt.length, viaAgent.length, 'both runs send the same number of requests');
  for (let i = 0; i < viaAgent.length; i++) {
    assert.equal(viaAgent[i].method, viaCcxt[i].method, `request ${i}: method`);
  }
  // The same canned answers went through the same parser.
  assert.deepEqual(stripVolatile(agentResult), stripVolatile(ccxtResult));
  return { agent: viaAgent, ccxt: viaCcxt, stamps, result: agentResult };
}

/** Fields ccxt fills from its own clock when an answer lacks them. */
function stripVolatile(x) {
  return JSON.parse(
    JSON.stringify(x === undefined ? null : x, (k, val) =>
      ['timestamp', 'datetime', 'lastUpdateTimestamp'].includes(k) ? undefined : val,
    ),
  );
}

/** Headers as sent, without the names in `except` (compared apart). */
function headersWithout(headers, except) {
  const drop = new Set(except.map((h) => h.toLowerCase()));
  return Object.fromEntries(Object.entries(headers).filter(([k]) => !drop.has(k.toLowerCase())));
}

/** Every field equal: url, method, body, and every header. */
function assertSame(agentReq, ccxtReq, what) {
  assert.equal(agentReq.url, ccxtReq.url, `${what}: url`);
  assert.equal(agentReq.method, ccxtReq.method, `${what}: method`);
  assert.equal(agentReq.body, ccxtReq.body, `${what}: body`);
  assert.deepEqual(agentReq.headers, ccxtReq.headers, `${what}: headers`);
}

// Markets, as ccxt's unified structure, with precision in the instance's precision mode.
const TICK_SIZE = 4;
function precision(ex, amountTick, priceTick) {
  if (ex.precisionMode === TICK_SIZE) return { amount: amountTick, price: priceTick };
  const digits = (t) => Math.max(0, -Math.floor(Math.log10(t)));
  return { amount: digits(amountTick), price: Math.max(digits(priceTick), 8) };
}

function spot(ex, { id, base, quote, baseId = base, quoteId = quote, amountTick = 0.00001, priceTick = 0.01, info = {} }) {
  return {
    id,
    symbol: `${base}/${quote}`,
    base,
    quote,
    baseId,
    quoteId,
    type: 'spot',
    spot: true,
    margin: false,
    swap: false,
    future: false,
    option: false,
    contract: false,
    active: true,
    precision: precision(ex, amountTick, priceTick),
    limits: { amount: {}, price: {}, cost: {} },
    info,
  };
}

function linearSwap(ex, { id, base, quote, settle = quote, amountTick = 0.001, priceTick = 0.1, contractSize = 1, info = {} }) {
  return {
    ...spot(ex, { id, base, quote, amountTick, priceTick, info }),
    symbol: `${base}/${quote}:${settle}`,
    settle,
    settleId: settle,
    type: 'swap',
    spot: false,
    swap: true,
    contract: true,
    linear: true,
    inverse: false,
    contractSize,
  };
}

module.exports = {
  differential,
  build,
  record,
  headersWithout,
  assertSame,
  spot,
  linearSwap,
  loadCcxt,
  FIXED,
};
