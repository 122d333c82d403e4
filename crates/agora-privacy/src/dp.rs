//! Differential privacy building blocks: exact integer noise for released counts and sums,
//! drawn from a keyed, deterministic, cryptographically secure stream.
//!
//! No I/O, no logging, and errors carry no value (only which parameter is wrong).
//!
//! ```
//! use agora_privacy::HubSecret;
//! use agora_privacy::dp::{CountMechanism, NoiseSource};
//!
//! let source = NoiseSource::new(&HubSecret::from_bytes([7; 32]));
//! // A count of distinct persons (sensitivity 1), ε = 0.5, δ = 0: discrete Laplace.
//! let count = CountMechanism::new(1, 0.5, 0.0).unwrap();
//! let cell: &[&[u8]] = &[b"gender_concept_id=8507", b"count"];
//! let sql = "SELECT gender_concept_id, COUNT(DISTINCT person_id) FROM person GROUP BY 1";
//! let released = count.release(1234, &mut source.cell_stream("prm_1", 3, sql, cell));
//! // Asking again gives the same answer: nothing to average.
//! let again = count.release(1234, &mut source.cell_stream("prm_1", 3, sql, cell));
//! assert_eq!(released, again);
//! assert_eq!(count.half_width_95(), 6); // "1234 ± 6 (95 %)"
//! ```
//!
//! # Where the randomness comes from
//!
//! [`NoiseSource`] turns the hub secret and a *question* into a [`NoiseStream`]:
//! `seed = HMAC-SHA256(secret, "agora/dp-noise/v1\0" ‖ u64(#parts) ‖ (u64(len) ‖ part)*)`,
//! and the stream is ChaCha20 (`rand_chacha`) keyed with that seed. The caller passes the
//! permit id, the permit version, the statement text and the cell's coordinates (group
//! values, column) as the parts ([`NoiseSource::cell_stream`] fixes that order); each part
//! is length-prefixed, so no two different contexts give the same input to the HMAC. The
//! same question always gets the same noise, so asking it again (and averaging) gains
//! nothing; a different question, cell or permit version gets an unrelated stream. Without
//! the secret nobody can predict or reproduce the noise.
//!
//! # Mechanisms
//!
//! Noise is sampled **exactly on the integers**, with integer arithmetic only, following
//! Canonne, Kamath and Steinke, *The Discrete Gaussian for Differential Privacy* (NeurIPS
//! 2020), Algorithms 1–3: Bernoulli(exp(−γ)) for rational γ, the discrete Laplace
//! (two-sided geometric) distribution and the discrete Gaussian by rejection from it.
//! Nothing is drawn in floating point, so the attack of Mironov (*On significance of the
//! least significant bits for differential privacy*, CCS 2012) — the low bits of a
//! floating-point Laplace sample betray the value it was added to — has nothing to work on:
//! a released value is `exact integer + integer noise`, and what is done with it afterwards
//! (scaling, formatting) is post-processing.
//!
//! * **δ = 0: discrete Laplace**, `P(z) ∝ exp(−|z|/λ)` with `λ = Δ/ε` ([`laplace_scale`]):
//!   ε-DP for an integer query of L1 sensitivity Δ. The scale is rounded *up* to a
//!   rational `t/2^k` (about 20 significant bits; below 2⁻²⁰ relative), so the ε actually
//!   spent is never above the one asked.
//! * **δ > 0: discrete Gaussian**, `P(z) ∝ exp(−z²/2σ²)`, which is `Δ²/2σ²`-zCDP (CKS
//!   Theorem 4) and so (ε, δ)-DP once `ρ + 2√(ρ ln(1/δ)) ≤ ε` (their Lemma 3 conversion):
//!   [`gaussian_sigma`] solves it for σ. The conversion is a little conservative (the
//!   exact (ε, δ) curve of the discrete Gaussian would allow a slightly smaller σ); it is
//!   simple and rigorous. σ² is likewise rounded up to a rational.
//!
//! Both are refused (a [`DpError`], no panic) for non-finite or non-positive parameters,
//! δ outside (0, 1), and scales beyond what the integer samplers handle (λ ≤ 2⁴⁰,
//! σ ≤ 2²⁴: ask for a larger ε or a smaller sensitivity).
//!
//! Neighbouring datasets differ by one person's rows (added or removed); sensitivities are
//! stated for that.
//!
//! **Counts** ([`CountMechanism`]): sensitivity is the number of rows one person may add to
//! a count (the permit's `max_rows_per_person`; 1 for a count of distinct persons).
//!
//! **Sums** ([`SumMechanism`]): every value is clamped to `[−B, B]` (the permit's
//! `sum_bound`) and rounded to a grid of resolution `r`, a power of two chosen from the
//! public parameters only: the largest with `r ≤ noise scale / 2²⁰` (noise scale in value
//! units: `mB/ε`, or σ for `mB`) and `r ≤ B/2¹⁰`. The grid sum of a cell is then an integer of sensitivity
//! `m·⌈B/r⌉`, noised exactly like a count and scaled back by `r` (exact in binary). The
//! rounding moves each row by at most `r/2`, a two-millionth of the noise scale. The caller
//! must add grid values exactly (integers, [`SumMechanism::to_grid`]), never sum floating
//! point values and round afterwards: floating-point summation does not have the
//! sensitivity it seems to have. We chose the grid over the snapping mechanism (Mironov
//! 2012) because it reuses the exact integer samplers, works for the Gaussian as well as
//! for Laplace, and its accuracy is stated the same way as for counts.
//!
//! **Accuracy**: [`IntegerNoise::half_width_95`] is the smallest `h` with
//! `P(|noise| ≤ h) ≥ 95 %` (exact for the discrete Laplace; for the discrete Gaussian
//! summed from its probability mass function, or `⌈1.96σ⌉ + 1` when σ > 10⁴), so an answer
//! can say "± h (95 %)". It depends on public parameters only.
//!
//! # Why not the `opendp` crate
//!
//! OpenDP (0.16) implements the same CKS samplers, and with default features off it builds
//! in about a minute (measured: 60 s for a cold debug build of it and its 54 dependencies,
//! `dashu` big numbers, `nalgebra`, `statrs`..., on our shared 2-core machine). It does not
//! fit for another reason: its samplers take their bits from one global source, `fill_bytes`
//! — `rand::thread_rng()` with default features off (which OpenDP itself documents as not
//! secure), OpenSSL's `RAND_priv_bytes` with its default `use-openssl` feature. Neither can
//! be a keyed, deterministic stream, which "the same question gets the same noise" needs.
//! The three CKS algorithms are about a hundred lines here; the tests check them against
//! the exact probability mass functions.
//!
//! **The ledger's key.** [`question_hash`] names a statement for the privacy budget ledger
//! (`agora-govern`'s `dp_budget`, which adds the permit and its version): a question the
//! ledger has charged once is answered again for free, which is safe only because its
//! noise, derived from the same permit, version and statement, is the same.
//!
//! What is not here: choosing the sensitivity of a statement, splitting a query's ε over
//! its noisy columns (or cells of overlapping groups), and the ledger itself.

