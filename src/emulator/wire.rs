//! Reading the cloud's wire exactly: raw query strings and form bodies into
//! ordered parameter lists, the RFC 3986 percent-encoding both signatures
//! canonicalise with, and the cloud's spellings of booleans and timestamps.
//!
//! The signature checks need the exact decoded values, so parameters are
//! parsed here from raw bytes rather than by a framework extractor. Parsing
//! never fails: malformed escapes stay literal and bad UTF-8 is replaced,
//! which at worst makes a garbage request's signature not match.

use std::{borrow::Cow, time::SystemTime};

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode, utf8_percent_encode};

/// Everything but the RFC 3986 unreserved characters `A-Z a-z 0-9 - _ . ~`.
const RFC3986: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Percent-encodes UTF-8 as both signature algorithms do: unreserved
/// characters literal, every other byte `%XY` in uppercase hex.
pub fn percent_encode(s: &str) -> Cow<'_, str> {
    utf8_percent_encode(s, RFC3986).into()
}

/// Decodes one form-style component: `+` is a space, `%XY` a byte.
fn decode_component(raw: &[u8]) -> String {
    let plus_as_space: Cow<'_, [u8]> = if raw.contains(&b'+') {
        Cow::Owned(
            raw.iter()
                .map(|&b| if b == b'+' { b' ' } else { b })
                .collect(),
        )
    } else {
        Cow::Borrowed(raw)
    };
    let bytes: Vec<u8> = percent_decode(&plus_as_space).collect();
    match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

/// Request parameters in arrival order, decoded. Names may repeat (the
/// signatures sign every occurrence); lookups take the first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Params(Vec<(String, String)>);

impl Params {
    /// Parses `a=1&b=x+y&c` (a query string or a form body); `c` gets "".
    pub fn parse(raw: &[u8]) -> Self {
        Params(
            raw.split(|&b| b == b'&')
                .filter(|pair| !pair.is_empty())
                .map(|pair| {
                    let (name, value) = match pair.iter().position(|&b| b == b'=') {
                        Some(i) => (&pair[..i], &pair[i + 1..]),
                        None => (pair, &[][..]),
                    };
                    (decode_component(name), decode_component(value))
                })
                .collect(),
        )
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// A present, non-empty value.
    pub fn non_empty(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|v| !v.is_empty())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    pub fn extend(&mut self, other: Params) {
        self.0.extend(other.0);
    }

    pub fn push(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.0.push((name.into(), value.into()));
    }

    /// The same list without the named parameters.
    pub fn without(&self, names: &[&str]) -> Params {
        Params(
            self.0
                .iter()
                .filter(|(n, _)| !names.contains(&n.as_str()))
                .cloned()
                .collect(),
        )
    }

    /// `name=pct(value)` pairs sorted by name (byte order), joined by `&`:
    /// the canonical query of both signatures.
    pub fn canonical(&self) -> String {
        let mut pairs: Vec<(&str, &str)> = self.iter().collect();
        // Stable: repeated names keep their arrival order, as the SDKs do.
        pairs.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        pairs
            .iter()
            .map(|(n, v)| format!("{}={}", percent_encode(n), percent_encode(v)))
            .collect::<Vec<_>>()
            .join("&")
    }

    /// A deterministic fingerprint of the values (sorted, duplicates kept):
    /// what "the same parameters" means for idempotency.
    pub fn fingerprint(&self) -> Vec<(String, String)> {
        let mut pairs = self.0.clone();
        pairs.sort();
        pairs
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The cloud's booleans: Go clients send `true`/`false`, the Python SDK
/// `True`/`False`; any case is accepted.
pub fn parse_bool(s: &str) -> Option<bool> {
    if s.eq_ignore_ascii_case("true") {
        Some(true)
    } else if s.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// `yyyy-MM-ddTHH:mm:ssZ` (UTC; fractional seconds tolerated).
pub fn parse_timestamp(s: &str) -> Option<SystemTime> {
    if !s.ends_with('Z') || s.len() > 40 {
        return None;
    }
    humantime::parse_rfc3339(s).ok()
}

/// The cloud's timestamp spelling, for clients written in tests and tools.
pub fn format_timestamp(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn query_is_decoded_form_style() {
        let p = Params::parse(b"Name=sslvpn+test~%2F%C3%A4&Empty=&Bare&&Port=1194");
        assert_eq!(p.get("Name"), Some("sslvpn test~/\u{e4}"));
        assert_eq!(p.get("Empty"), Some(""));
        assert_eq!(p.get("Bare"), Some(""));
        assert_eq!(p.get("Port"), Some("1194"));
        assert_eq!(p.len(), 4);
    }

    #[test]
    fn garbage_never_panics() {
        let p = Params::parse(b"%=%%&%ZZ=%C3&=x&a=%ff%fe&\xff\xfe=1");
        assert_eq!(p.get("%ZZ"), Some("\u{fffd}"));
        assert_eq!(p.get(""), Some("x"));
        let _ = p.canonical();
    }

    #[test]
    fn canonical_sorts_and_encodes() {
        let p = Params::parse(b"b=a+b&a=%2A%2F~&A=1");
        assert_eq!(p.canonical(), "A=1&a=%2A%2F~&b=a%20b");
    }

    #[test]
    fn booleans_in_every_spelling() {
        for t in ["true", "True", "TRUE"] {
            assert_eq!(parse_bool(t), Some(true));
        }
        for f in ["false", "False"] {
            assert_eq!(parse_bool(f), Some(false));
        }
        assert_eq!(parse_bool("1"), None);
    }

    #[test]
    fn timestamps_round_trip() {
        let t = parse_timestamp("2026-11-25T18:02:54Z").unwrap();
        assert_eq!(format_timestamp(t), "2026-11-25T18:02:54Z");
        assert_eq!(
            parse_timestamp("2026-11-25T18:02:54.500Z"),
            Some(t + Duration::from_millis(500))
        );
        assert_eq!(parse_timestamp("2026-11-25 18:02:54"), None);
        assert_eq!(parse_timestamp("yesterday"), None);
    }
}
