//! `tapsign-vyk`: plug one virtual YubiKey into a running vpcd reader, for manual poking
//! with yubico-piv-tool, ykman, OpenSC or a FIDO2 client. Usage:
//! `tapsign-vyk [--port 35963] [--version 5.7.1] [--serial 12345678] [--fido2 off|on|only]
//! [--fido2-pin PIN]`.

use std::net::{Ipv4Addr, SocketAddr};

use tapsign_vyk::{Config, Fido2Config, VirtualYubiKey};

fn parse_version(s: &str) -> Result<[u8; 3], String> {
    let parts: Vec<u8> = s
        .split('.')
        .map(|p| p.parse().map_err(|_| format!("bad version {s:?}")))
        .collect::<Result<_, _>>()?;
    <[u8; 3]>::try_from(parts).map_err(|_| format!("version must be X.Y.Z, got {s:?}"))
}

fn run() -> Result<(), String> {
    let mut config = Config::default();
    let mut port = tapsign_vyk::harness::VPCD_PORT;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--port" => port = value.parse().map_err(|_| format!("bad port {value:?}"))?,
            "--version" => config.version = parse_version(&value)?,
            "--serial" => {
                config.serial = value.parse().map_err(|_| format!("bad serial {value:?}"))?
            }
            "--fido2" => match value.as_str() {
                "off" => config.fido2 = None,
                "on" | "only" => {
                    let pin = config.fido2.take().and_then(|f| f.pin);
                    config.fido2 = Some(Fido2Config {
                        pin,
                        ..Fido2Config::default()
                    });
                    config.piv = value == "on";
                }
                _ => return Err(format!("--fido2 takes off, on or only, not {value:?}")),
            },
            "--fido2-pin" => {
                config.fido2.get_or_insert_with(Fido2Config::default).pin = Some(value)
            }
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let _key = VirtualYubiKey::spawn(config, addr).map_err(|e| e.to_string())?;
    eprintln!("virtual YubiKey plugged into vpcd at {addr}; Ctrl-C to pull it");
    loop {
        std::thread::park();
    }
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tapsign-vyk: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
