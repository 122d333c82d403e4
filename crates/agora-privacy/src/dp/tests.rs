use rand::RngCore;

use super::*;

fn source(byte: u8) -> NoiseSource {
    NoiseSource::new(&HubSecret::from_bytes([byte; 32]))
}

fn draws(noise: &IntegerNoise, context: &[u8], n: usize) -> Vec<i64> {
    let mut rng = source(9).stream(&[b"distribution-test", context]);
    (0..n).map(|_| noise.sample(&mut rng)).collect()
}

/// The exact probability mass function of `noise`, normalized numerically.
fn pmf(noise: &IntegerNoise) -> impl Fn(i64) -> f64 {
    let s = noise.scale();
    let kind = noise.kind();
    let weight = move |z: i64| match kind {
        NoiseKind::Laplace => (-(z.unsigned_abs() as f64) / s).exp(),
        NoiseKind::Gaussian => (-((z * z) as f64) / (2.0 * s * s)).exp(),
    };
    let n = (60.0 * s).ceil() as i64 + 60;
    let total: f64 = (-n..=n).map(weight).sum();
    move |z| weight(z) / total
}

/// Wilson–Hilferty approximation of the chi-square quantile with `df` degrees of freedom
/// at standard-normal quantile `z`.
fn chi2_critical(df: f64, z: f64) -> f64 {
    let a = 2.0 / (9.0 * df);
    df * (1.0 - a + z * a.sqrt()).powi(3)
}

/// Pearson's statistic of `samples` against `p`, with every bin expecting at least 5 and
/// the two tails pooled; returns (statistic, degrees of freedom).
fn chi_square(samples: &[i64], p: &dyn Fn(i64) -> f64) -> (f64, f64) {
    let n = samples.len() as f64;
    let mut m = 0i64;
    while n * p(m + 1) >= 5.0 {
        m += 1;
    }
    let mut observed = std::collections::HashMap::<i64, f64>::new();
    for &x in samples {
        *observed.entry(x.clamp(-m - 1, m + 1)).or_default() += 1.0;
    }
    let central: f64 = (-m..=m).map(p).sum();
    let tail = ((1.0 - central) / 2.0).max(0.0);
    let mut stat = 0.0;
    let mut bins = 0.0;
    for z in -m - 1..=m + 1 {
        let expected = if z.abs() == m + 1 { n * tail } else { n * p(z) };
        let o = observed.get(&z).copied().unwrap_or(0.0);
        if expected < 1e-9 {
            assert_eq!(o, 0.0, "a sample fell where the distribution has no mass");
            continue;
        }
        stat += (o - expected).powi(2) / expected;
        bins += 1.0;
    }
    (stat, bins - 1.0)
}

const N: usize = 120_000;

/// Mean, variance, goodness of fit and symmetry of 120 000 draws.
fn check_distribution(noise: IntegerNoise, label: &str) {
    let samples = draws(&noise, label.as_bytes(), N);
    let n = N as f64;
    let mean = samples.iter().map(|&x| x as f64).sum::<f64>() / n;
    let var = samples
        .iter()
        .map(|&x| (x as f64 - mean).powi(2))
        .sum::<f64>()
        / (n - 1.0);
    let theory = noise.variance();
    assert!(
        mean.abs() <= 4.5 * (theory / n).sqrt(),
        "{label}: mean {mean}, variance {theory}"
    );
    // The sample variance's relative standard error is about √((κ−1)/n) ≤ 1 %.
    assert!(
        (var / theory - 1.0).abs() < 0.04,
        "{label}: variance {var} against {theory}"
    );
    let p = pmf(&noise);
    let (stat, df) = chi_square(&samples, &p);
    let critical = chi2_critical(df, 3.719); // p = 1e-4
    assert!(
        stat < critical,
        "{label}: chi-square {stat} with {df} df (critical {critical})"
    );
    let positive = samples.iter().filter(|&&x| x > 0).count() as f64;
    let negative = samples.iter().filter(|&&x| x < 0).count() as f64;
    assert!(
        (positive - negative).abs() <= 4.5 * (positive + negative).sqrt(),
        "{label}: {positive} positive, {negative} negative"
    );
    // And the test has power: the same draws do not fit a scale 15 % larger.
    let wrong = match noise.kind() {
        NoiseKind::Laplace => IntegerNoise::laplace_with_scale(noise.scale() * 1.15),
        NoiseKind::Gaussian => IntegerNoise::gaussian_with_sigma(noise.scale() * 1.15),
    };
    let (wrong_stat, wrong_df) = chi_square(&samples, &pmf(&wrong));
    assert!(
        wrong_stat > chi2_critical(wrong_df, 3.719),
        "{label}: the test cannot tell a 15 % larger scale"
    );
}

