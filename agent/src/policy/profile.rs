//! Trading profiles: per exchange, the endpoints a trading bot needs, each with the parameter
//! names it takes. They are data, one file per exchange in `agent/profiles/`, each endpoint
//! with the URL of its documentation; the agent embeds them at build time.
//!
//! A key signs, by default, only what its exchange's profile lists. `config.toml` can widen a
//! key's profile with explicit endpoints (method, path, parameters), which never pass the
//! built-in deny list, or narrow it to some of its endpoints (`only`).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::OnceLock;

use serde::Deserialize;

use super::parse::{Param, Parsed};
use crate::credential::Exchange;

/// One endpoint: method, path template, parameter names, documentation.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Endpoint {
    pub method: String,
    /// The path; a segment `{name}` stands for any one segment (an order id, a pair), and
    /// `{name:a|b}` for one of the values listed.
    pub path: String,
    #[serde(default)]
    pub doc: Option<String>,
    #[serde(default)]
    pub params: Vec<String>,
    /// Parameters the request must carry. Where the path is not signed, these are what makes a
    /// signature good only for this endpoint (Bybit's `category`, Binance's `symbol`): without
    /// them, `{"orderId":"…"}` for a cancel would also verify on a P2P release.
    #[serde(default)]
    pub required: Vec<String>,
    /// Parameters that take only the values listed (Binance's order `type`): where the path
    /// is not signed, a value no order takes (`type=MARGIN`) can make an order's signature
    /// another endpoint's.
    #[serde(default)]
    pub values: std::collections::BTreeMap<String, Vec<String>>,
    /// `"array"` when the JSON body is an array of objects (OKX batch endpoints).
    #[serde(default)]
    pub body: Option<String>,
}

/// An exchange's profile, as read from its file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub exchange: Exchange,
    /// The API reference the entries were taken from.
    pub docs: String,
    #[serde(rename = "endpoint", default)]
    pub endpoints: Vec<Endpoint>,
}

/// The profile files, embedded.
fn source(exchange: Exchange) -> &'static str {
    match exchange {
        Exchange::Upbit => include_str!("../../profiles/upbit.toml"),
        Exchange::Binance => include_str!("../../profiles/binance.toml"),
        Exchange::Bithumb => include_str!("../../profiles/bithumb.toml"),
        Exchange::Bybit => include_str!("../../profiles/bybit.toml"),
        Exchange::Okx => include_str!("../../profiles/okx.toml"),
        Exchange::Coinbase => include_str!("../../profiles/coinbase.toml"),
        Exchange::Kraken => include_str!("../../profiles/kraken.toml"),
        Exchange::Gate => include_str!("../../profiles/gate.toml"),
        Exchange::Kucoin => include_str!("../../profiles/kucoin.toml"),
        Exchange::Bitget => include_str!("../../profiles/bitget.toml"),
    }
}

/// Read and check one profile file's text.
pub fn load(exchange: Exchange, text: &str) -> Result<Profile, String> {
    let p: Profile = toml::from_str(text).map_err(|e| e.to_string())?;
    if p.exchange != exchange {
        return Err(format!("the file is for {}, not {exchange}", p.exchange));
    }
    for e in &p.endpoints {
        e.check()
            .map_err(|why| format!("{} {}: {why}", e.method, e.path))?;
    }
    Ok(p)
}

/// The built-in profile of `exchange`. The files are checked by the test suite, so a file
/// that does not load is a build defect: the agent then serves an empty profile (refusing
/// everything) and says why, rather than guess.
pub fn builtin(exchange: Exchange) -> &'static Profile {
    static PROFILES: OnceLock<BTreeMap<Exchange, Profile>> = OnceLock::new();
    let all = PROFILES.get_or_init(|| {
        Exchange::ALL
            .iter()
            .map(|&ex| {
                let p = load(ex, source(ex)).unwrap_or_else(|e| {
                    say!("tapsign agent: the built-in {ex} profile is damaged ({e}); {ex} signs nothing");
                    Profile {
                        exchange: ex,
                        docs: String::new(),
                        endpoints: Vec::new(),
                    }
                });
                (ex, p)
            })
            .collect()
    });
    &all[&exchange]
}

/// A template segment `{name}` or `{name:a|b}`: its name, and the values it is limited to.
pub(crate) fn placeholder(seg: &str) -> Option<(&str, Option<&str>)> {
    let inner = seg.strip_prefix('{')?.strip_suffix('}')?;
    Some(match inner.split_once(':') {
        Some((name, values)) => (name, Some(values)),
        None => (inner, None),
    })
}

/// Do two path templates name the same endpoint? Placeholders compare by name, so `only`'s
/// `/futures/{settle}/orders` names the profile's `/futures/{settle:usdt|btc}/orders`.
fn same_template(a: &str, b: &str) -> bool {
    let (mut a, mut b) = (a.split('/'), b.split('/'));
    loop {
        match (a.next(), b.next()) {
            (None, None) => return true,
            (Some(x), Some(y)) => match (placeholder(x), placeholder(y)) {
                (Some((x, _)), Some((y, _))) if x == y => {}
                (None, None) if x == y => {}
                _ => return false,
            },
            _ => return false,
        }
    }
}

/// Do two path templates have the same literal segments (without ASCII case, as entries are
/// read), and placeholders in the same places (whatever their names and values)?
fn placeholders_align(a: &str, b: &str) -> bool {
    let (mut a, mut b) = (a.split('/'), b.split('/'));
    loop {
        match (a.next(), b.next()) {
            (None, None) => return true,
            (Some(x), Some(y)) => match (placeholder(x), placeholder(y)) {
                (Some(_), Some(_)) => {}
                (None, None) if x.eq_ignore_ascii_case(y) => {}
                _ => return false,
            },
            _ => return false,
        }
    }
}

/// Does a request's path segment fit the template's segment?
fn segment_matches(template: &str, seg: &str) -> bool {
    match placeholder(template) {
        None => template == seg,
        Some((_, None)) => true,
        Some((_, Some(values))) => values.split('|').any(|v| v == seg),
    }
}

/// Whether the path template `template` takes `segments`, segment by segment as `fit` says.
fn template_fits(template: &str, segments: &[String], fit: impl Fn(&str, &str) -> bool) -> bool {
    let mut tmpl = template.trim_start_matches('/').split('/');
    let mut segs = segments.iter();
    loop {
        match (tmpl.next(), segs.next()) {
            (None, None) => return true,
            (Some(t), Some(s)) if fit(t, s) => {}
            _ => return false,
        }
    }
}

/// Whether the path template `template` takes `segments`, without ASCII case.
pub(crate) fn template_matches_folded(template: &str, segments: &[String]) -> bool {
    template_fits(template, segments, segment_matches_folded)
}

