//! Sign-ins in progress: what `/auth/oidc/login` must remember until the provider sends the
//! browser back to `/auth/oidc/callback`.
//!
//! Kept in this process's memory, which is enough for one node (a restart only makes the
//! sign-ins in flight start again). Several nodes behind a load balancer need sticky
//! sessions for the few minutes of a sign-in, or a shared store here.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a browser has to come back from the provider.
pub const TTL: Duration = Duration::from_secs(600);
/// Sign-ins in flight at most; beyond, new ones are refused until some finish or expire.
const CAPACITY: usize = 10_000;

/// One sign-in in progress, keyed by its `state`.
#[derive(Debug, Clone)]
pub(crate) struct Pending {
    pub verifier: String,
    pub nonce: String,
    /// SHA-256 of the browser-binding cookie that started the sign-in.
    pub browser: [u8; 32],
    /// Local path to send the browser to afterwards.
    pub return_to: String,
    pub started: Instant,
}

#[derive(Debug, Default)]
pub(crate) struct PendingLogins {
    by_state: Mutex<HashMap<String, Pending>>,
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Full;

impl PendingLogins {
    pub(crate) fn insert(&self, state: String, pending: Pending, now: Instant) -> Result<(), Full> {
        let mut map = self.by_state.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= CAPACITY {
            map.retain(|_, p| !expired(p, now));
            if map.len() >= CAPACITY {
                return Err(Full);
            }
        }
        map.insert(state, pending);
        Ok(())
    }

    /// Removes and returns the sign-in of `state`: a state is good for one callback, even a
    /// failed one. `None` if unknown, already used or expired.
    pub(crate) fn take(&self, state: &str, now: Instant) -> Option<Pending> {
        let mut map = self.by_state.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(state).filter(|p| !expired(p, now))
    }
}

fn expired(p: &Pending, now: Instant) -> bool {
    now.saturating_duration_since(p.started) > TTL
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(started: Instant) -> Pending {
        Pending {
            verifier: "v".into(),
            nonce: "n".into(),
            browser: [0; 32],
            return_to: "/".into(),
            started,
        }
    }

    #[test]
    fn a_state_is_used_once_and_expires() {
        let logins = PendingLogins::default();
        let t0 = Instant::now();
        logins.insert("s1".into(), pending(t0), t0).unwrap();
        logins.insert("s2".into(), pending(t0), t0).unwrap();
        assert!(logins.take("s1", t0).is_some());
        assert!(logins.take("s1", t0).is_none(), "single use");
        assert!(logins.take("nope", t0).is_none());
        assert!(
            logins
                .take("s2", t0 + TTL + Duration::from_secs(1))
                .is_none()
        );
        assert!(
            logins.take("s2", t0).is_none(),
            "an expired state is gone too"
        );
    }

    #[test]
    fn capacity_is_bounded_and_expired_sign_ins_make_room() {
        let logins = PendingLogins::default();
        let t0 = Instant::now();
        for i in 0..CAPACITY {
            logins.insert(format!("s{i}"), pending(t0), t0).unwrap();
        }
        assert_eq!(logins.insert("x".into(), pending(t0), t0), Err(Full));
        let later = t0 + TTL + Duration::from_secs(1);
        logins.insert("x".into(), pending(later), later).unwrap();
        assert!(logins.take("x", later).is_some());
    }
}
