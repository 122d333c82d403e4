//! Accounts: users and their roles, local passwords (argon2id), failed-login throttling,
//! browser sessions, and external (OpenID Connect) identities.
//!
//! * A **user** has a unique id (named in every audit entry), a display name, an optional
//!   email, any number of [`Role`]s and an active flag. A deactivated user can no longer log
//!   in, and its sessions and API tokens are revoked (reactivation restores none of them).
//! * Setting a **password** ends the user's other sessions (all but the one making the
//!   change).
//! * **Passwords** are stored only as argon2id PHC strings. [`MetaStore::authenticate_password`]
//!   throttles failures per login name ([`crate::LoginPolicy`]: by default 5 failures in
//!   15 minutes lock the name for 15 minutes); the throttle is kept in the store so it holds
//!   across server instances, and it treats unknown login names exactly like known ones (and
//!   verifies a dummy hash for them), so neither the answer nor its timing reveals whether an
//!   account exists.
//! * **Sessions** are opaque 256-bit tokens of which only the SHA-256 is stored; they end
//!   after [`crate::SessionPolicy::idle`] without use or [`crate::SessionPolicy::absolute`]
//!   after login.
//! * **OpenID Connect** identities `(issuer, subject)` map to a local user created on first
//!   login with no role: an operator grants roles. The protocol itself lives in the server.
//!
//! User administration (create, roles, activation) is for operators; a user may read and edit
//! its own profile and password. The hub never loses its last active operator.

use std::collections::HashMap;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::audit::NewAuditEntry;
use crate::clock::{format_ts, parse_ts};
use crate::config::MAX_PASSWORD_BYTES;
use crate::error::{denied, invalid};
use crate::{Error, MetaStore, PasswordPolicy, Principal, Result, Role, random_token, sha256_hex};

/// Prefix of session tokens (API tokens start with `agora_`).
const SESSION_PREFIX: &str = "agoras_";
/// Prefix of the ids of users created from an OpenID Connect identity.
const OIDC_PREFIX: &str = "oidc-";

/// A user of the hub.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// The login name: unique, never changes, named in audit entries and permits (`oidc-...`
    /// for users created from an OpenID Connect identity).
    pub id: String,
    /// The name shown in the portal; free text, not unique.
    pub display_name: String,
    /// A contact address, if given.
    pub email: Option<String>,
    /// What the user may do; empty for a fresh OpenID Connect user until an operator grants
    /// roles.
    pub roles: Vec<Role>,
    /// `false` once deactivated: no login, and its sessions and API tokens were revoked.
    pub active: bool,
    /// Whether a local password is set (the hash itself never leaves the store).
    pub has_password: bool,
    /// When the user was created.
    pub created_at: DateTime<Utc>,
    /// When the profile, roles, activation or password last changed.
    pub updated_at: DateTime<Utc>,
}

impl User {
    /// The user as a caller of governance operations: its id and roles.
    pub fn principal(&self) -> Principal {
        Principal {
            name: self.id.clone(),
            roles: self.roles.clone(),
        }
    }
}

/// What an operator provides to create a local user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewUser {
    /// 1 to 64 characters among `a-z 0-9 . _ @ + -`, starting with a letter or digit.
    pub id: String,
    /// The name shown in the portal: not empty, at most 200 characters.
    pub display_name: String,
    /// A contact address (must contain `@`), if any.
    #[serde(default)]
    pub email: Option<String>,
    /// Roles granted from the start; none by default.
    #[serde(default)]
    pub roles: Vec<Role>,
}

/// A new browser session. The token is shown once; only its hash is stored.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct SessionToken {
    /// The bearer secret (`agoras_...`) for the session cookie. Never log it.
    pub token: String,
    /// The user the session authenticates.
    pub user_id: String,
    /// The absolute end of the session (it may end earlier when idle).
    pub expires_at: DateTime<Utc>,
    /// Seconds without use after which the session ends ([`crate::SessionPolicy::idle`]).
    pub idle_timeout_secs: i64,
}

