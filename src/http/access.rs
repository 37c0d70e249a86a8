//! Keys and tokens: who may file, who may act on a case, who runs the center.

use crate::city::WorkerId;
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use subtle::ConstantTimeEq;

/// The keys the service accepts: Open311 `api_key`s for clients that file reports, one
/// token per worker, and the center operators' keys.
///
/// Keys are compared in constant time (the time taken does not depend on how much of a
/// guess is right) and every key on a list is compared, so the answer's timing does not
/// tell which one matched. `Debug` shows only how many keys there are.
#[derive(Default, Clone)]
pub struct Access {
    api_keys: Vec<Vec<u8>>,
    center_keys: Vec<Vec<u8>>,
    worker_tokens: Vec<Option<Vec<u8>>>,
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Access")
            .field("api_keys", &self.api_keys.len())
            .field("center_keys", &self.center_keys.len())
            .field(
                "worker_tokens",
                &self.worker_tokens.iter().filter(|t| t.is_some()).count(),
            )
            .finish()
    }
}

/// Equal bytes, in time that depends only on the lengths.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// Whether `given` is one of `keys`, comparing it with every one of them.
fn any_of(keys: &[Vec<u8>], given: &[u8]) -> bool {
    keys.iter().fold(false, |hit, k| hit | same(k, given))
}

impl Access {
    /// No keys at all: nobody may file, act or watch until keys are added.
    pub fn new() -> Access {
        Access::default()
    }

    /// Adds an Open311 `api_key` for a client that files reports. An empty key is ignored.
    pub fn api_key(mut self, key: impl Into<String>) -> Access {
        let key = key.into();
        if !key.is_empty() {
            self.api_keys.push(key.into_bytes());
        }
        self
    }

    /// Adds a center operator's key. An empty key is ignored.
    pub fn center_key(mut self, key: impl Into<String>) -> Access {
        let key = key.into();
        if !key.is_empty() {
            self.center_keys.push(key.into_bytes());
        }
        self
    }

    /// Sets `worker`'s token (replacing any earlier one). An empty token is ignored.
    pub fn worker_token(mut self, worker: WorkerId, token: impl Into<String>) -> Access {
        let token = token.into();
        if token.is_empty() {
            return self;
        }
        if self.worker_tokens.len() <= worker.index() {
            self.worker_tokens.resize(worker.index() + 1, None);
        }
        self.worker_tokens[worker.index()] = Some(token.into_bytes());
        self
    }

    /// Whether `key` is an accepted `api_key`.
    pub fn is_api_key(&self, key: &str) -> bool {
        any_of(&self.api_keys, key.as_bytes())
    }

    /// Whether `key` is a center operator's key.
    pub fn is_center_key(&self, key: &str) -> bool {
        any_of(&self.center_keys, key.as_bytes())
    }

    /// Whether `token` is `worker`'s token.
    pub fn is_worker_token(&self, worker: WorkerId, token: &str) -> bool {
        match self.worker_tokens.get(worker.index()) {
            Some(Some(t)) => same(t, token.as_bytes()),
            _ => false,
        }
    }
}

/// A key of 32 random bytes from the operating system, as 64 hex digits.
///
/// # Errors
/// When the operating system's random source cannot be read.
pub fn random_key() -> std::io::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The bearer credential of a request, if it has one that is readable.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| rest.trim())
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_match_only_exactly() {
        let a = Access::new()
            .api_key("k1")
            .api_key("")
            .center_key("op")
            .worker_token(WorkerId(3), "t3");
        assert!(a.is_api_key("k1"));
        for wrong in ["", "k", "k1 ", "K1", "k2", "op"] {
            assert!(!a.is_api_key(wrong), "{wrong:?}");
        }
        assert!(a.is_center_key("op") && !a.is_center_key("k1"));
        assert!(a.is_worker_token(WorkerId(3), "t3"));
        assert!(!a.is_worker_token(WorkerId(2), "t3"));
        assert!(!a.is_worker_token(WorkerId(4), "t3"));
        assert!(!a.is_worker_token(WorkerId(3), "t"));
        let shown = format!("{a:?}");
        assert!(!shown.contains("k1") && !shown.contains("t3") && !shown.contains("op\""));
    }

    #[test]
    fn random_keys_differ() {
        let (a, b) = (random_key().unwrap(), random_key().unwrap());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
    }
}
