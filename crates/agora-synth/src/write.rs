//! Renders a [`Chunk`] as CSV bytes, one buffer per table.
//!
//! Hand-rolled instead of `csv::Writer` for the clinical tables: every field is a number, a
//! date or one of our own static strings that never needs quoting (checked by a test), and
//! this path runs for billions of fields.

use crate::date::{DateCache, push_bad_date, push_date, push_datetime};
use crate::model::{Chunk, Defect, NO_DATE, NO_VALUE, VisitKind};
use crate::rng::mix64;
use crate::schema::{self, N_CLINICAL};
use crate::vocab::{
    ASIAN, BLACK, ER_VISIT, FEMALE, HISPANIC, INPATIENT_VISIT, MALE, NOT_HISPANIC,
    OUTPATIENT_VISIT, TYPE_EHR, TYPE_VISIT_CLAIM, WHITE,
};

#[inline]
fn int(b: &mut Vec<u8>, mut v: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    b.extend_from_slice(&tmp[i..]);
}

/// A decimal given as an integer scaled by `10^dec`.
#[inline]
fn scaled(b: &mut Vec<u8>, v: i32, dec: u8) {
    if v < 0 {
        b.push(b'-');
    }
    let a = u64::from(v.unsigned_abs());
    match dec {
        0 => int(b, a),
        1 => {
            int(b, a / 10);
            b.push(b'.');
            b.push(b'0' + (a % 10) as u8);
        }
        _ => {
            int(b, a / 100);
            b.push(b'.');
            b.push(b'0' + ((a / 10) % 10) as u8);
            b.push(b'0' + (a % 10) as u8);
        }
    }
}

#[inline]
fn comma(b: &mut Vec<u8>) {
    b.push(b',');
}

/// How to spell person ids, start dates and defects.
struct Fmt {
    persons: u64,
    starts: DateCache,
    ends: DateCache,
}

const BAD_INTS: [&[u8]; 3] = [b"abc", b"n/a", b"12x"];

impl Fmt {
    #[inline]
    fn person(&self, b: &mut Vec<u8>, pid: u64, d: Defect) {
        // Ids above N never exist in person.csv.
        int(
            b,
            if d == Defect::OrphanPerson {
                self.persons + pid
            } else {
                pid
            },
        );
    }

    /// The domain concept id; a text or an empty value when defective.
    #[inline]
    fn concept(&self, b: &mut Vec<u8>, id: u32, d: Defect, row: u64) {
        match d {
            Defect::TextInInt => b.extend_from_slice(BAD_INTS[(row % 3) as usize]),
            Defect::EmptyRequired if row.is_multiple_of(2) => {}
            _ => int(b, u64::from(id)),
        }
    }

    /// The (required) start date; unparseable or empty when defective.
    #[inline]
    fn start(&mut self, b: &mut Vec<u8>, day: i32, d: Defect, row: u64) {
        match d {
            Defect::BadDate => push_bad_date(b, day, (row / 3) as u32),
            Defect::EmptyRequired if !row.is_multiple_of(2) => {}
            _ => self.starts.push(b, day),
        }
    }

    #[inline]
    fn end(&mut self, b: &mut Vec<u8>, day: i32) {
        if day != NO_DATE {
            self.ends.push(b, day);
        }
    }
}

