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

/// A name of `entry`'s that `name` spells with a list where the entry has an object, or an
/// object where it has a list, at some level: `[]` added or taken away (`put[].type` or `put[]`
/// for `put.type`, `orderList.side` for `orderList[].side`, `[][].currency_pair` for
/// `[].currency_pair`), compared without ASCII case. A server that reads a one-element list as
/// its element, or a value as a one-element list (Jackson's `UNWRAP_SINGLE_VALUE_ARRAYS` and
/// `ACCEPT_SINGLE_VALUE_AS_ARRAY`), reads such a name as the entry's, while the entry's
/// `values` and `required` compare names as spelled, and the refusal of the unknown name handed
/// a line taking it (red-team round 26's recheck, R4). A head of the entry's names so spelled
/// (`put[]`) counts whatever the entry lists, as [`member_of`]'s do; a whole name, or a member
/// of a family (`put[].x` for `put.*`), where the entry does not take it as sent. A name the
/// entry takes with a list only at its end (`leverage[]` for `leverage`) is not one: it is
/// refused as wrapped.
pub(super) fn reshaped_in<'e>(entry: &'e Endpoint, name: &str) -> Option<&'e str> {
    if !name.contains(['[', '.']) {
        return None;
    }
    // Whether the flattened `name` is the flattened `whole`'s head, a `.` after it.
    let head_of = |whole: &str| {
        let mut rest = flat(whole);
        flat(name).all(|c| rest.next() == Some(c)) && rest.next() == Some('.')
    };
    let bare = name.trim_end_matches("[]");
    let open = !entry.takes(name) && !entry.params.iter().any(|p| p.eq_ignore_ascii_case(bare));
    entry
        .params
        .iter()
        .find(|p| {
            if p.eq_ignore_ascii_case(name) {
                return false;
            }
            // A member of a family (`put.*`) spelled with a list: `put` a head of it.
            let family = |head: &str| {
                let mut rest = flat(name);
                name.contains("[]")
                    && flat(head).all(|c| rest.next() == Some(c))
                    && rest.next() == Some('.')
            };
            head_of(p)
                || open && (flat(p).eq(flat(name)) || p.strip_suffix(".*").is_some_and(family))
        })
        .map(String::as_str)
}

/// `name` without its lists' `[]`, in ASCII lower case, lazily (no allocation: asked of every
/// name of every request against every name of its entry).
fn flat(name: &str) -> impl Iterator<Item = char> + '_ {
    name.split("[]")
        .flat_map(str::chars)
        .map(|c| c.to_ascii_lowercase())
}

/// The first parameter whose value, as the exchange reads it (percent-decoded in a query or a
/// form), holds `{` or `[`, with that value. Anywhere in the value, not only first: a lenient
/// reader skips blanks, a byte-order mark or a comment (`/**/{…}`) before an object. No value
/// the profiles need holds either (symbols, order ids and enums are words, and ccxt's client
/// ids never hold them); fields that are free text at the exchange (Kraken's `cl_ord_id`,
/// Coinbase's `client_order_id`, Upbit's `identifier`, KuCoin's `remark`) are refused too, and
/// the refusal tells the bot to use an id without them (red-team round 26's recheck).
/// Binance's `batchOrders` is read order by order, each member a parameter of its own checked
/// here too; its id lists may hold a list of ids, not an object. Asked of every value of every
/// request: a value is decoded only to be shown ([`reads_with`]).
pub(super) fn json_text(
    exchange: Exchange,
    params: &[Param],
    json_body: bool,
) -> Option<(&Param, Cow<'_, str>)> {
    params.iter().find_map(|p| {
        let object = reads_with(p, json_body, b'{');
        if !object && !reads_with(p, json_body, b'[') {
            return None;
        }
        let by_design = exchange == Exchange::Binance
            && (p.name.eq_ignore_ascii_case(JSON_LIST)
                || ID_LISTS.iter().any(|n| p.name.eq_ignore_ascii_case(n)) && !object);
        (!by_design).then(|| (p, profile::read_value(p, json_body)))
    })
}

/// Whether `p`'s value as [`profile::read_value`] reads it holds the ASCII character `c`,
/// found without decoding it (no copy of each value holding a `%`): once percent-decoded, a
/// value holds `c` where it did or where an escape spells it (`%7B`, `%7b`). An escape's `%`
/// is never read inside another escape (`%` is no hex digit), and a byte below 0x80 is kept as
/// it is by the lossy UTF-8 reading that follows the decoding.
fn reads_with(p: &Param, json_body: bool, c: u8) -> bool {
    let raw = p.value.as_deref().unwrap_or("").as_bytes();
    if raw.contains(&c) {
        return true;
    }
    if json_body && p.in_body {
        return false;
    }
    let hex = |b: u8| (b as char).to_digit(16);
    raw.windows(3).any(|w| {
        w[0] == b'%'
            && matches!((hex(w[1]), hex(w[2])), (Some(hi), Some(lo)) if hi * 16 + lo == u32::from(c))
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