/// [`segment_matches`] without ASCII case.
fn segment_matches_folded(template: &str, seg: &str) -> bool {
    match placeholder(template) {
        None => template.eq_ignore_ascii_case(seg),
        Some((_, None)) => true,
        Some((_, Some(values))) => values.split('|').any(|v| v.eq_ignore_ascii_case(seg)),
    }
}

impl Endpoint {
    /// A well-formed entry: a known method, a path of plain segments, `{name}`s or
    /// `{name:a|b}`s, plain parameter names.
    pub fn check(&self) -> Result<(), String> {
        if !matches!(
            self.method.as_str(),
            "GET" | "POST" | "PUT" | "DELETE" | "PATCH"
        ) {
            return Err("the method must be GET, POST, PUT, DELETE or PATCH".into());
        }
        let segs = self
            .path
            .strip_prefix('/')
            .ok_or("the path must start with '/'")?;
        for seg in segs.split('/') {
            let plain = |w: &str| {
                !w.is_empty()
                    && w != "."
                    && w != ".."
                    && w.chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            };
            let ok = match placeholder(seg) {
                None => plain(seg),
                Some((name, None)) => plain(name),
                Some((name, Some(values))) => plain(name) && values.split('|').all(plain),
            };
            if !ok {
                return Err(format!(
                    "the path segment {seg:?} is not a plain name, {{name}} or {{name:a|b}}"
                ));
            }
        }
        // No request with a '.' in its last segment is signed (a server matching paths with
        // any extension may read it without): such an entry would match nothing, and narrow
        // nothing it was written to narrow (red-team round 18, recheck).
        if let Some(last) = segs.rsplit('/').next()
            && placeholder(last).is_none()
            && last.contains('.')
        {
            return Err(format!(
                "the path's last segment {last:?} holds a '.' (a file extension): tapsign signs no request whose last segment does, so this entry would match nothing; write the path without it"
            ));
        }
        for p in &self.params {
            // No wildcard (`*`, `a.*`): `values` and `required` name parameters exactly, so one
            // naming a wildcard held nothing to its values, or refused every request, and an
            // entry taking any key under a name is not what a trader reading it would expect
            // (red-team round 27). No profile uses one.
            if p.contains('*') {
                return Err(format!(
                    "the parameter {p:?} holds a '*': tapsign takes no wildcard in params, since \
                     `values` and `required` could not hold for the names it stands for; list \
                     each name the endpoint takes (a.b, a.c)"
                ));
            }
            let ok = !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_-[].".contains(c));
            if !ok {
                return Err(format!("the parameter {p:?} is not a plain name"));
            }
        }
        if let Some(r) = self.required.iter().find(|r| !self.params.contains(r)) {
            return Err(format!("the required parameter {r:?} is not in params"));
        }
        // A required name is checked in every element of its list (`[].category`); in a list
        // inside a list's elements it could not be, so it is not taken.
        if let Some(r) = self.required.iter().find(|r| r.matches("[]").count() > 1) {
            return Err(format!(
                "the required parameter {r:?} is in a list inside a list, which tapsign cannot \
                 require of every element; require the outer list's name instead"
            ));
        }
        for (name, values) in &self.values {
            if !self.params.contains(name) {
                return Err(format!("values lists {name:?}, which is not in params"));
            }
            if values.is_empty() || values.iter().any(String::is_empty) {
                return Err(format!(
                    "values for {name:?} must be a list of non-empty values"
                ));
            }
        }
        match self.body.as_deref() {
            None | Some("array") => Ok(()),
            Some(other) => Err(format!("body = {other:?}: only \"array\" is known")),
        }
    }

    /// Does this entry's method and path template match the request?
    pub fn matches(&self, method: &str, segments: &[String]) -> bool {
        self.method == method && self.segments_match(segments, segment_matches)
    }

    /// [`Endpoint::matches`] without ASCII case, in the method and every segment.
    pub fn matches_folded(&self, method: &str, segments: &[String]) -> bool {
        self.method.eq_ignore_ascii_case(method)
            && self.segments_match(segments, segment_matches_folded)
    }

    /// [`Endpoint::matches`] for a key's entry: its path without ASCII case, so that an entry
    /// narrowing Gate's `{settle:usdt}` (or `/futures/usdt/orders`) holds for `USDT` too,
    /// which the profile's template takes, and one spelling Kraken's `AddOrder` otherwise
    /// still narrows it (red-team round 16). A request whose path is a profile path in
    /// another case is refused all the same (`PathCase`).
    fn matches_as_entry(&self, method: &str, segments: &[String]) -> bool {
        self.method == method && self.segments_match(segments, segment_matches_folded)
    }

    fn segments_match(&self, segments: &[String], fit: impl Fn(&str, &str) -> bool) -> bool {
        template_fits(&self.path, segments, fit)
    }

    /// Does the entry take a parameter of this name? `a.*` admits any one key under `a` (no
    /// entry read from a file has one: [`Endpoint::check`] refuses wildcards).
    pub fn takes(&self, name: &str) -> bool {
        self.params.iter().any(|p| {
            p == name
                || p.strip_suffix(".*").is_some_and(|head| {
                    name.strip_prefix(head)
                        .and_then(|rest| rest.strip_prefix('.'))
                        .is_some_and(|leaf| !leaf.is_empty() && !leaf.contains(['.', '[']))
                })
        })
    }

    /// The TOML a trader puts in config.toml to allow this endpoint with these parameters.
    pub fn config_line(&self) -> String {
        let list = |v: &[String]| v.iter().map(|p| format!("{p:?}")).collect::<Vec<_>>();
        let required = if self.required.is_empty() {
            String::new()
        } else {
            format!(", required = [{}]", list(&self.required).join(", "))
        };
        let values = if self.values.is_empty() {
            String::new()
        } else {
            let each = self
                .values
                .iter()
                .map(|(name, vs)| format!("{} = [{}]", toml_key(name), list(vs).join(", ")));
            format!(", values = {{ {} }}", each.collect::<Vec<_>>().join(", "))
        };
        let body = match &self.body {
            Some(kind) => format!(", body = {kind:?}"),
            None => String::new(),
        };
        format!(
            "{{ method = {:?}, path = {:?}, params = [{}]{required}{values}{body} }}",
            self.method,
            self.path,
            list(&self.params).join(", ")
        )
    }

