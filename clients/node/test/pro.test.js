'use strict';
// ccxt pro websockets on an attached instance, against a local websocket server that records
// what reaches it: ccxt pro's own private login (made over the placeholder credentials: an HMAC
// over the placeholder secret, a JWT naming the placeholder key) is refused before anything is
// sent, with a message saying how to log in through the agent, and a public stream still goes
// out as ccxt makes it (red-team round 23, P1). No agent is needed: nothing here is signed.

const test = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');

const tapsign = require('..');
const { attach } = require('../lib/ccxt');
const h = require('./diff/harness');

const ccxt = h.loadCcxt();
const WebSocket = require('ws'); // ccxt's own websocket package

/** Answers every websocket upgrade and records it (path, Authorization header) and each frame. */
async function wsServer() {
  const got = [];
  const server = http.createServer((req, res) => {
    req.resume();
    res.setHeader('content-type', 'application/json');
    res.end('{}');
  });
  const wss = new WebSocket.Server({ server });
  wss.on('connection', (ws, req) => {
    got.push(['open', req.url, req.headers.authorization]);
    ws.on('message', (m) => got.push(['frame', req.url, String(m)]));
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  const rewrite = (o) => {
    if (typeof o === 'string') {
      return o.replace(/^wss:\/\/[^/]+/, `ws://127.0.0.1:${port}`).replace(/^https:\/\/[^/]+/, `http://127.0.0.1:${port}`);
    }
    if (Array.isArray(o)) return o.map(rewrite);
    if (o && typeof o === 'object') return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, rewrite(v)]));
    return o;
  };
  return {
    got,
    /** An attached ccxt pro instance with every URL at this server, and no agent. */
    async attached(id, config = {}) {
      const ex = new ccxt.pro[id]({ enableRateLimit: false, ...config });
      attach(ex, { key: 'k', path: '/nonexistent/tapsign.sock' });
      ex.urls.api = rewrite(ex.urls.api);
      await ex.loadHttpProxyAgent(); // ccxt wants it for ws:// URLs
      return ex;
    },
    async close() {
      await new Promise((resolve) => setTimeout(resolve, 200)); // a frame in flight arrives by now
      for (const c of wss.clients) c.terminate();
      await new Promise((resolve) => wss.close(resolve));
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

const within = (p, ms) =>
  Promise.race([p, new Promise((_, reject) => setTimeout(() => reject(new Error(`no answer in ${ms} ms`)), ms))]);

// Each call makes ccxt pro's own login: OKX's `login` op and Bybit's `auth` op (an HMAC over the
// placeholder secret), Binance's spot `userDataStream.subscribe.signature`, Upbit's JWT in the
// websocket handshake (the placeholder key is in its claims).
const LOGINS = [
  ['okx', (ex) => ex.authenticate(), 'ws_login'],
  ['bybit', (ex) => ex.authenticate(ex.urls.api.ws.private.spot.unified), 'ws_login'],
  ['binance', (ex) => ex.authenticate(), 'session.logon'],
  ['upbit', (ex) => ex.watchOrders(), 'Authorization header'],
];

for (const [id, login, advice] of LOGINS) {
  test(`${id}: ccxt pro's own websocket login is refused before anything is sent`, async () => {
    const server = await wsServer();
    const ex = await server.attached(id);
    try {
      await assert.rejects(within(login(ex), 5000), (e) => {
        assert.ok(e instanceof ccxt.PermissionDenied, e.stack);
        assert.ok(e.tapsign instanceof tapsign.PolicyDenied);
        assert.equal(e.code, 'policy_denied');
        assert.match(e.message, /websocket login was not sent/);
        assert.ok(e.message.includes(advice), e.message);
        return true;
      });
    } finally {
      await ex.close();
      await server.close();
    }
    assert.deepEqual(server.got, [], 'no websocket was opened, no frame sent');
  });
}

test('a frame with a placeholder sent on an open socket is refused and not sent', async () => {
  const server = await wsServer();
  const ex = await server.attached('okx');
  const subscribe = { op: 'subscribe', args: [{ channel: 'tickers', instId: 'BTC-USDT' }] };
  try {
    const client = ex.client(`${ex.urls.api.ws}/public`);
    await client.connect();
    await client.send(subscribe);
    await assert.rejects(client.send({ op: 'login', args: [{ apiKey: ex.apiKey, sign: 'x' }] }), (e) => {
      assert.ok(e.tapsign instanceof tapsign.PolicyDenied, e.stack);
      return true;
    });
  } finally {
    await ex.close();
    await server.close();
  }
  const frames = server.got.filter(([what]) => what === 'frame').map(([, , m]) => JSON.parse(m));
  assert.deepEqual(frames, [subscribe]);
});

test('a public stream still goes out', async () => {
  const server = await wsServer();
  const ex = await server.attached('okx');
  ex.setMarkets([h.spot(ex, { id: 'BTC-USDT', base: 'BTC', quote: 'USDT', info: { instType: 'SPOT' } })]);
  try {
    await within(ex.watchTicker('BTC/USDT'), 1000).catch(() => {}); // the server sends no ticker
  } finally {
    await ex.close();
    await server.close();
  }
  const frames = server.got.filter(([what]) => what === 'frame').map(([, url, m]) => [url, JSON.parse(m)]);
  assert.deepEqual(frames, [['/ws/v5/public', { op: 'subscribe', args: [{ channel: 'tickers', instId: 'BTC-USDT' }] }]]);
});