/// `persons` is N (for orphan defects); `first` the first id of each table in this chunk.
pub(crate) fn format_chunk(
    ch: &Chunk,
    seed: u64,
    persons: u64,
    first: &[u64; N_CLINICAL],
    out: &mut [Vec<u8>; N_CLINICAL],
) {
    let mut f = Fmt {
        persons,
        starts: DateCache::new(),
        ends: DateCache::new(),
    };
    let visit_id = |vi: u32| first[schema::VISIT_OCCURRENCE] + u64::from(vi);
    let uuid_key = mix64(seed ^ 0x5eed_5eed_5eed_5eed);

    let b = &mut out[schema::PERSON];
    for p in &ch.persons {
        int(b, p.pid);
        comma(b);
        int(b, u64::from(if p.male { MALE.id } else { FEMALE.id }));
        comma(b);
        let (y, m, d) = crate::date::civil_from_days(p.birth);
        int(b, y as u64);
        comma(b);
        int(b, u64::from(m));
        comma(b);
        int(b, u64::from(d));
        comma(b);
        push_datetime(b, p.birth, p.birth_min);
        comma(b);
        let race = [WHITE.id, BLACK.id, ASIAN.id, 0][usize::from(p.race)];
        int(b, u64::from(race));
        comma(b);
        int(
            b,
            u64::from(if p.hispanic {
                HISPANIC.id
            } else {
                NOT_HISPANIC.id
            }),
        );
        b.extend_from_slice(b",,,,");
        push_source_id(b, uuid_key, p.pid);
        b.extend_from_slice(if p.male { b",M,," } else { b",F,," });
        b.extend_from_slice(
            [
                b"white".as_slice(),
                b"black".as_slice(),
                b"asian".as_slice(),
                b"".as_slice(),
            ][usize::from(p.race)],
        );
        b.extend_from_slice(if p.hispanic {
            b",,hispanic,\n".as_slice()
        } else {
            b",,nonhispanic,\n".as_slice()
        });
    }

    let b = &mut out[schema::OBSERVATION_PERIOD];
    for (k, p) in ch.periods.iter().enumerate() {
        int(b, first[schema::OBSERVATION_PERIOD] + k as u64);
        comma(b);
        int(b, p.pid);
        comma(b);
        push_date(b, p.start);
        comma(b);
        push_date(b, p.end);
        comma(b);
        int(b, u64::from(TYPE_EHR.id));
        b.push(b'\n');
    }

    let b = &mut out[schema::VISIT_OCCURRENCE];
    for (k, v) in ch.visits.iter().enumerate() {
        let id = visit_id(k as u32);
        int(b, id);
        comma(b);
        f.person(b, v.pid, v.defect);
        comma(b);
        let (concept, source) = match v.kind {
            VisitKind::Outpatient => (OUTPATIENT_VISIT.id, b"AMB".as_slice()),
            VisitKind::Emergency => (ER_VISIT.id, b"EMER".as_slice()),
            VisitKind::Inpatient => (INPATIENT_VISIT.id, b"IMP".as_slice()),
        };
        f.concept(b, concept, v.defect, id);
        comma(b);
        f.start(b, v.start, v.defect, id);
        comma(b);
        push_datetime(b, v.start, v.start_min);
        comma(b);
        push_date(b, v.end);
        comma(b);
        push_datetime(b, v.end, v.end_min);
        comma(b);
        int(b, u64::from(TYPE_VISIT_CLAIM.id));
        b.extend_from_slice(b",,,");
        b.extend_from_slice(source);
        b.extend_from_slice(b",,,,,,");
        if !v.first {
            int(b, id - 1);
        }
        b.push(b'\n');
    }

    let b = &mut out[schema::CONDITION_OCCURRENCE];
    for (k, c) in ch.conds.iter().enumerate() {
        let id = first[schema::CONDITION_OCCURRENCE] + k as u64;
        int(b, id);
        comma(b);
        f.person(b, c.pid, c.defect);
        comma(b);
        f.concept(b, c.c.id, c.defect, id);
        comma(b);
        f.start(b, c.start, c.defect, id);
        b.extend_from_slice(b",,");
        f.end(b, c.end);
        b.extend_from_slice(b",,");
        int(b, u64::from(TYPE_EHR.id));
        b.extend_from_slice(b",,,,");
        int(b, visit_id(c.visit));
        b.extend_from_slice(b",,");
        b.extend_from_slice(c.c.code.as_bytes());
        b.extend_from_slice(b",,\n");
    }

    let b = &mut out[schema::DRUG_EXPOSURE];
    for (k, d) in ch.drugs.iter().enumerate() {
        let id = first[schema::DRUG_EXPOSURE] + k as u64;
        int(b, id);
        comma(b);
        f.person(b, d.pid, d.defect);
        comma(b);
        f.concept(b, d.d.c.id, d.defect, id);
        comma(b);
        f.start(b, d.start, d.defect, id);
        b.extend_from_slice(b",,");
        f.end(b, d.end);
        b.extend_from_slice(b",,,");
        int(b, u64::from(TYPE_EHR.id));
        b.extend_from_slice(b",,");
        int(b, u64::from(d.d.refills));
        comma(b);
        int(b, u64::from(d.d.qty));
        comma(b);
        int(b, u64::from(d.d.days));
        b.extend_from_slice(b",,,,,");
        int(b, visit_id(d.visit));
        b.extend_from_slice(b",,");
        b.extend_from_slice(d.d.c.code.as_bytes());
        b.extend_from_slice(b",,,\n");
    }

    let b = &mut out[schema::PROCEDURE_OCCURRENCE];
    for (k, p) in ch.procs.iter().enumerate() {
        let id = first[schema::PROCEDURE_OCCURRENCE] + k as u64;
        int(b, id);
        comma(b);
        f.person(b, p.pid, p.defect);
        comma(b);
        f.concept(b, p.c.id, p.defect, id);
        comma(b);
        f.start(b, p.date, p.defect, id);
        b.extend_from_slice(b",,");
        f.end(b, p.end);
        b.extend_from_slice(b",,");
        int(b, u64::from(TYPE_EHR.id));
        b.extend_from_slice(b",,,,");
        int(b, visit_id(p.visit));
        b.extend_from_slice(b",,");
        b.extend_from_slice(p.c.code.as_bytes());
        b.extend_from_slice(b",,\n");
    }

    let b = &mut out[schema::MEASUREMENT];
    for (k, m) in ch.meas.iter().enumerate() {
        let id = first[schema::MEASUREMENT] + k as u64;
        let lab = m.lab;
        int(b, id);
        comma(b);
        f.person(b, m.pid, m.defect);
        comma(b);
        f.concept(b, lab.c.id, m.defect, id);
        comma(b);
        f.start(b, m.date, m.defect, id);
        b.extend_from_slice(b",,,");
        int(b, u64::from(TYPE_EHR.id));
        b.extend_from_slice(b",,");
        if m.value != NO_VALUE {
            scaled(b, m.value, lab.dec);
        }
        b.extend_from_slice(b",,");
        if let Some(u) = lab.unit {
            int(b, u64::from(u.id));
        }
        comma(b);
        if let Some((lo, hi)) = lab.range {
            b.extend_from_slice(lo.as_bytes());
            comma(b);
            b.extend_from_slice(hi.as_bytes());
        } else {
            comma(b);
        }
        b.extend_from_slice(b",,");
        int(b, visit_id(m.visit));
        b.extend_from_slice(b",,");
        b.extend_from_slice(lab.c.code.as_bytes());
        b.extend_from_slice(b",,");
        if let Some(u) = lab.unit {
            b.extend_from_slice(u.code.as_bytes());
        }
        b.extend_from_slice(b",,,,\n");
    }

    let b = &mut out[schema::OBSERVATION];
    for (k, o) in ch.obs.iter().enumerate() {
        let id = first[schema::OBSERVATION] + k as u64;
        int(b, id);
        comma(b);
        f.person(b, o.pid, o.defect);
        comma(b);
        f.concept(b, o.c.id, o.defect, id);
        comma(b);
        f.start(b, o.date, o.defect, id);
        b.extend_from_slice(b",,");
        int(b, u64::from(TYPE_EHR.id));
        comma(b);
        if o.num != NO_VALUE {
            int(b, o.num as u64);
        }
        comma(b);
        b.extend_from_slice(o.text.as_bytes());
        b.extend_from_slice(b",,,,,");
        int(b, visit_id(o.visit));
        b.extend_from_slice(b",,");
        b.extend_from_slice(o.c.code.as_bytes());
        b.extend_from_slice(b",,,,,,\n");
    }

    let b = &mut out[schema::DEATH];
    for d in &ch.deaths {
        int(b, d.pid);
        comma(b);
        push_date(b, d.date);
        comma(b);
        push_datetime(b, d.date, 0);
        comma(b);
        int(b, u64::from(TYPE_EHR.id));
        comma(b);
        if let Some(c) = d.cause {
            int(b, u64::from(c.id));
            comma(b);
            b.extend_from_slice(c.code.as_bytes());
        } else {
            comma(b);
        }
        b.extend_from_slice(b",\n");
    }
}

