//! Table Schema ingest: any dataset whose tables are described by Frictionless Table Schema
//! JSON files (the SNDS schemas, for instance).
//!
//! ```text
//! discover datapackage.json resources, or NAME.json + NAME.csv|.tsv pairs ─► parse every schema ─► resolve foreign keys,
//!   propagate person identifiers along them, order parents before children
//!   ─► check every file's header (before writing anything) ─► fingerprint, lock
//!   ─► each resource, parents first: read ─► type each cell ─► constraints ─► foreign keys
//!        ─► primary/unique keys ─► person identifiers → hub person keys ─► quarantine ─► write
//!   ─► quarantine report, schemas used ─► manifest ─► commit (metadata store)
//! ```
//!
//! One resource is one table of the release, named like the resource in lower case (so that
//! unquoted SQL names it), with one column per field, also in lower case, typed as the
//! schema says (see [`value`] for the stored types). A row breaking any rule goes to the
//! quarantine with its file, line, field and reason.
//!
//! **Person identifiers.** A field declared with `"agora:identifier": "person"` in its
//! schema, or named by `person_ids` (`--person-id FIELD`, in every resource that has such a
//! field) holds a person identifier: it is stored as the hub person key (`BIGINT`) derived
//! from the trimmed value exactly as OMOP derives it from `person_source_value`, so the same
//! person links across datasets and models. A field related by a foreign key to an
//! identifier field is one too, whichever side was declared: the raw identifier reaches the
//! lake through no path.
//!
//! **Composite identities.** Fields that identify a person only together (SNDS: number and
//! rank, `--person-id BEN_NIR_PSA+BEN_RNG_GEM` or a schema's `"agora:personIdentity"`) get
//! one hub key for the tuple (`agora_privacy::composite_source_identity`), stored in each
//! of them; the tuple spreads whole along foreign keys that cover it, its first field alone
//! along others, never a qualifier (a rank) alone. A row with part of the tuple is
//! quarantined.
//!
//! **Data Packages.** A `datapackage.json` at the top of the extract lists the resources
//! (see `discover`).
//!
//! **Keys.** Primary keys, `uniqueKeys` and `unique` fields are checked over the whole
//! resource; foreign keys against the rows of the referenced resource that were stored
//! (a reference to a quarantined row is quarantined too). Key sets hold a 128-bit hash
//! per row (about 32 bytes of memory per row and key). Foreign keys to resources that are
//! not part of the ingest, to the resource itself, or within a cycle are reported as not
//! checked. When the two fields of a foreign-key pair have different types, values are
//! compared as written.

mod discover;
mod schema;
mod value;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::Hasher;
use std::path::PathBuf;

use agora_core::{ColumnDef, ColumnType, TableSchema};
use agora_lake::{PseudonymizationInfo, ReleaseWriter, SourceInfo, TableEntry, WriterOptions};
use agora_privacy::{IdentityKind, PersonKeyer, composite_source_identity, source_identity};
use arrow::array::{Array, ArrayRef, AsArray, Int64Array, StringArray};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget};

use crate::commit::Staged;
use crate::conform::{Reason, Reject, keep_rows};
use crate::error::io_err;
use crate::extract::{ExtractDir, read_file};
use crate::fingerprint::SourcePath;
use crate::keys::KeyResolver;
use crate::lifecycle::Lifecycle;
use crate::quarantine::Quarantine;
use crate::source::{CsvOptions, MAX_DOCUMENT_BYTES, RawBatch, SourceReader, read_ahead};
use crate::{Error, Hub, IngestOptions, IngestReport, Result, TableReport};
use discover::{Found, discover};
use schema::{Field, Schema};
pub use schema::{IDENTIFIER_PROPERTY, PERSON_IDENTITY_PROPERTY};
use value::{Cell, ColumnBuilder, encode_text};

/// What to ingest and how.
#[derive(Debug, Clone)]
pub struct TableSchemaIngest {
    /// Dataset, actor, dry run...; the source is a directory with the data files
    /// (`NAME.csv`, `NAME.tsv`) anywhere below it.
    pub options: IngestOptions,
    /// Where the schemas (`NAME.json`) are, when not beside the data files.
    pub schemas: Option<PathBuf>,
    /// Fields holding person identifiers, in every resource that has them (case-insensitive),
    /// in addition to those the schemas declare. `A+B` names fields that identify a person
    /// together (SNDS: `BEN_NIR_PSA+BEN_RNG_GEM`), the person's number first: in a resource
    /// with all of them, the tuple is keyed as one identity.
    pub person_ids: Vec<String>,
}

