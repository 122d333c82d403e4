//! The public catalogue: what the hub holds, for anyone, without login.
//!
//! One entry per dataset, combining three sources:
//! * what operators wrote about it (agora-govern's `dataset_metadata`: title, description,
//!   publisher, legal basis, purpose, coding systems, access rights, keywords);
//! * the latest release's manifest (tables, columns and types, row counts, data model);
//! * the latest release's quality profile (distinct persons, time coverage, check summary),
//!   when computed — see [`crate::profiles`]; never computed on a catalogue request.
//!
//! The fronts call [`Hub::catalogue`](crate::Hub::catalogue) and
//! [`Hub::catalogue_entry`](crate::Hub::catalogue_entry).
//!
//! Only aggregates over whole datasets appear here: no value of any row.
//! [`healthdcat_ap`] renders the same entries as HealthDCAT-AP JSON-LD for the EHDS.

use agora_core::DatasetName;
use agora_govern::{AccessRights, DatasetMetadata};
use agora_quality::QualityProfile;
use chrono::Datelike;
use serde::Serialize;
use serde_json::{Value, json};

use crate::{Hub, Result};

/// Counts below this are not published (the SNDS output rule, k = 10).
const PUBLIC_MIN_PERSONS: u64 = 10;

/// The small-cell rule of every public count (persons, rows, nulls): 0 or at least k. A
/// table of three deaths, or the null rate of one person's column, would describe people.
fn publishable(n: u64) -> bool {
    n == 0 || n >= PUBLIC_MIN_PERSONS
}

/// One dataset as the catalogue shows it.
#[derive(Debug, Clone, Serialize)]
pub struct CatalogueEntry {
    /// The dataset's name.
    pub dataset: String,
    /// The data model of the latest release, e.g. `omop-cdm-5.4`, `fhir-r4`.
    pub model: String,
    /// Operator-written description; `None` until an operator describes the dataset.
    pub metadata: Option<DatasetMetadata>,
    /// How many releases the hub holds.
    pub releases: usize,
    /// The latest release; `None` for a dataset described before its first ingest.
    pub latest_release: Option<ReleaseSummary>,
}

/// What the catalogue says of a dataset's latest release.
#[derive(Debug, Clone, Serialize)]
pub struct ReleaseSummary {
    /// Release number.
    pub number: i64,
    /// When it was committed (RFC 3339, UTC).
    pub created_at: String,
    /// Rows stored, all tables together; `None` when fewer than 10.
    pub records: Option<u64>,
    /// Distinct persons (from the quality profile; `None` while it is pending).
    pub persons: Option<u64>,
    /// Time covered by care events, in whole months; `None` while the profile is pending.
    pub temporal: Option<Temporal>,
    /// The profile's check summary.
    pub quality: QualitySummary,
    /// The model of the extract when the release stores it converted (`omop-cdm-5.3` for a
    /// CDM 5.3 extract stored as CDM 5.4); absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub converted_from: Option<String>,
    /// Tables and columns.
    pub tables: Vec<TableSummary>,
}

/// A period of whole months, `YYYY-MM-DD` bounds inclusive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Temporal {
    /// First day of the first month.
    pub start: String,
    /// Last day of the last month.
    pub end: String,
}

/// The quality checks of a release, in short.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum QualitySummary {
    /// The profile of this release has not been computed yet.
    Pending,
    /// The profile is computed.
    Profiled {
        /// Checks run.
        checks: usize,
        /// Checks over their tolerance.
        failed: usize,
    },
}

/// One table of a release.
#[derive(Debug, Clone, Serialize)]
pub struct TableSummary {
    /// Table name.
    pub name: String,
    /// Rows stored; `None` when between 1 and 9 (withheld, like every small count).
    pub rows: Option<u64>,
    /// Distinct persons, when the table holds persons and at least 10 (or none) do.
    pub persons: Option<u64>,
    /// Columns, in order.
    pub columns: Vec<ColumnSummary>,
}

/// One column of a table.
#[derive(Debug, Clone, Serialize)]
pub struct ColumnSummary {
    /// Column name.
    pub name: String,
    /// Stored type.
    #[serde(rename = "type")]
    pub ty: agora_core::ColumnType,
    /// Whether it may hold nulls.
    pub nullable: bool,
    /// Share of nulls, in whole percent (as a fraction); `None` while the profile is
    /// pending, and when the nulls or the values it implies number between 1 and 9.
    pub null_rate: Option<f64>,
}

