//! Tunable governance policy: sessions, login throttling, password hashing, review
//! deadlines, permit durations.

use chrono::TimeDelta;

use crate::Deadlines;

/// Everything about governance a hub may tune. `Default` is the production policy.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GovernConfig {
    /// How long browser sessions last.
    pub sessions: SessionPolicy,
    /// Failed-login throttling.
    pub logins: LoginPolicy,
    /// Password length and hashing cost.
    pub passwords: PasswordPolicy,
    /// Due dates of review steps.
    pub deadlines: Deadlines,
    /// Limits on the permits issued.
    pub permits: PermitPolicy,
}

/// Limits on permits, whatever a reviewer decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PermitPolicy {
    /// Longest life of a permit from its issue, in months (default 60, five years). A
    /// reviewer may exceed the application's requested duration with a recorded reason, but
    /// never this.
    pub max_months: u32,
}

impl Default for PermitPolicy {
    fn default() -> Self {
        Self { max_months: 60 }
    }
}

/// Browser sessions end after `idle` without use or `absolute` after login, whichever
/// comes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionPolicy {
    /// Longest time between two uses of a session (default 8 hours).
    pub idle: TimeDelta,
    /// Longest life of a session from login, however active (default 12 hours).
    pub absolute: TimeDelta,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        Self {
            idle: TimeDelta::hours(8),
            absolute: TimeDelta::hours(12),
        }
    }
}

/// After `max_failures` failed password logins for one login name within `window`, every
/// login with that name is refused for `lockout`, whether the account exists or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginPolicy {
    /// Failed logins tolerated within `window` (default 5).
    pub max_failures: u32,
    /// The sliding period failures are counted over (default 15 minutes).
    pub window: TimeDelta,
    /// How long logins with the name are refused once the limit is reached (default 15
    /// minutes).
    pub lockout: TimeDelta,
}

impl Default for LoginPolicy {
    fn default() -> Self {
        Self {
            max_failures: 5,
            window: TimeDelta::minutes(15),
            lockout: TimeDelta::minutes(15),
        }
    }
}

/// argon2id parameters for new password hashes (existing hashes verify with the parameters
/// recorded in their PHC string). The default is OWASP's recommendation (19 MiB, 2 passes,
/// 1 lane).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordPolicy {
    /// Shortest password accepted, in characters (default 12).
    pub min_length: usize,
    /// argon2 memory cost in KiB (default 19 MiB).
    pub memory_kib: u32,
    /// argon2 time cost: passes over the memory (default 2).
    pub iterations: u32,
    /// argon2 lanes (default 1).
    pub parallelism: u32,
    /// PBKDF2 iterations of the SCRAM-SHA-256 verifier kept beside the hash for the
    /// PostgreSQL protocol (default 100 000; PostgreSQL's own default is 4096).
    pub scram_iterations: u32,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        Self {
            min_length: 12,
            memory_kib: 19 * 1024,
            iterations: 2,
            parallelism: 1,
            scram_iterations: 100_000,
        }
    }
}

impl PasswordPolicy {
    /// Cheap hashing for tests only (argon2id with 64 KiB): never use it for a real hub.
    pub fn insecure_fast_for_tests() -> Self {
        Self {
            memory_kib: 64,
            iterations: 1,
            scram_iterations: 4096,
            ..Self::default()
        }
    }
}

/// Upper bound on a password's length (bytes): hashing cost must not be caller-controlled.
pub(crate) const MAX_PASSWORD_BYTES: usize = 1024;