/// Which fields make a key, and for each whether it is compared as written rather than
/// typed (foreign-key pairs of different types).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct KeySpec {
    fields: Vec<usize>,
    as_text: Vec<bool>,
}

/// A key whose values must not repeat within the resource.
#[derive(Debug)]
struct UniqueKey {
    spec: KeySpec,
    /// For reasons: `primary key`, `unique key (a, b)`, `value of unique field a`.
    what: String,
}

/// A foreign key checked during this ingest.
#[derive(Debug)]
struct CheckedForeignKey {
    spec: KeySpec,
    parent: usize,
    /// Index of the key set in the parent's `referenced`.
    set: usize,
    parent_name: String,
}

/// One resource's plan.
struct Plan {
    found: Found,
    /// The release table: the resource name, lower-case.
    table: String,
    schema: Schema,
    /// Lower-case field names, for matching the header.
    targets: Vec<String>,
    stored: TableSchema,
    unique: Vec<UniqueKey>,
    foreign: Vec<CheckedForeignKey>,
    /// Keys of this resource that other resources refer to.
    referenced: Vec<KeySpec>,
}

/// Ingests a Table Schema dataset as a new release of `req.options.dataset`: all of it or
/// nothing.
pub async fn ingest_tableschema(hub: &Hub, req: TableSchemaIngest) -> Result<IngestReport> {
    let lifecycle = Lifecycle::start(hub, &req.options);
    let (source, schemas) = (req.options.source.clone(), req.schemas.clone());
    let hub_dir = hub.data_dir.clone();
    let (found, mut warnings) = tokio::task::spawn_blocking(move || {
        let data = ExtractDir::open(&source, &hub_dir)?;
        let schemas = schemas
            .map(|dir| ExtractDir::open(&dir, &hub_dir))
            .transpose()?;
        discover(&data, schemas.as_ref())
    })
    .await
    .map_err(|e| Error::Internal(e.to_string()))??;
    if found.is_empty() {
        return Err(Error::NoTableSchemaInput {
            path: req.options.source.display().to_string(),
        });
    }
    let plans = plan(found, &req.person_ids, &mut warnings)?;
    let person_fields: Vec<String> = plans
        .iter()
        .flat_map(|p| {
            let fields = &p.schema.fields;
            let composite = p.schema.identities.iter().map(|members| {
                let columns: Vec<&str> =
                    members.iter().map(|&i| fields[i].column.as_str()).collect();
                format!("{}.({})", p.table, columns.join("+"))
            });
            let single = fields
                .iter()
                .enumerate()
                .filter(|(i, f)| f.person && !p.schema.identities.iter().any(|m| m.contains(i)))
                .map(|(_, f)| format!("{}.{}", p.table, f.column));
            composite.chain(single).collect::<Vec<_>>()
        })
        .collect();

    // Structural checks on every file before anything is written.
    for plan in &plans {
        let (reader, extra) = open(plan)?;
        for (field, present) in plan.schema.fields.iter().zip(reader.present()) {
            if present {
                continue;
            }
            if field.required {
                return Err(Error::MissingColumn {
                    file: plan.found.data.name.clone(),
                    table: plan.table.clone(),
                    column: field.name.clone(),
                });
            }
            warnings.push(format!(
                "{}: field {} of the schema is not in the file, stored as null",
                plan.found.data.name, field.name
            ));
        }
        warnings.extend(extra.iter().map(|c| {
            format!(
                "{}: {c} is not in the schema, not ingested",
                plan.found.data.name
            )
        }));
    }

    let locked = lifecycle.lock().await?;
    let mut seen = HashSet::new();
    let sources = plans
        .iter()
        .flat_map(|p| {
            // An inline schema is part of the descriptor, fingerprinted once.
            let schema = match p.found.schema_text {
                Some(_) => format!("schema/{}", discover::DATAPACKAGE),
                None => format!("schema/{}", p.found.schema_name),
            };
            [
                SourcePath {
                    relative: schema,
                    path: p.found.schema_path.clone(),
                },
                SourcePath {
                    relative: format!("data/{}", p.found.data.name),
                    path: p.found.data.path.clone(),
                },
            ]
        })
        .filter(|s| seen.insert(s.relative.clone()))
        .collect();
    let admitted = locked.admit(sources).await?;

    let identity = if person_fields.is_empty() {
        "none: no field is declared a person identifier".to_owned()
    } else {
        format!(
            "person identifiers (hub person keys): {}",
            person_fields.join(", ")
        )
    };
    let req = &req;
    admitted
        .write(|writer| async move {
            write_release(hub, req, &writer, plans, warnings, identity).await
        })
        .await
}

