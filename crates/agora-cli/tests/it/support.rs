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

impl Hub {
    /// Runs `agora args` as the holder of `token`, feeding `stdin`; returns stdout.
    pub(crate) fn ok_as(&self, token: &str, args: &[&str], stdin: &str) -> String {
        use std::io::Write;
        let mut child = self
            .command(args)
            .env("AGORA_TOKEN", token)
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
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "agora {args:?} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Sets a local account's password (as the local operator).
    pub(crate) fn set_password(&self, user: &str, password: &str) {
        use std::io::Write;
        let mut child = self
            .command(&["user", "password", user])
            .env_remove("AGORA_TOKEN")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
        assert!(child.wait().unwrap().success());
    }

    /// Every access event, as the service recorded it (newest first).
    pub(crate) fn access_log(&self) -> Vec<agora_govern::AccessEvent> {
        tokio::runtime::Runtime::new().unwrap().block_on(async {
            let store = agora_govern::MetaStore::open_sqlite(&self.data_dir().join("meta.db"))
                .await
                .unwrap();
            store.recent_access_events(i64::MAX).await.unwrap()
        })
    }

    /// Records the opt-out of the persons with these hub keys (as the operator would).
    pub(crate) fn opt_out(&self, keys: &[i64]) {
        tokio::runtime::Runtime::new().unwrap().block_on(async {
            let store = agora_govern::MetaStore::open_sqlite(&self.data_dir().join("meta.db"))
                .await
                .unwrap();
            for &key in keys {
                store
                    .opt_out(key, agora_govern::OptOutChannel::Operator, "op")
                    .await
                    .unwrap();
            }
        });
    }

    /// `(front, outcome)` of every access event, oldest first.
    pub(crate) fn access_events(&self) -> Vec<(String, String)> {
        let mut events = self.access_log();
        events.reverse();
        events
            .into_iter()
            .map(|e| {
                let outcome = serde_json::to_value(e.outcome).unwrap();
                (e.front, outcome.as_str().unwrap().to_owned())
            })
            .collect()
    }
}

/// A researcher's active data permit and API token.
pub(crate) struct Permit {
    pub(crate) id: String,
    pub(crate) token: String,
}

/// Creates researcher `user` (and reviewer `rita` if needed), and takes a project through
/// application, review and approval with `grant` (a permit grant, JSON) to an active permit.
pub(crate) fn researcher_permit(hub: &Hub, user: &str, grant: &serde_json::Value) -> Permit {
    let exists = |id: &str| hub.run(&["user", "show", id]).status.success();
    if !exists("rita") {
        hub.ok(&[
            "user", "create", "rita", "--name", "Rita", "--role", "reviewer",
        ]);
    }
    hub.ok(&[
        "user",
        "create",
        user,
        "--name",
        user,
        "--role",
        "researcher",
    ]);
    let issue = |id: &str| hub.ok(&["user", "token", "issue", id]).trim().to_owned();
    let (rita, token) = (issue("rita"), issue(user));
    let form = hub.data_dir().join(format!("form-{user}.json"));
    std::fs::write(&form, hub.ok(&["project", "template"])).unwrap();
    let json = |out: String| -> serde_json::Value { serde_json::from_str(&out).unwrap() };
    let app = json(hub.ok_as(
        &token,
        &[
            "project",
            "create",
            "--file",
            form.to_str().unwrap(),
            "--json",
        ],
        "",
    ));
    let app = app["id"].as_str().unwrap().to_owned();
    hub.ok_as(&token, &["project", "submit", &app], "");
    hub.ok_as(
        &rita,
        &["project", "move", &app, "under_review", "--comment", "ok"],
        "",
    );
    let grant_file = hub.data_dir().join(format!("grant-{user}.json"));
    std::fs::write(&grant_file, grant.to_string()).unwrap();
    hub.ok_as(
        &rita,
        &[
            "project",
            "approve",
            &app,
            "--file",
            grant_file.to_str().unwrap(),
        ],
        "",
    );
    hub.ok(&["project", "move", &app, "active"]);
    let permits = json(hub.ok_as(&token, &["permit", "list", "--json"], ""));
    let id = permits[0]["id"].as_str().unwrap().to_owned();
    Permit { id, token }
}

/// A running `agora serve` on a free loopback port, stopped with SIGTERM on drop.
pub(crate) struct Server {
    child: Child,
    base: String,
    /// The Flight SQL address, when started with `--flight-listen`.
    flight: Option<String>,
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
        let wants_flight = extra.contains(&"--flight-listen");
        let wants_pg = extra.contains(&"--pg-listen");
        let (mut base, mut flight, mut pg) = (None, None, None);
        while base.is_none() || (wants_flight && flight.is_none()) || (wants_pg && pg.is_none()) {
            line.clear();
            assert!(
                stderr.read_line(&mut line).unwrap() > 0,
                "server exited before listening"
            );
            let address = |rest: &str| rest.split_whitespace().next().unwrap().to_owned();
            if let Some(rest) = line.trim().strip_prefix("Agora listening on ") {
                base = Some(address(rest));
            } else if let Some(rest) = line
                .trim()
                .strip_prefix("Agora Flight SQL listening on grpc://")
            {
                flight = Some(address(rest));
            } else if let Some(rest) = line.trim().strip_prefix("Agora PostgreSQL protocol on ") {
                pg = Some(address(rest));
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
            flight,
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

    /// The Flight SQL address (`host:port`).
    pub(crate) fn flight_addr(&self) -> &str {
        self.flight
            .as_deref()
            .expect("started without --flight-listen")
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
