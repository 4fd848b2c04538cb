'use strict';
// The Agent: the protocol's requests as async methods over one shared connection.
//
// Concurrency: calls on one Agent are queued and sent one after another on its connection,
// because the protocol answers in order and wants the next request only after the answer.
// `unlock` is the exception: it waits for a human touch, so it runs on a connection of its own
// and never holds up `sign` or `status` behind it. `events()` has its own connection too (a
// subscribed connection carries nothing else).
//
// Reconnecting: the connection opens on the first call. When the agent drops it (a restart,
// the idle-connection timeout), the next call opens a new one; a call whose reused connection
// turns out to be closed before any answer is sent once more on a fresh one. A fresh
// connection that fails is reported (AgentNotRunning, ConnectionLost), never retried in a loop.
// An answer out of step (of the wrong type, or a `signed` for another request) is a
// ProtocolError, and its connection is closed: what comes next on it is not ours either.

const { checkAnswers } = require('./answer');
const { open, expect } = require('./connection');
const { socketPath } = require('./socket');
const { ConnectionLost, ProtocolError } = require('./errors');
const { VERSION } = require('./version');

const DEFAULT_TIMEOUT_MS = 30_000;
const UNLOCK_FIELDS = ['keys', 'ttl_secs', 'idle_secs', 'max_signatures', 'token', 'pin', 'extend'];

/** What the agent returned for a `sign`: the request to send, exactly as given. */
class SignedRequest {
  constructor({ method, path, query, body, headers }) {
    this.method = method;
    this.path = path;
    this.query = query;
    this.body = body;
    this.headers = { ...headers };
  }

  /** `base` (scheme and host, e.g. `https://api.binance.com`) + path + `?query` when there is one. */
  url(base) {
    const host = String(base).replace(/\/+$/, '');
    return host + this.path + (this.query ? `?${this.query}` : '');
  }
}

class Agent {
  /**
   * @param {object} [options]
   * @param {string} [options.path] the socket; default: discovered as docs/protocol.md says, at each connect
   * @param {string} [options.client] names the bot in the agent's log (`mybot/1.2`)
   * @param {number} [options.timeout] ms to wait for an answer (not for unlock); 0 = no limit
   */
  constructor(options = {}) {
    checkOptions(options, ['path', 'client', 'timeout'], 'Agent');
    this._path = options.path;
    this.client = options.client || `tapsign-node/${VERSION}`;
    this.timeout = options.timeout === undefined ? DEFAULT_TIMEOUT_MS : options.timeout;
    this._conn = null;
    this._tail = Promise.resolve();
  }

  /** The socket this Agent connects to. */
  get path() {
    return this._path || socketPath();
  }

  /** Connect if needed; the agent's self-description from `hello` (`tapsign 0.1.0`). */
  hello() {
    return this._serial(async () => (await this._connection()).agent);
  }

  /** The agent's `status` (docs/protocol.md), without its `type`. Served while locked. */
  async status() {
    return stripType(await this._call({ type: 'status' }, 'status'));
  }

  /**
   * Open a session (or renew it with `extend: true`). Waits for a touch: no timeout unless
   * `options.timeout` says so. Runs on its own connection.
   * Options are the wire's: keys, ttl_secs, idle_secs, max_signatures, token, pin, extend.
   * `token` names the enrolled token to use, by id: the PIN goes to it alone.
   */
  async unlock(options = {}) {
    checkOptions(options, [...UNLOCK_FIELDS, 'timeout'], 'unlock');
    const msg = { type: 'unlock' };
    for (const f of UNLOCK_FIELDS) {
      if (options[f] !== undefined) msg[f] = options[f];
    }
    const timeout = options.timeout || 0;
    const conn = await open(this.path, this.client, this.timeout);
    try {
      return stripType(expect(await conn.request(msg, timeout), 'unlocked'));
    } finally {
      conn.close();
    }
  }

  /** End the session now (a no-op when locked). */
  async lock() {
    await this._call({ type: 'lock' }, 'locked');
  }

