//! Per-project pseudonyms: hub person keys re-keyed, inside one project, by a keyed
//! permutation of the person-key domain.
//!
//! A hub person key ([`crate::PersonKeyer`]) is an integer in `[1, 2^63 - 1]`, the same for
//! one person in every dataset of the hub. Inside a project every person key is shown as
//! `P_k(key)`, where `P_k` is a permutation of that same domain under a key `k` of the project:
//!
//! - **one person, one id** in every table and query of the project (`P_k` is a function);
//! - **no collisions** (`P_k` is a bijection: a pseudonym is still a valid, unique key, and
//!   counts of distinct persons are unchanged);
//! - **two projects cannot join**: their keys are independent HMAC-SHA256 outputs
//!   (`HMAC(M, u32_be(len(id)) || id)`, first 16 bytes, under the pseudonym master key
//!   `M = HMAC(secret, "agora/project-pseudonym/v1\0")`), so their permutations are
//!   unrelated. The query layer holds `M` ([`PseudonymKeys`]), never the hub secret: `M`
//!   derives project keys and nothing else (not person keys, not noise);
//! - **no way back without the key**: the hub key is `P_k⁻¹(pseudonym)`, which needs `k`,
//!   which needs the hub secret.
//!
//! ## The permutation
//!
//! `P_k(x) = 1 + W(x - 1)`, where `W` permutes `[0, 2^63 - 2]`: an 8-round Feistel network
//! over 63 bits, unbalanced (a 31-bit left half, a 32-bit right half), with **cycle walking**
//! to stay in range (the network permutes `[0, 2^63 - 1]`; if it lands on `2^63 - 1`, which
//! is not `key - 1` for any key, it is applied again; a permutation restricted so is a
//! permutation of the smaller set, and since a single value is outside, one extra step at
//! most is ever taken). Round `i` updates one half: `L ^= F(i, R) mod 2^31` on even rounds,
//! `R ^= F(i, L) mod 2^32` on odd ones, so each round is inverted by applying it again, and
//! [`ProjectPseudonyms::hub_key`] runs the rounds backwards.
//!
//! **Round function.** `F(i, h)` is the first 32 bits of `AES-128_k(i || label || h)`: a
//! pseudorandom function under the project's key. AES is the round function of NIST's
//! format-preserving encryption modes (SP 800-38G, FF1/FF3-1), and with AES-NI (detected at
//! run time by the `aes` crate; a constant-time bitsliced software fallback otherwise) a
//! column is encrypted eight blocks at a time: no per-row key schedule and no allocation.
//! HMAC-SHA256 per round (hundreds of nanoseconds) or SipHash (a few nanoseconds but a
//! 64-bit PRF designed for hash tables, not for a long-term secret permutation) were
//! rejected.
//!
//! **Rounds.** Eight, as FF3-1 uses with an AES round function on halves of this size.
//! Luby–Rackoff's four rounds are a pseudorandom permutation only up to about `2^16`
//! queries on 32-bit halves; Patarin's analyses put ≥ 6 rounds close to `2^32` adaptive
//! chosen-plaintext/ciphertext queries, and 8 leave margin over the known generic attacks on
//! small-domain Feistel networks (which need many chosen plaintext–ciphertext pairs). Here a
//! researcher never chooses inputs and never sees them: the inputs are hub keys, themselves
//! secret HMAC outputs.
//!
//! Values that are not hub keys (`≤ 0`) have no pseudonym: the batch function writes `0`
//! for them, which is never a pseudonym.
//!
//! ## Record numbers and keys held as text
//!
//! Rows that leave the hub (the `pseudonymized-rows` output policy) carry more than person
//! keys that two projects could match: record numbers (an OMOP `visit_occurrence_id` is the
//! same in every project) and keys stored as text (a FHIR Patient's `id` is its hub key,
//! other resources' ids are hub-wide keyed ids). [`PseudonymKeys::records`] gives one more
//! permutation per project and record domain (`HMAC(M, 0xff || u32_be(len(project)) ||
//! project || u32_be(len(domain)) || domain)`; a project id's derivation input starts with
//! a zero byte, so the two never meet), and [`ProjectPseudonyms::rekey_text`] re-keys a text
//! key: a decimal hub key becomes its pseudonym in decimal (so a FHIR Patient id still
//! matches `person_id`), anything else the first 128 bits of an HMAC under a text key of
//! the project (`HMAC(M, 0xfe || ...)`), in hex; `Type/<id>` keeps its type.

