//! Test tool: make this process not dumpable, as a bot can with one `prctl` (and as
//! `tapsign unlock` does), then ask the agent at the socket named on the command line for one
//! Binance account read with key KEY, and print the signed request as JSON. The tests use it
//! to see how the agent names a client whose executable it may not read.

use tapsign_proto::SignRequest;
use tapsign_proto::client::Client;

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [socket, key] = args.as_slice() else {
        eprintln!("usage: tapsign-hidden-sign SOCKET KEY");
        return std::process::ExitCode::from(2);
    };
    if let Some(w) = tapsign_agent::harden::harden_process().warnings.first() {
        eprintln!("tapsign-hidden-sign: {w}");
        return std::process::ExitCode::FAILURE;
    }
    let req = SignRequest {
        key: key.clone(),
        method: "GET".into(),
        path: "/api/v3/account".into(),
        query: String::new(),
        body: String::new(),
        kind: Default::default(),
    };
    let signed =
        Client::connect(std::path::Path::new(socket), "hidden-sign").and_then(|mut c| c.sign(req));
    match signed {
        Ok(s) => {
            println!("{}", serde_json::to_string(&s).unwrap_or_default());
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tapsign-hidden-sign: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
