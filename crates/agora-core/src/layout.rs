use std::path::{Path, PathBuf};

/// The on-disk layout of one hub's data directory (default `./agora-data`).
///
/// ```text
/// agora-data/
///   meta.db          metadata store (SQLite, WAL)
///   lake/            Parquet releases and their manifests
///   audit/           access and governance log
///   keys/hub.key     the hub secret (0600, never printed)
///   keys/operator.token  the local operator's API token (0600)
///   keys/audit.key   the audit log's signing key (Ed25519, 0600)
///   locks/           advisory locks held by running ingests
///   views/           operator-added SQL-on-FHIR ViewDefinitions (`agora views add`)
///   exports/         result files researchers asked to take out (`exp_….csv`, 0600)
/// ```
#[derive(Debug, Clone)]
pub struct DataDir {
    root: PathBuf,
    /// A metadata store elsewhere (PostgreSQL for several nodes); `None`: `meta.db` here.
    meta_url: Option<String>,
}

impl DataDir {
    /// The data directory rooted at `root`, with its metadata store in `meta.db` there. Touches
    /// nothing on disk: paths are only computed.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            meta_url: None,
        }
    }

    /// Uses the metadata store at `url` (`postgres://...` or `sqlite://...`) instead of the
    /// directory's own `meta.db`.
    pub fn with_meta_url(mut self, url: Option<String>) -> Self {
        self.meta_url = url.filter(|u| !u.trim().is_empty());
        self
    }

    /// The metadata store's connection URL. Holds credentials for PostgreSQL: never print it.
    pub fn meta_url(&self) -> String {
        match &self.meta_url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}?mode=rwc", self.meta_db().display()),
        }
    }

    /// Whether the metadata store lives outside the directory.
    pub fn has_external_meta(&self) -> bool {
        self.meta_url.is_some()
    }

    /// The directory every other path here is under.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The embedded SQLite metadata store, used unless [`Self::with_meta_url`] set another.
    pub fn meta_db(&self) -> PathBuf {
        self.root.join("meta.db")
    }

    /// The local lake root: Parquet releases and their manifests.
    pub fn lake(&self) -> PathBuf {
        self.root.join("lake")
    }

    /// The access and governance log.
    pub fn audit(&self) -> PathBuf {
        self.root.join("audit")
    }

    /// The directory of secrets ([`Self::hub_key`], [`Self::operator_token`]).
    pub fn keys(&self) -> PathBuf {
        self.root.join("keys")
    }

    /// The hub secret that keys every pseudonym (mode 0600, never printed). Its presence marks
    /// an initialized directory.
    pub fn hub_key(&self) -> PathBuf {
        self.keys().join("hub.key")
    }

    /// The local operator's API token (mode 0600), written by `init`.
    pub fn operator_token(&self) -> PathBuf {
        self.keys().join("operator.token")
    }

    /// The key the audit log's tree heads are signed with (Ed25519, PKCS#8, mode 0600).
    pub fn audit_key(&self) -> PathBuf {
        self.keys().join("audit.key")
    }

    /// Advisory lock files held by running ingests (one writer per dataset).
    pub fn locks(&self) -> PathBuf {
        self.root.join("locks")
    }

    /// Operator-added SQL-on-FHIR ViewDefinitions, applied at every FHIR ingest.
    pub fn views(&self) -> PathBuf {
        self.root.join("views")
    }

    /// Result files of export requests, one per request, named after its id; created on
    /// first use (owner only).
    pub fn exports(&self) -> PathBuf {
        self.root.join("exports")
    }

    /// Derived facts about immutable releases (quality profiles), recomputable at any time.
    pub fn profiles(&self) -> PathBuf {
        self.root.join("profiles")
    }

    /// Scratch space for query spilling; never holds committed data.
    pub fn spill(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// A directory counts as initialized once its hub key exists: `init` writes it last.
    pub fn is_initialized(&self) -> bool {
        self.hub_key().is_file()
    }
}