use aes::Aes128;
use aes::cipher::{BlockEncrypt, KeyInit};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::HubSecret;

/// Domain separation of the project key derivation.
const DOMAIN: &[u8] = b"agora/project-pseudonym/v1\0";

/// Feistel rounds (see the module documentation).
pub const PSEUDONYM_ROUNDS: u8 = 8;

/// The largest hub person key, `2^63 - 1`.
const MAX_KEY: u64 = i64::MAX as u64;
/// `W` maps 63-bit words; `MAX_KEY` itself is `key - 1` for no key.
const OUTSIDE: u64 = MAX_KEY;
const LEFT_MASK: u32 = (1 << 31) - 1;

/// Lanes encrypted together: enough for AES-NI's 8-block pipeline, small enough for the
/// stack.
const LANES: usize = 128;

/// Derives every project's pseudonym key. Holds a master key derived one-way from the hub
/// secret, not the secret: whoever holds it can compute project pseudonyms, not person keys.
/// Cheap to clone.
#[derive(Clone)]
pub struct PseudonymKeys {
    /// Keyed by the master key `M` (see the module documentation), not by the hub secret.
    master: Hmac<Sha256>,
}

impl std::fmt::Debug for PseudonymKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PseudonymKeys(<redacted>)")
    }
}

impl PseudonymKeys {
    /// Project keys under `secret`.
    pub fn new(secret: &HubSecret) -> Self {
        let mut mac = secret.mac();
        mac.update(DOMAIN);
        let master = mac.finalize().into_bytes();
        Self {
            master: <Hmac<Sha256> as Mac>::new_from_slice(&master)
                .expect("HMAC accepts any key length"),
        }
    }

    /// The pseudonyms of project `project_id`.
    pub fn project(&self, project_id: &str) -> ProjectPseudonyms {
        let mut mac = self.master.clone();
        let len = u32::try_from(project_id.len()).unwrap_or(u32::MAX);
        mac.update(&len.to_be_bytes());
        mac.update(project_id.as_bytes());
        let out = mac.finalize().into_bytes();
        let mut key = [0u8; 16];
        key.copy_from_slice(&out[..16]);
        let mut id = [0u8; 16];
        id.copy_from_slice(&out[16..]);
        let mut text = self.master.clone();
        text.update(&[0xfe]);
        text.update(&len.to_be_bytes());
        text.update(project_id.as_bytes());
        let text = text.finalize().into_bytes();
        ProjectPseudonyms {
            cipher: Aes128::new(&key.into()),
            id,
            text: <Hmac<Sha256> as Mac>::new_from_slice(&text)
                .expect("HMAC accepts any key length"),
        }
    }

    /// The permutation of project `project_id` for the record numbers of `domain` (an OMOP
    /// table's primary key, e.g. `visit_occurrence_id`, and every column referring to it).
    pub fn records(&self, project_id: &str, domain: &str) -> ProjectPseudonyms {
        let mut input = vec![0xff];
        for part in [project_id, domain] {
            let len = u32::try_from(part.len()).unwrap_or(u32::MAX);
            input.extend_from_slice(&len.to_be_bytes());
            input.extend_from_slice(part.as_bytes());
        }
        // The same derivation as a project's, on an input no project id produces.
        let mut mac = self.master.clone();
        mac.update(&input);
        let out = mac.finalize().into_bytes();
        let mut key = [0u8; 16];
        key.copy_from_slice(&out[..16]);
        let mut id = [0u8; 16];
        id.copy_from_slice(&out[16..]);
        let mut text = self.master.clone();
        text.update(&[0xfd]);
        text.update(&input);
        ProjectPseudonyms {
            cipher: Aes128::new(&key.into()),
            id,
            text: <Hmac<Sha256> as Mac>::new_from_slice(&text.finalize().into_bytes())
                .expect("HMAC accepts any key length"),
        }
    }
}

