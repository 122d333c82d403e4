//! `agora audit`: the tamper-evident audit log — verify it, sign a head, read entries, print
//! the published heads and the signing key.

use std::path::PathBuf;

use agora_core::DataDir;
use agora_service::audit::{
    ArchivedSegment, AuditFilter, Category, Inconsistency, PublicKey, Segment, SignedTreeHead,
    check_segment,
};
use anyhow::{Result, bail};
use chrono::{DateTime, NaiveDate, Utc};
use clap::{Args, Subcommand, ValueEnum};

use super::{AsArgs, Session, read_json, when};

#[derive(Debug, Args)]
pub(crate) struct AuditArgs {
    #[command(flatten)]
    pub as_: AsArgs,
    #[command(subcommand)]
    pub command: AuditCommand,
}

#[derive(Debug, Subcommand)]
pub(crate) enum AuditCommand {
    /// Recompute the Merkle tree from every stored entry, check every signed tree head
    /// (signature and root) and, with --from-checkpoint, a head kept outside the hub; name
    /// the first inconsistent entry. Exit status 1 when the log is inconsistent (operators
    /// and auditors).
    Verify {
        /// A signed tree head saved earlier (the JSON of GET /api/v1/audit/heads/latest):
        /// the log must extend it, or it was rewritten.
        #[arg(long, value_name = "FILE")]
        from_checkpoint: Option<PathBuf>,
    },
    /// Sign a tree head now if the log grew since the latest one (`agora serve` does it
    /// every minute) and print the latest head (operators).
    Head,
    /// Every published signed tree head, oldest first.
    Heads,
    /// The public key tree heads are signed with (base64), and its key id.
    Key,
    /// Entries, newest first (operators and auditors; researchers with --project of their
    /// own project).
    Log(LogArgs),
    /// Move the entries older than the retention period out of the metadata store into
    /// archived segment files (`agora serve` does it hourly with --audit-retention-days);
    /// each stays verifiable against the signed heads (operators).
    Archive {
        /// Archive the entries older than this many days.
        #[arg(long, default_value_t = agora_service::audit::DEFAULT_RETENTION_DAYS)]
        older_than_days: u32,
    },
    /// The archived segments: their entries' range, file, SHA-256 and the head they prove
    /// against.
    Segments,
    /// Check one archived segment file on its own: its entries against the signed head it
    /// carries, and that head's signature. With --key, no data directory is needed (what an
    /// outsider runs with the published key).
    VerifySegment {
        /// The segment file (JSON Lines, under the data directory's audit/segments/).
        file: PathBuf,
        /// The hub's public key, base64 (GET /api/v1/audit/key); default: this hub's.
        #[arg(long)]
        key: Option<String>,
    },
}

#[derive(Debug, Args)]
pub(crate) struct LogArgs {
    /// Only this category.
    #[arg(long, value_enum)]
    category: Option<CategoryArg>,
    /// Only events starting with this (`query.`, `permit.approved`...).
    #[arg(long)]
    event: Option<String>,
    /// Only this actor (user id).
    #[arg(long)]
    actor: Option<String>,
    /// Only this project (application id).
    #[arg(long)]
    project: Option<String>,
    /// Only this outcome (`answered`, `refused`, `failed`, `ok`).
    #[arg(long)]
    outcome: Option<String>,
    /// Only from this day (YYYY-MM-DD, UTC) or time (RFC 3339).
    #[arg(long, value_parser = parse_time)]
    from: Option<DateTime<Utc>>,
    /// Only before this day (YYYY-MM-DD, UTC) or time (RFC 3339).
    #[arg(long, value_parser = parse_time)]
    to: Option<DateTime<Utc>>,
    /// Only entries before this position (the last one of the previous page).
    #[arg(long)]
    before: Option<u64>,
    /// Entries at most (up to 1000).
    #[arg(long, default_value_t = 50)]
    limit: u32,
    /// CSV instead of text (all fields, one entry per line).
    #[arg(long, conflicts_with = "json")]
    csv: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum CategoryArg {
    Access,
    Governance,
    Operations,
}

fn parse_time(s: &str) -> std::result::Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map(|d| d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc())
        .map_err(|_| "expected YYYY-MM-DD or an RFC 3339 time".to_owned())
}

