//! Per-client-address rate limit of the endpoints anyone may call without an account
//! (password login, citizen opt-out).
//!
//! Why: each such request costs the hub real work (an argon2id hash for a login, a keyed
//! hash and possibly a person-key reservation for an opt-out), and an unthrottled opt-out
//! endpoint would let a script probe identifiers in bulk. The store's own login throttle is
//! per login name; this one is per address, so password spraying over many names is slowed
//! too. A fixed one-minute window per address (IPv6 by /64, what one host usually holds);
//! memory is bounded — when the table is full of live windows, new addresses are refused
//! until the next purge rather than growing without limit.
//!
//! Behind a reverse proxy every request comes from the proxy's address: raise the limit
//! (`agora serve --public-rate-limit`) and limit at the proxy instead.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;

use crate::http::{ApiError, AppState};

const WINDOW: Duration = Duration::from_secs(60);
/// Addresses tracked at once (a few MB at most).
const MAX_ADDRESSES: usize = 100_000;

/// A fixed-window request counter per client address.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    per_window: u32,
    windows: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl RateLimiter {
    /// At most `n` requests per minute per address; 0 means no limit.
    pub(crate) fn per_minute(n: u32) -> Self {
        Self {
            per_window: n,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Counts a request from `addr` at `now`; `Err(seconds to wait)` when over the limit.
    pub(crate) fn check(&self, addr: IpAddr, now: Instant) -> Result<(), u64> {
        if self.per_window == 0 {
            return Ok(());
        }
        let key = bucket(addr);
        let mut windows = self.windows.lock().expect("rate limiter poisoned");
        if !windows.contains_key(&key) && windows.len() >= MAX_ADDRESSES {
            windows.retain(|_, (start, _)| now.duration_since(*start) < WINDOW);
            if windows.len() >= MAX_ADDRESSES {
                return Err(WINDOW.as_secs());
            }
        }
        let (start, count) = windows.entry(key).or_insert((now, 0));
        if now.duration_since(*start) >= WINDOW {
            *start = now;
            *count = 0;
        }
        if *count >= self.per_window {
            let wait = WINDOW.saturating_sub(now.duration_since(*start));
            return Err(wait.as_secs().max(1));
        }
        *count += 1;
        Ok(())
    }

    /// Forgets windows that have ended (the maintenance task calls this).
    pub(crate) fn purge(&self, now: Instant) {
        self.windows
            .lock()
            .expect("rate limiter poisoned")
            .retain(|_, (start, _)| now.duration_since(*start) < WINDOW);
    }
}

/// IPv4 addresses count alone; IPv6 addresses by their /64 prefix.
pub(crate) fn bucket(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V4(_) => addr,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// Extractor that counts the request against the caller's address: 429 with `Retry-After`
/// over the limit.
pub(crate) struct Throttle;

impl FromRequestParts<AppState> for Throttle {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let addr = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::from([0, 0, 0, 0]), |c| c.0.ip());
        state
            .public_limiter
            .check(addr, Instant::now())
            .map(|()| Throttle)
            .map_err(|wait| {
                ApiError::throttled(
                    format!("too many requests from your address: try again in {wait} seconds"),
                    wait,
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_address_gets_its_own_window() {
        let limiter = RateLimiter::per_minute(2);
        let t0 = Instant::now();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(limiter.check(a, t0).is_ok());
        assert!(limiter.check(a, t0).is_ok());
        let wait = limiter.check(a, t0 + Duration::from_secs(15)).unwrap_err();
        assert_eq!(wait, 45);
        assert!(limiter.check(b, t0).is_ok());
        // A new window starts a minute later.
        assert!(limiter.check(a, t0 + WINDOW).is_ok());
        limiter.purge(t0 + WINDOW + WINDOW);
        assert!(limiter.windows.lock().unwrap().is_empty());
    }

    #[test]
    fn ipv6_hosts_are_limited_by_prefix_and_zero_disables() {
        let limiter = RateLimiter::per_minute(1);
        let t0 = Instant::now();
        assert!(limiter.check("2001:db8::1".parse().unwrap(), t0).is_ok());
        assert!(limiter.check("2001:db8::2".parse().unwrap(), t0).is_err());
        assert!(
            limiter
                .check("2001:db8:0:1::1".parse().unwrap(), t0)
                .is_ok()
        );
        assert!(
            limiter
                .check("::ffff:192.0.2.9".parse().unwrap(), t0)
                .is_ok()
        );
        assert!(limiter.check("192.0.2.9".parse().unwrap(), t0).is_err());
        let open = RateLimiter::per_minute(0);
        for _ in 0..1000 {
            assert!(open.check("192.0.2.1".parse().unwrap(), t0).is_ok());
        }
    }
}
