//! Person identifiers as people type them, brought to the one form a person key is derived
//! from. Ingest (every source model) and the opt-out registry both call
//! [`source_identity`], so any variant of an identifier a citizen, an operator or a source
//! writes reaches the same hub person key.
//!
//! The canonical form does not depend on the [`IdentityKind`] asked for: a kind only adds
//! validation (an opt-out typed as a NIR must be a valid NIR). Whatever the kind, after
//! trimming surrounding white space:
//!
//! * a **UUID** (32 hexadecimal digits, with the four dashes or none, optionally in braces or
//!   after `urn:uuid:`) becomes lower case with dashes: UUIDs do not distinguish case;
//! * a **NIR** (French national health identifier: 13 characters, `2A`/`2B` for Corsica,
//!   then a 2-digit key; spaces, dots and dashes anywhere) whose key matches becomes its 15
//!   characters, upper case, without separators;
//! * anything else keeps its case (FHIR ids and many record numbers distinguish it) with
//!   every run of inner white space made one space.
//!
//! ```
//! use agora_privacy::{IdentityKind, normalize_identifier};
//! let a = normalize_identifier(IdentityKind::Any, " {7BB1E4DC-94A6-4C3B-9E43-0C1D2E3F4A5B} ");
//! assert_eq!(a.unwrap(), "7bb1e4dc-94a6-4c3b-9e43-0c1d2e3f4a5b");
//! let n = normalize_identifier(IdentityKind::Nir, "1.84.12.75.108.123-47").unwrap();
//! assert_eq!(n, "184127510812347");
//! ```

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

/// Which identifiers a caller accepts. The canonical form is the same for all kinds; a
/// kind other than [`IdentityKind::Any`] refuses what is not of that kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum IdentityKind {
    /// Any identifier: NIRs and UUIDs are recognised by their shape, anything else is
    /// taken as opaque text. What ingest uses for source values.
    #[default]
    Any,
    /// A French NIR (numéro d'inscription au répertoire), key checked.
    Nir,
    /// A UUID (e.g. a FHIR Patient.id from Synthea).
    Uuid,
}

impl IdentityKind {
    /// The kind's name: `any`, `nir` or `uuid`.
    pub fn as_str(self) -> &'static str {
        match self {
            IdentityKind::Any => "any",
            IdentityKind::Nir => "nir",
            IdentityKind::Uuid => "uuid",
        }
    }
}

impl fmt::Display for IdentityKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for IdentityKind {
    type Err = IdentifierError;

    fn from_str(s: &str) -> Result<Self, IdentifierError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "any" => Ok(IdentityKind::Any),
            "nir" => Ok(IdentityKind::Nir),
            "uuid" => Ok(IdentityKind::Uuid),
            _ => Err(IdentifierError::UnknownKind),
        }
    }
}

/// Why an identifier was refused. Messages say what is expected, never the value given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IdentifierError {
    /// Nothing but white space.
    #[error("the identifier is empty")]
    Empty,
    /// Not 13 characters and a key once separators are removed.
    #[error(
        "not a valid NIR: expected 13 digits (2A or 2B for Corsica) followed by a 2-digit key; \
         spaces, dots and dashes are allowed"
    )]
    NirShape,
    /// The shape of a NIR, but the key does not match (a typing error).
    #[error("not a valid NIR: its 2-digit key does not match the other 13 characters")]
    NirKey,
    /// Not a UUID.
    #[error(
        "not a valid UUID: expected 32 hexadecimal digits (dashes, braces and a urn:uuid: \
         prefix are allowed)"
    )]
    Uuid,
    /// An identity kind other than `any`, `nir` or `uuid`.
    #[error("unknown identifier kind: use any, nir or uuid")]
    UnknownKind,
}

/// `raw` in its canonical form (see the module documentation), checked against `kind`.
pub fn normalize_identifier(kind: IdentityKind, raw: &str) -> Result<String, IdentifierError> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(IdentifierError::Empty);
    }
    match kind {
        IdentityKind::Nir => nir(trimmed),
        IdentityKind::Uuid => uuid(trimmed).ok_or(IdentifierError::Uuid),
        IdentityKind::Any => Ok(uuid(trimmed)
            .or_else(|| nir(trimmed).ok())
            .unwrap_or_else(|| text(trimmed).into_owned())),
    }
}

