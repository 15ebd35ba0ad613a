//! The cloud's memory of `ClientToken`s.
//!
//! A successful ModifySslVpnServer is remembered under its caller's key and
//! token for a configurable window. The same token with the same parameters
//! gets the first answer back (same RequestId) and changes nothing again;
//! with other parameters it gets `IdempotentParameterMismatch`. Only
//! successes are remembered: a refused request leaves the token unused, so a
//! caller may fix the request and retry with it.

use std::{collections::HashMap, time::Duration};

use serde_json::Value;
use tokio::time::Instant;

/// What a token lookup found.
#[derive(Clone, Debug, PartialEq)]
pub enum Lookup {
    /// Not seen (or forgotten): go ahead.
    New,
    /// Seen with the same parameters: answer this again.
    Replay(Value),
    /// Seen with other parameters.
    Mismatch,
}

#[derive(Clone, Debug)]
struct Entry {
    fingerprint: Vec<(String, String)>,
    response: Value,
    expires_at: Instant,
}

/// Remembered tokens, per access key.
#[derive(Clone, Debug)]
pub struct Ledger {
    entries: HashMap<(String, String), Entry>,
    /// Expired entries are swept when the map reaches this size (amortised
    /// O(1) per request).
    sweep_at: usize,
}

impl Default for Ledger {
    fn default() -> Self {
        Self {
            entries: HashMap::new(),
            sweep_at: 1024,
        }
    }
}

impl Ledger {
    pub fn lookup(
        &mut self,
        access_key_id: &str,
        token: &str,
        fingerprint: &[(String, String)],
        now: Instant,
    ) -> Lookup {
        if self.entries.len() >= self.sweep_at {
            self.entries.retain(|_, e| e.expires_at > now);
            self.sweep_at = (self.entries.len() * 2).max(1024);
        }
        match self
            .entries
            .get(&(access_key_id.to_owned(), token.to_owned()))
            .filter(|e| e.expires_at > now)
        {
            None => Lookup::New,
            Some(e) if e.fingerprint == fingerprint => Lookup::Replay(e.response.clone()),
            Some(_) => Lookup::Mismatch,
        }
    }

    pub fn remember(
        &mut self,
        access_key_id: &str,
        token: &str,
        fingerprint: Vec<(String, String)>,
        response: Value,
        now: Instant,
        window: Duration,
    ) {
        self.entries.insert(
            (access_key_id.to_owned(), token.to_owned()),
            Entry {
                fingerprint,
                response,
                expires_at: now + window,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn tokens_replay_mismatch_and_expire() {
        let mut ledger = Ledger::default();
        let now = Instant::now();
        let fp = vec![("Port".to_owned(), "1195".to_owned())];
        assert_eq!(ledger.lookup("AK", "t1", &fp, now), Lookup::New);
        ledger.remember(
            "AK",
            "t1",
            fp.clone(),
            json!({"RequestId": "R1"}),
            now,
            Duration::from_secs(60),
        );
        assert_eq!(
            ledger.lookup("AK", "t1", &fp, now),
            Lookup::Replay(json!({"RequestId": "R1"}))
        );
        let other = vec![("Port".to_owned(), "1196".to_owned())];
        assert_eq!(ledger.lookup("AK", "t1", &other, now), Lookup::Mismatch);
        // Tokens are per key.
        assert_eq!(ledger.lookup("AK2", "t1", &other, now), Lookup::New);
        assert_eq!(
            ledger.lookup("AK", "t1", &fp, now + Duration::from_secs(60)),
            Lookup::New
        );
    }
}
