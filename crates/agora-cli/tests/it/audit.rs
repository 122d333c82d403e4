//! The tamper-evident audit log through the real binary: every access and governance event
//! is an entry; heads are signed; `agora audit verify` recomputes everything and names the
//! first inconsistency after each kind of tampering an operator with database access could
//! try (a byte flipped, an entry deleted, two reordered, the log truncated, a whole re-signed
//! fork caught by an outsider's checkpoint, a replaced signing key).

use std::path::Path;

use agora_audit::{AuditEntry, SignedTreeHead, SigningKey, TreeHead, leaf_hash};
use serde_json::Value;

use crate::support::Hub;

/// A fresh hub with one release of `dataset`: `persons` generated persons.
fn hub_with_release(dataset: &str, persons: u32) -> Hub {
    let hub = Hub::init();
    let src = tempfile::tempdir().unwrap();
    hub.ok(&[
        "generate",
        "omop",
        "--persons",
        &persons.to_string(),
        "--seed",
        "3",
        "--out",
        src.path().to_str().unwrap(),
    ]);
    hub.ingest(dataset, src.path());
    hub
}

/// A hub with a release, queries, governance events and heads signed at several sizes.
fn busy_hub() -> Hub {
    let hub = hub_with_release("audited", 60);
    hub.sql_tsv("audited", "SELECT COUNT(*) AS n FROM person");
    hub.ok(&["audit", "head"]);
    hub.ok(&[
        "user",
        "create",
        "ada",
        "--name",
        "Ada",
        "--role",
        "researcher",
    ]);
    hub.ok(&["user", "token", "issue", "ada"]);
    hub.ok(&["audit", "head"]);
    for sql in [
        "SELECT gender_concept_id, COUNT(*) AS n FROM person GROUP BY 1",
        "SELECT COUNT(*) AS n FROM visit_occurrence",
        "SELECT nonsense FROM nowhere",
        "SELECT COUNT(*) AS n FROM measurement",
        "SELECT year_of_birth, COUNT(*) AS n FROM person GROUP BY 1",
        "SELECT COUNT(*) AS n FROM death",
    ] {
        let _ = hub.run(&["sql", "--dataset", "audited", sql]);
    }
    hub.ok(&["audit", "head"]);
    hub
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

fn sql(data_dir: &Path, statements: &[String]) {
    let url = format!("sqlite://{}", data_dir.join("meta.db").display());
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        for s in statements {
            sqlx::query(sqlx::AssertSqlSafe(s.clone()))
                .execute(&pool)
                .await
                .unwrap();
        }
        pool.close().await;
    });
}

fn leaves(data_dir: &Path) -> Vec<(i64, String)> {
    let url = format!("sqlite://{}", data_dir.join("meta.db").display());
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        let rows: Vec<(i64, String)> =
            sqlx::query_as("SELECT seq, leaf FROM audit_entries ORDER BY seq")
                .fetch_all(&pool)
                .await
                .unwrap();
        pool.close().await;
        rows
    })
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A copy of the hub's data directory, to tamper with.
fn copy_of(hub: &Hub) -> tempfile::TempDir {
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for e in std::fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            let target = to.join(e.file_name());
            if e.file_type().unwrap().is_dir() {
                copy(&e.path(), &target);
            } else {
                std::fs::copy(e.path(), &target).unwrap();
            }
        }
    }
    let dir = tempfile::tempdir().unwrap();
    copy(hub.data_dir(), dir.path());
    dir
}

fn verify(data_dir: &Path, checkpoint: Option<&Path>) -> Result<Value, String> {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_agora"));
    cmd.arg("--data-dir")
        .arg(data_dir)
        .args(["audit", "verify", "--json"]);
    if let Some(c) = checkpoint {
        cmd.arg("--from-checkpoint").arg(c);
    }
    let out = cmd.output().unwrap();
    if out.status.success() {
        Ok(json(&String::from_utf8(out.stdout).unwrap()))
    } else {
        Err(String::from_utf8(out.stderr).unwrap())
    }
}