fn open(plan: &Plan) -> Result<(SourceReader, Vec<String>)> {
    SourceReader::open_with(
        &plan.found.data,
        &plan.targets,
        CsvOptions {
            empty_is_null: false,
            ..CsvOptions::default()
        },
    )
}

/// Parses the schemas and links them: foreign keys, person identifiers, key sets.
fn plan(found: Vec<Found>, person_ids: &[String], warnings: &mut Vec<String>) -> Result<Vec<Plan>> {
    let mut unknown_constraints = BTreeMap::new();
    let mut parsed = Vec::with_capacity(found.len());
    let mut tables: HashMap<String, String> = HashMap::new();
    for f in found {
        let text = match &f.schema_text {
            Some(inline) => inline.clone(),
            None => {
                let bytes = std::fs::metadata(&f.schema_path)
                    .map_err(io_err(&f.schema_path))?
                    .len();
                if bytes > MAX_DOCUMENT_BYTES {
                    return Err(Error::DocumentTooLarge {
                        file: f.schema_name.clone(),
                        max: MAX_DOCUMENT_BYTES,
                    });
                }
                read_file(&f.schema_path, &f.schema_name)?
            }
        };
        let mut schema =
            schema::parse(&f.schema_name, &text, person_ids, &mut unknown_constraints)?;
        warnings.append(&mut schema.notes);
        let table = table_name(&f.name);
        if let Some(first) = tables.insert(table.clone(), f.schema_name.clone()) {
            return Err(Error::DuplicateResource {
                resource: table,
                first,
                second: f.schema_name.clone(),
            });
        }
        parsed.push((f, table, schema));
    }
    for field in person_ids.iter().flat_map(|spec| spec.split('+')) {
        let known = parsed.iter().any(|(_, _, s)| {
            s.fields
                .iter()
                .any(|f| f.name.eq_ignore_ascii_case(field.trim()))
        });
        if !known {
            return Err(Error::UnknownPersonField {
                field: field.to_owned(),
            });
        }
    }
    for (name, fields) in &unknown_constraints {
        warnings.push(format!(
            "constraint {name} ({fields} fields) is not part of Table Schema: not checked"
        ));
    }

    // Foreign-key edges: (child, foreign key index, parent, parent field indices).
    let by_name: HashMap<String, usize> = parsed
        .iter()
        .enumerate()
        .map(|(i, (f, _, _))| (f.name.to_lowercase(), i))
        .collect();
    let mut edges = Vec::new();
    let mut absent: BTreeMap<String, usize> = BTreeMap::new();
    for (child, (f, _, schema)) in parsed.iter().enumerate() {
        for (k, fk) in schema.foreign_keys.iter().enumerate() {
            let parent = match &fk.resource {
                None => child,
                Some(name) => match by_name.get(&name.to_lowercase()) {
                    Some(&p) => p,
                    None => {
                        *absent.entry(name.clone()).or_default() += 1;
                        continue;
                    }
                },
            };
            let parent_schema = &parsed[parent].2;
            let parent_fields = fk
                .reference_fields
                .iter()
                .map(|name| {
                    parent_schema
                        .fields
                        .iter()
                        .position(|pf| pf.name == *name)
                        .ok_or_else(|| Error::Schema {
                            file: f.schema_name.clone(),
                            reason: format!(
                                "foreign key {}: resource {} has no field {name}",
                                k + 1,
                                parsed[parent].0.name
                            ),
                        })
                })
                .collect::<Result<Vec<_>>>()?;
            edges.push((child, k, parent, parent_fields));
        }
    }
    if !absent.is_empty() {
        let names: Vec<&String> = absent.keys().collect();
        let shown = names
            .iter()
            .take(10)
            .map(|s| s.as_str())
            .collect::<Vec<_>>();
        let more = names.len().saturating_sub(shown.len());
        warnings.push(format!(
            "foreign keys to resources not in this ingest were not checked ({} key{}, {} resource{}): {}{}",
            absent.values().sum::<usize>(),
            if absent.values().sum::<usize>() == 1 { "" } else { "s" },
            names.len(),
            if names.len() == 1 { "" } else { "s" },
            shown.join(", "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            }
        ));
    }

    // Person identifiers spread along foreign keys, both ways, until nothing changes. A
    // composite identity spreads whole along a foreign key that covers all its fields; alone,
    // only its first field (the person's number) spreads, never what qualifies it (a rank
    // alone identifies no one, and SNDS ranks refer to a nomenclature of ranks).
    loop {
        let mut changed = false;
        for (child, k, parent, parent_fields) in &edges {
            let child_fields = parsed[*child].2.foreign_keys[*k].fields.clone();
            for (from, to, from_fields, to_fields) in [
                (*parent, *child, parent_fields, &child_fields),
                (*child, *parent, &child_fields, parent_fields),
            ] {
                for members in parsed[from].2.identities.clone() {
                    let mapped: Option<Vec<usize>> = members
                        .iter()
                        .map(|m| {
                            from_fields
                                .iter()
                                .position(|f| f == m)
                                .map(|at| to_fields[at])
                        })
                        .collect();
                    let target = &mut parsed[to].2;
                    if let Some(mapped) = mapped
                        && !target
                            .identities
                            .iter()
                            .any(|e| e.iter().any(|x| mapped.contains(x)))
                    {
                        for &i in &mapped {
                            target.fields[i].person = true;
                        }
                        target.identities.push(mapped);
                        changed = true;
                    }
                }
            }
            for (&cf, &pf) in child_fields.iter().zip(parent_fields) {
                let person =
                    spreads_alone(&parsed[*child].2, cf) || spreads_alone(&parsed[*parent].2, pf);
                for (r, i) in [(*child, cf), (*parent, pf)] {
                    if person && !parsed[r].2.fields[i].person {
                        parsed[r].2.fields[i].person = true;
                        changed = true;
                    }
                }
            }
        }
        if !changed {
            break;
        }
    }

    let order = topological(parsed.len(), &edges);
    let position: Vec<usize> = {
        let mut p = vec![0; parsed.len()];
        for (at, &r) in order.iter().enumerate() {
            p[r] = at;
        }
        p
    };
    let mut plans: Vec<Plan> = parsed
        .into_iter()
        .map(|(found, table, schema)| {
            let stored = TableSchema {
                columns: schema
                    .fields
                    .iter()
                    .map(|f| ColumnDef {
                        name: f.column.clone(),
                        ty: if f.person {
                            ColumnType::Int64
                        } else {
                            f.ty.column_type()
                        },
                        nullable: !f.required,
                    })
                    .collect(),
            };
            let mut unique = Vec::new();
            let typed = |fields: Vec<usize>| KeySpec {
                as_text: vec![false; fields.len()],
                fields,
            };
            if !schema.primary_key.is_empty() {
                unique.push(UniqueKey {
                    spec: typed(schema.primary_key.clone()),
                    what: "primary key".into(),
                });
            }
            for key in &schema.unique_keys {
                unique.push(UniqueKey {
                    spec: typed(key.clone()),
                    what: format!("unique key ({})", schema.field_names(key)),
                });
            }
            for (i, f) in schema.fields.iter().enumerate() {
                if f.unique {
                    unique.push(UniqueKey {
                        spec: typed(vec![i]),
                        what: format!("value of unique field {}", f.name),
                    });
                }
            }
            Plan {
                targets: schema
                    .fields
                    .iter()
                    .map(|f| f.name.to_ascii_lowercase())
                    .collect(),
                found,
                table,
                stored,
                unique,
                foreign: Vec::new(),
                referenced: Vec::new(),
                schema,
            }
        })
        .collect();

    for (child, k, parent, parent_fields) in edges {
        let child_fields = plans[child].schema.foreign_keys[k].fields.clone();
        if position[parent] >= position[child] {
            let why = if parent == child {
                "refers to its own resource"
            } else {
                "is part of a cycle of foreign keys"
            };
            warnings.push(format!(
                "{}: foreign key {} ({}) {why}: not checked",
                plans[child].found.schema_name,
                k + 1,
                plans[child].schema.field_names(&child_fields)
            ));
            continue;
        }
        let as_text: Vec<bool> = child_fields
            .iter()
            .zip(&parent_fields)
            .map(|(&c, &p)| {
                let (c, p) = (
                    &plans[child].schema.fields[c],
                    &plans[parent].schema.fields[p],
                );
                std::mem::discriminant(&c.ty) != std::mem::discriminant(&p.ty)
                    || c.ty.column_type() != p.ty.column_type()
            })
            .collect();
        let parent_spec = KeySpec {
            fields: parent_fields,
            as_text: as_text.clone(),
        };
        let set = match plans[parent]
            .referenced
            .iter()
            .position(|s| *s == parent_spec)
        {
            Some(i) => i,
            None => {
                plans[parent].referenced.push(parent_spec);
                plans[parent].referenced.len() - 1
            }
        };
        let parent_name = plans[parent].table.clone();
        plans[child].foreign.push(CheckedForeignKey {
            spec: KeySpec {
                fields: child_fields,
                as_text,
            },
            parent,
            set,
            parent_name,
        });
    }
    // Parents first; `foreign[].parent` indexes the plans in this order.
    let mut slots: Vec<Option<Plan>> = plans.into_iter().map(Some).collect();
    let mut ordered: Vec<Plan> = order
        .iter()
        .map(|&i| slots[i].take().expect("each resource once"))
        .collect();
    for plan in &mut ordered {
        for fk in &mut plan.foreign {
            fk.parent = position[fk.parent];
        }
    }
    Ok(ordered)
}

