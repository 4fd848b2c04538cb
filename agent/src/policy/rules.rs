//! The built-in tables: per exchange, the deny rules (method and lower-case path glob) and
//! the parameters only fund-moving endpoints take. Sources are named above each table;
//! keyword rules (`**withdraw**`) catch endpoints an exchange adds later.

use super::Category::{self, *};
use super::DenyRule;
use crate::credential::Exchange;

const fn any(glob: &'static str, category: Category) -> DenyRule {
    DenyRule {
        method: "*",
        glob,
        category,
    }
}

/// shared/notes/exchanges.md §1 and §12; keyword rules catch endpoints added later.
static UPBIT_DENY: &[DenyRule] = &[
    any("/v1/withdraw**", Withdrawal),
    any("**withdraw**", Withdrawal),
    any("**transfer**", Transfer),
    any("/v1/deposits/krw**", Deposit),
    any("/v1/deposits/generate_coin_address**", Deposit),
    any("/v1/travel_rule/**", TravelRule),
    any("**api_key**", ApiKeys),
    any("**apikey**", ApiKeys),
    any("**api-key**", ApiKeys),
];

/// shared/notes/exchanges.md §3.3 and §12, checked against binance_all_endpoints.txt.
static BINANCE_DENY: &[DenyRule] = &[
    any("/sapi/*/capital/withdraw**", Withdrawal),
    any("**withdraw**", Withdrawal),
    any("/sapi/*/localentity/**", Withdrawal),
    any("/sapi/*/fiat/**", Fiat),
    any("/sapi/*/capital/deposit/credit-apply**", Deposit),
    any("**transfer**", Transfer),
    any("**collection**", Transfer),
    any("**sub-account**", SubAccount),
    any("**subaccount**", SubAccount),
    any("/sapi/*/broker/**", SubAccount),
    any("**apikey**", ApiKeys),
    any("**api-key**", ApiKeys),
    any("**api_key**", ApiKeys),
    any("/sapi/*/account/apirestrictions**", ApiKeys),
    any("/sapi/*/giftcard/**", GiftCard),
    any("/sapi/*/w3w/**", Web3Wallet),
];

const fn on(method: &'static str, glob: &'static str, category: Category) -> DenyRule {
    DenyRule {
        method,
        glob,
        category,
    }
}

/// shared/notes/exchanges.md §2 and §12 (v2 and legacy endpoints).
static BITHUMB_DENY: &[DenyRule] = &[
    any("**withdraw**", Withdrawal),
    any("**transfer**", Transfer),
    any("/v1/deposits/krw**", Deposit),
    any("/v1/deposits/generate_coin_address**", Deposit),
    any("**api_key**", ApiKeys),
    any("**apikey**", ApiKeys),
    any("**api-key**", ApiKeys),
];

/// shared/notes/exchanges.md §4 and §12, checked against bybit_ep2.txt.
static BYBIT_DENY: &[DenyRule] = &[
    any("**withdraw**", Withdrawal),
    any("**transfer**", Transfer),
    any("/v5/asset/deposit/deposit-to-account**", Transfer),
    any("/v5/user/**", SubAccount),
    any("**sub-member**", SubAccount),
    any("**submember**", SubAccount),
    any("**sub-account**", SubAccount),
    any("**apilimit**", ApiKeys),
    any("**apikey**", ApiKeys),
    any("**api-key**", ApiKeys),
    any("/v5/broker/award/**", Transfer),
    any("/v5/ins-loan/association-uid**", SubAccount),
    any("/v5/fiat/**", Fiat),
    any("**/travel-rule/**", TravelRule),
];

/// shared/notes/exchanges.md §5 and §12, checked against okx_ep.txt.
static OKX_DENY: &[DenyRule] = &[
    any("**withdraw**", Withdrawal),
    any("**transfer**", Transfer),
    any("/api/v5/users/**", SubAccount),
    any("**subaccount**", SubAccount),
    any("**apikey**", ApiKeys),
    any("/api/v5/broker/nd/**", SubAccount),
];

/// shared/notes/exchanges.md §6 and §12: Advanced Trade v3 and the Coinbase App v2 endpoints
/// the same CDP key reaches.
static COINBASE_DENY: &[DenyRule] = &[
    any("**withdraw**", Withdrawal),
    any("**transfer**", Transfer),
    any("/api/v3/brokerage/portfolios/move_funds**", Transfer),
    on("POST", "/api/v3/brokerage/portfolios", SubAccount),
    on("PUT", "/api/v3/brokerage/portfolios/*", SubAccount),
    on("DELETE", "/api/v3/brokerage/portfolios/*", SubAccount),
    any("/api/v3/brokerage/intx/allocate**", Transfer),
    any("/api/v3/brokerage/intx/multi_asset_collateral**", Transfer),
    any("/api/v3/brokerage/cfm/sweeps**", Transfer),
    any("/v2/accounts/*/transactions**", Withdrawal),
    any("/v2/accounts/*/deposits**", Deposit),
    any("/v2/accounts/*/addresses**", Deposit),
    on("POST", "/v2/accounts/*/buys**", Fiat),
    on("POST", "/v2/accounts/*/sells**", Fiat),
    on("PUT", "/v2/user**", ApiKeys),
    on("DELETE", "/v2/accounts/**", SubAccount),
    any("**api_key**", ApiKeys),
    any("**apikey**", ApiKeys),
];

