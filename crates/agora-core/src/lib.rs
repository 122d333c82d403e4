//! Shared vocabulary of the Agora crates: error kinds, validated names, the data-directory
//! layout and the column types a release may hold.
//!
//! This crate does no I/O and knows nothing of HTTP, SQL engines or storage: it only names
//! things so that the other crates agree on them.
//!
//! ```
//! use agora_core::{DataDir, DatasetName};
//! let name: DatasetName = "synthea".parse().unwrap();
//! let dir = DataDir::new("./agora-data");
//! assert!(dir.hub_key().ends_with("keys/hub.key"));
//! assert_eq!(name.as_str(), "synthea");
//! ```

#![warn(missing_docs)]

mod error;
mod json;
mod layout;
mod name;
mod types;

pub use error::{ErrorKind, HasKind};
pub use json::describe_json_error;
pub use layout::DataDir;
pub use name::{DatasetName, InvalidName};
pub use types::{ColumnDef, ColumnType, TableSchema};
