//! Agora's own deterministic synthetic OMOP CDM 5.4 generator.
//!
//! [`generate_omop`] writes one CSV per table (`person.csv`, `observation_period.csv`,
//! `visit_occurrence.csv`, `condition_occurrence.csv`, `drug_exposure.csv`,
//! `procedure_occurrence.csv`, `measurement.csv`, `observation.csv`, `death.csv`,
//! `concept.csv`, `concept_ancestor.csv`) with every CDM 5.4 column of the table, in CDM order.
//! Empty fields are NULL; dates are `YYYY-MM-DD`, datetimes `YYYY-MM-DD HH:MM:SS`.
//!
//! What it is:
//! - **deterministic**: the same `persons` and `seed` give byte-identical files on any machine
//!   and with any number of threads (each person draws from its own stream of `(seed, id)`;
//!   "today" is fixed at 2024-12-31);
//! - **streaming**: persons are generated in fixed-size chunks and written as they come, so
//!   memory does not grow with the number of persons;
//! - **plausible enough for analytics**: an age pyramid, chronic conditions with their
//!   treatments and refills, acute problems by care setting, vital signs and labs with
//!   per-person baselines, readmissions, deaths, and the signals the project's OMOP query suite
//!   looks for (strep throat treated with penicillin V, repeated high systolic pressure, NSAID
//!   users with GI bleeds, populated `concept_ancestor` for the NSAID ingredients);
//! - **a test bed for quality control**: with `defects > 0`, that share of clinical event rows
//!   carries exactly one realistic defect (unparseable date, text in an integer column, empty
//!   required field, end before start, or a person that does not exist).
//!
//! What it is not: a clinical simulator (frequencies are illustrative, and GI bleeds after
//! NSAIDs are deliberately far more frequent than in reality), nor a copy of any third-party
//! data set. Concept ids, names and codes are public OMOP vocabulary facts; `concept.csv`
//! describes exactly the ~220 concepts the generator emits, not a full vocabulary.
//!
//! ```no_run
//! use agora_synth::{OmopConfig, generate_omop};
//!
//! let cfg = OmopConfig { persons: 1_000, seed: 7, ..OmopConfig::default() };
//! let report = generate_omop(&cfg, std::path::Path::new("/tmp/omop"))?;
//! for (table, rows) in &report.tables {
//!     println!("{table}: {rows} rows");
//! }
//! # Ok::<(), agora_synth::Error>(())
//! ```

#![warn(missing_docs)]

mod date;
mod error;
mod model;
mod rng;
mod schema;
// Long tables of one-line concept constants; rustfmt would make each eight lines.
#[rustfmt::skip]
mod vocab;
mod write;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};

pub use error::{Error, Result};

use model::{Chunk, Ctx, Scratch};
use schema::N_CLINICAL;

/// What to generate.
#[derive(Clone, Debug, PartialEq)]
pub struct OmopConfig {
    /// Number of persons; their ids are `1..=persons`.
    pub persons: u64,
    /// Seed of every random choice: same seed, same bytes.
    pub seed: u64,
    /// Share (`0.0..=1.0`) of clinical event rows that carry one deliberate data-quality defect.
    pub defects: f64,
    /// Show a progress bar on stderr.
    pub progress: bool,
}

impl Default for OmopConfig {
    fn default() -> Self {
        OmopConfig {
            persons: 1_000,
            seed: 0,
            defects: 0.0,
            progress: false,
        }
    }
}

/// What was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GenerateReport {
    /// `(table, rows)` for every file written, header excluded.
    pub tables: Vec<(String, u64)>,
    /// Total size of the files written.
    pub bytes: u64,
}

/// Persons per unit of work; ids of a chunk are only known once all earlier chunks are counted.
const CHUNK: u64 = 512;

