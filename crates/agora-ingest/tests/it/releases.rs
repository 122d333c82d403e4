use std::io::{Seek, SeekFrom, Write};

use crate::support::{TestHub, extract, files_under, shared};

const PERSON: &str = "person_id,gender_concept_id,year_of_birth,race_concept_id,ethnicity_concept_id,person_source_value\n1,8507,1980,0,0,A\n2,8532,1990,0,0,B\n";

#[tokio::test(flavor = "multi_thread")]
async fn each_ingest_commits_a_new_numbered_release_and_keeps_the_old_ones() {
    let t = TestHub::new().await;
    let first = extract(&[("person.csv", PERSON)]);
    let r1 = t.ingest("d", first.path()).await.unwrap();
    let r1_files: Vec<_> = files_under(&t.lake_dir());
    let second = extract(&[("person.csv", &format!("{PERSON}3,8532,2000,0,0,C\n"))]);
    let r2 = t.ingest("d", second.path()).await.unwrap();
    assert_eq!((r1.release, r2.release), (1, 2));
    assert_eq!(r2.new_persons, 1);

    let ds = "d".parse().unwrap();
    let releases = t.hub.meta.releases(&ds).await.unwrap();
    assert_eq!(
        releases.iter().map(|r| r.rows).collect::<Vec<_>>(),
        vec![2, 3]
    );
    // Release 1's files are untouched by release 2.
    for f in r1_files {
        assert!(f.exists(), "{} removed", f.display());
    }
    let m1 = t
        .hub
        .lake
        .read_manifest(&releases[0].manifest_path)
        .await
        .unwrap();
    assert_eq!(m1.table("person").unwrap().rows, 2);
    assert_eq!(
        m1.pseudonymization.dropped_columns,
        vec!["person.person_source_value"]
    );
}

/// A failure after some tables were written removes everything the ingest wrote.
#[tokio::test(flavor = "multi_thread")]
async fn failure_mid_ingest_removes_written_files() {
    let t = TestHub::new().await;
    let src = tempfile::tempdir().unwrap();
    for table in ["person", "concept", "observation_period"] {
        std::fs::copy(
            shared(&format!("data/omop/synthea27nj_parquet/{table}.parquet")),
            src.path().join(format!("{table}.parquet")),
        )
        .unwrap();
    }
    // Corrupt the data pages of one table, leaving its footer intact: it opens fine and
    // fails while being read, after the person table has been written.
    let bad = src.path().join("measurement.parquet");
    std::fs::copy(
        shared("data/omop/synthea27nj_parquet/measurement.parquet"),
        &bad,
    )
    .unwrap();
    let mut f = std::fs::OpenOptions::new().write(true).open(&bad).unwrap();
    f.seek(SeekFrom::Start(8)).unwrap();
    f.write_all(&[0xFF; 4096]).unwrap();
    drop(f);

    let err = t.ingest("d", src.path()).await.unwrap_err();
    assert!(
        err.to_string()
            .starts_with("measurement.parquet: cannot read Parquet"),
        "{err}"
    );
    assert!(
        files_under(&t.lake_dir()).is_empty(),
        "{:?}",
        files_under(&t.lake_dir())
    );
    assert!(t.hub.meta.list_datasets().await.unwrap().is_empty());
}

/// Files left by an ingest that died before committing are collected by the next ingest.
#[tokio::test(flavor = "multi_thread")]
async fn next_ingest_collects_garbage_of_uncommitted_releases() {
    let t = TestHub::new().await;
    let src = extract(&[("person.csv", PERSON)]);
    t.ingest("d", src.path()).await.unwrap();
    let orphan = t
        .lake_dir()
        .join("datasets/d/data/dead-release/person/part-00000.parquet");
    std::fs::create_dir_all(orphan.parent().unwrap()).unwrap();
    std::fs::write(&orphan, b"half written").unwrap();
    let orphan_manifest = t.lake_dir().join("datasets/d/manifests/dead-release.json");
    std::fs::write(&orphan_manifest, b"{}").unwrap();
    // A `put` killed mid-write leaves its temporary file, which object-store listings hide.
    let hidden = t
        .lake_dir()
        .join("datasets/d/data/dead-release/person/part-00001.parquet#7");
    std::fs::write(&hidden, b"partial").unwrap();
    let hidden_manifest = t.lake_dir().join("datasets/d/manifests/other-dead.json#3");
    std::fs::write(&hidden_manifest, b"{").unwrap();
    let next = extract(&[("person.csv", &format!("{PERSON}3,8532,2000,0,0,C\n"))]);
    t.ingest("d", next.path()).await.unwrap();
    assert!(!orphan.exists() && !orphan_manifest.exists());
    assert!(!hidden.exists() && !hidden_manifest.exists());
    assert!(!t.lake_dir().join("datasets/d/data/dead-release").exists());
    assert_eq!(
        t.hub
            .meta
            .releases(&"d".parse().unwrap())
            .await
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_ingests_of_one_dataset_are_refused_not_interleaved() {
    let t = TestHub::new().await;
    let lock =
        agora_lake::DatasetLock::try_acquire(&t.hub.locks_dir, &"d".parse().unwrap()).unwrap();
    let src = extract(&[("person.csv", PERSON)]);
    let err = t.ingest("d", src.path()).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "another ingest of dataset d is running; wait for it to finish"
    );
    drop(lock);
    t.ingest("d", src.path()).await.unwrap();
}

/// A dry run reports exactly what a real ingest would, and leaves no trace.
#[tokio::test(flavor = "multi_thread")]
async fn dry_run_reports_like_an_ingest_and_commits_nothing() {
    let t = TestHub::new().await;
    let src = shared("data/omop/synthea27nj_csv");
    let identity = agora_ingest::omop::IdentitySource::SourceValue;
    let dry = t.ingest_opts("d", &src, identity, true).await.unwrap();
    assert!(dry.dry_run && dry.release == 0);
    assert!(
        files_under(&t.lake_dir()).is_empty(),
        "{:?}",
        files_under(&t.lake_dir())
    );
    assert!(t.hub.meta.list_datasets().await.unwrap().is_empty());
    assert!(
        t.hub
            .meta
            .lookup_person_keys(&[1])
            .await
            .unwrap()
            .is_empty()
    );
    let real = t.ingest("d", &src).await.unwrap();
    assert!(!real.dry_run && real.release == 1);
    assert_eq!(
        (
            dry.rows_read,
            dry.rows_stored,
            dry.rows_quarantined,
            dry.new_persons
        ),
        (
            real.rows_read,
            real.rows_stored,
            real.rows_quarantined,
            real.new_persons
        )
    );
}
