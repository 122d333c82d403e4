//! Whole-output tests: generate into a temporary directory and read the CSVs back.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use chrono::{NaiveDate, NaiveDateTime};

use crate::model::{self, Chunk, Ctx, Scratch};
use agora_cdm::CdmType;

use crate::schema::{self, N_CLINICAL};
use crate::{GenerateReport, OmopConfig, generate_omop, vocab, write};

fn generate(persons: u64, seed: u64, defects: f64) -> (tempfile::TempDir, GenerateReport) {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = OmopConfig {
        persons,
        seed,
        defects,
        progress: false,
    };
    let report = generate_omop(&cfg, dir.path()).expect("generate");
    (dir, report)
}

fn read_table(dir: &Path, table: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let mut r = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(dir.join(format!("{table}.csv")))
        .expect("open csv");
    let header = r
        .headers()
        .expect("header")
        .iter()
        .map(str::to_string)
        .collect();
    let rows = r
        .records()
        .map(|rec| rec.expect("record").iter().map(str::to_string).collect())
        .collect();
    (header, rows)
}

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap_or_else(|_| panic!("bad date {s:?}"))
}

/// Why a field does not fit its column, if it does not.
fn field_problem(value: &str, required: bool, ty: CdmType) -> Option<&'static str> {
    if value.is_empty() {
        return required.then_some("empty required field");
    }
    let ok = match ty {
        CdmType::Integer => value.parse::<i64>().is_ok(),
        CdmType::Float => value.parse::<f64>().is_ok(),
        CdmType::Date => NaiveDate::parse_from_str(value, "%Y-%m-%d").is_ok() && value.len() == 10,
        CdmType::Datetime => NaiveDateTime::parse_from_str(value, "%Y-%m-%d %H:%M:%S").is_ok(),
        CdmType::Varchar(None) => true,
        CdmType::Varchar(Some(n)) => value.chars().count() <= n,
    };
    (!ok).then_some("value does not fit the column type")
}

/// (start, end) column pairs that must be ordered.
const ORDERED: &[(&str, &str, &str)] = &[
    (
        "observation_period",
        "observation_period_start_date",
        "observation_period_end_date",
    ),
    ("visit_occurrence", "visit_start_date", "visit_end_date"),
    (
        "visit_occurrence",
        "visit_start_datetime",
        "visit_end_datetime",
    ),
    (
        "condition_occurrence",
        "condition_start_date",
        "condition_end_date",
    ),
    (
        "drug_exposure",
        "drug_exposure_start_date",
        "drug_exposure_end_date",
    ),
    (
        "procedure_occurrence",
        "procedure_date",
        "procedure_end_date",
    ),
];

/// Counts rows with at least one problem (type, required, order, unknown person) per table.
fn bad_rows(dir: &Path, persons: u64) -> BTreeMap<&'static str, usize> {
    let mut out = BTreeMap::new();
    for table in schema::tables() {
        let (header, rows) = read_table(dir, &table.name);
        let col = |n: &str| header.iter().position(|h| h == n);
        let pairs: Vec<(usize, usize)> = ORDERED
            .iter()
            .filter(|o| o.0 == table.name)
            .map(|o| (col(o.1).expect("start col"), col(o.2).expect("end col")))
            .collect();
        let person_col = col("person_id");
        let mut bad = 0;
        for row in &rows {
            assert_eq!(
                row.len(),
                table.columns.len(),
                "{}: field count",
                table.name
            );
            let mut problem = table
                .columns
                .iter()
                .zip(row)
                .any(|(c, v)| field_problem(v, c.required, c.datatype).is_some());
            for &(s, e) in &pairs {
                if !row[s].is_empty() && !row[e].is_empty() && row[e] < row[s] {
                    problem = true;
                }
            }
            if let Some(pc) = person_col
                && let Ok(pid) = row[pc].parse::<u64>()
                && !(1..=persons).contains(&pid)
            {
                problem = true;
            }
            bad += usize::from(problem);
        }
        out.insert(table.name.as_str(), bad);
    }
    out
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let (a, ra) = generate(300, 11, 0.0);
    let (b, rb) = generate(300, 11, 0.0);
    let (c, _) = generate(300, 12, 0.0);
    assert_eq!(ra, rb);
    for table in schema::TABLE_NAMES {
        let name = crate::schema::csv_file_name(table);
        let fa = std::fs::read(a.path().join(&name)).expect("read a");
        let fb = std::fs::read(b.path().join(&name)).expect("read b");
        assert!(fa == fb, "{name} differs between identical runs");
    }
    for name in ["person.csv", "visit_occurrence.csv", "measurement.csv"] {
        let fa = std::fs::read(a.path().join(name)).expect("read a");
        let fc = std::fs::read(c.path().join(name)).expect("read c");
        assert_ne!(fa, fc, "{name} identical for different seeds");
    }
}