    /// A parameter whose value, as the exchange reads it ([`read_value`]), is not one this
    /// entry lists for it. Query and form values are read percent-decoded; with `json_body`,
    /// the body's values are read as they are.
    pub fn unlisted<'a>(&self, params: &'a [Param], json_body: bool) -> Option<&'a Param> {
        self.unlisted_but(params, json_body, None)
    }

    /// [`Endpoint::unlisted`], passing over the names `chosen` lists values for itself.
    pub fn unlisted_but<'a>(
        &self,
        params: &'a [Param],
        json_body: bool,
        chosen: Option<&Endpoint>,
    ) -> Option<&'a Param> {
        params.iter().find(|p| {
            if chosen.is_some_and(|c| c.values.contains_key(&p.name)) {
                return false;
            }
            let Some(listed) = self.values.get(&p.name) else {
                return false;
            };
            let value = read_value(p, json_body);
            !listed.iter().any(|v| *v == value)
        })
    }

    /// The required parameters `parsed` lacks (`params` is `parsed.params()`). A parameter
    /// sent empty (`symbol=`, `""`) or as JSON `null` counts as missing: many servers read
    /// those as not sent, and a required parameter is there to make the signed bytes this
    /// endpoint's and no other's. A required name of a list's elements (`[].category`,
    /// `batchOrders[].symbol`, `request[].symbol`) is missing when any element lacks it: a
    /// `category` in a batch's first order says nothing of the second's.
    pub fn missing<'a>(&'a self, parsed: &Parsed, params: &[Param]) -> Vec<&'a str> {
        let lacks = |r: &str, ps: &[Param]| !ps.iter().any(|p| p.name == r && has_value(p));
        self.required
            .iter()
            .filter(|r| {
                lacks(r, params)
                    || r.rsplit_once("[].")
                        .is_some_and(|(list, _)| parsed.elements(list).iter().any(|e| lacks(r, e)))
            })
            .map(String::as_str)
            .collect()
    }
}

/// A parameter's value as `values` lines are compared with it: as sent in a JSON body,
/// percent-decoded in a query or form.
pub fn read_value(p: &Param, json_body: bool) -> Cow<'_, str> {
    let sent = p.value.as_deref().unwrap_or("");
    if json_body && p.in_body {
        Cow::Borrowed(sent)
    } else {
        crate::sign::form::decoded_cow(sent)
    }
}

/// `, values = { name = ["value"], ... }` for a suggested line, or empty for none.
pub fn values_clause(values: &[(String, String)]) -> String {
    if values.is_empty() {
        return String::new();
    }
    let each: Vec<String> = values
        .iter()
        .map(|(name, value)| format!("{} = [{value:?}]", toml_key(name)))
        .collect();
    format!(", values = {{ {} }}", each.join(", "))
}

/// A TOML key: bare when it can be (`tdMode`), quoted otherwise (`"[].tdMode"`, `"okx.spot"`),
/// as a TOML basic string: `"` and `\` escaped, control characters as `\uXXXX`.
fn toml_key(name: &str) -> String {
    let bare = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if bare {
        return name.to_owned();
    }
    let mut quoted = String::with_capacity(name.len() + 2);
    quoted.push('"');
    for c in name.chars() {
        match c {
            '"' | '\\' => {
                quoted.push('\\');
                quoted.push(c);
            }
            c if c.is_control() => quoted.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

/// A key's table in config.toml as a dotted key (`keys.okx-main`, `keys."okx.spot"`), for
/// messages that tell the trader where to write: a name TOML cannot write bare is quoted, or
/// the pasted `[keys.okx.spot]` would be the table `spot` inside a table `okx`, and config.toml
/// would no longer load (red-team round 27, F2; `key add` takes names with a '.').
pub fn key_table(name: &str) -> String {
    format!("keys.{}", toml_key(name))
}

/// Whether `p` carries a value a server cannot read as "not sent": not empty or blank (also
/// once percent-decoded), not JSON `null`, not the text `null` or `undefined` (what a client
/// writes for a variable it never set).
fn has_value(p: &Param) -> bool {
    p.value.as_deref().is_some_and(|raw| {
        let v = crate::sign::form::decoded_cow(raw);
        let v = v.trim_matches(|c: char| c.is_whitespace() || c.is_control());
        !v.is_empty() && v != "null" && v != "undefined"
    })
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.method, self.path)
    }
}

/// A key's policy from config.toml: the built-in profile, widened by `allow` entries and
/// narrowed by `only`, and whether it may sign websocket logins.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyPolicy {
    /// Endpoints added to the profile.
    pub allow: Vec<Endpoint>,
    /// When not empty, only these `METHOD /path` templates are signed.
    pub only: Vec<(String, String)>,
    /// Websocket logins (and requests that amount to one) may be signed.
    pub ws_login: bool,
    /// Bybit requests without parameters may be signed (their empty payload is also an empty
    /// POST's: docs/policy.md, "Parameterless requests").
    pub parameterless: bool,
    /// Orders may borrow where the order itself asks to: OKX's `tdMode` `cross` or `isolated`
    /// on a spot pair, Kraken's `leverage` (docs/policy.md, "Borrowing").
    pub margin: bool,
}

impl KeyPolicy {
    /// Rules that change the built-in profile, as `status` and `policy explain` show them.
    pub fn describe(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .allow
            .iter()
            .map(|e| {
                let mut rule = format!("allow {e} ({})", e.params.join(", "));
                if !e.required.is_empty() {
                    rule.push_str(&format!("; required: {}", e.required.join(", ")));
                }
                for (name, listed) in &e.values {
                    rule.push_str(&format!("; {name}: {}", listed.join(" | ")));
                }
                rule
            })
            .collect();
        out.extend(self.only.iter().map(|(m, p)| format!("only {m} {p}")));
        if self.ws_login {
            out.push("ws_login".into());
        }
        if self.parameterless {
            out.push("parameterless".into());
        }
        if self.margin {
            out.push("margin".into());
        }
        out
    }
}

impl KeyPolicy {
    /// The switches this policy sets that change nothing for a key of `exchange`, each with
    /// where it applies: `parameterless` is Bybit's; `margin` reads the orders of every
    /// exchange with a borrow switch or a margin mode (docs/policy.md, "Borrow switches hold
    /// on every entry"), all but Upbit, Bithumb and Coinbase. Accepted (the key may be
    /// replaced by one of another exchange), but `status` listed them as changes to the
    /// profile (red-team round 24, D3).
    pub fn idle_switches(&self, exchange: Exchange) -> Vec<&'static str> {
        let (parameterless, margin) = self.idle(exchange);
        let mut out = Vec::new();
        if parameterless {
            out.push("parameterless = true (Bybit keys only)");
        }
        if margin {
            out.push("margin = true (no Upbit, Bithumb or Coinbase order borrows by a field)");
        }
        out
    }

    /// [`KeyPolicy::describe`] for a key of `exchange`: without the switches that change
    /// nothing for it. `status` and `policy explain` listed them as changes to the profile,
    /// next to the warning that they change nothing (red-team round 26, F9).
    pub fn describe_for(&self, exchange: Exchange) -> Vec<String> {
        let (parameterless, margin) = self.idle(exchange);
        let mut out = self.describe();
        out.retain(|r| !(parameterless && r == "parameterless" || margin && r == "margin"));
        out
    }

    /// Whether `parameterless` and `margin` are set and change nothing for `exchange`.
    fn idle(&self, exchange: Exchange) -> (bool, bool) {
        let no_borrow_field = matches!(
            exchange,
            Exchange::Upbit | Exchange::Bithumb | Exchange::Coinbase
        );
        (
            self.parameterless && exchange != Exchange::Bybit,
            self.margin && no_borrow_field,
        )
    }
}

