//! Connection strings with their secrets taken out, for messages and logs.
//!
//! A connection string names a server, which a message about a failed connection should
//! show, and usually holds a password, which nothing may show. [`connection_string`] parses
//! both forms PostgreSQL clients take and gives the string back with every secret in it
//! replaced by `[redacted]`: the password of a URL's user info, `password=` and
//! `sslpassword=` values in a URL's query or a key-value string, and whatever it cannot
//! read for sure. The PostgreSQL store shows its connection string only through it, in
//! `Debug` and in every error; hosts can do the same with theirs.
//!
//! ```
//! use orderflow::redact;
//!
//! // A password holding `?`, `#`, `@` and `/`, unencoded: hidden whole.
//! let url = "postgres://shop:p?s#w@rd/x@db.internal:5432/shop?sslmode=disable";
//! assert_eq!(
//!     redact::connection_string(url),
//!     "postgres://shop:[redacted]@db.internal:5432/shop?sslmode=disable",
//! );
//! let key_value = "host=db.internal user=shop password='it\\'s secret' dbname=shop";
//! assert_eq!(
//!     redact::connection_string(key_value),
//!     "host=db.internal user=shop password=[redacted] dbname=shop",
//! );
//! ```
//!
//! # How it reads
//!
//! - **URLs** (`scheme://…`, any scheme). A password may hold `@`, `/`, `?` or `#`
//!   unescaped, so where the user info ends is ambiguous: the redaction takes every reading
//!   a parser could make — no user info, or user info up to each `@` in turn — and hides the
//!   union of what each reading makes secret (a URL with whitespace in it is read as a
//!   key-value string too). The password is everything after the user name's `:`; a port
//!   that is not a number is hidden (a user name and password missing their `@` read as
//!   host and port). Query parameters are shown only when their name is
//!   a known, non-secret libpq option (`sslmode`, `application_name`, …); the values of
//!   `password` and `sslpassword` are hidden, and any other parameter is hidden whole, name
//!   and all, since it may be the tail of a password that held a raw `&`.
//! - **Key-value strings** (`host=… user=… password=…`), as libpq reads them: spaces
//!   around `=`, values in single quotes with `\` escapes — and, beyond libpq, a doubled
//!   `''` inside quotes, as SQL writes it. Secret values are hidden; options that are not
//!   known libpq options are hidden whole; from a parameter that does not parse (a stray
//!   word, an unterminated quote) to the end, everything is hidden.
//!
//! A value is read as the drivers read it: a raw `&` ends a URL parameter's value and a
//! space ends an unquoted key-value value, so a password holding them must be
//! percent-encoded or quoted to be a password at all.

use std::ops::Range;

/// What stands in for a secret.
const REDACTED: &str = "[redacted]";

/// Past this many `@` in a URL, everything after its scheme is hidden rather than each
/// reading tried.
const MAX_READINGS: usize = 32;

/// Options whose values are secrets.
const SECRET_KEYS: &[&str] = &["password", "sslpassword"];

/// libpq's options (and tokio-postgres's) whose values are not secret.
const KNOWN_KEYS: &[&str] = &[
    "application_name",
    "channel_binding",
    "client_encoding",
    "connect_timeout",
    "dbname",
    "fallback_application_name",
    "gssdelegation",
    "gssencmode",
    "gsslib",
    "host",
    "hostaddr",
    "keepalives",
    "keepalives_count",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_retries",
    "krbsrvname",
    "load_balance_hosts",
    "max_protocol_version",
    "min_protocol_version",
    "options",
    "passfile",
    "port",
    "replication",
    "require_auth",
    "requirepeer",
    "requiressl",
    "service",
    "ssl_max_protocol_version",
    "ssl_min_protocol_version",
    "sslcert",
    "sslcertmode",
    "sslcompression",
    "sslcrl",
    "sslcrldir",
    "sslkey",
    "sslmode",
    "sslnegotiation",
    "sslrootcert",
    "sslsni",
    "target_session_attrs",
    "tcp_user_timeout",
    "user",
];