#[test]
fn headers_are_the_cdm_columns() {
    let (dir, report) = generate(20, 1, 0.0);
    let names: Vec<&str> = report.tables.iter().map(|(t, _)| t.as_str()).collect();
    let expected: Vec<&str> = schema::TABLE_NAMES.to_vec();
    assert_eq!(names, expected);
    for table in schema::tables() {
        let (header, _) = read_table(dir.path(), &table.name);
        let cols: Vec<&str> = table.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(header, cols, "{}", table.name);
    }
    // Spot checks against the CDM 5.4 spec.
    assert_eq!(schema::table(schema::DRUG_EXPOSURE).columns.len(), 23);
    assert_eq!(schema::table(schema::MEASUREMENT).columns.len(), 23);
    assert_eq!(
        schema::table(schema::OBSERVATION).columns[20].name,
        "obs_event_field_concept_id"
    );
    assert_eq!(
        schema::table(schema::VISIT_OCCURRENCE).columns[16].name,
        "preceding_visit_occurrence_id"
    );
}

#[test]
fn clean_output_is_valid_and_consistent() {
    let persons = 1_000;
    let (dir, report) = generate(persons, 3, 0.0);
    let dir = dir.path();
    let bad = bad_rows(dir, persons);
    assert!(
        bad.values().all(|&n| n == 0),
        "defects without asking: {bad:?}"
    );

    let rows: HashMap<&str, u64> = report
        .tables
        .iter()
        .map(|(t, n)| (t.as_str(), *n))
        .collect();
    assert_eq!(rows["person"], persons);

    // Ids: 1-based and dense; persons 1..=N with unique source identifiers.
    let (_, people) = read_table(dir, "person");
    let ids: Vec<u64> = people.iter().map(|r| r[0].parse().expect("id")).collect();
    assert_eq!(ids, (1..=persons).collect::<Vec<_>>());
    let sources: HashSet<&str> = people.iter().map(|r| r[11].as_str()).collect();
    assert_eq!(sources.len(), people.len());
    let birth: HashMap<u64, NaiveDate> = people
        .iter()
        .map(|r| (r[0].parse().expect("id"), date(&r[5][..10])))
        .collect();
    for name in [
        "observation_period",
        "visit_occurrence",
        "condition_occurrence",
        "drug_exposure",
        "procedure_occurrence",
        "measurement",
        "observation",
    ] {
        let (_, rs) = read_table(dir, name);
        assert_eq!(rs.len() as u64, rows[name], "{name} count");
        for (k, r) in rs.iter().enumerate() {
            assert_eq!(r[0].parse::<u64>().expect("id"), k as u64 + 1, "{name} ids");
        }
    }

    // Visits lie in observation periods; events share the person and date of their visit.
    let (_, periods) = read_table(dir, "observation_period");
    let mut by_person: HashMap<u64, Vec<(NaiveDate, NaiveDate)>> = HashMap::new();
    for r in &periods {
        by_person
            .entry(r[1].parse().expect("pid"))
            .or_default()
            .push((date(&r[2]), date(&r[3])));
    }
    for (pid, ps) in &mut by_person {
        ps.sort();
        assert!(ps[0].0 >= birth[pid]);
        for w in ps.windows(2) {
            assert!(w[0].1 < w[1].0, "overlapping periods of person {pid}");
        }
    }
    let inside = |pid: u64, d: NaiveDate| by_person[&pid].iter().any(|&(s, e)| s <= d && d <= e);
    let (_, visits) = read_table(dir, "visit_occurrence");
    let mut visit: HashMap<u64, (u64, NaiveDate)> = HashMap::new();
    let mut last_event: HashMap<u64, NaiveDate> = HashMap::new();
    for v in &visits {
        let (id, pid) = (v[0].parse().expect("id"), v[1].parse().expect("pid"));
        let (start, end) = (date(&v[3]), date(&v[5]));
        assert!(
            inside(pid, start) && inside(pid, end),
            "visit outside observation"
        );
        visit.insert(id, (pid, start));
        let e = last_event.entry(pid).or_insert(end);
        *e = (*e).max(end);
    }
    let concepts: HashSet<u64> = read_table(dir, "concept")
        .1
        .iter()
        .map(|r| r[0].parse().expect("concept id"))
        .collect();
    for (name, concept_col, date_col, visit_col, end_col) in [
        ("condition_occurrence", 2, 3, 11, Some(5)),
        ("drug_exposure", 2, 3, 17, Some(5)),
        ("procedure_occurrence", 2, 3, 11, None),
        ("measurement", 2, 3, 14, None),
        ("observation", 2, 3, 12, None),
    ] {
        let (_, rs) = read_table(dir, name);
        for r in &rs {
            let pid: u64 = r[1].parse().expect("pid");
            let d = date(&r[date_col]);
            let (vpid, vdate) = visit[&r[visit_col].parse::<u64>().expect("visit id")];
            assert_eq!((vpid, vdate), (pid, d), "{name} not on its visit");
            assert!(
                concepts.contains(&r[concept_col].parse().expect("concept")),
                "{name}"
            );
            let mut last = d;
            if let Some(ec) = end_col
                && !r[ec].is_empty()
            {
                last = date(&r[ec]);
            }
            let e = last_event.entry(pid).or_insert(last);
            *e = (*e).max(last);
        }
    }
    // Units and demographic concepts are described too.
    let (_, meas) = read_table(dir, "measurement");
    for r in meas.iter().filter(|r| !r[10].is_empty()) {
        assert!(concepts.contains(&r[10].parse().expect("unit")));
    }
    for r in &people {
        for k in [1, 6, 7] {
            assert!(concepts.contains(&r[k].parse().expect("concept")));
        }
    }

    // Deaths: ~1%, after birth, not before any event of the person.
    let (_, deaths) = read_table(dir, "death");
    assert!(
        !deaths.is_empty() && deaths.len() < 40,
        "deaths: {}",
        deaths.len()
    );
    for r in &deaths {
        let pid: u64 = r[0].parse().expect("pid");
        let d = date(&r[1]);
        assert!(d > birth[&pid]);
        if let Some(last) = last_event.get(&pid) {
            assert!(*last <= d, "event after death of person {pid}");
        }
        assert!(by_person[&pid].iter().all(|&(_, e)| e <= d));
    }

    // Ancestors: both NSAID ingredients reach their products, and self rows exist.
    let (_, anc) = read_table(dir, "concept_ancestor");
    let pairs: HashSet<(String, String)> =
        anc.iter().map(|r| (r[0].clone(), r[1].clone())).collect();
    for (a, d) in [
        ("1118084", "1118088"),
        ("1124300", "1124304"),
        ("1118088", "1118088"),
    ] {
        assert!(pairs.contains(&(a.to_string(), d.to_string())), "{a}->{d}");
    }
}

