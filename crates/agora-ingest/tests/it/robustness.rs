//! Hostile and damaged input: a 1 GiB line (generated as a sparse file, never committed;
//! Table Schema reads CSV with the same reader as OMOP, tested here),
//! truncated files, Latin-1 bytes in UTF-8 files, BOMs, CRLF, quoted newlines, empty and
//! header-only files — for CSV (OMOP, Table Schema) and FHIR NDJSON/Bundles. And a property
//! test: whatever bytes a FHIR file holds, the ingest returns (commits or fails), never panics.

use std::path::Path;

use agora_ingest::fhir::{FhirIdentity, FhirIngest, ingest_fhir};
use agora_ingest::{
    Error, IngestOptions, IngestReport, MAX_DOCUMENT_BYTES, MAX_RECORD_BYTES, UnsafeReason,
};
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

/// A person file and a death file, valid.
fn omop_extract() -> tempfile::TempDir {
    extract(&[
        ("person.csv", &format!("{PERSON_HEADER}1,8507,1980,0,0,A\n")),
        ("death.csv", "person_id,death_date\n1,2020-01-01\n"),
    ])
}

/// Issue 11, item 16: no extract file is read through a link (to a file outside, to the
/// hub's own secret, to another file of the extract, to a directory), nor from the hub's
/// data directory; the error names the file and the reason, never content; nothing is
/// committed.
#[tokio::test(flavor = "multi_thread")]
async fn regression_issue_11_16_links_and_hub_files_are_refused() {
    use agora_core::HasKind;
    use std::os::unix::fs::symlink;
    let t = TestHub::new().await;
    let secret = "hub-secret-bytes-0123456789";
    std::fs::create_dir_all(t.dir.path().join("keys")).unwrap();
    let hub_key = t.dir.path().join("keys/hub.key");
    std::fs::write(&hub_key, secret).unwrap();
    let outside = tempfile::tempdir().unwrap();
    let planted = "person_id,planted_outside\n1,outside-content-42\n";
    std::fs::write(outside.path().join("passwd"), planted).unwrap();
    std::fs::create_dir(outside.path().join("dir")).unwrap();

    let refused = |err: Error, file: &str, reason: UnsafeReason| {
        let message = err.to_string();
        assert!(
            matches!(&err, Error::UnsafeSource { file: f, reason: r } if f == file && *r == reason),
            "{message}"
        );
        assert!(
            message.starts_with(&format!("{file}: refused: it ")),
            "{message}"
        );
        for content in [secret, "outside-content-42", "planted_outside"] {
            assert!(!message.contains(content), "{message}");
        }
        assert_eq!(err.kind(), agora_core::ErrorKind::InvalidInput);
    };
    // A link to a file outside (as to /etc/passwd), as the person file.
    let src = omop_extract();
    std::fs::remove_file(src.path().join("person.csv")).unwrap();
    symlink(outside.path().join("passwd"), src.path().join("person.csv")).unwrap();
    let err = t.ingest("links", src.path()).await.unwrap_err();
    refused(err, "person.csv", UnsafeReason::SymbolicLink);
    // A link to the hub's own key, as the death file.
    let src = omop_extract();
    std::fs::remove_file(src.path().join("death.csv")).unwrap();
    symlink(&hub_key, src.path().join("death.csv")).unwrap();
    let err = t.ingest("links", src.path()).await.unwrap_err();
    refused(err, "death.csv", UnsafeReason::SymbolicLink);
    // A hard link to it: no link to follow, but it is the hub's file.
    let src = omop_extract();
    std::fs::remove_file(src.path().join("death.csv")).unwrap();
    if std::fs::hard_link(&hub_key, src.path().join("death.csv")).is_ok() {
        let err = t.ingest("links", src.path()).await.unwrap_err();
        refused(err, "death.csv", UnsafeReason::HubFile);
    }
    // A link to another file of the extract: refused too (no links at all).
    let src = omop_extract();
    std::fs::rename(src.path().join("death.csv"), src.path().join("d.txt")).unwrap();
    symlink(src.path().join("d.txt"), src.path().join("death.csv")).unwrap();
    let err = t.ingest("links", src.path()).await.unwrap_err();
    refused(err, "death.csv", UnsafeReason::SymbolicLink);
    // A link to a directory.
    let src = omop_extract();
    symlink(outside.path().join("dir"), src.path().join("more")).unwrap();
    let err = t.ingest("links", src.path()).await.unwrap_err();
    refused(err, "more", UnsafeReason::SymbolicLink);
    // FHIR and Table Schema extracts go through the same listing.
    let fhir = extract(&[(
        "Patient.ndjson",
        "{\"resourceType\":\"Patient\",\"id\":\"p\"}\n",
    )]);
    symlink(&hub_key, fhir.path().join("Observation.ndjson")).unwrap();
    let err = t.fhir(fhir.path()).await.unwrap_err();
    refused(err, "Observation.ndjson", UnsafeReason::SymbolicLink);
    let ts = extract(&[
        ("t.json", "{\"fields\": [{\"name\": \"a\"}]}"),
        ("t.csv", "a\nx\n"),
    ]);
    std::fs::create_dir(ts.path().join("sub")).unwrap();
    symlink(outside.path().join("dir"), ts.path().join("sub/nested")).unwrap();
    let err = t.ingest_ts("ts", ts.path(), &[]).await.unwrap_err();
    refused(err, "sub/nested", UnsafeReason::SymbolicLink);
    // An extract inside the hub's data directory.
    let inside = t.dir.path().join("incoming");
    std::fs::create_dir(&inside).unwrap();
    std::fs::write(
        inside.join("person.csv"),
        format!("{PERSON_HEADER}1,8507,1980,0,0,A\n"),
    )
    .unwrap();
    let err = t.ingest("links", &inside).await.unwrap_err();
    refused(err, ".", UnsafeReason::InsideHub);
    // Except the hub's own samples (what `agora demo` generates and ingests).
    let samples = t.dir.path().join("samples/demo");
    std::fs::create_dir_all(&samples).unwrap();
    std::fs::write(
        samples.join("person.csv"),
        format!("{PERSON_HEADER}1,8507,1980,0,0,A\n"),
    )
    .unwrap();
    t.ingest("samples", &samples).await.unwrap();

    // Nothing was committed, and nothing of the targets reached the lake.
    for dataset in ["links", "ts", "f"] {
        assert!(
            t.hub
                .meta
                .release(&dataset.parse().unwrap(), None)
                .await
                .unwrap()
                .is_none()
        );
    }
    for file in files_under(&t.lake_dir()) {
        let bytes = std::fs::read(&file).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains(secret) && !text.contains("outside-content-42"));
    }
}

