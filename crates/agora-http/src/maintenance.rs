//! Housekeeping beside `agora serve`: records `active → expired` for projects whose permit
//! has expired, deletes ended sessions and stale login-throttle rows, and forgets ended
//! rate-limit windows. Access never waits for this task: an expired permit or session is
//! refused at the instant it ends; the task only keeps states, the registry and tables tidy.

use std::sync::Arc;
use std::time::{Duration, Instant};

use agora_service::governance::Governance;
use tokio::task::JoinHandle;

use crate::api::limit::RateLimiter;

/// Runs one round now, then every `every`, until the handle is aborted.
pub(crate) fn spawn(
    meta: Governance,
    limiter: Arc<RateLimiter>,
    every: Duration,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            run_once(&meta, &limiter).await;
        }
    })
}

async fn run_once(meta: &Governance, limiter: &RateLimiter) {
    match meta.expire_permits().await {
        Ok(expired) if !expired.is_empty() => {
            tracing::info!(projects = expired.len(), "expired projects recorded");
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "recording expired projects failed; will retry"),
    }
    match meta.purge_expired_auth_state().await {
        Ok(n) if n > 0 => tracing::debug!(rows = n, "ended sessions and login throttles purged"),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "purging ended sessions failed; will retry"),
    }
    limiter.purge(Instant::now());
}