/// Which entry admits a request: the profile's or a config rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Profile,
    Config,
    /// `ws_login = true`, for the REST call that is the exchange's websocket login.
    WsLogin,
}

/// The entry that admits `parsed` for a key of `exchange` with `policy`, if any: the config's
/// first (an `allow` entry for an endpoint the profile has replaces the profile's entry, so a
/// trader can add a parameter to it), then the profile's.
pub fn find<'a>(
    exchange: Exchange,
    policy: &'a KeyPolicy,
    parsed: &Parsed,
) -> Option<(&'a Endpoint, Source)> {
    let found = find_unnarrowed(exchange, policy, parsed)?;
    (found.1 == Source::WsLogin || !left_out_by_only(policy, found.0)).then_some(found)
}

/// Whether two of a key's entries that can take the same request (`a` and `b`, same method)
/// are kept apart by a trading profile all the same, so that each applies to requests of its
/// own and none is dead: they take one path only (wherever one has a placeholder, the other
/// has a literal), that path is some profile's endpoint (any exchange's: a key's table does
/// not say its exchange), and only one of them stands in for that endpoint ([`find`]: a
/// placeholder entry stands in only for the endpoint of its own template). This is KuCoin's
/// `{orderId}` beside its literal sibling `cancelAll`: an entry for each narrows each
/// (red-team round 16). Any other pair would leave the request to whichever comes first in
/// config.toml, and a narrowing appended after a broader entry dead (red-team round 27, F3).
pub fn entries_kept_apart(a: &Endpoint, b: &Endpoint) -> bool {
    let (sa, sb): (Vec<&str>, Vec<&str>) =
        (a.path.split('/').collect(), b.path.split('/').collect());
    if sa.len() != sb.len() {
        return false;
    }
    // The one path both take, if they take one only.
    let mut meet = Vec::with_capacity(sa.len());
    for (x, y) in sa.iter().zip(&sb) {
        match (placeholder(x), placeholder(y)) {
            (None, _) => meet.push(x.to_string()),
            (Some(_), None) => meet.push(y.to_string()),
            (Some(_), Some(_)) => return false,
        }
    }
    let segments: Vec<String> = meet.into_iter().skip(1).collect();
    let stands_in = |entry: &Endpoint, profiled: &Endpoint| {
        !entry.path.contains('{')
            || profiled.method == entry.method && placeholders_align(&profiled.path, &entry.path)
    };
    Exchange::ALL.iter().any(|&ex| {
        builtin(ex)
            .endpoints
            .iter()
            .find(|e| e.matches_folded(&a.method, &segments))
            .is_some_and(|profiled| stands_in(a, profiled) != stands_in(b, profiled))
    })
}

/// A profile endpoint (of any exchange: a key's table does not say its exchange) that would
/// answer, in place of `entry`, for a path that `entry`'s placeholder names by listing it:
/// `/api/v5/trade/{x:order|amend-order}` takes `/api/v5/trade/order`, but a placeholder entry
/// stands in only for a profile endpoint with placeholders in the same places ([`find`]), so
/// OKX's own `order` entry signed there and the entry's `values` never counted, while `status`
/// listed them (red-team round 27, R1). A placeholder that lists nothing keeps the documented
/// rule (`{orderId}` beside KuCoin's `cancelAll`): it names no literal sibling.
pub fn answered_by_profile(entry: &Endpoint) -> Option<(Exchange, &'static Endpoint)> {
    let ours: Vec<&str> = entry.path.trim_start_matches('/').split('/').collect();
    Exchange::ALL.iter().find_map(|&ex| {
        builtin(ex).endpoints.iter().find_map(|p| {
            if p.method != entry.method {
                return None;
            }
            let theirs: Vec<&str> = p.path.trim_start_matches('/').split('/').collect();
            if theirs.len() != ours.len() {
                return None;
            }
            // Some literal of the profile's that one of the entry's placeholders lists.
            let named = ours.iter().zip(&theirs).any(|(o, t)| {
                placeholder(t).is_none()
                    && placeholder(o).is_some_and(|(_, listed)| {
                        listed.is_some_and(|vs| vs.split('|').any(|v| v.eq_ignore_ascii_case(t)))
                    })
            });
            if !named {
                return None;
            }
            // The path the two share there: the profile's literals, the entry's where the
            // profile has a placeholder, a value both list where both have one.
            let segments: Option<Vec<String>> = ours
                .iter()
                .zip(&theirs)
                .map(|(o, t)| match (placeholder(o), placeholder(t)) {
                    (_, None) => Some(t.to_string()),
                    (None, Some(_)) => Some(o.to_string()),
                    (Some((_, mine)), Some((_, listed))) => {
                        let any = |vs: Option<&str>| -> Vec<String> {
                            vs.map_or_else(Vec::new, |vs| {
                                vs.split('|').map(str::to_owned).collect()
                            })
                        };
                        match (any(mine), any(listed)) {
                            (m, l) if m.is_empty() && l.is_empty() => Some("0".to_owned()),
                            (m, l) if l.is_empty() => m.into_iter().next(),
                            (m, l) if m.is_empty() => l.into_iter().next(),
                            (m, l) => l
                                .into_iter()
                                .find(|v| m.iter().any(|w| w.eq_ignore_ascii_case(v))),
                        }
                    }
                })
                .collect();
            let segments = segments?;
            if !entry.matches_as_entry(&entry.method, &segments) {
                return None;
            }
            // The endpoint the profile answers with for that path, as [`find`] looks it up.
            let answers = builtin(ex)
                .endpoints
                .iter()
                .find(|e| e.matches(&entry.method, &segments))?;
            (!placeholders_align(&answers.path, &entry.path)).then_some((ex, answers))
        })
    })
}

/// [`find`] without the key's `only` list.
fn find_unnarrowed<'a>(
    exchange: Exchange,
    policy: &'a KeyPolicy,
    parsed: &Parsed,
) -> Option<(&'a Endpoint, Source)> {
    let hit = |e: &&Endpoint| e.matches(&parsed.method, &parsed.segments);
    if policy.ws_login
        && let Some(token) = ws_token(exchange).filter(hit)
    {
        // The key's websocket login: `ws_login = true` is the trader's choice of it, as it is
        // for the exchanges whose login is a `ws_login` message (which `only` does not narrow).
        return Some((token, Source::WsLogin));
    }
    // A config entry stands in for the profile endpoint whose template it shares, and for no
    // other: a `{orderId}` line must not take over a literal sibling the profile has
    // (`cancelAll`), which keeps its own entry (red-team round 16).
    let stands_in = |e: &&Endpoint| {
        !e.path.contains('{')
            || profiled(exchange, parsed)
                .is_none_or(|p| p.method == e.method && placeholders_align(&p.path, &e.path))
    };
    policy
        .allow
        .iter()
        .filter(|e| e.matches_as_entry(&parsed.method, &parsed.segments))
        .find(stands_in)
        .map(|e| (e, Source::Config))
        .or_else(|| {
            builtin(exchange)
                .endpoints
                .iter()
                .find(hit)
                .map(|e| (e, Source::Profile))
        })
}

