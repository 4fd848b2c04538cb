//! The request corpora under agent/tests/corpus/ (format: the comment at the top of each
//! file): `denied/<exchange>.toml`, fund-moving requests the agent must refuse, and
//! `trading/<exchange>.toml`, a trading session as ccxt sends it, which the default profile
//! must allow, and `margin/<exchange>.toml`, orders that borrow through their own fields,
//! which it signs only for a key with `margin = true`.
#![allow(dead_code)] // Each test binary uses a different subset.

use serde::Deserialize;
use tapsign_agent::credential::Exchange;

use super::oracle::Wire;

#[derive(Debug, Clone, Deserialize)]
pub struct Entry {
    pub what: String,
    pub method: String,
    pub path: String,
    #[serde(default)]
    pub query: String,
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    pub doc: String,
}

impl Entry {
    pub fn wire(&self) -> Wire {
        Wire::new(&self.method, &self.path, &self.query, &self.body)
    }
}

#[derive(Debug, Deserialize)]
struct File {
    #[serde(default, rename = "request")]
    requests: Vec<Entry>,
}

/// The entries of `corpus/<kind>/<exchange>.toml` (none when the file does not exist).
pub fn load(kind: &str, exchange: Exchange) -> Vec<Entry> {
    let path = format!(
        "{}/tests/corpus/{kind}/{}.toml",
        env!("CARGO_MANIFEST_DIR"),
        exchange.as_str()
    );
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let f: File = toml::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
            f.requests
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => panic!("{path}: {e}"),
    }
}

/// Denied requests that some trading-profile entry of an exchange that does not sign the path
/// admits all the same, and no parameter list can tell apart: (exchange, denied method and
/// path, why it is accepted). Each belongs, with its reason, in docs/threat-model.md;
/// profiles.rs and seams.rs list them instead of failing on them.
pub const ACCEPTED: &[(&str, &str, &str)] = &[
    (
        "upbit",
        "DELETE /v1/withdraws/coin",
        "cancelling withdrawal X takes only uuid, as cancelling or reading order X does: it can \
         only cancel the user's own pending withdrawal, and nothing leaves the account",
    ),
    (
        "upbit",
        "GET /v1/withdraw",
        "read only: a withdrawal read by uuid has the parameters of an order read by uuid",
    ),
    (
        "upbit",
        "GET /v1/deposit",
        "read only: a deposit read by uuid has the parameters of an order read by uuid",
    ),
    (
        "upbit",
        "GET /v1/lending",
        "read only: lending position X read by its uuid has the parameters of an order read by \
         uuid; it needs the key's lending permission",
    ),
    (
        "upbit",
        "GET /v1/lendings/request",
        "read only: a lending request read by its identifier has the parameters of an order \
         read by identifier; it needs the key's lending permission",
    ),
    (
        "upbit",
        "GET /v1/lendings/closed",
        "read only: start_time, end_time and limit are what a closed-order list takes; it needs \
         the key's lending permission",
    ),
    (
        "upbit",
        "GET /v1/pockets/api_keys",
        "read only: listing pocket X's API keys (access keys, permissions and allowed IPs, never \
         a secret) takes uuids[]=X, as reading orders by their uuids does; it needs the main \
         pocket's pocket-management permission",
    ),
    (
        "upbit",
        "GET /v1/pockets/assets",
        "read only: a pocket's balance read by uuid has the parameters of an order read by uuid",
    ),
    (
        "upbit",
        "POST /v1/lendings/repay_with_collateral",
        "repaying a lending position in full with its collateral takes only the position's \
         uuid (and a request identifier), as reading or cancelling order X does: it sells \
         collateral or buys the borrowed asset at market and charges the repayment fees, but \
         nothing leaves the account; it needs the key's lending permission, which trading \
         keys must not have (docs/exchanges.md)",
    ),
    (
        "bithumb",
        "DELETE /v1/withdraws/coin",
        "cancelling withdrawal X takes only uuid, as cancelling or reading order X does: it can \
         only cancel the user's own pending withdrawal, and nothing leaves the account",
    ),
    (
        "upbit",
        "GET /v1/withdraws",
        "read only: listing withdrawals takes only optional filters, and limit, page and \
         order_by are what an order list pages with; it needs the withdrawal-read permission",
    ),
    (
        "upbit",
        "GET /v1/deposits",
        "read only: listing deposits takes only optional filters, and limit, page and order_by \
         are what an order list pages with; it needs the deposit-read permission",
    ),
    (
        "bithumb",
        "GET /v1/withdraws",
        "read only: listing withdrawals takes only optional filters, and limit, page and \
         order_by are what an order list pages with",
    ),
    (
        "bithumb",
        "GET /v1/deposits",
        "read only: listing deposits takes only optional filters, and limit, page and order_by \
         are what an order list pages with",
    ),
    (
        "bithumb",
        "GET /v1/withdraws/krw",
        "read only: its parameters (state, uuids[], limit, page, order_by) are order-list ones, \
         and ccxt lists orders without market when it is given no symbol",
    ),
    (
        "binance",
        "GET /sapi/v1/pay/transactions",
        "read only: a time window (startTime, endTime, limit) is all that fetch_ledger's income \
         query carries, and all that many /sapi history reads (Pay, deposits, withdrawals) need",
    ),
    (
        "binance",
        "DELETE /sapi/v1/margin/apiKey",
        "deleting margin special keys takes only optional parameters, and symbol=X alone is what \
         every symbol read (open orders, trades, commission) signs: at most it deletes the \
         isolated-margin special keys of X, which exist only for accounts that made them; \
         nothing leaves the account and no key is created or widened",
    ),
    (
        "binance",
        "POST /sapi/v1/margin/isolated/account",
        "enabling the isolated margin account of X takes symbol=X alone, as every symbol read \
         does: an account setting, with nothing borrowed, moved or opened to another party",
    ),
    (
        "binance",
        "DELETE /sapi/v1/margin/isolated/account",
        "disabling the isolated margin account of X takes symbol=X alone, as every symbol read \
         does: an account setting (Binance allows it once a day per pair), and nothing moves",
    ),
    (
        "bybit",
        "POST /v5/asset/deposit/deposit-to-account",
        "it only picks which of the user's own accounts receives deposits; its one parameter, \
         accountType, is the one fetch_balance's wallet-balance query must carry",
    ),
];