/// The catalogue: every dataset, sorted by name.
pub(crate) async fn entries(home: &Hub) -> Result<Vec<CatalogueEntry>> {
    let mut out = Vec::new();
    for info in home.meta.list_datasets().await? {
        let Ok(name) = info.name.parse::<DatasetName>() else {
            continue;
        };
        out.push(entry(home, &name, info.model).await?);
    }
    // Datasets described before their first ingest are catalogued too.
    for d in home.meta.list_dataset_metadata().await? {
        if !out.iter().any(|e| e.dataset == d.dataset) {
            out.push(CatalogueEntry {
                dataset: d.dataset,
                model: String::new(),
                metadata: Some(d.metadata),
                releases: 0,
                latest_release: None,
            });
        }
    }
    out.sort_by(|a, b| a.dataset.cmp(&b.dataset));
    Ok(out)
}

/// One dataset's entry, or `None` when the hub neither holds nor describes it.
pub(crate) async fn entry_for(home: &Hub, name: &DatasetName) -> Result<Option<CatalogueEntry>> {
    match home.meta.dataset(name).await? {
        Some(info) => Ok(Some(entry(home, name, info.model).await?)),
        None => Ok(home
            .meta
            .dataset_metadata(name)
            .await?
            .map(|d| CatalogueEntry {
                dataset: d.dataset,
                model: String::new(),
                metadata: Some(d.metadata),
                releases: 0,
                latest_release: None,
            })),
    }
}

async fn entry(home: &Hub, name: &DatasetName, model: String) -> Result<CatalogueEntry> {
    let releases = home.meta.releases(name).await?;
    let metadata = home.meta.dataset_metadata(name).await?.map(|d| d.metadata);
    let latest_release = match releases.iter().max_by_key(|r| r.number) {
        None => None,
        Some(latest) => {
            let manifest = home.lake.read_manifest(&latest.manifest_path).await?;
            let profile = home.profiles.cached(latest);
            let profiled = |table: &str| {
                profile
                    .as_ref()
                    .and_then(|p| p.tables.iter().find(|t| t.table == table))
            };
            let tables = manifest
                .tables
                .iter()
                .map(|t| {
                    let p = profiled(&t.name);
                    TableSummary {
                        name: t.name.clone(),
                        rows: Some(t.rows).filter(|&n| publishable(n)),
                        persons: p.and_then(|p| p.persons).filter(|&n| publishable(n)),
                        columns: t
                            .schema
                            .columns
                            .iter()
                            .map(|c| ColumnSummary {
                                name: c.name.clone(),
                                ty: c.ty,
                                nullable: c.nullable,
                                null_rate: p.and_then(|p| {
                                    p.columns
                                        .iter()
                                        .find(|pc| pc.column == c.name)
                                        // A rate times the row count gives both counts.
                                        .filter(|pc| {
                                            publishable(pc.nulls)
                                                && publishable(p.rows.saturating_sub(pc.nulls))
                                        })
                                        // Percent precision: exact rates times row counts
                                        // would give exact counts of small groups.
                                        .map(|pc| (pc.null_rate * 100.0).round() / 100.0)
                                }),
                            })
                            .collect(),
                    }
                })
                .collect::<Vec<_>>();
            let quality = match &profile {
                None => QualitySummary::Pending,
                Some(p) => QualitySummary::Profiled {
                    checks: p.checks.len(),
                    failed: p.failed().count(),
                },
            };
            Some(ReleaseSummary {
                number: latest.number,
                created_at: latest.created_at.clone(),
                records: Some(manifest.rows()).filter(|&n| publishable(n)),
                persons: persons(&tables),
                temporal: profile.as_deref().and_then(temporal),
                quality,
                converted_from: manifest.source.converted_from.clone(),
                tables,
            })
        }
    };
    Ok(CatalogueEntry {
        dataset: name.to_string(),
        model,
        metadata,
        releases: releases.len(),
        latest_release,
    })
}

/// Distinct persons of a release: the `person` table's (OMOP), else the largest count of
/// any person-linked table (a lower bound, the best a profile of separate tables gives).
fn persons(tables: &[TableSummary]) -> Option<u64> {
    tables
        .iter()
        .find(|t| t.name == "person")
        .and_then(|t| t.persons)
        .or_else(|| tables.iter().filter_map(|t| t.persons).max())
}