/// Whether field `i` makes the field a foreign key pairs it with a person identifier: a
/// person field, unless it only qualifies a composite identity (not its first field).
fn spreads_alone(schema: &Schema, i: usize) -> bool {
    schema.fields[i].person
        && !schema
            .identities
            .iter()
            .any(|members| members.iter().skip(1).any(|&q| q == i))
}

/// Resources ordered parents first (Kahn's algorithm, by name among equals). A cycle is
/// broken at its first resource by index; the foreign keys that then point forward are the
/// ones reported as not checked.
fn topological(n: usize, edges: &[(usize, usize, usize, Vec<usize>)]) -> Vec<usize> {
    let mut parents: Vec<HashSet<usize>> = vec![HashSet::new(); n];
    for (child, _, parent, _) in edges {
        if child != parent {
            parents[*child].insert(*parent);
        }
    }
    let mut done = vec![false; n];
    let mut order = Vec::with_capacity(n);
    while order.len() < n {
        let ready = (0..n).find(|&r| !done[r] && parents[r].iter().all(|&p| done[p]));
        let next = ready.unwrap_or_else(|| (0..n).find(|&r| !done[r]).expect("one left"));
        done[next] = true;
        order.push(next);
    }
    order
}

/// The release table of a resource: lower case, `[a-z0-9_]` only.
fn table_name(resource: &str) -> String {
    let name: String = resource
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        name
    } else {
        format!("t_{name}")
    }
}

