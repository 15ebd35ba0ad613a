//! Who may call: the access-key check in front of every action.
//!
//! Order, as a gateway in front of the cloud would check: the key exists
//! (`InvalidAccessKeyId.NotFound`) and is enabled; the request's timestamp
//! parses and lies within the clock-skew window (`InvalidTimeStamp.*`); the
//! signature matches (`SignatureDoesNotMatch`); an STS key brings its token;
//! the nonce was not used before (`SignatureNonceUsed`). Nonces are recorded
//! only for requests that passed every other check, so a forged request
//! cannot burn a caller's nonce, and are forgotten once their timestamp has
//! left the window (a replay after that is refused as expired anyway).

use std::{
    collections::{BTreeMap, HashMap},
    hash::{DefaultHasher, Hash, Hasher},
    time::{Duration, SystemTime},
};

use super::{
    errors::{ApiError, code},
    fixtures::AccessKey,
    signature::{Claims, RequestView},
    wire::parse_timestamp,
};

/// The cloud's clock-skew window.
pub const TIMESTAMP_WINDOW: Duration = Duration::from_secs(15 * 60);

/// Nonces seen, per access key, until their timestamp leaves the window.
/// Entries are 64-bit hashes of (key, nonce): a benchmark may send millions
/// of requests within one window, and a collision (about one in 10^13 at a
/// million entries) would only refuse one request.
#[derive(Clone, Debug)]
pub struct NonceCache {
    seen: HashMap<u64, SystemTime>,
    /// Expired entries are swept when the map reaches this size, so the
    /// sweep costs amortised O(1) per request.
    sweep_at: usize,
}

impl Default for NonceCache {
    fn default() -> Self {
        Self {
            seen: HashMap::new(),
            sweep_at: 1024,
        }
    }
}

