//! Strict parsing of what a bot asks to sign, per exchange, into a [`Parsed`] request.
//!
//! The agent signs bytes; the exchange reads a request out of them. The two agree only if
//! every field has one reading, so each exchange gets a grammar ([`Grammar`]) taken from
//! how it documents its requests, and anything outside it is refused:
//! - the path is `/`-separated segments of the characters documented paths use
//!   (`[A-Za-z0-9_.-]`, no empty, `.` or `..` segment, no trailing `/`), so no `?`, `{`,
//!   `%` or `/` can move bytes between the path and the query or body;
//! - a query or form body is `name=value` pairs joined by `&`: names of letters, digits and
//!   `_` (plus `[...]` suffixes where the exchange uses them), values of URL-safe characters
//!   and `%XX` escapes (no `+`, whose meaning servers disagree on);
//! - a JSON body is one strict object (or array, where the exchange takes one), see
//!   [`super::json`], whose keys are plain names;
//! - which of query and body a method may carry is the exchange's documented rule.
//!
//! [`Parsed::wire`] writes the request back; the agent signs that, after checking it equals
//! what the bot sent byte for byte (see [`super::check_request`]).

use std::borrow::Cow;
use std::collections::HashMap;

use tapsign_proto::SignRequest;

use super::json::{Json, Layout};
use crate::credential::Exchange;

/// Longest path the agent reads.
pub const MAX_PATH: usize = 2048;

/// Longest parameter name (no exchange documents one near it).
pub const MAX_NAME: usize = 128;

/// How an exchange's requests are laid out.
#[derive(Debug, Clone, Copy)]
pub struct Grammar {
    /// Methods whose parameters travel in the query.
    pub query_methods: &'static [&'static str],
    /// Methods that may carry a body.
    pub body_methods: &'static [&'static str],
    /// Whether one request may carry both a query and a body.
    pub query_and_body: bool,
    /// The body's encoding.
    pub body: BodyKind,
    /// Parameter names may end in `[...]` groups (`states[]`, `close[ordertype]`).
    pub bracket_names: bool,
    /// A parameter name may repeat (`states[]=a&states[]=b`).
    pub repeats: bool,
    /// Query values are sent unencoded: no `%` escapes (Upbit and Bithumb hash the query as
    /// it reads unencoded, and Gate and Bitget verify it decoded, so an escape would be signed
    /// one way and read another).
    pub plain_values: bool,
    /// The JSON body is signed as the `k=v&...` query it flattens to (Upbit and Bithumb hash
    /// it so): an empty list or object would flatten to nothing, a parameter the policy read
    /// and the signature leaves out.
    pub flat_hash: bool,
    /// No JSON string value may hold `&` or `;`: the exchange's signed bytes also read as a
    /// form or a query (Kraken takes either body by the Content-Type the bot picks; Bybit signs
    /// a POST body and a GET query the same way), where `&` starts another parameter, and so
    /// does `;` for many query parsers (Netty's by default, Go's before 1.17, Python's before
    /// 3.9.2). Every JSON exchange has it: where the path is signed, a form reading of the
    /// body would still carry parameters a `values` line narrows (OKX `tdMode`).
    pub json_no_separator: bool,
    /// A POST on one of these paths may repeat this one body parameter, and nothing else, as
    /// its query (KuCoin: ccxt puts a classic-account order's `tradeType` in the URL of place
    /// and cancel, where KuCoin reads it). Held to the body's value in [`parse`].
    pub echo: Option<Echo>,
    /// A form body's value may be compact JSON sent raw (Binance's `batchOrders`, as ccxt
    /// writes it): see [`raw_json_value`].
    pub json_form_values: bool,
    /// Query and form values, percent-decoded, are printable ASCII (Binance: every parameter
    /// it documents is; a letter that only looks like an ASCII one, `ı`, `ＭＡＲＧＩＮ`, `I` and a
    /// combining dot, may be read as one by a server that folds case or normalises), or
    /// letters of scripts without case that Binance lists symbols in ([`caseless_letter`]).
    pub ascii_values: bool,
    /// Every path starts with this.
    pub path_prefix: &'static str,
    /// Where set, a `DELETE` may carry a body only on these paths (KuCoin signs the body of
    /// any method but reads a `DELETE`'s parameters from the query, but for its batch cancel).
    pub delete_body_paths: Option<&'static [&'static str]>,
}

/// A body parameter a POST may repeat as its query: see [`Grammar::echo`].
#[derive(Debug, Clone, Copy)]
pub struct Echo {
    pub name: &'static str,
    pub paths: &'static [&'static str],
}

/// The encoding of a request body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// `name=value&...` (Binance).
    Form,
    /// A JSON object, or an array where the profile says so.
    Json,
    /// Either (Kraken takes both).
    FormOrJson,
}

const ALL: &[&str] = &["GET", "POST", "PUT", "DELETE", "PATCH"];
const READS: &[&str] = &["GET", "DELETE"];
const WRITES: &[&str] = &["POST", "PUT", "PATCH"];