/// `s`, a connection URL or key-value connection string, with every secret in it
/// replaced by `[redacted]`; where it cannot tell, it hides more. See the
/// [module docs](self) for how it reads.
///
/// ```
/// use orderflow::redact::connection_string;
///
/// let shown = connection_string("postgresql://app:hunter2@[::1]:5432,db2:5433/shop?password=x");
/// assert_eq!(shown, "postgresql://app:[redacted]@[::1]:5432,db2:5433/shop?password=[redacted]");
/// assert_eq!(connection_string("postgres://app@db/shop"), "postgres://app@db/shop");
/// ```
pub fn connection_string(s: &str) -> String {
    let mut secrets = Vec::new();
    match url_start(s) {
        // With whitespace in it, a "URL" may be a key-value string whose first option's
        // name holds `://`: both readings are hidden.
        Some(start) if s.trim().contains(char::is_whitespace) => {
            url_secrets(s, start, &mut secrets);
            key_value_secrets(s, &mut secrets);
        }
        Some(start) => url_secrets(s, start, &mut secrets),
        None => key_value_secrets(s, &mut secrets),
    }
    mask(s, secrets)
}

/// Why a PostgreSQL driver could read a connection URL differently from how its writer
/// meant it, with a text of the string ending up where messages show it (a host, user or
/// database name): more than one `@`, or an `@` after the host. `None` for a key-value
/// string or a clear URL.
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
pub(crate) fn url_ambiguity(s: &str) -> Option<&'static str> {
    let start = url_start(s)?;
    let rest = &s[start..];
    let mut ats = rest.match_indices('@');
    let (first, _) = ats.next()?;
    if ats.next().is_some() {
        return Some(
            "it holds more than one `@`: percent-encode each `@` in the user name, password, \
             database name or parameters as `%40`",
        );
    }
    let user = &rest[..rest[..first].find(':').unwrap_or(first)];
    if user.contains(['/', '?']) {
        return Some("its `@` comes after the host: percent-encode it as `%40`");
    }
    None
}

/// Whether `key` is a libpq option (secret or not).
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
pub(crate) fn is_known_option(key: &str) -> bool {
    matches!(classify(key), Class::Known | Class::Secret)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Known,
    Secret,
    Unknown,
}

fn classify(key: &str) -> Class {
    let key = key.to_ascii_lowercase();
    if SECRET_KEYS.contains(&key.as_str()) {
        Class::Secret
    } else if KNOWN_KEYS.contains(&key.as_str()) {
        Class::Known
    } else {
        Class::Unknown
    }
}

/// `s` with each secret range (empty ones too) replaced by one `[redacted]` per run.
fn mask(s: &str, mut secrets: Vec<Range<usize>>) -> String {
    secrets.sort_by_key(|r| (r.start, r.end));
    let mut out = String::with_capacity(s.len());
    let mut shown = 0;
    let mut runs = secrets.into_iter().peekable();
    while let Some(first) = runs.next() {
        let mut end = first.end;
        while let Some(next) = runs.next_if(|r| r.start <= end) {
            end = end.max(next.end);
        }
        let start = first.start.max(shown);
        out.push_str(&s[shown..start]);
        out.push_str(REDACTED);
        shown = end.max(shown);
    }
    out.push_str(&s[shown..]);
    out
}

/// Where a URL's part after `scheme://` starts (leading whitespace allowed), or `None`
/// when `s` is not a URL.
fn url_start(s: &str) -> Option<usize> {
    let lead = s.len() - s.trim_start().len();
    let rest = &s[lead..];
    let scheme = &rest[..rest.find("://")?];
    let mut chars = scheme.chars();
    let valid = chars.next()?.is_ascii_alphabetic()
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then_some(lead + scheme.len() + 3)
}

/// The first of `chars` in `s` from `from`, or the end.
fn find_from(s: &str, from: usize, chars: &[char]) -> usize {
    s[from..].find(chars).map_or(s.len(), |i| from + i)
}