/// shared/notes/exchanges.md §7 and §12 (method names under `/0/private/`).
static KRAKEN_DENY: &[DenyRule] = &[
    any("**withdraw**", Withdrawal),
    any("**transfer**", Transfer),
    any("**subaccount**", SubAccount),
    any("/0/private/depositaddresses**", Deposit),
    any("/0/private/earn/allocate**", Transfer),
    any("/0/private/earn/deallocate**", Transfer),
];

/// shared/notes/exchanges.md §9 and §12, checked against gate_ep.txt (paths with or
/// without `/api/v4`: deny rules match any tail).
static GATE_DENY: &[DenyRule] = &[
    any("**withdraw**", Withdrawal),
    any("**transfer**", Transfer),
    any("**sub_account**", SubAccount),
    any("**/wallet/small_balance**", Transfer),
    // Releasing a P2P order pays the counterparty; OTC orders move fiat to a bank.
    any("**/p2p/**", Transfer),
    any("/api/v4/otc/**", Fiat),
];

/// shared/notes/exchanges.md §10 and §12, checked against kucoin_ep.txt.
static KUCOIN_DENY: &[DenyRule] = &[
    any("**withdraw**", Withdrawal),
    any("**transfer**", Transfer),
    any("**/sub/**", SubAccount),
    any("**sub-account**", SubAccount),
    any("**sub-api**", ApiKeys),
    any("**api-key**", ApiKeys),
    any("**apikey**", ApiKeys),
    any("/api/*/broker/nd/**", SubAccount),
    any("/api/*/user/**", SubAccount),
    on("POST", "/api/*/deposit-address**", Deposit),
];

/// shared/notes/exchanges.md §8 and §12, checked against bitget_ep.txt.
static BITGET_DENY: &[DenyRule] = &[
    any("**withdraw**", Withdrawal),
    any("**transfer**", Transfer),
    any("**subaccount**", SubAccount),
    any("**/sub-**", SubAccount),
    any("**apikey**", ApiKeys),
    any("/api/*/user/**", SubAccount),
    any("/api/*/ins-loan/bind-uid**", SubAccount),
    // Releasing a P2P order pays the counterparty.
    any("**/p2p/**", Transfer),
    any("/api/*/broker/**", SubAccount),
    any("**deposit-account**", Transfer),
    any("**/subaccount-address**", Deposit),
];

/// Parameters only fund-moving endpoints take (lower case, without a trailing `[]`).
static UPBIT_PARAMS: &[(&str, Category)] = &[
    ("address", Withdrawal),
    ("secondary_address", Withdrawal),
    ("transaction_type", Withdrawal),
    ("two_factor_type", Withdrawal),
    ("amount", Withdrawal),
];

/// Bybit signs `timestamp + key + recvWindow + payload`, not the path.
static BYBIT_PARAMS: &[(&str, Category)] = &[
    ("address", Withdrawal),
    ("tag", Withdrawal),
    ("forcechain", Withdrawal),
    ("transferid", Transfer),
    ("frommemberid", Transfer),
    ("tomemberid", Transfer),
    ("fromaccounttype", Transfer),
    ("toaccounttype", Transfer),
    // API-key and sub-member management (/v5/user/*): a new key would live outside the agent,
    // with no session bounds. None of these names is an order parameter.
    ("subuid", SubAccount),
    ("username", SubAccount),
    ("password", SubAccount),
    ("membertype", SubAccount),
    ("readonly", ApiKeys),
    ("permissions", ApiKeys),
    ("ips", ApiKeys),
    ("apikey", ApiKeys),
];

static BINANCE_PARAMS: &[(&str, Category)] = &[
    ("address", Withdrawal),
    ("addresstag", Withdrawal),
    ("withdraworderid", Withdrawal),
    ("toemail", SubAccount),
    ("fromemail", SubAccount),
    ("email", SubAccount),
    ("token", GiftCard),
    ("facetoken", GiftCard),
    ("basetoken", GiftCard),
    ("subaccountapikey", ApiKeys),
    ("publickey", ApiKeys),
    ("apiname", ApiKeys),
    ("ipaddress", ApiKeys),
    ("ip", ApiKeys),
    // Broker sub-account transfers.
    ("subaccountid", SubAccount),
    ("toid", SubAccount),
];

/// The built-in deny rules of `exchange`.
pub fn deny_rules(exchange: Exchange) -> &'static [DenyRule] {
    match exchange {
        Exchange::Upbit => UPBIT_DENY,
        Exchange::Binance => BINANCE_DENY,
        Exchange::Bithumb => BITHUMB_DENY,
        Exchange::Bybit => BYBIT_DENY,
        Exchange::Okx => OKX_DENY,
        Exchange::Coinbase => COINBASE_DENY,
        Exchange::Kraken => KRAKEN_DENY,
        Exchange::Gate => GATE_DENY,
        Exchange::Kucoin => KUCOIN_DENY,
        Exchange::Bitget => BITGET_DENY,
    }
}

pub(super) fn fund_params(exchange: Exchange) -> &'static [(&'static str, Category)] {
    match exchange {
        Exchange::Upbit | Exchange::Bithumb => UPBIT_PARAMS,
        Exchange::Binance => BINANCE_PARAMS,
        Exchange::Bybit => BYBIT_PARAMS,
        // These sign the path (Coinbase signs method and path in the JWT's `uri`), so a
        // signature cannot be carried to a withdrawal endpoint.
        Exchange::Okx
        | Exchange::Coinbase
        | Exchange::Kraken
        | Exchange::Gate
        | Exchange::Kucoin
        | Exchange::Bitget => &[],
    }
}