impl std::fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionToken")
            .field("token", &"<redacted>")
            .field("user_id", &self.user_id)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Checks a user id: ids appear in audit entries, URLs and permits, so keep them plain.
pub(crate) fn validate_user_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._@+-".contains(&b))
        && id.as_bytes()[0].is_ascii_alphanumeric();
    if ok {
        Ok(())
    } else {
        Err(invalid(
            "user id: use 1 to 64 characters among a-z, 0-9, '.', '_', '@', '+', '-', starting with a letter or digit",
        ))
    }
}

pub(crate) fn check_text(field: &str, value: &str, max_chars: usize) -> Result<()> {
    if value.chars().count() > max_chars {
        return Err(invalid(format!(
            "{field} is longer than {max_chars} characters"
        )));
    }
    if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t')
    {
        return Err(invalid(format!("{field} contains control characters")));
    }
    Ok(())
}

fn check_display_name(name: &str) -> Result<()> {
    if name.trim().is_empty() {
        return Err(invalid("display name is empty"));
    }
    check_text("display name", name, 200)
}

fn check_email(email: Option<&str>) -> Result<()> {
    if let Some(e) = email {
        check_text("email", e, 320)?;
        if !e.contains('@') || e.chars().any(char::is_whitespace) {
            return Err(invalid("email is not an address"));
        }
    }
    Ok(())
}

fn require_operator(actor: &Principal) -> Result<()> {
    if actor.has(Role::Operator) {
        Ok(())
    } else {
        Err(denied("this needs the operator role"))
    }
}

fn login_key(login: &str) -> String {
    sha256_hex(format!("agora/login/v1\0{}", login.trim().to_lowercase()).as_bytes())
}

async fn hash_password(policy: PasswordPolicy, password: String) -> Result<String> {
    tokio::task::spawn_blocking(move || {
        let params = Params::new(
            policy.memory_kib,
            policy.iterations,
            policy.parallelism,
            None,
        )
        .map_err(|_| Error::PasswordHash)?;
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|_| Error::PasswordHash)
    })
    .await
    .map_err(|_| Error::PasswordHash)?
}

async fn verify_password(phc: String, password: String) -> Result<bool> {
    tokio::task::spawn_blocking(move || {
        let parsed = PasswordHash::new(&phc).map_err(|_| Error::Corrupt("password hash".into()))?;
        Ok(Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok())
    })
    .await
    .map_err(|_| Error::PasswordHash)?
}

type UserRow = (String, String, Option<String>, i64, String, String, i64);

const USER_COLUMNS: &str = "SELECT u.id, u.display_name, u.email, u.active, u.created_at, \
     u.updated_at, (SELECT COUNT(*) FROM password_credentials c WHERE c.user_id = u.id) \
     FROM users u";

