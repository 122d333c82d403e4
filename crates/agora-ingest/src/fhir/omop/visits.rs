//! `visit_occurrence_id`s for Encounters, known before any event refers to one.
//!
//! Events may come before their Encounter (NDJSON files are read in name order, and
//! `Condition` sorts before `Encounter`), so pass 1 registers every Encounter id. A visit id is
//! the keyed pseudonym the pseudonymizer gives the Encounter's id (`super::super::pseudo`,
//! `agora_privacy::ResourceKeyer`): `visit_occurrence_id` is the integer whose decimal form is
//! `fhir_encounter.id` and every `Encounter/<id>` reference, so raw tables, views and OMOP
//! tables join on it. It is stable across releases, reveals nothing of the source id (a
//! hospital's visit number), and needs no id → number table — 24 bytes per Encounter in
//! memory. Two Encounter ids with the same 63-bit key fail the ingest in pass 1.

use std::collections::HashMap;

pub(crate) struct Visits {
    slots: HashMap<i64, Slot>,
}

#[derive(Default)]
struct Slot {
    /// Event rows stored with this visit id.
    refs: u64,
    /// A visit row was stored with this id.
    stored: bool,
}

impl Visits {
    /// The visits of an extract: the keyed ids of its Encounters, from pass 1.
    pub(crate) fn new(encounters: impl IntoIterator<Item = i64>) -> Self {
        Self {
            slots: encounters
                .into_iter()
                .map(|key| (key, Slot::default()))
                .collect(),
        }
    }

    /// The visit id of the Encounter whose (keyed) id is `id`, if pass 1 saw it.
    pub(crate) fn id_of(&self, id: &str) -> Option<i64> {
        let key = id.parse::<i64>().ok()?;
        self.slots.contains_key(&key).then_some(key)
    }

    /// The visit id an event's (pseudonymized) `encounter` reference, `Encounter/<keyed
    /// id>`, points at, if pass 1 saw that Encounter.
    pub(crate) fn resolve(&self, reference: &str) -> Option<i64> {
        self.id_of(reference.strip_prefix("Encounter/")?)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_encounters_resolve_from_their_references() {
        let mut v = Visits::new([42]);
        assert_eq!(v.id_of("42"), Some(42));
        assert_eq!(v.resolve("Encounter/42"), Some(42));
        assert_eq!(v.resolve("Encounter/43"), None);
        assert_eq!(v.resolve("Observation/42"), None);
        assert_eq!(v.resolve("Encounter/e1"), None);
        v.referenced(42);
        assert_eq!(v.dangling(), 1);
        assert!(!v.is_stored(42));
        v.mark_stored(42);
        assert!(v.is_stored(42));
        assert_eq!(v.dangling(), 0);
    }
}
