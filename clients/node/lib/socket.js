'use strict';
// Where the agent's socket is (docs/protocol.md, "Connecting"), and whether it can be trusted.
//
// The agent serves only its own user, and the Rust and Python clients check the other side
// too: they ask the kernel for the peer's uid (SO_PEERCRED) after connecting, so a socket
// another user planted never receives an unlock and its PIN. Node has no way to read
// SO_PEERCRED without a native module, so this client checks the file system instead, the
// way OpenSSH's StrictModes checks a key file:
//
// - the socket is a socket (not a symlink to one) owned by you: whoever binds a Unix socket
//   owns its file, so its owner is the user the serving process ran as when it bound it;
// - the socket's folder is not a symbolic link;
// - every folder from the socket's up to `/` (both as written and with symlinks resolved) is
//   owned by you or root, and no other user can write to it (group- or world-writable only
//   with the sticky bit, like /tmp), so nobody else can swap the socket or a folder above it;
// - after connecting, the path still names the same socket (device and inode), so a swap in
//   between is seen.
//
// What that cannot see, and SO_PEERCRED would: a process of yours that handed its listening
// socket to a process of another user, or root serving the file. Both need your account or
// root already. A socket another user created is refused either way.

const fsp = require('node:fs/promises');
const path = require('node:path');

const { AgentNotRunning, NotYourAgent } = require('./errors');

const SOCK_ENV = 'TAPSIGN_SOCK';

function currentUid() {
  return typeof process.getuid === 'function' ? process.getuid() : -1;
}

/**
 * The socket path, first match wins: `$TAPSIGN_SOCK`; `$XDG_RUNTIME_DIR/tapsign/agent.sock`;
 * `/run/user/$UID/tapsign/agent.sock` when `/run/user/$UID` is a folder;
 * `$TMPDIR/tapsign-$UID/agent.sock` (`/tmp` when TMPDIR is unset or empty).
 */
function socketPath(env = process.env, uid = currentUid(), isDir = defaultIsDir) {
  const sock = env[SOCK_ENV];
  if (sock) return sock;
  const runtime = env.XDG_RUNTIME_DIR;
  if (runtime) return path.join(runtime, 'tapsign', 'agent.sock');
  const runUser = `/run/user/${uid}`;
  if (isDir(runUser)) return path.join(runUser, 'tapsign', 'agent.sock');
  // Rust's std::env::temp_dir(): $TMPDIR when set and not empty, else /tmp.
  const tmp = env.TMPDIR || '/tmp';
  return path.join(tmp, `tapsign-${uid}`, 'agent.sock');
}

function defaultIsDir(p) {
  try {
    return require('node:fs').statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/**
 * Check that `sockPath` is a socket only you (or root) could have put there. Returns its
 * lstat, to compare with [`sameSocket`] after connecting. Throws AgentNotRunning when no
 * socket is there, NotYourAgent when one is there that another user could serve.
 */
async function checkSocket(sockPath, uid = currentUid()) {
  const abs = path.resolve(sockPath);
  let st;
  try {
    st = await fsp.lstat(abs);
  } catch (e) {
    if (e.code === 'ENOENT' || e.code === 'ENOTDIR') {
      throw new AgentNotRunning(
        `no agent socket at ${abs}: start the agent (\`tapsign agent\`) or set ${SOCK_ENV} to its socket`,
      );
    }
    throw new AgentNotRunning(`cannot look at the agent socket ${abs}: ${e.message}`);
  }
  if (st.isSymbolicLink()) {
    throw new NotYourAgent(
      `${abs} is a symbolic link, not the agent's socket; set ${SOCK_ENV} to the socket itself`,
    );
  }
  if (!st.isSocket()) {
    throw new NotYourAgent(`${abs} is not a socket; check ${SOCK_ENV} and the socket folder`);
  }
  if (st.uid !== uid) {
    throw new NotYourAgent(
      `the socket ${abs} belongs to uid ${st.uid}, not to you (uid ${uid}): it is not your agent; ` +
        `check ${SOCK_ENV} and the socket folder`,
    );
  }
  const dir = path.dirname(abs);
  const dirSt = await lstatOrThrow(dir);
  if (dirSt.isSymbolicLink()) {
    throw new NotYourAgent(
      `the socket folder ${dir} is a symbolic link; point ${SOCK_ENV} at the real folder`,
    );
  }
  await checkChain(dir, uid);
  const real = await fsp.realpath(dir);
  if (real !== dir) await checkChain(real, uid);
  return st;
}

/** Every folder from `dir` up to `/` is owned by `uid` or root and only they can write to it. */
async function checkChain(dir, uid) {
  for (let d = dir; ; d = path.dirname(d)) {
    const st = await lstatOrThrow(d);
    if (st.uid !== uid && st.uid !== 0) {
      throw new NotYourAgent(
        `${d}, above the agent socket, belongs to uid ${st.uid}, not to you (uid ${uid}) or root: ` +
          'that user could swap the socket; run the agent with a socket in a folder of your own',
      );
    }
    // A symlink's own mode means nothing; its target is checked through realpath.
    if (!st.isSymbolicLink()) {
      const othersWrite = (st.mode & 0o022) !== 0;
      const sticky = (st.mode & 0o1000) !== 0;
      if (othersWrite && !sticky) {
        throw new NotYourAgent(
          `${d}, above the agent socket, is writable by other users (mode ${(st.mode & 0o7777).toString(8)}): ` +
            `they could swap the socket; \`chmod go-w ${d}\` or move the socket`,
        );
      }
    }
    if (d === path.dirname(d)) return;
  }
}

async function lstatOrThrow(p) {
  try {
    return await fsp.lstat(p);
  } catch (e) {
    throw new AgentNotRunning(`cannot look at ${p}, on the way to the agent socket: ${e.message}`);
  }
}

/** After connecting: the path still names the socket checked before. */
async function sameSocket(sockPath, before) {
  let now;
  try {
    now = await fsp.lstat(path.resolve(sockPath));
  } catch {
    now = undefined;
  }
  if (!now || now.dev !== before.dev || now.ino !== before.ino) {
    throw new NotYourAgent(
      `the agent socket ${sockPath} was replaced while connecting; check who else writes to its folder`,
    );
  }
}

module.exports = { SOCK_ENV, socketPath, checkSocket, sameSocket, currentUid };