#[test]
fn discrete_laplace_matches_its_distribution() {
    for scale in [0.7, 3.0, 25.0] {
        check_distribution(
            IntegerNoise::laplace_with_scale(scale),
            &format!("laplace {scale}"),
        );
    }
}

#[test]
fn discrete_gaussian_matches_its_distribution() {
    for sigma in [0.8, 4.0, 30.0] {
        check_distribution(
            IntegerNoise::gaussian_with_sigma(sigma),
            &format!("gaussian {sigma}"),
        );
    }
}

#[test]
fn the_bernoulli_exp_sampler_is_exact() {
    let mut rng = source(3).stream(&[b"bernoulli"]);
    for (num, den) in [(1u128, 3u128), (1, 1), (5, 2), (7, 10)] {
        let n = 100_000;
        let hits = (0..n).filter(|_| bernoulli_exp(&mut rng, num, den)).count() as f64;
        let p = (-(num as f64) / den as f64).exp();
        let sd = (p * (1.0 - p) / n as f64).sqrt();
        assert!(
            (hits / n as f64 - p).abs() < 4.5 * sd,
            "{num}/{den}: {hits}"
        );
    }
}

#[test]
fn uniform_sampling_has_no_modulo_bias() {
    let mut rng = source(4).stream(&[b"uniform"]);
    let mut counts = [0f64; 3];
    for _ in 0..60_000 {
        counts[uniform_below(&mut rng, 3) as usize] += 1.0;
    }
    let stat: f64 = counts
        .iter()
        .map(|c| (c - 20_000.0).powi(2) / 20_000.0)
        .sum();
    assert!(stat < 18.4, "{counts:?}"); // chi-square, 2 df, p = 1e-4
    assert_eq!(uniform_below(&mut rng, 1), 0);
    assert!(uniform_below(&mut rng, u128::MAX) < u128::MAX);
}

#[test]
fn the_same_question_gets_the_same_noise() {
    let noise = IntegerNoise::laplace(1, 0.5).unwrap();
    let s = source(1);
    let ask = |ctx: &[&[u8]]| -> Vec<i64> {
        let mut rng = s.stream(ctx);
        (0..32).map(|_| noise.sample(&mut rng)).collect()
    };
    let base = ask(&[b"permit-1", b"select 1", b"cell"]);
    assert_eq!(base, ask(&[b"permit-1", b"select 1", b"cell"]));
    assert_ne!(base, ask(&[b"permit-1", b"select 1", b"cell2"]));
    assert_ne!(base, ask(&[b"permit-2", b"select 1", b"cell"]));
    // Length prefixes: moving bytes across parts, or adding an empty part, changes it.
    assert_ne!(base, ask(&[b"permit-1select 1", b"", b"cell"]));
    assert_ne!(base, ask(&[b"permit-1", b"select 1", b"cell", b""]));
    let mut other = source(2).stream(&[b"permit-1", b"select 1", b"cell"]);
    let theirs: Vec<i64> = (0..32).map(|_| noise.sample(&mut other)).collect();
    assert_ne!(base, theirs);

    let a = s.cell_stream("p", 1, "select 1", &[b"g1"]).next_u64();
    assert_eq!(a, s.cell_stream("p", 1, "select 1", &[b"g1"]).next_u64());
    assert_ne!(a, s.cell_stream("p", 2, "select 1", &[b"g1"]).next_u64());
    assert_ne!(a, s.cell_stream("p", 1, "select 1 ", &[b"g1"]).next_u64());
    assert_ne!(a, s.cell_stream("p", 1, "select 1", &[b"g2"]).next_u64());
}

