'use strict';
// Which request a `signed` answer is for. The agent returns the bot's method and path, and its
// query and body unchanged but for two schemes (docs/protocol.md, agent/src/sign/*.rs):
// Binance appends parameters, Kraken puts its nonce first. An answer that is none of these is
// another request's, read on a connection out of step, and must not be sent as the bot's own.
// The answer does not name the key: the same request signed with another key passes.

const { ProtocolError } = require('./errors');

/** Throws a ProtocolError unless `reply` (a well-formed `signed`) answers the `sign` `sent`. */
function checkAnswers(sent, reply) {
  if (reply.method !== sent.method || reply.path !== sent.path) {
    throw notOurs(`${reply.method} ${reply.path.slice(0, 80)}`, `${sent.method} ${sent.path.slice(0, 80)}`);
  }
  if (sent.kind === 'ws_login') {
    // The login message is the body; the agent adds no query and no headers.
    if (reply.query !== '' || Object.keys(reply.headers).length > 0) {
      throw new ProtocolError(
        "the agent's ws_login answer has a query or headers, which a login never has: it is not the answer to this request",
      );
    }
    return reply;
  }
  const got = [reply.query, reply.body];
  if ((got[0] === sent.query && got[1] === sent.body) || binanceShape(sent, got) || krakenShape(sent, got)) {
    return reply;
  }
  const part = reply.query !== sent.query ? 'query' : 'body';
  throw notOurs(`${part} ${JSON.stringify(reply[part].slice(0, 80))}`, `${part} ${JSON.stringify(sent[part].slice(0, 80))}`);
}

function notOurs(got, sent) {
  return new ProtocolError(
    `the agent's signed answer (${got}) is not the answer to this request (${sent}): the connection is out of step, and it is closed`,
  );
}

// Binance (agent/src/sign/binance.rs): the agent appends `recvWindow` (only when the bot sent
// none), `timestamp` (only when the bot sent none) and always `signature`, in that order, to the
// body when there is one, else to the query. The signature is lowercase hex HMAC-SHA256, or an
// Ed25519 signature in base64 with `+`, `/`, `=` percent-encoded.
const BINANCE_ADDED =
  /^(recvWindow=[0-9]+&)?(timestamp=[0-9]+&)?signature=(?:[0-9a-f]{64}|(?:[A-Za-z0-9]|%2B|%2F){86}%3D%3D)$/;

function binanceShape(sent, [query, body]) {
  const inBody = sent.body !== '';
  const mine = inBody ? sent.body : sent.query;
  if ((inBody ? query : body) !== (inBody ? sent.query : sent.body)) return false;
  let added = inBody ? body : query;
  if (mine !== '') {
    if (!added.startsWith(`${mine}&`)) return false;
    added = added.slice(mine.length + 1);
  }
  const m = BINANCE_ADDED.exec(added);
  if (m === null) return false;
  // Names as the agent finds them: percent-decoded once, compared without ASCII case.
  const names = new Set(
    [sent.query, sent.body].flatMap((part) => part.split('&').filter((p) => p !== '').map(paramName)),
  );
  if (m[1] !== undefined && names.has('recvwindow')) return false;
  return (m[2] === undefined) === names.has('timestamp');
}

/** A parameter's name as agent/src/sign/form.rs decodes it: `%XX` once, a broken escape kept. */
function paramName(pair) {
  const raw = Buffer.from(pair.split('=', 1)[0], 'utf8');
  const out = [];
  for (let i = 0; i < raw.length; i++) {
    const hex = raw[i] === 0x25 ? raw.subarray(i + 1, i + 3).toString('latin1') : '';
    if (/^[0-9a-fA-F]{2}$/.test(hex)) {
      out.push(parseInt(hex, 16));
      i += 2;
    } else {
      out.push(raw[i]);
    }
  }
  const name = Buffer.from(out).toString('utf8');
  return /^[\x00-\x7f]*$/.test(name) ? name.toLowerCase() : name;
}

// Kraken (agent/src/sign/kraken.rs): POST with no query; the agent's nonce goes first in the
// body, `nonce=<n>&` before a form body, `"nonce":"<n>"` as the first member of a JSON object.
// It signs only a JSON body that parses, so the spaces it trims there are JSON's. On a method
// that places or changes an order, the agent's `deadline` follows the nonce (`&deadline=<time>`,
// its colons as %3A, or `,"deadline":"<time>"`), exactly when the bot's body has none.
const JSON_SPACE = /^[ \t\n\r]*/;
const time = (colon) => `[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}${colon}[0-9]{2}${colon}[0-9]{2}Z`;
const KRAKEN_FORM_STAMPS = new RegExp(`^[0-9]+(&deadline=${time('%3A')})?$`);
const KRAKEN_JSON_STAMPS = new RegExp(`^[0-9]+(","deadline":"${time(':')})?$`);
const KRAKEN_ORDERS = new Set(['/0/private/AddOrder', '/0/private/AddOrderBatch', '/0/private/AmendOrder', '/0/private/EditOrder']);

function krakenShape(sent, [query, signed]) {
  if (sent.method !== 'POST' || sent.query !== '' || query !== '') return false;
  const trimmed = sent.body.replace(JSON_SPACE, '');
  let head;
  let tail;
  let stamps;
  let names;
  if (trimmed.startsWith('{')) {
    const rest = trimmed.slice(1).replace(JSON_SPACE, '');
    head = '{"nonce":"';
    tail = `"${rest.startsWith('}') ? '' : ','}${rest}`;
    stamps = KRAKEN_JSON_STAMPS;
    try {
      names = new Set(Object.keys(JSON.parse(sent.body)).map((k) => k.toLowerCase()));
    } catch {
      names = new Set();
    }
  } else {
    head = 'nonce=';
    tail = sent.body === '' ? '' : `&${sent.body}`;
    stamps = KRAKEN_FORM_STAMPS;
    names = new Set(sent.body.split('&').filter((p) => p !== '').map(paramName));
  }
  if (!signed.startsWith(head) || !signed.endsWith(tail) || signed.length < head.length + tail.length) return false;
  const m = stamps.exec(signed.slice(head.length, signed.length - tail.length));
  if (m === null) return false;
  const stamped = KRAKEN_ORDERS.has(sent.path) && !names.has('deadline');
  return (m[1] !== undefined) === stamped;
}

module.exports = { checkAnswers };