impl Grammar {
    pub fn of(exchange: Exchange) -> Grammar {
        let json = Grammar {
            query_methods: READS,
            body_methods: WRITES,
            query_and_body: false,
            body: BodyKind::Json,
            bracket_names: false,
            repeats: true,
            plain_values: false,
            flat_hash: false,
            json_no_separator: true,
            echo: None,
            json_form_values: false,
            ascii_values: false,
            path_prefix: "/",
            delete_body_paths: None,
        };
        match exchange {
            // Binance reads parameters from the query and a form body on any method but GET
            // (docs: "SIGNED endpoints ... parameters may be sent in the query string or the
            // request body"); a name may appear only once.
            Exchange::Binance => Grammar {
                query_methods: ALL,
                body_methods: &["POST", "PUT", "DELETE"],
                query_and_body: true,
                body: BodyKind::Form,
                repeats: false,
                json_form_values: true,
                ascii_values: true,
                ..json
            },
            Exchange::Upbit | Exchange::Bithumb => Grammar {
                bracket_names: true,
                plain_values: true,
                flat_hash: true,
                ..json
            },
            Exchange::Kraken => Grammar {
                query_methods: &[],
                body_methods: &["POST"],
                body: BodyKind::FormOrJson,
                bracket_names: true,
                repeats: false,
                path_prefix: "/0/private/",
                ..json
            },
            Exchange::Bybit => json,
            // Gate signs the query and the body's hash: a POST may carry both.
            // Gate verifies the query percent-decoded (its SDK and ccxt sign it unquoted and
            // send it encoded): an escape would be signed one way and verified another.
            Exchange::Gate => Grammar {
                query_methods: ALL,
                query_and_body: true,
                plain_values: true,
                path_prefix: "/api/v4/",
                ..json
            },
            // KuCoin signs the body of any method: its batch cancel is a DELETE with a body.
            // Every other DELETE is read from the query (KuCoin's docs; ccxt sends them so): a
            // body there is signed but unread, so a cancel-all's `symbol` sent in it would be
            // checked by the agent and ignored by KuCoin, which then cancels every symbol.
            Exchange::Kucoin => Grammar {
                body_methods: &["POST", "PUT", "PATCH", "DELETE"],
                delete_body_paths: Some(&["/api/v1/orders/multi-cancel"]),
                echo: Some(Echo {
                    name: "tradeType",
                    paths: &[
                        "/api/ua/v1/classic/order/place",
                        "/api/ua/v1/classic/order/cancel",
                    ],
                }),
                ..json
            },
            // Bitget verifies the query percent-decoded, as Gate does (ccxt and Bitget's own
            // SDKs sign it unencoded and send it encoded): an escape the agent signed as sent
            // would be verified decoded, and refused (red-team round 22).
            Exchange::Bitget => Grammar {
                plain_values: true,
                ..json
            },
            Exchange::Okx | Exchange::Coinbase => json,
        }
    }
}

/// One `name=value` pair, as on the wire (still percent-encoded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    pub name: String,
    pub value: String,
}

/// A request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    Empty,
    Form(Vec<Pair>),
    Json(Json, Layout),
}

/// A request the agent has read strictly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub method: String,
    /// The path's segments (`["api", "v3", "order"]`).
    pub segments: Vec<String>,
    pub query: Vec<Pair>,
    pub body: Body,
    /// The orders inside a form value that holds a JSON list (Binance's `batchOrders`), each
    /// as its members `batchOrders[].symbol`, ...: see [`list_items`].
    pub items: Vec<Vec<Param>>,
}

/// One parameter of a parsed request: its name as the profile spells it (`symbol`,
/// `states[]`, `attachAlgoOrds[].tpTriggerPx`, `[].instId`) and, for scalars, its value
/// (still percent-encoded in queries and forms).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    pub name: String,
    pub value: Option<String>,
    /// Where it sits: the query, or the body.
    pub in_body: bool,
}

/// Why a request does not parse. Messages name the part and say what to send instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

fn fail<T>(msg: impl Into<String>) -> Result<T, ParseError> {
    Err(ParseError(msg.into()))
}

impl Parsed {
    /// The path as written on the wire.
    pub fn path(&self) -> String {
        format!("/{}", self.segments.join("/"))
    }

    /// The query as written on the wire.
    pub fn query_text(&self) -> String {
        join_pairs(&self.query)
    }

    /// The query then the body with nothing between them: what Binance signs, and what every
    /// reading of its signed bytes reads (converse.rs). Built once per request by the policy.
    pub fn signed_payload(&self) -> String {
        let mut out = self.query_text();
        out.push_str(&self.body_text());
        out
    }

    /// The body as written on the wire.
    pub fn body_text(&self) -> String {
        match &self.body {
            Body::Empty => String::new(),
            Body::Form(pairs) => join_pairs(pairs),
            Body::Json(v, layout) => v.to_text(*layout),
        }
    }

    /// The request written back from what was parsed: what the agent signs.
    pub fn wire(&self, like: &SignRequest) -> SignRequest {
        SignRequest {
            key: like.key.clone(),
            method: self.method.clone(),
            path: self.path(),
            query: self.query_text(),
            body: self.body_text(),
            kind: like.kind,
        }
    }

    /// Every parameter, query first, then body, in order.
    pub fn params(&self) -> Vec<Param> {
        let mut out: Vec<Param> = self
            .query
            .iter()
            .map(|p| Param {
                name: p.name.clone(),
                value: Some(p.value.clone()),
                in_body: false,
            })
            .collect();
        match &self.body {
            Body::Empty => {}
            Body::Form(pairs) => out.extend(pairs.iter().map(|p| Param {
                name: read_name(&p.name).into_owned(),
                value: Some(p.value.clone()),
                in_body: true,
            })),
            Body::Json(v, _) => flatten(v, "", &mut out),
        }
        out.extend(self.items.iter().flatten().cloned());
        out
    }

    /// The elements of the list a parameter name `list[].name` is in, each as its own
    /// parameters (named as [`Parsed::params`] names them): Binance's `batchOrders` orders,
    /// the elements of a JSON array body (`list` empty) or of a JSON array the body holds
    /// (`request`, Bybit's batches). Empty when there is no such list. Binance's orders are
    /// borrowed: this runs once for each required name of a list's elements.
    pub fn elements(&self, list: &str) -> Cow<'_, [Vec<Param>]> {
        if list.eq_ignore_ascii_case(JSON_LIST) && !self.items.is_empty() {
            return Cow::Borrowed(&self.items);
        }
        let Body::Json(body, _) = &self.body else {
            return Cow::Owned(Vec::new());
        };
        let mut at = body;
        if !list.is_empty() {
            for key in list.split('.') {
                let Json::Object(members) = at else {
                    return Cow::Owned(Vec::new());
                };
                let Some((_, v)) = members.iter().find(|(k, _)| k == key) else {
                    return Cow::Owned(Vec::new());
                };
                at = v;
            }
        }
        let Json::Array(elements) = at else {
            return Cow::Owned(Vec::new());
        };
        let prefix = format!("{list}[]");
        Cow::Owned(
            elements
                .iter()
                .map(|e| {
                    let mut out = Vec::new();
                    flatten(e, &prefix, &mut out);
                    out
                })
                .collect(),
        )
    }

    /// Whether the JSON body is an array (OKX batch endpoints).
    pub fn body_is_array(&self) -> bool {
        matches!(self.body, Body::Json(Json::Array(_), _))
    }
}

fn join_pairs(pairs: &[Pair]) -> String {
    // Sized once: the wall writes the query back several times per request.
    let len = pairs.iter().map(|p| p.name.len() + p.value.len() + 2).sum();
    let mut out = String::with_capacity(len);
    for (i, p) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(&p.name);
        out.push('=');
        out.push_str(&p.value);
    }
    out
}

