//! `agora catalogue`: the public catalogue from the command line, and dataset descriptions.

use agora_core::DataDir;
use agora_service::QueryLimits;
use agora_service::governance::{DatasetMetadata, Principal, Role};
use anyhow::{Context, Result, bail};

use crate::cli::{CatalogueArgs, CatalogueCommand, CatalogueFormat};
use crate::commands::local_actor;
use agora_service::Hub;
use agora_service::catalogue::{self, CatalogueEntry, QualitySummary};

pub(crate) async fn run(dir: &DataDir, args: CatalogueArgs) -> Result<()> {
    let home = Hub::open(dir).await?;
    if let Some(CatalogueCommand::Describe { dataset, file }) = args.command {
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("cannot read {}", file.display()))?;
        let metadata: DatasetMetadata = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a dataset description", file.display()))?;
        // Whoever can read the data directory is the local operator.
        let operator = Principal {
            name: local_actor(),
            roles: vec![Role::Operator],
        };
        home.governance()
            .set_dataset_metadata(&operator, &dataset, metadata)
            .await?;
        out!("Described dataset {dataset} in the catalogue");
        return Ok(());
    }
    // The local operator may compute what the server would compute in the background.
    home.warm_profiles(&QueryLimits::default()).await?;
    let mut entries = home.catalogue().await?;
    if let Some(only) = &args.dataset {
        entries.retain(|e| e.dataset == only.as_str());
        if entries.is_empty() {
            bail!("the catalogue has no dataset {only}");
        }
    }
    match args.format {
        CatalogueFormat::Json => out!("{}", serde_json::to_string_pretty(&entries)?),
        CatalogueFormat::Jsonld => out!(
            "{}",
            serde_json::to_string_pretty(&catalogue::healthdcat_ap(&entries, &args.public_url))?
        ),
        CatalogueFormat::Text => print_text(&entries),
    }
    Ok(())
}

fn print_text(entries: &[CatalogueEntry]) {
    if entries.is_empty() {
        out!("The catalogue is empty: ingest a dataset or describe one first");
    }
    for e in entries {
        let title = e
            .metadata
            .as_ref()
            .map_or("(not described yet)", |m| m.title.as_str());
        out!("{}  {title}", e.dataset);
        if !e.model.is_empty() {
            out!("  model: {}, releases: {}", e.model, e.releases);
        }
        if let Some(r) = &e.latest_release {
            let persons = r.persons.map_or_else(|| "?".into(), |p| p.to_string());
            let records = r.records.map_or_else(|| "<10".into(), |n| n.to_string());
            out!(
                "  latest release {} ({}): {} records, {} persons",
                r.number,
                r.created_at,
                records,
                persons
            );
            if let Some(t) = &r.temporal {
                out!("  care events from {} to {}", t.start, t.end);
            }
            match r.quality {
                QualitySummary::Pending => out!("  quality: profile pending"),
                QualitySummary::Profiled { checks, failed } => {
                    out!("  quality: {} of {checks} checks passed", checks - failed)
                }
            }
            let tables: Vec<String> = r
                .tables
                .iter()
                .map(|t| {
                    let rows = t.rows.map_or_else(|| "<10".into(), |n| n.to_string());
                    format!("{} ({rows})", t.name)
                })
                .collect();
            out!("  tables: {}", tables.join(", "));
        }
        out!("");
    }
}
