//! agora-govern integration tests. Every test runs on SQLite, and on PostgreSQL too when
//! `AGORA_TEST_POSTGRES_URL` is set (see `ci/postgres.sh`).

mod accounts;
mod audit;
mod catalogue;
mod concurrency;
mod dp_budget;
mod exports;
mod migration;
mod optout;
mod permits;
mod projects;
mod registry;
mod releases;
mod support;
mod visibility;