#[allow(clippy::too_many_arguments)]
async fn write_release(
    hub: &Hub,
    req: &TableSchemaIngest,
    writer: &ReleaseWriter,
    plans: Vec<Plan>,
    warnings: Vec<String>,
    identity: String,
) -> Result<Staged> {
    let resolver = KeyResolver::new(
        PersonKeyer::new(&hub.secret),
        hub.meta.clone(),
        tokio::runtime::Handle::current(),
    );
    let progress = if req.options.progress {
        MultiProgress::with_draw_target(ProgressDrawTarget::stderr())
    } else {
        MultiProgress::with_draw_target(ProgressDrawTarget::hidden())
    };
    type KeptSchema = (String, PathBuf, String, Option<Vec<u8>>);
    let schemas: Vec<KeptSchema> = plans
        .iter()
        .map(|p| {
            let f = &p.found;
            (
                p.table.clone(),
                f.schema_path.clone(),
                f.schema_name.clone(),
                f.schema_text.clone(),
            )
        })
        .collect();
    let files: Vec<(String, u64)> = plans
        .iter()
        .map(|p| (p.found.data.name.clone(), p.found.data.bytes))
        .collect();
    let mut forms: Vec<&'static str> = plans.iter().map(|p| p.found.data.form.name()).collect();
    forms.sort();
    forms.dedup();
    let job = Job {
        writer: writer.clone(),
        progress,
    };
    let out = tokio::task::spawn_blocking(move || job.run(plans, resolver))
        .await
        .map_err(|e| Error::Internal(e.to_string()))??;

    // The schemas are kept with the release: what each column means and how it was checked.
    for (table, path, name, inline) in schemas {
        let bytes = match inline {
            Some(bytes) => bytes,
            // Opened as every extract file is: a file swapped for a link meanwhile is refused.
            None => tokio::task::spawn_blocking(move || read_file(&path, &name))
                .await
                .map_err(|e| Error::Internal(e.to_string()))??,
        };
        writer
            .put_file(&format!("schemas/{table}.json"), bytes)
            .await?;
    }
    Ok(Staged {
        source: SourceInfo {
            model: "tableschema".into(),
            converted_from: None,
            form: forms.join("+"),
            files,
        },
        pseudonymization: PseudonymizationInfo {
            key_id: hub.secret.key_id(),
            identity,
            dropped_columns: Vec::new(),
        },
        tables: out.entries,
        rows_read: out.reports.iter().map(|r| r.rows_read).sum(),
        reports: out.reports,
        quarantine: out.quarantine,
        new_persons: out.new_persons,
        warnings,
    })
}

/// The blocking part of an ingest, run on a worker thread (plus one reader thread).
struct Job {
    writer: ReleaseWriter,
    progress: MultiProgress,
}

