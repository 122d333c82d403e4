//! `agora project`: project applications and their review.

use std::path::PathBuf;

use agora_core::DataDir;
use agora_service::governance::{
    Application, ApplicationForm, ApplicationState, NewProjectResult, PermitGrant,
};
use anyhow::{Result, bail};
use chrono::NaiveDate;
use clap::{Args, Subcommand};

use super::{AsArgs, Session, read_json, when};
use agora_service::governance::application_view as view;

#[derive(Debug, Args)]
pub(crate) struct ProjectArgs {
    #[command(flatten)]
    pub as_: AsArgs,
    #[command(subcommand)]
    pub command: ProjectCommand,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ProjectCommand {
    /// The applications you may see (applicants: their own; reviewers and operators:
    /// every submitted one).
    List {
        /// Only applications in this state.
        #[arg(long)]
        state: Option<ApplicationState>,
    },
    /// Applications awaiting review, most urgent deadline first (reviewers, operators).
    Queue,
    /// An application: form, state, review deadlines, the moves open to you.
    Show { id: String },
    /// Who did what, when.
    History { id: String },
    /// Print an example application form (JSON) to start from.
    Template,
    /// Start a draft from a JSON form (`-` reads standard input); you become its owner.
    Create {
        #[arg(long)]
        file: PathBuf,
    },
    /// Replace the form of a draft or of an application sent back for changes.
    Edit {
        id: String,
        #[arg(long)]
        file: PathBuf,
    },
    /// Submit an application for review (applicants).
    Submit {
        id: String,
        #[arg(long)]
        comment: Option<String>,
    },
    /// Move an application: draft, submitted, under_review, changes_requested, rejected,
    /// active, expired or closed (who may do which: see `agora project show`).
    Move {
        id: String,
        to: ApplicationState,
        #[arg(long)]
        comment: Option<String>,
    },
    /// Record the scientific opinion on an application under review (reviewers).
    Opinion {
        id: String,
        #[arg(
            long,
            conflicts_with = "unfavourable",
            required_unless_present = "unfavourable"
        )]
        favourable: bool,
        #[arg(long)]
        unfavourable: bool,
        #[arg(long)]
        summary: String,
    },
    /// Approve an application under review and issue its permit, whose terms are a JSON
    /// file (`-`: standard input) with `datasets` and optionally `members`, `expires_at`,
    /// `output` (reviewers). An `expires_at` beyond the application's requested duration
    /// needs `expiry_beyond_request_reason` (why); none may pass the hub maximum.
    Approve {
        id: String,
        #[arg(long)]
        file: PathBuf,
        #[arg(long)]
        comment: Option<String>,
    },
    /// Attach a result or publication to a registered project (applicants, operators).
    Attach {
        id: String,
        #[arg(long)]
        title: String,
        #[arg(long)]
        url: Option<String>,
        /// YYYY-MM-DD.
        #[arg(long)]
        published_on: Option<NaiveDate>,
    },
}

fn print_application(s: &Session, app: &Application) {
    let f = &app.form;
    out!(
        "{}  {}",
        app.id,
        if f.title.is_empty() {
            "(untitled)"
        } else {
            &f.title
        }
    );
    out!("  state:         {}", app.state);
    out!("  owner:         {}", app.owner);
    if !f.team.is_empty() {
        out!("  team:          {}", f.team.join(", "));
    }
    if !f.organisation.is_empty() {
        out!("  organisation:  {}", f.organisation);
    }
    for d in &f.requested {
        let tables: Vec<&str> = d.tables.iter().map(|t| t.table.as_str()).collect();
        out!("  requests:      {} ({})", d.dataset, tables.join(", "));
    }
    if let Some(p) = f.period {
        out!("  period:        {} to {}", p.from, p.to);
    }
    if f.duration_months > 0 {
        out!("  duration:      {} months", f.duration_months);
    }
    if let Some(p) = &app.permit_id {
        out!("  permit:        {p}");
    }
    for d in &app.deadlines {
        let status = match (&d.completed_at, d.overdue) {
            (Some(c), false) => format!("done {}", when(c)),
            (Some(c), true) => format!("done {} (late)", when(c)),
            (None, false) => "open".into(),
            (None, true) => "open, OVERDUE".into(),
        };
        out!(
            "  step:          {:<20} due {}  {status}",
            d.step.as_str(),
            when(&d.due_at)
        );
    }
    let moves: Vec<&str> = app
        .transitions_for(&s.who)
        .into_iter()
        .map(|m| m.as_str())
        .collect();
    out!(
        "  your moves:    {}",
        if moves.is_empty() {
            "-".into()
        } else {
            moves.join(", ")
        }
    );
}

fn show(s: &Session, app: &Application) -> Result<()> {
    if s.json {
        s.print_json(&view(app, &s.who))
    } else {
        print_application(s, app);
        Ok(())
    }
}