/// The signals the OMOP query suite looks for (queries Q11, Q14, Q15, Q16, Q18, Q21).
#[test]
fn query_suite_parameters_occur_at_1000_persons() {
    for seed in [3, 4] {
        let (dir, _) = generate(1_000, seed, 0.0);
        let dir = dir.path();
        let (_, conds) = read_table(dir, "condition_occurrence");
        let (_, drugs) = read_table(dir, "drug_exposure");
        let (_, meas) = read_table(dir, "measurement");
        let (_, visits) = read_table(dir, "visit_occurrence");
        let (_, periods) = read_table(dir, "observation_period");

        // Q11: penicillin V 500 within 0..30 days of the first strep throat.
        let mut first_strep: HashMap<&str, NaiveDate> = HashMap::new();
        for r in conds.iter().filter(|r| r[2] == "28060") {
            let d = date(&r[3]);
            let e = first_strep.entry(r[1].as_str()).or_insert(d);
            *e = (*e).min(d);
        }
        let treated: HashSet<&str> = drugs
            .iter()
            .filter(|r| r[2] == "19133905")
            .filter(|r| {
                first_strep.get(r[1].as_str()).is_some_and(|&f| {
                    let d = date(&r[3]);
                    d >= f && (d - f).num_days() <= 30
                })
            })
            .map(|r| r[1].as_str())
            .collect();
        assert!(
            first_strep.len() >= 20,
            "strep cases: {}",
            first_strep.len()
        );
        assert!(treated.len() >= 10, "treated: {}", treated.len());

        // Q14: persons with >= 2 systolic readings >= 140.
        let mut high: HashMap<&str, u32> = HashMap::new();
        for r in meas.iter().filter(|r| r[2] == "3004249") {
            if r[8].parse::<f64>().expect("value") >= 140.0 {
                *high.entry(r[1].as_str()).or_default() += 1;
            }
        }
        let hypertensive = high.values().filter(|&&n| n >= 2).count();
        assert!(hypertensive >= 20, "hypertensive: {hypertensive}");

        // Q16: most persons have a period of at least a year.
        let long: HashSet<&str> = periods
            .iter()
            .filter(|r| (date(&r[3]) - date(&r[2])).num_days() >= 365)
            .map(|r| r[1].as_str())
            .collect();
        assert!(
            long.len() > 700,
            "persons with a 365-day period: {}",
            long.len()
        );

        // Q18: inpatient readmissions within 30 days of discharge.
        let mut stays: HashMap<&str, Vec<(NaiveDate, NaiveDate)>> = HashMap::new();
        for r in visits.iter().filter(|r| r[2] == "9201") {
            stays
                .entry(r[1].as_str())
                .or_default()
                .push((date(&r[3]), date(&r[5])));
        }
        let readmitted: usize = stays
            .values()
            .map(|s| {
                s.iter()
                    .filter(|a| s.iter().any(|b| b.0 > a.1 && (b.0 - a.1).num_days() <= 30))
                    .count()
            })
            .sum();
        assert!(readmitted >= 10, "readmissions: {readmitted}");

        // Q21: new users of each NSAID ingredient, some with a GI bleed within 365 days.
        for (ingredient, product) in [("1118084", "1118088"), ("1124300", "1124304")] {
            let mut first: HashMap<&str, NaiveDate> = HashMap::new();
            for r in drugs.iter().filter(|r| r[2] == product) {
                let d = date(&r[3]);
                let e = first.entry(r[1].as_str()).or_insert(d);
                *e = (*e).min(d);
            }
            let bleeders: HashSet<&str> = conds
                .iter()
                .filter(|r| r[2] == "192671")
                .filter(|r| {
                    first.get(r[1].as_str()).is_some_and(|&f| {
                        let d = date(&r[3]);
                        d > f && (d - f).num_days() <= 365
                    })
                })
                .map(|r| r[1].as_str())
                .collect();
            assert!(first.len() >= 10, "{ingredient} users: {}", first.len());
            assert!(
                !bleeders.is_empty(),
                "{ingredient}: no GI bleed (seed {seed})"
            );
        }
    }
}

