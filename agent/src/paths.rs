//! Where tapsign keeps its files.
//!
//! `TAPSIGN_HOME` puts everything in one folder (tests, or a trader who wants one place).
//! Otherwise the XDG folders: config in `$XDG_CONFIG_HOME/tapsign`, the keystore in
//! `$XDG_DATA_HOME/tapsign`, the audit log in `$XDG_STATE_HOME/tapsign`.

use std::path::{Path, PathBuf};

/// The environment variable that puts every tapsign file under one folder.
pub const HOME_ENV: &str = "TAPSIGN_HOME";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    pub config_dir: PathBuf,
    pub data_dir: PathBuf,
    pub state_dir: PathBuf,
    pub socket: PathBuf,
}

impl Paths {
    /// Resolve from the environment.
    pub fn from_env() -> Result<Paths, String> {
        let socket = tapsign_proto::path::default_socket_path();
        if let Some(home) = env_path(HOME_ENV) {
            return Ok(Paths {
                config_dir: home.clone(),
                data_dir: home.clone(),
                state_dir: home,
                socket,
            });
        }
        let user_home = env_path("HOME").ok_or(
            "neither TAPSIGN_HOME nor HOME is set: set TAPSIGN_HOME to the folder tapsign should use",
        )?;
        let xdg = |var: &str, default: &str| {
            env_path(var)
                .unwrap_or_else(|| user_home.join(default))
                .join("tapsign")
        };
        Ok(Paths {
            config_dir: xdg("XDG_CONFIG_HOME", ".config"),
            data_dir: xdg("XDG_DATA_HOME", ".local/share"),
            state_dir: xdg("XDG_STATE_HOME", ".local/state"),
            socket,
        })
    }

    /// All under one folder (tests).
    pub fn under(home: &Path, socket: PathBuf) -> Paths {
        Paths {
            config_dir: home.to_path_buf(),
            data_dir: home.to_path_buf(),
            state_dir: home.to_path_buf(),
            socket,
        }
    }

    pub fn config_file(&self) -> PathBuf {
        self.config_dir.join("config.toml")
    }
    pub fn keystore_dir(&self) -> PathBuf {
        self.data_dir.join("keystore")
    }
    /// The test-only soft token's folder.
    pub fn soft_token_dir(&self) -> PathBuf {
        self.data_dir.join("soft-token")
    }
    pub fn audit_log(&self) -> PathBuf {
        self.state_dir.join("audit.log")
    }
}

fn env_path(var: &str) -> Option<PathBuf> {
    std::env::var_os(var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}
