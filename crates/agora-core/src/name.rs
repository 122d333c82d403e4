use std::fmt;
use std::str::FromStr;

/// A dataset name: `[a-z][a-z0-9_]{0,62}`.
///
/// Names become path segments in the lake and SQL identifiers, so the alphabet is kept to what
/// is safe and unambiguous in both.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct DatasetName(String);

/// Why a string was refused as a [`DatasetName`]. Carries no copy of the string: names may
/// come from untrusted input and end up in logs.
#[derive(Debug, thiserror::Error)]
#[error(
    "invalid dataset name: use 1 to 63 characters among a-z, 0-9 and '_', starting with a letter"
)]
pub struct InvalidName;

impl DatasetName {
    /// The validated name, safe as a path segment and as an unquoted SQL identifier.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for DatasetName {
    type Err = InvalidName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut chars = s.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase());
        let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if first_ok && rest_ok && s.len() <= 63 {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidName)
        }
    }
}

impl fmt::Display for DatasetName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for DatasetName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_simple_names() {
        for ok in ["a", "synthea27nj", "omop_2024", &"x".repeat(63)] {
            assert!(ok.parse::<DatasetName>().is_ok(), "{ok}");
        }
    }

    #[test]
    fn rejects_unsafe_names() {
        for bad in [
            "",
            "1abc",
            "Abc",
            "a-b",
            "a/b",
            "..",
            "a b",
            "é",
            &"x".repeat(64),
        ] {
            assert!(bad.parse::<DatasetName>().is_err(), "{bad}");
        }
    }
}