/// Generates the data set into `out_dir` (created if missing; existing files are replaced):
/// one CSV file per table.
pub fn generate_omop(cfg: &OmopConfig, out_dir: &Path) -> Result<GenerateReport> {
    std::fs::create_dir_all(out_dir).map_err(|e| Error::io(out_dir, e))?;
    generate_omop_with(cfg, &|table: &str| {
        let path = out_dir.join(schema::csv_file_name(table));
        let file = File::create(&path).map_err(|e| Error::io(&path, e))?;
        Ok(Box::new(CsvFile {
            path,
            out: BufWriter::with_capacity(1 << 18, file),
        }) as Box<dyn TableSink>)
    })
}

/// Where one table's CSV text goes (header first, then rows, in order): a file for
/// [`generate_omop`], or a converter, so that another format is written without first
/// staging a CSV copy of the whole data set.
pub trait TableSink: Write {
    /// Where the table is stored, for error messages.
    fn path(&self) -> &Path;
    /// Called once, after the last row: completes the output and returns its size in bytes.
    fn finish(self: Box<Self>) -> std::io::Result<u64>;
}

/// Generates the data set into sinks that `open` makes, one per table name; its errors
/// should name the output ([`Error::io`]).
pub fn generate_omop_with(
    cfg: &OmopConfig,
    open: &dyn Fn(&str) -> Result<Box<dyn TableSink>>,
) -> Result<GenerateReport> {
    if !(0.0..=1.0).contains(&cfg.defects) {
        return Err(Error::InvalidConfig("defects must be within 0.0..=1.0"));
    }

    let mut outputs: Outputs = Vec::with_capacity(N_CLINICAL);
    for table in schema::tables().take(N_CLINICAL) {
        let mut sink = open(&table.name)?;
        sink.write_all(schema::header(table).as_bytes())
            .map_err(|e| Error::io(sink.path(), e))?;
        outputs.push(sink);
    }

    let ctx = Ctx::new(cfg.seed, cfg.defects);
    let rows = run(cfg, &ctx, &mut outputs)?;

    let mut tables: Vec<(String, u64)> = schema::TABLE_NAMES[..N_CLINICAL]
        .iter()
        .zip(rows)
        .map(|(t, n)| (t.to_string(), n))
        .collect();
    let mut bytes = 0;
    for sink in outputs {
        bytes += finish(sink)?;
    }
    let (rows, size) = write_concepts(open(schema::TABLE_NAMES[schema::CONCEPT])?)?;
    tables.push(("concept".into(), rows));
    bytes += size;
    let (rows, size) = write_ancestors(open(schema::TABLE_NAMES[schema::CONCEPT_ANCESTOR])?)?;
    tables.push(("concept_ancestor".into(), rows));
    bytes += size;
    Ok(GenerateReport { tables, bytes })
}

fn finish(sink: Box<dyn TableSink>) -> Result<u64> {
    let path = sink.path().to_path_buf();
    sink.finish().map_err(|e| Error::io(path, e))
}

/// A CSV file.
struct CsvFile {
    path: PathBuf,
    out: BufWriter<File>,
}

impl Write for CsvFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.out.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

impl TableSink for CsvFile {
    fn path(&self) -> &Path {
        &self.path
    }

    fn finish(mut self: Box<Self>) -> std::io::Result<u64> {
        self.out.flush()?;
        Ok(self.out.get_ref().metadata()?.len())
    }
}

type Outputs = Vec<Box<dyn TableSink>>;
type Bufs = [Vec<u8>; N_CLINICAL];

struct State {
    /// Row counts of generated chunks whose ids are not yet assigned.
    counts: BTreeMap<u64, [u64; N_CLINICAL]>,
    /// First ids of chunks whose predecessors are all counted.
    firsts: BTreeMap<u64, [u64; N_CLINICAL]>,
    /// Next chunk to receive its first ids, and those ids.
    next_first: u64,
    running: [u64; N_CLINICAL],
    /// Chunks written so far (workers stay within a window ahead of it).
    written: u64,
    pool: Vec<Bufs>,
}

struct Shared {
    state: Mutex<State>,
    cv: Condvar,
    abort: AtomicBool,
    next_chunk: AtomicU64,
    n_chunks: u64,
    window: u64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock only means another worker panicked; `abort` handles that.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wait<'a>(&self, g: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        self.cv.wait(g).unwrap_or_else(|e| e.into_inner())
    }

    fn stop(&self) {
        self.abort.store(true, Ordering::SeqCst);
        let _g = self.lock();
        self.cv.notify_all();
    }
}