/// Whether the key's `only` list leaves out `entry`, which would admit the request otherwise.
fn left_out_by_only(policy: &KeyPolicy, entry: &Endpoint) -> bool {
    !policy.only.is_empty()
        && !policy
            .only
            .iter()
            .any(|(m, p)| *m == entry.method && same_template(p, &entry.path))
}

/// The entry, profile's or config's, that would admit `parsed` but for the key's `only` list.
pub fn only_leaves_out<'a>(
    exchange: Exchange,
    policy: &'a KeyPolicy,
    parsed: &Parsed,
) -> Option<(&'a Endpoint, Source)> {
    let (entry, source) = find_unnarrowed(exchange, policy, parsed)?;
    (source != Source::WsLogin && left_out_by_only(policy, entry)).then_some((entry, source))
}

/// The REST call that is `exchange`'s websocket login, when it has one: Kraken's
/// `GetWebSocketsToken` (its token logs the private websocket in for trading). Out of the
/// profile, and admitted by `ws_login = true` alone.
fn ws_token(exchange: Exchange) -> Option<&'static Endpoint> {
    static KRAKEN: OnceLock<Endpoint> = OnceLock::new();
    (exchange == Exchange::Kraken).then(|| {
        KRAKEN.get_or_init(|| Endpoint {
            method: "POST".into(),
            path: "/0/private/GetWebSocketsToken".into(),
            doc: Some("https://docs.kraken.com/api/docs/rest-api/get-websockets-token".into()),
            params: Vec::new(),
            required: Vec::new(),
            values: BTreeMap::new(),
            body: None,
        })
    })
}

/// The values `entry` holds its parameters to: its own, and, for each parameter it lists none
/// for, those of `profiled`, the profile endpoint a config entry stands in for (see
/// [`profiled`]). A config line written before the profile listed values (or without them,
/// or with a path spelled another way than the profile's) must not drop them: they are what
/// keeps an order's signature from being another endpoint's (Binance `type=MARGIN`).
pub fn values_for<'a>(entry: &'a Endpoint, profiled: Option<&Endpoint>) -> Cow<'a, Endpoint> {
    let Some(profiled) = profiled else {
        return Cow::Borrowed(entry);
    };
    if profiled.values.keys().all(|k| entry.values.contains_key(k)) {
        return Cow::Borrowed(entry);
    }
    let mut merged = entry.clone();
    for (name, listed) in &profiled.values {
        merged
            .values
            .entry(name.clone())
            .or_insert_with(|| listed.clone());
    }
    Cow::Owned(merged)
}

/// The profile endpoint whose path `parsed` spells in another ASCII case (`/0/private/addOrder`
/// for `AddOrder`): a server routing paths without case would take it for that endpoint,
/// which the profile's rules (and a key's narrowing) name only as spelled. When a template
/// takes the path as spelled, only an endpoint with a literal segment in another case counts
/// (KuCoin's `hf/orders/CancelAll`, which its `{orderId}` sibling takes as an id).
pub fn spelled_otherwise(exchange: Exchange, parsed: &Parsed) -> Option<&'static Endpoint> {
    let endpoints = &builtin(exchange).endpoints;
    let exact = endpoints
        .iter()
        .any(|e| e.matches(&parsed.method, &parsed.segments));
    let literal_in_other_case = |e: &Endpoint| {
        e.path
            .trim_start_matches('/')
            .split('/')
            .zip(&parsed.segments)
            .any(|(t, s)| placeholder(t).is_none() && t != s && t.eq_ignore_ascii_case(s))
    };
    endpoints.iter().find(|e| {
        e.matches_folded(&parsed.method, &parsed.segments)
            && !e.matches(&parsed.method, &parsed.segments)
            && (!exact || literal_in_other_case(e))
    })
}

/// The profile endpoint `parsed` names once the file extension of its last segment is
/// dropped, when that endpoint ends in a literal segment: a server that matches paths with any
/// extension (Spring's suffix pattern matching) reads KuCoin's
/// `DELETE /api/v1/hf/orders/cancelAll.json` as cancel-all, where the profile's `{orderId}`
/// template would take `cancelAll.json` as an order id, and Binance's `/api/v3/order.json` as
/// the order endpoint, where an entry a refusal suggested for that spelling would leave the
/// profile's rules behind (red-team round 17). Asked only of a path whose last segment holds a
/// '.', which no profile path has.
pub fn extension_hides(exchange: Exchange, parsed: &Parsed) -> Option<&'static Endpoint> {
    let segments = super::segments_without_extension(&parsed.segments)?;
    builtin(exchange).endpoints.iter().find(|e| {
        let ends_literal = e
            .path
            .rsplit('/')
            .next()
            .is_some_and(|t| placeholder(t).is_none());
        ends_literal && e.matches_folded(&parsed.method, &segments)
    })
}

/// [`spelled_otherwise`] for a request `matched` takes by a placeholder, asked only when a
/// segment the placeholder takes is some endpoint's literal segment in any case (an order id
/// never is): `{orderId}` taking `CancelAll`. The look costs nothing on an ordinary request.
pub fn literal_behind_placeholder(
    exchange: Exchange,
    parsed: &Parsed,
    matched: &Endpoint,
) -> Option<&'static Endpoint> {
    let literals = &profile_names(exchange).literals;
    let hidden = matched
        .path
        .trim_start_matches('/')
        .split('/')
        .zip(&parsed.segments)
        .any(|(t, s)| placeholder(t).is_some() && literals.contains(&s.to_ascii_lowercase()));
    hidden
        .then(|| spelled_otherwise(exchange, parsed))
        .flatten()
}

/// The key's entry that stands for `endpoint`, a profile endpoint with a `{name:a|b}`
/// placeholder, under another of its alternatives than the request's. An entry for KuCoin's
/// `/api/ua/v1/unified/order/place` narrows the profile's
/// `/api/ua/v1/{accountMode:unified|classic}/order/place`; the request for `classic`, which the
/// entry does not match, would otherwise take the profile's entry, without the narrowing
/// (red-team round 18). Nothing to look for where the key has no entries.
pub fn entry_under_other_alternative<'a>(
    policy: &'a KeyPolicy,
    endpoint: &Endpoint,
) -> Option<&'a Endpoint> {
    let alternatives = |t: &str| matches!(placeholder(t), Some((_, Some(_))));
    if policy.allow.is_empty() || !endpoint.path.split('/').any(alternatives) {
        return None;
    }
    // The entry's path, read as a request's against the template: its literal segments as the
    // template takes them (without case), its placeholders where the template has one.
    let fits = |t: &str, e: &str| match placeholder(e) {
        Some(_) => placeholder(t).is_some(),
        None => segment_matches_folded(t, e),
    };
    policy.allow.iter().find(|e| {
        let segments: Vec<String> = e
            .path
            .trim_start_matches('/')
            .split('/')
            .map(str::to_owned)
            .collect();
        e.method == endpoint.method && template_fits(&endpoint.path, &segments, fits)
    })
}