#[test]
fn every_event_is_an_entry_and_the_signed_log_verifies() {
    let hub = busy_hub();
    let entries = json(&hub.ok(&["audit", "log", "--limit", "1000", "--json"]));
    let events: Vec<&str> = entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    for expected in [
        "release.committed",
        "query.answered",
        "query.refused",
        "user.created",
        "token.issued",
    ] {
        assert!(events.contains(&expected), "{expected} in {events:?}");
    }
    // Newest first, dense positions, the SQL text kept, no result.
    let seqs: Vec<u64> = entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, (0..seqs.len() as u64).rev().collect::<Vec<_>>());
    let answered = entries
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event"] == "query.answered")
        .unwrap();
    assert!(
        answered["detail"]["statement"]
            .as_str()
            .unwrap()
            .contains("SELECT")
    );
    // `agora sql` acts as the data directory's local user.
    assert!(answered["actor"].as_str().unwrap().starts_with("local:"));

    let report = verify(hub.data_dir(), None).unwrap();
    assert_eq!(report["consistent"], true);
    assert_eq!(report["entries"], seqs.len());
    assert_eq!(report["heads"], 3);
    assert_eq!(report["unsigned_entries"], 0);

    // Filters, and the CSV an auditor exports.
    let refused = json(&hub.ok(&["audit", "log", "--outcome", "refused", "--json"]));
    assert_eq!(refused.as_array().unwrap().len(), 1);
    let csv = hub.ok(&["audit", "log", "--category", "governance", "--csv"]);
    assert!(csv.starts_with("seq,at,category,event,actor"), "{csv}");
    assert!(csv.contains("user.created"));
    assert!(!csv.contains("query.answered"));

    // A researcher may not read the log.
    let ada = hub.ok(&["user", "token", "issue", "ada"]);
    let out = hub
        .command(&["audit", "log"])
        .env("AGORA_TOKEN", ada.trim())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("operators and auditors"));

    // A refused governance action and a failed ingest are entries too.
    let out = hub
        .command(&[
            "user", "create", "mallory", "--name", "M", "--role", "operator",
        ])
        .env("AGORA_TOKEN", ada.trim())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let empty = tempfile::tempdir().unwrap();
    let _ = hub.run(&[
        "ingest",
        "omop",
        "--dataset",
        "audited",
        empty.path().to_str().unwrap(),
    ]);
    let refused = json(&hub.ok(&["audit", "log", "--event", "governance.refused", "--json"]));
    assert_eq!(refused[0]["actor"], "ada");
    assert_eq!(refused[0]["detail"]["action"], "create_user");
    assert_eq!(refused[0]["outcome"], "refused");
    let failed = json(&hub.ok(&["audit", "log", "--event", "ingest.failed", "--json"]));
    assert_eq!(failed[0]["detail"]["dataset"], "audited");
    assert_eq!(failed[0]["outcome"], "failed");
    assert!(failed[0]["detail"]["error"].as_str().unwrap().len() > 10);
}

#[test]
fn tampering_is_detected_and_the_first_inconsistent_entry_named() {
    let hub = busy_hub();
    let checkpoint_file = hub.data_dir().join("checkpoint.json");
    std::fs::write(&checkpoint_file, hub.ok(&["audit", "head", "--json"])).unwrap();
    let checkpoint: SignedTreeHead =
        serde_json::from_str(&std::fs::read_to_string(&checkpoint_file).unwrap()).unwrap();
    let size = checkpoint.head.tree_size as i64;
    assert!(size > 10);
    assert!(verify(hub.data_dir(), Some(&checkpoint_file)).is_ok());
    let all = leaves(hub.data_dir());
    let target = 4_i64;
    let original = &all[target as usize].1;

    // One byte of one entry flipped.
    let flipped = original.replacen("\"actor\":\"", "\"actor\":\"X", 1);
    let copy = copy_of(&hub);
    sql(
        copy.path(),
        &[format!(
            "UPDATE audit_entries SET leaf = {} WHERE seq = {target}",
            quote(&flipped)
        )],
    );
    let err = verify(copy.path(), None).unwrap_err();
    assert!(
        err.contains(&format!("entry {target} was altered")),
        "{err}"
    );

    // The same, with the stored hash recomputed to match: the signed heads catch it.
    let copy = copy_of(&hub);
    sql(
        copy.path(),
        &[format!(
            "UPDATE audit_entries SET leaf = {}, leaf_hash = '{}' WHERE seq = {target}",
            quote(&flipped),
            hex::encode(leaf_hash(flipped.as_bytes()))
        )],
    );
    let err = verify(copy.path(), None).unwrap_err();
    assert!(err.contains("does not match the log"), "{err}");

    // One entry deleted.
    let copy = copy_of(&hub);
    sql(
        copy.path(),
        &[format!("DELETE FROM audit_entries WHERE seq = {target}")],
    );
    let err = verify(copy.path(), None).unwrap_err();
    assert!(err.contains(&format!("entry {target} is missing")), "{err}");

    // Two entries swapped.
    let copy = copy_of(&hub);
    let next = &all[target as usize + 1].1;
    sql(
        copy.path(),
        &[
            format!(
                "UPDATE audit_entries SET leaf = {}, leaf_hash = '{}' WHERE seq = {target}",
                quote(next),
                hex::encode(leaf_hash(next.as_bytes()))
            ),
            format!(
                "UPDATE audit_entries SET leaf = {}, leaf_hash = '{}' WHERE seq = {}",
                quote(original),
                hex::encode(leaf_hash(original.as_bytes())),
                target + 1
            ),
        ],
    );
    let err = verify(copy.path(), None).unwrap_err();
    assert!(
        err.contains(&format!(
            "the leaf at position {target} holds entry {}",
            target + 1
        )),
        "{err}"
    );

    // The log truncated below its latest head.
    let copy = copy_of(&hub);
    sql(
        copy.path(),
        &[
            format!("DELETE FROM audit_entries WHERE seq >= {}", size - 3),
            format!("UPDATE audit_state SET size = {}", size - 3),
        ],
    );
    let err = verify(copy.path(), None).unwrap_err();
    assert!(err.contains("entries were removed from its end"), "{err}");

    // A whole fork, re-signed with the hub's own key: consistent by itself, but it does not
    // extend the checkpoint an outsider kept.
    let key =
        SigningKey::from_pkcs8(&std::fs::read(hub.data_dir().join("keys/audit.key")).unwrap())
            .unwrap();
    let copy = copy_of(&hub);
    resign_fork(copy.path(), &all, target, &key);
    assert!(
        verify(copy.path(), None).is_ok(),
        "the fork is self-consistent"
    );
    let err = verify(copy.path(), Some(&checkpoint_file)).unwrap_err();
    assert!(err.contains("does not extend the checkpoint"), "{err}");

    // The same fork signed with a new key (the old one destroyed): the checkpoint's
    // signature no longer checks.
    let (other, _) = SigningKey::generate().unwrap();
    let copy = copy_of(&hub);
    resign_fork(copy.path(), &all, target, &other);
    let err = verify(copy.path(), Some(&checkpoint_file)).unwrap_err();
    assert!(
        err.contains("signed head") || err.contains("checkpoint"),
        "{err}"
    );
}

