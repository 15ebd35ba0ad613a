//! The one percent-encoding both signatures use, apart from signing itself
//! so that the error type can scrub encoded secrets without importing the
//! signer (which imports credentials, which import the error type).

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// RFC 3986: everything but `A-Z a-z 0-9 - _ . ~` is escaped, as uppercase
/// `%XY`. A space is `%20`, never `+`.
const RFC3986: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Percent-encodes `s` the way both signatures require.
pub fn percent_encode(s: &str) -> String {
    utf8_percent_encode(s, RFC3986).to_string()
}