/// The hospital's patient identifier, UUID-shaped. The first 64 bits are a bijection of the
/// person id (keyed by the seed), so identifiers are unique within a data set.
fn push_source_id(b: &mut Vec<u8>, key: u64, pid: u64) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let hi = mix64(pid ^ key);
    let lo = mix64(hi ^ key.rotate_left(17));
    let bits = u128::from(hi) << 64 | u128::from(lo);
    for i in 0..32 {
        if matches!(i, 8 | 12 | 16 | 20) {
            b.push(b'-');
        }
        b.push(HEX[((bits >> (124 - 4 * i)) & 0xf) as usize]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        let mut b = Vec::new();
        int(&mut b, 0);
        comma(&mut b);
        int(&mut b, 18_446_744_073_709_551_615);
        comma(&mut b);
        scaled(&mut b, 1234, 1);
        comma(&mut b);
        scaled(&mut b, 5, 2);
        comma(&mut b);
        scaled(&mut b, -75, 1);
        assert_eq!(b, b"0,18446744073709551615,123.4,0.05,-7.5");
    }

    #[test]
    fn source_ids_are_uuid_shaped_and_distinct() {
        let mut seen = std::collections::HashSet::new();
        for pid in 1..=10_000 {
            let mut b = Vec::new();
            push_source_id(&mut b, 42, pid);
            assert_eq!(b.len(), 36);
            assert_eq!(b[8], b'-');
            assert!(seen.insert(b));
        }
    }
}