/// One project's pseudonym permutation (see the module documentation). Cheap to share
/// behind an `Arc`; never formatted.
#[derive(Clone)]
pub struct ProjectPseudonyms {
    cipher: Aes128,
    /// The other half of the derivation's output: tells two projects' permutations apart
    /// (equality, hashing) and reveals nothing about the AES key.
    id: [u8; 16],
    /// Keys text keys ([`ProjectPseudonyms::rekey_text`]).
    text: Hmac<Sha256>,
}

impl std::fmt::Debug for ProjectPseudonyms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProjectPseudonyms(<redacted>)")
    }
}

impl PartialEq for ProjectPseudonyms {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl Eq for ProjectPseudonyms {}

impl std::hash::Hash for ProjectPseudonyms {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.id.hash(state);
    }
}

impl ProjectPseudonyms {
    /// The pseudonyms of project `project_id` under `secret`
    /// (`PseudonymKeys::new(secret).project(project_id)`).
    pub fn new(secret: &HubSecret, project_id: &str) -> Self {
        PseudonymKeys::new(secret).project(project_id)
    }

    /// The project's pseudonym of hub person key `key`; `None` unless `key ≥ 1`.
    pub fn pseudonym(&self, key: i64) -> Option<i64> {
        let mut out = [0i64];
        self.pseudonymize(&[key], &mut out);
        (out[0] != 0).then_some(out[0])
    }

    /// A key held as text, re-keyed for the project: a hub key in canonical decimal becomes
    /// its pseudonym in decimal, `Type/<id>` becomes `Type/<re-keyed id>`, anything else 32
    /// hex digits of a keyed hash. The same text always gives the same result in one
    /// project, and different keys different results (but for 128-bit hash collisions).
    pub fn rekey_text(&self, value: &str) -> String {
        if let Ok(key) = value.parse::<i64>()
            && key >= 1
            && key.to_string() == value
        {
            return self
                .pseudonym(key)
                .map(|p| p.to_string())
                .unwrap_or_default();
        }
        if let Some((ty, id)) = value.split_once('/')
            && !ty.is_empty()
            && ty.bytes().all(|b| b.is_ascii_alphabetic())
            && !id.is_empty()
            && !id.contains('/')
        {
            return format!("{ty}/{}", self.rekey_text(id));
        }
        let mut mac = self.text.clone();
        mac.update(value.as_bytes());
        hex::encode(&mac.finalize().into_bytes()[..16])
    }

    /// The hub person key whose pseudonym is `pseudonym`; `None` unless `pseudonym ≥ 1`.
    /// Whoever holds this permutation can undo it: it never leaves the hub.
    pub fn hub_key(&self, pseudonym: i64) -> Option<i64> {
        if pseudonym < 1 {
            return None;
        }
        let mut w = pseudonym as u64 - 1;
        loop {
            w = self.unwalk(w);
            if w != OUTSIDE {
                return Some(w as i64 + 1);
            }
        }
    }

    /// Writes the pseudonym of each of `keys` to `out` (same length), `0` for values that
    /// are not hub keys (`≤ 0`). Vectorised: AES runs over blocks of lanes.
    ///
    /// # Panics
    /// If `out` is not as long as `keys`.
    pub fn pseudonymize(&self, keys: &[i64], out: &mut [i64]) {
        assert_eq!(keys.len(), out.len(), "one output per key");
        // Event tables are mostly stored person by person: each run of equal keys is
        // computed once, unless runs are rare (then every key is, after one comparison each).
        let Some(&first) = keys.first() else { return };
        let most = keys.len() - keys.len() / 4;
        let mut heads = Vec::with_capacity(keys.len() / 8 + 1);
        heads.push(first);
        for w in keys.windows(2) {
            if w[0] != w[1] {
                if heads.len() >= most {
                    return self.pseudonymize_each(keys, out);
                }
                heads.push(w[1]);
            }
        }
        let mut pseudonyms = vec![0; heads.len()];
        self.pseudonymize_each(&heads, &mut pseudonyms);
        let (mut run, mut current) = (0, first);
        for (o, &k) in out.iter_mut().zip(keys) {
            if k != current {
                run += 1;
                current = k;
            }
            *o = pseudonyms[run];
        }
    }

