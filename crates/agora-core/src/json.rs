//! Describing malformed JSON without repeating what was sent.

/// A JSON error as a caller may see it, `(JSON) at line L column C: what`: position and
/// category, with any value quoted in serde's message removed (field and variant names the
/// receiving type defines are kept). JSON sent to a hub may carry a citizen identifier.
pub fn describe_json_error(e: &serde_json::Error) -> String {
    let message = e.to_string();
    // serde_json appends " at line L column C"; keep our own rendering of the position.
    let message = message
        .rsplit_once(" at line ")
        .map_or(message.as_str(), |(m, _)| m);
    let what = if message.starts_with("invalid type:")
        || message.starts_with("invalid value:")
        || message.starts_with("invalid length")
        || message.starts_with("unknown variant")
        || message.starts_with("unknown field")
    {
        redact_first_quoted(message)
    } else {
        // Syntax errors describe the character found; "missing field `x`" and "duplicate
        // field `x`" name fields the API defines.
        message.to_owned()
    };
    format!("(JSON) at line {} column {}: {what}", e.line(), e.column())
}

/// Removes the value serde quotes before ", expected": "invalid type: string \"abc\",
/// expected u32" becomes "invalid type: string, expected u32".
fn redact_first_quoted(message: &str) -> String {
    let (head, tail) = match message.find(", expected") {
        Some(i) => message.split_at(i),
        None => (message, ""),
    };
    let cut = [head.find('`'), head.find('"')].into_iter().flatten().min();
    let head = match cut {
        Some(i) => head[..i].trim_end(),
        None => {
            // "invalid value: integer 5": drop what follows the value's type.
            let mut words = head.splitn(3, ' ');
            let first = words.next().unwrap_or_default();
            let second = words.next().unwrap_or_default();
            if first.ends_with(':') {
                &head[..first.len() + 1 + second.len()]
            } else {
                head
            }
        }
    };
    format!("{head}{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_of<T: serde::de::DeserializeOwned + std::fmt::Debug>(json: &str) -> String {
        describe_json_error(&serde_json::from_str::<T>(json).unwrap_err())
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(rename_all = "snake_case")]
    enum Role {
        Operator,
        Reviewer,
        Researcher,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Form {
        identifier: String,
        count: u32,
        role: Role,
    }

    #[test]
    fn json_errors_never_echo_values() {
        for (json, secret) in [
            (
                r#"{"identifier": 1840512345678, "count": 1, "role": "operator"}"#,
                "1840512345678",
            ),
            (
                r#"{"identifier": "x", "count": "1 84 05", "role": "operator"}"#,
                "1 84 05",
            ),
            (
                r#"{"identifier": "x", "count": 1, "role": "184051234"}"#,
                "184051234",
            ),
            (
                r#"{"identifier": "x", "count": -184051234, "role": "operator"}"#,
                "184051234",
            ),
            (
                r#"{"identifier": ["1840512"], "count": 1, "role": "operator"}"#,
                "1840512",
            ),
        ] {
            let e = error_of::<Form>(json);
            assert!(!e.contains(secret), "{e}");
            assert!(e.starts_with("(JSON) at line 1 column "), "{e}");
        }
        let e = error_of::<Form>(r#"{"identifier": 18405, "count": 1, "role": "operator"}"#);
        assert!(
            e.contains("invalid type: integer, expected a string"),
            "{e}"
        );
        let e = error_of::<Form>(r#"{"count": 1, "role": "operator"}"#);
        assert!(e.contains("missing field `identifier`"), "{e}");
        let e = error_of::<Form>(r#"{"identifier": "x", "count": 1, "role": "root"}"#);
        assert!(e.contains("unknown variant, expected one of"), "{e}");
        let e = error_of::<Form>(r#"{"identifier": "#);
        assert!(e.contains("EOF"), "{e}");
    }
}