#[test]
fn realistic_shape() {
    let persons = 2_000;
    let (dir, report) = generate(persons, 5, 0.0);
    let rows: HashMap<&str, u64> = report
        .tables
        .iter()
        .map(|(t, n)| (t.as_str(), *n))
        .collect();
    let visits_per_person = rows["visit_occurrence"] as f64 / persons as f64;
    assert!(
        (15.0..=30.0).contains(&visits_per_person),
        "visits per person: {visits_per_person}"
    );
    let (_, people) = read_table(dir.path(), "person");
    let male = people.iter().filter(|r| r[1] == "8507").count() as f64 / persons as f64;
    assert!((0.45..0.53).contains(&male), "male share {male}");
    let (_, visits) = read_table(dir.path(), "visit_occurrence");
    let share = |c: &str| visits.iter().filter(|r| r[2] == c).count() as f64 / visits.len() as f64;
    assert!(
        (0.85..0.95).contains(&share("9202")),
        "outpatient {}",
        share("9202")
    );
    assert!(
        (0.04..0.10).contains(&share("9203")),
        "ER {}",
        share("9203")
    );
    assert!(
        (0.02..0.06).contains(&share("9201")),
        "inpatient {}",
        share("9201")
    );
    let (_, meas) = read_table(dir.path(), "measurement");
    let sbp: Vec<f64> = meas
        .iter()
        .filter(|r| r[2] == "3004249")
        .map(|r| r[8].parse().expect("value"))
        .collect();
    let mean = sbp.iter().sum::<f64>() / sbp.len() as f64;
    assert!((115.0..135.0).contains(&mean), "mean systolic {mean}");
}

