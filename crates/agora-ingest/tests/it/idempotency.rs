//! Re-ingesting byte-identical files into a dataset is refused, for every model, before any
//! data is read; `allow_duplicate` adds them anyway; other files make a new release.

use std::path::Path;

use agora_ingest::fhir::{FhirIdentity, FhirIngest, ingest_fhir};
use agora_ingest::omop::{IdentitySource, OmopIngest, ingest_omop};
use agora_ingest::{Error, IngestOptions, IngestReport};

use crate::support::{TestHub, extract, files_under, shared};

const PERSON: &str = "person_id,gender_concept_id,year_of_birth,race_concept_id,ethnicity_concept_id,person_source_value\n1,8507,1980,0,0,A\n2,8532,1990,0,0,B\n";

#[derive(Clone, Copy, Debug)]
enum Model {
    Omop,
    Fhir,
    TableSchema,
}

impl TestHub {
    async fn ingest_model(
        &self,
        model: Model,
        source: &Path,
        dry_run: bool,
        allow_duplicate: bool,
    ) -> agora_ingest::Result<IngestReport> {
        let dataset = "d".parse().unwrap();
        match model {
            Model::Omop => {
                ingest_omop(
                    &self.hub,
                    OmopIngest {
                        options: IngestOptions {
                            dataset,
                            source: source.to_path_buf(),
                            actor: "test".into(),
                            progress: false,
                            dry_run,
                            allow_duplicate,
                        },
                        identity: IdentitySource::SourceValue,
                        cdm_version: None,
                    },
                )
                .await
            }
            Model::Fhir => {
                ingest_fhir(
                    &self.hub,
                    FhirIngest {
                        options: IngestOptions {
                            dataset,
                            source: source.to_path_buf(),
                            actor: "test".into(),
                            progress: false,
                            dry_run,
                            allow_duplicate,
                        },
                        identity: FhirIdentity::PatientId,
                        views_dir: None,
                        omop: true,
                        vocabulary: None,
                    },
                )
                .await
            }
            Model::TableSchema => {
                self.ingest_ts_with("d", source, None, &[], dry_run, allow_duplicate)
                    .await
            }
        }
    }
}

fn source_of(model: Model) -> (Option<tempfile::TempDir>, std::path::PathBuf) {
    match model {
        Model::Omop => {
            let dir = extract(&[("person.csv", PERSON)]);
            let path = dir.path().to_path_buf();
            (Some(dir), path)
        }
        Model::Fhir => (None, shared("data/fhir/bulk_ndjson_10patients")),
        Model::TableSchema => {
            let dir = extract(&[
                (
                    "t.json",
                    r#"{"fields": [{"name": "a", "type": "integer"}]}"#,
                ),
                ("t.csv", "a\n1\n2\n"),
            ]);
            let path = dir.path().to_path_buf();
            (Some(dir), path)
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_files_twice_are_refused_for_every_model() {
    for model in [Model::Omop, Model::Fhir, Model::TableSchema] {
        let t = TestHub::new().await;
        let (_guard, src) = source_of(model);
        let first = t.ingest_model(model, &src, false, false).await.unwrap();
        assert_eq!(first.release, 1);
        assert_eq!(first.source_fingerprint.len(), 64);
        let lake_before = files_under(&t.lake_dir());

        let err = t.ingest_model(model, &src, false, false).await.unwrap_err();
        assert!(
            matches!(&err, Error::AlreadyIngested { release: 1, .. }),
            "{model:?}: {err}"
        );
        assert_eq!(
            err.to_string(),
            "these files are already release 1 of dataset d; nothing was ingested (use --allow-duplicate to add them again as a new release)"
        );
        assert_eq!(files_under(&t.lake_dir()), lake_before, "{model:?}");

        // A dry run validates anyway and says what a real ingest would do.
        let dry = t.ingest_model(model, &src, true, false).await.unwrap();
        assert!(
            dry.warnings.contains(
                &"these files are already release 1 of dataset d: an ingest would be refused without --allow-duplicate"
                    .to_owned()
            ),
            "{model:?}: {:?}",
            dry.warnings
        );
        assert_eq!(dry.source_fingerprint, first.source_fingerprint);

        let again = t.ingest_model(model, &src, false, true).await.unwrap();
        assert_eq!(again.release, 2, "{model:?}");
        assert_eq!(again.new_persons, 0);
        let releases = t.hub.meta.releases(&"d".parse().unwrap()).await.unwrap();
        assert_eq!(releases.len(), 2);
    }
}

/// The fingerprint is of names and bytes, not of where the files are; an appended file is
/// a new release.
#[tokio::test(flavor = "multi_thread")]
async fn other_files_make_a_new_release_and_a_copy_elsewhere_is_recognized() {
    let t = TestHub::new().await;
    let first = extract(&[("person.csv", PERSON)]);
    t.ingest("d", first.path()).await.unwrap();
    let appended = extract(&[("person.csv", &format!("{PERSON}3,8532,2000,0,0,C\n"))]);
    assert_eq!(t.ingest("d", appended.path()).await.unwrap().release, 2);
    let copy = extract(&[("person.csv", PERSON)]);
    let err = t.ingest("d", copy.path()).await.unwrap_err();
    assert!(
        matches!(err, Error::AlreadyIngested { release: 1, .. }),
        "{err}"
    );
    // A file the ingest does not read is not part of the fingerprint.
    let with_notes = extract(&[("person.csv", PERSON), ("README.md", "notes")]);
    let err = t.ingest("d", with_notes.path()).await.unwrap_err();
    assert!(
        matches!(err, Error::AlreadyIngested { release: 1, .. }),
        "{err}"
    );
    // The same files in another dataset are that dataset's first release.
    assert_eq!(t.ingest("e", copy.path()).await.unwrap().release, 1);
}
