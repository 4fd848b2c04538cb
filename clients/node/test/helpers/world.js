'use strict';
// A private agent per test file, as tests/src/lib.rs makes one for the Rust tests: its own
// TAPSIGN_HOME and socket in a temp folder, the soft token (tests only), keys added through
// the real `tapsign` CLI with their fields on stdin, and `tapsign unlock`.

const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const REPO = path.resolve(__dirname, '..', '..', '..', '..');

function tapsignBin() {
  const bin = process.env.TAPSIGN_BIN || path.join(REPO, 'target', 'debug', 'tapsign');
  if (!fs.existsSync(bin)) {
    throw new Error(`${bin} is missing: run \`cargo build -p tapsign-cli\` (run-tests does) or set TAPSIGN_BIN`);
  }
  return bin;
}

class World {
  constructor() {
    this.home = fs.mkdtempSync(path.join(os.tmpdir(), 'tapsign-node-'));
    this.sock = path.join(this.home, 'run', 'agent.sock');
    this.agentLog = path.join(this.home, 'agent.log');
    this.child = null;
  }

  env() {
    const env = { ...process.env };
    delete env.XDG_RUNTIME_DIR;
    delete env.XDG_SESSION_ID;
    const noBus = `unix:path=${path.join(this.home, 'no-bus')}`;
    return {
      ...env,
      TAPSIGN_HOME: this.home,
      TAPSIGN_SOCK: this.sock,
      TAPSIGN_INSECURE_SOFT_TOKEN: '1',
      // No desktop buses: a developer's screen lock must not lock test agents.
      DBUS_SYSTEM_BUS_ADDRESS: noBus,
      DBUS_SESSION_BUS_ADDRESS: noBus,
    };
  }

  /** Run `tapsign ARGS` with `stdin`; throws with its output when it fails. */
  run(args, stdin = '') {
    const r = spawnSync(tapsignBin(), args, { env: this.env(), input: stdin, encoding: 'utf8' });
    if (r.status !== 0) {
      throw new Error(`tapsign ${args.join(' ')} failed (${r.status}): ${r.stderr}${r.stdout}`);
    }
    return r.stdout;
  }

  /** Enroll the soft token (once) and store a credential: fields one per line on stdin. */
  addKey(name, exchange, fields) {
    if (!fs.existsSync(path.join(this.home, 'soft-token'))) this.run(['token', 'add', '--soft']);
    this.run(['key', 'add', name, '--exchange', exchange], fields.map((f) => `${f}\n`).join(''));
  }

  config(toml) {
    fs.writeFileSync(path.join(this.home, 'config.toml'), toml);
  }

  /** Start the agent and wait until it accepts connections. */
  async start() {
    const log = fs.openSync(this.agentLog, 'a');
    this.child = spawn(tapsignBin(), ['agent'], { env: this.env(), stdio: ['ignore', 'ignore', log] });
    fs.closeSync(log);
    const exited = new Promise((resolve) => this.child.once('exit', (code, sig) => resolve(code ?? sig)));
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      if (await canConnect(this.sock)) return;
      const gone = await Promise.race([exited, sleep(20).then(() => undefined)]);
      if (gone !== undefined) throw new Error(`the agent exited (${gone}): ${this.log()}`);
    }
    throw new Error(`the agent did not answer within 20 s: ${this.log()}`);
  }

  /** Stop the agent (SIGTERM) and wait for it. */
  async stop() {
    if (!this.child) return;
    const child = this.child;
    this.child = null;
    if (child.exitCode !== null || child.signalCode !== null) return;
    const done = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await done;
  }

  unlock() {
    return this.run(['unlock']);
  }

  log() {
    try {
      return fs.readFileSync(this.agentLog, 'utf8');
    } catch {
      return '';
    }
  }

  async close() {
    await this.stop();
    fs.rmSync(this.home, { recursive: true, force: true });
  }
}

function canConnect(p) {
  return new Promise((resolve) => {
    const s = net.createConnection({ path: p });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

module.exports = { World, tapsignBin, REPO, sleep };