use hmac::{Hmac, Mac};
use rand::{CryptoRng, RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use sha2::Sha256;

use crate::HubSecret;

/// Domain separation: a noise seed never equals a person key or any other HMAC of the
/// hub secret.
const DOMAIN: &[u8] = b"agora/dp-noise/v1\0";

/// Largest discrete Laplace scale handled exactly (about 1.1·10¹²).
pub const MAX_LAPLACE_SCALE: f64 = (1u64 << 40) as f64;

/// Largest discrete Gaussian σ handled exactly (about 1.7·10⁷).
pub const MAX_GAUSSIAN_SIGMA: f64 = (1u64 << 24) as f64;

/// Why a mechanism was refused. Names the parameter, never a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DpError {
    /// A parameter is out of range; the message names it and the range.
    #[error("differential privacy: {0}")]
    InvalidParameter(&'static str),
}

type DpResult<T> = Result<T, DpError>;

fn check_positive(x: f64, what: &'static str) -> DpResult<f64> {
    if x.is_finite() && x > 0.0 {
        Ok(x)
    } else {
        Err(DpError::InvalidParameter(what))
    }
}

// ---------------------------------------------------------------------------------------
// The keyed noise stream
// ---------------------------------------------------------------------------------------

/// Derives per-question noise streams under the hub secret. Cheap to clone.
#[derive(Clone)]
pub struct NoiseSource {
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for NoiseSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NoiseSource(<redacted>)")
    }
}

