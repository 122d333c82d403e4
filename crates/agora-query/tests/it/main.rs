//! Integration tests of the query layer on real releases (the Synthea27Nj OMOP fixture
//! ingested into a local lake) and a real SQLite metadata store.

mod permit;
