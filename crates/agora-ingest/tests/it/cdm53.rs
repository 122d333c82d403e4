//! CDM 5.3 extracts: the version detected (from `cdm_source.cdm_version`, else the columns)
//! or forced, and every table stored in the CDM 5.4 shape.

use agora_cdm::CdmVersion;
use agora_ingest::Error;
use agora_ingest::omop::IdentitySource;
use arrow::array::{Array, AsArray};
use arrow::datatypes::Int64Type;

use crate::support::{TestHub, extract, files_under};

const PERSON: &str = "person_id,gender_concept_id,year_of_birth,race_concept_id,ethnicity_concept_id,person_source_value\n\
                      1,8507,1980,0,0,P-1\n\
                      2,8532,1990,0,0,P-2\n";

const VISIT53: &str = "visit_occurrence_id,person_id,visit_concept_id,visit_start_date,visit_end_date,visit_type_concept_id,admitting_source_concept_id,admitting_source_value,discharge_to_concept_id,discharge_to_source_value\n\
                       10,1,9202,2020-01-01,2020-01-01,44818517,8765,from,8536,to\n";

const VISIT54: &str = "visit_occurrence_id,person_id,visit_concept_id,visit_start_date,visit_end_date,visit_type_concept_id,admitted_from_concept_id,discharged_to_concept_id\n\
                       10,1,9202,2020-01-01,2020-01-01,44818517,8765,8536\n";

const DETAIL53: &str = "visit_detail_id,person_id,visit_detail_concept_id,visit_detail_start_date,visit_detail_end_date,visit_detail_type_concept_id,visit_detail_parent_id,admitting_source_concept_id,discharge_to_concept_id,visit_occurrence_id\n\
                        100,1,9202,2020-01-01,2020-01-01,44818517,99,8765,8536,10\n";

const COST53: &str = "cost_id,cost_event_id,cost_domain_id,cost_type_concept_id,reveue_code_source_value\n\
                      1,10,Visit,5031,0450\n";

const CDM_SOURCE53: &str = "cdm_source_name,cdm_source_abbreviation,cdm_holder,source_release_date,cdm_release_date,cdm_version,vocabulary_version\n\
                            Test,T,,2024-01-01,2024-01-01,CDM v5.3.1,v5.0\n";

const METADATA53: &str = "metadata_concept_id,metadata_type_concept_id,name,value_as_string,metadata_date\n\
                          0,0,a,x,2024-01-01\n\
                          0,0,b,y,2024-01-02\n";

const ATTRIBUTE_DEFINITION: &str = "attribute_definition_id,attribute_name,attribute_type_concept_id\n\
                                    1,frailty,0\n";

fn int_column(batches: &[arrow::array::RecordBatch], column: &str) -> Vec<Option<i64>> {
    batches
        .iter()
        .flat_map(|b| {
            let a = b
                .column_by_name(column)
                .unwrap()
                .as_primitive::<Int64Type>();
            (0..a.len())
                .map(|i| a.is_valid(i).then(|| a.value(i)))
                .collect::<Vec<_>>()
        })
        .collect()
}

fn names(batches: &[arrow::array::RecordBatch]) -> Vec<String> {
    batches[0]
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect()
}