impl NoiseSource {
    /// A source keyed by `secret`. Streams under different secrets are unrelated.
    pub fn new(secret: &HubSecret) -> Self {
        Self { mac: secret.mac() }
    }

    /// The stream of the question described by `context`: the parts are
    /// length-prefixed (and their number too), so `["ab", "c"]` and `["a", "bc"]` differ.
    pub fn stream(&self, context: &[&[u8]]) -> NoiseStream {
        let mut mac = self.mac.clone();
        mac.update(DOMAIN);
        mac.update(&(context.len() as u64).to_be_bytes());
        for part in context {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        let mut seed = [0u8; 32];
        seed.copy_from_slice(&mac.finalize().into_bytes());
        NoiseStream(ChaCha20Rng::from_seed(seed))
    }

    /// The stream of one released cell of one statement under one permit version:
    /// `[permit_id, version (8 bytes, big-endian), statement, cell...]`, where `cell` are
    /// the cell's coordinates (its group values and its column, in a fixed encoding).
    pub fn cell_stream(
        &self,
        permit_id: &str,
        permit_version: i64,
        statement: &str,
        cell: &[&[u8]],
    ) -> NoiseStream {
        let version = permit_version.to_be_bytes();
        let mut parts: Vec<&[u8]> = Vec::with_capacity(3 + cell.len());
        parts.push(permit_id.as_bytes());
        parts.push(&version);
        parts.push(statement.as_bytes());
        parts.extend_from_slice(cell);
        self.stream(&parts)
    }
}

/// A deterministic, cryptographically secure stream of random bits for one question
/// (ChaCha20 keyed by an HMAC of the hub secret). Its state is never formatted.
pub struct NoiseStream(ChaCha20Rng);

impl std::fmt::Debug for NoiseStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NoiseStream(<redacted>)")
    }
}

impl RngCore for NoiseStream {
    fn next_u32(&mut self) -> u32 {
        self.0.next_u32()
    }
    fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.0.fill_bytes(dest)
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand::Error> {
        self.0.try_fill_bytes(dest)
    }
}

impl CryptoRng for NoiseStream {}

/// The ledger's name of a statement: SHA-256 of `"agora/dp-question/v1\0" ‖ statement`, in
/// hex. Same text, same hash; the text itself is not recoverable from it.
pub fn question_hash(statement: &str) -> String {
    use sha2::Digest;
    let mut h = Sha256::new();
    h.update(b"agora/dp-question/v1\0");
    h.update(statement.as_bytes());
    hex::encode(h.finalize())
}

// ---------------------------------------------------------------------------------------
// Exact samplers (Canonne, Kamath, Steinke 2020)
// ---------------------------------------------------------------------------------------

/// A uniform integer in `[0, n)`, `n ≥ 1`, by rejection (no modulo bias).
fn uniform_below<R: RngCore + ?Sized>(rng: &mut R, n: u128) -> u128 {
    if n <= 1 {
        return 0;
    }
    let bits = 128 - (n - 1).leading_zeros();
    let mask = if bits == 128 {
        u128::MAX
    } else {
        (1u128 << bits) - 1
    };
    loop {
        let x = if bits <= 64 {
            u128::from(rng.next_u64())
        } else {
            (u128::from(rng.next_u64()) << 64) | u128::from(rng.next_u64())
        } & mask;
        if x < n {
            return x;
        }
    }
}

/// Bernoulli(num/den), `num ≤ den`, `den ≥ 1`.
fn bernoulli_ratio<R: RngCore + ?Sized>(rng: &mut R, num: u128, den: u128) -> bool {
    uniform_below(rng, den) < num
}

