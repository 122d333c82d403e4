//! `agora exports`: export requests — a researcher takes a result file out under a permit
//! (the statement runs through the query service, its output policy applied), a reviewer
//! decides, the file is downloaded once approved, its SHA-256 checked.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use agora_core::DataDir;
use agora_service::Front;
use agora_service::exports::{ExportDecision, ExportRequest, ExportStatus};
use anyhow::{Context, Result, anyhow};
use clap::{Args, Subcommand, ValueEnum};

use super::{AsArgs, Session, or_dash, when};
use crate::cli::{LimitArgs, Statement};

#[derive(Debug, Args)]
pub(crate) struct ExportsArgs {
    #[command(flatten)]
    pub as_: AsArgs,
    #[command(subcommand)]
    pub command: ExportsCommand,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ExportsCommand {
    /// Ask to take a statement's answer out as a CSV file (researchers, with their token):
    /// it runs through the permit and its output policy, then waits for a reviewer unless
    /// the policy approves exports by itself.
    Request {
        /// The data permit to run the statement through (`pmt_...`).
        #[arg(long)]
        permit: String,
        #[command(flatten)]
        statement: Statement,
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// The export requests you may see (researchers: their projects' only).
    List {
        /// Only those in this status: pending_review, approved or rejected.
        #[arg(long)]
        status: Option<String>,
    },
    /// One export request: its statement, file hash, decision and history.
    Show { id: String },
    /// Approve or reject a pending export (reviewers outside the project).
    Decide {
        id: String,
        decision: DecisionArg,
        #[arg(long)]
        reason: String,
    },
    /// Write an approved export's file (its SHA-256 checked) to standard output or `-o FILE`
    /// (a new file, readable by you only).
    Download {
        id: String,
        #[arg(short = 'o', long = "output", value_name = "FILE")]
        output: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum DecisionArg {
    Approve,
    Reject,
}

fn print_export(e: &ExportRequest) {
    out!(
        "{}  {}  permit {} version {}",
        e.id,
        e.status,
        e.permit_id,
        e.permit_version
    );
    out!("  project:   {}", e.project_id);
    out!(
        "  requested: {} by {}",
        when(&e.requested_at),
        e.requested_by
    );
    out!(
        "  file:      {}, {} row(s), {} byte(s)",
        e.format.as_str(),
        e.rows,
        e.bytes
    );
    out!("  sha256:    {}", e.sha256);
    if let Some(at) = &e.decided_at {
        out!(
            "  decided:   {} by {}: {}",
            when(at),
            or_dash(e.decided_by.as_deref()),
            or_dash(e.reason.as_deref())
        );
    }
    out!("  statement: {}", e.statement.trim());
    out!("  history:");
    for h in &e.history {
        let kind = serde_json::to_value(h.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        out!(
            "    {}  {:<10} by {}{}",
            when(&h.at),
            kind,
            h.actor,
            h.reason
                .as_deref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default()
        );
    }
}

pub(crate) async fn run(dir: &DataDir, args: ExportsArgs) -> Result<()> {
    let s = Session::open(dir, &args.as_).await?;
    let exports = s.home.exports();
    let who = &s.who;
    let show = |e: &ExportRequest| -> Result<()> {
        if s.json {
            s.print_json(e)
        } else {
            print_export(e);
            Ok(())
        }
    };
    match args.command {
        ExportsCommand::Request {
            permit,
            statement,
            limits,
        } => {
            let sql = statement.read()?;
            let export = exports
                .request_export(
                    &s.authenticated,
                    &permit,
                    &sql,
                    Front::Cli,
                    crate::commands::limits(&limits),
                )
                .await?;
            show(&export)
        }
        ExportsCommand::List { status } => {
            let status = status
                .map(|st| st.parse::<ExportStatus>())
                .transpose()
                .map_err(|e| anyhow!("--status: {e}"))?;
            let list = exports.list_exports(who, status).await?;
            if s.json {
                return s.print_json(&list);
            }
            if list.is_empty() {
                out!("No export requests.");
            }
            for e in &list {
                out!(
                    "{:<36} {:<14} {}  by {:<14} {:>6} row(s)  permit {}",
                    e.id,
                    e.status.as_str(),
                    when(&e.requested_at),
                    e.requested_by,
                    e.rows,
                    e.permit_id
                );
            }
            Ok(())
        }
        ExportsCommand::Show { id } => show(&exports.export(who, &id).await?),
        ExportsCommand::Decide {
            id,
            decision,
            reason,
        } => {
            let decision = match decision {
                DecisionArg::Approve => ExportDecision::Approve,
                DecisionArg::Reject => ExportDecision::Reject,
            };
            show(&exports.decide_export(who, &id, decision, &reason).await?)
        }
        ExportsCommand::Download { id, output } => {
            let file = exports.download_export(who, &id).await?;
            match output {
                None => {
                    let mut stdout = std::io::stdout().lock();
                    stdout
                        .write_all(&file.bytes)
                        .and_then(|()| stdout.flush())
                        .context("cannot write to standard output")?;
                }
                Some(path) => {
                    let mut f = std::fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .mode(0o600)
                        .open(&path)
                        .with_context(|| format!("cannot create {}", path.display()))?;
                    f.write_all(&file.bytes)
                        .and_then(|()| f.sync_all())
                        .with_context(|| format!("cannot write {}", path.display()))?;
                    eprintln!(
                        "wrote {} ({} bytes, sha256 {})",
                        path.display(),
                        file.bytes.len(),
                        file.export.sha256
                    );
                }
            }
            Ok(())
        }
    }
}