struct JobOutput {
    entries: Vec<TableEntry>,
    reports: Vec<TableReport>,
    quarantine: Quarantine,
    new_persons: Vec<(i64, i64)>,
}

/// Per resource, per referenced key: the hashes of the stored rows' keys.
type KeySets = Vec<Vec<HashSet<u128>>>;

impl Job {
    fn run(self, plans: Vec<Plan>, mut resolver: KeyResolver) -> Result<JobOutput> {
        let mut sets: KeySets = plans
            .iter()
            .map(|p| vec![HashSet::new(); p.referenced.len()])
            .collect();
        let mut out = JobOutput {
            entries: Vec::new(),
            reports: Vec::new(),
            quarantine: Quarantine::default(),
            new_persons: Vec::new(),
        };
        for (i, plan) in plans.iter().enumerate() {
            let mut own = std::mem::take(&mut sets[i]);
            let (entry, report) =
                self.write_resource(plan, &mut resolver, &sets, &mut own, &mut out.quarantine)?;
            sets[i] = own;
            out.entries.push(entry);
            out.reports.push(report);
        }
        out.entries.sort_by(|a, b| a.name.cmp(&b.name));
        out.reports.sort_by(|a, b| a.table.cmp(&b.table));
        out.new_persons = resolver.new_persons;
        Ok(out)
    }

    fn write_resource(
        &self,
        plan: &Plan,
        resolver: &mut KeyResolver,
        parents: &KeySets,
        referenced: &mut [HashSet<u128>],
        quarantine: &mut Quarantine,
    ) -> Result<(TableEntry, TableReport)> {
        let (reader, _) = open(plan)?;
        let bar = self
            .progress
            .add(progress_bar(&plan.found.data.name, reader.total()));
        let mut table = self
            .writer
            .table(&plan.table, &plan.stored, &WriterOptions::default());
        let arrow_schema = table.schema().clone();
        let names: Vec<String> = plan.schema.fields.iter().map(|f| f.name.clone()).collect();
        let mut unique: Vec<HashSet<u128>> = vec![HashSet::new(); plan.unique.len()];
        let mut rows_read = 0u64;
        let mut rows_quarantined = 0u64;
        std::thread::scope(|scope| -> Result<()> {
            for batch in read_ahead(scope, reader) {
                let (raw, position) = batch?;
                rows_read += raw.len() as u64;
                let lines = raw.lines.clone();
                let checked = check_batch(plan, raw, parents, referenced, &mut unique, resolver)?;
                let rejected = quarantine.record(
                    &plan.table,
                    &plan.found.data.name,
                    &lines,
                    &checked.rejects,
                    &names,
                );
                rows_quarantined += rejected.iter().filter(|r| **r).count() as u64;
                table.write(&keep_rows(&arrow_schema, checked.columns, &rejected)?)?;
                bar.set_position(position);
            }
            Ok(())
        })?;
        bar.finish_and_clear();
        let mut entry = table.finish()?;
        // Readers cannot tell a person identifier from any other BIGINT by its name: the
        // permit workspace re-keys these columns and applies opt-outs through them.
        entry.person_columns = plan
            .schema
            .fields
            .iter()
            .filter(|f| f.person)
            .map(|f| f.column.clone())
            .collect();
        let report = TableReport {
            table: plan.table.clone(),
            file: plan.found.data.name.clone(),
            rows_read,
            rows_stored: entry.rows,
            rows_quarantined,
        };
        Ok((entry, report))
    }
}

struct Checked {
    columns: Vec<ArrayRef>,
    rejects: Vec<Reject>,
}