impl MetaStore {
    pub(crate) async fn load_user(&self, id: &str) -> Result<Option<User>> {
        let row: Option<UserRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{USER_COLUMNS} WHERE u.id = $1"
        )))
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        match row {
            None => Ok(None),
            Some(row) => {
                let roles = self.user_roles(id).await?;
                Ok(Some(user_from_row(row, roles)?))
            }
        }
    }

    /// The roles a user holds now (empty for unknown users).
    pub(crate) async fn user_roles(&self, id: &str) -> Result<Vec<Role>> {
        let roles: Vec<String> =
            sqlx::query_scalar("SELECT role FROM user_roles WHERE user_id = $1 ORDER BY role")
                .bind(id)
                .fetch_all(self.pool())
                .await?;
        let mut roles: Vec<Role> = roles.iter().filter_map(|r| r.parse().ok()).collect();
        roles.sort();
        Ok(roles)
    }

    /// Whether `id` names an existing, active user.
    pub(crate) async fn user_is_active(&self, id: &str) -> Result<bool> {
        let active: Option<i64> = sqlx::query_scalar("SELECT active FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        Ok(active == Some(1))
    }

    /// Creates a local user (operator only). Its password, if any, is set separately.
    pub async fn create_user(&self, actor: &Principal, new: NewUser) -> Result<User> {
        require_operator(actor)?;
        validate_user_id(&new.id)?;
        if new.id.starts_with(OIDC_PREFIX) {
            return Err(invalid(
                "user ids starting with 'oidc-' are reserved for OpenID Connect accounts",
            ));
        }
        check_display_name(&new.display_name)?;
        check_email(new.email.as_deref())?;
        let now = format_ts(self.now());
        let mut tx = self.pool().begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO users (id, display_name, email, active, created_at, updated_at) \
             VALUES ($1, $2, $3, 1, $4, $5) ON CONFLICT (id) DO NOTHING",
        )
        .bind(&new.id)
        .bind(new.display_name.trim())
        .bind(new.email.as_deref())
        .bind(&now)
        .bind(&now)
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 0 {
            return Err(Error::Conflict("a user with this id already exists".into()));
        }
        for role in &new.roles {
            grant_role(&mut tx, &new.id, *role, &now, &actor.name).await?;
        }
        let roles: Vec<&str> = new.roles.iter().map(|r| r.as_str()).collect();
        let entry = NewAuditEntry::governance("user.created", &actor.name)
            .with("user", new.id.as_str())
            .with("roles", roles);
        crate::audit::append(&mut tx, parse_ts(&now)?, vec![entry]).await?;
        tx.commit().await?;
        tracing::info!(user = %new.id, by = %actor.name, "user created");
        self.load_user(&new.id)
            .await?
            .ok_or(Error::NotFound("user"))
    }

    /// A user, for an operator or for the user itself; anyone else gets `NotFound`.
    pub async fn user(&self, actor: &Principal, id: &str) -> Result<User> {
        if !actor.has(Role::Operator) && actor.name != id {
            return Err(Error::NotFound("user"));
        }
        self.load_user(id).await?.ok_or(Error::NotFound("user"))
    }

    /// Every user, ordered by id (operator only).
    pub async fn list_users(&self, actor: &Principal) -> Result<Vec<User>> {
        require_operator(actor)?;
        let rows: Vec<UserRow> =
            sqlx::query_as(sqlx::AssertSqlSafe(format!("{USER_COLUMNS} ORDER BY u.id")))
                .fetch_all(self.pool())
                .await?;
        let pairs: Vec<(String, String)> = sqlx::query_as("SELECT user_id, role FROM user_roles")
            .fetch_all(self.pool())
            .await?;
        let mut roles: HashMap<String, Vec<Role>> = HashMap::new();
        for (user, role) in pairs {
            if let Ok(role) = role.parse() {
                roles.entry(user).or_default().push(role);
            }
        }
        rows.into_iter()
            .map(|row| {
                let mut r = roles.remove(&row.0).unwrap_or_default();
                r.sort();
                user_from_row(row, r)
            })
            .collect()
    }

    /// Updates a user's display name and email (the user itself or an operator).
    pub async fn update_user(
        &self,
        actor: &Principal,
        id: &str,
        display_name: &str,
        email: Option<&str>,
    ) -> Result<User> {
        if !actor.has(Role::Operator) && actor.name != id {
            return Err(Error::NotFound("user"));
        }
        check_display_name(display_name)?;
        check_email(email)?;
        let done = sqlx::query(
            "UPDATE users SET display_name = $1, email = $2, updated_at = $3 WHERE id = $4",
        )
        .bind(display_name.trim())
        .bind(email)
        .bind(format_ts(self.now()))
        .bind(id)
        .execute(self.pool())
        .await?;
        if done.rows_affected() == 0 {
            return Err(Error::NotFound("user"));
        }
        self.load_user(id).await?.ok_or(Error::NotFound("user"))
    }

    /// Replaces a user's roles (operator only). Refused if it would leave the hub without an
    /// active operator.
    pub async fn set_user_roles(
        &self,
        actor: &Principal,
        id: &str,
        roles: &[Role],
    ) -> Result<User> {
        require_operator(actor)?;
        let now = format_ts(self.now());
        let mut tx = self.pool().begin().await?;
        // Write first: a SQLite transaction that reads before writing cannot wait for a
        // concurrent writer.
        let touched = sqlx::query("UPDATE users SET updated_at = $1 WHERE id = $2")
            .bind(&now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if touched.rows_affected() == 0 {
            return Err(Error::NotFound("user"));
        }
        let keep: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
        let sql = if keep.is_empty() {
            "DELETE FROM user_roles WHERE user_id = $1".to_owned()
        } else {
            format!(
                "DELETE FROM user_roles WHERE user_id = $1 AND role NOT IN ({})",
                (0..keep.len())
                    .map(|i| format!("${}", i + 2))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let mut delete = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id);
        for role in &keep {
            delete = delete.bind(*role);
        }
        delete.execute(&mut *tx).await?;
        for role in roles {
            grant_role(&mut tx, id, *role, &now, &actor.name).await?;
        }
        ensure_an_operator_remains(&mut tx).await?;
        let granted: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
        let entry = NewAuditEntry::governance("user.roles_set", &actor.name)
            .with("user", id)
            .with("roles", granted);
        crate::audit::append(&mut tx, parse_ts(&now)?, vec![entry]).await?;
        tx.commit().await?;
        tracing::info!(user = %id, by = %actor.name, "user roles set");
        self.load_user(id).await?.ok_or(Error::NotFound("user"))
    }

    /// Activates or deactivates a user (operator only). Deactivation revokes the user's
    /// sessions and API tokens for good (`revoked_at` is recorded), so reactivation brings
    /// none of them back: the user logs in again and is issued new tokens.
    pub async fn set_user_active(&self, actor: &Principal, id: &str, active: bool) -> Result<User> {
        require_operator(actor)?;
        let now = format_ts(self.now());
        let mut tx = self.pool().begin().await?;
        let touched = sqlx::query("UPDATE users SET active = $1, updated_at = $2 WHERE id = $3")
            .bind(i64::from(active))
            .bind(&now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if touched.rows_affected() == 0 {
            return Err(Error::NotFound("user"));
        }
        if !active {
            sqlx::query(
                "UPDATE sessions SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
            )
            .bind(&now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            // Revoked, not suspended: a token that leaked before the deactivation must not
            // come back to life with a reactivation.
            sqlx::query(
                "UPDATE api_tokens SET revoked_at = $1 WHERE principal = $2 AND revoked_at IS NULL",
            )
            .bind(&now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            ensure_an_operator_remains(&mut tx).await?;
        }
        let event = if active {
            "user.activated"
        } else {
            "user.deactivated"
        };
        let entry = NewAuditEntry::governance(event, &actor.name).with("user", id);
        crate::audit::append(&mut tx, parse_ts(&now)?, vec![entry]).await?;
        tx.commit().await?;
        tracing::info!(user = %id, by = %actor.name, active, "user activation set");
        self.load_user(id).await?.ok_or(Error::NotFound("user"))
    }

    /// Sets a user's local password (the user itself or an operator; an API that lets users
    /// change their own password should check the current one with
    /// [`MetaStore::authenticate_password`] first). Only the argon2id PHC string is stored.
    ///
    /// Every session of the user ends with the change, except `keep_session` (the session
    /// token the change was made with, if any): whoever held another session, perhaps the
    /// one the password change is meant to lock out, must log in with the new password.
    /// Returns how many live sessions were ended.
    pub async fn set_password(
        &self,
        actor: &Principal,
        id: &str,
        password: &str,
        keep_session: Option<&str>,
    ) -> Result<u64> {
        if !actor.has(Role::Operator) && actor.name != id {
            return Err(Error::NotFound("user"));
        }
        let policy = self.config().passwords;
        if password.chars().count() < policy.min_length {
            return Err(invalid(format!(
                "password must have at least {} characters",
                policy.min_length
            )));
        }
        if password.len() > MAX_PASSWORD_BYTES {
            return Err(invalid(format!(
                "password must have at most {MAX_PASSWORD_BYTES} bytes"
            )));
        }
        if self.load_user(id).await?.is_none() {
            return Err(Error::NotFound("user"));
        }
        let phc = hash_password(policy, password.to_owned()).await?;
        let scram = {
            let password = password.to_owned();
            tokio::task::spawn_blocking(move || {
                crate::scram::Verifier::new(&password, policy.scram_iterations).to_string()
            })
            .await
            .map_err(|_| Error::PasswordHash)?
        };
        let now = format_ts(self.now());
        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "INSERT INTO password_credentials (user_id, phc, updated_at, scram) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (user_id) DO UPDATE SET phc = excluded.phc, \
             updated_at = excluded.updated_at, scram = excluded.scram",
        )
        .bind(id)
        .bind(phc)
        .bind(&now)
        .bind(scram)
        .execute(&mut *tx)
        .await?;
        // A hash no session token has: nothing is kept when no session is named.
        let keep = keep_session.map_or_else(String::new, |t| sha256_hex(t.as_bytes()));
        let ended = sqlx::query(
            "UPDATE sessions SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL \
             AND token_hash <> $3",
        )
        .bind(&now)
        .bind(id)
        .bind(keep)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let entry = NewAuditEntry::governance("user.password_set", &actor.name).with("user", id);
        crate::audit::append(&mut tx, parse_ts(&now)?, vec![entry]).await?;
        tx.commit().await?;
        tracing::info!(user = %id, by = %actor.name, sessions_ended = ended, "password set");
        Ok(ended)
    }

    /// Checks a local login (the user id) and password.
    ///
    /// `Ok(Some(principal))` on success; `Ok(None)` for a wrong password, an unknown or
    /// inactive account, or an account without a password — all indistinguishable;
    /// [`Error::RateLimited`] while the login name is locked after too many failures (even
    /// with the right password, and whether the account exists or not).
    pub async fn authenticate_password(
        &self,
        login: &str,
        password: &str,
    ) -> Result<Option<Principal>> {
        let now = self.now();
        let key = login_key(login);
        self.check_login_throttle(&key, now).await?;
        let user_id = login.trim().to_lowercase();
        let phc: Option<String> = sqlx::query_scalar(
            "SELECT c.phc FROM password_credentials c JOIN users u ON u.id = c.user_id \
             WHERE c.user_id = $1 AND u.active = 1",
        )
        .bind(&user_id)
        .fetch_optional(self.pool())
        .await?;
        let ok = if password.len() > MAX_PASSWORD_BYTES {
            false
        } else {
            match phc {
                Some(phc) => verify_password(phc, password.to_owned()).await?,
                None => {
                    // Same work as for a real account, then fail.
                    let dummy = self.dummy_password_hash().await?;
                    let _ = verify_password(dummy, password.to_owned()).await?;
                    false
                }
            }
        };
        if ok {
            sqlx::query("DELETE FROM login_throttle WHERE login_hash = $1")
                .bind(&key)
                .execute(self.pool())
                .await?;
            let roles = self.user_roles(&user_id).await?;
            return Ok(Some(Principal {
                name: user_id,
                roles,
            }));
        }
        self.record_login_failure(&key, now).await?;
        tracing::info!("failed password login");
        Ok(None)
    }

    /// [`Error::RateLimited`] while the login name `key` is locked.
    async fn check_login_throttle(&self, key: &str, now: DateTime<Utc>) -> Result<()> {
        let locked: Option<Option<String>> =
            sqlx::query_scalar("SELECT locked_until FROM login_throttle WHERE login_hash = $1")
                .bind(key)
                .fetch_optional(self.pool())
                .await?;
        if let Some(Some(until)) = locked {
            let until = parse_ts(&until)?;
            if until > now {
                let secs = ((until - now).num_milliseconds() + 999) / 1000;
                return Err(Error::RateLimited {
                    retry_after_secs: u64::try_from(secs.max(1)).unwrap_or(1),
                });
            }
        }
        Ok(())
    }

    /// The SCRAM-SHA-256 verifier of an active local account's password, for a login over
    /// the PostgreSQL protocol; `None` when there is none (no such active account, no
    /// password, or one set before SCRAM). [`Error::RateLimited`] while the login name is
    /// locked, as for [`MetaStore::authenticate_password`].
    pub async fn scram_verifier(&self, login: &str) -> Result<Option<crate::scram::Verifier>> {
        self.check_login_throttle(&login_key(login), self.now())
            .await?;
        let stored: Option<Option<String>> = sqlx::query_scalar(
            "SELECT c.scram FROM password_credentials c JOIN users u ON u.id = c.user_id \
             WHERE c.user_id = $1 AND u.active = 1",
        )
        .bind(login.trim().to_lowercase())
        .fetch_optional(self.pool())
        .await?;
        Ok(stored
            .flatten()
            .as_deref()
            .and_then(crate::scram::Verifier::parse))
    }

    /// Records how a SCRAM login of `login` ended (failures count towards the lockout as
    /// password failures do); the principal on success.
    pub async fn scram_result(&self, login: &str, ok: bool) -> Result<Option<Principal>> {
        let key = login_key(login);
        if !ok {
            self.record_login_failure(&key, self.now()).await?;
            tracing::info!("failed SCRAM login");
            return Ok(None);
        }
        sqlx::query("DELETE FROM login_throttle WHERE login_hash = $1")
            .bind(&key)
            .execute(self.pool())
            .await?;
        let user_id = login.trim().to_lowercase();
        let roles = self.user_roles(&user_id).await?;
        Ok(Some(Principal {
            name: user_id,
            roles,
        }))
    }

    async fn dummy_password_hash(&self) -> Result<String> {
        let policy = self.config().passwords;
        self.dummy_hash
            .get_or_try_init(|| hash_password(policy, "agora: no such account".to_owned()))
            .await
            .cloned()
    }

    async fn record_login_failure(&self, key: &str, now: DateTime<Utc>) -> Result<()> {
        let policy = self.config().logins;
        let now_s = format_ts(now);
        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "INSERT INTO login_throttle (login_hash, failures, window_start, locked_until) \
             VALUES ($1, 1, $2, NULL) ON CONFLICT (login_hash) DO UPDATE SET \
             failures = CASE WHEN login_throttle.window_start < $3 THEN 1 \
                        ELSE login_throttle.failures + 1 END, \
             window_start = CASE WHEN login_throttle.window_start < $4 THEN $5 \
                            ELSE login_throttle.window_start END",
        )
        .bind(key)
        .bind(&now_s)
        .bind(format_ts(now - policy.window))
        .bind(format_ts(now - policy.window))
        .bind(&now_s)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE login_throttle SET locked_until = $1, failures = 0, window_start = $2 \
             WHERE login_hash = $3 AND failures >= $4",
        )
        .bind(format_ts(now + policy.lockout))
        .bind(&now_s)
        .bind(key)
        .bind(i64::from(policy.max_failures.max(1)))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Opens a session for an active user (after a successful login). The token is returned
    /// once; only its SHA-256 is stored.
    pub async fn create_session(&self, user_id: &str) -> Result<SessionToken> {
        if !self.user_is_active(user_id).await? {
            return Err(Error::NotFound("user"));
        }
        let policy = self.config().sessions;
        let now = self.now();
        let token = random_token(SESSION_PREFIX);
        let expires_at = now + policy.absolute;
        sqlx::query(
            "INSERT INTO sessions (token_hash, user_id, created_at, last_seen_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(sha256_hex(token.as_bytes()))
        .bind(user_id)
        .bind(format_ts(now))
        .bind(format_ts(now))
        .bind(format_ts(expires_at))
        .execute(self.pool())
        .await?;
        Ok(SessionToken {
            token,
            user_id: user_id.to_owned(),
            expires_at,
            idle_timeout_secs: policy.idle.num_seconds(),
        })
    }

    /// The principal of a live session, or `None` (unknown, revoked, idle too long, past
    /// its absolute expiry, or its user deactivated). Each use extends the idle period.
    pub async fn session_principal(&self, token: &str) -> Result<Option<Principal>> {
        if !token.starts_with(SESSION_PREFIX) {
            return Ok(None);
        }
        let hash = sha256_hex(token.as_bytes());
        let row: Option<(String, String, String)> = sqlx::query_as(
            "SELECT s.user_id, s.last_seen_at, s.expires_at FROM sessions s \
             JOIN users u ON u.id = s.user_id \
             WHERE s.token_hash = $1 AND s.revoked_at IS NULL AND u.active = 1",
        )
        .bind(&hash)
        .fetch_optional(self.pool())
        .await?;
        let Some((user_id, last_seen, expires)) = row else {
            return Ok(None);
        };
        let now = self.now();
        let idle = self.config().sessions.idle;
        if now >= parse_ts(&expires)? || now >= parse_ts(&last_seen)? + idle {
            return Ok(None);
        }
        sqlx::query(
            "UPDATE sessions SET last_seen_at = $1 WHERE token_hash = $2 AND last_seen_at < $3",
        )
        .bind(format_ts(now))
        .bind(&hash)
        .bind(format_ts(now))
        .execute(self.pool())
        .await?;
        let roles = self.user_roles(&user_id).await?;
        Ok(Some(Principal {
            name: user_id,
            roles,
        }))
    }

    /// Ends a session (logout). `false` if the token named no live session.
    pub async fn revoke_session(&self, token: &str) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE sessions SET revoked_at = $1 WHERE token_hash = $2 AND revoked_at IS NULL",
        )
        .bind(format_ts(self.now()))
        .bind(sha256_hex(token.as_bytes()))
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Ends every session of a user; returns how many were live.
    pub async fn revoke_user_sessions(&self, user_id: &str) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE sessions SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
        )
        .bind(format_ts(self.now()))
        .bind(user_id)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected())
    }

    /// Deletes ended sessions and stale login-throttle rows; returns how many rows went.
    /// Housekeeping only: expired state is never honoured anyway.
    pub async fn purge_expired_auth_state(&self) -> Result<u64> {
        let now = self.now();
        let policy = self.config();
        let sessions = sqlx::query(
            "DELETE FROM sessions WHERE expires_at <= $1 OR last_seen_at <= $2 \
             OR revoked_at IS NOT NULL",
        )
        .bind(format_ts(now))
        .bind(format_ts(now - policy.sessions.idle))
        .execute(self.pool())
        .await?;
        let throttle = sqlx::query(
            "DELETE FROM login_throttle WHERE window_start < $1 \
             AND (locked_until IS NULL OR locked_until <= $2)",
        )
        .bind(format_ts(now - policy.logins.window))
        .bind(format_ts(now))
        .execute(self.pool())
        .await?;
        Ok(sessions.rows_affected() + throttle.rows_affected())
    }

    /// Maps an OpenID Connect identity to a local user, creating the user (with no role) on
    /// first login. The provider's email and name refresh the profile on every login. The
    /// caller checks [`User::active`] before opening a session.
    pub async fn upsert_oidc_user(
        &self,
        issuer: &str,
        subject: &str,
        email: Option<&str>,
        name: Option<&str>,
    ) -> Result<User> {
        if issuer.is_empty() || issuer.len() > 2048 || subject.is_empty() || subject.len() > 255 {
            return Err(invalid(
                "OpenID Connect issuer or subject is empty or too long",
            ));
        }
        let email = email.filter(|e| !e.trim().is_empty());
        let name = name.filter(|n| !n.trim().is_empty());
        check_email(email)?;
        if let Some(n) = name {
            check_display_name(n)?;
        }
        // Deterministic: concurrent first logins of one identity converge on one user.
        let digest = sha256_hex(format!("agora/oidc/v1\0{issuer}\0{subject}").as_bytes());
        let id = format!("{OIDC_PREFIX}{}", &digest[..20]);
        let display = name.or(email).unwrap_or("OpenID Connect user");
        let now = format_ts(self.now());
        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "INSERT INTO users (id, display_name, email, active, created_at, updated_at) \
             VALUES ($1, $2, $3, 1, $4, $5) ON CONFLICT (id) DO NOTHING",
        )
        .bind(&id)
        .bind(display.trim())
        .bind(email)
        .bind(&now)
        .bind(&now)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO external_identities (issuer, subject, user_id, created_at, last_login_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (issuer, subject) \
             DO UPDATE SET last_login_at = excluded.last_login_at",
        )
        .bind(issuer)
        .bind(subject)
        .bind(&id)
        .bind(&now)
        .bind(&now)
        .execute(&mut *tx)
        .await?;
        let user_id: String = sqlx::query_scalar(
            "SELECT user_id FROM external_identities WHERE issuer = $1 AND subject = $2",
        )
        .bind(issuer)
        .bind(subject)
        .fetch_one(&mut *tx)
        .await?;
        if name.is_some() || email.is_some() {
            sqlx::query(
                "UPDATE users SET display_name = $1, email = $2, updated_at = $3 WHERE id = $4",
            )
            .bind(display.trim())
            .bind(email)
            .bind(&now)
            .bind(&user_id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        self.load_user(&user_id)
            .await?
            .ok_or(Error::NotFound("user"))
    }
}

