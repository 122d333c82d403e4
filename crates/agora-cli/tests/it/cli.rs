use std::os::unix::fs::PermissionsExt;

use crate::support::{Hub, shared};

#[test]
fn init_creates_a_private_data_directory_and_never_prints_the_secret() {
    let dir = tempfile::tempdir().unwrap();
    let hub = Hub { dir };
    let out = hub.ok(&["init"]);
    let key = std::fs::read(hub.data_dir().join("keys/hub.key")).unwrap();
    assert_eq!(key.len(), 32);
    let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    assert!(!out.contains(&hex));
    let mode = |p: &str| {
        std::fs::metadata(hub.data_dir().join(p))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("keys/hub.key"), 0o600);
    assert_eq!(mode("keys/operator.token"), 0o600);
    assert_eq!(mode("keys"), 0o700);
    assert_eq!(mode(""), 0o700);
    for sub in ["lake", "audit", "meta.db"] {
        assert!(hub.data_dir().join(sub).exists(), "{sub}");
    }
    // A second init changes nothing, in particular not the secret.
    assert!(
        hub.ok(&["init"])
            .contains("already an Agora data directory")
    );
    assert_eq!(
        std::fs::read(hub.data_dir().join("keys/hub.key")).unwrap(),
        key
    );
}

#[test]
fn a_world_readable_secret_is_refused() {
    let hub = Hub::init();
    let key = hub.data_dir().join("keys/hub.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = hub.fails(&["datasets"]);
    assert!(err.contains("readable by other users"), "{err}");
}

#[test]
fn errors_are_clear_and_exit_non_zero() {
    let empty = Hub {
        dir: tempfile::tempdir().unwrap(),
    };
    let err = empty.fails(&["sql", "--dataset", "x", "SELECT 1"]);
    assert!(
        err.starts_with("error: ") && err.contains("run `agora init"),
        "{err}"
    );

    let hub = Hub::init();
    let err = hub.fails(&["ingest", "omop", "--dataset", "d", "/nonexistent/extract"]);
    assert!(
        err.contains("cannot read /nonexistent/extract") && err.contains("nothing was committed"),
        "{err}"
    );
    let err = hub.fails(&["sql", "--dataset", "d", "SELECT 1"]);
    assert!(err.contains("dataset d has no release"), "{err}");
    let err = hub.fails(&["ingest", "omop", "--dataset", "Bad-Name", "."]);
    assert!(err.contains("invalid dataset name"), "{err}");
    let help = hub.ok(&["--help"]);
    for cmd in ["init", "ingest", "sql", "serve", "generate", "demo"] {
        assert!(help.contains(cmd), "{cmd} missing from --help");
    }
}

#[test]
fn sql_output_formats_and_release_selection() {
    let hub = Hub::init();
    let src = shared("data/omop/synthea27nj_csv");
    hub.ingest("s", &src);
    let q = "SELECT gender_concept_id AS g, COUNT(*) AS n FROM person GROUP BY 1 ORDER BY 1";
    assert_eq!(
        hub.ok(&["sql", "--dataset", "s", "--format", "csv", q]),
        "g,n\n8507,15\n8532,13\n"
    );
    assert_eq!(hub.sql_tsv("s", q), "g\tn\n8507\t15\n8532\t13\n");
    let json: serde_json::Value =
        serde_json::from_str(&hub.ok(&["sql", "--dataset", "s", "--format", "json", q])).unwrap();
    assert_eq!(
        json,
        serde_json::json!([{"g": 8507, "n": 15}, {"g": 8532, "n": 13}])
    );
    let table = hub.ok(&["sql", "--dataset", "s", q]);
    assert!(
        table.contains("| 8532 | 13 |") && table.ends_with("(2 rows)\n"),
        "{table}"
    );
    let empty = hub.ok(&[
        "sql",
        "--dataset",
        "s",
        "--format",
        "csv",
        "SELECT person_id FROM person WHERE false",
    ]);
    assert_eq!(empty, "person_id\n");

    // PostgreSQL date arithmetic, which OHDSI-style SQL relies on (DataFusion 55 does this
    // natively; this pins it across upgrades).
    let dates = "SELECT DATE '2020-03-01' - DATE '2020-02-01' AS days, DATE '2020-02-28' + 2 AS later, \
                 MAX(visit_end_date - visit_start_date) >= 0 AS int_days FROM visit_occurrence";
    assert_eq!(
        hub.ok(&["sql", "--dataset", "s", "--format", "csv", dates]),
        "days,later,int_days\n29,2020-03-01,true\n"
    );

    // Errors about the data never quote it.
    for sql in [
        "SELECT CAST(concept_name AS INT) FROM concept",
        "SELECT CAST(visit_source_value AS DATE) FROM visit_occurrence",
        "SELECT to_timestamp(concept_name) FROM concept",
    ] {
        let err = hub.fails(&["sql", "--dataset", "s", sql]);
        assert!(
            err.contains("TRY_CAST") && !err.contains("Prediabetes") && !err.contains("-a69a-"),
            "{err}"
        );
    }

    // The same files again: refused, unless asked for.
    let err = hub.fails(&["ingest", "omop", "--dataset", "s", src.to_str().unwrap()]);
    assert!(
        err.contains("these files are already release 1 of dataset s")
            && err.contains("--allow-duplicate"),
        "{err}"
    );
    hub.ok(&[
        "ingest",
        "omop",
        "--dataset",
        "s",
        "--allow-duplicate",
        src.to_str().unwrap(),
    ]);
    let n = "SELECT COUNT(*) FROM person";
    assert_eq!(
        hub.ok(&[
            "sql",
            "--dataset",
            "s",
            "--release",
            "1",
            "--format",
            "csv",
            n
        ]),
        hub.ok(&["sql", "--dataset", "s", "--format", "csv", n])
    );
    assert!(
        hub.fails(&["sql", "--dataset", "s", "--release", "3", n])
            .contains("dataset s has no release 3")
    );
}

#[test]
fn demo_sets_up_a_queryable_hub_once() {
    let hub = Hub {
        dir: tempfile::tempdir().unwrap(),
    };
    let out = hub.ok(&["demo", "--persons", "300", "--no-serve"]);
    assert!(out.contains("Agora is ready"), "{out}");
    let n = hub.ok(&[
        "sql",
        "--dataset",
        "demo",
        "--format",
        "csv",
        "SELECT COUNT(*) AS n FROM person",
    ]);
    let persons: u64 = n.lines().nth(1).unwrap().parse().unwrap();
    assert!((290..=300).contains(&persons), "{persons}");
    // The example queries it prints work.
    let top = hub.ok(&["sql", "--dataset", "demo", "--format", "csv",
        "SELECT c.concept_name, COUNT(DISTINCT co.person_id) AS persons FROM condition_occurrence co JOIN concept c ON c.concept_id = co.condition_concept_id GROUP BY 1 ORDER BY 2 DESC LIMIT 10"]);
    assert_eq!(top.lines().count(), 11, "{top}");
    // Running it again reuses the hub instead of ingesting again.
    hub.ok(&["demo", "--persons", "300", "--no-serve"]);
    let listing: serde_json::Value =
        serde_json::from_str(&hub.ok(&["datasets", "--json"])).unwrap();
    assert_eq!(listing[0]["releases"].as_array().unwrap().len(), 1);
}

#[test]
fn generated_csv_and_parquet_extracts_hold_the_same_data() {
    let hub = Hub::init();
    let csv = tempfile::tempdir().unwrap();
    let parquet = tempfile::tempdir().unwrap();
    for (dir, format) in [(&csv, "csv"), (&parquet, "parquet")] {
        hub.ok(&[
            "generate",
            "omop",
            "--persons",
            "200",
            "--seed",
            "3",
            "--format",
            format,
            "--out",
            dir.path().to_str().unwrap(),
        ]);
    }
    // Parquet is written as the rows come: nothing else is left in the output directory.
    let mut files: Vec<_> = std::fs::read_dir(parquet.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(files.len(), 11, "{files:?}");
    assert!(files.iter().all(|f| f.ends_with(".parquet")), "{files:?}");
    hub.ingest("from_csv", csv.path());
    hub.ingest("from_parquet", parquet.path());
    let q = "SELECT COUNT(*) AS n, SUM(person_id % 1000) AS k, SUM(value_as_number) AS v, MAX(measurement_datetime) AS t FROM measurement";
    assert_eq!(hub.sql_tsv("from_csv", q), hub.sql_tsv("from_parquet", q));
    for file in &files {
        let q = format!("SELECT COUNT(*) FROM {}", file.trim_end_matches(".parquet"));
        assert_eq!(
            hub.sql_tsv("from_csv", &q),
            hub.sql_tsv("from_parquet", &q),
            "{q}"
        );
    }
    let err = hub.fails(&[
        "generate",
        "omop",
        "--persons",
        "5",
        "--defects",
        "0.1",
        "--format",
        "parquet",
        "--out",
        parquet.path().to_str().unwrap(),
    ]);
    assert!(err.contains("--defects needs --format csv"), "{err}");
}

#[test]
fn sof_conformance_runs_the_official_suite() {
    let hub = Hub {
        dir: tempfile::tempdir().unwrap(),
    };
    let out = hub.ok(&[
        "sof-conformance",
        shared("conformance/sql-on-fhir-v2/tests").to_str().unwrap(),
    ]);
    assert_eq!(out.lines().last(), Some("134 passed, 0 failed"), "{out}");
    let err = hub.fails(&["sof-conformance", "/nonexistent"]);
    assert!(err.contains("/nonexistent"), "{err}");
}

#[test]
fn quality_profile_passes_clean_data_and_catches_implausible_data() {
    let hub = Hub::init();
    hub.ingest("clean", &shared("data/omop/synthea27nj_csv"));
    let clean: serde_json::Value =
        serde_json::from_str(&hub.ok(&["quality", "--dataset", "clean", "--json"])).unwrap();
    let checks = clean["checks"].as_array().unwrap();
    assert!(checks.len() > 100);
    assert!(checks.iter().all(|c| c["passed"] == true), "{checks:?}");
    let person = clean["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["table"] == "person")
        .unwrap();
    assert_eq!(
        (person["rows"].as_u64(), person["persons"].as_u64()),
        (Some(28), Some(28))
    );
    let gender = person["columns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["column"] == "gender_concept_id")
        .unwrap();
    assert_eq!(
        gender["top_values"],
        serde_json::json!([{"value": "8507", "rows": 15}, {"value": "8532", "rows": 13}])
    );

    // Type-valid but implausible rows pass ingest; the profile must flag them.
    let src = tempfile::tempdir().unwrap();
    hub.ok(&[
        "generate",
        "omop",
        "--persons",
        "300",
        "--seed",
        "5",
        "--defects",
        "0.05",
        "--out",
        src.path().to_str().unwrap(),
    ]);
    hub.ingest("messy", src.path());
    let messy: serde_json::Value =
        serde_json::from_str(&hub.ok(&["quality", "--dataset", "messy", "--json"])).unwrap();
    let failed: Vec<&serde_json::Value> = messy["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["passed"] == false)
        .collect();
    assert!(
        failed
            .iter()
            .any(|c| c["id"] == "start_before_end" && c["violations"].as_u64() > Some(0)),
        "{failed:?}"
    );
    // Unknown persons never get in: ingest quarantines them.
    assert!(
        messy["checks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["id"] == "person_exists")
            .all(|c| c["passed"] == true)
    );
    let text = hub.ok(&["quality", "--dataset", "messy"]);
    assert!(text.contains("FAIL start_before_end"), "{text}");
}

#[test]
fn ingest_tableschema_snds_pseudonymizes_declared_identifiers_and_refuses_a_repeat() {
    let hub = Hub::init();
    let src = shared("data/snds/schemas");
    let args = [
        "ingest",
        "tableschema",
        "--dataset",
        "snds",
        "--person-id",
        "BEN_NIR_PSA",
        "--person-id",
        "NIR_ANO_17",
        "--json",
        src.to_str().unwrap(),
    ];
    let report: serde_json::Value = serde_json::from_str(&hub.ok(&args)).unwrap();
    assert_eq!(report["release"], 1);
    assert_eq!(report["tables"].as_array().unwrap().len(), 191);
    assert_eq!(report["rows_read"], 1910);
    assert_eq!(
        report["new_persons"], 29,
        "10 beneficiaries, 19 more in the stays"
    );
    assert_eq!(
        hub.sql_tsv(
            "snds",
            "SELECT arrow_typeof(ben_nir_psa) AS t, COUNT(*) AS n FROM ir_ben_r GROUP BY 1"
        ),
        "t\tn\nInt64\t10\n"
    );
    // Long-term illnesses join their beneficiaries on the hub keys.
    assert_eq!(
        hub.sql_tsv(
            "snds",
            "SELECT COUNT(*) AS linked FROM ir_imb_r i JOIN ir_ben_r b ON b.ben_nir_psa = i.ben_nir_psa"
        ),
        "linked\n10\n"
    );

    let err = hub.fails(&args);
    assert!(
        err.contains("these files are already release 1 of dataset snds")
            && err.contains("nothing was committed"),
        "{err}"
    );
    let dry = hub.ok(&[
        "ingest",
        "tableschema",
        "--dataset",
        "snds",
        "--dry-run",
        src.to_str().unwrap(),
    ]);
    assert!(dry.contains("Dry run of dataset snds"), "{dry}");
    let err = hub.fails(&[
        "ingest",
        "tableschema",
        "--dataset",
        "x",
        "--person-id",
        "NO_SUCH_FIELD",
        src.to_str().unwrap(),
    ]);
    assert!(
        err.contains("--person-id NO_SUCH_FIELD: no resource has a field of that name"),
        "{err}"
    );
}

#[test]
fn statements_may_start_with_a_comment_and_come_from_a_file_or_stdin() {
    let hub = Hub::init();
    hub.ingest("s", &shared("data/omop/synthea27nj_csv"));
    // Pasted from a file: the statement starts with `--`, which is not a flag.
    let commented = "-- persons in the extract\nSELECT COUNT(*) AS n FROM person";
    assert_eq!(
        hub.ok(&["sql", "--dataset", "s", "--format", "csv", commented]),
        "n\n28\n"
    );
    let file = hub.data_dir().join("q.sql");
    std::fs::write(&file, format!("{commented};\n")).unwrap();
    let path = file.to_str().unwrap();
    assert_eq!(
        hub.ok(&["sql", "--dataset", "s", "--format", "csv", "--file", path]),
        "n\n28\n"
    );
    assert_eq!(hub.sql_stdin("s", commented).unwrap(), "n\n28\n");
    // One source at a time, and a missing file is named.
    let err = hub.fails(&["sql", "--dataset", "s", "--file", path, "SELECT 1"]);
    assert!(err.contains("cannot be used with"), "{err}");
    let err = hub.fails(&["sql", "--dataset", "s", "--file", "/nonexistent/q.sql"]);
    assert!(
        err.contains("cannot read the statement from /nonexistent/q.sql"),
        "{err}"
    );
}

/// Issue 12, item 5: SNDS beneficiaries keyed on the (number, rank) pair through the binary.
#[test]
fn ingest_tableschema_keys_snds_beneficiaries_on_number_and_rank() {
    let hub = Hub::init();
    let src = shared("data/snds/schemas");
    let report: serde_json::Value = serde_json::from_str(&hub.ok(&[
        "ingest",
        "tableschema",
        "--dataset",
        "snds",
        "--person-id",
        "BEN_NIR_PSA+BEN_RNG_GEM",
        "--person-id",
        "NIR_ANO_17",
        "--json",
        src.to_str().unwrap(),
    ]))
    .unwrap();
    assert_eq!(report["tables"].as_array().unwrap().len(), 191);
    assert_eq!(
        hub.sql_tsv(
            "snds",
            "SELECT COUNT(DISTINCT ben_nir_psa) AS persons, \
             SUM(CASE WHEN ben_nir_psa = ben_rng_gem THEN 1 ELSE 0 END) AS same \
             FROM ir_ben_r"
        ),
        "persons\tsame\n10\t10\n"
    );
    assert_eq!(
        hub.sql_tsv(
            "snds",
            "SELECT COUNT(*) AS linked FROM ir_imb_r i JOIN ir_ben_r b \
             ON b.ben_nir_psa = i.ben_nir_psa AND b.ben_rng_gem = i.ben_rng_gem"
        ),
        "linked\n10\n"
    );
}
