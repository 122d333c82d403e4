//! A `kill -9` in the middle of an ingest leaves the previous release intact and no
//! half-written release visible; the next ingest cleans up and commits normally.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::Hub;

fn release_dirs(data_dir: &Path, dataset: &str) -> Vec<String> {
    std::fs::read_dir(data_dir.join("lake/datasets").join(dataset).join("data"))
        .map(|rd| {
            rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn has_files(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|rd| {
        rd.flatten()
            .any(|e| e.path().is_file() || (e.path().is_dir() && has_files(&e.path())))
    })
}

#[test]
fn kill_9_mid_ingest_loses_nothing_and_shows_nothing_half_written() {
    let hub = Hub::init();
    let src = tempfile::tempdir().unwrap();
    let src_path = src.path().to_str().unwrap();
    hub.ok(&[
        "generate",
        "omop",
        "--persons",
        "4000",
        "--seed",
        "7",
        "--out",
        src_path,
    ]);
    hub.ingest("crash", src.path());
    let count = "SELECT COUNT(*) AS n FROM measurement";
    let before = hub.sql_tsv("crash", count);
    let committed = release_dirs(hub.data_dir(), "crash");
    assert_eq!(committed.len(), 1);

    // The same files again: a second release, the one killed mid-write.
    let reingest = [
        "ingest",
        "omop",
        "--dataset",
        "crash",
        "--allow-duplicate",
        src_path,
    ];
    let mut child = hub.command(&reingest).spawn().unwrap();
    let started = Instant::now();
    // Kill as soon as the new release has files on disk, i.e. mid-write.
    loop {
        let dirs = release_dirs(hub.data_dir(), "crash");
        let partial = dirs
            .iter()
            .filter(|d| !committed.contains(d))
            .any(|d| has_files(&hub.data_dir().join("lake/datasets/crash/data").join(d)));
        if partial {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "ingest finished before it could be killed"
        );
        assert!(started.elapsed() < Duration::from_secs(120));
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    assert!(!child.wait().unwrap().success());

    // Still exactly release 1, with the same data.
    let listing: serde_json::Value =
        serde_json::from_str(&hub.ok(&["datasets", "--json"])).unwrap();
    assert_eq!(listing[0]["releases"].as_array().unwrap().len(), 1);
    assert_eq!(hub.sql_tsv("crash", count), before);
    assert!(
        hub.fails(&["sql", "--dataset", "crash", "--release", "2", "SELECT 1"])
            .contains("has no release 2")
    );

    // The next ingest sweeps the debris and commits release 2.
    hub.ok(&reingest);
    assert_eq!(release_dirs(hub.data_dir(), "crash").len(), 2);
    assert_eq!(hub.sql_tsv("crash", count), before);
    assert_eq!(
        hub.ok(&[
            "sql",
            "--dataset",
            "crash",
            "--release",
            "1",
            "--format",
            "tsv",
            count
        ]),
        before
    );
}