/// The profile endpoint that admits `parsed`, whatever config.toml adds or narrows: the one a
/// config entry that also admits it replaces, however that entry spells its path.
pub fn profiled(exchange: Exchange, parsed: &Parsed) -> Option<&'static Endpoint> {
    builtin(exchange)
        .endpoints
        .iter()
        .find(|e| e.matches(&parsed.method, &parsed.segments))
}

/// How a request admitted by a config entry is a profile endpoint's request that the profile
/// itself never signs (see [`missing_for_profile_shape`]).
#[derive(Debug)]
pub enum Shape<'p> {
    /// All of the endpoint's but for these required parameters.
    Missing(&'static Endpoint, Vec<&'static str>),
    /// All of the endpoint's, required ones included, but for a value it leaves out (the
    /// parameter carrying it).
    Value(&'static Endpoint, &'p Param),
}

/// Where the path is not signed, a profile endpoint whose request a request admitted by a
/// config entry is, but for a required parameter or a listed value: its profile-known
/// parameters are all the endpoint's, and either its values are ones the endpoint takes and a
/// `required` one is missing, or its required ones are there and a value is one the endpoint
/// leaves out. The profile never signs such bytes (its `required` parameters keep them from
/// being another endpoint's whole request, such as a Bybit P2P release's `{"orderId":…}`; its
/// `values` keep an order from being one it leaves out, such as Bybit's option order or
/// Binance's self-trade prevention `TRANSFER`), and the bot, not the signature, names the
/// path: an entry for a sibling path (a margin or legacy order endpoint) must not sign them
/// for the profile's. Unless some profile endpoint takes the request whole. Parameters no
/// profile endpoint takes are left out of the comparison, as an exchange that ignores what an
/// endpoint does not take leaves them out. Bybit signs a GET's query and a POST's body
/// differently, so only endpoints whose parameters travel the same way count there. A
/// required name of a list's elements counts as missing when any element lacks it.
/// A value the admitting entry lists itself (`chosen.values`) is the trader's choice and
/// stands; what an entry without a `values` line for the name admits is held to the
/// profile's (a line a refusal suggested, a legacy path's entry).
pub fn missing_for_profile_shape<'p>(
    exchange: Exchange,
    parsed: &Parsed,
    params: &'p [Param],
    chosen: &Endpoint,
) -> Option<Shape<'p>> {
    let method = parsed.method.as_str();
    let body_is_array = parsed.body_is_array();
    let json_body = matches!(parsed.body, super::parse::Body::Json(..));
    let profile = &builtin(exchange).endpoints;
    let known: Vec<&Param> = params
        .iter()
        .filter(|p| !agent_owned(exchange, &p.name))
        .filter(|p| profile.iter().any(|e| e.takes(&p.name)))
        .collect();
    if known.is_empty() {
        return None;
    }
    let reads = |m: &str| matches!(m, "GET" | "DELETE");
    let carried = profile.iter().filter(|e| {
        (exchange != Exchange::Bybit || reads(&e.method) == reads(method))
            && (e.body.as_deref() == Some("array")) == body_is_array
    });
    let mut short = None;
    let mut value = None;
    for e in carried {
        // `required` and `values` name only parameters the endpoint takes, so both read the
        // request as a server that ignores the rest would.
        let missing = e.missing(parsed, params);
        let unlisted = e.unlisted(params, json_body);
        if known.iter().all(|p| e.takes(&p.name)) {
            match (unlisted, missing.is_empty()) {
                // Bytes the profile signs anyway, as this endpoint's request.
                (None, true) => return None,
                (None, false) => {
                    short.get_or_insert(Shape::Missing(e, missing));
                    continue;
                }
                _ => {}
            }
        }
        // The endpoint's required parameters are there and it leaves out a value, one the
        // admitting entry did not choose: even with names it does not take (red-team round
        // 11: another endpoint's `omitZeroBalances` hid the shape), and past a first value
        // the entry chose (an entry listing `type=TWAP` hid STP `TRANSFER`).
        if value.is_none()
            && missing.is_empty()
            && unlisted.is_some()
            && let Some(p) = e.unlisted_but(params, json_body, Some(chosen))
        {
            value = Some(Shape::Value(e, p));
        }
    }
    short.or(value)
}

/// Where the path is not signed, a key's entry that narrows a profile endpoint whose request
/// `parsed` also is, though another entry admits it: the narrowing would not hold for the
/// bytes (red-team round 16: a Bybit key narrowed to spot orders on `/v5/order/create` signed
/// a linear order named `/v5/order/pre-check`, good for `create` too). `parsed` is that
/// endpoint's request when the endpoint's profile entry takes it whole (every name, the
/// required ones, the listed values), the body has its shape and, on Bybit, the method its
/// class (a read signs the query, a write the body); the endpoint is not a read. The entry
/// then refuses it for a name the entry does not take, a value outside the entry's own
/// `values`, or a parameter the entry requires. Says which entry, and what it leaves out.
pub fn narrowed_elsewhere<'a>(
    exchange: Exchange,
    policy: &'a KeyPolicy,
    admitting: &Endpoint,
    parsed: &Parsed,
    params: &[Param],
) -> Option<(&'a Endpoint, String)> {
    let json_body = matches!(parsed.body, super::parse::Body::Json(..));
    let reads = |m: &str| matches!(m, "GET" | "DELETE");
    for entry in &policy.allow {
        if std::ptr::eq(entry, admitting) {
            continue;
        }
        let Some(e) = builtin(exchange)
            .endpoints
            .iter()
            .find(|e| e.method == entry.method && e.path.eq_ignore_ascii_case(&entry.path))
        else {
            continue;
        };
        // Only bytes the profile's entry for that endpoint takes whole are its request: every
        // name, its required ones, its values (`LIMIT_MAKER` is no futures order, and an
        // order's `side` no cancel's). A read moves nothing, so narrowing one narrows only
        // its own requests.
        let mut known = params.iter().filter(|p| !agent_owned(exchange, &p.name));
        if e.method == "GET"
            || (exchange == Exchange::Bybit && reads(&e.method) != reads(&parsed.method))
            || (e.body.as_deref() == Some("array")) != parsed.body_is_array()
            || !known.all(|p| e.takes(&p.name))
            || !e.missing(parsed, params).is_empty()
            || unlisted_folded(e, params, json_body)
        {
            continue;
        }
        if let Some(p) = params
            .iter()
            .filter(|p| !agent_owned(exchange, &p.name))
            .find(|p| !entry.takes(&p.name))
        {
            return Some((entry, format!("the parameter {}", p.name)));
        }
        // Only what the entry's own `values` narrow: the profile's lists were met above.
        if let Some(p) = entry.unlisted(params, json_body) {
            let read = read_value(p, json_body);
            return Some((entry, format!("{}={:?}", p.name, read.as_ref())));
        }
        let missing = entry.missing(parsed, params);
        if !missing.is_empty() {
            return Some((entry, format!("a request without {}", missing.join(", "))));
        }
    }
    None
}