/// The secrets of the URL `s` whose user info (if any) starts at `start`, under every
/// reading of where that user info ends.
fn url_secrets(s: &str, start: usize, out: &mut Vec<Range<usize>>) {
    let ats: Vec<usize> = s[start..]
        .match_indices('@')
        .map(|(i, _)| start + i)
        .collect();
    if ats.len() > MAX_READINGS {
        out.push(start..s.len());
        return;
    }
    // No user info: libpq takes the first `@` as its end unless a `/` comes first
    // (tokio-postgres takes it anyway), so this reading exists only then.
    if !s[start..find_from(s, start, &['/'])].contains('@') {
        after_user_info(s, start, out);
    }
    let colon = s[start..].find(':').map(|i| start + i);
    for &at in &ats {
        if let Some(colon) = colon.filter(|&c| c < at) {
            out.push(colon + 1..at);
        }
        after_user_info(s, at + 1, out);
    }
}

/// The secrets of a URL's hosts, path and query, which start at `from`.
fn after_user_info(s: &str, from: usize, out: &mut Vec<Range<usize>>) {
    let hosts_end = find_from(s, from, &['/', '?']);
    let mut chunk_start = from;
    for chunk in s[from..hosts_end].split(',') {
        let after_host = if chunk.starts_with('[') {
            chunk.find(']').map_or(chunk.len(), |i| i + 1)
        } else {
            chunk.find(':').unwrap_or(chunk.len())
        };
        let rest = &chunk[after_host..];
        let port_ok = rest.is_empty()
            || rest
                .strip_prefix(':')
                .is_some_and(|port| port.bytes().all(|b| b.is_ascii_digit()));
        if !port_ok {
            let port = after_host + usize::from(rest.starts_with(':'));
            out.push(chunk_start + port..chunk_start + chunk.len());
        }
        chunk_start += chunk.len() + 1;
    }
    if let Some(query) = s[hosts_end..].find('?') {
        query_secrets(s, hosts_end + query + 1, out);
    }
}

/// The secrets of a URL query starting at `from`.
fn query_secrets(s: &str, from: usize, out: &mut Vec<Range<usize>>) {
    let mut start = from;
    for pair in s[from..].split('&') {
        let range = start..start + pair.len();
        start = range.end + 1;
        if pair.is_empty() {
            continue;
        }
        let class = match pair.split_once('=') {
            Some((key, _)) => match percent_decode(key) {
                Some(key) => classify(&key),
                None => Class::Unknown,
            },
            None => Class::Unknown,
        };
        match class {
            Class::Known => {}
            Class::Secret => out.push(range.start + pair.find('=').map_or(0, |i| i + 1)..range.end),
            Class::Unknown => out.push(range),
        }
    }
}

/// `s` with its `%XX` escapes decoded (others kept as written), if that is UTF-8: how
/// connection URLs spell their parts (also read by the PostgreSQL store's TLS options).
pub(crate) fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push((hex(h)? * 16 + hex(l)?) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// The secrets of a key-value connection string.
fn key_value_secrets(s: &str, out: &mut Vec<Range<usize>>) {
    let mut p = Cursor {
        s,
        it: s.char_indices().peekable(),
    };
    loop {
        p.skip_ws();
        let param = p.pos();
        if param == s.len() {
            return;
        }
        let key_end = p.skip_while(|c| !c.is_whitespace() && c != '=');
        let key = &s[param..key_end];
        p.skip_ws();
        if key.is_empty() || !p.eat('=') {
            out.push(param..s.len());
            return;
        }
        p.skip_ws();
        let value = p.pos();
        let complete = if p.eat('\'') {
            p.quoted()
        } else {
            p.skip_while_escaped(|c| !c.is_whitespace());
            true
        };
        if !complete {
            out.push(param..s.len());
            return;
        }
        match classify(key) {
            Class::Known => {}
            Class::Secret => out.push(value..p.pos()),
            Class::Unknown => out.push(param..p.pos()),
        }
    }
}

/// A position in a key-value string.
struct Cursor<'a> {
    s: &'a str,
    it: std::iter::Peekable<std::str::CharIndices<'a>>,
}

