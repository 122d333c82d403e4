//! A small, fast, seedable PRNG (xoshiro256++) with the few distributions the generator needs.
//!
//! We own the algorithm instead of using `StdRng`/`SmallRng` because rand documents neither as
//! value-stable across releases, and the output must stay byte-identical for a given seed.
//! It still implements `rand::RngCore`/`SeedableRng`, so rand's adapters work with it.

use rand::{RngCore, SeedableRng};

/// SplitMix64 finaliser: a bijection on `u64` with good avalanche.
#[inline]
pub(crate) const fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;

#[derive(Clone, Debug)]
pub(crate) struct Rng {
    s: [u64; 4],
    /// Second Box–Muller variate, kept for the next `normal` call.
    spare: Option<f64>,
}

impl Rng {
    /// Independent stream `stream` of person `pid` under `seed`: the output of a person never
    /// depends on other persons, chunk sizes or thread counts.
    pub(crate) fn for_person(seed: u64, stream: u64, pid: u64) -> Self {
        let key = mix64(seed ^ mix64(stream.wrapping_add(GOLDEN)));
        Self::from_u64(mix64(key ^ pid.wrapping_mul(GOLDEN)))
    }

    fn from_u64(mut x: u64) -> Self {
        let mut s = [0u64; 4];
        for v in &mut s {
            x = x.wrapping_add(GOLDEN);
            *v = mix64(x);
        }
        // xoshiro must not start from the all-zero state.
        if s == [0; 4] {
            s[0] = GOLDEN;
        }
        Rng { s, spare: None }
    }

    #[inline]
    pub(crate) fn next(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform in `[0, 1)`.
    #[inline]
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    #[inline]
    pub(crate) fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Uniform in `0..n` (`n > 0`), by multiply-shift (bias < 2^-32, irrelevant here).
    #[inline]
    pub(crate) fn below(&mut self, n: u32) -> u32 {
        (((self.next() >> 32) * u64::from(n)) >> 32) as u32
    }

    /// Uniform in `lo..=hi`; returns `lo` when `hi <= lo`.
    #[inline]
    pub(crate) fn between(&mut self, lo: i32, hi: i32) -> i32 {
        if hi <= lo {
            return lo;
        }
        let span = (i64::from(hi) - i64::from(lo) + 1) as u64;
        lo + ((u128::from(self.next()) * u128::from(span)) >> 64) as i32
    }

    #[inline]
    pub(crate) fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u32) as usize]
    }

    /// Normal variate (Box–Muller, both variates used).
    pub(crate) fn normal(&mut self, mean: f64, sd: f64) -> f64 {
        if let Some(z) = self.spare.take() {
            return mean + sd * z;
        }
        let u1 = 1.0 - self.unit(); // (0, 1]
        let u2 = self.unit();
        let radius = (-2.0 * u1.ln()).sqrt();
        let (sin, cos) = (std::f64::consts::TAU * u2).sin_cos();
        self.spare = Some(radius * sin);
        mean + sd * radius * cos
    }

    pub(crate) fn poisson(&mut self, lambda: f64) -> u32 {
        if lambda <= 0.0 {
            return 0;
        }
        if lambda < 30.0 {
            let limit = (-lambda).exp();
            let mut k = 0u32;
            let mut p = self.unit();
            while p > limit {
                k += 1;
                p *= self.unit();
            }
            k
        } else {
            self.normal(lambda, lambda.sqrt()).round().max(0.0) as u32
        }
    }

    /// Index drawn from cumulative integer weights (`cum` strictly increasing, last = total).
    #[inline]
    pub(crate) fn weighted(&mut self, cum: &[u32]) -> usize {
        let total = *cum.last().expect("non-empty weight table");
        let x = self.below(total);
        cum.partition_point(|&c| c <= x)
    }
}

/// Cumulative weights for [`Rng::weighted`].
pub(crate) fn cumulative(weights: impl IntoIterator<Item = u32>) -> Vec<u32> {
    let mut acc = 0u32;
    weights
        .into_iter()
        .map(|w| {
            acc += w;
            acc
        })
        .collect()
}

impl RngCore for Rng {
    fn next_u32(&mut self) -> u32 {
        (self.next() >> 32) as u32
    }
    fn next_u64(&mut self) -> u64 {
        self.next()
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl SeedableRng for Rng {
    type Seed = [u8; 32];
    fn from_seed(seed: [u8; 32]) -> Self {
        let mut s = [0u64; 4];
        for (v, b) in s.iter_mut().zip(seed.chunks_exact(8)) {
            *v = u64::from_le_bytes(b.try_into().expect("8 bytes"));
        }
        if s == [0; 4] {
            return Self::from_u64(0);
        }
        Rng { s, spare: None }
    }
    fn seed_from_u64(state: u64) -> Self {
        Self::from_u64(state)
    }
}