/// Whether a value of `params` is not among those `e` lists for its name, even trimmed and
/// with case folded (as a server folding case would read `Linear` for `linear`).
fn unlisted_folded(e: &Endpoint, params: &[Param], json_body: bool) -> bool {
    params.iter().any(|p| {
        e.values.get(&p.name).is_some_and(|listed| {
            let read = read_value(p, json_body).trim().to_uppercase();
            !listed.iter().any(|v| v.trim().to_uppercase() == read)
        })
    })
}

/// The profile's spelling of `name` when the profile takes no parameter spelled exactly so but
/// one that differs only in case (`SelfTradePreventionMode`, `Category`). Exchanges that read
/// names without case (Binance) or match JSON keys so (as Go's decoder does) read it as the
/// profile's parameter, while `values` and `required` compare names exactly: a line that took
/// the other spelling would take every value of the parameter.
pub fn case_variant(exchange: Exchange, name: &str) -> Option<&'static str> {
    profile_names(exchange).case_variant(name)
}

/// Whether `name` is a parameter of `entry`, which admits `parsed`, or of a profile endpoint
/// that admits it too: a refusal tells the bot to send a [`case_variant`]'s profile spelling
/// only where the endpoint asked for takes that spelling (red-team round 25: a Gate futures
/// order's `stopLoss.triggerPrice` was told to become `stop_loss.trigger_price`, which only the
/// spot entries take, and the futures entry refused that too).
pub fn takes_here(exchange: Exchange, entry: &Endpoint, parsed: &Parsed, name: &str) -> bool {
    entry.takes(name)
        || builtin(exchange)
            .endpoints
            .iter()
            .any(|e| e.matches(&parsed.method, &parsed.segments) && e.takes(name))
}

/// The parameter names of an exchange's built-in profile, indexed once: [`case_variant`] is
/// asked about every name a request carries that its entry does not take, up to
/// [`super::MAX_PARAMS`] of them, and reading every endpoint's every name for each cost a
/// request of a thousand unknown names about 5 ms (docs/benchmarks.md).
struct ProfileNames {
    /// Every name an endpoint lists, as spelled.
    exact: std::collections::HashSet<&'static str>,
    /// The endpoints that take a family of names (`head.*`), which `exact` cannot answer for.
    wild: Vec<&'static Endpoint>,
    /// ASCII lower case to the first spelling met, endpoint by endpoint in the profile's
    /// order (what reading them all in turn found first).
    folded: std::collections::HashMap<String, &'static str>,
    /// The literal segments of the endpoints' paths, in ASCII lower case.
    literals: std::collections::HashSet<String>,
}

impl ProfileNames {
    fn new(endpoints: &'static [Endpoint]) -> ProfileNames {
        let mut names = ProfileNames {
            exact: Default::default(),
            wild: Vec::new(),
            folded: Default::default(),
            literals: Default::default(),
        };
        for e in endpoints {
            for seg in e.path.split('/').filter(|seg| placeholder(seg).is_none()) {
                names.literals.insert(seg.to_ascii_lowercase());
            }
            if e.params.iter().any(|p| p.ends_with(".*")) {
                names.wild.push(e);
            }
            for p in &e.params {
                names.exact.insert(p.as_str());
                names.folded.entry(fold_name(p)).or_insert(p.as_str());
            }
        }
        names
    }

    fn case_variant(&self, name: &str) -> Option<&'static str> {
        // Taken as it is spelled by some endpoint: not a variant.
        if self.exact.contains(name) || self.wild.iter().any(|w| w.takes(name)) {
            return None;
        }
        self.folded.get(&fold_name(name)).copied()
    }
}

/// A parameter name as a lenient server matches it to a field: ASCII case folded, and `_` and
/// `-` left out (JSON binders that match `quick_mgn_type` to `quickMgnType` exist, as do ones
/// that match case alone; red-team round 19 found separators handed back in a line).
pub(super) fn fold_name(name: &str) -> String {
    name.chars()
        .filter(|c| !matches!(c, '_' | '-'))
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

fn profile_names(exchange: Exchange) -> &'static ProfileNames {
    static NAMES: OnceLock<BTreeMap<Exchange, ProfileNames>> = OnceLock::new();
    let all = NAMES.get_or_init(|| {
        Exchange::ALL
            .iter()
            .map(|&ex| (ex, ProfileNames::new(&builtin(ex).endpoints)))
            .collect()
    });
    &all[&exchange]
}

/// The parameters of `params` that `endpoint` does not take (besides the ones the agent owns).
pub fn unknown_params<'p>(
    exchange: Exchange,
    endpoint: &Endpoint,
    params: &'p [Param],
) -> Vec<&'p Param> {
    params
        .iter()
        .filter(|p| !endpoint.takes(&p.name) && !agent_owned(exchange, &p.name))
        .collect()
}