/// A JSON value's parameters: `a`, `a.b`, `a[]`, `a[].b`; a top-level array's elements
/// as `[].b`. An empty object or array counts as the parameter that holds it.
fn flatten(v: &Json, prefix: &str, out: &mut Vec<Param>) {
    let mut leaf = |name: String, value: Option<String>| {
        out.push(Param {
            name,
            value,
            in_body: true,
        })
    };
    match v {
        Json::Object(members) if !members.is_empty() => {
            for (k, child) in members {
                let name = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(child, &name, out);
            }
        }
        Json::Array(items) if !items.is_empty() => {
            let name = format!("{prefix}[]");
            for item in items {
                flatten(item, &name, out);
            }
        }
        Json::Object(_) | Json::Array(_) => leaf(prefix.to_string(), None),
        scalar => leaf(prefix.to_string(), scalar.scalar_text().map(str::to_string)),
    }
}

/// Parse `req` with `exchange`'s grammar.
pub fn parse(exchange: Exchange, req: &SignRequest) -> Result<Parsed, ParseError> {
    let g = Grammar::of(exchange);
    if !ALL.contains(&req.method.as_str()) {
        return fail(format!(
            "method {:?} is not one of GET, POST, PUT, DELETE, PATCH (upper case)",
            req.method
        ));
    }
    let segments = parse_path(&req.path, g.path_prefix)?;
    let method = req.method.as_str();
    let echoed = echoed(&g, req);
    if echoed.is_some() {
        // Checked against the body once it is parsed, below.
    } else if !req.query.is_empty() && !g.query_methods.contains(&method) {
        return fail(format!(
            "{exchange} takes no query on {method} requests: put the parameters in the body"
        ));
    }
    if !req.body.is_empty() && !g.body_methods.contains(&method) {
        return fail(format!(
            "{exchange} {method} requests carry no body: put the parameters in \"query\""
        ));
    }
    if let Some(paths) = g.delete_body_paths
        && method == "DELETE"
        && !req.body.is_empty()
        && !paths.contains(&req.path.as_str())
    {
        return fail(format!(
            "{exchange} reads a DELETE's parameters from the query (a body is read only on {}): \
             put them in \"query\"",
            paths.join(", ")
        ));
    }
    if !req.query.is_empty() && !req.body.is_empty() && !g.query_and_body && echoed.is_none() {
        return fail(format!(
            "{exchange} signs either the query or the body of a request, not both: send \
             {method} parameters in the {}",
            if READS.contains(&method) {
                "query"
            } else {
                "body"
            }
        ));
    }
    let query = parse_form(&req.query, "query", &g)?;
    let body = parse_body(&req.body, &g)?;
    if let Some((name, value)) = echoed {
        let in_body = match &body {
            Body::Json(Json::Object(members), _) => {
                members.iter().find(|(k, _)| k == name).map(|(_, v)| v)
            }
            _ => None,
        };
        if !matches!(in_body, Some(Json::String(v)) if v == value) {
            return fail(format!(
                "the query's {name}={value} on {exchange} {method} {} must repeat the body's \
                 {name:?} exactly (the only query this request may carry)",
                req.path
            ));
        }
    }
    let mut items = Vec::new();
    if g.json_form_values {
        let body_pairs = match &body {
            Body::Form(pairs) => pairs.as_slice(),
            _ => &[],
        };
        for (pair, in_body) in query
            .iter()
            .map(|p| (p, false))
            .chain(body_pairs.iter().map(|p| (p, true)))
        {
            // Binance reads names without case: `BATCHORDERS` is the same list.
            if pair.name.eq_ignore_ascii_case(JSON_LIST) {
                list_items(&pair.value, in_body, &mut items)?;
            }
        }
    }
    let parsed = Parsed {
        method: req.method.clone(),
        segments,
        query,
        body,
        items,
    };
    check_repeats(&parsed, &g)?;
    Ok(parsed)
}

/// The parameter a request repeats as its whole query, if the grammar lets it (see
/// [`Grammar::echo`]): its name and value, a value of upper-case letters and `_` only.
fn echoed<'r>(g: &Grammar, req: &'r SignRequest) -> Option<(&'static str, &'r str)> {
    let echo = g.echo?;
    if req.method != "POST" || !echo.paths.contains(&req.path.as_str()) {
        return None;
    }
    let value = req.query.strip_prefix(echo.name)?.strip_prefix('=')?;
    (!value.is_empty() && value.bytes().all(|b| b.is_ascii_uppercase() || b == b'_'))
        .then_some((echo.name, value))
}

fn parse_path(path: &str, prefix: &str) -> Result<Vec<String>, ParseError> {
    const HOW: &str = "send the path exactly as the exchange documents it";
    if path.len() > MAX_PATH {
        return fail(format!("the path is longer than {MAX_PATH} bytes; {HOW}"));
    }
    if !path.starts_with(prefix) {
        return fail(format!("the path must start with {prefix:?}; {HOW}"));
    }
    let Some(rest) = path.strip_prefix('/') else {
        return fail(format!("the path must start with '/'; {HOW}"));
    };
    let mut segments = Vec::new();
    for seg in rest.split('/') {
        if seg.is_empty() {
            return fail(format!(
                "the path has an empty segment (\"//\" or a trailing '/'); {HOW}"
            ));
        }
        if seg == "." || seg == ".." {
            return fail(format!("the path has a '.' or '..' segment; {HOW}"));
        }
        if let Some(c) = seg.chars().find(|c| !path_char(*c)) {
            return fail(format!(
                "the path holds {c:?}; paths are letters, digits, '-', '_' and '.' between \
                 '/' (the query goes in \"query\", the body in \"body\", nothing is \
                 percent-encoded); {HOW}"
            ));
        }
        segments.push(seg.to_string());
    }
    Ok(segments)
}

fn path_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

/// A parameter name: letters, digits, `_` and `-`, and with `bracket_names` any number of
/// `[...]` groups of the same characters (`states[]`, `close[ordertype]`).
fn name_ok(name: &str, bracket_names: bool) -> bool {
    let word = |s: &str| {
        s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    };
    let (head, mut rest) = match name.find('[') {
        Some(i) if bracket_names => (&name[..i], &name[i..]),
        _ => (name, ""),
    };
    if head.is_empty() || !word(head) {
        return false;
    }
    while !rest.is_empty() {
        let Some(inner) = rest.strip_prefix('[') else {
            return false;
        };
        let Some(end) = inner.find(']') else {
            return false;
        };
        if !word(&inner[..end]) {
            return false;
        }
        rest = &inner[end + 1..];
    }
    true
}

