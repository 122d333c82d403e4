//! Generated SQL against the query service, for a bounded time (`AGORA_FUZZ_SECONDS`,
//! default 30; `AGORA_FUZZ_SEED` replays a run): deep expressions, huge literals, random
//! function calls with extreme arguments over the OMOP tables, long CTE chains, cross
//! joins. Its own test binary, so the process's memory is this test's alone.
//!
//! What must hold, whatever the statement:
//! * the process never dies (a crash fails the run);
//! * every answer or error arrives within the time limit plus [`GRACE`];
//! * the process's peak RSS stays within its baseline plus, per concurrent query, the
//!   memory limit and [`MARGIN`];
//! * no error message quotes a value of the data.

use std::time::{Duration, Instant};

use agora_core::{ErrorKind, HasKind};
use agora_service::{Credential, Front, QueryLimits, Target};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

#[path = "it/support.rs"]
#[allow(dead_code)] // shared with the `it` binary, which uses all of it
mod support;

const GRACE: Duration = Duration::from_secs(2);
const MARGIN: u64 = 256 << 20;
const WORKERS: usize = 2;

fn limits() -> QueryLimits {
    QueryLimits {
        memory_bytes: 256 << 20,
        timeout: Duration::from_secs(3),
        max_rows: 100_000,
        max_bytes: 16 << 20,
        ..QueryLimits::default()
    }
}

/// The process's peak resident set so far, in bytes (Linux).
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<u64>().ok())
            .map_or(0, |kb| kb << 10)
    };
    field("VmHWM:")
}

const TABLES: &[(&str, &[&str])] = &[
    (
        "person",
        &[
            "person_id",
            "year_of_birth",
            "birth_datetime",
            "gender_source_value",
            "race_source_value",
        ],
    ),
    (
        "measurement",
        &[
            "measurement_id",
            "person_id",
            "value_as_number",
            "measurement_date",
            "measurement_source_value",
        ],
    ),
    (
        "condition_occurrence",
        &[
            "condition_occurrence_id",
            "person_id",
            "condition_start_date",
            "condition_source_value",
        ],
    ),
];

const FUNCTIONS: &[&str] = &[
    "repeat",
    "lpad",
    "rpad",
    "replace",
    "regexp_replace",
    "regexp_like",
    "regexp_match",
    "concat",
    "concat_ws",
    "substr",
    "left",
    "right",
    "upper",
    "lower",
    "length",
    "reverse",
    "translate",
    "overlay",
    "split_part",
    "strpos",
    "to_hex",
    "md5",
    "sha256",
    "btrim",
    "abs",
    "power",
    "sqrt",
    "ln",
    "factorial",
    "gcd",
    "lcm",
    "round",
    "trunc",
    "make_date",
    "to_timestamp",
    "to_date",
    "date_trunc",
    "date_part",
    "date_bin",
    "array_repeat",
    "range",
    "generate_series",
    "make_array",
    "array_resize",
    "cardinality",
    "string_to_array",
    "array_to_string",
    "coalesce",
    "nullif",
    "greatest",
    "least",
    "string_agg",
    "array_agg",
    "count",
    "max",
    "min",
    "sum",
    "avg",
];

fn literal(rng: &mut StdRng) -> String {
    match rng.gen_range(0..12) {
        0 => "NULL".into(),
        1 => "0".into(),
        2 => "-1".into(),
        3 => "9223372036854775807".into(),
        4 => "-9223372036854775808".into(),
        5 => "2000000000".into(),
        6 => "1e30".into(),
        7 => "''".into(),
        8 => format!("'{}'", "x".repeat(rng.gen_range(1..200_000))),
        9 => "'('".into(),
        10 => "INTERVAL '1 second'".into(),
        _ => rng.gen_range(-100..100_000).to_string(),
    }
}

fn operand(rng: &mut StdRng, columns: &[&str]) -> String {
    if rng.gen_bool(0.5) {
        columns.choose(rng).unwrap().to_string()
    } else {
        literal(rng)
    }
}

fn call(rng: &mut StdRng, columns: &[&str], depth: usize) -> String {
    let f = FUNCTIONS.choose(rng).unwrap();
    let args = (0..rng.gen_range(1..4))
        .map(|_| {
            if depth > 0 && rng.gen_bool(0.4) {
                call(rng, columns, depth - 1)
            } else {
                operand(rng, columns)
            }
        })
        .collect::<Vec<_>>();
    format!("{f}({})", args.join(", "))
}