/// Stops everyone if a worker unwinds, so nobody waits forever for its chunk.
struct StopOnPanic<'a>(&'a Shared);

impl Drop for StopOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.stop();
        }
    }
}

/// Generates with worker threads; the calling thread writes chunks in order.
fn run(cfg: &OmopConfig, ctx: &Ctx, outputs: &mut Outputs) -> Result<[u64; N_CLINICAL]> {
    let n_chunks = cfg.persons.div_ceil(CHUNK);
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 16)
        .min(n_chunks.max(1) as usize);
    let shared = Shared {
        state: Mutex::new(State {
            counts: BTreeMap::new(),
            firsts: BTreeMap::new(),
            next_first: 0,
            running: [1; N_CLINICAL],
            written: 0,
            pool: Vec::new(),
        }),
        cv: Condvar::new(),
        abort: AtomicBool::new(false),
        next_chunk: AtomicU64::new(0),
        n_chunks,
        window: 2 * threads as u64 + 2,
    };
    let bar = progress_bar(cfg);
    let mut totals = [0u64; N_CLINICAL];
    let mut failure = None;

    std::thread::scope(|s| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<(u64, Bufs, [u64; N_CLINICAL])>(threads);
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let tx = tx.clone();
                let shared = &shared;
                s.spawn(move || worker(cfg, ctx, shared, tx))
            })
            .collect();
        drop(tx);

        let mut pending = BTreeMap::new();
        let mut next = 0u64;
        'recv: for (c, bufs, counts) in rx {
            pending.insert(c, (bufs, counts));
            while let Some((bufs, counts)) = pending.remove(&next) {
                for (w, buf) in outputs.iter_mut().zip(bufs.iter()) {
                    if let Err(e) = w.write_all(buf) {
                        failure = Some(Error::io(w.path(), e));
                        shared.stop();
                        break 'recv;
                    }
                }
                for (t, n) in totals.iter_mut().zip(counts) {
                    *t += n;
                }
                let persons = counts[schema::PERSON];
                next += 1;
                {
                    let mut st = shared.lock();
                    st.written = next;
                    st.pool.push(bufs);
                    shared.cv.notify_all();
                }
                bar.inc(persons);
            }
        }
        for h in handles {
            if h.join().is_err() && failure.is_none() {
                failure = Some(Error::WorkerPanicked);
            }
        }
    });
    bar.finish_and_clear();
    match failure {
        Some(e) => Err(e),
        None => Ok(totals),
    }
}

fn worker(
    cfg: &OmopConfig,
    ctx: &Ctx,
    shared: &Shared,
    tx: std::sync::mpsc::SyncSender<(u64, Bufs, [u64; N_CLINICAL])>,
) {
    let _guard = StopOnPanic(shared);
    let mut chunk = Chunk::default();
    let mut scratch = Scratch::default();
    loop {
        let c = shared.next_chunk.fetch_add(1, Ordering::SeqCst);
        if c >= shared.n_chunks || shared.abort.load(Ordering::SeqCst) {
            return;
        }
        // Bound memory: do not run too far ahead of the writer.
        let mut st = shared.lock();
        while c >= st.written + shared.window && !shared.abort.load(Ordering::SeqCst) {
            st = shared.wait(st);
        }
        drop(st);

        chunk.clear();
        let lo = c * CHUNK + 1;
        let hi = ((c + 1) * CHUNK).min(cfg.persons);
        for pid in lo..=hi {
            model::generate_person(ctx, pid, &mut chunk, &mut scratch);
        }
        let counts = chunk.counts();

        // Publish our counts, resolve every chunk whose predecessors are known, wait for ours.
        let mut st = shared.lock();
        st.counts.insert(c, counts);
        loop {
            let k = st.next_first;
            let Some(n) = st.counts.remove(&k) else { break };
            let running = st.running;
            st.firsts.insert(k, running);
            for (r, n) in st.running.iter_mut().zip(n) {
                *r += n;
            }
            st.next_first += 1;
        }
        shared.cv.notify_all();
        let first = loop {
            if let Some(f) = st.firsts.remove(&c) {
                break f;
            }
            if shared.abort.load(Ordering::SeqCst) {
                return;
            }
            st = shared.wait(st);
        };
        let mut bufs = st.pool.pop().unwrap_or_default();
        drop(st);

        for b in bufs.iter_mut() {
            b.clear();
        }
        write::format_chunk(&chunk, cfg.seed, cfg.persons, &first, &mut bufs);
        if tx.send((c, bufs, counts)).is_err() {
            return;
        }
    }
}

