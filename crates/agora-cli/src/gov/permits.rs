//! `agora permit`: data permits.

use std::path::PathBuf;

use agora_core::DataDir;
use agora_service::governance::{Permit, PermitAmendment, ReleaseSelector};
use anyhow::Result;
use clap::{Args, Subcommand};

use super::{AsArgs, Session, read_json, when};

#[derive(Debug, Args)]
pub(crate) struct PermitArgs {
    #[command(flatten)]
    pub as_: AsArgs,
    #[command(subcommand)]
    pub command: PermitCommand,
}

#[derive(Debug, Subcommand)]
pub(crate) enum PermitCommand {
    /// The permits you may see (researchers: their projects' only).
    List,
    /// A permit's current version (`--json`: the machine-readable permit).
    Show {
        id: String,
        /// Every version instead, oldest first.
        #[arg(long)]
        versions: bool,
    },
    /// Amend a permit from a JSON file (`-`: standard input) with any of `members`,
    /// `datasets`, `expires_at`, `output`: writes a new version (reviewers). An
    /// `expires_at` beyond the application's requested duration needs
    /// `expiry_beyond_request_reason` (why); none may pass the hub maximum.
    Amend {
        id: String,
        #[arg(long)]
        file: PathBuf,
        #[arg(long)]
        reason: String,
    },
    /// Revoke a permit at once and close its project (reviewers, operators).
    Revoke {
        id: String,
        #[arg(long)]
        reason: String,
    },
}

pub(crate) fn print_permit(p: &Permit) {
    out!("{}  version {}  {}", p.id, p.version, p.project_title);
    out!(
        "  status:    {}",
        serde_json::to_value(p.status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    );
    out!("  project:   {}", p.application_id);
    out!("  members:   {}", p.terms.members.join(", "));
    out!("  expires:   {}", when(&p.terms.expires_at));
    for d in &p.terms.datasets {
        let release = match d.release {
            ReleaseSelector::Number(n) => format!("release {n}"),
            ReleaseSelector::LatestAtActivation => "latest release at activation".into(),
        };
        out!("  dataset:   {} ({release})", d.dataset);
        for t in &d.tables {
            let filters = if t.row_filters.is_empty() {
                String::new()
            } else {
                format!("  [{} row filter(s)]", t.row_filters.len())
            };
            out!("    {}: {}{filters}", t.table, t.columns.join(", "));
        }
    }
    let rules = p.terms.output.rules();
    out!(
        "  output:    aggregates, profile {} (k = {}{}{})",
        rules.profile.as_str(),
        rules.k,
        if rules.rounding > 1 {
            format!(", counts rounded to {}", rules.rounding)
        } else {
            String::new()
        },
        match rules.dp {
            Some(dp) => format!(", differential privacy: budget ε = {}", dp.epsilon_budget),
            None => String::new(),
        }
    );
    if let Some(r) = &p.revoked_at {
        out!(
            "  revoked:   {} by {}",
            when(r),
            p.revoked_by.as_deref().unwrap_or("-")
        );
    }
}

pub(crate) async fn run(dir: &DataDir, args: PermitArgs) -> Result<()> {
    let s = Session::open(dir, &args.as_).await?;
    let meta = s.meta();
    let who = &s.who;
    let show = |p: &Permit| -> Result<()> {
        if s.json {
            s.print_json(p)
        } else {
            print_permit(p);
            Ok(())
        }
    };
    match args.command {
        PermitCommand::List => {
            let permits = meta.list_permits(who).await?;
            if s.json {
                return s.print_json(&permits);
            }
            if permits.is_empty() {
                out!("No permits.");
            }
            for p in &permits {
                out!(
                    "{:<38} v{:<3} {:<9} expires {}  {}",
                    p.id,
                    p.version,
                    serde_json::to_value(p.status)?.as_str().unwrap_or("?"),
                    when(&p.terms.expires_at),
                    p.project_title
                );
            }
            Ok(())
        }
        PermitCommand::Show {
            id,
            versions: false,
        } => show(&meta.permit(who, &id).await?),
        PermitCommand::Show { id, versions: true } => {
            let versions = meta.permit_versions(who, &id).await?;
            if s.json {
                return s.print_json(&versions);
            }
            for v in &versions {
                out!(
                    "version {:>3}  {}  by {:<14} {}  (expires {}, {} member(s), {} dataset(s))",
                    v.version,
                    when(&v.created_at),
                    v.created_by,
                    v.reason,
                    when(&v.terms.expires_at),
                    v.terms.members.len(),
                    v.terms.datasets.len()
                );
            }
            Ok(())
        }
        PermitCommand::Amend { id, file, reason } => {
            let amendment: PermitAmendment = read_json(&file)?;
            show(&meta.amend_permit(who, &id, amendment, &reason).await?)
        }
        PermitCommand::Revoke { id, reason } => show(&meta.revoke_permit(who, &id, &reason).await?),
    }
}