/// Time covered by the care events of a release: the earliest and latest value of the date
/// columns of event tables. Birth and death dates, and implausible future dates, are not
/// care events.
fn temporal(profile: &QualityProfile) -> Option<Temporal> {
    let today = agora_govern::now_utc()[..10].to_owned();
    let mut start: Option<String> = None;
    let mut end: Option<String> = None;
    for table in &profile.tables {
        if matches!(table.table.as_str(), "person" | "death") {
            continue;
        }
        for column in &table.columns {
            let col = column.column.as_str();
            // Only date-like columns carry an `implausible` block in the profile.
            if column.implausible.is_none() && !col.ends_with("_date") {
                continue;
            }
            if col.contains("birth") || col.contains("death") {
                continue;
            }
            let day =
                |v: &Option<String>| v.as_deref().map(|s| s.chars().take(10).collect::<String>());
            if let Some(min) = day(&column.min)
                && start.as_ref().is_none_or(|s| &min < s)
            {
                start = Some(min);
            }
            if let Some(max) = day(&column.max).filter(|m| *m <= today)
                && end.as_ref().is_none_or(|e| &max > e)
            {
                end = Some(max);
            }
        }
    }
    // Whole months: the first and last care event of a small dataset could be one person's.
    let start = chrono::NaiveDate::parse_from_str(&start?, "%Y-%m-%d").ok()?;
    let end = chrono::NaiveDate::parse_from_str(&end?, "%Y-%m-%d").ok()?;
    let month_end = end
        .with_day(1)?
        .checked_add_months(chrono::Months::new(1))?
        .pred_opt()?;
    Some(Temporal {
        start: start.with_day(1)?.to_string(),
        end: month_end.to_string(),
    })
}

/// The EU access-right vocabulary IRI for `rights`.
fn access_right_iri(rights: AccessRights) -> &'static str {
    match rights {
        AccessRights::Public => {
            "http://publications.europa.eu/resource/authority/access-right/PUBLIC"
        }
        AccessRights::Restricted => {
            "http://publications.europa.eu/resource/authority/access-right/RESTRICTED"
        }
        AccessRights::NonPublic => {
            "http://publications.europa.eu/resource/authority/access-right/NON_PUBLIC"
        }
    }
}

/// Canonical identifiers of common coding systems (FHIR/HL7 system URIs where they exist);
/// others are described by title only.
fn coding_system_iri(name: &str) -> Option<&'static str> {
    let key: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_lowercase();
    Some(match key.as_str() {
        "snomedct" | "snomed" => "http://snomed.info/sct",
        "loinc" => "http://loinc.org",
        "rxnorm" => "http://www.nlm.nih.gov/research/umls/rxnorm",
        "icd10" => "http://hl7.org/fhir/sid/icd-10",
        "icd10cm" => "http://hl7.org/fhir/sid/icd-10-cm",
        "atc" => "http://www.whocc.no/atc",
        "cvx" => "http://hl7.org/fhir/sid/cvx",
        "ucum" => "http://unitsofmeasure.org",
        "ccam" => "https://www.atih.sante.fr/ccam",
        "omop" | "omopvocabulary" | "omopstandardizedvocabularies" => {
            "https://ohdsi.github.io/CommonDataModel/"
        }
        _ => return None,
    })
}

/// Specification each data model conforms to.
fn model_spec(model: &str) -> Option<(&'static str, &'static str)> {
    Some(match model {
        "omop-cdm-5.4" => (
            "https://ohdsi.github.io/CommonDataModel/cdm54.html",
            "OMOP Common Data Model 5.4",
        ),
        "omop-cdm-5.3" => (
            "https://ohdsi.github.io/CommonDataModel/cdm53.html",
            "OMOP Common Data Model 5.3",
        ),
        "fhir-r4" => ("http://hl7.org/fhir/R4/", "HL7 FHIR R4"),
        _ => return None,
    })
}

/// Coding systems a data model implies even when nobody listed them.
fn implied_coding_systems(model: &str) -> &'static [&'static str] {
    match model {
        "omop-cdm-5.4" => &["OMOP Standardized Vocabularies"],
        _ => &[],
    }
}

const CONTEXT: &str = r#"{
  "dcat": "http://www.w3.org/ns/dcat#",
  "dct": "http://purl.org/dc/terms/",
  "foaf": "http://xmlns.com/foaf/0.1/",
  "vcard": "http://www.w3.org/2006/vcard/ns#",
  "xsd": "http://www.w3.org/2001/XMLSchema#",
  "dpv": "https://w3id.org/dpv#",
  "dqv": "http://www.w3.org/ns/dqv#",
  "healthdcatap": "http://healthdataportal.eu/ns/health#"
}"#;