/// Grants `role` to `user` inside a transaction (no-op if already held).
pub(crate) async fn grant_role(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    user: &str,
    role: Role,
    now: &str,
    by: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO user_roles (user_id, role, granted_at, granted_by) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (user_id, role) DO NOTHING",
    )
    .bind(user)
    .bind(role.as_str())
    .bind(now)
    .bind(by)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn ensure_an_operator_remains(tx: &mut sqlx::Transaction<'_, sqlx::Any>) -> Result<()> {
    let operators: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM user_roles r JOIN users u ON u.id = r.user_id \
         WHERE r.role = 'operator' AND u.active = 1",
    )
    .fetch_one(&mut **tx)
    .await?;
    if operators == 0 {
        return Err(Error::Conflict(
            "refused: the hub would be left without an active operator".into(),
        ));
    }
    Ok(())
}

fn user_from_row(row: UserRow, roles: Vec<Role>) -> Result<User> {
    let (id, display_name, email, active, created_at, updated_at, passwords) = row;
    Ok(User {
        id,
        display_name,
        email,
        roles,
        active: active == 1,
        has_password: passwords > 0,
        created_at: parse_ts(&created_at)?,
        updated_at: parse_ts(&updated_at)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_ids_are_plain() {
        for ok in [
            "alice",
            "a.b-c_d",
            "x@hub.example",
            "local-operator",
            "0day",
        ] {
            validate_user_id(ok).unwrap();
        }
        for bad in ["", "Alice", "-a", "a b", "a/b", &"a".repeat(65)] {
            assert!(validate_user_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn login_keys_ignore_case_and_surrounding_space_and_hide_the_name() {
        assert_eq!(login_key("Alice "), login_key("alice"));
        assert!(!login_key("alice").contains("alice"));
    }

    #[tokio::test]
    async fn argon2id_hashes_verify_and_are_phc_strings() {
        let policy = PasswordPolicy::insecure_fast_for_tests();
        let phc = hash_password(policy, "correct horse".into()).await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{phc}");
        assert!(!phc.contains("correct horse"));
        assert!(
            verify_password(phc.clone(), "correct horse".into())
                .await
                .unwrap()
        );
        assert!(!verify_password(phc, "wrong horse".into()).await.unwrap());
    }

    #[test]
    fn session_tokens_redact_themselves() {
        let t = SessionToken {
            token: "agoras_secret".into(),
            user_id: "u".into(),
            expires_at: Utc::now(),
            idle_timeout_secs: 1,
        };
        assert!(!format!("{t:?}").contains("secret"));
    }
}
