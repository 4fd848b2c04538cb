//! `tapsign agent`: harden, load the config, bind the socket (or take the one systemd passed),
//! serve until SIGTERM.

use tapsign_agent::agent::Agent;
use tapsign_agent::config::Config;
use tapsign_agent::paths::Paths;
use tapsign_agent::systemd::Handoff;
use tapsign_agent::{harden, server};

use crate::Failure;

pub fn run(paths: Paths) -> Result<(), Failure> {
    // First, while the process still has one thread: it edits the environment.
    let handoff = Handoff::take();
    // Before anything else, and before any secret can exist.
    for w in harden::harden_process().warnings {
        errln!("tapsign agent: warning: {w}");
    }
    let config = Config::load(&paths.config_file())
        .map_err(|e| Failure::error(format!("bad configuration: {e}; fix config.toml (docs/defaults.md lists every setting) and start again")))?;
    // Before the socket: a second agent on this home's log, nonces or keystore, on whichever
    // socket, stops here.
    let _claim = tapsign_agent::claim::claim(&[&paths.state_dir, &paths.data_dir])
        .map_err(|e| Failure::error(e.to_string()))?;
    let soft = super::soft_allowed();
    if soft {
        errln!(
            "tapsign agent: WARNING: TAPSIGN_INSECURE_SOFT_TOKEN=1: the test-only soft token is accepted; it gives NO protection"
        );
    }
    // The session bus defaults to $XDG_RUNTIME_DIR/bus: in a runtime folder of another user's
    // (the socket is then elsewhere, or the agent would refuse it), that user could serve it
    // and tell the agent the screen never locks (red-team round 26, recheck). A sticky folder
    // others may write (`/tmp`) is no better here: anyone can make the `bus` name there first.
    if let Some(rt) = std::env::var_os("XDG_RUNTIME_DIR").filter(|p| !p.is_empty())
        && std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_none()
        && let Some(problem) = server::not_ours(std::path::Path::new(&rt), false)
    {
        errln!(
            "tapsign agent: warning: XDG_RUNTIME_DIR {} {problem}: the session bus there (screen-lock signals, notifications) could be another user's program; set XDG_RUNTIME_DIR to a folder of your own, mode 0700",
            std::path::Path::new(&rt).display()
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Failure::error(format!("cannot start the runtime: {e}")))?;
    let Handoff { listener, notifier } = handoff;
    // From here on the agent's lines never wait on its stderr (a reader that stops reading
    // would hold whoever writes, and the lock it holds: the session's).
    tapsign_agent::say::to_thread();
    let served = runtime.block_on(async move {
        let listener = match listener {
            // Socket activation: systemd bound the socket and passed it in.
            Some(inherited) => inherited
                .map_err(|e| Failure::error(e.to_string()))
                .and_then(|l| {
                    server::inherit(l, &paths.socket).map_err(|e| Failure::error(e.to_string()))
                })?,
            None => server::bind(&paths.socket)
                .await
                .map_err(|e| Failure::error(e.to_string()))?,
        };
        let agent = Agent::new(paths, config, soft);
        server::serve(agent, listener, &notifier)
            .await
            .map_err(|e| Failure::error(format!("the agent failed: {e}")))
    });
    // Its last lines, before the process ends (not for ever: stderr may not be read).
    tapsign_agent::say::flush(std::time::Duration::from_secs(2));
    served
}
