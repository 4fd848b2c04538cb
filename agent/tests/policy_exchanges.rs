//! The deny lists of Bithumb, Bybit, OKX, Coinbase, Kraken, Gate, KuCoin and Bitget
//! (docs/sources.md, "Deny lists": checked against each exchange's documented
//! endpoints): every fund-moving endpoint is refused under every spelling, and the endpoints a
//! trading bot uses pass.

mod support;

use support::spellings;
use tapsign_agent::credential::Exchange::{
    self, Bitget, Bithumb, Bybit, Coinbase, Gate, Kraken, Kucoin, Okx,
};
use tapsign_agent::policy::{self, Denial, KeyPolicy, Refusal};

/// Refused whatever the method.
const DENIED: &[(Exchange, &str)] = &[
    (Bithumb, "/v1/withdraws/coin"),
    (Bithumb, "/v1/withdraws/krw"),
    (Bithumb, "/v1/withdraws/coin_addresses"),
    (Bithumb, "/v1/deposits/krw"),
    (Bithumb, "/v1/deposits/generate_coin_address"),
    (Bithumb, "/v1/api_keys"),
    (Bithumb, "/trade/btc_withdrawal"),
    (Bithumb, "/trade/krw_withdrawal"),
    (Bybit, "/v5/asset/withdraw/create"),
    (Bybit, "/v5/asset/withdraw/cancel"),
    (Bybit, "/v5/asset/transfer/inter-transfer"),
    (Bybit, "/v5/asset/transfer/universal-transfer"),
    (Bybit, "/v5/asset/transfer/save-transfer-sub-member"),
    (Bybit, "/v5/asset/deposit/deposit-to-account"),
    (Bybit, "/v5/earn/pwm/fund-transfer"),
    (Bybit, "/v5/user/create-sub-api"),
    (Bybit, "/v5/user/update-api"),
    (Bybit, "/v5/user/update-sub-api"),
    (Bybit, "/v5/user/delete-api"),
    // Red-team round 8: moves the classic wallets into the unified account, for good.
    (Bybit, "/v5/account/upgrade-to-uta"),
    (Bybit, "/v5/user/delete-sub-api"),
    (Bybit, "/v5/user/create-sub-member"),
    (Bybit, "/v5/user/del-submember"),
    (Bybit, "/v5/user/frozen-sub-member"),
    (Bybit, "/v5/user/create-demo-member"),
    (Bybit, "/v5/apilimit/set"),
    (Bybit, "/v5/broker/apilimit/set"),
    (Bybit, "/v5/broker/award/distribute-award"),
    (Bybit, "/v5/earn/pwm/asset-manager/create-sub-account"),
    (Bybit, "/v5/asset/travel-rule/deposit/submit"),
    (Bybit, "/v5/fiat/trade-execute"),
    (Okx, "/api/v5/asset/withdrawal"),
    (Okx, "/api/v5/asset/withdrawal-lightning"),
    (Okx, "/api/v5/asset/cancel-withdrawal"),
    (Okx, "/api/v5/asset/transfer"),
    (Okx, "/api/v5/asset/subaccount/transfer"),
    (Okx, "/api/v5/users/subaccount/set-transfer-out"),
    (Okx, "/api/v5/tradingBot/grid/withdraw-income"),
    (Okx, "/api/v5/users/subaccount/create-subaccount"),
    (Okx, "/api/v5/users/subaccount/apikey"),
    (Okx, "/api/v5/users/subaccount/modify-apikey"),
    (Okx, "/api/v5/users/subaccount/delete-apikey"),
    (Okx, "/api/v5/broker/nd/create-subaccount"),
    (Okx, "/api/v5/broker/nd/delete-subaccount"),
    (Okx, "/api/v5/broker/nd/subaccount/apikey"),
    (Okx, "/api/v5/broker/nd/subaccount/modify-apikey"),
    (Okx, "/api/v5/broker/nd/subaccount/delete-apikey"),
    (Coinbase, "/api/v3/brokerage/portfolios/move_funds"),
    (Coinbase, "/api/v3/brokerage/intx/allocate"),
    (Coinbase, "/api/v3/brokerage/intx/multi_asset_collateral"),
    (Coinbase, "/api/v3/brokerage/cfm/sweeps/schedule"),
    (Coinbase, "/api/v3/brokerage/cfm/sweeps"),
    (Coinbase, "/v2/accounts/1f2e/transactions"),
    (Coinbase, "/v2/accounts/1f2e/transactions/9a8b/complete"),
    (Coinbase, "/v2/accounts/1f2e/transactions/9a8b/resend"),
    (Coinbase, "/v2/accounts/1f2e/withdrawals"),
    (Coinbase, "/v2/accounts/1f2e/withdrawals/9a8b/commit"),
    (Coinbase, "/v2/accounts/1f2e/deposits"),
    (Coinbase, "/v2/accounts/1f2e/deposits/9a8b/commit"),
    (Coinbase, "/v2/accounts/1f2e/addresses"),
    (Kraken, "/0/private/Withdraw"),
    (Kraken, "/0/private/WithdrawCancel"),
    (Kraken, "/0/private/WalletTransfer"),
    (Kraken, "/0/private/NftAcceptOffer"),
    (Kraken, "/0/private/NftPlaceOffer"),
    (Kraken, "/0/private/NftCreateAuction"),
    (Kraken, "/0/private/CreateOtcQuoteRequest"),
    (Kraken, "/0/private/UpdateOtcQuote"),
    (Kraken, "/0/private/AccountTransfer"),
    (Kraken, "/0/private/CreateSubaccount"),
    (Kraken, "/0/private/Earn/Allocate"),
    (Kraken, "/0/private/Earn/Deallocate"),
    (Kraken, "/0/private/DepositAddresses"),
    (Kraken, "/0/private/WithdrawInfo"),
    (Kraken, "/0/private/WithdrawMethods"),
    (Kraken, "/0/private/WithdrawAddresses"),
    (Kraken, "/0/private/WithdrawStatus"),
    (Gate, "/api/v4/withdrawals"),
    (Gate, "/api/v4/withdrawals/push"),
    (Gate, "/api/v4/withdrawals/12345"),
    (Gate, "/api/v4/wallet/transfers"),
    (Gate, "/api/v4/wallet/sub_account_transfers"),
    (Gate, "/api/v4/wallet/sub_account_to_sub_account"),
    (Gate, "/api/v4/crossex/transfers"),
    (Gate, "/api/v4/sub_accounts"),
    (Gate, "/api/v4/sub_accounts/10001/keys"),
    (Gate, "/api/v4/sub_accounts/10001/keys/abc"),
    (Gate, "/api/v4/sub_accounts/10001/lock"),
    (Gate, "/api/v4/sub_accounts/10001/unlock"),
    (Gate, "/api/v4/wallet/small_balance"),
    (Gate, "/api/v4/wallet/push"),
    (Gate, "/api/v4/account/main_keys"),
    (Gate, "/api/v4/p2p/merchant/transaction/confirm-receipt"),
    (Gate, "/api/v4/otc/order/create"),
    (Kucoin, "/api/v1/withdrawals"),
    (Kucoin, "/api/v3/withdrawals"),
    (Kucoin, "/api/v1/withdrawals/5bffb63303aa675e8bbe18f9"),
    (Kucoin, "/api/ua/v1/withdrawal"),
    (Kucoin, "/api/v2/accounts/inner-transfer"),
    (Kucoin, "/api/v2/accounts/sub-transfer"),
    (Kucoin, "/api/v3/accounts/universal-transfer"),
    (Kucoin, "/api/v3/transfer-out"),
    (Kucoin, "/api/v1/transfer-in"),
    (Kucoin, "/api/ua/v1/account/transfer"),
    (Kucoin, "/api/ua/v1/sub-account/canTransferOut"),
    (Kucoin, "/api/v1/broker/nd/transfer"),
    (Kucoin, "/api/v1/sub/api-key"),
    (Kucoin, "/api/v1/sub/api-key/update"),
    (Kucoin, "/api/ua/v1/user/create-sub-api-key"),
    (Kucoin, "/api/v2/sub/user/created"),
    (Kucoin, "/api/ua/v1/user/sub/create-sub-account"),
    (Kucoin, "/api/v3/sub/user/margin/enable"),
    (Kucoin, "/api/v3/sub/user/futures/enable"),
    (Kucoin, "/api/v1/broker/nd/account"),
    (Kucoin, "/api/v1/broker/nd/account/apikey"),
    (Kucoin, "/api/v1/broker/nd/account/update-apikey"),
    (Kucoin, "/api/v1/margin/withdrawMargin"),
    (Bitget, "/api/v2/spot/wallet/withdrawal"),
    (Bitget, "/api/v2/spot/wallet/cancel-withdrawal"),
    (Bitget, "/api/v3/account/withdraw"),
    (Bitget, "/api/v3/account/cancel-withdrawal"),
    (Bitget, "/api/v2/broker/account/subaccount-withdrawal"),
    (Bitget, "/api/v3/broker/sub-withdrawal"),
    (Bitget, "/api/v2/spot/wallet/transfer"),
    (Bitget, "/api/v2/spot/wallet/subaccount-transfer"),
    (Bitget, "/api/v3/account/transfer"),
    (Bitget, "/api/v3/account/sub-transfer"),
    (Bitget, "/api/v2/spot/wallet/modify-deposit-account"),
    (Bitget, "/api/v3/account/deposit-account"),
    (Bitget, "/api/v3/copy/futures/transfer"),
    (Bitget, "/api/v2/broker/account/set-subaccount-autotransfer"),
    (Bitget, "/api/v2/user/create-virtual-subaccount"),
    (Bitget, "/api/v2/user/modify-virtual-subaccount"),
    (Bitget, "/api/v2/user/create-virtual-subaccount-apikey"),
    (Bitget, "/api/v2/user/modify-virtual-subaccount-apikey"),
    (Bitget, "/api/v2/user/batch-create-subaccount-and-apikey"),
    (Bitget, "/api/v2/user/create-agent-subaccount"),
    (Bitget, "/api/v3/user/create-sub"),
    (Bitget, "/api/v3/user/create-sub-api"),
    (Bitget, "/api/v3/user/update-sub-api"),
    (Bitget, "/api/v3/user/delete-sub-api"),
    (Bitget, "/api/v3/user/freeze-sub"),
    (Bitget, "/api/v2/broker/manage/create-subaccount-apikey"),
    (Bitget, "/api/v2/broker/manage/modify-subaccount-apikey"),
    (Bitget, "/api/v3/broker/create-sub-apikey"),
    (Bitget, "/api/v3/broker/modify-sub-apikey"),
    (Bitget, "/api/v3/broker/delete-sub-apikey"),
    (Bitget, "/api/v3/broker/create-sub"),
    (Bitget, "/api/v3/broker/modify-sub"),
    (Bitget, "/api/v2/broker/account/create-subaccount"),
    (Bitget, "/api/v2/broker/account/modify-subaccount"),
    (Bitget, "/api/v2/broker/account/modify-subaccount-email"),
    (Bitget, "/api/v2/broker/account/subaccount-address"),
    (Bitget, "/api/v3/broker/sub-deposit-address"),
    (Bitget, "/api/v3/p2p/order-release"),
];

