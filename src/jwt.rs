//! The JWT of each service: HS256 with the API key as secret, cached and re-signed at half of
//! its lifetime, so no entry pays for a signature.

use crate::error::{Error, ErrorKind, Result};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Serialize)]
struct Claims<'a> {
    sub: &'a str,
    iat: u64,
    exp: u64,
}

struct Cached {
    bearer: Arc<str>,
    refresh_at: u64,
}

/// Signs and caches `Authorization` header values, one per service.
pub struct Tokens {
    key: EncodingKey,
    lifetime: Duration,
    cache: Mutex<HashMap<Arc<str>, Cached>>,
}

impl Tokens {
    pub fn new(api_key: &str, lifetime: Duration) -> Self {
        Tokens {
            key: EncodingKey::from_secret(api_key.as_bytes()),
            lifetime,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The `Bearer <jwt>` header for `service`, signed now if the cached one is past half its life.
    pub fn bearer(&self, service: &str) -> Result<Arc<str>> {
        let now = unix_now();
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = cache.get(service) {
            if now < c.refresh_at {
                return Ok(c.bearer.clone());
            }
        }
        let life = self.lifetime.as_secs();
        let token = self.sign(service, now, life)?;
        let bearer: Arc<str> = format!("Bearer {token}").into();
        cache.insert(
            service.into(),
            Cached {
                bearer: bearer.clone(),
                refresh_at: now + life / 2,
            },
        );
        Ok(bearer)
    }

    /// Forgets the cached token of `service` (after a 401/403), so the next request re-signs.
    pub fn invalidate(&self, service: &str) {
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(service);
    }

    fn sign(&self, service: &str, iat: u64, life: u64) -> Result<String> {
        let claims = Claims {
            sub: service,
            iat,
            exp: iat + life,
        };
        encode(&Header::new(Algorithm::HS256), &claims, &self.key)
            .map_err(|e| Error::new(ErrorKind::Config, format!("cannot sign the JWT: {e}")))
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{decode, DecodingKey, Validation};

    #[derive(serde::Deserialize)]
    struct C {
        sub: String,
        iat: u64,
        exp: u64,
    }

    #[test]
    fn signs_verifiable_tokens_and_caches_them() {
        let t = Tokens::new("k3y", Duration::from_secs(3600));
        let b = t.bearer("svc").unwrap();
        assert!(Arc::ptr_eq(&b, &t.bearer("svc").unwrap()));
        let jwt = b.strip_prefix("Bearer ").unwrap();
        let mut v = Validation::new(Algorithm::HS256);
        v.sub = Some("svc".into());
        let c = decode::<C>(jwt, &DecodingKey::from_secret(b"k3y"), &v)
            .unwrap()
            .claims;
        assert_eq!(c.sub, "svc");
        assert_eq!(c.exp, c.iat + 3600);
        assert!(decode::<C>(jwt, &DecodingKey::from_secret(b"other"), &v).is_err());
        assert!(!b.contains("k3y"));
    }

    #[test]
    fn invalidate_makes_the_next_bearer_a_fresh_signature_for_that_service_only() {
        let t = Tokens::new("k3y", Duration::from_secs(3600));
        let (svc, other) = (t.bearer("svc").unwrap(), t.bearer("other").unwrap());
        t.invalidate("svc");
        let again = t.bearer("svc").unwrap();
        assert!(!Arc::ptr_eq(&svc, &again), "the cached token was kept");
        assert!(
            Arc::ptr_eq(&again, &t.bearer("svc").unwrap()),
            "cached again"
        );
        assert!(Arc::ptr_eq(&other, &t.bearer("other").unwrap()));
        let mut v = Validation::new(Algorithm::HS256);
        v.sub = Some("svc".into());
        let jwt = again.strip_prefix("Bearer ").unwrap();
        assert!(decode::<C>(jwt, &DecodingKey::from_secret(b"k3y"), &v).is_ok());
        t.invalidate("never-signed");
    }
}
