//! The quarantine: every rejected row, with where it came from and why — never its values.

use std::collections::BTreeMap;

use agora_lake::{QuarantineCount, QuarantineSummary};

use crate::conform::{Reason, Reject};

/// Detailed records kept per ingest; beyond this only counts are kept, so a file that is
/// entirely wrong cannot exhaust memory. Counts are always exact.
const MAX_DETAILED: u64 = 1_000_000;

#[derive(Debug, Default)]
pub(crate) struct Quarantine {
    csv: Vec<u8>,
    detailed: u64,
    rows: u64,
    counts: BTreeMap<(String, Option<String>, String), u64>,
}

impl Quarantine {
    /// Records the rejects of one batch and returns, per row, whether it was rejected.
    pub(crate) fn record(
        &mut self,
        table: &str,
        file: &str,
        lines: &[u64],
        rejects: &[Reject],
        column_names: &[String],
    ) -> Vec<bool> {
        let mut rejected = vec![false; lines.len()];
        for (row, column, reason) in rejects {
            let column = column.map(|c| column_names[c].clone());
            if !rejected[*row] {
                rejected[*row] = true;
                self.rows += 1;
            }
            *self
                .counts
                .entry((table.to_owned(), column.clone(), reason.to_string()))
                .or_default() += 1;
            if self.detailed < MAX_DETAILED {
                self.detailed += 1;
                let mut w = csv::Writer::from_writer(&mut self.csv);
                let line = lines[*row].to_string();
                let reason = reason.to_string();
                let fields = [table, file, &line, column.as_deref().unwrap_or(""), &reason];
                w.write_record(fields)
                    .expect("writing to memory cannot fail");
            }
        }
        rejected
    }

    /// Records one rejected record that is not part of a typed batch (a FHIR line or
    /// Bundle entry). `column` names the element or position, if any.
    pub(crate) fn record_one(
        &mut self,
        table: &str,
        file: &str,
        line: u64,
        column: Option<&str>,
        reason: &Reason,
    ) {
        let names: Vec<String> = column.into_iter().map(str::to_owned).collect();
        let column = if names.is_empty() { None } else { Some(0) };
        self.record(table, file, &[line], &[(0, column, reason.clone())], &names);
    }

    pub(crate) fn merge(&mut self, other: Quarantine) {
        self.rows += other.rows;
        let room = MAX_DETAILED.saturating_sub(self.detailed);
        if other.detailed <= room {
            self.csv.extend_from_slice(&other.csv);
            self.detailed += other.detailed;
        }
        for (k, v) in other.counts {
            *self.counts.entry(k).or_default() += v;
        }
    }

    pub(crate) fn rows(&self) -> u64 {
        self.rows
    }

    /// The quarantine report file: `table,file,line,column,reason`.
    pub(crate) fn csv(&self) -> Vec<u8> {
        let mut out = b"table,file,line,column,reason\n".to_vec();
        out.extend_from_slice(&self.csv);
        out
    }

    pub(crate) fn summary(&self, file: Option<String>) -> QuarantineSummary {
        QuarantineSummary {
            rows: self.rows,
            file,
            counts: self
                .counts
                .iter()
                .map(|((table, column, reason), rows)| QuarantineCount {
                    table: table.clone(),
                    column: column.clone(),
                    reason: reason.clone(),
                    rows: *rows,
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_rows_once_and_reasons_each() {
        let mut q = Quarantine::default();
        let names = vec!["a".to_owned(), "b".to_owned()];
        let rejected = q.record(
            "t",
            "t.csv",
            &[2, 3, 4],
            &[
                (1, Some(0), Reason::MissingRequired),
                (1, Some(1), Reason::TooLong { max: 2 }),
            ],
            &names,
        );
        assert_eq!(rejected, vec![false, true, false]);
        assert_eq!(q.rows(), 1);
        assert_eq!(q.summary(None).counts.len(), 2);
        let csv = String::from_utf8(q.csv()).unwrap();
        assert_eq!(
            csv,
            "table,file,line,column,reason\nt,t.csv,3,a,required field is empty\nt,t.csv,3,b,longer than 2 characters\n"
        );
    }
}
