//! What the server keeps between calls: planned statements waiting for their `DoGet`, and
//! open prepared statements. Handles are random (128 bits), bound to the principal that
//! made them, and expire.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use agora_service::{Parameter, PlannedQuery};

/// A planned statement's ticket is usable this long; the statement holds one of its
/// principal's running-statement slots meanwhile.
const TICKET_LIFETIME: Duration = Duration::from_secs(60);
/// A prepared statement not used for this long is closed.
const PREPARED_IDLE: Duration = Duration::from_secs(3600);
/// Open prepared statements per principal.
const MAX_PREPARED_PER_PRINCIPAL: usize = 256;

/// A ticket or prepared-statement handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Handle([u8; 16]);

impl Handle {
    fn random() -> Self {
        // rand's thread generator is a CSPRNG: handles cannot be guessed.
        Self(rand::random())
    }

    pub(crate) fn to_bytes(self) -> Vec<u8> {
        self.0.to_vec()
    }

    pub(crate) fn from_bytes(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(Self)
    }
}

/// A statement planned by `GetFlightInfo`, run by the `DoGet` of its ticket, which plans
/// it again from its permit, text and parameters.
pub(crate) struct Pending {
    owner: String,
    pub(crate) permit: String,
    pub(crate) sql: String,
    pub(crate) params: Vec<Parameter>,
    /// Holds one of the owner's running-statement slots until the ticket is redeemed.
    pub(crate) planned: PlannedQuery,
    at: Instant,
}

impl Pending {
    pub(crate) fn new(
        owner: String,
        permit: String,
        sql: String,
        params: Vec<Parameter>,
        planned: PlannedQuery,
    ) -> Self {
        Self {
            owner,
            permit,
            sql,
            params,
            planned,
            at: Instant::now(),
        }
    }
}

/// A prepared statement: its text and the parameters last bound.
pub(crate) struct Prepared {
    owner: String,
    sql: String,
    params: Vec<Parameter>,
    used: Instant,
}

impl Prepared {
    pub(crate) fn new(owner: String, sql: String) -> Self {
        Self {
            owner,
            sql,
            params: Vec::new(),
            used: Instant::now(),
        }
    }
}

#[derive(Default)]
pub(crate) struct State {
    pending: Mutex<HashMap<Handle, Pending>>,
    prepared: Mutex<HashMap<Handle, Prepared>>,
}

impl State {
    /// Drops expired tickets (giving back their running slots) and idle prepared statements.
    pub(crate) fn sweep(&self) {
        let now = Instant::now();
        self.pending
            .lock()
            .expect("tickets poisoned")
            .retain(|_, p| now.duration_since(p.at) < TICKET_LIFETIME);
        self.prepared
            .lock()
            .expect("prepared statements poisoned")
            .retain(|_, p| now.duration_since(p.used) < PREPARED_IDLE);
    }

    pub(crate) fn add_pending(&self, pending: Pending) -> Handle {
        let handle = Handle::random();
        self.pending
            .lock()
            .expect("tickets poisoned")
            .insert(handle, pending);
        handle
    }

    /// The statement of a ticket, once, for its owner only.
    pub(crate) fn take_pending(&self, handle: &Handle, owner: &str) -> Option<Pending> {
        let mut pending = self.pending.lock().expect("tickets poisoned");
        match pending.get(handle) {
            Some(p) if p.owner == owner && p.at.elapsed() < TICKET_LIFETIME => {
                pending.remove(handle)
            }
            _ => None,
        }
    }

    pub(crate) fn add_prepared(&self, prepared: Prepared) -> agora_service::Result<Handle> {
        let mut all = self.prepared.lock().expect("prepared statements poisoned");
        let open = all.values().filter(|p| p.owner == prepared.owner).count();
        if open >= MAX_PREPARED_PER_PRINCIPAL {
            return Err(agora_service::Error::InvalidInput(format!(
                "you have {open} prepared statements open, the most one user may keep: \
                 close some"
            )));
        }
        let handle = Handle::random();
        all.insert(handle, prepared);
        Ok(handle)
    }

    /// A prepared statement's text and bound parameters, for its owner only.
    pub(crate) fn prepared(
        &self,
        handle: &Handle,
        owner: &str,
    ) -> Option<(String, Vec<Parameter>)> {
        let mut all = self.prepared.lock().expect("prepared statements poisoned");
        let p = all.get_mut(handle).filter(|p| p.owner == owner)?;
        p.used = Instant::now();
        Some((p.sql.clone(), p.params.clone()))
    }

    /// Binds parameters to a prepared statement; false when it is unknown to `owner`.
    pub(crate) fn bind(&self, handle: &Handle, owner: &str, params: Vec<Parameter>) -> bool {
        let mut all = self.prepared.lock().expect("prepared statements poisoned");
        match all.get_mut(handle).filter(|p| p.owner == owner) {
            Some(p) => {
                p.params = params;
                p.used = Instant::now();
                true
            }
            None => false,
        }
    }

    pub(crate) fn close(&self, handle: &Handle, owner: &str) {
        let mut all = self.prepared.lock().expect("prepared statements poisoned");
        if all.get(handle).is_some_and(|p| p.owner == owner) {
            all.remove(handle);
        }
    }
}
