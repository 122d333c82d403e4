//! `agora optout`: the citizen opt-out registry, operated on a citizen's behalf.

use agora_core::DataDir;
use agora_service::governance::{IdentityKind, OptOutChannel, OptOutReceipt, Role};
use anyhow::{Result, bail};
use clap::{Args, Subcommand, ValueEnum};

use super::{AsArgs, Session, read_secret_line, when};

#[derive(Debug, Args)]
pub(crate) struct OptoutArgs {
    #[command(flatten)]
    pub as_: AsArgs,
    #[command(subcommand)]
    pub command: OptoutCommand,
}

#[derive(Debug, Subcommand)]
pub(crate) enum OptoutCommand {
    /// Record a citizen's opt-out (operators). The identifier (e.g. the national health
    /// identifier) is read from the first line of standard input, never from the command
    /// line; only its keyed pseudonym is stored. Case, surrounding space and a NIR's
    /// separators do not matter.
    Add {
        #[arg(long, value_enum, default_value_t = Channel::Operator)]
        channel: Channel,
        /// What the identifier must be: `nir` and `uuid` refuse anything else (a mistyped
        /// NIR key, say); `any` takes any identifier.
        #[arg(long, value_enum, default_value_t = Kind::Any)]
        kind: Kind,
    },
    /// The status of an opt-out, by receipt id.
    Status { receipt_id: String },
    /// Withdraw an opt-out, by receipt id.
    Withdraw { receipt_id: String },
    /// How many opt-outs are in force (operators).
    Count,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum Kind {
    /// Any identifier (NIRs and UUIDs are recognised by their shape).
    Any,
    /// A French NIR, its key checked.
    Nir,
    /// A UUID.
    Uuid,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum Channel {
    /// In person, by phone, at a desk.
    Operator,
    /// A letter or a form received by mail.
    Mail,
}

fn print_receipt(s: &Session, r: &OptOutReceipt, note: &str) -> Result<()> {
    if s.json {
        return s.print_json(r);
    }
    out!("{note}");
    out!("  receipt:    {}", r.receipt_id);
    out!(
        "  status:     {}",
        serde_json::to_value(r.status)?.as_str().unwrap_or("?")
    );
    out!(
        "  channel:    {}",
        serde_json::to_value(r.channel)?.as_str().unwrap_or("?")
    );
    out!("  opted out:  {}", when(&r.opted_out_at));
    if let Some(w) = &r.withdrawn_at {
        out!("  withdrawn:  {}", when(w));
    }
    Ok(())
}

fn require_operator(s: &Session, what: &str) -> Result<()> {
    if !s.who.has(Role::Operator) {
        bail!("{what} needs the operator role");
    }
    Ok(())
}

pub(crate) async fn run(dir: &DataDir, args: OptoutArgs) -> Result<()> {
    let s = Session::open(dir, &args.as_).await?;
    let meta = s.meta();
    match args.command {
        OptoutCommand::Add { channel, kind } => {
            require_operator(&s, "recording an opt-out on someone's behalf")?;
            let identifier = read_secret_line("identifier")?;
            let channel = match channel {
                Channel::Operator => OptOutChannel::Operator,
                Channel::Mail => OptOutChannel::Mail,
            };
            let kind = match kind {
                Kind::Any => IdentityKind::Any,
                Kind::Nir => IdentityKind::Nir,
                Kind::Uuid => IdentityKind::Uuid,
            };
            let recorded = meta
                .record_opt_out(&identifier, kind, channel, &s.who.name)
                .await?;
            let note = if recorded.created {
                "Opt-out recorded. Send the receipt id to the citizen: it is how they check or withdraw it."
            } else {
                "An opt-out was already in force for this person."
            };
            print_receipt(&s, &recorded.receipt, note)
        }
        OptoutCommand::Status { receipt_id } => {
            print_receipt(&s, &meta.opt_out_receipt(&receipt_id).await?, "Opt-out")
        }
        OptoutCommand::Withdraw { receipt_id } => print_receipt(
            &s,
            &meta.withdraw_opt_out(&receipt_id, &s.who.name).await?,
            "Opt-out withdrawn.",
        ),
        OptoutCommand::Count => {
            require_operator(&s, "counting opt-outs")?;
            let n = meta.opted_out_count().await?;
            if s.json {
                return s.print_json(&serde_json::json!({ "in_force": n }));
            }
            out!("{n} opt-out(s) in force");
            Ok(())
        }
    }
}