/// Types and checks one batch, row by row: cells (type, missing values, required,
/// constraints), then foreign keys, then unique keys (only rows still good claim a key), then
/// person identifiers of the good rows become hub person keys.
fn check_batch(
    plan: &Plan,
    raw: RawBatch,
    parents: &KeySets,
    referenced: &mut [HashSet<u128>],
    unique: &mut [HashSet<u128>],
    resolver: &mut KeyResolver,
) -> Result<Checked> {
    let fields = &plan.schema.fields;
    let rows = raw.len();
    let mut rejected = vec![false; rows];
    let mut broken = vec![false; rows];
    let mut bad_cells: HashSet<(usize, usize)> = HashSet::new();
    for (row, column, _) in &raw.row_errors {
        rejected[*row] = true;
        match column {
            None => broken[*row] = true,
            Some(c) => {
                bad_cells.insert((*row, *c));
            }
        }
    }
    let mut rejects: Vec<Reject> = raw.row_errors;
    let strings: Vec<Option<&StringArray>> = raw
        .columns
        .iter()
        .map(|c| c.as_ref().map(|a| a.as_string::<i32>()))
        .collect();
    let mut builders: Vec<Option<ColumnBuilder>> = fields
        .iter()
        .map(|f| (!f.person).then(|| ColumnBuilder::new(f.ty.column_type(), rows)))
        .collect();
    // Key groups: each composite identity, then each other person field alone.
    let composites = &plan.schema.identities;
    let person: Vec<Vec<usize>> = composites
        .iter()
        .cloned()
        .chain(
            (0..fields.len())
                .filter(|&i| fields[i].person && !composites.iter().any(|m| m.contains(&i)))
                .map(|i| vec![i]),
        )
        .collect();
    let mut identities: Vec<Vec<Option<Vec<u8>>>> = vec![Vec::with_capacity(rows); person.len()];
    let mut cells: Vec<Option<Cell<'_>>> = Vec::with_capacity(fields.len());
    let mut texts: Vec<Option<&str>> = Vec::with_capacity(fields.len());
    let mut key = Vec::new();
    for row in 0..rows {
        cells.clear();
        texts.clear();
        let mut reject = |column: Option<usize>, reason: Reason| {
            rejected[row] = true;
            rejects.push((row, column, reason));
        };
        for (c, field) in fields.iter().enumerate() {
            let text = if broken[row] {
                None
            } else {
                strings[c].filter(|a| a.is_valid(row)).map(|a| a.value(row))
            };
            let text = text.filter(|t| !is_missing(field, t));
            let cell = match text {
                None => {
                    if field.required && !broken[row] && !bad_cells.contains(&(row, c)) {
                        reject(Some(c), Reason::MissingRequired);
                    }
                    None
                }
                Some(t) => match field.ty.parse(t) {
                    None => {
                        reject(
                            Some(c),
                            Reason::InvalidValue {
                                expected: field.ty.describe(),
                            },
                        );
                        None
                    }
                    Some(cell) => {
                        if let Some(reason) = field.violation(&cell, t) {
                            reject(Some(c), reason);
                        } else if field.person && t.trim().is_empty() {
                            reject(Some(c), Reason::MissingIdentity);
                        }
                        Some(cell)
                    }
                },
            };
            cells.push(cell);
            texts.push(text);
        }
        if !rejected[row] {
            // A composite identity is all of its values or none of them.
            for members in composites {
                let present = |c: &usize| texts[*c].is_some_and(|t| !t.trim().is_empty());
                if members.iter().any(present)
                    && let Some(&missing) = members.iter().find(|c| !present(c))
                {
                    rejected[row] = true;
                    rejects.push((row, Some(missing), Reason::MissingIdentity));
                    break;
                }
            }
        }
        if !rejected[row] {
            for fk in &plan.foreign {
                if let Some(h) = key_hash(&fk.spec, &cells, &texts, &mut key)
                    && !parents[fk.parent][fk.set].contains(&h)
                {
                    rejected[row] = true;
                    rejects.push((
                        row,
                        Some(fk.spec.fields[0]),
                        Reason::ForeignKey {
                            resource: fk.parent_name.clone(),
                        },
                    ));
                    break;
                }
            }
        }
        if !rejected[row] {
            let hashes: Vec<Option<u128>> = plan
                .unique
                .iter()
                .map(|u| key_hash(&u.spec, &cells, &texts, &mut key))
                .collect();
            let taken = plan
                .unique
                .iter()
                .zip(&hashes)
                .zip(unique.iter())
                .find(|((_, h), set)| h.is_some_and(|h| set.contains(&h)));
            if let Some(((u, _), _)) = taken {
                rejected[row] = true;
                rejects.push((
                    row,
                    Some(u.spec.fields[0]),
                    Reason::Duplicate {
                        key: u.what.clone(),
                    },
                ));
            } else {
                for (set, h) in unique.iter_mut().zip(hashes) {
                    if let Some(h) = h {
                        set.insert(h);
                    }
                }
            }
        }
        if !rejected[row] {
            for (spec, set) in plan.referenced.iter().zip(referenced.iter_mut()) {
                if let Some(h) = key_hash(spec, &cells, &texts, &mut key) {
                    set.insert(h);
                }
            }
        }
        for (p, members) in person.iter().enumerate() {
            // The same identity bytes as OMOP's person_source_value and the opt-out registry
            // (one canonical form, agora-privacy): the same person links. A blank one is no
            // identity. A composite keys the canonical form of each value, length-prefixed.
            let identity = if rejected[row] {
                None
            } else if let [c] = members.as_slice() {
                texts[*c].and_then(|t| source_identity(IdentityKind::Any, t).ok())
            } else {
                // An integer part (a rank) by its value: `01` and `1` are one rank, as the
                // typed foreign-key checks say.
                let values: Option<Vec<std::borrow::Cow<'_, str>>> = members
                    .iter()
                    .map(|&c| match &cells[c] {
                        Some(Cell::Int(i)) => Some(i.to_string().into()),
                        _ => texts[c].map(Into::into),
                    })
                    .collect();
                values.and_then(|values| {
                    let parts: Vec<(IdentityKind, &str)> = values
                        .iter()
                        .map(|v| (IdentityKind::Any, v.as_ref()))
                        .collect();
                    composite_source_identity(&parts).ok()
                })
            };
            identities[p].push(identity);
        }
        for (c, builder) in builders.iter_mut().enumerate() {
            if let Some(b) = builder {
                b.push(cells[c].as_ref());
            }
        }
    }

    // Every field of a group holds the group's key.
    let mut keyed: Vec<Option<ArrayRef>> = vec![None; fields.len()];
    for (ids, members) in identities.iter().zip(&person) {
        let wanted: Vec<&[u8]> = ids.iter().flatten().map(Vec::as_slice).collect();
        let mut keys = resolver.resolve(&wanted)?.into_iter();
        let column: ArrayRef = std::sync::Arc::new(
            ids.iter()
                .map(|id| id.as_ref().and_then(|_| keys.next()))
                .collect::<Int64Array>(),
        );
        for &c in members {
            keyed[c] = Some(column.clone());
        }
    }
    // The quarantine lists a batch's rows in file order (read errors were found first).
    rejects.sort_by_key(|r| r.0);
    let columns = builders
        .into_iter()
        .zip(keyed)
        .map(|(b, k)| match b {
            Some(b) => b.finish(),
            None => k.expect("one key column per person field"),
        })
        .collect();
    Ok(Checked { columns, rejects })
}