/// A value: URL-safe characters and (unless `plain`) `%XX` escapes. Not `;`: some servers
/// split parameters on it (Python before 3.9.2, Go before 1.17, Netty), so `uuid=X;address`
/// would carry a parameter the agent read as part of a value.
///
/// A `plain` value (a query sent unencoded) has no `'` either: fetch and browsers (the WHATWG
/// URL parser) send it as `%27`, so the exchange would get other bytes than the agent signed,
/// and the adapters refuse it before asking (red-team round 23: the agent's refusal listed it as
/// allowed).
fn value_ok(value: &str, plain: bool) -> bool {
    let b = value.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if !plain => {
                let hex = |j: usize| b.get(j).is_some_and(|c| c.is_ascii_hexdigit());
                if !(hex(i + 1) && hex(i + 2)) {
                    return false;
                }
                i += 3;
            }
            b'\'' if plain => return false,
            c if c.is_ascii_alphanumeric() || b"-._~,:!*'()@$/".contains(&c) => i += 1,
            _ => return false,
        }
    }
    true
}

/// The one form parameter whose value is a JSON list of orders (Binance's futures and options
/// batches).
pub const JSON_LIST: &str = "batchOrders";

/// The most orders one list may hold (Binance takes five on its futures batches, ten on its
/// options batch).
const MAX_LIST_ITEMS: usize = 10;

/// The orders of a [`JSON_LIST`] value, read as the exchange reads them: the value
/// percent-decoded once (a raw value has nothing to decode), then strict JSON laid out as
/// `JSON.stringify` or `json.dumps` write it, a list of one to [`MAX_LIST_ITEMS`] objects
/// whose members are plain names holding strings, numbers or booleans. Each member becomes a
/// parameter `batchOrders[].name`, so the profile holds every order to the names, required
/// names and values its entry lists, as it holds a single order. No member may hold `&`, `=`,
/// `;` or `%`: no order parameter takes them, and a server that decoded twice or split the
/// list as a form would find parameters in them.
fn list_items(value: &str, in_body: bool, out: &mut Vec<Vec<Param>>) -> Result<(), ParseError> {
    let how = "send batchOrders as a JSON list of orders, each a flat object of plain names \
               and string, number or true/false values";
    let text = crate::sign::form::decoded_cow(value);
    let items = match Json::parse_canonical(&text) {
        Ok((Json::Array(items), _)) => items,
        Ok(_) => return fail(format!("batchOrders is not a JSON list; {how}")),
        Err(e) => return fail(format!("batchOrders is not strict JSON ({e}); {how}")),
    };
    if items.is_empty() || items.len() > MAX_LIST_ITEMS {
        return fail(format!(
            "batchOrders holds {} orders; the exchange takes 1 to {MAX_LIST_ITEMS}",
            items.len()
        ));
    }
    for item in &items {
        let mut order = Vec::new();
        let Json::Object(members) = item else {
            return fail(format!(
                "batchOrders holds something other than an order; {how}"
            ));
        };
        for (name, v) in members {
            let text = match v {
                Json::String(_) | Json::Number(_) | Json::Bool(_) => v.scalar_text(),
                _ => None,
            };
            let plain = |t: &str| {
                !t.is_empty()
                    && t.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            };
            let Some(text) = text.filter(|_| plain(name)) else {
                return fail(format!(
                    "a batchOrders order's member {:?} is not a plain name holding a string, \
                     number or true/false; {how}",
                    clip(name)
                ));
            };
            if text.contains(['&', '=', ';', '%']) {
                return fail(format!(
                    "a batchOrders order's {name:?} holds '&', '=', ';' or '%', which no order \
                     parameter takes"
                ));
            }
            // As every Binance value ([`binance_char`]) once decoded, here once the JSON
            // escapes are (`\u0000`, `\t` would otherwise pass).
            if !text.chars().all(binance_char) {
                return fail(format!(
                    "a batchOrders order's {name:?} holds a character other than printable \
                     ASCII or a CJK, kana or Hangul letter"
                ));
            }
            order.push(Param {
                name: format!("{JSON_LIST}[].{name}"),
                value: Some(text.to_owned()),
                in_body,
            });
        }
        out.push(order);
    }
    Ok(())
}

/// A form body's value that is compact JSON sent without escapes: Binance's `batchOrders`, as
/// ccxt writes it (`batchOrders=[{"symbol":"BTCUSDT",...}]`), and nothing else. Only `"`, `{`,
/// `}`, `[` and `]` are added to the value characters, and only when the whole value is a
/// strict compact JSON array (plain keys): with no `%`, `+`, `&`, `=`, space or `\`, the
/// server's form reading and the policy's are the same bytes, and no `name=value` can hide in
/// it. An array, so that no cut of the signed bytes is a lone JSON object.
fn raw_json_value(name: &str, value: &str) -> bool {
    name == JSON_LIST
        && value.starts_with('[')
        && value
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"-._~,:!*'()@$/;\"{}[]".contains(&c))
        && matches!(Json::parse_canonical(value), Ok((v, Layout::Compact)) if check_keys(&v).is_ok())
}

/// A form name as the server reads it: `close%5Bordertype%5D` is `close[ordertype]`. Only the
/// brackets may be escaped in a name, and only where the grammar takes escapes and `[...]`
/// groups (Kraken, whose form bodies Python ccxt 4.4 and older write that way); every other
/// `%` in a name is refused when it is parsed, so elsewhere this returns the name as it is.
pub fn read_name(name: &str) -> Cow<'_, str> {
    if !name.contains('%') {
        return Cow::Borrowed(name);
    }
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let escape = rest.get(at..at + 3).unwrap_or(&rest[at..]);
        match escape {
            "%5B" | "%5b" => out.push('['),
            "%5D" | "%5d" => out.push(']'),
            other => out.push_str(other),
        }
        rest = &rest[at + escape.len()..];
    }
    out.push_str(rest);
    Cow::Owned(out)
}