fn v54_columns(table: &str) -> Vec<String> {
    agora_cdm::spec(CdmVersion::V5_4)
        .table(table)
        .unwrap()
        .columns
        .iter()
        .map(|c| c.name.clone())
        .filter(|c| !agora_ingest::omop::policy::is_dropped(table, c))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn cdm53_extract_detected_from_cdm_version_is_stored_as_cdm54() {
    let t = TestHub::new().await;
    let src = extract(&[
        ("person.csv", PERSON),
        ("visit_occurrence.csv", VISIT53),
        ("visit_detail.csv", DETAIL53),
        ("cost.csv", COST53),
        ("cdm_source.csv", CDM_SOURCE53),
        ("METADATA.csv", METADATA53),
        ("attribute_definition.csv", ATTRIBUTE_DEFINITION),
    ]);
    let report = t.ingest("old", src.path()).await.unwrap();
    assert_eq!(
        report.converted.as_deref(),
        Some("CDM 5.3 extract, stored as CDM 5.4")
    );
    assert_eq!(report.rows_quarantined, 0, "{:?}", report.quarantine);
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("attribute_definition") && w.contains("stored as it is")),
        "{:?}",
        report.warnings
    );
    assert!(
        !report.warnings.iter().any(|w| w.contains("not ingested")),
        "{:?}",
        report.warnings
    );

    let release = t.read_release("old").await;
    for table in [
        "visit_occurrence",
        "visit_detail",
        "cost",
        "cdm_source",
        "metadata",
    ] {
        assert_eq!(names(&release[table]), v54_columns(table), "{table}");
    }
    let visit = &release["visit_occurrence"];
    assert_eq!(int_column(visit, "admitted_from_concept_id"), [Some(8765)]);
    assert_eq!(int_column(visit, "discharged_to_concept_id"), [Some(8536)]);
    let detail = &release["visit_detail"];
    assert_eq!(int_column(detail, "parent_visit_detail_id"), [Some(99)]);
    assert_eq!(int_column(detail, "admitted_from_concept_id"), [Some(8765)]);
    let cost = &release["cost"];
    let revenue = cost[0]
        .column_by_name("revenue_code_source_value")
        .unwrap()
        .as_string::<i32>();
    assert_eq!(revenue.value(0), "0450");
    let cdm_source = &release["cdm_source"];
    assert_eq!(
        int_column(cdm_source, "cdm_version_concept_id"),
        [Some(agora_cdm::upgrade::CDM_VERSION_CONCEPT_5_3)]
    );
    assert_eq!(
        int_column(&release["metadata"], "metadata_id"),
        [Some(1), Some(2)]
    );
    // A column 5.4 added is there, null.
    let note_like = int_column(&release["metadata"], "metadata_type_concept_id");
    assert_eq!(note_like, [Some(0), Some(0)]);
    let value_as_number = release["metadata"][0]
        .column_by_name("value_as_number")
        .unwrap()
        .null_count();
    assert_eq!(value_as_number, 2);
    // The 5.3-only table is kept under its own name.
    assert_eq!(
        int_column(&release["attribute_definition"], "attribute_definition_id"),
        [Some(1)]
    );

    let info = t
        .hub
        .meta
        .release(&"old".parse().unwrap(), None)
        .await
        .unwrap()
        .unwrap();
    let manifest = t.hub.lake.read_manifest(&info.manifest_path).await.unwrap();
    assert_eq!(manifest.source.model, "omop-cdm-5.4");
    assert_eq!(
        manifest.source.converted_from.as_deref(),
        Some("omop-cdm-5.3")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn cdm53_detected_from_columns_without_cdm_source() {
    let t = TestHub::new().await;
    let src = extract(&[("person.csv", PERSON), ("visit_occurrence.csv", VISIT53)]);
    let report = t.ingest("cols", src.path()).await.unwrap();
    assert!(report.converted.is_some());
    let release = t.read_release("cols").await;
    assert_eq!(
        int_column(&release["visit_occurrence"], "admitted_from_concept_id"),
        [Some(8765)]
    );
    // Nothing tells: 5.4, as before.
    let src = extract(&[("person.csv", PERSON)]);
    let report = t.ingest("plain", src.path()).await.unwrap();
    assert_eq!(report.converted, None);
    let info = t
        .hub
        .meta
        .release(&"plain".parse().unwrap(), None)
        .await
        .unwrap()
        .unwrap();
    let manifest = t.hub.lake.read_manifest(&info.manifest_path).await.unwrap();
    assert_eq!(manifest.source.converted_from, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn cdm_version_flag_overrides_detection() {
    let t = TestHub::new().await;
    // cdm_version says 5.3; the files have no telltale column; the flag says 5.4.
    let src = extract(&[("person.csv", PERSON), ("cdm_source.csv", CDM_SOURCE53)]);
    let err = t
        .ingest_version(
            "forced",
            src.path(),
            IdentitySource::SourceValue,
            false,
            Some(CdmVersion::V5_4),
        )
        .await
        .unwrap_err();
    // As 5.4 the file lacks the required cdm_version_concept_id: the flag was obeyed.
    assert!(err.to_string().contains("cdm_version_concept_id"), "{err}");
    // Forcing 5.3 on 5.4 columns is refused, naming the file and the column.
    let src = extract(&[("person.csv", PERSON), ("visit_occurrence.csv", VISIT54)]);
    let err = t
        .ingest_version(
            "forced",
            src.path(),
            IdentitySource::SourceValue,
            false,
            Some(CdmVersion::V5_3),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::CdmVersion { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "visit_occurrence.csv has admitted_from_concept_id (CDM 5.4), but the extract is read as CDM 5.3 (--cdm-version)"
    );
    // Forcing 5.3 on a file without telltales works.
    let src = extract(&[("person.csv", PERSON), ("metadata.csv", METADATA53)]);
    let report = t
        .ingest_version(
            "forced",
            src.path(),
            IdentitySource::SourceValue,
            false,
            Some(CdmVersion::V5_3),
        )
        .await
        .unwrap();
    assert!(report.converted.is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn conflicting_columns_fail_naming_what_betrays_which_version() {
    let t = TestHub::new().await;
    let mixed = "visit_occurrence_id,person_id,visit_concept_id,visit_start_date,visit_end_date,visit_type_concept_id,admitting_source_concept_id,admitted_from_concept_id\n\
                 10,1,9202,2020-01-01,2020-01-01,44818517,8765,8765\n";
    let src = extract(&[("person.csv", PERSON), ("visit_occurrence.csv", mixed)]);
    let err = t.ingest("mixed", src.path()).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "visit_occurrence.csv has admitting_source_concept_id (CDM 5.3) and admitted_from_concept_id (CDM 5.4): its columns fit neither version"
    );
    assert!(files_under(&t.lake_dir()).is_empty(), "nothing written");

    // Two files that disagree.
    let detail54 = "visit_detail_id,person_id,visit_detail_concept_id,visit_detail_start_date,visit_detail_end_date,visit_detail_type_concept_id,parent_visit_detail_id,visit_occurrence_id\n\
                    100,1,9202,2020-01-01,2020-01-01,44818517,,10\n";
    let src = extract(&[
        ("person.csv", PERSON),
        ("visit_occurrence.csv", VISIT53),
        ("visit_detail.csv", detail54),
    ]);
    let err = t.ingest("mixed", src.path()).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "the extract mixes CDM versions: visit_occurrence.csv has admitting_source_concept_id (CDM 5.3), visit_detail.csv has parent_visit_detail_id (CDM 5.4)"
    );

    // cdm_source says 5.3, a file says 5.4.
    let src = extract(&[
        ("person.csv", PERSON),
        ("cdm_source.csv", CDM_SOURCE53),
        ("visit_occurrence.csv", VISIT54),
    ]);
    let err = t.ingest("mixed", src.path()).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "visit_occurrence.csv has admitted_from_concept_id (CDM 5.4), but the extract is read as CDM 5.3 (cdm_source.cdm_version)"
    );

    // A version Agora does not read: named by line, the value not echoed.
    let v6 = CDM_SOURCE53.replace("CDM v5.3.1", "v6.0.0");
    let src = extract(&[("person.csv", PERSON), ("cdm_source.csv", &v6)]);
    let err = t.ingest("mixed", src.path()).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "cdm_source.csv: line 2: cdm_version names no CDM version Agora reads (5.3, 5.4)"
    );
    assert!(files_under(&t.lake_dir()).is_empty(), "nothing written");
}

#[tokio::test(flavor = "multi_thread")]
async fn misspelt_cost_column_of_cdm531_is_kept() {
    let t = TestHub::new().await;
    let src = extract(&[("person.csv", PERSON), ("cost.csv", COST53)]);
    let report = t.ingest("cost", src.path()).await.unwrap();
    // The misspelling alone betrays 5.3.
    assert!(report.converted.is_some());
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    let release = t.read_release("cost").await;
    let revenue = release["cost"][0]
        .column_by_name("revenue_code_source_value")
        .unwrap()
        .as_string::<i32>()
        .value(0)
        .to_owned();
    assert_eq!(revenue, "0450");
}