/// The catalogue as a HealthDCAT-AP (DCAT-AP 3 health extension) JSON-LD document.
/// `base` is the hub's public URL, used to mint dataset and distribution IRIs.
pub fn healthdcat_ap(entries: &[CatalogueEntry], base: &str) -> Value {
    let base = base.trim_end_matches('/');
    let context: Value = serde_json::from_str(CONTEXT).expect("valid JSON-LD context");
    let datasets: Vec<Value> = entries.iter().map(|e| dcat_dataset(e, base)).collect();
    json!({
        "@context": context,
        "@id": format!("{base}/api/v1/catalogue.jsonld"),
        "@type": "dcat:Catalog",
        "dct:title": "Agora health data hub catalogue",
        "dct:description": "Pseudonymized health datasets available to approved projects under a data permit.",
        "foaf:homepage": { "@id": format!("{base}/") },
        "dcat:dataset": datasets,
    })
}

fn typed(value: impl std::fmt::Display, ty: &str) -> Value {
    json!({ "@value": value.to_string(), "@type": ty })
}

fn dcat_dataset(e: &CatalogueEntry, base: &str) -> Value {
    let id = format!("{base}/api/v1/catalogue/{}", e.dataset);
    let meta = e.metadata.clone().unwrap_or_default();
    let mut d = json!({
        "@id": id,
        "@type": "dcat:Dataset",
        "dct:identifier": e.dataset,
        "dct:title": if meta.title.is_empty() { e.dataset.clone() } else { meta.title.clone() },
        "dct:accessRights": { "@id": access_right_iri(meta.access_rights) },
    });
    let obj = d.as_object_mut().expect("object");
    if !meta.description.is_empty() {
        obj.insert("dct:description".into(), json!(meta.description));
    }
    if !meta.publisher.is_empty() {
        obj.insert(
            "dct:publisher".into(),
            json!({ "@type": "foaf:Agent", "foaf:name": meta.publisher }),
        );
    }
    if let Some(contact) = &meta.contact_point {
        let link = if contact.contains('@') && !contact.contains("://") {
            format!("mailto:{contact}")
        } else {
            contact.clone()
        };
        let key = if link.starts_with("mailto:") {
            "vcard:hasEmail"
        } else {
            "vcard:hasURL"
        };
        obj.insert(
            "dcat:contactPoint".into(),
            json!({ "@type": "vcard:Kind", key: { "@id": link } }),
        );
    }
    if !meta.legal_basis.is_empty() {
        obj.insert(
            "dpv:hasLegalBasis".into(),
            json!({ "@type": "dpv:LegalBasis", "dct:description": meta.legal_basis }),
        );
    }
    if !meta.purpose.is_empty() {
        obj.insert(
            "dpv:hasPurpose".into(),
            json!({ "@type": "dpv:Purpose", "dct:description": meta.purpose }),
        );
    }
    if !meta.keywords.is_empty() {
        obj.insert("dcat:keyword".into(), json!(meta.keywords));
    }
    let mut systems: Vec<String> = meta.coding_systems.clone();
    for implied in implied_coding_systems(&e.model) {
        if !systems.iter().any(|s| s.eq_ignore_ascii_case(implied)) {
            systems.push((*implied).to_owned());
        }
    }
    if !systems.is_empty() {
        let standards: Vec<Value> = systems
            .iter()
            .map(|s| match coding_system_iri(s) {
                Some(iri) => json!({ "@id": iri, "@type": "dct:Standard", "dct:title": s }),
                None => json!({ "@type": "dct:Standard", "dct:title": s }),
            })
            .collect();
        obj.insert("healthdcatap:hasCodingSystem".into(), json!(standards));
    }
    if let Some((iri, title)) = model_spec(&e.model) {
        let stored = json!({ "@id": iri, "@type": "dct:Standard", "dct:title": title });
        // A converted extract conforms to both: as stored, and as its producer made it.
        let source = e
            .latest_release
            .as_ref()
            .and_then(|r| r.converted_from.as_deref())
            .and_then(model_spec);
        let conforms = match source {
            None => stored,
            Some((source_iri, source_title)) => json!([
                stored,
                {
                    "@id": source_iri,
                    "@type": "dct:Standard",
                    "dct:title": format!("{source_title} (the extract as delivered; stored as {title})"),
                },
            ]),
        };
        obj.insert("dct:conformsTo".into(), conforms);
    }
    if let Some(r) = &e.latest_release {
        obj.insert("dcat:version".into(), json!(r.number.to_string()));
        obj.insert("dct:modified".into(), typed(&r.created_at, "xsd:dateTime"));
        if let Some(records) = r.records {
            obj.insert(
                "healthdcatap:numberOfRecords".into(),
                typed(records, "xsd:nonNegativeInteger"),
            );
        }
        if let Some(persons) = r.persons {
            obj.insert(
                "healthdcatap:numberOfUniqueIndividuals".into(),
                typed(persons, "xsd:nonNegativeInteger"),
            );
        }
        if let Some(t) = &r.temporal {
            obj.insert(
                "dct:temporal".into(),
                json!({
                    "@type": "dct:PeriodOfTime",
                    "dcat:startDate": typed(&t.start, "xsd:date"),
                    "dcat:endDate": typed(&t.end, "xsd:date"),
                }),
            );
        }
        if let QualitySummary::Profiled { checks, failed } = r.quality {
            obj.insert(
                "dqv:hasQualityAnnotation".into(),
                json!({
                    "@type": "dqv:QualityAnnotation",
                    "dct:description": format!(
                        "Data-quality profile of release {}: {} of {checks} checks passed.",
                        r.number,
                        checks - failed
                    ),
                }),
            );
        }
        obj.insert(
            "dcat:distribution".into(),
            json!([{
                "@id": format!("{base}/api/v1/datasets/{}/releases/{}", e.dataset, r.number),
                "@type": "dcat:Distribution",
                "dct:title": format!("Release {} (Parquet, queryable under a data permit)", r.number),
                "dct:format": { "@id": "http://publications.europa.eu/resource/authority/file-type/PARQUET" },
                "dcat:accessURL": { "@id": format!("{base}/api/v1/catalogue/{}", e.dataset) },
                "dct:accessRights": { "@id": access_right_iri(meta.access_rights) },
            }]),
        );
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> CatalogueEntry {
        CatalogueEntry {
            dataset: "claims".into(),
            model: "omop-cdm-5.4".into(),
            metadata: Some(DatasetMetadata {
                title: "Insurance claims".into(),
                description: "Reimbursed care".into(),
                publisher: "National insurer".into(),
                contact_point: Some("data@insurer.example".into()),
                legal_basis: "Public health code L1461-1".into(),
                purpose: "Research in the public interest".into(),
                coding_systems: vec!["ICD-10".into(), "CCAM".into(), "Local codes".into()],
                access_rights: AccessRights::NonPublic,
                keywords: vec!["claims".into()],
            }),
            releases: 2,
            latest_release: Some(ReleaseSummary {
                number: 2,
                created_at: "2026-11-01T10:00:00.000000Z".into(),
                records: Some(1000),
                persons: Some(28),
                temporal: Some(Temporal {
                    start: "2010-01-01".into(),
                    end: "2025-12-31".into(),
                }),
                quality: QualitySummary::Profiled {
                    checks: 10,
                    failed: 1,
                },
                converted_from: None,
                tables: vec![],
            }),
        }
    }

    /// Every compact IRI `prefix:local` used as a key or `@type`/`@id` value must have its
    /// prefix in the context, or JSON-LD processors read it as an absolute IRI.
    fn prefixes_used(v: &Value, out: &mut Vec<String>) {
        let check = |s: &str, out: &mut Vec<String>| {
            if let Some((prefix, _)) = s.split_once(':')
                && !prefix.starts_with('@')
                && !["http", "https", "mailto"].contains(&prefix)
            {
                out.push(prefix.to_owned());
            }
        };
        match v {
            Value::Object(map) => {
                for (k, v) in map {
                    if k == "@context" {
                        continue;
                    }
                    check(k, out);
                    if k == "@type"
                        && let Some(s) = v.as_str()
                    {
                        check(s, out);
                    }
                    prefixes_used(v, out);
                }
            }
            Value::Array(items) => items.iter().for_each(|i| prefixes_used(i, out)),
            _ => {}
        }
    }

    #[test]
    fn healthdcat_ap_carries_the_required_health_properties() {
        let doc = healthdcat_ap(&[entry()], "https://hub.example/");
        let d = &doc["dcat:dataset"][0];
        assert_eq!(doc["@type"], "dcat:Catalog");
        assert_eq!(d["@id"], "https://hub.example/api/v1/catalogue/claims");
        assert_eq!(d["healthdcatap:numberOfRecords"]["@value"], "1000");
        assert_eq!(d["healthdcatap:numberOfUniqueIndividuals"]["@value"], "28");
        assert_eq!(d["dct:temporal"]["dcat:startDate"]["@value"], "2010-01-01");
        assert_eq!(
            d["dct:accessRights"]["@id"],
            "http://publications.europa.eu/resource/authority/access-right/NON_PUBLIC"
        );
        assert_eq!(
            d["dpv:hasLegalBasis"]["dct:description"],
            "Public health code L1461-1"
        );
        assert_eq!(
            d["dcat:contactPoint"]["vcard:hasEmail"]["@id"],
            "mailto:data@insurer.example"
        );
        let systems = d["healthdcatap:hasCodingSystem"].as_array().unwrap();
        assert!(
            systems
                .iter()
                .any(|s| s["@id"] == "http://hl7.org/fhir/sid/icd-10")
        );
        assert!(
            systems
                .iter()
                .any(|s| s["dct:title"] == "Local codes" && s["@id"].is_null())
        );
        assert!(
            systems
                .iter()
                .any(|s| s["dct:title"] == "OMOP Standardized Vocabularies"),
            "implied by the OMOP model"
        );

        let mut used = Vec::new();
        prefixes_used(&doc, &mut used);
        let context = doc["@context"].as_object().unwrap();
        for p in used {
            assert!(
                context.contains_key(&p),
                "prefix {p} is not in the @context"
            );
        }
    }

    #[test]
    fn a_converted_extract_conforms_to_both_models() {
        let doc = healthdcat_ap(&[entry()], "https://hub.example/");
        assert_eq!(
            doc["dcat:dataset"][0]["dct:conformsTo"]["dct:title"],
            "OMOP Common Data Model 5.4"
        );
        let mut e = entry();
        e.latest_release.as_mut().unwrap().converted_from = Some("omop-cdm-5.3".into());
        let doc = healthdcat_ap(&[e], "https://hub.example/");
        let conforms = doc["dcat:dataset"][0]["dct:conformsTo"].as_array().unwrap();
        assert_eq!(conforms[0]["dct:title"], "OMOP Common Data Model 5.4");
        assert_eq!(
            conforms[1]["@id"],
            "https://ohdsi.github.io/CommonDataModel/cdm53.html"
        );
        assert_eq!(
            conforms[1]["dct:title"],
            "OMOP Common Data Model 5.3 (the extract as delivered; stored as OMOP Common Data Model 5.4)"
        );
    }

    #[test]
    fn a_dataset_without_release_or_description_is_still_valid() {
        let e = CatalogueEntry {
            dataset: "registry".into(),
            model: String::new(),
            metadata: None,
            releases: 0,
            latest_release: None,
        };
        let doc = healthdcat_ap(&[e], "http://127.0.0.1:8080");
        let d = &doc["dcat:dataset"][0];
        assert_eq!(d["dct:title"], "registry");
        assert!(d.get("healthdcatap:numberOfRecords").is_none());
        assert!(d.get("dcat:distribution").is_none());
    }

    #[test]
    fn temporal_coverage_ignores_birth_death_and_future_dates() {
        let column = |name: &str, min: Option<&str>, max: Option<&str>, dated: bool| {
            serde_json::from_value::<agora_quality::ColumnProfile>(json!({
                "column": name, "nulls": 0, "null_rate": 0.0, "min": min, "max": max,
                "top_values": [],
                "implausible": dated.then(agora_quality::DatePlausibility::default),
            }))
            .unwrap()
        };
        let table = |name: &str, columns| agora_quality::TableProfile {
            table: name.into(),
            rows: 1,
            persons: None,
            columns,
        };
        let profile = QualityProfile {
            dataset: "d".into(),
            release: 1,
            tables: vec![
                table(
                    "person",
                    vec![column(
                        "birth_datetime",
                        Some("1920-01-01T00:00:00"),
                        Some("2020-01-01T00:00:00"),
                        false,
                    )],
                ),
                table(
                    "visit_occurrence",
                    vec![
                        column(
                            "visit_start_date",
                            Some("2001-05-02"),
                            Some("2099-01-01"),
                            true,
                        ),
                        column(
                            "visit_end_date",
                            Some("2001-05-03"),
                            Some("2024-06-12"),
                            true,
                        ),
                        column("visit_concept_id", None, None, false),
                    ],
                ),
            ],
            checks: vec![],
        };
        assert_eq!(
            temporal(&profile),
            Some(Temporal {
                start: "2001-05-01".into(),
                end: "2024-06-30".into()
            })
        );
    }
}