/// Refused for one method only: the same path under another method is an ordinary read.
const DENIED_FOR: &[(Exchange, &str, &str)] = &[
    (Coinbase, "POST", "/api/v3/brokerage/portfolios"),
    (Coinbase, "PUT", "/api/v3/brokerage/portfolios/9a8b"),
    (Coinbase, "DELETE", "/api/v3/brokerage/portfolios/9a8b"),
    (Coinbase, "POST", "/v2/accounts/1f2e/buys"),
    (Coinbase, "POST", "/v2/accounts/1f2e/sells/9a8b/commit"),
    (Coinbase, "PUT", "/v2/user"),
    (Coinbase, "DELETE", "/v2/accounts/1f2e"),
    (Kucoin, "POST", "/api/v1/deposit-addresses"),
    (Kucoin, "POST", "/api/v3/deposit-address/create"),
    (Kucoin, "POST", "/api/ua/v1/account/mode"),
    (Bitget, "POST", "/api/v2/spot/account/upgrade"),
    (Bitget, "POST", "/api/v3/account/switch"),
    (
        Bitget,
        "POST",
        "/api/mix/v1/trace/followerSetBatchTraceConfig",
    ),
    (
        Bitget,
        "POST",
        "/api/spot/v1/trace/order/closeTrackingOrder",
    ),
];