fn is_missing(field: &Field, text: &str) -> bool {
    field.missing_values.iter().any(|m| m == text)
}

/// The 128-bit hash of a row's key, or `None` if a key field is null (nulls are never
/// duplicates and never dangling references).
fn key_hash(
    spec: &KeySpec,
    cells: &[Option<Cell<'_>>],
    texts: &[Option<&str>],
    buf: &mut Vec<u8>,
) -> Option<u128> {
    buf.clear();
    for (&f, &as_text) in spec.fields.iter().zip(&spec.as_text) {
        if as_text {
            encode_text(texts[f]?, buf);
        } else {
            cells[f].as_ref()?.encode(buf);
        }
    }
    Some(hash128(buf))
}

/// Two SipHash-1-3 runs (fixed keys, domain-separated): 128 bits, so that two different
/// keys colliding is out of reach for any real resource (about n²/2¹²⁹).
fn hash128(bytes: &[u8]) -> u128 {
    let half = |domain: u8| {
        let mut h = std::hash::DefaultHasher::new();
        h.write_u8(domain);
        h.write(bytes);
        h.finish()
    };
    (u128::from(half(1)) << 64) | u128::from(half(2))
}

fn progress_bar(name: &str, total: u64) -> ProgressBar {
    crate::source::progress_bar(name.to_owned(), total, crate::source::BYTES_PROGRESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_are_lower_case_sql_names() {
        assert_eq!(table_name("T_MCOaaB"), "t_mcoaab");
        assert_eq!(table_name("Causes de décès"), "causes_de_d_c_s");
        assert_eq!(table_name("2020-data"), "t_2020_data");
    }

    #[test]
    fn topological_order_puts_parents_first_and_survives_cycles() {
        let e = |c, p| (c, 0, p, vec![]);
        assert_eq!(topological(3, &[e(0, 1), e(1, 2)]), vec![2, 1, 0]);
        assert_eq!(topological(2, &[e(0, 1), e(1, 0)]), vec![0, 1]);
        assert_eq!(topological(1, &[e(0, 0)]), vec![0]);
    }

    #[test]
    fn key_hashes_differ_for_different_keys() {
        let spec = KeySpec {
            fields: vec![0, 1],
            as_text: vec![false, true],
        };
        let mut buf = Vec::new();
        let a = key_hash(
            &spec,
            &[Some(Cell::Int(1)), None],
            &[Some("1"), Some("x")],
            &mut buf,
        );
        let b = key_hash(
            &spec,
            &[Some(Cell::Int(1)), None],
            &[Some("1"), Some("y")],
            &mut buf,
        );
        assert!(a.is_some() && b.is_some() && a != b);
        assert_eq!(
            key_hash(&spec, &[None, None], &[None, Some("x")], &mut buf),
            None
        );
    }
}
