'use strict';
// A scripted stand-in for the agent, for the cases a real one will not produce on demand (a
// malformed frame, a drop between request and answer, an answer held back). It follows
// docs/protocol.md: 4-byte big-endian length frames of JSON, `hello` first; its answers are
// the committed golden frames in proto/tests/golden/ where one exists.

const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const { REPO } = require('./world');

const GOLDEN = path.join(REPO, 'proto', 'tests', 'golden');

/** The bytes of a golden frame, header included. */
function golden(name) {
  return fs.readFileSync(path.join(GOLDEN, `${name}.frame`));
}

function frame(obj) {
  const body = Buffer.from(JSON.stringify(obj));
  const head = Buffer.alloc(4);
  head.writeUInt32BE(body.length);
  return Buffer.concat([head, body]);
}

/** One accepted connection, seen from the agent's side. */
class Peer {
  constructor(sock) {
    this.sock = sock;
    this.buf = Buffer.alloc(0);
    this.frames = []; // raw frames received, header included
    this.waiters = [];
    this.ended = false;
    sock.on('data', (c) => {
      this.buf = Buffer.concat([this.buf, c]);
      while (this.buf.length >= 4 && this.buf.length >= 4 + this.buf.readUInt32BE(0)) {
        const n = 4 + this.buf.readUInt32BE(0);
        const raw = this.buf.subarray(0, n);
        this.buf = this.buf.subarray(n);
        const w = this.waiters.shift();
        if (w) w.resolve(raw);
        else this.frames.push(raw);
      }
    });
    sock.on('close', () => {
      this.ended = true;
      for (const w of this.waiters.splice(0)) w.reject(new Error('the client closed the connection'));
    });
    sock.on('error', () => {});
  }

  /** The next frame the client sent, raw (header included). */
  nextRaw() {
    if (this.frames.length) return Promise.resolve(this.frames.shift());
    if (this.ended) return Promise.reject(new Error('the client closed the connection'));
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  /** The next message the client sent. */
  async next() {
    return JSON.parse((await this.nextRaw()).subarray(4).toString());
  }

  send(bytesOrObj) {
    this.sock.write(Buffer.isBuffer(bytesOrObj) ? bytesOrObj : frame(bytesOrObj));
  }

  /** Read `hello` and answer with the golden hello. */
  async greet() {
    const hello = await this.next();
    if (hello.type !== 'hello') throw new Error(`expected hello, got ${hello.type}`);
    this.send(golden('response_hello'));
    return hello;
  }

  close() {
    this.sock.end();
  }

  destroy() {
    this.sock.destroy();
  }
}

/**
 * Serve `script(peer, index)` for each connection, on a socket in a fresh 0700 folder.
 * `fake.peers` lists the connections so far.
 */
async function fakeAgent(script) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tapsign-fake-'));
  fs.chmodSync(dir, 0o700);
  const sockPath = path.join(dir, 'agent.sock');
  const peers = [];
  const server = net.createServer((sock) => {
    const peer = new Peer(sock);
    peers.push(peer);
    Promise.resolve(script(peer, peers.length - 1)).catch(() => peer.destroy());
  });
  await new Promise((resolve) => server.listen(sockPath, resolve));
  return {
    path: sockPath,
    dir,
    peers,
    async close() {
      for (const p of peers) p.destroy();
      await new Promise((resolve) => server.close(resolve));
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A script for `fakeAgent`: greet, then answer each request with `answer(msg, peer)` (nothing
 * when it returns undefined) until the client hangs up.
 */
function serve(answer) {
  return async (peer) => {
    await peer.greet();
    for (;;) {
      let msg;
      try {
        msg = await peer.next();
      } catch {
        return;
      }
      const reply = await answer(msg, peer);
      if (reply !== undefined) peer.send(reply);
    }
  };
}

module.exports = { fakeAgent, serve, golden, frame, GOLDEN };