    /// [`Self::pseudonymize`], every key computed.
    fn pseudonymize_each(&self, keys: &[i64], out: &mut [i64]) {
        let mut left = [0u32; LANES];
        let mut right = [0u32; LANES];
        let mut blocks = [aes::Block::default(); LANES];
        for (keys, out) in keys.chunks(LANES).zip(out.chunks_mut(LANES)) {
            let n = keys.len();
            for (i, &key) in keys.iter().enumerate() {
                // Not a hub key: any in-range word, the output is discarded.
                let w = if key >= 1 { key as u64 - 1 } else { 0 };
                left[i] = (w >> 32) as u32;
                right[i] = w as u32;
            }
            for round in 0..PSEUDONYM_ROUNDS {
                let (from, to, mask) = if round % 2 == 0 {
                    (&right, &mut left, LEFT_MASK)
                } else {
                    (&left, &mut right, u32::MAX)
                };
                for (block, &h) in blocks[..n].iter_mut().zip(from[..n].iter()) {
                    *block = round_input(round, h);
                }
                self.cipher.encrypt_blocks(&mut blocks[..n]);
                for (t, block) in to[..n].iter_mut().zip(blocks[..n].iter()) {
                    *t ^= round_output(block) & mask;
                }
            }
            for i in 0..n {
                let mut w = (u64::from(left[i]) << 32) | u64::from(right[i]);
                // Cycle walking: at most one more step, and only for one value in 2^63.
                while w == OUTSIDE {
                    w = self.walk(w);
                }
                out[i] = if keys[i] >= 1 { w as i64 + 1 } else { 0 };
            }
        }
    }

    /// `W` once, for one value (cycle walking).
    fn walk(&self, w: u64) -> u64 {
        let (mut l, mut r) = ((w >> 32) as u32, w as u32);
        for round in 0..PSEUDONYM_ROUNDS {
            if round % 2 == 0 {
                l ^= self.f(round, r) & LEFT_MASK;
            } else {
                r ^= self.f(round, l);
            }
        }
        (u64::from(l) << 32) | u64::from(r)
    }

    /// `W⁻¹` once.
    fn unwalk(&self, w: u64) -> u64 {
        let (mut l, mut r) = ((w >> 32) as u32, w as u32);
        for round in (0..PSEUDONYM_ROUNDS).rev() {
            if round % 2 == 0 {
                l ^= self.f(round, r) & LEFT_MASK;
            } else {
                r ^= self.f(round, l);
            }
        }
        (u64::from(l) << 32) | u64::from(r)
    }

    fn f(&self, round: u8, h: u32) -> u32 {
        let mut block = round_input(round, h);
        self.cipher.encrypt_block(&mut block);
        round_output(&block)
    }
}

/// The round function's input block: the round, a label, the half.
fn round_input(round: u8, h: u32) -> aes::Block {
    let mut b = [0u8; 16];
    b[0] = round;
    b[1..12].copy_from_slice(b"agora/pseud");
    b[12..].copy_from_slice(&h.to_be_bytes());
    b.into()
}