/// Bernoulli(exp(−num/den)) for `num ≤ den` (CKS Algorithm 1, γ ∈ [0, 1]).
fn bernoulli_exp_unit<R: RngCore + ?Sized>(rng: &mut R, num: u128, den: u128) -> bool {
    let mut k: u128 = 1;
    // K beyond 2^40 has probability below 1/(2^40)!; the checked product keeps it total.
    while let Some(d) = den.checked_mul(k) {
        if !bernoulli_ratio(rng, num, d) {
            break;
        }
        k += 1;
    }
    k % 2 == 1
}

/// Bernoulli(exp(−num/den)) for any rational `num/den ≥ 0`, `den ≥ 1` (CKS Algorithm 1).
fn bernoulli_exp<R: RngCore + ?Sized>(rng: &mut R, num: u128, den: u128) -> bool {
    let whole = num / den;
    let mut i = 0u128;
    while i < whole {
        if !bernoulli_exp_unit(rng, 1, 1) {
            return false;
        }
        i += 1;
    }
    bernoulli_exp_unit(rng, num % den, den)
}

/// The discrete Laplace distribution of scale `t/s`: `P(y) ∝ exp(−|y|·s/t)` (CKS
/// Algorithm 2), `t, s ≥ 1`.
fn discrete_laplace<R: RngCore + ?Sized>(rng: &mut R, t: u128, s: u128) -> i128 {
    loop {
        let u = uniform_below(rng, t);
        if !bernoulli_exp(rng, u, t) {
            continue;
        }
        let mut v: u128 = 0;
        while bernoulli_exp_unit(rng, 1, 1) {
            v += 1;
        }
        // v ≥ 2^60 is impossible in practice (probability e^(−2^60)); saturate anyway.
        let x = t.saturating_mul(v).saturating_add(u);
        let y = x / s;
        let negative = rng.next_u32() & 1 == 1;
        if negative && y == 0 {
            continue;
        }
        let y = i128::try_from(y).unwrap_or(i128::MAX);
        return if negative { -y } else { y };
    }
}

/// The discrete Gaussian with `σ² = a/b`: `P(y) ∝ exp(−y²/2σ²)` (CKS Algorithm 3).
fn discrete_gaussian<R: RngCore + ?Sized>(rng: &mut R, a: u128, b: u128) -> i128 {
    // t = ⌊σ⌋ + 1, with ⌊√(a/b)⌋ = ⌊√⌊a/b⌋⌋.
    let t = (a / b).isqrt() + 1;
    loop {
        let y = discrete_laplace(rng, t, 1);
        // γ = (|y| − σ²/t)² / 2σ² = (|y|·b·t − a)² / (2·a·b·t²).
        let Some(ybt) = y.unsigned_abs().checked_mul(b * t) else {
            continue;
        };
        let inner = ybt.abs_diff(a);
        let den = 2 * a * b * t * t;
        match inner.checked_mul(inner) {
            Some(num) => {
                if bernoulli_exp(rng, num, den) {
                    return y;
                }
            }
            // γ > 2^128 / den ≥ 2^31 here (see the bounds in `IntegerNoise::gaussian`):
            // acceptance probability below e^(−2^31), rejected.
            None => continue,
        }
    }
}

/// `x` rounded up to a rational `num / 2^k`, with about 20 significant bits (or `k = 0`
/// above 2^20, `k ≤ 40`). `x` must be positive, finite and at most 2^60.
fn rational_up(x: f64) -> (u128, u128) {
    let k = (20 - x.log2().floor() as i64).clamp(0, 40);
    let scaled = x * (1u64 << k) as f64; // exact: a multiplication by a power of two
    let num = (scaled.ceil() as u128).max(1);
    (num, 1u128 << k)
}

// ---------------------------------------------------------------------------------------
// Calibration
// ---------------------------------------------------------------------------------------

/// The discrete Laplace scale λ = Δ/ε giving ε-DP for an integer query of L1 sensitivity
/// `sensitivity`.
pub fn laplace_scale(sensitivity: f64, epsilon: f64) -> DpResult<f64> {
    let d = check_positive(sensitivity, "the sensitivity must be a positive number")?;
    let e = check_positive(epsilon, "epsilon must be a positive number")?;
    let scale = d / e;
    if !(scale.is_finite() && scale <= MAX_LAPLACE_SCALE) {
        return Err(DpError::InvalidParameter(
            "the noise would be too large: raise epsilon or lower the sensitivity",
        ));
    }
    Ok(scale)
}