/// The identity bytes a hub person key is derived from for a person identified by a source
/// value: `"src\0"` followed by [`normalize_identifier`]'s form. OMOP `person_source_value`,
/// FHIR Patient ids and identifiers, Table Schema person identifiers and opt-outs all use
/// it, so the same person links across them.
pub fn source_identity(kind: IdentityKind, raw: &str) -> Result<Vec<u8>, IdentifierError> {
    let canonical = normalize_identifier(kind, raw)?;
    Ok([b"src\0".as_slice(), canonical.as_bytes()].concat())
}

/// The identity bytes of a person identified by several values *together* (SNDS: the pair
/// `BEN_NIR_PSA`, `BEN_RNG_GEM`; twins share the number and differ by rank). Each part goes
/// through [`normalize_identifier`] with its kind; the encoding is `"srcn\0"`, the number of
/// parts, then each canonical form prefixed by its length (all `u32` big-endian): no two
/// different tuples, and no single identity ([`source_identity`]), give the same bytes.
pub fn composite_source_identity(
    parts: &[(IdentityKind, &str)],
) -> Result<Vec<u8>, IdentifierError> {
    let mut out = b"srcn\0".to_vec();
    out.extend_from_slice(&(parts.len() as u32).to_be_bytes());
    for (kind, raw) in parts {
        let canonical = normalize_identifier(*kind, raw)?;
        out.extend_from_slice(&(canonical.len() as u32).to_be_bytes());
        out.extend_from_slice(canonical.as_bytes());
    }
    Ok(out)
}

fn uuid(s: &str) -> Option<String> {
    let s = match s.get(..9) {
        Some(prefix) if prefix.eq_ignore_ascii_case("urn:uuid:") => &s[9..],
        _ => s,
    };
    let s = match s.strip_prefix('{') {
        Some(inner) => inner.strip_suffix('}')?,
        None => s,
    };
    let hex: String = match s.len() {
        32 => s.to_owned(),
        36 => {
            let b = s.as_bytes();
            if [8, 13, 18, 23].iter().any(|&i| b[i] != b'-') {
                return None;
            }
            s.chars().filter(|&c| c != '-').collect()
        }
        _ => return None,
    };
    if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let hex = hex.to_ascii_lowercase();
    Some(format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    ))
}

fn nir(s: &str) -> Result<String, IdentifierError> {
    let compact: String = s
        .chars()
        .filter(|c| !(c.is_whitespace() || *c == '.' || *c == '-'))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let b = compact.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    if b.len() != 15 || !digits(0..5) || !digits(7..15) {
        return Err(IdentifierError::NirShape);
    }
    // Corsican departments replace 2A by 19 and 2B by 18 in the key's computation.
    let department = match &b[5..7] {
        b"2A" => "19",
        b"2B" => "18",
        d if d.iter().all(u8::is_ascii_digit) => &compact[5..7],
        _ => return Err(IdentifierError::NirShape),
    };
    let number: u64 = format!("{}{department}{}", &compact[..5], &compact[7..13])
        .parse()
        .expect("13 digits");
    let key: u64 = compact[13..].parse().expect("2 digits");
    if key != 97 - number % 97 {
        return Err(IdentifierError::NirKey);
    }
    Ok(compact)
}