fn statement(rng: &mut StdRng) -> String {
    let (table, columns) = TABLES.choose(rng).unwrap();
    match rng.gen_range(0..6) {
        // A deep expression, around the depth bound.
        0 => {
            let op = ["+", " || ", " AND ", " * ", "::text::"]
                .choose(rng)
                .unwrap();
            let n = rng.gen_range(1..400);
            let terms = (0..n).map(|_| operand(rng, columns)).collect::<Vec<_>>();
            format!("SELECT {} FROM {table}", terms.join(op))
        }
        // Nested random calls, possibly aggregated.
        1 | 2 => format!("SELECT {} FROM {table}", call(rng, columns, 3)),
        // A CTE chain.
        3 => {
            let n = rng.gen_range(1..400);
            let ctes = (2..=n)
                .map(|i| format!("c{i} AS (SELECT x || x AS x FROM c{})", i - 1))
                .collect::<Vec<_>>();
            let first = format!(
                "c1 AS (SELECT CAST({} AS VARCHAR) AS x FROM {table})",
                columns[0]
            );
            let ctes = std::iter::once(first)
                .chain(ctes)
                .collect::<Vec<_>>()
                .join(", ");
            format!("WITH {ctes} SELECT length(x) FROM c{n}")
        }
        // A cross join, sorted far down.
        4 => format!(
            "SELECT a.{c}, b.{c} FROM {table} a, {table} b ORDER BY a.{c}, b.{c} DESC \
             LIMIT 5 OFFSET {}",
            rng.gen_range(0..1_000_000),
            c = columns[0]
        ),
        // A huge literal, or a huge aggregate of one.
        _ => format!(
            "SELECT {}({}) FROM {table}",
            ["length", "string_agg", "array_agg", "max"]
                .choose(rng)
                .unwrap(),
            literal(rng)
        )
        .replace("string_agg(NULL)", "string_agg(NULL, ',')"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_sql_never_kills_the_process_nor_breaks_its_limits() {
    let env = support::hub().await;
    let hub = env.hub.clone();
    let who = hub
        .query()
        .authenticate(Credential::DataDirectory { user: "fuzz" })
        .await
        .unwrap();
    let target = Target::Release {
        dataset: "omop".parse().unwrap(),
        release: None,
    };
    // Values an error message must never carry.
    let session = hub
        .query()
        .open(&who, target.clone(), Front::Cli, limits())
        .await
        .unwrap();
    let out = session
        .sql("SELECT CAST(person_id AS VARCHAR) FROM person")
        .await
        .unwrap();
    let secrets: Vec<String> = out
        .batches
        .iter()
        .flat_map(|b| {
            let strings =
                arrow::compute::cast(b.column(0), &arrow::datatypes::DataType::Utf8).unwrap();
            let a = strings
                .as_any()
                .downcast_ref::<arrow::array::StringArray>()
                .unwrap();
            a.iter().flatten().map(str::to_owned).collect::<Vec<_>>()
        })
        .collect();

    let seconds: u64 = std::env::var("AGORA_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let seed: u64 = std::env::var("AGORA_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("fuzz: seed {seed} (AGORA_FUZZ_SEED to replay), {seconds} s");
    let baseline = peak_rss();
    let until = Instant::now() + Duration::from_secs(seconds);
    let mut workers = Vec::new();
    for w in 0..WORKERS {
        let hub = hub.clone();
        let who = who.clone();
        let target = target.clone();
        let secrets = secrets.clone();
        let mut reported = peak_rss();
        workers.push(tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(seed.wrapping_add(w as u64));
            let mut kinds = std::collections::BTreeMap::<String, usize>::new();
            while Instant::now() < until {
                let sql = statement(&mut rng);
                let shown = sql.chars().take(120).collect::<String>();
                let started = Instant::now();
                let session = hub
                    .query()
                    .open(&who, target.clone(), Front::Cli, limits())
                    .await
                    .unwrap();
                let result = session.sql(&sql).await;
                let took = started.elapsed();
                // Which statements raise the peak, to find the one that breaks it.
                let now = peak_rss();
                if now > reported + (64 << 20) {
                    eprintln!("fuzz: peak RSS {} MiB after: {shown}", now >> 20);
                    reported = now;
                }
                assert!(
                    took <= limits().timeout + GRACE,
                    "answered after {took:?}: {shown}"
                );
                let kind = match result {
                    Ok(_) => "answered".to_owned(),
                    Err(e) => {
                        let message = e.to_string();
                        for secret in &secrets {
                            assert!(!message.contains(secret.as_str()), "{shown}: {message}");
                        }
                        assert_ne!(e.kind(), ErrorKind::Unavailable, "{shown}: {message}");
                        format!("{:?}", e.kind())
                    }
                };
                *kinds.entry(kind).or_default() += 1;
            }
            kinds
        }));
    }
    let mut total = std::collections::BTreeMap::<String, usize>::new();
    for w in workers {
        for (k, n) in w.await.unwrap() {
            *total.entry(k).or_default() += n;
        }
    }
    let peak = peak_rss();
    let allowed = baseline + WORKERS as u64 * (limits().memory_bytes as u64 + MARGIN);
    eprintln!(
        "fuzz: {total:?}; peak RSS {} MiB (baseline {} MiB, allowed {} MiB)",
        peak >> 20,
        baseline >> 20,
        allowed >> 20
    );
    assert!(
        total.values().sum::<usize>() > 10,
        "too few statements ran: {total:?}"
    );
    assert!(
        peak <= allowed,
        "peak RSS {} MiB over {} MiB",
        peak >> 20,
        allowed >> 20
    );
}