#[test]
fn defects_are_injected_only_when_asked() {
    let persons = 400;
    let (dir, report) = generate(persons, 9, 0.05);
    let bad = bad_rows(dir.path(), persons);
    for t in [
        "visit_occurrence",
        "condition_occurrence",
        "drug_exposure",
        "measurement",
        "observation",
    ] {
        assert!(bad[t] > 0, "no defect in {t}");
    }
    for t in [
        "person",
        "observation_period",
        "death",
        "concept",
        "concept_ancestor",
    ] {
        assert_eq!(bad[t], 0, "{t} should stay clean");
    }
    let rows: HashMap<&str, u64> = report
        .tables
        .iter()
        .map(|(t, n)| (t.as_str(), *n))
        .collect();
    let share = bad["measurement"] as f64 / rows["measurement"] as f64;
    assert!(
        (0.02..0.08).contains(&share),
        "measurement defect share {share}"
    );

    // Each kind of defect shows up somewhere.
    let (_, drugs) = read_table(dir.path(), "drug_exposure");
    let kinds = [
        drugs
            .iter()
            .any(|r| !r[3].is_empty() && NaiveDate::parse_from_str(&r[3], "%Y-%m-%d").is_err()),
        drugs
            .iter()
            .any(|r| !r[2].is_empty() && r[2].parse::<i64>().is_err()),
        drugs.iter().any(|r| r[2].is_empty() || r[3].is_empty()),
        drugs
            .iter()
            .any(|r| r[1].parse::<u64>().is_ok_and(|p| p > persons)),
        drugs.iter().any(|r| r[5] < r[3] && !r[3].is_empty()),
    ];
    assert_eq!(kinds, [true; 5], "defect kinds seen in drug_exposure");
}

#[test]
fn defects_leave_other_rows_untouched() {
    // Same seed: the defect stream is separate, so the row counts are identical.
    let (_, clean) = generate(200, 21, 0.0);
    let (_, dirty) = generate(200, 21, 0.2);
    assert_eq!(clean.tables, dirty.tables);
}

