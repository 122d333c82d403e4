use std::path::{Path, PathBuf};
use std::process::{Command, Output};

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

    pub(crate) fn sql_tsv(&self, dataset: &str, sql: &str) -> String {
        self.ok(&["sql", "--dataset", dataset, "--format", "tsv", sql])
    }

    pub(crate) fn token(&self) -> String {
        std::fs::read_to_string(self.data_dir().join("keys/operator.token")).unwrap()
    }
}