pub(crate) async fn run(dir: &DataDir, args: AuditArgs) -> Result<()> {
    if let AuditCommand::VerifySegment {
        file,
        key: Some(key),
    } = &args.command
    {
        let key = PublicKey::from_base64(key.trim())
            .map_err(|e| anyhow::anyhow!("--key is not an Ed25519 public key: {e}"))?;
        return verify_segment(file, |bytes| check_segment(bytes, &key));
    }
    let s = Session::open(dir, &args.as_).await?;
    let audit = s.home.audit();
    match args.command {
        AuditCommand::VerifySegment { file, .. } => {
            verify_segment(&file, |bytes| audit.check_segment(bytes))
        }
        AuditCommand::Archive { older_than_days } => {
            let retention = chrono::Duration::days(i64::from(older_than_days));
            let segments = audit.archive(&s.who, retention).await?;
            if s.json {
                return s.print_json(&segments.iter().map(segment_json).collect::<Vec<_>>());
            }
            for seg in &segments {
                out!(
                    "archived entries {} to {} into {}",
                    seg.first,
                    seg.end - 1,
                    seg.file
                );
            }
            if segments.is_empty() {
                out!("no entry older than {older_than_days} day(s) is left to archive");
            }
            Ok(())
        }
        AuditCommand::Segments => {
            let segments = audit.segments().await?;
            if s.json {
                return s.print_json(&segments.iter().map(segment_json).collect::<Vec<_>>());
            }
            for seg in &segments {
                out!(
                    "{:>10} {:>10}  {}  head {:>10}  {}  {}",
                    seg.first,
                    seg.end,
                    when(&seg.archived_at),
                    seg.head_size,
                    seg.sha256,
                    seg.file
                );
            }
            if segments.is_empty() {
                out!("no archived segment: every entry is in the metadata store");
            }
            Ok(())
        }
        AuditCommand::Verify { from_checkpoint } => {
            let checkpoint: Option<SignedTreeHead> =
                from_checkpoint.as_deref().map(read_json).transpose()?;
            match audit.verify(&s.who, checkpoint.as_ref()).await? {
                Ok(report) => {
                    if s.json {
                        return s.print_json(&serde_json::json!({
                            "consistent": true,
                            "entries": report.entries,
                            "heads": report.heads,
                            "root_hash": hex::encode(report.root),
                            "unsigned_entries": report.unsigned_entries,
                            "latest": report.latest,
                        }));
                    }
                    out!(
                        "The audit log is consistent: {} entries, {} signed tree heads checked.",
                        report.entries,
                        report.heads
                    );
                    if let Some(latest) = &report.latest {
                        out!(
                            "  latest head: {} entries, signed {}",
                            latest.head.tree_size,
                            when(&latest.head.timestamp)
                        );
                    }
                    if checkpoint.is_some() {
                        out!("  the log extends the checkpoint given");
                    }
                    if report.unsigned_entries > 0 {
                        out!(
                            "  {} entries after the latest head (the next head covers them)",
                            report.unsigned_entries
                        );
                    }
                    Ok(())
                }
                Err(found) => {
                    if s.json {
                        s.print_json(&serde_json::json!({
                            "consistent": false,
                            "inconsistency": found.to_string(),
                        }))?;
                    }
                    bail!("the audit log is inconsistent: {found}")
                }
            }
        }
        AuditCommand::Head => {
            if !s.who.has(agora_service::governance::Role::Operator) {
                bail!("signing a tree head needs the operator role");
            }
            let head = match audit.sign_head().await? {
                Some(new) => Some(new),
                None => audit.latest_head().await?,
            };
            print_head(&s, head.as_ref())
        }
        AuditCommand::Heads => {
            let heads = audit.heads().await?;
            if s.json {
                return s.print_json(&heads);
            }
            for h in &heads {
                out!(
                    "{:>10}  {}  {}",
                    h.head.tree_size,
                    when(&h.head.timestamp),
                    hex::encode(h.head.root_hash)
                );
            }
            if heads.is_empty() {
                out!("no tree head signed yet");
            }
            Ok(())
        }
        AuditCommand::Key => {
            let key = audit.public_key();
            if s.json {
                return s.print_json(&key.published());
            }
            out!("Ed25519 public key: {}", key.to_base64());
            out!("key id:             {}", key.key_id());
            Ok(())
        }
        AuditCommand::Log(log) => {
            let filter = AuditFilter {
                category: log.category.map(|c| match c {
                    CategoryArg::Access => Category::Access,
                    CategoryArg::Governance => Category::Governance,
                    CategoryArg::Operations => Category::Operations,
                }),
                event: log.event,
                actor: log.actor,
                project: log.project,
                outcome: log.outcome,
                from: log.from,
                to: log.to,
                before: log.before,
            };
            let entries = audit.entries(&s.who, &filter, log.limit).await?;
            if s.json {
                return s.print_json(&entries);
            }
            if log.csv {
                out!("{}", agora_service::audit::entries_csv(&entries).trim_end());
                return Ok(());
            }
            for e in &entries {
                out!(
                    "{:>8}  {}  {:<22} {:<10} {:<16} {}",
                    e.seq,
                    when(&e.at),
                    e.event,
                    e.outcome,
                    e.actor,
                    e.project.as_deref().unwrap_or("-")
                );
            }
            if let Some(last) = entries.last() {
                out!("(older entries: --before {})", last.seq);
            }
            Ok(())
        }
    }
}

fn segment_json(seg: &ArchivedSegment) -> serde_json::Value {
    serde_json::json!({
        "first": seg.first,
        "end": seg.end,
        "file": seg.file,
        "sha256": seg.sha256,
        "head_size": seg.head_size,
        "archived_at": seg.archived_at,
    })
}

/// Reads `file` and checks it with `check`; exit status 1 when it does not check out.
fn verify_segment(
    file: &std::path::Path,
    check: impl FnOnce(&[u8]) -> std::result::Result<Segment, Inconsistency>,
) -> Result<()> {
    let bytes =
        std::fs::read(file).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
    match check(&bytes) {
        Ok(seg) => {
            let h = &seg.header;
            out!(
                "{}: entries {} to {} prove against the head signed for {} entries at {} (root {})",
                file.display(),
                h.first,
                h.end - 1,
                h.head.head.tree_size,
                h.head.head.timestamp.to_rfc3339(),
                hex::encode(h.head.head.root_hash)
            );
            Ok(())
        }
        Err(found) => bail!("{}: {found}", file.display()),
    }
}

fn print_head(s: &Session, head: Option<&SignedTreeHead>) -> Result<()> {
    if s.json {
        return s.print_json(&head);
    }
    match head {
        Some(h) => {
            out!("tree size: {}", h.head.tree_size);
            out!("signed:    {}", h.head.timestamp.to_rfc3339());
            out!("root hash: {}", hex::encode(h.head.root_hash));
            out!("key id:    {}", h.key_id);
            out!("signature: {}", h.signature);
        }
        None => out!("the audit log is empty: no tree head to sign"),
    }
    Ok(())
}