/// The discrete Gaussian σ giving (ε, δ)-DP for an integer query of L2 sensitivity
/// `sensitivity`: `σ = Δ/√(2ρ)` with `ρ = (√(ln(1/δ) + ε) − √ln(1/δ))²`, from
/// ρ-zCDP ⇒ (ρ + 2√(ρ ln(1/δ)), δ)-DP.
pub fn gaussian_sigma(sensitivity: f64, epsilon: f64, delta: f64) -> DpResult<f64> {
    let d = check_positive(sensitivity, "the sensitivity must be a positive number")?;
    let e = check_positive(epsilon, "epsilon must be a positive number")?;
    if !(delta.is_finite() && delta > 0.0 && delta < 1.0) {
        return Err(DpError::InvalidParameter(
            "delta must be above 0 and below 1 for Gaussian noise",
        ));
    }
    let l = (1.0 / delta).ln();
    // √(l + ε) − √l without cancellation.
    let sqrt_rho = e / ((l + e).sqrt() + l.sqrt());
    let sigma = d / (std::f64::consts::SQRT_2 * sqrt_rho);
    if !(sigma.is_finite() && sigma <= MAX_GAUSSIAN_SIGMA) {
        return Err(DpError::InvalidParameter(
            "the noise would be too large: raise epsilon or delta, or lower the sensitivity",
        ));
    }
    Ok(sigma)
}

// ---------------------------------------------------------------------------------------
// Integer noise
// ---------------------------------------------------------------------------------------

/// Which distribution an [`IntegerNoise`] draws from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoiseKind {
    /// Discrete Laplace (two-sided geometric): pure ε-DP.
    Laplace,
    /// Discrete Gaussian: (ε, δ)-DP.
    Gaussian,
}

/// Calibrated integer noise: the distribution with its exact rational parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntegerNoise {
    kind: NoiseKind,
    /// Laplace: the scale `num/den`; Gaussian: σ² = `num/den`.
    num: u128,
    den: u128,
}

impl IntegerNoise {
    /// Discrete Laplace noise for ε-DP at L1 sensitivity `sensitivity`.
    pub fn laplace(sensitivity: u64, epsilon: f64) -> DpResult<Self> {
        let scale = laplace_scale(sensitivity as f64, epsilon)?;
        Ok(Self::laplace_with_scale(scale))
    }

    /// Discrete Gaussian noise for (ε, δ)-DP at L2 sensitivity `sensitivity`.
    pub fn gaussian(sensitivity: u64, epsilon: f64, delta: f64) -> DpResult<Self> {
        let sigma = gaussian_sigma(sensitivity as f64, epsilon, delta)?;
        Ok(Self::gaussian_with_sigma(sigma))
    }

    /// The permit's choice: Laplace when `delta` is 0, the Gaussian when it is above.
    pub fn for_policy(sensitivity: u64, epsilon: f64, delta: f64) -> DpResult<Self> {
        if delta == 0.0 {
            Self::laplace(sensitivity, epsilon)
        } else {
            Self::gaussian(sensitivity, epsilon, delta)
        }
    }

    /// Discrete Laplace of scale at least `scale` (rounded up to a rational).
    fn laplace_with_scale(scale: f64) -> Self {
        let (num, den) = rational_up(scale);
        Self {
            kind: NoiseKind::Laplace,
            num,
            den,
        }
    }

    /// Discrete Gaussian of σ at least `sigma`. Bounds used by the sampler: σ² ≤ 2^48, so
    /// `a ≤ 2^48 + 2`, `b·t ≤ 2^41`, and `2·a·b·t² ≤ 2^97`.
    fn gaussian_with_sigma(sigma: f64) -> Self {
        let (num, den) = rational_up(sigma * sigma);
        // One more unit covers the rounding of σ·σ in floating point.
        Self {
            kind: NoiseKind::Gaussian,
            num: num + 1,
            den,
        }
    }

    /// The distribution.
    pub fn kind(&self) -> NoiseKind {
        self.kind
    }