fn list(s: &Session, apps: &[Application]) -> Result<()> {
    if s.json {
        let all: Vec<_> = apps.iter().map(|a| view(a, &s.who)).collect();
        return s.print_json(&all);
    }
    if apps.is_empty() {
        out!("No applications.");
    }
    out!(
        "{:<38} {:<18} {:<14} {:<22} {}",
        "id",
        "state",
        "owner",
        "next deadline",
        "title"
    );
    for a in apps {
        out!(
            "{:<38} {:<18} {:<14} {:<22} {}",
            a.id,
            a.state.as_str(),
            a.owner,
            a.next_deadline().map_or("-".into(), |d| when(&d.due_at)),
            a.form.title
        );
    }
    Ok(())
}

const TEMPLATE: &str = r#"{
  "title": "Care pathways of adults with type 2 diabetes",
  "purpose": "Describe care pathways and follow-up of adults with type 2 diabetes",
  "public_interest": "Improve the follow-up of a frequent chronic disease",
  "legal_basis": "GDPR 6(1)(e) and 9(2)(j); public-interest research",
  "organisation": "University Hospital",
  "requested": [
    {"dataset": "demo", "tables": [
      {"table": "person", "columns": ["person_id", "year_of_birth", "gender_concept_id"]},
      {"table": "condition_occurrence", "columns": []}
    ]}
  ],
  "period": {"from": "2015-01-01", "to": "2024-12-31"},
  "identifiers": ["birth_year_month"],
  "duration_months": 24,
  "team": []
}"#;

pub(crate) async fn run(dir: &DataDir, args: ProjectArgs) -> Result<()> {
    if let ProjectCommand::Template = args.command {
        out!("{TEMPLATE}");
        return Ok(());
    }
    let s = Session::open(dir, &args.as_).await?;
    let meta = s.meta();
    let who = &s.who;
    match args.command {
        ProjectCommand::Template => unreachable!("handled above"),
        ProjectCommand::List { state } => list(&s, &meta.list_applications(who, state).await?),
        ProjectCommand::Queue => list(&s, &meta.review_queue(who).await?),
        ProjectCommand::Show { id } => show(&s, &meta.application(who, &id).await?),
        ProjectCommand::History { id } => {
            let events = meta.application_history(who, &id).await?;
            if s.json {
                return s.print_json(&events);
            }
            for e in &events {
                let from = e.from.map(|f| format!("{f} -> ")).unwrap_or_default();
                out!(
                    "{:>3}  {}  {:<14} {:<22} {from}{}{}",
                    e.seq,
                    when(&e.at),
                    e.actor,
                    serde_json::to_value(e.kind)?.as_str().unwrap_or("?"),
                    e.to,
                    e.comment
                        .as_deref()
                        .map(|c| format!("  \"{c}\""))
                        .unwrap_or_default()
                );
            }
            Ok(())
        }
        ProjectCommand::Create { file } => {
            let form: ApplicationForm = read_json(&file)?;
            show(&s, &meta.create_application(who, form).await?)
        }
        ProjectCommand::Edit { id, file } => {
            let form: ApplicationForm = read_json(&file)?;
            show(&s, &meta.update_application(who, &id, form).await?)
        }
        ProjectCommand::Submit { id, comment } => show(
            &s,
            &meta
                .transition_application(who, &id, ApplicationState::Submitted, comment.as_deref())
                .await?,
        ),
        ProjectCommand::Move { id, to, comment } => {
            if to == ApplicationState::Approved {
                bail!(
                    "approval issues the data permit: use `agora project approve {id} --file TERMS.json`"
                );
            }
            show(
                &s,
                &meta
                    .transition_application(who, &id, to, comment.as_deref())
                    .await?,
            )
        }
        ProjectCommand::Opinion {
            id,
            favourable,
            unfavourable: _,
            summary,
        } => show(
            &s,
            &meta
                .record_scientific_opinion(who, &id, favourable, &summary)
                .await?,
        ),
        ProjectCommand::Approve { id, file, comment } => {
            let grant: PermitGrant = read_json(&file)?;
            let permit = meta
                .approve_application(who, &id, grant, comment.as_deref())
                .await?;
            if s.json {
                return s.print_json(&permit);
            }
            out!(
                "Approved {id}; permit {} issued (version {}).",
                permit.id,
                permit.version
            );
            super::permits::print_permit(&permit);
            Ok(())
        }
        ProjectCommand::Attach {
            id,
            title,
            url,
            published_on,
        } => {
            let result = meta
                .attach_result(
                    who,
                    &id,
                    NewProjectResult {
                        title,
                        url,
                        published_on,
                    },
                )
                .await?;
            if s.json {
                return s.print_json(&result);
            }
            out!(
                "Attached {} to project {id} in the public registry.",
                result.id
            );
            Ok(())
        }
    }
}