fn text(s: &str) -> Cow<'_, str> {
    if !s.contains(|c: char| c.is_whitespace() && c != ' ') && !s.contains("  ") {
        return Cow::Borrowed(s);
    }
    Cow::Owned(s.split_whitespace().collect::<Vec<_>>().join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn any(s: &str) -> String {
        normalize_identifier(IdentityKind::Any, s).unwrap()
    }

    #[test]
    fn uuids_of_every_typing_are_one() {
        let canonical = "7bb1e4dc-94a6-4c3b-9e43-0c1d2e3f4a5b";
        for v in [
            canonical,
            " 7BB1E4DC-94A6-4C3B-9E43-0C1D2E3F4A5B ",
            "\t{7bb1e4dc-94a6-4c3b-9e43-0c1d2e3f4a5b}\n",
            "7BB1E4DC94A64C3B9E430C1D2E3F4A5B",
            "urn:uuid:7Bb1e4dc-94a6-4c3b-9e43-0c1d2e3f4a5b",
        ] {
            assert_eq!(any(v), canonical, "{v:?}");
            assert_eq!(
                normalize_identifier(IdentityKind::Uuid, v).unwrap(),
                canonical
            );
        }
        assert_eq!(
            normalize_identifier(IdentityKind::Uuid, "7bb1e4dc-94a6"),
            Err(IdentifierError::Uuid)
        );
    }

    #[test]
    fn nirs_of_every_typing_are_one() {
        let canonical = "184127510812347";
        for v in [
            canonical,
            "1 84 12 75 108 123 47",
            "  1 84 12 75 108 123 47\n",
            "1.84.12.75.108.123.47",
            "1-84-12-75-108-123-47",
            "1 84 12 75 108 123  47",
            "18412 75108123 - 47",
        ] {
            assert_eq!(any(v), canonical, "{v:?}");
            assert_eq!(
                normalize_identifier(IdentityKind::Nir, v).unwrap(),
                canonical
            );
        }
        // Corsica, lower case accepted.
        assert_eq!(
            normalize_identifier(IdentityKind::Nir, "2 69 05 2a 123 456 88").unwrap(),
            "269052A12345688"
        );
        assert_eq!(
            normalize_identifier(IdentityKind::Nir, "1 84 12 75 108 123 45"),
            Err(IdentifierError::NirKey)
        );
        for short in [
            "1 84 12 75 108 123",
            "1 84 12 75 108 123 47 1",
            "1 84 1X 75 108 123 47",
        ] {
            assert_eq!(
                normalize_identifier(IdentityKind::Nir, short),
                Err(IdentifierError::NirShape),
                "{short:?}"
            );
        }
    }

    #[test]
    fn other_identifiers_keep_their_case_and_lose_extra_space() {
        assert_eq!(any("  MRN-0042 "), "MRN-0042");
        assert_eq!(any("AB \t 12\u{a0}34"), "AB 12 34");
        assert_ne!(any("abc"), any("ABC"));
        // A NIR-like number whose key does not match is opaque text, not refused.
        assert_eq!(any("1 84 12 75 108 123 45"), "1 84 12 75 108 123 45");
        assert_eq!(
            normalize_identifier(IdentityKind::Any, " \n "),
            Err(IdentifierError::Empty)
        );
    }

    #[test]
    fn errors_never_echo_the_value() {
        for (kind, v) in [
            (IdentityKind::Nir, "1 84 12 75 108 123 45"),
            (IdentityKind::Nir, "secret-value-1"),
            (IdentityKind::Uuid, "secret-value-1"),
        ] {
            let message = normalize_identifier(kind, v).unwrap_err().to_string();
            assert!(
                !message.contains(v) && !message.contains("secret"),
                "{message}"
            );
            assert!(!message.contains("108"), "{message}");
        }
    }

    #[test]
    fn source_identity_is_the_namespaced_canonical_form() {
        assert_eq!(
            source_identity(IdentityKind::Any, " 1 84 12 \n").unwrap(),
            b"src\x001 84 12".to_vec()
        );
        assert_eq!(
            source_identity(IdentityKind::Any, "1.84.12.75.108.123.47").unwrap(),
            source_identity(IdentityKind::Nir, "184127510812347").unwrap()
        );
        assert_eq!("NIR".parse::<IdentityKind>(), Ok(IdentityKind::Nir));
        assert!("ssn".parse::<IdentityKind>().is_err());
    }

    #[test]
    fn composite_identities_are_unambiguous_and_normalised() {
        let any = IdentityKind::Any;
        let pair = |a: &str, b: &str| composite_source_identity(&[(any, a), (any, b)]).unwrap();
        assert_eq!(
            pair("1.84.12.75.108.123.47", " 1"),
            pair("184127510812347", "1")
        );
        assert_ne!(pair("A", "1"), pair("A", "2"));
        assert_ne!(pair("ab", "c"), pair("a", "bc"));
        let single = composite_source_identity(&[(any, "A")]).unwrap();
        assert_ne!(single, source_identity(any, "A").unwrap());
        assert_eq!(
            composite_source_identity(&[(any, "A"), (any, " ")]),
            Err(IdentifierError::Empty)
        );
    }
}
