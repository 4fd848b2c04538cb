//! Objects and lists that arrive as one value (red-team round 26).
//!
//! The rules read names: Gate's borrow switch is `put.auto_borrow`, an order of a batch's
//! `values` are `[].type`'s. An object or a list sent as JSON text inside a string
//! (`"put":"{\"auto_borrow\":true}"`, `"orderList":"[…]"`, a batch's member as a string) is one
//! value to them, named `put`, `orderList` or `[]`. The exchange may read it otherwise: lenient
//! JSON binders (fastjson's string-to-bean coercion, common among these exchanges' Java back
//! ends) read a string as the object or list it spells, and skip blanks, a byte-order mark or
//! a comment before it. So:
//! - [`member_of`]: a name whose members an entry takes (`put` for `put.type`) is refused when
//!   sent as one value, whatever the entry lists, with no line;
//! - [`json_text`]: a value holding `{` or `[` is refused anywhere, whatever the entry lists,
//!   but where the exchange reads JSON text on purpose: Binance's `batchOrders`, which the
//!   agent reads order by order as Binance does, and the id lists of its futures batch cancel.

use std::borrow::Cow;

use super::parse::{JSON_LIST, Param};
use super::profile::{self, Endpoint};
use crate::credential::Exchange;

/// Binance's lists of order ids, a JSON list in a form value (`orderIdList=[1,2]`), as its
/// futures batch cancel takes them.
const ID_LISTS: [&str; 2] = ["orderIdList", "origClientOrderIdList"];

/// A name of `entry`'s that has `name` as its head, followed by `.` or `[` (`put.type` for
/// `put`, `[].side` for `[]`, `orderList[].side` for `orderList`), compared without ASCII case
/// as a lenient server reads names. Binance's `batchOrders` is a list sent as JSON text by
/// design, read by the agent order by order ([`super::parse`]): it has none.
pub(super) fn member_of<'e>(
    exchange: Exchange,
    entry: &'e Endpoint,
    name: &str,
) -> Option<&'e str> {
    if exchange == Exchange::Binance && name.eq_ignore_ascii_case(JSON_LIST) {
        return None;
    }
    entry
        .params
        .iter()
        .find(|p| {
            p.get(..name.len())
                .is_some_and(|h| h.eq_ignore_ascii_case(name))
                && matches!(p.as_bytes().get(name.len()), Some(b'[' | b'.'))
        })
        .map(String::as_str)
}

/// The first parameter whose value, as the exchange reads it (percent-decoded in a query or a
/// form), holds `{` or `[`, with that value. Anywhere in the value, not only first: a lenient
/// reader skips blanks, a byte-order mark or a comment (`/**/{…}`) before an object. No value
/// the profiles need holds either (symbols, order ids and enums are words, and ccxt's client
/// ids never hold them); fields that are free text at the exchange (Kraken's `cl_ord_id`,
/// Coinbase's `client_order_id`, Upbit's `identifier`, KuCoin's `remark`) are refused too, and
/// the refusal tells the bot to use an id without them (red-team round 26's recheck). Binance's `batchOrders` is read order by order, each
/// member a parameter of its own checked here too; its id lists may hold a list of ids, not an
/// object.
pub(super) fn json_text(
    exchange: Exchange,
    params: &[Param],
    json_body: bool,
) -> Option<(&Param, Cow<'_, str>)> {
    params.iter().find_map(|p| {
        let read = profile::read_value(p, json_body);
        if !read.contains(['{', '[']) {
            return None;
        }
        let by_design = exchange == Exchange::Binance
            && (p.name.eq_ignore_ascii_case(JSON_LIST)
                || ID_LISTS.iter().any(|n| p.name.eq_ignore_ascii_case(n)) && !read.contains('{'));
        (!by_design).then_some((p, read))
    })
}

/// A parameter's name as a refusal says it: a list's member in words (`[]` alone means
/// nothing to a reader who has not seen an entry's notation).
pub(super) fn shown(name: &str) -> String {
    match name.strip_suffix("[]") {
        Some("") => "a member of the body's JSON list (\"[]\" in an entry)".to_owned(),
        Some(list) => format!("a member of the list {list} (\"{name}\" in an entry)"),
        None => format!("the parameter {name}"),
    }
}
