//! Hostile and damaged input: a 1 GiB line (generated as a sparse file, never committed;
//! Table Schema reads CSV with the same reader as OMOP, tested here),
//! truncated files, Latin-1 bytes in UTF-8 files, BOMs, CRLF, quoted newlines, empty and
//! header-only files — for CSV (OMOP, Table Schema) and FHIR NDJSON/Bundles. And a property
//! test: whatever bytes a FHIR file holds, the ingest returns (commits or fails), never panics.

use std::path::Path;

use agora_ingest::fhir::{FhirIdentity, FhirIngest, ingest_fhir};
use agora_ingest::{Error, IngestOptions, IngestReport, MAX_DOCUMENT_BYTES, MAX_RECORD_BYTES};
use proptest::prelude::*;

use crate::support::{TestHub, extract, files_under};

const PERSON_HEADER: &str = "person_id,gender_concept_id,year_of_birth,race_concept_id,ethnicity_concept_id,person_source_value\n";

impl TestHub {
    async fn fhir(&self, source: &Path) -> agora_ingest::Result<IngestReport> {
        ingest_fhir(
            &self.hub,
            FhirIngest {
                options: IngestOptions {
                    dataset: "f".parse().unwrap(),
                    source: source.to_path_buf(),
                    actor: "test".into(),
                    progress: false,
                    dry_run: false,
                    allow_duplicate: true,
                },
                identity: FhirIdentity::PatientId,
                views_dir: None,
                // The readers are under test here, not the FHIR → OMOP mapping.
                omop: false,
                vocabulary: None,
            },
        )
        .await
    }
}

fn stored(report: &IngestReport, table: &str) -> u64 {
    report
        .tables
        .iter()
        .find(|r| r.table == table)
        .map_or(0, |r| r.rows_stored)
}

