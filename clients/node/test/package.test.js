'use strict';
// The package as a user gets it: `npm pack` ships the library, its types and README and
// nothing else; the tarball installs offline (no dependencies); `require` and `import` of both
// entry points work from a fresh project; the TypeScript types compile in both module modes
// and catch a misspelled option.

const test = require('node:test');
const assert = require('node:assert/strict');
const { execFileSync, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const PKG = path.resolve(__dirname, '..');

function statusLiterals() {
  const golden = path.resolve(PKG, '..', '..', 'proto', 'tests', 'golden');
  return fs
    .readdirSync(golden)
    .filter((f) => /^response_(status_.*|unlocked.*)\.frame$/.test(f))
    .map((f, i) => {
      const { type, ...status } = JSON.parse(fs.readFileSync(path.join(golden, f)).subarray(4).toString());
      assert.ok(type === 'status' || type === 'unlocked', f);
      return `const golden${i}: Status = ${JSON.stringify(status)}; void golden${i};`;
    })
    .join('\n    ');
}

function npm(args, cwd) {
  return execFileSync('npm', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

test('npm pack ships lib/, the types, README.md and package.json, nothing else', () => {
  const [info] = JSON.parse(npm(['pack', '--dry-run', '--json'], PKG));
  const files = info.files.map((f) => f.path).sort();
  const lib = fs
    .readdirSync(path.join(PKG, 'lib'), { recursive: true })
    .filter((f) => fs.statSync(path.join(PKG, 'lib', f)).isFile())
    .map((f) => `lib/${f}`);
  assert.deepEqual(files, ['README.md', ...lib, 'package.json'].sort());
  for (const f of ['lib/index.d.ts', 'lib/index.d.mts', 'lib/ccxt/index.d.ts', 'lib/ccxt/index.d.mts']) {
    assert.ok(files.includes(f), f);
  }
  assert.ok(!files.some((f) => f.startsWith('test/') || f.startsWith('node_modules/') || f === 'run-tests'));
  assert.equal(info.name, 'tapsign');
  const pkg = JSON.parse(fs.readFileSync(path.join(PKG, 'package.json'), 'utf8'));
  assert.equal(pkg.dependencies, undefined, 'no runtime dependencies');
  assert.equal(pkg.engines.node, '>=18');
});

test('the packed tarball installs offline and loads from CommonJS, ESM and TypeScript', (t) => {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'tapsign-pack-'));
  t.after(() => fs.rmSync(work, { recursive: true, force: true }));
  const [info] = JSON.parse(npm(['pack', '--json', '--pack-destination', work], PKG));
  const app = path.join(work, 'app');
  fs.mkdirSync(app);
  fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'bot', private: true, version: '1.0.0' }));
  npm(['install', '--offline', '--no-audit', '--no-fund', '--no-package-lock', path.join(work, info.filename)], app);

  const cjs = execFileSync(
    process.execPath,
    ['-e', "const t = require('tapsign'); const c = require('tapsign/ccxt'); console.log(typeof t.Agent, typeof c.attach, new t.Locked('m').code)"],
    { cwd: app, encoding: 'utf8' },
  );
  assert.equal(cjs.trim(), 'function function locked');
  const esm = execFileSync(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      "import { Agent, Locked } from 'tapsign'; import t from 'tapsign'; import { attach } from 'tapsign/ccxt'; console.log(typeof Agent, typeof attach, Locked === t.Locked)",
    ],
    { cwd: app, encoding: 'utf8' },
  );
  assert.equal(esm.trim(), 'function function true');

  // The types, in both module modes. A misspelled option must be an error: the
  // @ts-expect-error lines fail the compile if the types accepted them.
  const use = `
    import { Agent, SignedRequest, TapsignError, Locked, BudgetSpent, Status, SessionEvent } from 'tapsign';
    import { attach, AttachOptions } from 'tapsign/ccxt';
    async function main(): Promise<void> {
      const agent = new Agent({ client: 'bot/1', timeout: 5000 });
      const s: SignedRequest = await agent.sign('k', 'GET', '/p', { query: 'a=1', kind: 'rest' });
      const url: string = s.url('https://api.example.com');
      const status: Status = await agent.status();
      const left: number | undefined = status.session?.signatures_left;
      for await (const ev of agent.events()) { const e: SessionEvent = ev; void e; break; }
      // @ts-expect-error: no such option
      await agent.sign('k', 'GET', '/p', { qurey: 'a=1' });
      // @ts-expect-error: kind is rest or ws_login
      await agent.sign('k', 'GET', '/p', { kind: 'ws' });
      const opts: AttachOptions = { key: 'binance-main' };
      const ex = attach({ id: 'binance', sign: () => ({}), fetch: async () => ({}) }, opts);
      // @ts-expect-error: key is required
      attach(ex, {});
      const err: TapsignError = new Locked('m');
      const b: typeof Locked = BudgetSpent;
      void url; void left; void err; void b;
    }
    void main;
    // Every status answer the agent's golden frames hold is a Status: an object literal with
    // a field the interface lacks fails the compile, so the types cannot fall behind.
    ${statusLiterals()}
  `;
  fs.writeFileSync(path.join(app, 'esm.mts'), use);
  fs.writeFileSync(path.join(app, 'cjs.cts'), use);
  const tsc = path.join(PKG, 'node_modules', 'typescript', 'bin', 'tsc');
  assert.ok(fs.existsSync(tsc), 'typescript is installed by run-tests');
  for (const file of ['esm.mts', 'cjs.cts']) {
    const r = spawnSync(
      process.execPath,
      [tsc, '--noEmit', '--strict', '--module', 'node16', '--moduleResolution', 'node16', '--target', 'es2022', '--lib', 'es2022', '--types', 'null', file],
      { cwd: app, encoding: 'utf8' },
    );
    assert.equal(r.status, 0, `tsc ${file}: ${r.stdout}${r.stderr}`);
  }
});