/// What a trading bot calls.
const ALLOWED: &[(Exchange, &str, &str)] = &[
    (Bithumb, "GET", "/v1/accounts"),
    (Bithumb, "POST", "/v1/orders"),
    (Bithumb, "DELETE", "/v1/order"),
    (Bybit, "POST", "/v5/order/create"),
    (Bybit, "POST", "/v5/order/cancel"),
    (Bybit, "GET", "/v5/order/realtime"),
    (Bybit, "GET", "/v5/account/wallet-balance"),
    (Bybit, "GET", "/v5/position/list"),
    (Okx, "POST", "/api/v5/trade/order"),
    (Okx, "POST", "/api/v5/trade/cancel-order"),
    (Okx, "GET", "/api/v5/account/balance"),
    (Okx, "POST", "/api/v5/account/set-leverage"),
    (Coinbase, "POST", "/api/v3/brokerage/orders"),
    (Coinbase, "POST", "/api/v3/brokerage/orders/batch_cancel"),
    (Coinbase, "GET", "/api/v3/brokerage/accounts"),
    (Coinbase, "GET", "/api/v3/brokerage/portfolios"),
    (Coinbase, "GET", "/v2/accounts"),
    (Kraken, "POST", "/0/private/AddOrder"),
    (Kraken, "POST", "/0/private/CancelOrder"),
    (Kraken, "POST", "/0/private/Balance"),
    (Kraken, "POST", "/0/private/GetWebSocketsToken"),
    (Gate, "POST", "/api/v4/spot/orders"),
    (Gate, "GET", "/api/v4/spot/accounts"),
    (Gate, "POST", "/api/v4/futures/usdt/orders"),
    (Kucoin, "POST", "/api/v1/orders"),
    (Kucoin, "POST", "/api/v1/hf/orders"),
    (Kucoin, "GET", "/api/v1/accounts"),
    (Kucoin, "GET", "/api/v1/deposit-addresses"),
    (Kucoin, "GET", "/api/ua/v1/account/mode"),
    (Bitget, "GET", "/api/v2/spot/account/upgrade-status"),
    (Bitget, "POST", "/api/v2/spot/trade/place-order"),
    (Bitget, "POST", "/api/v2/mix/order/place-order"),
    (Bitget, "GET", "/api/v2/mix/order/plan-sub-order"),
    (Bitget, "GET", "/api/v2/spot/account/assets"),
];