  /**
   * Ask the agent to sign what you are about to send.
   * @param {string} key the credential's name
   * @param {string} method upper case
   * @param {string} path starting with `/`, without the query
   * @param {{query?: string, body?: string, kind?: 'rest'|'ws_login'}} [options]
   * @returns {Promise<SignedRequest>}
   */
  async sign(key, method, path, options = {}) {
    checkOptions(options, ['query', 'body', 'kind'], 'sign');
    const { query = '', body = '', kind = 'rest' } = options;
    for (const [name, v] of [['key', key], ['method', method], ['path', path], ['query', query], ['body', body]]) {
      if (typeof v !== 'string') throw new TypeError(`sign: ${name} must be a string, not ${typeof v}`);
    }
    if (kind !== 'rest' && kind !== 'ws_login') {
      throw new TypeError(`sign: kind must be "rest" or "ws_login", not ${JSON.stringify(kind)}`);
    }
    const msg = { type: 'sign', key, method, path, query, body };
    // "rest" is the default and left out, as the Rust client does.
    if (kind !== 'rest') msg.kind = kind;
    return new SignedRequest(await this._call(msg, 'signed', (reply) => checkAnswers(msg, checkSigned(reply))));
  }

  /**
   * Session events (`unlocked`, `expiring_soon`, `budget_low`, `extended`, `locked`) as an
   * async iterator, on a connection of their own. Ends with ConnectionLost when the agent
   * goes away; `break` closes the connection.
   */
  events() {
    const self = this;
    return (async function* events() {
      const conn = await open(self.path, self.client, self.timeout);
      try {
        expect(await conn.request({ type: 'subscribe' }, self.timeout), 'subscribed');
        for (;;) {
          const frame = await conn.next(0);
          yield stripType(expect(frame, 'event'));
        }
      } finally {
        conn.close();
      }
    })();
  }

  /** Close the shared connection; a later call opens a new one. */
  close() {
    if (this._conn) this._conn.close();
    this._conn = null;
  }

  _serial(fn) {
    const run = this._tail.then(fn, fn);
    this._tail = run.catch(() => {});
    return run;
  }

  async _connection() {
    if (this._conn && this._conn.usable) return this._conn;
    // Closed by the agent, or out of step (bytes nobody asked for): a new connection.
    if (this._conn) this._conn.close();
    this._conn = null;
    this._conn = await open(this.path, this.client, this.timeout);
    return this._conn;
  }

  /** One round trip; `read` checks the answer in turn, so one out of step closes the connection first. */
  _call(msg, want, read = (reply) => reply) {
    return this._serial(async () => {
      for (let attempt = 0; ; attempt++) {
        const reused = this._conn !== null && this._conn.usable;
        const conn = await this._connection();
        try {
          return read(expect(await conn.request(msg, this.timeout), want));
        } catch (e) {
          // The agent closed a kept-open connection (restart, idle timeout) before answering:
          // nothing was answered, so send it once more on a new connection.
          if (e instanceof ConnectionLost && reused && attempt === 0) continue;
          if (e instanceof ProtocolError) {
            conn.close();
            if (this._conn === conn) this._conn = null;
          }
          throw e;
        }
      }
    });
  }
}

/**
 * A `signed` answer the bot may send as it is: every field a string (never `undefined` or
 * `null` turned into text), and a path from the host's root (`@evil.example/x` appended to a
 * base URL would name another host).
 */
function checkSigned(reply) {
  for (const name of ['method', 'path', 'query', 'body']) {
    if (typeof reply[name] !== 'string') {
      const got = reply[name] === null ? 'null' : typeof reply[name];
      throw new ProtocolError(`the agent's signed answer has no string "${name}" (${got})`);
    }
  }
  const { headers } = reply;
  if (
    headers === null ||
    typeof headers !== 'object' ||
    Array.isArray(headers) ||
    !Object.values(headers).every((v) => typeof v === 'string')
  ) {
    throw new ProtocolError("the agent's signed answer has headers that are not strings");
  }
  if (!reply.path.startsWith('/')) {
    throw new ProtocolError(
      `the agent's signed answer has a path that does not start with "/": ${JSON.stringify(reply.path.slice(0, 80))}`,
    );
  }
  return reply;
}

function stripType(msg) {
  const { type, ...rest } = msg;
  void type;
  return rest;
}

function checkOptions(options, known, where) {
  if (options === null || typeof options !== 'object') {
    throw new TypeError(`${where}: options must be an object`);
  }
  for (const k of Object.keys(options)) {
    if (!known.includes(k)) {
      throw new TypeError(`${where}: unknown option "${k}" (known: ${known.join(', ')})`);
    }
  }
}

module.exports = { Agent, SignedRequest, DEFAULT_TIMEOUT_MS };
