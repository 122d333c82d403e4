//! Assigning hub person keys, collision-free thanks to the registry in the metadata store.

use std::collections::HashMap;

use agora_govern::MetaStore;
use agora_privacy::PersonKeyer;

use crate::Result;

/// Resolves identities to hub person keys for one ingest.
pub(crate) struct KeyResolver {
    keyer: PersonKeyer,
    meta: MetaStore,
    runtime: tokio::runtime::Handle,
    /// Every key this ingest has looked at: from the registry or newly assigned.
    known: HashMap<i64, i64>,
    /// Keys first assigned by this ingest, committed with the release.
    pub new_persons: Vec<(i64, i64)>,
}

impl KeyResolver {
    pub(crate) fn new(
        keyer: PersonKeyer,
        meta: MetaStore,
        runtime: tokio::runtime::Handle,
    ) -> Self {
        Self {
            keyer,
            meta,
            runtime,
            known: HashMap::new(),
            new_persons: Vec::new(),
        }
    }

    /// The hub person key of each identity. Equal identities get equal keys; different
    /// identities never share a key: on a 63-bit collision the later identity moves to the
    /// next derivation attempt, deterministically, because the registry remembers who came
    /// first.
    pub(crate) fn resolve(&mut self, identities: &[&[u8]]) -> Result<Vec<i64>> {
        let mut keys = vec![0i64; identities.len()];
        let mut pending: Vec<(usize, u32)> = (0..identities.len()).map(|i| (i, 0)).collect();
        while !pending.is_empty() {
            let digests: Vec<_> = pending
                .iter()
                .map(|&(i, attempt)| self.keyer.derive(identities[i], attempt))
                .collect();
            let unknown: Vec<i64> = digests
                .iter()
                .map(|d| d.key)
                .filter(|k| !self.known.contains_key(k))
                .collect();
            if !unknown.is_empty() {
                let registered = self
                    .runtime
                    .block_on(self.meta.lookup_person_keys(&unknown))?;
                self.known.extend(registered);
            }
            let mut retry = Vec::new();
            for (&(i, attempt), d) in pending.iter().zip(&digests) {
                match self.known.get(&d.key) {
                    Some(&check) if check == d.check => keys[i] = d.key,
                    Some(_) => retry.push((i, attempt + 1)),
                    None => {
                        self.known.insert(d.key, d.check);
                        self.new_persons.push((d.key, d.check));
                        keys[i] = d.key;
                    }
                }
            }
            pending = retry;
        }
        Ok(keys)
    }
}