/// Issue 11, item 16: an unknown column's header text reaches the warnings (which anyone
/// with the release reads) only when it is a plausible column name; otherwise its position.
#[tokio::test(flavor = "multi_thread")]
async fn regression_issue_11_16_planted_header_text_is_never_published() {
    let t = TestHub::new().await;
    let planted = "api_key=sk-live-PLANTED-51f0c2";
    let src = extract(&[(
        "person.csv",
        &format!(
            "{},shoe_size,{planted}\n1,8507,1980,0,0,A,42,x\n",
            PERSON_HEADER.trim_end()
        ),
    )]);
    let report = t.ingest("headers", src.path()).await.unwrap();
    let warnings = report.warnings.join("\n");
    assert!(
        warnings.contains("person.csv: column shoe_size is not in CDM"),
        "{warnings}"
    );
    assert!(
        warnings.contains("person.csv: an unrecognised column at position 8 is not in CDM"),
        "{warnings}"
    );
    let ts = extract(&[
        ("t.json", "{\"fields\": [{\"name\": \"a\"}]}"),
        ("t.csv", &format!("a,{planted}\nx,y\n")),
    ]);
    let ts_report = t.ingest_ts("headers_ts", ts.path(), &[]).await.unwrap();
    let ts_warnings = ts_report.warnings.join("\n");
    assert!(
        ts_warnings.contains("t.csv: an unrecognised column at position 2 is not in the schema"),
        "{ts_warnings}"
    );
    // Not in the reports, nor in any file of the lake (manifests, quarantine reports).
    let reports = format!(
        "{}{}",
        serde_json::to_string(&report).unwrap(),
        serde_json::to_string(&ts_report).unwrap()
    );
    assert!(
        !reports.contains("PLANTED") && !reports.contains("planted"),
        "{reports}"
    );
    let files = files_under(&t.lake_dir());
    assert!(
        files
            .iter()
            .any(|f| f.to_string_lossy().contains("manifests"))
    );
    for file in files {
        let bytes = std::fs::read(&file).unwrap();
        let text = String::from_utf8_lossy(&bytes).to_ascii_lowercase();
        assert!(!text.contains("planted"), "{}", file.display());
    }
}