fn parse_form(text: &str, part: &str, g: &Grammar) -> Result<Vec<Pair>, ParseError> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    let mut pairs = Vec::new();
    for piece in text.split('&') {
        if piece.is_empty() {
            return fail(format!(
                "the {part} has an empty parameter (\"&&\", or '&' at an end); remove it"
            ));
        }
        let Some((name, value)) = piece.split_once('=') else {
            return fail(format!(
                "the {part} parameter {:?} has no '='; write every parameter as name=value",
                clip(piece)
            ));
        };
        if name.len() > MAX_NAME {
            return fail(format!(
                "the {part} has a parameter name longer than {MAX_NAME} characters"
            ));
        }
        let read = if g.bracket_names && !g.plain_values {
            read_name(name)
        } else {
            Cow::Borrowed(name)
        };
        if !name_ok(&read, g.bracket_names) {
            return fail(format!(
                "the {part} parameter name {:?} is not a plain name (letters, digits, '_'{}); \
                 names are never percent-encoded",
                clip(name),
                if g.bracket_names {
                    ", and [...] suffixes"
                } else {
                    ""
                }
            ));
        }
        let plain = g.plain_values && part == "query";
        let json_value = || g.json_form_values && part == "body" && raw_json_value(name, value);
        if !value_ok(value, plain) && !json_value() {
            return fail(
                if g.json_form_values && part == "body" && value.starts_with(['[', '{']) {
                    format!(
                        "the body value of {name:?} is not a compact JSON list the agent can read as \
                     the exchange will: send it raw and compact (json.dumps(v, separators=(',', \
                     ':')), JSON.stringify), each key once, with no space, '\\', '+', '%', '&', \
                     '=' or '#', or percent-encode the whole value"
                    )
                } else if plain {
                    format!(
                        "the query value of {name:?} holds a character other than letters, digits and \
                     -._~,:!*()@$/: this exchange's query is signed and sent unencoded, so a '%' \
                     escape would be signed one way and read another, an apostrophe goes out as \
                     %27 from fetch and browsers, and some servers split parameters on a ';'; \
                     leave such a value out of the query"
                    )
                } else {
                    format!(
                        "the {part} value of {name:?} holds a character that must be percent-encoded \
                     (anything but letters, digits and -._~,:!*'()@$/ — a space is %20, '+' is \
                     %2B, '=' is %3D, '&' is %26, ';' is %3B: some servers split parameters on a \
                     raw ';')"
                    )
                },
            );
        }
        if g.ascii_values
            && !crate::sign::form::decoded_cow(value)
                .chars()
                .all(binance_char)
        {
            return fail(format!(
                "the {part} value of {name:?} holds, percent-decoded, a character other than \
                 printable ASCII or a CJK, kana or Hangul letter: a letter that only looks like \
                 an ASCII one (or a control character) may be read as another by the \
                 exchange's server"
            ));
        }
        pairs.push(Pair {
            name: name.to_string(),
            value: value.to_string(),
        });
    }
    Ok(pairs)
}

/// A character a Binance value may hold once decoded: printable ASCII, or a letter of a script
/// without case ([`caseless_letter`]).
fn binance_char(c: char) -> bool {
    (' '..='~').contains(&c) || caseless_letter(c)
}

/// A letter of a script without case whose every form, folded or normalized, stays in it: CJK
/// ideographs, kana and Hangul syllables. Binance lists symbols written in them
/// (`币安人生USDT`), percent-encoded as UTF-8 on the wire as its docs' signing example shows;
/// none can turn into an ASCII letter under case mapping or NFKC, as `ı`, `ſ`, `K` (Kelvin)
/// and full-width letters can, so they cannot spell `MARGIN` to a lenient server.
fn caseless_letter(c: char) -> bool {
    matches!(c,
        '\u{3041}'..='\u{3096}'      // Hiragana
        | '\u{30A1}'..='\u{30FA}'    // Katakana
        | '\u{3400}'..='\u{4DBF}'    // CJK Unified Ideographs Extension A
        | '\u{4E00}'..='\u{9FFF}'    // CJK Unified Ideographs
        | '\u{AC00}'..='\u{D7A3}'    // Hangul syllables
    )
}

fn parse_body(text: &str, g: &Grammar) -> Result<Body, ParseError> {
    if text.is_empty() {
        return Ok(Body::Empty);
    }
    let json = text.starts_with(['{', '[']);
    match (g.body, json) {
        (BodyKind::Form, _) | (BodyKind::FormOrJson, false) => {
            Ok(Body::Form(parse_form(text, "body", g)?))
        }
        (BodyKind::Json, false) => fail(
            "the body must be one JSON object, starting with '{' (no spaces before it), as the \
             exchange's current API takes it; send it exactly as the bot will",
        ),
        (BodyKind::Json | BodyKind::FormOrJson, true) => {
            let (v, layout) = Json::parse_canonical(text).map_err(|e| {
                ParseError(format!(
                    "the body is not strict JSON: {e}; send compact JSON (JSON.stringify, or \
                     json.dumps(body, separators=(',', ':'))) with each key once"
                ))
            })?;
            if g.body == BodyKind::FormOrJson && !matches!(v, Json::Object(_)) {
                return fail("the body must be a JSON object or a form");
            }
            check_keys(&v)?;
            if g.flat_hash {
                check_no_empty(&v, true)?;
            }
            if g.flat_hash && g.plain_values {
                check_flat_values(&v, "")?;
            }
            if g.json_no_separator {
                check_no_form_separator(&v)?;
            }
            Ok(Body::Json(v, layout))
        }
    }
}

/// Where a body may be a form or JSON (Kraken), the server picks by the Content-Type the bot
/// sends: a JSON string holding `&` would read as more `name=value` pairs in a form
/// (`"pair":"XBTUSD&trading_agreement=agree"`), parameters the profile never saw. Where a
/// body's bytes are signed as a query's would be (Bybit), the same string makes more
/// parameters of the query reading (`"orderLinkId":"x&coin=USDT&amount=1000"`). Many query
/// parsers split on `;` as well (Netty's by default): `"x;coin=USDT;amount=1000"`.
fn check_no_form_separator(v: &Json) -> Result<(), ParseError> {
    match v {
        Json::String(s) if s.contains(['&', ';']) => fail(format!(
            "the body's value {:?} holds '&' or ';': the same signed bytes could also be read \
             as a form or a query, where either starts another parameter; send the value \
             without them",
            clip(s)
        )),
        Json::Object(members) => members
            .iter()
            .try_for_each(|(_, child)| check_no_form_separator(child)),
        Json::Array(items) => items.iter().try_for_each(check_no_form_separator),
        _ => Ok(()),
    }
}

