//! Which OMOP columns identify people, and what ingest does with them. Which column names a
//! row's person (rewritten to the hub person key) is the CDM's: [`agora_cdm::PersonRows`].

/// Columns holding direct identifiers: never stored in the lake.
///
/// * `person.person_source_value` is the source's patient identifier: it becomes the person
///   key and is then dropped.
/// * addresses and coordinates of `location` point at a home;
/// * free text (`note.note_text`, `note_nlp.snippet`) routinely contains names;
/// * `provider` name, NPI and DEA number identify health professionals.
pub const DROPPED_COLUMNS: &[(&str, &str)] = &[
    ("person", "person_source_value"),
    ("location", "address_1"),
    ("location", "address_2"),
    ("location", "location_source_value"),
    ("location", "latitude"),
    ("location", "longitude"),
    ("note", "note_text"),
    ("note_nlp", "snippet"),
    ("provider", "provider_name"),
    ("provider", "npi"),
    ("provider", "dea"),
];

/// Whether `column` of `table` (CDM names) is one of the [`DROPPED_COLUMNS`]: never stored.
pub fn is_dropped(table: &str, column: &str) -> bool {
    DROPPED_COLUMNS.contains(&(table, column))
}

/// Where a person's identity — the input of the keyed pseudonym — comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IdentitySource {
    /// `person.person_source_value`: the producer's identifier of the person (e.g. a national
    /// identifier). The same value in two datasets gives the same hub person key: this is
    /// what links sources.
    #[default]
    SourceValue,
    /// `person.person_id`, scoped to the dataset: stable across re-ingests of the same
    /// dataset but never linked to other datasets. For extracts without a usable identifier.
    PersonId,
}

impl IdentitySource {
    /// The column the identity is read from, as recorded in the release's pseudonymization
    /// info.
    pub fn describe(self) -> &'static str {
        match self {
            IdentitySource::SourceValue => "person.person_source_value",
            IdentitySource::PersonId => "person.person_id (scoped to the dataset)",
        }
    }
}