/// Retention: `agora audit archive` moves the entries into a segment file that an outsider
/// checks with the published key alone; the whole log still verifies, and a hash changed
/// or a segment record removed in the store is named.
#[test]
fn archived_segments_verify_alone_and_with_the_log() {
    let hub = busy_hub();
    let archived = json(&hub.ok(&["audit", "archive", "--older-than-days", "0", "--json"]));
    let segment = &archived.as_array().unwrap()[0];
    let end = segment["end"].as_u64().unwrap();
    assert_eq!(segment["first"], 0);
    let listed = hub.ok(&["audit", "segments"]);
    assert!(
        listed.contains(segment["file"].as_str().unwrap()),
        "{listed}"
    );
    let report = verify(hub.data_dir(), None).unwrap();
    assert_eq!(
        report["entries"],
        end + 1,
        "the archive's own entry follows"
    );
    // Only what is older than the retention period goes.
    assert_eq!(
        hub.ok(&["audit", "archive", "--older-than-days", "1"])
            .trim(),
        "no entry older than 1 day(s) is left to archive"
    );

    // An outsider: the file and the published key, no data directory.
    let file = hub
        .data_dir()
        .join("audit")
        .join(segment["file"].as_str().unwrap());
    let key = json(&hub.ok(&["audit", "key", "--json"]))["public_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let nowhere = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_agora"))
        .arg("--data-dir")
        .arg(nowhere.path().join("none"))
        .args(["audit", "verify-segment", "--key", &key])
        .arg(&file)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(&format!("entries 0 to {} prove", end - 1)),
        "{text}"
    );
    let copy = nowhere.path().join("segment.jsonl");
    let bytes = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&copy, bytes.replacen("\"actor\":\"", "\"actor\":\"X", 1)).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_agora"))
        .args(["audit", "verify-segment", "--key", &key])
        .arg(&copy)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("an entry in it was changed"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // In the store: an archived entry's kept hash changed, or the segment's record dropped.
    let copy = copy_of(&hub);
    sql(
        copy.path(),
        &[format!(
            "UPDATE audit_archived SET leaf_hash = '{}' WHERE seq = 2",
            "0".repeat(64)
        )],
    );
    let err = verify(copy.path(), None).unwrap_err();
    assert!(err.contains("entry 2 was altered"), "{err}");
    let copy = copy_of(&hub);
    sql(copy.path(), &["DELETE FROM audit_segments".to_owned()]);
    let err = verify(copy.path(), None).unwrap_err();
    assert!(
        err.contains(&format!(
            "entry 0 is missing: the next stored entry is {end}"
        )),
        "{err}"
    );
}