/// Where the body is hashed as the `k=v&...` query it flattens to (Upbit, Bithumb), its string
/// values land, unencoded, in the very string a query's would: held to the query's characters
/// ([`value_ok`], plain). A body value was not, so `"identifier":"x%26currency%3DBTC"` was
/// signed into a hashed string that a server decoding before it splits reads as more
/// parameters, the reading the query rule exists to exclude, and `+`, `#`, `?` and spaces went
/// in as well (red-team round 27). `name` is the member that holds `v`.
fn check_flat_values(v: &Json, name: &str) -> Result<(), ParseError> {
    match v {
        Json::String(s) if !value_ok(s, true) => fail(format!(
            "the body value of {name:?} holds a character other than letters, digits and \
             -._~,:!*()@$/: this exchange hashes the body as the query it flattens to, signed \
             unencoded, so a '%' escape would be signed one way and read another, '+', '#', \
             '?', a space or an apostrophe would not mean what they say, and some servers \
             split parameters on a ';', as in a query; send the value without them (a \
             free-text id such as identifier too: bot-20260101-0001)"
        )),
        Json::Object(members) => members
            .iter()
            .try_for_each(|(key, child)| check_flat_values(child, key)),
        Json::Array(items) => items
            .iter()
            .try_for_each(|child| check_flat_values(child, name)),
        _ => Ok(()),
    }
}

/// Where the body is hashed as the `k=v&...` query it flattens to, an empty list or object
/// flattens to nothing: `{"market":[]}` would be signed as a request without parameters.
fn check_no_empty(v: &Json, top: bool) -> Result<(), ParseError> {
    match v {
        Json::Object(m) if m.is_empty() && !top => fail(
            "the body holds an empty object, which the signed hash leaves out; leave its key out \
             instead",
        ),
        Json::Array(items) if items.is_empty() && !top => fail(
            "the body holds an empty list, which the signed hash leaves out; leave its key out \
             instead",
        ),
        Json::Object(members) => members
            .iter()
            .try_for_each(|(_, child)| check_no_empty(child, false)),
        Json::Array(items) => items.iter().try_for_each(|i| check_no_empty(i, false)),
        _ => Ok(()),
    }
}

/// JSON keys are parameter names: plain words, so `a.b` or `a[]` in a key cannot pose as
/// a nested parameter.
fn check_keys(v: &Json) -> Result<(), ParseError> {
    match v {
        Json::Object(members) => {
            for (k, child) in members {
                if k.len() > MAX_NAME || !name_ok(k, false) {
                    return fail(format!(
                        "the body's key {:?} is not a plain name (letters, digits, '_')",
                        clip(k)
                    ));
                }
                check_keys(child)?;
            }
            Ok(())
        }
        Json::Array(items) => items.iter().try_for_each(check_keys),
        _ => Ok(()),
    }
}

/// A name twice in the query and a form body (servers disagree on which one wins). A JSON
/// body cannot repeat a key (the reader refuses it); its arrays are not repeats.
fn check_repeats(p: &Parsed, g: &Grammar) -> Result<(), ParseError> {
    // A name in both the query and a JSON body (Gate signs both): which copy the exchange
    // reads is not documented, so the two must say the same.
    if let Body::Json(Json::Object(members), _) = &p.body
        && !p.query.is_empty()
    {
        // The body's keys without case, the first of each: looking each query name up among
        // all of them cost time quadratic in the request (tens of milliseconds of an agent
        // worker for 64 KiB of names in both).
        let mut keys: HashMap<String, (&String, &Json)> = HashMap::with_capacity(members.len());
        for (k, v) in members {
            #[cfg(test)]
            MEMBERS_READ.with(|n| n.set(n.get() + 1));
            keys.entry(k.to_ascii_lowercase()).or_insert((k, v));
        }
        for q in &p.query {
            #[cfg(test)]
            MEMBERS_READ.with(|n| n.set(n.get() + 1));
            let Some(&(key, v)) = keys.get(&q.name.to_ascii_lowercase()) else {
                continue;
            };
            let query_value = crate::sign::form::decoded_cow(&q.value);
            if v.scalar_text() != Some(query_value.as_ref()) {
                return fail(format!(
                    "{key:?} is in both the query and the body, with different values; send it \
                     once (which copy the exchange reads is not documented)"
                ));
            }
        }
    }
    if g.repeats {
        return Ok(());
    }
    let params: Vec<&Pair> = match &p.body {
        Body::Form(pairs) => p.query.iter().chain(pairs).collect(),
        _ => p.query.iter().collect(),
    };
    let repeated = |a: &Pair| {
        fail(format!(
            "{:?} appears more than once in the query and body; send each parameter once",
            a.name
        ))
    };
    let names: Vec<Cow<'_, str>> = params.iter().map(|p| read_name(&p.name)).collect();
    if names.len() <= 16 {
        // An order's handful of parameters: comparing each pair beats sorting.
        for (i, a) in names.iter().enumerate() {
            if names[..i].iter().any(|b| b.eq_ignore_ascii_case(a)) {
                return repeated(params[i]);
            }
        }
        return Ok(());
    }
    // Many parameters: sorted, so a bot's ten thousand names cost n log n, not n².
    let mut lower: Vec<(String, usize)> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.to_ascii_lowercase(), i))
        .collect();
    lower.sort();
    match lower.windows(2).find(|w| w[0].0 == w[1].0) {
        Some(w) => repeated(params[w[0].1.max(w[1].1)]),
        None => Ok(()),
    }
}