/// Pins the derivation: a change would change every answer already given (and let a
/// repeated query draw fresh noise). Cross-checked in Python with `hmac` and a plain
/// ChaCha20 block function: seed = HMAC-SHA256(0^32, "agora/dp-noise/v1\0" ‖ u64 4 ‖
/// u64 6 "permit" ‖ u64 8 i64(1) ‖ u64 8 "SELECT 1" ‖ u64 1 "c"), key = seed, nonce and
/// counter 0; the first two little-endian words of block 0.
#[test]
fn known_answer() {
    let mut rng = source(0).cell_stream("permit", 1, "SELECT 1", &[b"c"]);
    let first = rng.next_u64();
    assert_eq!(first, KNOWN_FIRST_U64);
}

const KNOWN_FIRST_U64: u64 = 12_486_120_426_679_843_361;

#[test]
fn question_hashes_name_the_text() {
    let a = question_hash("SELECT count(*) FROM person");
    assert_eq!(a.len(), 64);
    assert_eq!(a, question_hash("SELECT count(*) FROM person"));
    assert_ne!(a, question_hash("SELECT count(*) FROM person "));
}

#[test]
fn debug_output_is_redacted() {
    assert_eq!(format!("{:?}", source(5)), "NoiseSource(<redacted>)");
    assert_eq!(
        format!("{:?}", source(5).stream(&[])),
        "NoiseStream(<redacted>)"
    );
}

#[test]
fn calibration() {
    assert_eq!(laplace_scale(1.0, 0.5).unwrap(), 2.0);
    assert_eq!(laplace_scale(3.0, 1.0).unwrap(), 3.0);
    let (eps, delta) = (1.0, 1e-6);
    let sigma = gaussian_sigma(1.0, eps, delta).unwrap();
    assert!((sigma - 5.350).abs() < 1e-3, "{sigma}");
    // The zCDP conversion holds with equality at the calibrated σ.
    let rho = 1.0 / (2.0 * sigma * sigma);
    let l = (1.0 / delta).ln();
    assert!((rho + 2.0 * (rho * l).sqrt() - eps).abs() < 1e-12);
    // σ grows linearly with the sensitivity, and shrinks as ε or δ grow.
    assert!((gaussian_sigma(4.0, eps, delta).unwrap() / sigma - 4.0).abs() < 1e-12);
    assert!(gaussian_sigma(1.0, 2.0, delta).unwrap() < sigma);
    assert!(gaussian_sigma(1.0, eps, 1e-4).unwrap() < sigma);
    // The realized parameters are never below the calibrated ones, and close to them.
    for scale in [1e-9, 0.013, 1.0, 2.5, 1234.567, 9.9e11] {
        let used = IntegerNoise::laplace_with_scale(scale).scale();
        assert!(used >= scale && used <= scale * (1.0 + 2f64.powi(-19)) + 2f64.powi(-40));
    }
    for sigma in [1e-4, 0.5, 5.35, 777.0, 1.6e7] {
        let used = IntegerNoise::gaussian_with_sigma(sigma).scale();
        assert!(used >= sigma && used <= sigma * (1.0 + 2f64.powi(-19)) + 2f64.powi(-19));
    }
    let n = IntegerNoise::for_policy(2, 0.5, 0.0).unwrap();
    assert_eq!((n.kind(), n.scale()), (NoiseKind::Laplace, 4.0));
    let g = IntegerNoise::for_policy(1, 1.0, 1e-6).unwrap();
    assert_eq!(g.kind(), NoiseKind::Gaussian);
}