/// Rewrites entry `target` (its actor) and re-signs a head at every published size.
fn resign_fork(data_dir: &Path, all: &[(i64, String)], target: i64, key: &SigningKey) {
    let mut forged: AuditEntry = serde_json::from_str(&all[target as usize].1).unwrap();
    forged.actor = "someone-else".into();
    let leaf = String::from_utf8(forged.to_leaf()).unwrap();
    let mut tree = agora_audit::MerkleTree::new();
    let mut statements = vec![format!(
        "UPDATE audit_entries SET leaf = {}, leaf_hash = '{}' WHERE seq = {target}",
        quote(&leaf),
        hex::encode(leaf_hash(leaf.as_bytes()))
    )];
    let heads: Vec<i64> = {
        let url = format!("sqlite://{}", data_dir.join("meta.db").display());
        tokio::runtime::Runtime::new().unwrap().block_on(async {
            let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
            let sizes = sqlx::query_scalar("SELECT tree_size FROM audit_heads ORDER BY tree_size")
                .fetch_all(&pool)
                .await
                .unwrap();
            pool.close().await;
            sizes
        })
    };
    statements.push("DELETE FROM audit_heads".into());
    for (seq, original) in all {
        let bytes = if *seq == target {
            leaf.as_bytes()
        } else {
            original.as_bytes()
        };
        tree.push(leaf_hash(bytes));
        if heads.contains(&(seq + 1)) {
            let head = key.sign(TreeHead {
                tree_size: tree.size(),
                timestamp: chrono::Utc::now(),
                root_hash: tree.root(),
            });
            statements.push(format!(
                "INSERT INTO audit_heads (tree_size, signed) VALUES ({}, {})",
                tree.size(),
                quote(&serde_json::to_string(&head).unwrap())
            ));
        }
    }
    sql(data_dir, &statements);
}

/// `kill -9` at random moments under query load, many times: every answered query's entry
/// survives, and the log verifies after every restart.
#[test]
fn kill_9_under_load_loses_no_acknowledged_entry() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    let rounds: u32 = std::env::var("AGORA_TEST_KILL_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(100);
    let hub = hub_with_release("durable", 30);
    let token = hub.token();
    let token = token.trim();
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    // A small deterministic generator: the kill moments differ round to round.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    for round in 0..rounds {
        assert!(
            verify(hub.data_dir(), None).is_ok(),
            "the log does not verify after restart {round}"
        );
        let server = crate::support::Server::start_with(&hub, &["--audit-head-interval-s", "1"]);
        let stop = Arc::new(AtomicBool::new(false));
        let clients: Vec<_> = (0..4)
            .map(|c| {
                let (url, stop, acks) = (
                    server.url("/api/v1/sql"),
                    stop.clone(),
                    acknowledged.clone(),
                );
                let auth = format!("Bearer {token}");
                std::thread::spawn(move || {
                    let agent = ureq::AgentBuilder::new()
                        .timeout(Duration::from_secs(20))
                        .build();
                    for i in 0.. {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        let marker = format!("r{round}c{c}q{i}");
                        let sql = format!("SELECT COUNT(*) AS n FROM person -- {marker}");
                        let body = serde_json::json!({"dataset": "durable", "sql": sql});
                        match agent.post(&url).set("Authorization", &auth).send_json(body) {
                            Ok(r) if r.status() == 200 => {
                                // Acknowledged once the whole answer has arrived.
                                if r.into_string().is_ok() {
                                    acks.lock().unwrap().push(marker);
                                }
                            }
                            _ => break, // the server is gone
                        }
                    }
                })
            })
            .collect();
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        std::thread::sleep(Duration::from_millis(30 + (state >> 33) % 400));
        drop(server); // SIGKILL
        stop.store(true, Ordering::Relaxed);
        for c in clients {
            c.join().unwrap();
        }
    }
    assert!(verify(hub.data_dir(), None).is_ok());
    let recorded: std::collections::HashSet<String> = hub
        .access_log()
        .into_iter()
        .filter_map(|e| e.statement.rsplit("-- ").next().map(str::to_owned))
        .collect();
    let acknowledged = acknowledged.lock().unwrap();
    assert!(
        acknowledged.len() as u32 > rounds,
        "too little load: {} answers",
        acknowledged.len()
    );
    let lost: Vec<&String> = acknowledged
        .iter()
        .filter(|m| !recorded.contains(*m))
        .collect();
    assert!(lost.is_empty(), "answered but not in the log: {lost:?}");
}