fn progress_bar(cfg: &OmopConfig) -> indicatif::ProgressBar {
    if !cfg.progress {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(cfg.persons),
        indicatif::ProgressDrawTarget::stderr(),
    );
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {bar:40} {human_pos}/{human_len} persons ({per_sec}, eta {eta})",
    ) {
        bar.set_style(style);
    }
    bar
}

fn csv_err(path: &Path) -> impl Fn(csv::Error) -> Error + '_ {
    move |source| Error::Csv {
        path: path.to_path_buf(),
        source,
    }
}

/// Flushes the CSV writer and finishes its sink.
fn finish_csv(w: csv::Writer<Box<dyn TableSink>>, path: &Path) -> Result<u64> {
    let sink = w
        .into_inner()
        .map_err(|e| Error::io(path, e.into_error()))?;
    finish(sink)
}

/// `concept`: every concept the generator can emit, sorted by id. Returns rows and bytes.
fn write_concepts(sink: Box<dyn TableSink>) -> Result<(u64, u64)> {
    let mut all: Vec<&vocab::Concept> = vocab::ALL_CONCEPTS.to_vec();
    all.sort_by_key(|c| c.id);
    all.dedup_by_key(|c| c.id);
    let path = sink.path().to_path_buf();
    let mut w = csv::WriterBuilder::new().from_writer(sink);
    let err = csv_err(&path);
    let cols = schema::table(schema::CONCEPT)
        .columns
        .iter()
        .map(|c| c.name.as_str());
    w.write_record(cols).map_err(&err)?;
    let mut id = String::new();
    for c in &all {
        id.clear();
        id.push_str(&c.id.to_string());
        let standard = if c.standard { "S" } else { "" };
        w.write_record([
            id.as_str(),
            c.name,
            c.domain,
            c.vocabulary,
            c.class,
            standard,
            c.code,
            "1970-01-01",
            "2099-12-31",
            "",
        ])
        .map_err(&err)?;
    }
    Ok((all.len() as u64, finish_csv(w, &path)?))
}

/// `concept_ancestor`: ingredient -> product pairs, plus the zero-level self rows of every
/// drug concept. Returns rows and bytes.
fn write_ancestors(sink: Box<dyn TableSink>) -> Result<(u64, u64)> {
    let mut rows: Vec<(u32, u32, u8)> = Vec::new();
    for c in vocab::ALL_CONCEPTS.iter().filter(|c| c.domain == "Drug") {
        rows.push((c.id, c.id, 0));
    }
    for d in vocab::WITH_INGREDIENT {
        if let Some(ing) = d.ingredient {
            // Ingredient -> Clinical Drug Component -> Clinical Drug.
            rows.push((ing.id, d.c.id, 2));
        }
    }
    rows.sort_unstable();
    rows.dedup();
    let path = sink.path().to_path_buf();
    let mut w = csv::WriterBuilder::new().from_writer(sink);
    let err = csv_err(&path);
    let cols = schema::table(schema::CONCEPT_ANCESTOR)
        .columns
        .iter()
        .map(|c| c.name.as_str());
    w.write_record(cols).map_err(&err)?;
    for &(a, d, levels) in &rows {
        let (a, d, l) = (a.to_string(), d.to_string(), levels.to_string());
        w.write_record([a.as_str(), d.as_str(), l.as_str(), l.as_str()])
            .map_err(&err)?;
    }
    Ok((rows.len() as u64, finish_csv(w, &path)?))
}