#[test]
fn half_widths_are_the_95_percent_quantile() {
    let noises = [
        IntegerNoise::laplace_with_scale(0.3),
        IntegerNoise::laplace_with_scale(2.0),
        IntegerNoise::laplace_with_scale(100.0),
        IntegerNoise::gaussian_with_sigma(0.3),
        IntegerNoise::gaussian_with_sigma(5.35),
        IntegerNoise::gaussian_with_sigma(120.0),
    ];
    for noise in noises {
        let h = noise.half_width_95() as i64;
        let p = pmf(&noise);
        let within = |h: i64| (-h..=h).map(&p).sum::<f64>();
        assert!(within(h) >= 0.95 - 1e-9, "{noise:?}: {h}");
        if h > 0 {
            assert!(within(h - 1) < 0.95, "{noise:?}: {h}");
        }
        // And the draws agree.
        let samples = draws(&noise, b"half-width", 20_000);
        let inside = samples.iter().filter(|x| x.abs() <= h).count() as f64 / 20_000.0;
        assert!(inside >= 0.94, "{noise:?}: {inside}");
    }
    // Laplace, λ = 1/ln 2 (p = 1/2): P(|Z| > h) = 2^(-h)·(2/3) ≤ 0.05 from h = 4.
    let half = IntegerNoise::laplace_with_scale(1.0 / std::f64::consts::LN_2);
    assert_eq!(half.half_width_95(), 4);
    // Large σ: the normal quantile.
    let big = IntegerNoise::gaussian_with_sigma(1e5).half_width_95();
    assert!((196_001..=196_002).contains(&big), "{big}");
}

#[test]
fn invalid_parameters_are_refused_without_echoing_them() {
    let bad_eps = [
        0.0,
        -1.0,
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        1e-300,
    ];
    for eps in bad_eps {
        let e = IntegerNoise::laplace(1, eps).unwrap_err();
        assert!(!e.to_string().contains(&eps.to_string()), "{e}");
        assert!(IntegerNoise::gaussian(1, eps, 1e-6).is_err());
        assert!(CountMechanism::new(1, eps, 0.0).is_err());
        assert!(SumMechanism::new(10.0, 1, eps, 0.0).is_err());
    }
    assert!(IntegerNoise::laplace(0, 1.0).is_err());
    assert!(IntegerNoise::gaussian(0, 1.0, 1e-6).is_err());
    for delta in [1.0, 2.0, -1e-9, f64::NAN, f64::INFINITY] {
        let e = IntegerNoise::gaussian(1, 1.0, delta).unwrap_err();
        assert!(e.to_string().contains("delta"), "{e}");
        assert!(IntegerNoise::for_policy(1, 1.0, delta).is_err());
    }
    assert!(laplace_scale(f64::NAN, 1.0).is_err());
    assert!(laplace_scale(1e300, 1e-300).is_err());
    assert!(gaussian_sigma(1e300, 1.0, 1e-6).is_err());
    assert!(CountMechanism::new(0, 1.0, 0.0).is_err());
    for bound in [0.0, -1.0, f64::NAN, f64::INFINITY, 1e16] {
        assert!(SumMechanism::new(bound, 1, 1.0, 0.0).is_err());
    }
    assert!(SumMechanism::new(10.0, 0, 1.0, 0.0).is_err());
    assert_eq!(
        IntegerNoise::laplace(1, 0.0).unwrap_err().to_string(),
        "differential privacy: epsilon must be a positive number"
    );
}

#[test]
fn extreme_parameters_do_not_panic() {
    let mut rng = source(6).stream(&[b"extreme"]);
    // Huge ε: (almost) no noise.
    let tiny = IntegerNoise::laplace(1, 1e9).unwrap();
    assert!((0..100).all(|_| tiny.sample(&mut rng) == 0));
    let tiny_g = IntegerNoise::gaussian(1, 1e9, 0.5).unwrap();
    assert!((0..100).all(|_| tiny_g.sample(&mut rng) == 0));
    // The largest scales accepted.
    let big = IntegerNoise::laplace(1 << 30, 1e-3).unwrap();
    let big_g = IntegerNoise::gaussian(1, 1e-6, 1e-10)
        .unwrap_or_else(|_| IntegerNoise::gaussian_with_sigma(MAX_GAUSSIAN_SIGMA));
    for _ in 0..50 {
        big.sample(&mut rng);
        big_g.sample(&mut rng);
    }
    let max_g = IntegerNoise::gaussian_with_sigma(MAX_GAUSSIAN_SIGMA);
    for _ in 0..20 {
        max_g.sample(&mut rng);
    }
    assert!(big.half_width_95() > 0 && max_g.half_width_95() > 0);
    // Releases saturate instead of overflowing.
    let count = CountMechanism::new(1, 1e-3, 0.0).unwrap();
    for _ in 0..50 {
        count.release(i64::MAX, &mut rng);
    }
    assert!(
        (0..50)
            .map(|_| count.release(i64::MIN, &mut rng))
            .all(|x| x < 0)
    );
    let sum = SumMechanism::new(1e15, 1000, 1e-3, 0.0);
    assert!(sum.is_err() || sum.unwrap().release(i128::MAX, &mut rng).is_finite());
}

