//! A bot's side of tapsign, in Rust: sign a Binance order and print the request to send.
//!
//! ```sh
//! tapsign agent &                      # the agent, on this machine (or forwarded: docs/remote-bots.md)
//! tapsign key add binance-main --exchange binance
//! tapsign unlock                       # touch the token
//! cargo run -p tapsign-proto --example bot -- binance-main BTCUSDT 0.001 20000
//! ```
//!
//! It prints the method, the URL and the headers, exactly as the exchange must receive them.
//! A real bot sends them with its HTTP client right away: the agent stamped the time, so the
//! signature is good only within Binance's receive window. The secret never reaches this
//! process; only the API key does, in the `X-MBX-APIKEY` header the exchange needs anyway.

use std::process::ExitCode;

use tapsign_proto::client::Client;
use tapsign_proto::path::default_socket_path;
use tapsign_proto::{ErrorCode, ProtoError, SignRequest};

const BINANCE: &str = "https://api.binance.com";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [key, symbol, quantity, price] = match args.as_slice() {
        [] => ["binance-main", "BTCUSDT", "0.001", "20000"].map(String::from),
        [k, s, q, p] => [k, s, q, p].map(String::clone),
        _ => {
            eprintln!("usage: bot [KEY SYMBOL QUANTITY PRICE]");
            return ExitCode::from(2);
        }
    };
    match run(&key, &symbol, &quantity, &price) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bot: {}", explain(&e));
            ExitCode::FAILURE
        }
    }
}

fn run(key: &str, symbol: &str, quantity: &str, price: &str) -> Result<(), ProtoError> {
    // $TAPSIGN_SOCK, else $XDG_RUNTIME_DIR/tapsign/agent.sock, ... (docs/protocol.md). The
    // client checks the socket is served by this user before it sends anything.
    let mut agent = Client::connect(&default_socket_path(), "example-bot/0.1")?;
    // A limit buy, as the bot would send it. The agent adds timestamp, recvWindow and
    // signature; it never reorders or re-encodes what is here.
    let order = SignRequest {
        key: key.into(),
        method: "POST".into(),
        path: "/api/v3/order".into(),
        query: format!(
            "symbol={symbol}&side=BUY&type=LIMIT&timeInForce=GTC&quantity={quantity}&price={price}"
        ),
        ..SignRequest::default()
    };
    let signed = agent.sign(order)?;
    println!(
        "{} {BINANCE}{}?{}",
        signed.method, signed.path, signed.query
    );
    for (name, value) in &signed.headers {
        println!("{name}: {value}");
    }
    if !signed.body.is_empty() {
        println!("\n{}", signed.body);
    }
    Ok(())
}

/// What the bot should do about an error: match on the stable code, not on the message.
fn explain(e: &ProtoError) -> String {
    match e.code() {
        Some(ErrorCode::Locked | ErrorCode::Expired | ErrorCode::BudgetExhausted) => {
            format!("{e}\n  no usable session: stop trading until the trader runs `tapsign unlock`")
        }
        Some(ErrorCode::PolicyDenied | ErrorCode::UnknownKey | ErrorCode::BadRequest) => {
            format!("{e}\n  refused: do not retry unchanged; fix the request or the bot's key name")
        }
        Some(ErrorCode::Busy) => format!("{e}\n  the agent is busy: retry after a short pause"),
        Some(_) => e.to_string(),
        None => format!(
            "{e}\n  is the agent running? (`tapsign agent`, or TAPSIGN_SOCK for a forwarded socket)"
        ),
    }
}
