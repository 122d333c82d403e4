//! The governance CLI: `agora user`, `agora project`, `agora permit`, `agora exports`,
//! `agora optout`, `agora audit`.
//!
//! Each command works on the local data directory through the same library calls as the
//! HTTP API, as a principal: the local operator (whose API token `agora init` wrote into
//! `keys/operator.token`), or whoever holds the token given with `--token` / `AGORA_TOKEN`
//! (an API token or a session token), so a reviewer or researcher acts from the CLI with
//! exactly their rights. Text output by default, `--json` for programs.

use std::io::Read;
use std::path::Path;

use agora_core::DataDir;
use agora_service::governance::Principal;
use anyhow::{Context, Result, bail};
use clap::Args;
use serde::de::DeserializeOwned;

use agora_service::{Authenticated, Hub};

pub(crate) mod audit;
pub(crate) mod exports;
pub(crate) mod optout;
pub(crate) mod permits;
pub(crate) mod projects;
pub(crate) mod users;

/// The refusal of a `--token` that does not authenticate.
pub(crate) const BAD_TOKEN: &str = "the token given with --token / AGORA_TOKEN does not authenticate (unknown, revoked or expired, or its user is deactivated)";

/// Who acts, and how to print.
#[derive(Args)]
pub(crate) struct AsArgs {
    /// Act as the holder of this API or session token instead of the local operator.
    #[arg(long, env = "AGORA_TOKEN", global = true, hide_env_values = true)]
    pub token: Option<String>,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
}

impl std::fmt::Debug for AsArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsArgs")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("json", &self.json)
            .finish()
    }
}

/// An opened hub and the principal acting on it.
pub(crate) struct Session {
    pub home: Hub,
    pub who: Principal,
    /// The same caller as the query service authenticated it (to open query sessions).
    pub authenticated: Authenticated,
    /// Acting with the data directory's own operator token (not `--token`).
    pub local_operator: bool,
    pub json: bool,
}

impl Session {
    pub(crate) async fn open(dir: &DataDir, args: &AsArgs) -> Result<Self> {
        let home = Hub::open(dir).await?;
        let (token, local_operator) = match &args.token {
            Some(t) => (t.trim().to_owned(), false),
            None => {
                let path = dir.operator_token();
                let token = std::fs::read_to_string(&path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                (token.trim().to_owned(), true)
            }
        };
        let Some(who) = agora_auth::resolve_token(&home, &token).await? else {
            if local_operator {
                bail!(
                    "the local operator token in {} no longer authenticates (revoked, or its user deactivated)",
                    dir.operator_token().display()
                );
            }
            bail!(BAD_TOKEN);
        };
        Ok(Self {
            home,
            who: who.principal().clone(),
            authenticated: who,
            local_operator,
            json: args.json,
        })
    }

    pub(crate) fn meta(&self) -> &agora_service::governance::Governance {
        self.home.governance()
    }

    /// Prints `value` as pretty JSON.
    pub(crate) fn print_json(&self, value: &impl serde::Serialize) -> Result<()> {
        out!("{}", serde_json::to_string_pretty(value)?);
        Ok(())
    }
}

/// Reads a JSON document from a file, or from standard input for `-`. Errors name the file
/// and position, never a value.
pub(crate) fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let (text, name) = if path == Path::new("-") {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("cannot read standard input")?;
        (s, "standard input".to_owned())
    } else {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        (text, path.display().to_string())
    };
    serde_json::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{name}: {}", agora_core::describe_json_error(&e)))
}

/// Reads one line from standard input (a password or an identifier: never on the command
/// line, where `ps` and shell history would show it).
pub(crate) fn read_secret_line(what: &str) -> Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .with_context(|| format!("cannot read the {what} from standard input"))?;
    let line = line.trim_end_matches(['\r', '\n']).to_owned();
    if line.is_empty() {
        bail!("no {what} on standard input");
    }
    Ok(line)
}

/// A timestamp for people: minutes, UTC.
pub(crate) fn when(t: &chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

pub(crate) fn or_dash(s: Option<&str>) -> &str {
    s.filter(|s| !s.is_empty()).unwrap_or("-")
}