/// Denied requests an allowed request makes only if the exchange ignores the parameters the
/// denied endpoint does not take (the allowed request carries them and more): (exchange,
/// denied method and path, why it is accepted). docs/threat-model.md has the reasoning;
/// profiles.rs lists every such case in the corpora and fails on one not here or in
/// [`ACCEPTED`].
pub const LENIENT: &[(&str, &str, &str)] = &[
    (
        "binance",
        "POST /sapi/v1/convert/limit/cancelOrder",
        "an order read, cancel or amend carries orderId; as a convert request it can only cancel \
         the user's own pending limit convert order: nothing is converted or moved",
    ),
    (
        "bybit",
        "POST /v5/crypto-loan-fixed/supply-order-cancel",
        "a cancel or amend of order X carries orderId=X, the whole of a cancel of fixed-rate \
         lending offer X, which Bybit grants with the Spot trade permission: it withdraws the \
         account's own pending offer, and nothing leaves the account",
    ),
    (
        "bybit",
        "POST /v5/crypto-loan-fixed/borrow-order-cancel",
        "a cancel or amend of order X carries orderId=X, the whole of a cancel of fixed-rate \
         borrow request X (Spot trade permission): it withdraws the account's own pending \
         request, and nothing is borrowed or moved",
    ),
    (
        "bybit",
        "POST /v5/p2p/order/finish",
        "a cancel or amend of order X carries orderId=X (with category and symbol), the whole of \
         a P2P release of order X; the ids are alike, so no parameter rule tells them apart. It \
         needs a key that can use Bybit's P2P API: a trading key must not be one",
    ),
    // Red-team round 23: Bybit's POSTs without parameters, which any signed POST body makes
    // (an order's, a cancel's, `set-leverage`'s), and its cancels by an optional order id.
    (
        "bybit",
        "POST /v5/account/repay",
        "with neither coin nor amount it repays every liability, converting other assets: \
         nothing leaves the account, and a key that does not borrow has no liability to repay",
    ),
    (
        "bybit",
        "POST /v5/account/quick-repayment",
        "without coin it repays every liability, converting other assets (Bybit grants it with \
         a contract-trading permission): nothing leaves the account, and a key that does not \
         borrow has no liability to repay",
    ),
    (
        "bybit",
        "POST /v5/account/upgrade-to-uta",
        "takes no parameters: it moves a classic account's wallets into the unified account \
         for good (refused while orders are open); nothing leaves the account, but it cannot \
         be undone, so docs/exchanges.md says to upgrade the account before a key goes to a bot",
    ),
    (
        "bybit",
        "POST /v5/user/delete-api",
        "takes no parameters: the key deletes itself, so the bot loses it and nothing moves; \
         Bybit lets a key change API keys only with a transfer or withdrawal permission, which \
         a trading key must not hold",
    ),
    (
        "bybit",
        "POST /user/v3/private/delete-api",
        "the v3 twin of /v5/user/delete-api, signed the same way: the key deletes itself, and \
         only with a transfer or withdrawal permission",
    ),
    (
        "bybit",
        "POST /v5/user/delete-sub-api",
        "its one parameter, apikey, is optional: sent with a sub-account's own key, that key \
         deletes itself, and nothing moves; it needs the Account Transfer or Sub Member \
         Transfer permission, which a trading key must not hold",
    ),
    (
        "bybit",
        "POST /v5/user/create-demo-member",
        "takes no parameters: it creates a demo-trading sub-member, whose funds are play money; \
         nothing moves and no key is made",
    ),
    (
        "bybit",
        "POST /v5/rfq/cancel-all-rfq",
        "takes no parameters: it cancels the account's own open block-trade requests (RFQ, \
         which the profile leaves out), and nothing moves",
    ),
    (
        "bybit",
        "POST /v5/rfq/cancel-all-quotes",
        "takes no parameters: it cancels the account's own open block-trade quotes, and \
         nothing moves",
    ),
    (
        "bybit",
        "POST /v5/event/cancel",
        "a cancel or amend of order X carries orderId=X, the whole of a cancel of \
         event-contract quote X (maker accounts only): it withdraws the account's own quote, \
         and nothing moves",
    ),
    (
        "bybit",
        "POST /v5/spread/order/cancel",
        "a cancel or amend of order X carries orderId=X, the whole of a cancel of spread order \
         X: it cancels the account's own order, and nothing moves",
    ),
    (
        "bybit",
        "GET /v5/asset/withdraw/withdrawable-amount",
        "read only: how much of a coin can be withdrawn, the coin a wallet-balance read names",
    ),
];

/// Why this denied request is accepted where the exchange ignores extra parameters, if it is.
pub fn lenient(exchange: Exchange, method: &str, path: &str) -> Option<&'static str> {
    reason(LENIENT, exchange, method, path)
}

/// Why the overlap of this denied request with the trading profile is accepted, if it is.
pub fn accepted(exchange: Exchange, method: &str, path: &str) -> Option<&'static str> {
    reason(ACCEPTED, exchange, method, path)
}

fn reason(
    list: &[(&str, &str, &'static str)],
    exchange: Exchange,
    method: &str,
    path: &str,
) -> Option<&'static str> {
    let id = format!("{method} {path}");
    list.iter()
        .find(|(ex, what, _)| *ex == exchange.as_str() && *what == id)
        .map(|(_, _, why)| *why)
}

/// A concrete path for a deny rule's glob (`**withdraw**` → `/api/withdraw`).
pub fn example_path(glob: &str) -> String {
    let g = glob.strip_prefix("**").map_or(glob.to_string(), |rest| {
        if rest.starts_with('/') {
            format!("/api{rest}")
        } else {
            format!("/api/{rest}")
        }
    });
    let g = g.trim_end_matches("**").trim_end_matches('/');
    g.replace("**", "x").replace('*', "v1")
}