    /// The scale actually used: λ for Laplace, σ for the Gaussian (never below the
    /// calibrated one).
    pub fn scale(&self) -> f64 {
        let r = self.num as f64 / self.den as f64;
        match self.kind {
            NoiseKind::Laplace => r,
            NoiseKind::Gaussian => r.sqrt(),
        }
    }

    /// The noise's variance: `2p/(1−p)²` with `p = e^(−1/λ)` for Laplace; for the
    /// Gaussian, computed from its probability mass function (at most σ²).
    pub fn variance(&self) -> f64 {
        match self.kind {
            NoiseKind::Laplace => {
                let p = (-1.0 / self.scale()).exp();
                2.0 * p / ((1.0 - p) * (1.0 - p))
            }
            NoiseKind::Gaussian => {
                let sigma = self.scale();
                if sigma > 1e4 {
                    return sigma * sigma;
                }
                let (mut w, mut wx2) = (1.0, 0.0);
                for z in 1..=gaussian_support(sigma) {
                    let p = gaussian_weight(z, sigma);
                    w += 2.0 * p;
                    wx2 += 2.0 * p * (z * z) as f64;
                }
                wx2 / w
            }
        }
    }

    /// The smallest `h` with `P(|noise| ≤ h) ≥ 0.95`: the answer is within `± h` of the
    /// exact value 95 % of the time.
    pub fn half_width_95(&self) -> u64 {
        self.half_width(0.95)
    }

    fn half_width(&self, level: f64) -> u64 {
        let tail = 1.0 - level;
        match self.kind {
            NoiseKind::Laplace => {
                // P(|Z| > h) = 2p^(h+1)/(1+p).
                let p = (-1.0 / self.scale()).exp();
                if p <= 0.0 {
                    return 0;
                }
                let mut h = ((tail * (1.0 + p) / 2.0).ln() / p.ln() - 1.0)
                    .ceil()
                    .max(0.0) as u64;
                while h > 0 && 2.0 * p.powf(h as f64) / (1.0 + p) <= tail {
                    h -= 1;
                }
                while 2.0 * p.powf(h as f64 + 1.0) / (1.0 + p) > tail {
                    h += 1;
                }
                h
            }
            NoiseKind::Gaussian => {
                let sigma = self.scale();
                if sigma > 1e4 {
                    return (1.96 * sigma).ceil() as u64 + 1;
                }
                let n = gaussian_support(sigma);
                let weights: Vec<f64> = (0..=n).map(|z| gaussian_weight(z, sigma)).collect();
                let total = weights[0] + 2.0 * weights[1..].iter().sum::<f64>();
                let mut inside = weights[0];
                let mut h = 0;
                while inside < level * total && h < n {
                    h += 1;
                    inside += 2.0 * weights[h as usize];
                }
                h as u64
            }
        }
    }

    /// One draw from `rng`.
    pub fn sample<R: RngCore + CryptoRng + ?Sized>(&self, rng: &mut R) -> i64 {
        let z = match self.kind {
            NoiseKind::Laplace => discrete_laplace(rng, self.num, self.den),
            NoiseKind::Gaussian => discrete_gaussian(rng, self.num, self.den),
        };
        z.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
    }
}

fn gaussian_support(sigma: f64) -> i64 {
    (40.0 * sigma).ceil() as i64 + 40
}

fn gaussian_weight(z: i64, sigma: f64) -> f64 {
    (-((z * z) as f64) / (2.0 * sigma * sigma)).exp()
}

// ---------------------------------------------------------------------------------------
// Counts and sums
// ---------------------------------------------------------------------------------------

/// Noise for a released count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CountMechanism {
    noise: IntegerNoise,
}

impl CountMechanism {
    /// A count one person can change by at most `rows_per_person` (1 for a count of
    /// distinct persons), released under `epsilon` (and `delta`: 0 → Laplace, above →
    /// Gaussian).
    pub fn new(rows_per_person: u32, epsilon: f64, delta: f64) -> DpResult<Self> {
        if rows_per_person == 0 {
            return Err(DpError::InvalidParameter(
                "rows per person must be at least 1",
            ));
        }
        Ok(Self {
            noise: IntegerNoise::for_policy(u64::from(rows_per_person), epsilon, delta)?,
        })
    }