#[test]
fn counts_are_released_with_the_stated_accuracy() {
    let mech = CountMechanism::new(1, 0.5, 0.0).unwrap();
    assert_eq!(mech.noise().scale(), 2.0);
    let mut rng = source(7).stream(&[b"counts"]);
    let h = mech.half_width_95() as i64;
    let released: Vec<i64> = (0..10_000).map(|_| mech.release(1000, &mut rng)).collect();
    let inside = released.iter().filter(|&&x| (x - 1000).abs() <= h).count();
    assert!(inside >= 9_400, "{inside}");
    let rows = CountMechanism::new(5, 0.5, 0.0).unwrap();
    assert_eq!(rows.noise().scale(), 10.0);
}

#[test]
fn sums_use_a_power_of_two_grid() {
    let mech = SumMechanism::new(1000.0, 1, 1.0, 0.0).unwrap();
    let r = mech.resolution();
    assert_eq!(r, 2f64.powi((1000f64.log2() - 20.0).floor() as i32));
    assert!(r <= 1000.0 / 2f64.powi(20));
    assert_eq!(mech.to_grid(5000.0), mech.to_grid(1000.0));
    assert_eq!(mech.to_grid(-5000.0), -mech.to_grid(1000.0));
    assert_eq!(mech.to_grid(f64::NAN), 0);
    assert_eq!(mech.to_grid(r * 3.0), 3);
    // The grid noise has the sensitivity ⌈B/r⌉ and so the value scale B/ε (to 2^-19).
    let value_scale = mech.noise().scale() * r;
    assert!((value_scale / 1000.0 - 1.0).abs() < 1e-5, "{value_scale}");
    // Released sums are unbiased and within the stated half-width 95 % of the time.
    let values = [12.5, 300.0, 999.0, 2500.0, -40.25];
    let grid: i128 = values.iter().map(|&v| i128::from(mech.to_grid(v))).sum();
    let exact = grid as f64 * r;
    assert!((exact - (12.5 + 300.0 + 999.0 + 1000.0 - 40.25)).abs() < 1e-6);
    let mut rng = source(8).stream(&[b"sums"]);
    let h = mech.half_width_95();
    let out: Vec<f64> = (0..20_000).map(|_| mech.release(grid, &mut rng)).collect();
    let mean = out.iter().sum::<f64>() / out.len() as f64;
    assert!((mean - exact).abs() < 4.5 * 1000.0 * 2f64.sqrt() / (20_000f64).sqrt());
    let inside = out.iter().filter(|x| (*x - exact).abs() <= h).count();
    assert!(inside >= 18_800, "{inside}");
    assert!(
        (h / (1000.0 * (1.0 / 0.05f64).ln()) - 1.0).abs() < 0.01,
        "{h}"
    );
    // Gaussian sums too, and a tiny ε keeps B/r ≥ 2^10.
    let g = SumMechanism::new(50.0, 3, 0.5, 1e-6).unwrap();
    assert!(g.noise().kind() == NoiseKind::Gaussian && g.resolution() <= 50.0 / 1024.0);
    let coarse = SumMechanism::new(1.0, 1, 1e-5, 0.0).unwrap();
    assert!(coarse.resolution() <= 1.0 / 1024.0);
}