/// Peak resident memory of this process so far, in bytes.
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// `prefix`, then zero bytes up to 1 GiB: a single line of 1 GiB that takes no disk space.
fn huge_line_file(dir: &Path, name: &str, prefix: &[u8]) {
    let path = dir.join(name);
    std::fs::write(&path, prefix).unwrap();
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(prefix.len() as u64 + (1 << 30)).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_one_gib_line_is_refused_not_buffered() {
    let before = peak_rss();
    let t = TestHub::new().await;

    let omop = tempfile::tempdir().unwrap();
    huge_line_file(omop.path(), "person.csv", PERSON_HEADER.as_bytes());
    let err = t.ingest("big", omop.path()).await.unwrap_err();
    assert!(
        matches!(&err, Error::RecordTooLong { line: 2, max, .. } if *max == MAX_RECORD_BYTES),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "person.csv: line 2: record longer than 64 MiB, refused without reading it whole (a missing quote or newline?)"
    );

    let fhir = tempfile::tempdir().unwrap();
    huge_line_file(fhir.path(), "Patient.ndjson", b"");
    let err = t.fhir(fhir.path()).await.unwrap_err();
    assert!(matches!(err, Error::RecordTooLong { line: 1, .. }), "{err}");
    // Past the first line (where discovery looks), the reading pass refuses it too.
    huge_line_file(
        fhir.path(),
        "Patient.ndjson",
        b"{\"resourceType\":\"Patient\",\"id\":\"p1\"}\n",
    );
    let err = t.fhir(fhir.path()).await.unwrap_err();
    assert!(matches!(err, Error::RecordTooLong { line: 2, .. }), "{err}");

    let bundle = tempfile::tempdir().unwrap();
    huge_line_file(bundle.path(), "b.json", b"{\"resourceType\":\"Bundle\"");
    let err = t.fhir(bundle.path()).await.unwrap_err();
    assert!(
        matches!(&err, Error::DocumentTooLarge { max, .. } if *max == MAX_DOCUMENT_BYTES),
        "{err}"
    );

    assert!(files_under(&t.lake_dir()).is_empty());
    // Buffering any of these lines would have raised the peak by at least 1 GiB.
    let grown = peak_rss().saturating_sub(before);
    assert!(grown < 768 << 20, "peak memory grew by {} MiB", grown >> 20);
}

#[tokio::test(flavor = "multi_thread")]
async fn truncated_csv_files_lose_only_their_last_row() {
    let t = TestHub::new().await;
    // Cut in the middle of a record, then in the middle of a quoted field.
    let src = extract(&[(
        "person.csv",
        &format!("{PERSON_HEADER}1,8507,1980,0,0,A\n2,8532,19"),
    )]);
    let report = t.ingest("cut", src.path()).await.unwrap();
    assert_eq!((report.rows_stored, report.rows_quarantined), (1, 1));
    assert_eq!(
        report.quarantine.counts[0].reason,
        "expected 6 fields, found 3"
    );

    let src = extract(&[(
        "person.csv",
        &format!("{PERSON_HEADER}1,8507,1980,0,0,A\n2,8532,1990,0,\"0,B\n"),
    )]);
    let report = t.ingest("cutquote", src.path()).await.unwrap();
    assert_eq!((report.rows_stored, report.rows_quarantined), (1, 1));
}

#[tokio::test(flavor = "multi_thread")]
async fn latin1_bytes_in_utf8_files_are_quarantined_or_refused_with_their_place() {
    let t = TestHub::new().await;
    let dir = tempfile::tempdir().unwrap();
    let mut person = PERSON_HEADER.as_bytes().to_vec();
    person.extend_from_slice(b"1,8507,1980,0,0,Cl\xe9ment\n2,8532,1990,0,0,B\n");
    std::fs::write(dir.path().join("person.csv"), &person).unwrap();
    let report = t.ingest("latin1", dir.path()).await.unwrap();
    assert_eq!((report.rows_stored, report.rows_quarantined), (1, 1));
    let count = &report.quarantine.counts[0];
    assert_eq!(
        (count.column.as_deref(), count.reason.as_str()),
        (Some("person_source_value"), "not valid UTF-8")
    );

    // In a header, the file cannot be read at all.
    std::fs::write(
        dir.path().join("person.csv"),
        b"person_id,ann\xe9e\n1,1980\n".as_slice(),
    )
    .unwrap();
    let err = t.ingest("latin1", dir.path()).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "person.csv: line 1: header field 2 is not valid UTF-8"
    );

    // In a Table Schema data file: the same quarantine; in the schema itself: refused.
    let ts = tempfile::tempdir().unwrap();
    std::fs::write(
        ts.path().join("t.json"),
        b"{\"fields\": [{\"name\": \"a\", \"description\": \"Ann\xe9e\"}]}".as_slice(),
    )
    .unwrap();
    std::fs::write(ts.path().join("t.csv"), b"a\nx\n".as_slice()).unwrap();
    let err = t.ingest_ts("ts", ts.path(), &[]).await.unwrap_err();
    assert!(
        err.to_string().starts_with("t.json: not valid JSON"),
        "{err}"
    );
    std::fs::write(
        ts.path().join("t.json"),
        r#"{"fields": [{"name": "a"}, {"name": "b"}]}"#,
    )
    .unwrap();
    std::fs::write(
        ts.path().join("t.csv"),
        b"a,b\n\xe9t\xe9,1\nok,2\n".as_slice(),
    )
    .unwrap();
    let report = t.ingest_ts("ts", ts.path(), &[]).await.unwrap();
    assert_eq!((report.rows_stored, report.rows_quarantined), (1, 1));

    // In NDJSON, the line is quarantined (even as the first line of the file).
    let fhir = tempfile::tempdir().unwrap();
    let mut lines = b"{\"resourceType\":\"Patient\",\"id\":\"p\xe9\"}\n".to_vec();
    lines.extend_from_slice(b"{\"resourceType\":\"Patient\",\"id\":\"p2\"}\n");
    std::fs::write(fhir.path().join("Patient.ndjson"), &lines).unwrap();
    let report = t.fhir(fhir.path()).await.unwrap();
    assert_eq!(stored(&report, "fhir_patient"), 1);
    assert_eq!(report.rows_quarantined, 1);
    assert_eq!(report.quarantine.counts[0].reason, "not valid UTF-8");
}