impl Cursor<'_> {
    fn pos(&mut self) -> usize {
        self.it.peek().map_or(self.s.len(), |&(i, _)| i)
    }

    /// Skips characters while `f` holds; returns the position after them.
    fn skip_while(&mut self, f: impl Fn(char) -> bool) -> usize {
        while self.it.next_if(|&(_, c)| f(c)).is_some() {}
        self.pos()
    }

    /// As [`skip_while`](Self::skip_while), with `\` escaping the character after it.
    fn skip_while_escaped(&mut self, f: impl Fn(char) -> bool) {
        while let Some((_, c)) = self.it.next_if(|&(_, c)| f(c)) {
            if c == '\\' {
                self.it.next();
            }
        }
    }

    fn skip_ws(&mut self) {
        self.skip_while(char::is_whitespace);
    }

    fn eat(&mut self, c: char) -> bool {
        self.it.next_if(|&(_, next)| next == c).is_some()
    }

    /// Past a quoted value's closing quote (the opening one eaten): `\` escapes, and so
    /// does a doubled quote. False when the quote is never closed.
    fn quoted(&mut self) -> bool {
        while let Some((_, c)) = self.it.next() {
            match c {
                '\\' if self.it.next().is_none() => return false,
                '\'' if !self.eat('\'') => return true,
                _ => {}
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn urls() {
        let cases = [
            (
                "postgres://u:hunter2@h:5432/db",
                "postgres://u:[redacted]@h:5432/db",
            ),
            ("postgres://u@h/db", "postgres://u@h/db"),
            ("postgres://h/db", "postgres://h/db"),
            ("postgres://", "postgres://"),
            (
                "postgres://user:pa?ss#w@rd/x@host:5432/db?sslmode=require",
                "postgres://user:[redacted]@host:5432/db?sslmode=require",
            ),
            (
                "postgresql://u:p%40ss%2Fw@h/db?x=1",
                "postgresql://u:[redacted]@h/db?[redacted]",
            ),
            (
                "postgres://u:pw@[::1]:5432/db",
                "postgres://u:[redacted]@[::1]:5432/db",
            ),
            ("postgres://[::1]:5432/db", "postgres://[::1]:5432/db"),
            (
                "postgres://u:pw@h1:5432,h2:5433/db",
                "postgres://u:[redacted]@h1:5432,h2:5433/db",
            ),
            (
                "postgres://u@h/db?sslmode=disable&password=hunter2&application_name=a",
                "postgres://u@h/db?sslmode=disable&password=[redacted]&application_name=a",
            ),
            (
                "postgres://h/db?sslpassword=hunter2&pass%77ord=x&PASSWORD=y&password=",
                "postgres://h/db?sslpassword=[redacted]&pass%77ord=[redacted]\
                 &PASSWORD=[redacted]&password=[redacted]",
            ),
            // A raw `&` in a password: the rest is an unknown parameter, hidden whole.
            (
                "postgres://h/db?password=hun&ter=2&sslmode=disable",
                "postgres://h/db?password=[redacted]&[redacted]&sslmode=disable",
            ),
            // An `@` in a query value: hidden under both readings of where the user info ends.
            (
                "postgres://h:1/db?password=hun@ter2",
                "postgres://h:[redacted]",
            ),
            (
                "postgres://h/db?password=hun@ter2",
                "postgres://h/db?password=[redacted]",
            ),
            // A user name and password without their `@`: the "port" is hidden.
            ("postgres://u:hunter2/db", "postgres://u:[redacted]/db"),
            (
                "https://u:tok@api.example/v1",
                "https://u:[redacted]@api.example/v1",
            ),
            (
                "  postgres://u:hunter2@h/db",
                "  postgres://u:[redacted]@h/db",
            ),
        ];
        for (url, expected) in cases {
            assert_eq!(connection_string(url), expected, "{url}");
        }
    }

    #[test]
    fn key_value_strings() {
        let cases = [
            (
                "host=h user=u password=hunter2 dbname=d",
                "host=h user=u password=[redacted] dbname=d",
            ),
            (
                "host=h password = 'hunt er\\'2' dbname=d",
                "host=h password = [redacted] dbname=d",
            ),
            (
                "host=h password='it''s secret' user=x",
                "host=h password=[redacted] user=x",
            ),
            (
                "host=h password=hun\\ ter2 user=x",
                "host=h password=[redacted] user=x",
            ),
            ("host=h password=", "host=h password=[redacted]"),
            ("host=h password=''", "host=h password=[redacted]"),
            ("host=h sslpassword=x", "host=h sslpassword=[redacted]"),
            ("host=h PASSWORD=x", "host=h PASSWORD=[redacted]"),
            // Unknown options and what does not parse are hidden.
            ("host=h passwords=x user=u", "host=h [redacted] user=u"),
            (
                "host=h password=it's secret",
                "host=h password=[redacted] [redacted]",
            ),
            ("host=h password='unterminated user=u", "host=h [redacted]"),
            ("host=h password='x\\", "host=h [redacted]"),
            ("localhost", "[redacted]"),
            ("", ""),
            ("host=h options='-c x=://y'", "host=h options='-c x=://y'"),
        ];
        for (s, expected) in cases {
            assert_eq!(connection_string(s), expected, "{s}");
        }
    }

    #[test]
    fn ambiguous_urls_are_named() {
        assert!(url_ambiguity("postgres://u:p@ss@h/db").is_some());
        assert!(url_ambiguity("postgres://h/db?password=a@b").is_some());
        assert!(url_ambiguity("postgres://u:p%40ss@h/db").is_none());
        assert!(url_ambiguity("postgres://u:pa?ss/x@h/db").is_none());
        assert!(url_ambiguity("postgres://h/db").is_none());
        assert!(url_ambiguity("host=h password=a@b@c").is_none());
    }

    #[test]
    fn many_at_signs_hide_everything_after_the_scheme() {
        let url = format!("postgres://u:{}@h/db", "@".repeat(100));
        assert_eq!(connection_string(&url), "postgres://[redacted]");
    }

    /// A password of letters found nowhere else in the strings, and the separators every
    /// form finds hard.
    fn password() -> impl Strategy<Value = String> {
        proptest::collection::vec(
            prop_oneof![
                Just("Q"),
                Just("Z"),
                Just("X"),
                Just("?"),
                Just("#"),
                Just("@"),
                Just("/"),
                Just(":"),
                Just("%"),
                Just("%40"),
                Just("'"),
                Just("\\"),
                Just(" "),
                Just("="),
                Just("&"),
                Just(","),
            ],
            1..12,
        )
        .prop_map(|parts| format!("Q{}Z", parts.concat()))
    }

    /// Percent-encodes what a URL's user info or query value cannot hold.
    fn encode(s: &str, keep: &str) -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || keep.contains(c) {
                    c.to_string()
                } else {
                    format!("%{:02X}", c as u32)
                }
            })
            .collect()
    }

    proptest! {
        #[test]
        fn no_letter_of_a_password_shows(
            pw in password(),
            raw in any::<bool>(),
            host in 0usize..4,
        ) {
            let hosts = ["db.internal", "h1:5432,h2:5433", "[::1]:5432", "127.0.0.1:1"][host];
            let url_pw = if raw { pw.clone() } else { encode(&pw, "") };
            let quoted = pw.replace('\\', "\\\\").replace('\'', "\\'");
            let doubled = pw.replace('\\', "\\\\").replace('\'', "''");
            let escaped = pw.replace('\\', "\\\\").replace(' ', "\\ ");
            let urls = [
                format!("postgres://app:{url_pw}@{hosts}/shop?sslmode=disable"),
                format!("postgresql://app:{url_pw}@{hosts}/shop"),
                format!("postgres://{hosts}/shop?password={url_pw}&sslmode=disable"),
                format!("postgres://app@{hosts}/shop?sslpassword={url_pw}"),
            ];
            let key_values = [
                format!("host=db port=5432 password='{quoted}' user=app"),
                format!("host=db password = '{doubled}' user=app dbname=shop"),
                format!("host=db password={escaped} user=app"),
                format!("a://b=c password='{quoted}'"),
            ];
            for s in &key_values {
                let shown = connection_string(s);
                prop_assert!(!shown.contains(['Q', 'Z', 'X']), "{s:?} shows {shown:?}");
            }
            for s in urls {
                let shown = connection_string(&s);
                prop_assert!(
                    !shown.contains(['Q', 'Z', 'X']),
                    "{s:?} shows {shown:?}"
                );
                // The server stays visible when the password is written unambiguously.
                if !raw {
                    prop_assert!(shown.contains(hosts), "{s:?} shows {shown:?}");
                }
            }
        }
    }
}
