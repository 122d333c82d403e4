//! `visit_occurrence_id`s for Encounters, known before any event refers to one.
//!
//! Events may come before their Encounter (NDJSON files are read in name order, and
//! `Condition` sorts before `Encounter`), so pass 1 registers every Encounter id. A visit id is
//! a keyed pseudonym of the Encounter id (HMAC under the hub secret, namespace `visit\0`): it
//! is stable across releases, reveals nothing of the source id (a hospital's visit number),
//! and needs no id → number table — 24 bytes per Encounter in memory. As for person keys, a
//! 63-bit collision moves the later id to the next derivation attempt, so ids are unique.

use std::collections::HashMap;

use agora_privacy::PersonKeyer;

pub(crate) struct Visits {
    keyer: PersonKeyer,
    slots: HashMap<i64, Slot>,
}

struct Slot {
    check: i64,
    /// Event rows stored with this visit id.
    refs: u64,
    /// A visit row was stored with this id.
    stored: bool,
}

impl Visits {
    pub(crate) fn new(keyer: PersonKeyer) -> Self {
        Self {
            keyer,
            slots: HashMap::new(),
        }
    }

    fn digest(&self, id: &str, attempt: u32) -> (i64, i64) {
        let d = self
            .keyer
            .derive(&[b"visit\0".as_slice(), id.as_bytes()].concat(), attempt);
        (d.key, d.check)
    }

    /// Pass 1: an Encounter with this id is in the extract.
    pub(crate) fn register(&mut self, id: &str) {
        for attempt in 0.. {
            let (key, check) = self.digest(id, attempt);
            match self.slots.get(&key) {
                None => {
                    let slot = Slot {
                        check,
                        refs: 0,
                        stored: false,
                    };
                    self.slots.insert(key, slot);
                    return;
                }
                Some(s) if s.check == check => return,
                Some(_) => {}
            }
        }
    }

    /// The visit id of the Encounter `id`, if pass 1 saw it.
    pub(crate) fn id_of(&self, id: &str) -> Option<i64> {
        for attempt in 0.. {
            let (key, check) = self.digest(id, attempt);
            match self.slots.get(&key) {
                None => return None,
                Some(s) if s.check == check => return Some(key),
                Some(_) => {}
            }
        }
        None
    }

    /// The visit id an event's `encounter` reference points at, if pass 1 saw that Encounter.
    pub(crate) fn resolve(&self, reference: &str) -> Option<i64> {
        self.id_of(encounter_id(reference)?)
    }

    /// An event row was stored with visit id `key`.
    pub(crate) fn referenced(&mut self, key: i64) {
        if let Some(s) = self.slots.get_mut(&key) {
            s.refs += 1;
        }
    }

    /// Whether a visit row was already stored with id `key` (a second Encounter with the
    /// same id).
    pub(crate) fn is_stored(&self, key: i64) -> bool {
        self.slots.get(&key).is_some_and(|s| s.stored)
    }

    /// A visit row was stored with id `key`.
    pub(crate) fn mark_stored(&mut self, key: i64) {
        if let Some(s) = self.slots.get_mut(&key) {
            s.stored = true;
        }
    }

    /// Event rows whose Encounter is in the extract but got no visit row (the Encounter was
    /// quarantined or not mapped): their `visit_occurrence_id` names no visit.
    pub(crate) fn dangling(&self) -> u64 {
        self.slots
            .values()
            .filter(|s| !s.stored)
            .map(|s| s.refs)
            .sum()
    }
}

/// The Encounter id of a reference (`Encounter/<id>`, an absolute URL ending so, or a
/// `urn:uuid:` of another Bundle's entry, whose uuid is the id in Synthea and most exports).
fn encounter_id(reference: &str) -> Option<&str> {
    if let Some(uuid) = reference.strip_prefix("urn:uuid:") {
        return Some(uuid);
    }
    let path = reference.split("/_history/").next()?;
    let (prefix, id) = path.rsplit_once('/')?;
    let ty = prefix.rsplit('/').next()?;
    (ty == "Encounter" && !id.is_empty()).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use agora_privacy::HubSecret;

    #[test]
    fn registered_encounters_resolve_from_every_reference_form() {
        let mut v = Visits::new(PersonKeyer::new(&HubSecret::from_bytes([1; 32])));
        v.register("e1");
        v.register("e1");
        let key = v.id_of("e1").unwrap();
        assert!(key > 0);
        for r in [
            "Encounter/e1",
            "http://x/fhir/Encounter/e1/_history/3",
            "urn:uuid:e1",
        ] {
            assert_eq!(v.resolve(r), Some(key), "{r}");
        }
        assert_eq!(v.resolve("Encounter/e2"), None);
        assert_eq!(v.resolve("Observation/e1"), None);
        v.referenced(key);
        assert_eq!(v.dangling(), 1);
        assert!(!v.is_stored(key));
        v.mark_stored(key);
        assert!(v.is_stored(key));
        assert_eq!(v.dangling(), 0);
    }
}