/// Parameters the agent stamps itself: a bot may send Binance's `timestamp` (checked against
/// the clock) and `recvWindow` (checked against the cap); everything else is the agent's.
pub fn agent_owned(exchange: Exchange, name: &str) -> bool {
    exchange == Exchange::Binance && matches!(name, "timestamp" | "recvWindow")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`case_variant`] answers from its index as reading every endpoint's every name in turn
    /// did: for every name of every profile, in other cases, as members of a `head.*` family,
    /// and names no profile has; and, for the families no built-in profile has yet, over a
    /// profile's endpoints with one added that takes `attachAlgoOrds.*` (and one that spells a
    /// member of it otherwise).
    #[test]
    fn case_variant_answers_as_reading_every_endpoint_did() {
        let reference = |endpoints: &[Endpoint], name: &str| -> Option<String> {
            if endpoints.iter().any(|e| e.takes(name)) {
                return None;
            }
            endpoints
                .iter()
                .flat_map(|e| e.params.iter())
                .find(|p| fold_name(p) == fold_name(name))
                .cloned()
        };
        let family: &'static [Endpoint] = Box::leak(
            builtin(Exchange::Okx)
                .endpoints
                .iter()
                .cloned()
                .chain([Endpoint {
                    method: "POST".into(),
                    path: "/api/v5/trade/order-algo".into(),
                    doc: None,
                    params: vec!["instId".into(), "attachAlgoOrds.*".into()],
                    required: Vec::new(),
                    values: Default::default(),
                    body: None,
                }])
                // A member spelled otherwise by another entry: the family's spelling is
                // taken as it is, not a variant of this one.
                .chain([Endpoint {
                    method: "POST".into(),
                    path: "/api/v5/trade/amend-algos".into(),
                    doc: None,
                    params: vec!["attachAlgoOrds.TPTRIGGERPX".into()],
                    required: Vec::new(),
                    values: Default::default(),
                    body: None,
                }])
                .collect::<Vec<_>>()
                .into_boxed_slice(),
        );
        let with_family = ProfileNames::new(family);
        assert_eq!(with_family.wild.len(), 1);
        let mut names: Vec<String> = vec![String::new(), "zzz".into(), "ORDERID".into()];
        for e in Exchange::ALL
            .iter()
            .flat_map(|&ex| &builtin(ex).endpoints)
            .chain(family)
        {
            for p in &e.params {
                let head = p.strip_suffix(".*").unwrap_or(p);
                names.extend([
                    p.clone(),
                    p.to_uppercase(),
                    p.to_lowercase(),
                    format!("{head}.leaf"),
                    format!("{}.LEAF", head.to_uppercase()),
                    format!("{head}.a.b"),
                    format!("{p}x"),
                ]);
            }
        }
        let mut variants = 0;
        let mut check = |endpoints: &[Endpoint], got: &dyn Fn(&str) -> Option<&'static str>| {
            for n in &names {
                let got = got(n);
                assert_eq!(got.map(str::to_owned), reference(endpoints, n), "{n:?}");
                variants += usize::from(got.is_some());
            }
        };
        for &ex in Exchange::ALL {
            check(&builtin(ex).endpoints, &|n| case_variant(ex, n));
        }
        check(family, &|n| with_family.case_variant(n));
        assert!(
            variants > 100,
            "no case variant was found: the test checks nothing"
        );
        // The family takes its members as they are, and a member in other case is a variant.
        assert_eq!(with_family.case_variant("attachAlgoOrds.tpTriggerPx"), None);
        assert_eq!(
            with_family.case_variant("ATTACHALGOORDS.*"),
            Some("attachAlgoOrds.*")
        );
    }

    #[test]
    fn every_builtin_profile_loads_and_is_well_formed() {
        for &ex in Exchange::ALL {
            let p = load(ex, source(ex)).unwrap_or_else(|e| panic!("{ex}: {e}"));
            assert!(!p.endpoints.is_empty(), "{ex} has no endpoints");
            assert!(p.docs.starts_with("https://"), "{ex} docs");
            for e in &p.endpoints {
                let doc = e.doc.as_deref().unwrap_or("");
                assert!(doc.starts_with("https://"), "{ex} {e} has no doc URL");
            }
        }
    }

    #[test]
    fn templates_match_one_segment_and_wildcards_one_key() {
        let e = Endpoint {
            method: "GET".into(),
            path: "/api/v3/brokerage/orders/historical/{order_id}".into(),
            doc: None,
            params: vec!["a".into(), "cfg.*".into()],
            required: vec![],
            values: Default::default(),
            body: None,
        };
        let segs = |p: &str| -> Vec<String> { p[1..].split('/').map(String::from).collect() };
        assert!(e.matches("GET", &segs("/api/v3/brokerage/orders/historical/abc-1")));
        assert!(!e.matches("GET", &segs("/api/v3/brokerage/orders/historical/a/b")));
        assert!(!e.matches("POST", &segs("/api/v3/brokerage/orders/historical/abc")));
        assert!(!e.matches("GET", &segs("/api/v3/brokerage/orders/historical")));
        assert!(e.takes("a") && e.takes("cfg.x") && !e.takes("cfg.x.y") && !e.takes("cfg"));
        // No entry read from a file holds a wildcard (red-team round 27).
        assert!(e.check().unwrap_err().contains("no wildcard"));
        let e = Endpoint {
            params: vec!["a".into()],
            ..e
        };
        let listed = Endpoint {
            path: "/api/v4/futures/{settle:usdt|btc}/orders".into(),
            ..e.clone()
        };
        assert_eq!(listed.check(), Ok(()));
        assert!(listed.matches("GET", &segs("/api/v4/futures/usdt/orders")));
        assert!(listed.matches("GET", &segs("/api/v4/futures/btc/orders")));
        for other in ["usd", "USDT", "usdt|btc", "{settle:usdt|btc}", "x"] {
            let path = format!("/api/v4/futures/{other}/orders");
            assert!(!listed.matches("GET", &segs(&path)), "{path}");
        }
        // Listed values: read as the exchange reads them, and kept in the config line a refusal
        // prints.
        let mut typed = e.clone();
        typed
            .values
            .insert("a".into(), vec!["LIMIT".into(), "MARKET".into()]);
        assert_eq!(typed.check(), Ok(()));
        let param = |v: &str, in_body: bool| Param {
            name: "a".into(),
            value: Some(v.into()),
            in_body,
        };
        assert_eq!(typed.unlisted(&[param("LIMIT", false)], false), None);
        assert_eq!(typed.unlisted(&[param("L%49MIT", false)], false), None);
        assert_eq!(typed.unlisted(&[param("L%49MIT", true)], false), None);
        let margin = [param("MARGIN", false)];
        assert_eq!(typed.unlisted(&margin, false), Some(&margin[0]));
        let lower = [param("limit", false)];
        assert_eq!(typed.unlisted(&lower, false), Some(&lower[0]));
        // A JSON body's value has no escapes: `L%49MIT` there is read as it is.
        let escaped = [param("L%49MIT", true)];
        assert_eq!(typed.unlisted(&escaped, true), Some(&escaped[0]));
        assert!(
            typed
                .config_line()
                .ends_with(r#"values = { a = ["LIMIT", "MARKET"] } }"#),
            "{}",
            typed.config_line()
        );
        // `only` names an entry by its template, placeholders by name.
        assert!(same_template("/f/{settle}/o", "/f/{settle:usdt|btc}/o"));
        assert!(same_template(
            "/f/{settle:usdt}/o",
            "/f/{settle:usdt|btc}/o"
        ));
        assert!(!same_template("/f/{s}/o", "/f/{settle:usdt|btc}/o"));
        assert!(!same_template("/f/usdt/o", "/f/{settle:usdt|btc}/o"));
        assert!(!same_template("/f/{settle}", "/f/{settle}/o"));
        let mut stray = e.clone();
        stray.values.insert("b".into(), vec!["x".into()]);
        assert!(stray.check().is_err());
        let mut empty = e.clone();
        empty.values.insert("a".into(), vec![]);
        assert!(empty.check().is_err());
        for bad in [
            "{settle:}",
            "{settle:usdt|}",
            "{:usdt}",
            "{settle:us/dt}",
            "{settle:..}",
        ] {
            let e = Endpoint {
                path: format!("/api/v4/futures/{bad}/orders"),
                ..e.clone()
            };
            assert!(e.check().is_err(), "{bad}");
        }
        assert!(!e.takes("b") && !e.takes("cfg.") && !e.takes("cfgx"));
    }
}