#[cfg(test)]
thread_local! {
    /// Test hook: the body keys and query names [`check_repeats`] has read on this thread.
    static MEMBERS_READ: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// At most 40 characters of bot input in a message.
pub(crate) fn clip(s: &str) -> String {
    let mut out: String = s.chars().take(40).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: &str, path: &str, query: &str, body: &str) -> SignRequest {
        SignRequest {
            key: "k".into(),
            method: method.into(),
            path: path.into(),
            query: query.into(),
            body: body.into(),
            ..Default::default()
        }
    }

    #[test]
    fn requests_round_trip_through_the_parser() {
        for (ex, r) in [
            (
                Exchange::Binance,
                req(
                    "POST",
                    "/api/v3/order",
                    "symbol=BTCUSDT&side=BUY",
                    "type=LIMIT&price=0.1",
                ),
            ),
            (
                Exchange::Okx,
                req(
                    "POST",
                    "/api/v5/trade/order",
                    "",
                    r#"{"instId":"BTC-USDT","sz":"1"}"#,
                ),
            ),
            (
                Exchange::Upbit,
                req(
                    "GET",
                    "/v1/orders/open",
                    "market=KRW-BTC&states[]=wait&states[]=watch",
                    "",
                ),
            ),
            (
                Exchange::Kraken,
                req(
                    "POST",
                    "/0/private/AddOrder",
                    "",
                    "close[ordertype]=limit&pair=XBTUSD",
                ),
            ),
        ] {
            let p = parse(ex, &r).unwrap();
            assert_eq!(p.wire(&r), r);
        }
    }

    #[test]
    fn seams_between_path_query_and_body_do_not_parse() {
        let bad = [
            (
                Exchange::Okx,
                req("POST", "/api/v5/asset/with", "", r#"drawal{"ccy":"USDT"}"#),
            ),
            (
                Exchange::Okx,
                req("POST", "/api", "", r#"/v5/users/subaccount/apikey{}"#),
            ),
            (
                Exchange::Okx,
                req("GET", "/api/v5/account/balance?ccy=BTC", "", ""),
            ),
            (
                Exchange::Okx,
                req("GET", "/api/v5/account/balance%3Fccy", "", ""),
            ),
            (Exchange::Okx, req("GET", "/api/v5/account/", "", "")),
            (Exchange::Okx, req("GET", "/api/v5//account", "", "")),
            (
                Exchange::Okx,
                req("GET", "/api/v5/account", "", r#"{"a":"b"}"#),
            ),
            (
                Exchange::Kucoin,
                req("POST", "/api/v1/with", "", r#"drawals{}"#),
            ),
            (
                Exchange::Bitget,
                req("POST", "/api/v2/spot/wallet/with", "", r#"drawal{}"#),
            ),
            (
                Exchange::Binance,
                req("POST", "/api/v3/order", "amount=1&addr", "ess=0x"),
            ),
            (
                Exchange::Binance,
                req("POST", "/api/v3/order", "recv", "Window=60000"),
            ),
            (
                Exchange::Binance,
                req("POST", "/api/v3/order", "a=1&a=2", ""),
            ),
            (
                Exchange::Binance,
                req("POST", "/api/v3/order", "a=1", "A=2"),
            ),
            (Exchange::Binance, req("POST", "/api/v3/order", "a=b+c", "")),
            (
                Exchange::Binance,
                req("POST", "/api/v3/order", "%61ddress=x", ""),
            ),
            (
                Exchange::Bybit,
                req("GET", "/v5/order/realtime", r#"{"coin":"USDT"}"#, ""),
            ),
            (
                Exchange::Bybit,
                req("POST", "/v5/order/create", "", "coin=USDT"),
            ),
            (
                Exchange::Bybit,
                req("POST", "/v5/order/create", "", r#" {"a":"b"}"#),
            ),
            (Exchange::Gate, req("GET", "/spot/orders", "", "")),
            (
                Exchange::Upbit,
                req("POST", "/v1/orders", "", r#"{"a.b":"c"}"#),
            ),
        ];
        for (ex, r) in bad {
            assert!(parse(ex, &r).is_err(), "{ex} {r:?} parsed");
        }
    }

    #[test]
    fn json_bodies_flatten_into_profile_names() {
        let r = req(
            "POST",
            "/api/v5/trade/order",
            "",
            r#"{"instId":"X","attachAlgoOrds":[{"tpTriggerPx":"1"}],"o":{"p":{"q":true}},"e":[]}"#,
        );
        let names: Vec<String> = parse(Exchange::Okx, &r)
            .unwrap()
            .params()
            .into_iter()
            .map(|p| p.name)
            .collect();
        assert_eq!(
            names,
            ["instId", "attachAlgoOrds[].tpTriggerPx", "o.p.q", "e"]
        );
        let arr = req(
            "POST",
            "/api/v5/trade/batch-orders",
            "",
            r#"[{"instId":"X"}]"#,
        );
        let p = parse(Exchange::Okx, &arr).unwrap();
        assert_eq!(p.params()[0].name, "[].instId");
    }

    /// Python ccxt 4.4 writes Kraken's conditional close as `close%5Bordertype%5D=...` in a
    /// form body; Kraken decodes the brackets. Only the brackets may be escaped, and only there.
    #[test]
    fn kraken_form_names_may_escape_their_brackets_and_nothing_else() {
        let body = "pair=XBTUSD&close%5Bordertype%5D=stop-loss&close%5bprice%5d=0.5";
        let r = req("POST", "/0/private/AddOrder", "", body);
        let p = parse(Exchange::Kraken, &r).unwrap();
        let names: Vec<String> = p.params().into_iter().map(|p| p.name).collect();
        assert_eq!(names, ["pair", "close[ordertype]", "close[price]"]);
        for bad in [
            "pair=XBTUSD&%70air=ETHUSD",
            "close%5Bordertype%5D%26pair=x",
            "close%5B=x",
            "close%5Bordertype%5D=a&close[ordertype]=b",
            "close%5Bordertype%5D=a&CLOSE%5bORDERTYPE%5d=b",
        ] {
            assert!(
                parse(
                    Exchange::Kraken,
                    &req("POST", "/0/private/AddOrder", "", bad)
                )
                .is_err(),
                "{bad}"
            );
        }
        // Upbit hashes names unencoded: an escaped bracket there is refused.
        let upbit = req("GET", "/v1/orders/open", "states%5B%5D=wait", "");
        assert!(parse(Exchange::Upbit, &upbit).is_err());
        // Binance names take no brackets at all.
        let binance = req("GET", "/api/v3/order", "symbol%5B%5D=x", "");
        assert!(parse(Exchange::Binance, &binance).is_err());
    }

    /// ccxt puts a KuCoin classic-account order's `tradeType` in the URL as well as the body:
    /// that one query is taken on those two paths, and only as the body's own value.
    #[test]
    fn a_kucoin_classic_order_may_repeat_its_trade_type_in_the_query() {
        let body = r#"{"tradeType":"SPOT","symbol":"BTC-USDT","orderId":"1"}"#;
        let place = "/api/ua/v1/classic/order/place";
        let cancel = "/api/ua/v1/classic/order/cancel";
        for path in [place, cancel] {
            let p = parse(Exchange::Kucoin, &req("POST", path, "tradeType=SPOT", body)).unwrap();
            let names: Vec<String> = p.params().into_iter().map(|p| p.name).collect();
            assert_eq!(names, ["tradeType", "tradeType", "symbol", "orderId"]);
        }
        for (path, query, body) in [
            (place, "tradeType=MARGIN", body),
            (place, "tradeType=SPOT&symbol=ETH-USDT", body),
            (place, "tradeType=spot", r#"{"tradeType":"spot"}"#),
            (place, "tradeType=SPOT", r#"{"symbol":"BTC-USDT"}"#),
            (place, "tradeType=SPOT", r#"{"tradeType":["SPOT"]}"#),
            (place, "tradeType=SPOT", ""),
            (place, "symbol=BTC-USDT", body),
            ("/api/ua/v1/unified/order/place", "tradeType=SPOT", body),
            ("/api/v1/orders", "tradeType=SPOT", body),
        ] {
            assert!(
                parse(Exchange::Kucoin, &req("POST", path, query, body)).is_err(),
                "{path}?{query} {body}"
            );
        }
        let okx = req("POST", place, "tradeType=SPOT", body);
        assert!(parse(Exchange::Okx, &okx).is_err());
    }

    /// Gate signs a query and a JSON body together: each query name was looked for among all
    /// the body's keys, tens of milliseconds of an agent worker for one 64 KiB request.
    #[test]
    fn a_name_in_both_the_query_and_the_body_is_found_without_comparing_every_pair() {
        let query: Vec<String> = (0..3000).map(|i| format!("q{i}=1")).collect();
        let keys: Vec<String> = (0..3000).map(|i| format!("\"k{i}\":\"1\"")).collect();
        let orders = "/api/v4/spot/orders";
        let many = |q: &[String], k: &[String]| {
            req(
                "POST",
                orders,
                &q.join("&"),
                &format!("{{{}}}", k.join(",")),
            )
        };
        super::MEMBERS_READ.with(|n| n.set(0));
        assert!(parse(Exchange::Gate, &many(&query, &keys)).is_ok());
        let read = super::MEMBERS_READ.with(|n| n.get());
        assert!(read <= query.len() + keys.len(), "{read} names read");
        // A name in both, last in each and in another case, must still say the same.
        let (mut q, mut k) = (query.clone(), keys.clone());
        q.push("TEXT=1".into());
        k.push(r#""text":"2""#.into());
        let e = parse(Exchange::Gate, &many(&q, &k)).unwrap_err();
        assert!(e.0.contains("with different values"), "{e:?}");
        k.pop();
        k.push(r#""text":"1""#.into());
        assert!(parse(Exchange::Gate, &many(&q, &k)).is_ok());
    }

    /// Upbit and Bithumb sign the body as the `k=v&...` query it flattens to, where an empty
    /// list or object is nothing: `{"market":[]}` was read as a request with `market` and
    /// signed as one without parameters, the token every parameterless endpoint takes.
    #[test]
    fn an_empty_list_or_object_is_refused_where_the_body_is_hashed_flat() {
        for ex in [Exchange::Upbit, Exchange::Bithumb] {
            for body in [
                r#"{"market":[]}"#,
                r#"{"side":"bid","market":[]}"#,
                r#"{"market":{}}"#,
                r#"{"states":["wait",[]]}"#,
            ] {
                let err = parse(ex, &req("POST", "/v1/orders", "", body)).unwrap_err();
                assert!(err.0.contains("leaves out"), "{ex} {body}: {err:?}");
            }
            parse(ex, &req("POST", "/v1/orders", "", r#"{"states":["wait"]}"#)).unwrap();
        }
        // Where the body is signed as sent, an empty list is what it is.
        parse(
            Exchange::Okx,
            &req("POST", "/api/v5/trade/order", "", r#"{"e":[]}"#),
        )
        .unwrap();
    }

    /// A flat-hashed body's values, nested in lists too (hashed as `key[]=v`), take the query
    /// values' characters (red-team round 27); a body signed as sent does not.
    #[test]
    fn a_flat_hashed_body_value_takes_the_query_values_characters() {
        for ex in [Exchange::Upbit, Exchange::Bithumb] {
            for body in [
                r#"{"identifier":"x%26a%3D1"}"#,
                r#"{"identifier":"a b"}"#,
                r#"{"uuids":["a","b+c"]}"#,
                r#"{"market":"KRW-BTC","identifier":"x#y?z"}"#,
            ] {
                let err = parse(ex, &req("POST", "/v1/orders", "", body)).unwrap_err();
                assert!(
                    err.0.contains("hashes the body as the query"),
                    "{ex} {body}: {err:?}"
                );
            }
            let err = parse(
                ex,
                &req("POST", "/v1/orders", "", r#"{"uuids":["a","b+c"]}"#),
            );
            assert!(err.unwrap_err().0.contains(r#""uuids""#));
            parse(
                ex,
                &req("POST", "/v1/orders", "", r#"{"uuids":["a-1","b_2"],"n":5}"#),
            )
            .unwrap();
        }
        parse(
            Exchange::Okx,
            &req("POST", "/api/v5/trade/order", "", r#"{"clOrdId":"a b+c"}"#),
        )
        .unwrap();
    }

    #[test]
    fn names_and_values_follow_the_grammar() {
        assert!(name_ok("states[]", true) && name_ok("close[ordertype]", true));
        assert!(!name_ok("states[]", false) && !name_ok("a[b", true) && !name_ok("", true));
        assert!(!name_ok("a%62", false) && !name_ok("a.b", false) && name_ok("fee-info", false));
        assert!(value_ok("KRW-BTC,ETH%2Fx:1", false) && value_ok("", false));
        assert!(!value_ok("ETH%2Fx", true) && value_ok("KRW-BTC,x:1", true));
        // An apostrophe: fetch sends it as %27, so not in an unencoded query (red-team round 23).
        assert!(value_ok("a'b", false) && !value_ok("a'b", true));
        for v in ["a b", "a+b", "%4", "é", "a=b", "{", "a#b"] {
            assert!(!value_ok(v, false), "{v}");
        }
    }
}