fn refused(exchange: Exchange, method: &str, path: &str) {
    for spelled in spellings(path) {
        let got = policy::check(exchange, method, &spelled);
        assert!(
            matches!(got, Err(Denial::BuiltIn { .. })),
            "{exchange} {method} {spelled} (from {path}): {got:?}"
        );
    }
}

#[test]
fn every_fund_moving_endpoint_is_refused_under_every_spelling() {
    for &(exchange, path) in DENIED {
        for method in ["POST", "GET", "DELETE", "put"] {
            refused(exchange, method, path);
        }
    }
    for &(exchange, method, path) in DENIED_FOR {
        refused(exchange, method, path);
        refused(exchange, &method.to_lowercase(), path);
    }
}

#[test]
fn ordinary_trading_endpoints_pass() {
    support::assert_allowed(ALLOWED);
}

/// Bybit and Bithumb do not sign the path either, so withdrawal parameters are refused on
/// an order path, as for Binance and Upbit.
#[test]
fn withdrawal_parameters_are_refused_where_the_path_is_not_signed() {
    let cases = [
        (
            Bybit,
            "POST",
            "/v5/order/create",
            "",
            r#"{"coin":"USDT","chain":"ETH","address":"0xabc","amount":"10"}"#,
        ),
        (
            Bybit,
            "POST",
            "/v5/order/create",
            "",
            r#"{"transferId":"x","coin":"USDT","amount":"1","fromAccountType":"UNIFIED","toAccountType":"FUND"}"#,
        ),
        (
            Bithumb,
            "POST",
            "/v1/orders",
            "",
            r#"{"currency":"BTC","net_type":"BTC","amount":"1","address":"x"}"#,
        ),
    ];
    let policy = KeyPolicy::default();
    for (exchange, method, path, query, body) in cases {
        let got = policy::check_request(
            exchange,
            "k",
            &policy,
            &support::req(method, path, query, body),
        );
        assert!(
            matches!(got, Err(Refusal::Denied(Denial::FundParameter { .. }))),
            "{exchange} {body}: {got:?}"
        );
    }
    let order = r#"{"category":"spot","symbol":"BTCUSDT","side":"Buy","orderType":"Limit","qty":"0.1","price":"30000"}"#;
    policy::check_request(
        Bybit,
        "k",
        &KeyPolicy::default(),
        &support::req("POST", "/v5/order/create", "", order),
    )
    .unwrap();
    // OKX signs the path: an `address` in a body is not a withdrawal there (the profile still
    // refuses parameters its endpoints do not take).
    assert_eq!(policy::check_params(Okx, "", r#"{"address":"x"}"#), Ok(()));
}
