'use strict';
// One connection to the agent: connect, check the socket, `hello`, then one request at a time
// (docs/protocol.md: "send the next request after the answer"). The caller serializes.

const net = require('node:net');

const { encode, FrameReader } = require('./frame');
const { AgentNotRunning, AgentTimeout, ConnectionLost, ProtocolError, VersionMismatch, fromWire } = require('./errors');
const { checkSocket, sameSocket } = require('./socket');

const PROTOCOL_VERSION = 1;

class Connection {
  constructor(sock) {
    this.sock = sock;
    this.reader = new FrameReader();
    this.waiter = null;
    this.inbox = [];
    this.closed = false;
    this.closeError = null;
    this.lastError = null;
    this.agent = '';
    this.version = 0;
    // An idle connection must not keep a bot's process alive; a call in flight does.
    sock.unref();
    sock.on('data', (chunk) => this._data(chunk));
    // 'error' is followed by 'close'; the frames that arrived before it are delivered first,
    // so an agent that answers and closes (busy, forbidden) is heard even when our write failed.
    sock.on('error', (e) => {
      this.lastError = e;
    });
    sock.on('close', () => {
      const why = this.lastError ? `: ${this.lastError.message}` : '';
      this._fail(new ConnectionLost(`the agent closed the connection${why}`));
    });
  }

  _data(chunk) {
    let msgs;
    try {
      msgs = this.reader.push(chunk);
    } catch (e) {
      this._fail(e);
      this.sock.destroy();
      return;
    }
    for (const m of msgs) {
      if (this.waiter) {
        const w = this.waiter;
        this.waiter = null;
        w.resolve(m);
      } else {
        this.inbox.push(m);
      }
    }
  }

  _fail(err) {
    if (this.closed) return;
    this.closed = true;
    this.closeError = err;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      w.reject(err);
    }
  }

  /** The next frame from the agent, within `timeoutMs` (0 or undefined: no limit). */
  next(timeoutMs) {
    if (this.inbox.length > 0) return Promise.resolve(this.inbox.shift());
    if (this.closed) return Promise.reject(this.closeError);
    return new Promise((resolve, reject) => {
      let timer;
      const settle = (fn) => (v) => {
        if (timer) clearTimeout(timer);
        this.sock.unref();
        fn(v);
      };
      this.waiter = { resolve: settle(resolve), reject: settle(reject) };
      this.sock.ref();
      if (timeoutMs) {
        timer = setTimeout(() => {
          // The answer may still come; the frame boundary is lost, so the connection goes.
          this._fail(new AgentTimeout(`the agent did not answer within ${timeoutMs} ms`));
          this.sock.destroy();
        }, timeoutMs);
      }
    });
  }

  /** A frame the agent sends before being asked, within `ms`; null when none came. */
  unasked(ms) {
    if (this.inbox.length > 0) return Promise.resolve(this.inbox.shift());
    if (this.closed) return Promise.reject(this.closeError);
    return new Promise((resolve, reject) => {
      const settle = (fn) => (v) => {
        clearTimeout(timer);
        this.waiter = null;
        this.sock.unref();
        fn(v);
      };
      const timer = setTimeout(settle(resolve), ms, null);
      this.waiter = { resolve: settle(resolve), reject: settle(reject) };
      this.sock.ref();
    });
  }

  /**
   * Whether this kept connection may carry the next request: not closed, and holding no bytes
   * nobody asked for (an unasked frame, whole or in part, would be read as the next answer).
   */
  get usable() {
    return !this.closed && this.inbox.length === 0 && this.reader.pending === 0;
  }

  /** Send `msg` and return its answer; an `error` frame becomes its TapsignError. */
  async request(msg, timeoutMs) {
    if (this.closed) throw this.closeError;
    this.sock.write(encode(msg));
    const reply = await this.next(timeoutMs);
    if (reply.type === 'error') {
      throw fromWire(reply.code, typeof reply.message === 'string' ? reply.message : '');
    }
    return reply;
  }

  close() {
    this._fail(new ConnectionLost('the connection was closed by this client'));
    this.sock.destroy();
  }
}

/** Check `reply` is of type `want`. */
function expect(reply, want) {
  if (reply.type !== want) {
    throw new ProtocolError(`the agent answered with a "${reply.type}" message where "${want}" was expected`);
  }
  return reply;
}

function connectSocket(sockPath, timeoutMs) {
  return new Promise((resolve, reject) => {
    const sock = net.createConnection({ path: sockPath });
    let timer;
    if (timeoutMs) {
      timer = setTimeout(() => {
        sock.destroy();
        reject(new AgentTimeout(`connecting to the agent at ${sockPath} took over ${timeoutMs} ms`));
      }, timeoutMs);
    }
    sock.once('connect', () => {
      clearTimeout(timer);
      sock.removeAllListeners('error');
      resolve(sock);
    });
    sock.once('error', (e) => {
      clearTimeout(timer);
      const hint =
        e.code === 'ECONNREFUSED'
          ? ': no agent listens there (a stale socket?); start it with `tapsign agent`'
          : `: ${e.message}`;
      reject(new AgentNotRunning(`cannot connect to the agent at ${sockPath}${hint}`));
    });
  });
}

/** How long a second connection listens before its hello (see `open`). */
const LISTEN_FIRST_MS = 100;

/**
 * A checked, greeted connection to the agent at `sockPath`.
 *
 * An agent that refuses a connection (busy) answers at once and closes. When that answer
 * comes before our hello is written, the write fails and Node drops the socket with the
 * answer unread: a refusal would look like a dropped connection. So when the hello finds the
 * connection gone without an answer, a second connection first listens for a moment, to hear
 * the agent's reason, before it says hello.
 */
async function open(sockPath, client, timeoutMs) {
  try {
    return await greet(sockPath, client, timeoutMs, 0);
  } catch (e) {
    if (!(e instanceof ConnectionLost)) throw e;
    return greet(sockPath, client, timeoutMs, LISTEN_FIRST_MS);
  }
}

async function greet(sockPath, client, timeoutMs, listenFirstMs) {
  const before = await checkSocket(sockPath);
  const sock = await connectSocket(sockPath, timeoutMs);
  const conn = new Connection(sock);
  try {
    await sameSocket(sockPath, before);
    const early = listenFirstMs ? await conn.unasked(listenFirstMs) : null;
    if (early && early.type === 'error') {
      throw fromWire(early.code, typeof early.message === 'string' ? early.message : '');
    }
    if (early) {
      throw new ProtocolError(`the agent spoke first with a "${early.type}" message`);
    }
    const hello = expect(
      await conn.request({ type: 'hello', version: PROTOCOL_VERSION, client }, timeoutMs),
      'hello',
    );
    if (hello.version !== PROTOCOL_VERSION) {
      throw new VersionMismatch(
        `the agent speaks protocol version ${hello.version}, this client ${PROTOCOL_VERSION}: ` +
          'upgrade the older side',
      );
    }
    conn.agent = String(hello.agent);
    conn.version = hello.version;
  } catch (e) {
    conn.close();
    throw e;
  }
  return conn;
}

module.exports = { PROTOCOL_VERSION, Connection, open, expect };
