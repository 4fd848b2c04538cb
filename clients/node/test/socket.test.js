'use strict';
// Socket discovery (docs/protocol.md, "Connecting") and the check that stands in for
// SO_PEERCRED: the client refuses a socket another user could serve, before it sends anything.

const test = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const tapsign = require('..');
const { sameSocket } = require('../lib/socket');
const { fakeAgent, golden } = require('./helpers/fake-agent');

const { socketPath, checkSocket, NotYourAgent, AgentNotRunning } = tapsign;
const uid = process.getuid();

test('discovery: TAPSIGN_SOCK first, then XDG_RUNTIME_DIR, /run/user/UID, $TMPDIR/tapsign-UID', () => {
  const dirs = new Set(['/run/user/1000']);
  const isDir = (p) => dirs.has(p);
  assert.equal(socketPath({ TAPSIGN_SOCK: '/s/a.sock', XDG_RUNTIME_DIR: '/x' }, 1000, isDir), '/s/a.sock');
  assert.equal(socketPath({ TAPSIGN_SOCK: '', XDG_RUNTIME_DIR: '/x' }, 1000, isDir), '/x/tapsign/agent.sock');
  assert.equal(socketPath({ XDG_RUNTIME_DIR: '' }, 1000, isDir), '/run/user/1000/tapsign/agent.sock');
  assert.equal(socketPath({ TMPDIR: '/var/tmp' }, 1001, isDir), '/var/tmp/tapsign-1001/agent.sock');
  assert.equal(socketPath({ TMPDIR: '' }, 1001, isDir), '/tmp/tapsign-1001/agent.sock');
  assert.equal(socketPath({}, 1001, isDir), '/tmp/tapsign-1001/agent.sock');
});

test('discovery reads the environment at each connect', () => {
  const saved = process.env.TAPSIGN_SOCK;
  try {
    process.env.TAPSIGN_SOCK = '/one.sock';
    const agent = new tapsign.Agent();
    assert.equal(agent.path, '/one.sock');
    process.env.TAPSIGN_SOCK = '/two.sock';
    assert.equal(agent.path, '/two.sock');
  } finally {
    if (saved === undefined) delete process.env.TAPSIGN_SOCK;
    else process.env.TAPSIGN_SOCK = saved;
  }
});

/** A listening socket at `dir/name`, with `dir` made first with `mode`. */
async function listening(t, mode = 0o700) {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tapsign-sock-'));
  const dir = path.join(root, 'd');
  fs.mkdirSync(dir);
  fs.chmodSync(dir, mode);
  const sock = path.join(dir, 'agent.sock');
  const server = net.createServer((c) => c.destroy());
  await new Promise((r) => server.listen(sock, r));
  t.after(async () => {
    await new Promise((r) => server.close(r));
    fs.rmSync(root, { recursive: true, force: true });
  });
  return { root, dir, sock };
}

test('a socket of yours in a folder only you can write is accepted', async (t) => {
  const { sock } = await listening(t);
  const st = await checkSocket(sock);
  assert.ok(st.isSocket());
});

test("a socket owned by another uid is refused, naming the owner", async (t) => {
  const { sock } = await listening(t);
  await assert.rejects(checkSocket(sock, uid + 4242), (e) => {
    assert.ok(e instanceof NotYourAgent);
    assert.match(e.message, new RegExp(`belongs to uid ${uid}, not to you \\(uid ${uid + 4242}\\)`));
    return true;
  });
});

test('a socket in a folder other users can write is refused', async (t) => {
  const { sock, dir } = await listening(t, 0o777);
  await assert.rejects(checkSocket(sock), (e) => e instanceof NotYourAgent && e.message.includes(`${dir}, above the agent socket, is writable by other users`));
});

test('a world-writable folder with the sticky bit (like /tmp) is accepted', async (t) => {
  const { sock } = await listening(t, 0o1777);
  await checkSocket(sock);
});

test('a socket folder that is a symbolic link is refused', async (t) => {
  const { root, dir } = await listening(t);
  const link = path.join(root, 'link');
  fs.symlinkSync(dir, link);
  await assert.rejects(checkSocket(path.join(link, 'agent.sock')), (e) => e instanceof NotYourAgent && /is a symbolic link/.test(e.message));
});

test('a symbolic link in place of the socket is refused', async (t) => {
  const { dir, sock } = await listening(t);
  const link = path.join(dir, 'other.sock');
  fs.symlinkSync(sock, link);
  await assert.rejects(checkSocket(link), (e) => e instanceof NotYourAgent && /symbolic link, not the agent's socket/.test(e.message));
});

test('a file that is not a socket is refused', async (t) => {
  const { dir } = await listening(t);
  const file = path.join(dir, 'plain');
  fs.writeFileSync(file, '');
  await assert.rejects(checkSocket(file), (e) => e instanceof NotYourAgent && /is not a socket/.test(e.message));
});

test('no socket is AgentNotRunning, saying how to start the agent', async () => {
  await assert.rejects(checkSocket('/nonexistent/tapsign/agent.sock'), (e) => e instanceof AgentNotRunning && /tapsign agent/.test(e.message) && e.code === null);
});

test('a stale socket file with no agent behind it is AgentNotRunning', async (t) => {
  const { dir } = await listening(t);
  const stale = path.join(dir, 'stale.sock');
  // A process that bound the socket and exited without closing it leaves the file behind.
  const r = spawnSync(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(stale)}, () => process.exit(0))`]);
  assert.equal(r.status, 0, String(r.stderr));
  assert.ok(fs.lstatSync(stale).isSocket());
  const agent = new tapsign.Agent({ path: stale });
  await assert.rejects(agent.status(), (e) => e instanceof AgentNotRunning && /no agent listens there/.test(e.message));
});

test('a socket swapped after the check is noticed', async (t) => {
  const { dir, sock } = await listening(t);
  const before = await checkSocket(sock);
  const other = path.join(dir, 'other.sock');
  const s = net.createServer();
  await new Promise((r) => s.listen(other, r));
  t.after(() => new Promise((r) => s.close(r)));
  fs.renameSync(other, sock);
  await assert.rejects(sameSocket(sock, before), (e) => e instanceof NotYourAgent && /replaced while connecting/.test(e.message));
});

test('the Agent never connects to an untrusted socket', async () => {
  const fake = await fakeAgent(async (peer) => {
    await peer.greet();
    await peer.next();
    peer.send(golden('response_status_locked'));
  });
  try {
    fs.chmodSync(fake.dir, 0o777);
    const agent = new tapsign.Agent({ path: fake.path });
    await assert.rejects(agent.status(), NotYourAgent);
    assert.equal(fake.peers.length, 0, 'not even a connection was made');
    fs.chmodSync(fake.dir, 0o700);
    assert.equal((await agent.status()).state, 'locked');
    agent.close();
  } finally {
    await fake.close();
  }
});