fn round_output(block: &aes::Block) -> u32 {
    u32::from_be_bytes([block[0], block[1], block[2], block[3]])
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn project(byte: u8, id: &str) -> ProjectPseudonyms {
        ProjectPseudonyms::new(&HubSecret::from_bytes([byte; 32]), id)
    }

    #[test]
    fn text_keys_are_re_keyed_consistently_with_person_keys() {
        let p = project(1, "app-1");
        let q = project(1, "app-2");
        // A FHIR Patient id (a hub key in decimal) becomes the pseudonym person_id shows.
        assert_eq!(
            p.rekey_text("12345"),
            p.pseudonym(12345).unwrap().to_string()
        );
        assert_eq!(
            p.rekey_text("Patient/12345"),
            format!("Patient/{}", p.pseudonym(12345).unwrap())
        );
        // Other ids: a keyed hash per project, stable, distinct per input.
        let e = p.rekey_text("3f2a9c");
        assert_eq!(e.len(), 32);
        assert_eq!(e, p.rekey_text("3f2a9c"));
        assert_ne!(e, p.rekey_text("3f2a9d"));
        assert_ne!(e, q.rekey_text("3f2a9c"));
        assert_ne!(
            p.rekey_text("Encounter/3f2a9c"),
            q.rekey_text("Encounter/3f2a9c")
        );
        // Not a canonical key: hashed, never read as the key.
        assert_ne!(p.rekey_text("012345"), p.rekey_text("12345"));
        assert_eq!(p.rekey_text("0").len(), 32);
    }

    #[test]
    fn record_permutations_differ_by_project_and_domain() {
        let keys = PseudonymKeys::new(&HubSecret::from_bytes([3; 32]));
        let visits = keys.records("app-1", "visit_occurrence_id");
        assert_ne!(visits, keys.project("app-1"));
        assert_ne!(visits, keys.records("app-2", "visit_occurrence_id"));
        assert_ne!(visits, keys.records("app-1", "condition_occurrence_id"));
        assert_eq!(visits, keys.records("app-1", "visit_occurrence_id"));
        let v = visits.pseudonym(42).unwrap();
        assert_eq!(visits.hub_key(v), Some(42));
    }

    #[test]
    fn inverse_round_trips_and_stays_in_range() {
        let p = project(1, "app-1");
        let edges = [1, 2, 3, i64::MAX, i64::MAX - 1, 1 << 32, (1 << 32) + 1];
        let spread = (0..20_000u64).map(|i| (i.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 1) as i64);
        for key in edges.into_iter().chain(spread).filter(|&k| k >= 1) {
            let pseudo = p.pseudonym(key).expect("a key has a pseudonym");
            assert!(pseudo >= 1);
            assert_eq!(p.hub_key(pseudo), Some(key));
        }
    }

    #[test]
    fn no_collisions_on_a_large_sample() {
        let p = project(2, "app-2");
        // Consecutive keys (the worst case for a weak round function) and spread ones.
        let keys: Vec<i64> = (1..=200_000)
            .chain(
                (0..200_000u64).map(|i| ((i + 1).wrapping_mul(0xd1b5_4a32_d192_ed03) >> 1) as i64),
            )
            .filter(|&k| k >= 1)
            .collect();
        let unique: HashSet<i64> = keys.iter().copied().collect();
        let mut out = vec![0; keys.len()];
        p.pseudonymize(&keys, &mut out);
        let pseudonyms: HashSet<i64> = out.iter().copied().collect();
        assert_eq!(pseudonyms.len(), unique.len());
        assert!(out.iter().all(|&x| x >= 1));
        // Re-keyed, not copied: almost no key is its own pseudonym.
        assert!(keys.iter().zip(&out).filter(|(a, b)| a == b).count() <= 1);
    }

    #[test]
    fn is_a_permutation_of_the_whole_domain_walk() {
        // The 63-bit network itself is a permutation: W⁻¹(W(w)) = w for any w, including the
        // out-of-range word cycle walking steps over.
        let p = project(3, "app-3");
        for w in [0, 1, OUTSIDE, OUTSIDE - 1, 12345, 1 << 62] {
            assert_eq!(p.unwalk(p.walk(w)), w);
        }
    }

    #[test]
    fn runs_of_one_person_get_the_same_pseudonyms_as_single_keys() {
        let p = project(9, "app-9");
        let keys: Vec<i64> = (1..=300i64)
            .flat_map(|k| std::iter::repeat_n(k * 7919, (k % 5) as usize + 1))
            .chain([0, 0, -1, 5, 5])
            .collect();
        let mut out = vec![0; keys.len()];
        p.pseudonymize(&keys, &mut out);
        for (&k, &o) in keys.iter().zip(&out) {
            assert_eq!(p.pseudonym(k).unwrap_or(0), o);
        }
    }

    #[test]
    fn batch_and_scalar_agree_and_non_keys_have_no_pseudonym() {
        let p = project(4, "app-4");
        let keys: Vec<i64> = vec![5, 0, -7, i64::MIN, 1, i64::MAX, 42];
        let mut out = vec![0; keys.len()];
        p.pseudonymize(&keys, &mut out);
        for (&k, &o) in keys.iter().zip(&out) {
            assert_eq!(p.pseudonym(k).unwrap_or(0), o);
        }
        assert_eq!(&out[1..4], &[0, 0, 0]);
        assert_eq!(p.hub_key(0), None);
        assert_eq!(p.hub_key(-3), None);
    }

    #[test]
    fn projects_and_secrets_give_unrelated_pseudonyms() {
        let a = project(5, "app-a");
        let b = project(5, "app-b");
        let c = project(6, "app-a");
        assert_eq!(a, project(5, "app-a"));
        assert_ne!(a, b);
        let keys: Vec<i64> = (1..=1000).collect();
        let same = |x: &ProjectPseudonyms, y: &ProjectPseudonyms| {
            keys.iter()
                .filter(|&&k| x.pseudonym(k) == y.pseudonym(k))
                .count()
        };
        assert_eq!(same(&a, &b), 0);
        assert_eq!(same(&a, &c), 0);
        // A project id is not a prefix game: "ab" + "c" is not "a" + "bc".
        assert_ne!(project(5, "ab"), project(5, "a"));
    }

    #[test]
    fn debug_never_shows_key_material() {
        let shown = format!(
            "{:?} {:?}",
            project(7, "x"),
            PseudonymKeys::new(&HubSecret::from_bytes([7; 32]))
        );
        assert_eq!(
            shown,
            "ProjectPseudonyms(<redacted>) PseudonymKeys(<redacted>)"
        );
    }

    /// Pins the derivation and the network: a change would re-key every project's ids (its
    /// results and exports would no longer match). Cross-checked with an independent Python
    /// implementation (`hmac`, `hashlib` and `cryptography`'s AES-ECB): key = first 16 bytes of
    /// `HMAC-SHA256(HMAC-SHA256([0; 32], "agora/project-pseudonym/v1\0"), u32_be(9) ||
    /// "project-1")`,
    /// `F(i, h)` = first 4 bytes (big-endian) of `AES-128(i || "agora/pseud" || h_be32)`.
    #[test]
    fn known_answer() {
        let p = project(0, "project-1");
        let got = [p.pseudonym(1), p.pseudonym(1956721290927937114)];
        assert_eq!(got, [Some(3037843461256266724), Some(3813137214452815510)]);
    }

    /// `cargo test -p agora-privacy --release -- --ignored --nocapture pseudonym_speed`
    #[test]
    #[ignore = "a measurement, not a check; run in release"]
    fn pseudonym_speed() {
        let p = project(8, "bench");
        let keys: Vec<i64> = (1..=4_000_000)
            .map(|i: i64| (i.wrapping_mul(0x9e37_79b9) >> 1).max(1))
            .collect();
        let mut out = vec![0; keys.len()];
        let mut best = f64::MAX;
        for _ in 0..5 {
            let start = std::time::Instant::now();
            p.pseudonymize(&keys, &mut out);
            best = best.min(start.elapsed().as_nanos() as f64 / keys.len() as f64);
        }
        println!(
            "pseudonymize, distinct keys: {best:.2} ns/key ({} keys, best of 5)",
            keys.len()
        );
        assert!(out.iter().all(|&x| x >= 1));
        // An event table stored person by person: runs of 1 to 40 rows per person.
        let runs: Vec<i64> = keys
            .iter()
            .take(200_000)
            .flat_map(|&k| std::iter::repeat_n(k, 1 + (k % 40) as usize))
            .collect();
        let mut out = vec![0; runs.len()];
        let mut best = f64::MAX;
        for _ in 0..5 {
            let start = std::time::Instant::now();
            p.pseudonymize(&runs, &mut out);
            best = best.min(start.elapsed().as_nanos() as f64 / runs.len() as f64);
        }
        println!(
            "pseudonymize, person-ordered rows: {best:.2} ns/row ({} rows, best of 5)",
            runs.len()
        );
        // For comparison: one HMAC-SHA256 per key (what a keyed hash per row would cost).
        let keyer = crate::PersonKeyer::new(&HubSecret::from_bytes([8; 32]));
        let start = std::time::Instant::now();
        let mut acc = 0i64;
        for k in &keys[..400_000] {
            acc ^= keyer.derive(&k.to_be_bytes(), 0).key;
        }
        let hmac = start.elapsed().as_nanos() as f64 / 400_000.0;
        println!("HMAC-SHA256 per key, for comparison: {hmac:.2} ns/key ({acc:x})");
    }
}