    /// The noise added.
    pub fn noise(&self) -> &IntegerNoise {
        &self.noise
    }

    /// The released count: `count` plus one draw from `rng` (saturating). It may be
    /// negative; clamping it at 0 is harmless post-processing, left to the caller.
    pub fn release<R: RngCore + CryptoRng + ?Sized>(&self, count: i64, rng: &mut R) -> i64 {
        count.saturating_add(self.noise.sample(rng))
    }

    /// ± this much around the true count, 95 % of the time.
    pub fn half_width_95(&self) -> u64 {
        self.noise.half_width_95()
    }
}

/// Noise for a released sum of values clamped to `[−bound, bound]` and rounded to a grid
/// (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SumMechanism {
    bound: f64,
    resolution: f64,
    noise: IntegerNoise,
}

impl SumMechanism {
    /// A sum to which one person adds at most `rows_per_person` values, each clamped to
    /// `[−bound, bound]`, released under `epsilon` (and `delta`).
    pub fn new(bound: f64, rows_per_person: u32, epsilon: f64, delta: f64) -> DpResult<Self> {
        let bound = check_positive(bound, "the sum bound must be a positive number")?;
        if bound > 1e15 {
            return Err(DpError::InvalidParameter(
                "the sum bound must be at most 1e15",
            ));
        }
        if rows_per_person == 0 {
            return Err(DpError::InvalidParameter(
                "rows per person must be at least 1",
            ));
        }
        let m = f64::from(rows_per_person);
        // The noise scale in value units decides the grid.
        let value_scale = if delta == 0.0 {
            laplace_scale(m * bound, epsilon)?
        } else {
            gaussian_sigma(m * bound, epsilon, delta)?
        };
        // r ≤ noise scale / 2^20, and r ≤ B / 2^10 so values keep their resolution even
        // when ε is tiny.
        let exponent = ((value_scale.log2() - 20.0).floor()).min((bound.log2() - 10.0).floor());
        let resolution = 2f64.powi(exponent as i32);
        // Each person moves the grid sum by at most m·⌈B/r⌉ grid units.
        let per_value = (bound / resolution).ceil();
        let sensitivity = m * per_value;
        if !(sensitivity.is_finite() && sensitivity < 2f64.powi(62)) {
            return Err(DpError::InvalidParameter(
                "the sum's parameters are out of range",
            ));
        }
        let noise = IntegerNoise::for_policy(sensitivity as u64, epsilon, delta)?;
        Ok(Self {
            bound,
            resolution,
            noise,
        })
    }

    /// The grid's resolution `r`: released sums are multiples of it.
    pub fn resolution(&self) -> f64 {
        self.resolution
    }

    /// The clamp applied to every value.
    pub fn bound(&self) -> f64 {
        self.bound
    }

    /// The noise added, in grid units.
    pub fn noise(&self) -> &IntegerNoise {
        &self.noise
    }

    /// One value on the grid: clamped to `[−bound, bound]`, rounded to the nearest
    /// multiple of the resolution, in grid units. A NaN counts as 0. Sum these exactly
    /// (as integers) and pass the total to [`SumMechanism::release`].
    pub fn to_grid(&self, value: f64) -> i64 {
        if value.is_nan() {
            return 0;
        }
        (value.clamp(-self.bound, self.bound) / self.resolution).round() as i64
    }

    /// The released sum: `(grid_sum + noise) · r`, where `grid_sum` is the exact sum of
    /// [`SumMechanism::to_grid`] over the cell's rows.
    pub fn release<R: RngCore + CryptoRng + ?Sized>(&self, grid_sum: i128, rng: &mut R) -> f64 {
        let noisy = grid_sum.saturating_add(i128::from(self.noise.sample(rng)));
        noisy as f64 * self.resolution
    }

    /// ± this much around the (clamped, gridded) true sum, 95 % of the time.
    pub fn half_width_95(&self) -> f64 {
        self.noise.half_width_95() as f64 * self.resolution
    }
}

#[cfg(test)]
mod tests;
