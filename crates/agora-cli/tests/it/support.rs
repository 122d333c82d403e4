use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

pub(crate) fn shared(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared")
        .join(rel)
}

/// A hub in a temporary data directory, driven through the real binary.
pub(crate) struct Hub {
    pub(crate) dir: tempfile::TempDir,
}

impl Hub {
    pub(crate) fn init() -> Self {
        let hub = Self {
            dir: tempfile::tempdir().unwrap(),
        };
        hub.ok(&["init"]);
        hub
    }

    pub(crate) fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    pub(crate) fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_agora"));
        cmd.arg("--data-dir")
            .arg(self.data_dir())
            .args(args)
            .env_remove("AGORA_DATA_DIR");
        cmd
    }

    pub(crate) fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Runs and asserts success; returns stdout.
    pub(crate) fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "agora {args:?} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs, asserts failure; returns stderr.
    pub(crate) fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            !out.status.success(),
            "agora {args:?} unexpectedly succeeded"
        );
        String::from_utf8(out.stderr).unwrap()
    }

    /// Ingests the OMOP extract at `source` as a new release of `dataset`.
    pub(crate) fn ingest(&self, dataset: &str, source: &Path) -> String {
        self.ok(&[
            "ingest",
            "omop",
            "--dataset",
            dataset,
            source.to_str().unwrap(),
        ])
    }

    /// Runs `sql` through stdin (suite statements start with comments, which a shell
    /// argument would take for an option): TSV on success, stderr on failure.
    pub(crate) fn sql_stdin(&self, dataset: &str, sql: &str) -> Result<String, String> {
        use std::io::Write;
        use std::process::Stdio;
        let mut child = self
            .command(&["sql", "--dataset", dataset, "--format", "tsv", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(sql.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        Ok(String::from_utf8(out.stdout).unwrap())
    }

    pub(crate) fn sql_tsv(&self, dataset: &str, sql: &str) -> String {
        self.ok(&["sql", "--dataset", dataset, "--format", "tsv", sql])
    }

    pub(crate) fn token(&self) -> String {
        std::fs::read_to_string(self.data_dir().join("keys/operator.token")).unwrap()
    }
}

/// A running `agora serve` on a free loopback port, stopped with SIGTERM on drop.
pub(crate) struct Server {
    child: Child,
    base: String,
    /// The PostgreSQL listener's address, when started with `--pg-listen`.
    pg: Option<String>,
    /// Everything the server printed on stderr, collected until it exits.
    log: std::thread::JoinHandle<String>,
}

impl Server {
    pub(crate) fn start(hub: &Hub) -> Self {
        Self::start_with(hub, &[])
    }

    /// Starts `agora serve` with `extra` arguments (e.g. `--public-rate-limit 0`).
    pub(crate) fn start_with(hub: &Hub, extra: &[&str]) -> Self {
        let mut args = vec!["serve", "--listen", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        let mut child = hub.command(&args).stderr(Stdio::piped()).spawn().unwrap();
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        let wants_pg = extra.contains(&"--pg-listen");
        let (mut base, mut pg) = (None, None);
        while base.is_none() || (wants_pg && pg.is_none()) {
            line.clear();
            assert!(
                stderr.read_line(&mut line).unwrap() > 0,
                "server exited before listening"
            );
            if let Some(rest) = line.trim().strip_prefix("Agora listening on ") {
                base = Some(rest.split_whitespace().next().unwrap().to_owned());
            }
            if let Some(rest) = line.trim().strip_prefix("Agora PostgreSQL protocol on ") {
                pg = Some(rest.split_whitespace().next().unwrap().to_owned());
            }
        }
        let base = base.unwrap();
        let log = std::thread::spawn(move || {
            let mut rest = String::new();
            let _ = std::io::Read::read_to_string(&mut stderr, &mut rest);
            rest
        });
        Self {
            child,
            base,
            pg,
            log,
        }
    }

    /// The PostgreSQL listener's port (`--pg-listen` given).
    pub(crate) fn pg_port(&self) -> u16 {
        let addr = self.pg.as_deref().expect("started without --pg-listen");
        addr.rsplit(':').next().unwrap().parse().unwrap()
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends SIGTERM; returns whether the server exited cleanly, and its log.
    pub(crate) fn stop(mut self) -> (bool, String) {
        let status = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let clean = self.child.wait().unwrap().success();
        let log = std::mem::replace(&mut self.log, std::thread::spawn(String::new));
        (clean, log.join().unwrap())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
