use rand::RngExt;

use super::*;

/// `n` rows of `d` Gaussian features (Box–Muller), shifted by `shift`, seeded.
fn gaussian(n: usize, d: usize, shift: f64, seed: u64) -> Features {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    DMatrix::from_fn(n, d, |_, _| {
        let (u, v): (f64, f64) = (rng.random_range(1e-12..1.0), rng.random_range(0.0..1.0));
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos() + shift
    })
}

#[test]
fn frechet_distance_of_a_set_with_itself_is_zero() {
    let x = gaussian(500, 8, 0.0, 1);
    assert!(frechet_distance(&x, &x).abs() < 1e-6);
}

#[test]
fn frechet_distance_grows_with_noise_and_matches_a_known_shift() {
    let x = gaussian(4000, 4, 0.0, 1);
    let noisy = |s: f64| {
        let e = gaussian(4000, 4, 0.0, 2);
        &x + e * s
    };
    let d: Vec<f64> = [0.1, 0.3, 1.0, 3.0]
        .iter()
        .map(|&s| frechet_distance(&x, &noisy(s)))
        .collect();
    assert!(d.windows(2).all(|w| w[0] < w[1]), "{d:?}");
    // N(0, I) against N(0.5·1, I) in 4-D: ‖μ₁ − μ₂‖² = 4 · 0.25 = 1.
    let y = gaussian(4000, 4, 0.5, 3);
    let fd = frechet_distance(&x, &y);
    assert!((fd - 1.0).abs() < 0.1, "{fd}");
}

#[test]
fn kid_is_unbiased_on_equal_distributions_and_positive_on_shifted_ones() {
    let a = gaussian(1000, 16, 0.0, 4);
    let b = gaussian(1000, 16, 0.0, 5);
    let same = kid(&a, &b, 20, 200, 9);
    assert!(same.mean.abs() < 3.0 * same.std.max(1e-4), "{same:?}");
    let far = kid(&a, &gaussian(1000, 16, 1.0, 6), 20, 200, 9);
    assert!(
        far.mean > 10.0 * same.mean.abs().max(1e-3),
        "{far:?} vs {same:?}"
    );
}

fn one_hot(classes: &[usize], k: usize) -> Features {
    DMatrix::from_fn(classes.len(), k, |i, j| {
        f64::from(u8::from(classes[i] == j))
    })
}

#[test]
fn coverage_of_one_class_is_one_and_of_all_classes_is_ten() {
    let one = coverage(&one_hot(&[3; 50], 10));
    assert_eq!((one.classes_hit, one.classes), (1, 10));
    assert!((one.kl_uniform - 10f64.ln()).abs() < 1e-9);
    let all: Vec<usize> = (0..100).map(|i| i % 10).collect();
    let all = coverage(&one_hot(&all, 10));
    assert_eq!(all.classes_hit, 10);
    assert!(all.kl_uniform.abs() < 1e-9);
}

#[test]
fn classifier_score_ranges_from_one_to_the_class_count() {
    let all: Vec<usize> = (0..100).map(|i| i % 10).collect();
    let s = classifier_score(&one_hot(&all, 10), 1);
    assert!((s.mean - 10.0).abs() < 1e-6, "{s:?}");
    let s = classifier_score(&one_hot(&[2; 100], 10), 2);
    assert!((s.mean - 1.0).abs() < 1e-9, "{s:?}");
    let flat = DMatrix::from_element(40, 10, 0.1);
    assert!((classifier_score(&flat, 4).mean - 1.0).abs() < 1e-9);
}

#[test]
fn precision_and_recall_separate_quality_from_diversity() {
    let real = gaussian(300, 2, 0.0, 7);
    let (p, r) = precision_recall(&real, &real, 3);
    assert_eq!((p, r), (1.0, 1.0));
    // Fakes far away: neither precise nor covering.
    let (p, r) = precision_recall(&real, &gaussian(300, 2, 50.0, 8), 3);
    assert_eq!((p, r), (0.0, 0.0));
    // Fakes collapsed to a small region at the centre: precise, low recall.
    let collapsed = gaussian(300, 2, 0.0, 9) * 0.05;
    let (p, r) = precision_recall(&real, &collapsed, 3);
    assert!(p > 0.9 && r < 0.5, "precision {p} recall {r}");
}
