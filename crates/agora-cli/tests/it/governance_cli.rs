//! `agora user | project | permit | optout`: the CLI on a local data directory, as the local
//! operator or as another principal (`AGORA_TOKEN`).

use std::io::Write;
use std::process::{Output, Stdio};

use serde_json::{Value, json};

use crate::support::Hub;

/// Runs `agora args` as the holder of `token` (the local operator if `None`), feeding
/// `stdin`.
fn run_as(hub: &Hub, token: Option<&str>, args: &[&str], stdin: &str) -> Output {
    let mut cmd = hub.command(args);
    cmd.env_remove("AGORA_TOKEN");
    if let Some(t) = token {
        cmd.env("AGORA_TOKEN", t);
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn ok_as(hub: &Hub, token: Option<&str>, args: &[&str], stdin: &str) -> String {
    let out = run_as(hub, token, args, stdin);
    assert!(
        out.status.success(),
        "agora {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn fails_as(hub: &Hub, token: Option<&str>, args: &[&str]) -> String {
    let out = run_as(hub, token, args, "");
    assert!(
        !out.status.success(),
        "agora {args:?} unexpectedly succeeded"
    );
    String::from_utf8(out.stderr).unwrap()
}

fn json_as(hub: &Hub, token: Option<&str>, args: &[&str]) -> Value {
    let mut args = args.to_vec();
    args.push("--json");
    serde_json::from_str(&ok_as(hub, token, &args, "")).unwrap()
}

#[test]
fn governance_from_the_command_line() {
    let hub = Hub::init();
    // The hub's samples directory: the one place in a data directory an extract may be.
    let extract = hub.data_dir().join("samples/extract");
    hub.ok(&[
        "generate",
        "omop",
        "--persons",
        "30",
        "--out",
        extract.to_str().unwrap(),
    ]);
    hub.ingest("demo", &extract);

    // Accounts, as the local operator.
    let out = ok_as(
        &hub,
        None,
        &[
            "user",
            "create",
            "rita",
            "--name",
            "Rita",
            "--role",
            "reviewer",
            "--password-stdin",
        ],
        "a long enough password\n",
    );
    assert!(
        out.contains("rita") && out.contains("password:  set"),
        "{out}"
    );
    for id in ["ray", "ann"] {
        ok_as(
            &hub,
            None,
            &["user", "create", id, "--name", id, "--role", "researcher"],
            "",
        );
    }
    let err = fails_as(
        &hub,
        None,
        &[
            "user",
            "create",
            "shorty",
            "--name",
            "S",
            "--password-stdin",
        ],
    );
    assert!(err.contains("no password on standard input"), "{err}");
    assert!(fails_as(&hub, None, &["user", "show", "shorty"]).contains("user not found"));
    let users = json_as(&hub, None, &["user", "list"]);
    let ids: Vec<&str> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["ann", "local-operator", "ray", "rita"]);

    let token = |id: &str| {
        ok_as(&hub, None, &["user", "token", "issue", id], "")
            .trim()
            .to_owned()
    };
    let (rita, ray, ann) = (token("rita"), token("ray"), token("ann"));
    assert!(ray.starts_with("agora_"));
    let tokens = json_as(&hub, Some(&ray), &["user", "token", "list", "ray"]);
    assert_eq!(tokens.as_array().unwrap().len(), 1);
    assert!(!tokens.to_string().contains(&ray));

    // A researcher's application, reviewed by a reviewer, activated by the operator.
    let form = hub.data_dir().join("form.json");
    std::fs::write(&form, ok_as(&hub, None, &["project", "template"], "")).unwrap();
    let app = json_as(
        &hub,
        Some(&ray),
        &["project", "create", "--file", form.to_str().unwrap()],
    );
    let id = app["id"].as_str().unwrap().to_owned();
    assert_eq!(app["state"], "draft");
    assert_eq!(app["allowed_transitions"], json!(["submitted", "closed"]));
    let err = fails_as(&hub, Some(&ann), &["project", "show", &id]);
    assert!(
        err.contains("application not found") && !err.contains(&id),
        "{err}"
    );
    ok_as(&hub, Some(&ray), &["project", "submit", &id], "");
    let shown = ok_as(&hub, Some(&ray), &["project", "show", &id], "");
    assert!(shown.contains("state:         submitted"), "{shown}");
    assert!(shown.contains("completeness_check"), "{shown}");
    ok_as(
        &hub,
        Some(&rita),
        &[
            "project",
            "move",
            &id,
            "under_review",
            "--comment",
            "complete",
        ],
        "",
    );
    let grant = hub.data_dir().join("grant.json");
    std::fs::write(
        &grant,
        json!({"datasets": [{"dataset": "demo", "release": "latest_at_activation", "tables": [
            {"table": "person", "columns": ["person_id", "year_of_birth"]}]}]})
        .to_string(),
    )
    .unwrap();
    let approved = ok_as(
        &hub,
        Some(&rita),
        &["project", "approve", &id, "--file", grant.to_str().unwrap()],
        "",
    );
    assert!(approved.contains("permit pmt_"), "{approved}");
    let err = fails_as(&hub, Some(&ray), &["project", "move", &id, "active"]);
    assert!(err.contains("needs an operator"), "{err}");
    ok_as(&hub, None, &["project", "move", &id, "active"], "");

    // Permits: the researcher sees theirs, another researcher none.
    let permits = json_as(&hub, Some(&ray), &["permit", "list"]);
    assert_eq!(permits.as_array().unwrap().len(), 1);
    let permit = permits[0].clone();
    let pid = permit["id"].as_str().unwrap().to_owned();
    assert_eq!(permit["status"], "active");
    assert_eq!(
        permit["datasets"][0]["release"],
        json!({"number": 1}),
        "pinned at activation"
    );
    assert_eq!(json_as(&hub, Some(&ann), &["permit", "list"]), json!([]));
    assert!(fails_as(&hub, Some(&ann), &["permit", "show", &pid]).contains("permit not found"));
    let amendment = hub.data_dir().join("amend.json");
    std::fs::write(
        &amendment,
        r#"{"output": {"profile": "opensafely", "k": 8}}"#,
    )
    .unwrap();
    let amended = json_as(
        &hub,
        Some(&rita),
        &[
            "permit",
            "amend",
            &pid,
            "--file",
            amendment.to_str().unwrap(),
            "--reason",
            "output rule",
        ],
    );
    assert_eq!(
        (amended["version"].as_i64(), amended["output"]["k"].as_i64()),
        (Some(3), Some(8))
    );
    let versions = ok_as(&hub, None, &["permit", "show", &pid, "--versions"], "");
    assert_eq!(versions.lines().count(), 3, "{versions}");
    let history = json_as(&hub, Some(&ray), &["project", "history", &id]);
    let moves: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["to"].as_str().unwrap())
        .collect();
    assert_eq!(
        moves,
        vec!["draft", "submitted", "under_review", "approved", "active"]
    );
    let broken = hub.data_dir().join("broken.json");
    std::fs::write(
        &broken,
        "{\"output\": {\"profile\": \"k_anonymity\", \"k\": \"ten-184\"}}",
    )
    .unwrap();
    let err = fails_as(
        &hub,
        Some(&rita),
        &[
            "permit",
            "amend",
            &pid,
            "--file",
            broken.to_str().unwrap(),
            "--reason",
            "x",
        ],
    );
    assert!(
        err.contains("broken.json") && err.contains("line 1 column") && !err.contains("ten-184"),
        "{err}"
    );

    // Opt-out on a citizen's behalf: the identifier comes on stdin and is never printed.
    let nir = "1 84 05 75 108 123 45";
    let receipt = json_as_stdin(&hub, &["optout", "add", "--channel", "mail"], nir);
    assert!(!receipt.to_string().contains("84 05"));
    let rid = receipt["receipt_id"].as_str().unwrap().to_owned();
    assert_eq!(json_as(&hub, None, &["optout", "count"])["in_force"], 1);
    assert!(fails_as(&hub, Some(&ray), &["optout", "count"]).contains("operator role"));
    assert_eq!(
        json_as(&hub, Some(&ray), &["optout", "status", &rid])["status"],
        "in_force"
    );
    ok_as(&hub, None, &["optout", "withdraw", &rid], "");
    assert_eq!(json_as(&hub, None, &["optout", "count"])["in_force"], 0);

    // Roles are enforced for CLI principals exactly as over HTTP.
    assert!(fails_as(&hub, Some(&ray), &["user", "list"]).contains("needs the operator role"));
    assert!(
        fails_as(&hub, Some("agora_bogus"), &["permit", "list"]).contains("does not authenticate")
    );
    let revoked = json_as(
        &hub,
        None,
        &["permit", "revoke", &pid, "--reason", "end of study"],
    );
    assert_eq!(revoked["status"], "revoked");
    assert_eq!(
        json_as(&hub, Some(&ray), &["permit", "list"])[0]["status"],
        "revoked"
    );
    ok_as(&hub, None, &["user", "deactivate", "ray"], "");
    assert!(fails_as(&hub, Some(&ray), &["project", "list"]).contains("does not authenticate"));
}

fn json_as_stdin(hub: &Hub, args: &[&str], stdin: &str) -> Value {
    let mut args = args.to_vec();
    args.push("--json");
    serde_json::from_str(&ok_as(hub, None, &args, stdin)).unwrap()
}

/// `agora exports`: a researcher asks for a file, a reviewer approves it, the researcher
/// downloads it and its SHA-256 is the recorded one; a refused statement leaves nothing.
#[test]
fn exports_from_the_command_line() {
    use sha2::{Digest, Sha256};
    let hub = Hub::init();
    let extract = hub.data_dir().join("samples/extract");
    hub.ok(&[
        "generate",
        "omop",
        "--persons",
        "60",
        "--out",
        extract.to_str().unwrap(),
    ]);
    hub.ingest("demo", &extract);
    for (id, role) in [
        ("rita", "reviewer"),
        ("ray", "researcher"),
        ("ann", "researcher"),
    ] {
        ok_as(
            &hub,
            None,
            &["user", "create", id, "--name", id, "--role", role],
            "",
        );
    }
    let token = |id: &str| {
        ok_as(&hub, None, &["user", "token", "issue", id], "")
            .trim()
            .to_owned()
    };
    let (rita, ray, ann) = (token("rita"), token("ray"), token("ann"));
    let form = hub.data_dir().join("form.json");
    std::fs::write(&form, ok_as(&hub, None, &["project", "template"], "")).unwrap();
    let app = json_as(
        &hub,
        Some(&ray),
        &["project", "create", "--file", form.to_str().unwrap()],
    );
    let app = app["id"].as_str().unwrap().to_owned();
    ok_as(&hub, Some(&ray), &["project", "submit", &app], "");
    ok_as(
        &hub,
        Some(&rita),
        &["project", "move", &app, "under_review", "--comment", "ok"],
        "",
    );
    let grant = hub.data_dir().join("grant.json");
    std::fs::write(
        &grant,
        json!({"datasets": [{"dataset": "demo", "release": {"number": 1}, "tables": [
            {"table": "person", "columns": ["person_id", "gender_concept_id"]}]}]})
        .to_string(),
    )
    .unwrap();
    ok_as(
        &hub,
        Some(&rita),
        &[
            "project",
            "approve",
            &app,
            "--file",
            grant.to_str().unwrap(),
        ],
        "",
    );
    ok_as(&hub, None, &["project", "move", &app, "active"], "");
    let pid = json_as(&hub, Some(&ray), &["permit", "list"])[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let sql = "SELECT gender_concept_id, COUNT(*) AS persons FROM demo.person GROUP BY 1";
    let export = json_as(
        &hub,
        Some(&ray),
        &["exports", "request", "--permit", &pid, sql],
    );
    assert_eq!(export["status"], "pending_review", "{export}");
    assert_eq!(export["requested_by"], "ray");
    let id = export["id"].as_str().unwrap().to_owned();
    let sha = export["sha256"].as_str().unwrap().to_owned();

    // Another researcher: as if it did not exist. The researcher: not before approval.
    let err = fails_as(&hub, Some(&ann), &["exports", "show", &id]);
    assert!(
        err.contains("export not found") && !err.contains(&id),
        "{err}"
    );
    assert_eq!(json_as(&hub, Some(&ann), &["exports", "list"]), json!([]));
    let err = fails_as(&hub, Some(&ray), &["exports", "download", &id]);
    assert!(err.contains("waiting for a reviewer"), "{err}");
    let err = fails_as(
        &hub,
        Some(&ray),
        &["exports", "decide", &id, "approve", "--reason", "mine"],
    );
    assert!(err.contains("needs a reviewer"), "{err}");

    let shown = ok_as(
        &hub,
        Some(&rita),
        &[
            "exports",
            "decide",
            &id,
            "approve",
            "--reason",
            "aggregates, cells checked",
        ],
        "",
    );
    assert!(
        shown.contains("approved") && shown.contains(&sha),
        "{shown}"
    );
    let approved = json_as(
        &hub,
        Some(&ray),
        &["exports", "list", "--status", "approved"],
    );
    assert_eq!(approved.as_array().unwrap().len(), 1);

    let out = hub.data_dir().join("samples/export.csv");
    ok_as(
        &hub,
        Some(&ray),
        &["exports", "download", &id, "-o", out.to_str().unwrap()],
        "",
    );
    let bytes = std::fs::read(&out).unwrap();
    assert_eq!(hex::encode(Sha256::digest(&bytes)), sha);
    assert!(bytes.starts_with(b"gender_concept_id,persons\n"));
    let stdout = ok_as(&hub, Some(&ray), &["exports", "download", &id], "");
    assert_eq!(stdout.as_bytes(), bytes);
    let history = json_as(&hub, None, &["exports", "show", &id])["history"].clone();
    let kinds: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        vec!["requested", "approved", "downloaded", "downloaded"]
    );

    // Per-person rows are refused: no new request, no new file.
    let out = run_as(
        &hub,
        Some(&ray),
        &["exports", "request", "--permit", &pid, "-"],
        "SELECT person_id FROM demo.person",
    );
    assert!(!out.status.success());
    assert_eq!(
        json_as(&hub, None, &["exports", "list"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let files = std::fs::read_dir(hub.data_dir().join("exports"))
        .unwrap()
        .count();
    assert_eq!(files, 1);
}