#[test]
fn output_does_not_depend_on_chunking() {
    // One chunk of all persons vs. one chunk per person, rendered with running ids.
    let (persons, seed) = (60u64, 77u64);
    let ctx = Ctx::new(seed, 0.01);
    let mut scratch = Scratch::default();
    let render = |chunk_size: u64, scratch: &mut Scratch| {
        let mut out: [Vec<u8>; N_CLINICAL] = Default::default();
        let mut first = [1u64; N_CLINICAL];
        let mut chunk = Chunk::default();
        let mut lo = 1;
        while lo <= persons {
            chunk.clear();
            let hi = (lo + chunk_size - 1).min(persons);
            for pid in lo..=hi {
                model::generate_person(&ctx, pid, &mut chunk, scratch);
            }
            let mut bufs: [Vec<u8>; N_CLINICAL] = Default::default();
            write::format_chunk(&chunk, seed, persons, &first, &mut bufs);
            for ((o, b), (f, n)) in out
                .iter_mut()
                .zip(&bufs)
                .zip(first.iter_mut().zip(chunk.counts()))
            {
                o.extend_from_slice(b);
                *f += n;
            }
            lo = hi + 1;
        }
        out
    };
    let whole = render(persons, &mut scratch);
    let single = render(1, &mut scratch);
    let odd = render(7, &mut scratch);
    assert!(whole == single && whole == odd);
    assert!(whole.iter().all(|b| !b.is_empty()) || whole[schema::DEATH].is_empty());

    // And the threaded writer agrees with a sequential rendering across chunk borders.
    let (dir, _) = generate(1_100, seed, 0.0);
    let ctx = Ctx::new(seed, 0.0);
    let mut chunk = Chunk::default();
    for pid in 1..=1_100 {
        model::generate_person(&ctx, pid, &mut chunk, &mut scratch);
    }
    let mut bufs: [Vec<u8>; N_CLINICAL] = Default::default();
    write::format_chunk(&chunk, seed, 1_100, &[1; N_CLINICAL], &mut bufs);
    for (t, b) in schema::tables().zip(&bufs) {
        let file =
            std::fs::read(dir.path().join(crate::schema::csv_file_name(&t.name))).expect("read");
        let body = &file[schema::header(t).len()..];
        assert!(
            body == b.as_slice(),
            "{} differs from sequential output",
            t.name
        );
    }
}

#[test]
fn static_texts_never_need_quoting() {
    let clean = |s: &str| !s.contains([',', '"', '\n', '\r']);
    for t in model::all_texts() {
        assert!(clean(t), "{t:?}");
        assert!(t.len() <= 60, "value_as_string too long: {t:?}");
    }
    for c in vocab::ALL_CONCEPTS {
        assert!(clean(c.code), "{}", c.code);
        assert!(c.code.len() <= 50 && c.name.len() <= 255);
    }
    let ids: HashSet<u32> = vocab::ALL_CONCEPTS.iter().map(|c| c.id).collect();
    for d in vocab::WITH_INGREDIENT {
        assert!(ids.contains(&d.c.id) && ids.contains(&d.ingredient.expect("ingredient").id));
    }
}

#[test]
fn rejects_bad_defect_rate_and_handles_zero_persons() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = OmopConfig {
        defects: 1.5,
        ..OmopConfig::default()
    };
    assert!(matches!(
        generate_omop(&cfg, dir.path()),
        Err(crate::Error::InvalidConfig(_))
    ));
    let (dir, report) = generate(0, 1, 0.0);
    assert!(report.tables[..N_CLINICAL].iter().all(|(_, n)| *n == 0));
    let (header, rows) = read_table(dir.path(), "person");
    assert_eq!(header.len(), 18);
    assert!(rows.is_empty());
}

/// `cargo test --release -p agora-synth -- --ignored --nocapture throughput`
#[test]
#[ignore = "benchmark"]
fn throughput() {
    let persons = std::env::var("SYNTH_PERSONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    // SYNTH_OUT keeps the output for inspection.
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = std::env::var_os("SYNTH_OUT").map_or_else(|| tmp.path().to_path_buf(), Into::into);
    let cfg = OmopConfig {
        persons,
        seed: std::env::var("SYNTH_SEED")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1),
        defects: 0.0,
        progress: std::env::var_os("SYNTH_PROGRESS").is_some(),
    };
    let t = std::time::Instant::now();
    let report = generate_omop(&cfg, &out).expect("generate");
    let secs = t.elapsed().as_secs_f64();
    let rows: u64 = report.tables.iter().map(|(_, n)| n).sum();
    println!(
        "{persons} persons in {secs:.2}s: {:.0} persons/s, {:.1}M rows, {:.1} MB ({:.0} B/person)",
        persons as f64 / secs,
        rows as f64 / 1e6,
        report.bytes as f64 / 1e6,
        report.bytes as f64 / persons as f64,
    );
    for (t, n) in &report.tables {
        println!(
            "  {t:<22} {n:>12} ({:.1}/person)",
            *n as f64 / persons as f64
        );
    }
}