#[tokio::test(flavor = "multi_thread")]
async fn ndjson_with_bom_crlf_blank_lines_and_a_truncated_last_line() {
    let t = TestHub::new().await;
    let fhir = extract(&[(
        "Patient.ndjson",
        "\u{feff}{\"resourceType\":\"Patient\",\"id\":\"p1\"}\r\n\r\n\
         {\"resourceType\":\"Patient\",\"id\":\"p2\"}\r\n\
         {\"resourceType\":\"Patient\",\"id\":\"p3\",\"gend",
    )]);
    let report = t.fhir(fhir.path()).await.unwrap();
    assert_eq!(stored(&report, "fhir_patient"), 2);
    assert_eq!(report.rows_quarantined, 1);
    let count = &report.quarantine.counts[0];
    assert_eq!(count.reason, "not valid JSON");
}

#[tokio::test(flavor = "multi_thread")]
async fn empty_and_header_only_files() {
    let t = TestHub::new().await;
    // Header only: a table with no rows.
    let src = extract(&[("person.csv", PERSON_HEADER)]);
    let report = t.ingest("header", src.path()).await.unwrap();
    assert_eq!((report.tables.len(), report.rows_read), (1, 0));
    let ts = extract(&[
        ("t.json", r#"{"fields": [{"name": "a"}]}"#),
        ("t.csv", "a\r\n"),
    ]);
    let report = t.ingest_ts("header", ts.path(), &[]).await.unwrap();
    assert_eq!((report.tables.len(), report.rows_read), (1, 0));
    // Empty: no header to match columns with, refused (for Table Schema, see structural
    // errors). An empty NDJSON file holds no resource.
    let src = extract(&[("person.csv", "")]);
    let err = t.ingest("empty", src.path()).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "person.csv: line 1: the header row is missing or empty"
    );
    let fhir = extract(&[
        ("Patient.ndjson", ""),
        (
            "Condition.ndjson",
            "{\"resourceType\":\"Patient\",\"id\":\"p1\"}\n",
        ),
    ]);
    let report = t.fhir(fhir.path()).await.unwrap();
    assert_eq!((report.rows_read, stored(&report, "fhir_patient")), (1, 1));
}

/// Bytes drawn mostly from the characters that matter to the readers.
fn hostile_bytes() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        4 => prop::sample::select(b"{}[]\":,\n\r \\ab01".to_vec()),
        1 => any::<u8>(),
    ];
    prop::collection::vec(byte, 0..400)
}

/// A resource-shaped line, sometimes damaged.
fn resource_line() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec!["Patient", "Condition", "Observation", "Nope", ""]),
        "[a-z0-9]{0,4}",
        prop::sample::select(vec!["Patient/p1", "Patient/x", "urn:uuid:1", ""]),
        prop::option::of(0usize..60),
    )
        .prop_map(|(ty, id, reference, cut)| {
            let line = format!(
                r#"{{"resourceType":"{ty}","id":"{id}","subject":{{"reference":"{reference}"}}}}"#
            );
            let keep = line.len().saturating_sub(cut.unwrap_or(0));
            line[..keep].to_owned()
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Whatever an NDJSON file or a Bundle holds, the ingest returns (commits or fails); it
    /// never panics, and a failure leaves nothing in the lake.
    #[test]
    fn fhir_ingest_never_panics(
        raw in hostile_bytes(),
        lines in prop::collection::vec(resource_line(), 0..6),
        bundle in hostile_bytes(),
    ) {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let t = TestHub::new().await;
            let dir = tempfile::tempdir().unwrap();
            let mut ndjson = lines.join("\n").into_bytes();
            ndjson.push(b'\n');
            ndjson.extend_from_slice(&raw);
            std::fs::write(dir.path().join("Condition.ndjson"), &ndjson).unwrap();
            let mut doc = br#"{"resourceType":"Bundle","entry":["#.to_vec();
            doc.extend_from_slice(&bundle);
            std::fs::write(dir.path().join("bundle.json"), &doc).unwrap();
            if t.fhir(dir.path()).await.is_err() {
                assert!(files_under(&t.lake_dir()).is_empty());
            }
            std::fs::remove_file(dir.path().join("bundle.json")).unwrap();
            let _ = t.fhir(dir.path()).await;
        });
    }
}