impl NonceCache {
    /// Records a nonce; false when it was already used.
    fn insert(&mut self, key: &str, nonce: &str, forget_at: SystemTime, now: SystemTime) -> bool {
        if self.seen.len() >= self.sweep_at {
            self.seen.retain(|_, t| *t > now);
            self.sweep_at = (self.seen.len() * 2).max(1024);
        }
        let mut hasher = DefaultHasher::new();
        (key, nonce).hash(&mut hasher);
        let entry = hasher.finish();
        match self.seen.get(&entry) {
            Some(t) if *t > now => false,
            _ => {
                self.seen.insert(entry, forget_at);
                true
            }
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

/// Checks a request's credentials; returns the key it was signed with.
pub fn authenticate(
    req: &RequestView<'_>,
    claims: &Claims,
    keys: &BTreeMap<String, AccessKey>,
    nonces: &mut NonceCache,
    now: SystemTime,
) -> Result<AccessKey, ApiError> {
    let key = keys.get(&claims.access_key_id).ok_or_else(|| {
        ApiError::not_found(
            code::ACCESS_KEY_NOT_FOUND,
            "Specified access key is not found.",
        )
    })?;
    if !key.enabled {
        return Err(ApiError::bad_request(
            code::ACCESS_KEY_INACTIVE,
            "Specified access key is disabled.",
        ));
    }
    let stamp = parse_timestamp(&claims.timestamp).ok_or_else(|| {
        ApiError::bad_request(
            code::TIMESTAMP_FORMAT,
            format!(
                "Specified time stamp or date value is not well formatted: {:?}; use yyyy-MM-ddTHH:mm:ssZ in UTC.",
                claims.timestamp
            ),
        )
    })?;
    let skew = match now.duration_since(stamp) {
        Ok(behind) => behind,
        Err(ahead) => ahead.duration(),
    };
    if skew > TIMESTAMP_WINDOW {
        return Err(ApiError::bad_request(
            code::TIMESTAMP_EXPIRED,
            format!(
                "Specified time stamp or date value is expired: {} is more than 15 minutes from the server time.",
                claims.timestamp
            ),
        ));
    }
    claims.verify(req, &key.access_key_secret)?;
    if let Some(header_key) = &claims.access_key_header
        && *header_key != claims.access_key_id
    {
        return Err(ApiError::bad_request(
            code::INCOMPLETE_SIGNATURE,
            "The x-acs-accesskey-id header does not match the Credential of the Authorization header.",
        ));
    }
    match (&key.security_token, &claims.security_token) {
        (None, None) => {}
        (Some(_), None) => return Err(ApiError::missing("SecurityToken")),
        (Some(expected), Some(given)) if expected == given => {}
        _ => {
            return Err(ApiError::bad_request(
                code::SECURITY_TOKEN_MISMATCH,
                "Specified SecurityToken mismatch with the AccessKey.",
            ));
        }
    }
    if !nonces.insert(
        &key.access_key_id,
        &claims.nonce,
        stamp + TIMESTAMP_WINDOW,
        now,
    ) {
        return Err(ApiError::bad_request(
            code::NONCE_USED,
            "Specified signature nonce was used already.",
        ));
    }
    Ok(key.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emulator::signature::tests::{
        ACCESS_KEY_ID, RawRequest, SECRET, STS_TOKEN, vectors,
    };

    fn keys(with_token: bool) -> BTreeMap<String, AccessKey> {
        let mut key = AccessKey::new(ACCESS_KEY_ID, SECRET);
        if with_token {
            key.security_token = Some(STS_TOKEN.into());
        }
        BTreeMap::from([(ACCESS_KEY_ID.to_owned(), key)])
    }

    fn check(
        req: &RawRequest,
        keys: &BTreeMap<String, AccessKey>,
        nonces: &mut NonceCache,
        now: SystemTime,
    ) -> Result<AccessKey, ApiError> {
        let claims = Claims::read(&req.view())?;
        authenticate(&req.view(), &claims, keys, nonces, now)
    }

    fn code(r: Result<AccessKey, ApiError>) -> String {
        r.unwrap_err().code.into_owned()
    }

    #[test]
    fn captured_requests_pass_at_capture_time() {
        let all = vectors();
        for (i, req) in all.iter().enumerate() {
            let sts = i == 8 || i == 9;
            let mut nonces = NonceCache::default();
            let key = check(req, &keys(sts), &mut nonces, req.timestamp())
                .unwrap_or_else(|e| panic!("vector {i}: {e}"));
            assert_eq!(key.access_key_id, ACCESS_KEY_ID);
        }
    }

    #[test]
    fn the_clock_window_is_fifteen_minutes_either_way() {
        let req = &vectors()[1];
        let at = req.timestamp();
        let mut nonces = NonceCache::default();
        for now in [at + TIMESTAMP_WINDOW, at - TIMESTAMP_WINDOW] {
            assert!(check(req, &keys(false), &mut NonceCache::default(), now).is_ok());
        }
        for now in [
            at + TIMESTAMP_WINDOW + Duration::from_secs(1),
            at - TIMESTAMP_WINDOW - Duration::from_secs(1),
        ] {
            assert_eq!(
                code(check(req, &keys(false), &mut nonces, now)),
                code::TIMESTAMP_EXPIRED
            );
        }
    }

    #[test]
    fn a_nonce_is_refused_the_second_time() {
        let req = &vectors()[4];
        let mut nonces = NonceCache::default();
        let now = req.timestamp();
        assert!(check(req, &keys(false), &mut nonces, now).is_ok());
        assert_eq!(
            code(check(req, &keys(false), &mut nonces, now)),
            code::NONCE_USED
        );
        assert_eq!(nonces.len(), 1);
    }

    #[test]
    fn expired_nonces_are_swept_and_may_return() {
        let mut cache = NonceCache::default();
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let window = TIMESTAMP_WINDOW;
        for i in 0..3000 {
            assert!(cache.insert("AK", &i.to_string(), t0 + window, t0));
        }
        assert!(!cache.insert("AK", "7", t0 + window, t0));
        assert!(
            cache.insert("AK2", "7", t0 + window, t0),
            "nonces are per key"
        );
        let later = t0 + window + Duration::from_secs(1);
        assert!(cache.insert("AK", "7", later + window, later), "expired");
        for i in 0..3000 {
            assert!(cache.insert("AK", &format!("n{i}"), later + window, later));
        }
        assert!(cache.len() <= 4096, "swept: {}", cache.len());
        assert!(!cache.insert("AK", "n5", later + window, later));
    }

    #[test]
    fn a_failed_request_does_not_burn_its_nonce() {
        let req = &vectors()[0];
        let mut nonces = NonceCache::default();
        let now = req.timestamp();
        let wrong = BTreeMap::from([(
            ACCESS_KEY_ID.to_owned(),
            AccessKey::new(ACCESS_KEY_ID, "nope"),
        )]);
        assert_eq!(
            code(check(req, &wrong, &mut nonces, now)),
            code::SIGNATURE_DOES_NOT_MATCH
        );
        assert!(nonces.is_empty());
        assert!(check(req, &keys(false), &mut nonces, now).is_ok());
    }

    #[test]
    fn unknown_and_disabled_keys() {
        let req = &vectors()[0];
        let now = req.timestamp();
        let err = check(req, &BTreeMap::new(), &mut NonceCache::default(), now).unwrap_err();
        assert_eq!(
            (err.status.as_u16(), err.code.as_ref()),
            (404, code::ACCESS_KEY_NOT_FOUND)
        );
        let mut disabled = keys(false);
        disabled.values_mut().for_each(|k| k.enabled = false);
        assert_eq!(
            code(check(req, &disabled, &mut NonceCache::default(), now)),
            code::ACCESS_KEY_INACTIVE
        );
    }

    #[test]
    fn sts_tokens_must_match_the_key() {
        let now_of = |r: &RawRequest| r.timestamp();
        let all = vectors();
        // STS request, permanent key: a token the key does not have.
        assert_eq!(
            code(check(
                &all[8],
                &keys(false),
                &mut NonceCache::default(),
                now_of(&all[8])
            )),
            code::SECURITY_TOKEN_MISMATCH
        );
        // Permanent-key request, STS key: the token is missing.
        assert_eq!(
            code(check(
                &all[1],
                &keys(true),
                &mut NonceCache::default(),
                now_of(&all[1])
            )),
            "MissingParameter.SecurityToken"
        );
        let mut other = keys(true);
        other
            .values_mut()
            .for_each(|k| k.security_token = Some("other".into()));
        assert_eq!(
            code(check(
                &all[9],
                &other,
                &mut NonceCache::default(),
                now_of(&all[9])
            )),
            code::SECURITY_TOKEN_MISMATCH
        );
    }

    #[test]
    fn a_bad_timestamp_is_a_format_error() {
        let mut req = vectors().swap_remove(1);
        req.headers.insert(
            "x-acs-date",
            http::HeaderValue::from_static("25/11/2026 18:02"),
        );
        assert_eq!(
            code(check(
                &req,
                &keys(false),
                &mut NonceCache::default(),
                SystemTime::now()
            )),
            code::TIMESTAMP_FORMAT
        );
    }
}
