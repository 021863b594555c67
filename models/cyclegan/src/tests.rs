use std::sync::Arc;

use burn::prelude::*;
use zoo_core::config::RunConfig;
use zoo_core::data::ImageSet;
use zoo_core::data::pair::Mapping;
use zoo_core::data::similarity::translation_error;
use zoo_core::game::{Direction, Game};
use zoo_core::gan::{param_values, trainable_params};
use zoo_train::run::RunDir;
use zoo_train::testing::{load_trained, rng_lock, tempfile_dir, train_game};

use super::*;

/// A tiny config: `size`×`size` gray images, 8 filters, one block, a 1-layer PatchGAN.
fn tiny(size: usize) -> RunConfig<CycleGanConfig> {
    let mut cfg = CycleGan::defaults();
    cfg.data.image_size = size;
    cfg.data.channels = 1;
    cfg.model.g_filters = 8;
    cfg.model.d_filters = 8;
    cfg.model.g_blocks = 1;
    cfg.model.d_layers = 1;
    cfg.model.load_size = size;
    cfg.model.pool_size = 4;
    cfg.train.batch_size = 2;
    cfg.train.epochs = None;
    cfg.train.steps = 2;
    cfg.train.lr_schedule = zoo_core::config::LrSchedule::Constant;
    cfg.train.grid_samples = 2;
    cfg
}

/// `n` images of a bright rectangle on black (seeded); with `invert` the colours swap.
fn rectangles(n: usize, size: usize, seed: u64, invert: bool) -> Arc<ImageSet> {
    Arc::new(zoo_train::testing::rectangles(n, size, seed, invert))
}

fn domains(cfg: &RunConfig<CycleGanConfig>, n: usize) -> Domains {
    let s = cfg.data.image_size;
    let m = CycleGan::new(cfg).expect("valid");
    Domains::from_sets(
        rectangles(n, s, 1, false),
        rectangles(n, s, 2, true),
        Some(rectangles(8, s, 3, false)),
        Some(rectangles(8, s, 4, true)),
        m.sampling(cfg),
    )
    .expect("valid domains")
}

#[test]
fn parameter_counts_match_the_reference() {
    let _l = rng_lock();
    // 3 channels, 64 filters, 9 blocks, the 70×70 PatchGAN: the reference's printed totals.
    let mut cfg = CycleGan::defaults();
    cfg.data.channels = 3;
    let m = CycleGan::new(&cfg).expect("valid");
    let dev = Device::flex().autodiff();
    let (g, d) = (m.init_g(&dev), m.init_d(&dev));
    assert_eq!(trainable_params(&g.g), 11_378_179);
    assert_eq!(trainable_params(&g.f), 11_378_179);
    assert_eq!(trainable_params(&d.d_a), 2_764_737);
    assert_eq!(trainable_params(&d.d_b), 2_764_737);
}

#[test]
fn shapes_at_small_sizes() {
    let _l = rng_lock();
    let dev = Device::flex();
    for (size, channels, layers) in [(8, 1, 1), (28, 1, 2), (32, 3, 3), (12, 3, 1)] {
        let mut cfg = tiny(size);
        cfg.data.channels = channels;
        cfg.model.d_layers = layers;
        let m = CycleGan::new(&cfg).expect("valid");
        let (g, d) = (m.init_g(&dev), m.init_d(&dev));
        let x = Tensor::<4>::random(
            [3, channels, size, size],
            burn::tensor::Distribution::Uniform(-1.0, 1.0),
            &dev,
        );
        let y = g.g.forward(x);
        assert_eq!(y.dims(), [3, channels, size, size]);
        let side = PatchDiscriminator::patch_side(size, layers).expect("fits");
        assert_eq!(d.d_a.forward(y).dims(), [3, 1, side, side]);
    }
    assert_eq!(PatchDiscriminator::patch_side(256, 3).expect("fits"), 30);
    assert!(PatchDiscriminator::patch_side(16, 3).is_err());
    let mut bad = tiny(30);
    bad.model.load_size = 30;
    let e = CycleGan::new(&bad)
        .expect_err("30 is not a multiple of 4")
        .to_string();
    assert!(e.contains("data.image_size"), "{e}");
}

#[test]
fn generator_down_sampling_steps_are_configurable() {
    let _l = rng_lock();
    let dev = Device::flex().autodiff();
    let params = |size: usize, down: usize| {
        let mut cfg = tiny(size);
        cfg.model.g_down = down;
        let m = CycleGan::new(&cfg).expect("valid");
        let g = m.init_g(&dev);
        let x = Tensor::<4>::random(
            [2, 1, size, size],
            burn::tensor::Distribution::Uniform(-1.0, 1.0),
            &dev,
        );
        assert_eq!(g.g.forward(x).dims(), [2, 1, size, size], "g_down {down}");
        trainable_params(&g.g)
    };
    // By hand (biased convolutions, norms without parameters; 8 filters, one block, gray):
    // the 7×7 head and tail, `down` 3×3 convolutions f·2^i → f·2^(i+1) and as many transposed
    // back, and the block's two 3×3 convolutions at the width f·2^down.
    let by_hand = |down: u32| {
        let (f, c) = (8usize, 1usize);
        let ends = 49 * c * f + f + 49 * f * c + c;
        let steps: usize = (0..down)
            .map(|i| {
                let (a, b) = (f << i, f << (i + 1));
                (9 * a * b + b) + (9 * b * a + a)
            })
            .sum();
        let w = f << down;
        ends + steps + 2 * (9 * w * w + w)
    };
    for down in 1..=3 {
        assert_eq!(params(32, down as usize), by_hand(down), "g_down {down}");
    }
    let mut bad = tiny(28);
    bad.model.g_down = 3;
    let e = CycleGan::new(&bad)
        .expect_err("28 is not a multiple of 8")
        .to_string();
    assert!(e.contains("multiple of 8"), "{e}");
    let mut bad = tiny(32);
    bad.model.g_down = 0;
    let e = CycleGan::new(&bad).expect_err("no steps").to_string();
    assert!(e.contains("model.g_down must be between 1 and 5"), "{e}");
}

#[test]
fn reflection_padding_matches_hand_values() {
    let dev = Device::flex();
    let x = Tensor::<4>::from_floats(
        [[[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]]]],
        &dev,
    );
    let want = Tensor::<4>::from_floats(
        [[[
            [5.0, 4.0, 5.0, 6.0, 5.0],
            [2.0, 1.0, 2.0, 3.0, 2.0],
            [5.0, 4.0, 5.0, 6.0, 5.0],
            [8.0, 7.0, 8.0, 9.0, 8.0],
            [5.0, 4.0, 5.0, 6.0, 5.0],
        ]]],
        &dev,
    );
    nets::reflect_pad(x, 1)
        .into_data()
        .assert_eq(&want.into_data(), true);
}

#[test]
fn instance_norm_matches_hand_values() {
    let dev = Device::flex();
    // Two images × two channels, each plane normalised on its own.
    let x = Tensor::<4>::from_floats(
        [
            [[[1.0, 2.0], [3.0, 4.0]], [[10.0, 10.0], [10.0, 14.0]]],
            [[[0.0, 0.0], [0.0, 2.0]], [[-1.0, 1.0], [-1.0, 1.0]]],
        ],
        &dev,
    );
    let y = nets::instance_norm(2, &dev).forward(x);
    let eps = 1e-5_f32;
    let n = |v: [f32; 4]| {
        let m = v.iter().sum::<f32>() / 4.0;
        let var = v.iter().map(|x| (x - m) * (x - m)).sum::<f32>() / 4.0;
        v.map(|x| (x - m) / (var + eps).sqrt())
    };
    let want: Vec<f32> = [
        n([1.0, 2.0, 3.0, 4.0]),
        n([10.0, 10.0, 10.0, 14.0]),
        n([0.0, 0.0, 0.0, 2.0]),
        n([-1.0, 1.0, -1.0, 1.0]),
    ]
    .concat();
    let got = y.into_data().try_to_vec::<f32>().expect("f32");
    for (g, w) in got.iter().zip(&want) {
        assert!((g - w).abs() < 1e-5, "{got:?} vs {want:?}");
    }
    // (1 - 2.5) / sqrt(1.25): a hand value.
    assert!((got[0] + 1.341_635).abs() < 1e-4, "{}", got[0]);
}

fn one_image(v: f32, dev: &Device) -> Tensor<4> {
    Tensor::full([1, 1, 2, 2], v, dev)
}

fn firsts(t: Tensor<4>) -> Vec<f32> {
    let n = t.dims()[0];
    let v = t.into_data().try_to_vec::<f32>().expect("f32");
    (0..n).map(|i| v[i * 4]).collect()
}

#[test]
fn image_pool_fills_then_swaps_about_half_the_time() {
    let _l = rng_lock();
    let dev = Device::flex();
    dev.seed(11);
    let mut pool = ImagePool::new(50);
    // Filling: every fake comes straight back and is stored.
    for i in 0..50 {
        assert_eq!(
            firsts(pool.query(one_image(i as f32, &dev))),
            vec![i as f32]
        );
    }
    assert_eq!(pool.len(), 50);
    // Full: of 400 new fakes, about half are swapped for a stored image on the way out.
    let batch = Tensor::cat(
        (0..400)
            .map(|i| one_image(1000.0 + i as f32, &dev))
            .collect(),
        0,
    );
    let out = firsts(pool.query(batch));
    let swapped = (0..400).filter(|&i| out[i] != 1000.0 + i as f32).count();
    assert!((150..=250).contains(&swapped), "{swapped} of 400 swapped");
    // The first swaps return the images stored while filling.
    assert!(out.iter().any(|&v| v < 50.0));
    assert_eq!(pool.len(), 50, "the pool never grows past its size");
    // Seeded: the same seed gives the same choices.
    let run = |seed| {
        dev.seed(seed);
        let mut p = ImagePool::new(3);
        (0..10)
            .flat_map(|i| firsts(p.query(one_image(i as f32, &dev))))
            .collect::<Vec<_>>()
    };
    assert_eq!(run(5), run(5));
    // Size 0 passes fakes through.
    let mut off = ImagePool::new(0);
    assert_eq!(firsts(off.query(one_image(7.0, &dev))), vec![7.0]);
    assert!(off.is_empty());
}

#[test]
fn image_pool_round_trips_through_a_file() {
    let _l = rng_lock();
    let dev = Device::flex();
    let dir = tempfile_dir();
    let mut pool = ImagePool::new(4);
    for i in 0..3 {
        pool.query(one_image(i as f32, &dev));
    }
    pool.save(&dir.join("p.bin")).expect("save");
    let mut back = ImagePool::new(4);
    back.load(&dir.join("p.bin"), &dev).expect("load");
    assert_eq!(back.len(), 3);
    dev.seed(1);
    let a = firsts(pool.query(one_image(9.0, &dev)));
    dev.seed(1);
    let b = firsts(back.query(one_image(9.0, &dev)));
    assert_eq!(a, b);
    std::fs::write(dir.join("bad.bin"), b"not a pool").expect("write");
    assert!(back.load(&dir.join("bad.bin"), &dev).is_err());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn cycle_loss_of_a_perfect_reconstruction_is_zero() {
    let dev = Device::flex();
    let m = CycleGan::new(&tiny(8)).expect("valid");
    let a = Tensor::<4>::full([2, 1, 8, 8], 0.5, &dev);
    let b = Tensor::<4>::full([2, 1, 8, 8], -0.25, &dev);
    let pair = Pair {
        a: a.clone(),
        b: b.clone(),
    };
    let perfect = Fakes {
        fake_b: b.clone(),
        rec_a: a.clone(),
        fake_a: a.clone(),
        rec_b: b.clone(),
    };
    let (ca, cb) = m.cycle_losses(&pair, &perfect);
    assert_eq!(ca.into_scalar::<f32>(), 0.0);
    assert_eq!(cb.into_scalar::<f32>(), 0.0);
    let off = Fakes {
        rec_a: a.clone().add_scalar(0.1),
        rec_b: b.clone().sub_scalar(0.3),
        ..perfect
    };
    let (ca, cb) = m.cycle_losses(&pair, &off);
    assert!((ca.into_scalar::<f32>() - 0.1).abs() < 1e-6);
    assert!((cb.into_scalar::<f32>() - 0.3).abs() < 1e-6);
}

#[test]
fn cycle_noise_perturbs_only_the_way_back() {
    let _l = rng_lock();
    let dev = Device::flex();
    let mut cfg = tiny(8);
    cfg.model.cycle_noise = 0.2;
    let m = CycleGan::new(&cfg).expect("valid");
    let g = m.init_g(&dev);
    let a = Tensor::<4>::random(
        [2, 1, 8, 8],
        burn::tensor::Distribution::Uniform(-1.0, 1.0),
        &dev,
    );
    let b = Tensor::<4>::random(
        [2, 1, 8, 8],
        burn::tensor::Distribution::Uniform(-1.0, 1.0),
        &dev,
    );
    let vals = |t: &Tensor<4>| t.clone().into_data().try_to_vec::<f32>().expect("f32");
    let clean = m.cycle(&g, a.clone(), b.clone());
    dev.seed(5);
    let noisy = m.cycle_with_noise(&g, a.clone(), b.clone(), 0.2);
    // The translations D judges are the clean ones; the reconstructions differ.
    assert_eq!(vals(&noisy.fake_b), vals(&clean.fake_b));
    assert_eq!(vals(&noisy.fake_a), vals(&clean.fake_a));
    assert_ne!(vals(&noisy.rec_a), vals(&clean.rec_a));
    assert_ne!(vals(&noisy.rec_b), vals(&clean.rec_b));
    // rec_a is F(G(a) + ε): subtracting the same draw of ε again from F's input is F(G(a)).
    dev.seed(5);
    let eps = Tensor::<4>::random(
        clean.fake_b.shape(),
        burn::tensor::Distribution::Normal(0.0, 0.2),
        &dev,
    );
    let by_hand = g.f.forward(clean.fake_b.clone() + eps.clone());
    let diff: f32 = (by_hand - noisy.rec_a.clone()).abs().max().into_scalar();
    assert!(diff < 1e-5, "F(G(a) + eps) differs by {diff}");
    // The noise is as wide as asked: its sample σ over 128 draws is within 25% of 0.2.
    let sd: f32 = eps.powf_scalar(2.0).mean().sqrt().into_scalar();
    assert!((0.15..0.25).contains(&sd), "noise sd {sd}");
    // A seed reproduces the draw; the training hook uses the configured σ.
    dev.seed(5);
    let again = m.cycle_with_noise(&g, a.clone(), b.clone(), 0.2);
    assert_eq!(vals(&again.rec_a), vals(&noisy.rec_a));
    let mut m2 = m.clone();
    dev.seed(5);
    let hooked = m2.fakes(&g, &Pair { a, b });
    assert_eq!(vals(&hooked.rec_b), vals(&noisy.rec_b));
    // A negative σ is refused by name.
    cfg.model.cycle_noise = -0.1;
    let err = CycleGan::new(&cfg).expect_err("negative").to_string();
    assert!(err.contains("model.cycle_noise"), "{err}");
}

#[test]
fn one_step_moves_all_four_networks() {
    let _l = rng_lock();
    let mut cfg = tiny(8);
    cfg.train.steps = 1;
    cfg.train.log_every = 1;
    let dir = tempfile_dir();
    let run = RunDir::create(&dir, CycleGan::NAME).expect("run");
    let m = CycleGan::new(&cfg).expect("valid");
    let (g0, d0) = zoo_train::checkpoint::init_networks(&m, cfg.train.seed, &Device::flex());
    let summary = train_game::<CycleGan>(&cfg, domains(&cfg, 8), &run, false);
    let names: Vec<&str> = summary.last.iter().map(|(n, _)| n.as_str()).collect();
    for want in [
        "D_A", "D_B", "G_A", "G_B", "cycle_A", "cycle_B", "idt_A", "idt_B",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    for (name, v) in &summary.last {
        assert!(v.is_finite(), "{name} = {v}");
    }
    let (g1, d1) = load_trained::<CycleGan>(&cfg, &run);
    let moved = |a: Vec<Vec<f32>>, b: Vec<Vec<f32>>| {
        let n = a.iter().zip(&b).filter(|(x, y)| x != y).count();
        n as f64 / a.len() as f64
    };
    for (name, frac) in [
        ("G", moved(param_values(&g0.g), param_values(&g1.g))),
        ("F", moved(param_values(&g0.f), param_values(&g1.f))),
        ("D_A", moved(param_values(&d0.d_a), param_values(&d1.d_a))),
        ("D_B", moved(param_values(&d0.d_b), param_values(&d1.d_b))),
    ] {
        assert!(frac > 0.5, "{name}: only {frac} of its tensors moved");
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn resume_continues_exactly_with_the_pools() {
    let _l = rng_lock();
    let mut cfg = tiny(8);
    cfg.train.steps = 6;
    cfg.train.log_every = 1;
    zoo_train::testing::assert_resume_is_exact::<CycleGan>(&cfg, || domains(&cfg, 8));
}

#[test]
fn short_training_learns_the_known_mapping() {
    // A = bright rectangles on black, B = other rectangles inverted; the true map is inversion.
    // 200 steps take the error on held-out A images from 0.42–0.53 (untrained) to 0.13–0.25
    // (seeds 1–6 and the default, measured with the AVX-512 GEMM kernels; 400 steps do not
    // narrow it), so the bounds leave ~15% above the worst seed and still fail a generator
    // that does not learn (its error stays near the untrained one).
    let _l = rng_lock();
    let mut cfg = tiny(16);
    cfg.model.g_filters = 16;
    cfg.model.d_filters = 16;
    cfg.model.g_blocks = 2;
    cfg.model.d_layers = 2;
    cfg.model.flip = false;
    cfg.train.steps = 200;
    cfg.train.batch_size = 4;
    cfg.train.checkpoint_every = 200;
    cfg.train.sample_every = 200;
    let dir = tempfile_dir();
    let run = RunDir::create(&dir, CycleGan::NAME).expect("run");
    let m = CycleGan::new(&cfg).expect("valid");
    let dev = Device::flex();
    let held_out = rectangles(32, 16, 99, false);
    let idx: Vec<usize> = (0..32).collect();
    let x = held_out.tensor(&idx, &dev);
    let error = |g: &Generators| {
        let (y, _) = m.translate(&g.valid(), Direction::AToB, x.clone());
        let truth = Mapping::Invert.apply(x.clone()).expect("pixelwise");
        translation_error(x.clone(), y, truth)
    };
    let (g0, _) = zoo_train::checkpoint::init_networks(&m, cfg.train.seed, &dev);
    let before = error(&g0);
    train_game::<CycleGan>(&cfg, domains(&cfg, 64), &run, false);
    let (g1, _) = load_trained::<CycleGan>(&cfg, &run);
    let after = error(&g1);
    assert!(
        after.l1 < 0.65 * before.l1 && after.l1 < 0.3 * after.identity_l1,
        "translation L1 {:.3} (untrained {:.3}, identity {:.3})",
        after.l1,
        before.l1,
        after.identity_l1
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn gray_to_rgb_domains_build_and_train() {
    // A gray, B RGB (the reference's input_nc = 1, output_nc = 3): G maps 1 -> 3 channels, F
    // 3 -> 1, each discriminator judges its own domain's channels, and a step trains.
    let _l = rng_lock();
    let mut cfg = tiny(8);
    cfg.data.channels_b = Some(3);
    cfg.train.steps = 2;
    // The identity loss feeds B to G: A -> B, which needs equal channels; refused by name.
    let err = CycleGan::new(&cfg).expect_err("identity loss").to_string();
    assert!(err.contains("lambda_identity = 0"), "{err}");
    cfg.model.lambda_identity = 0.0;
    let m = CycleGan::new(&cfg).expect("valid");
    let dev = Device::flex();
    let g = m.init_g(&dev);
    let gray = Tensor::<4>::zeros([2, 1, 8, 8], &dev);
    let rgb = Tensor::<4>::zeros([2, 3, 8, 8], &dev);
    assert_eq!(g.g.forward(gray.clone()).dims(), [2, 3, 8, 8]);
    assert_eq!(g.f.forward(rgb.clone()).dims(), [2, 1, 8, 8]);
    let d = m.init_d(&dev);
    assert_eq!(d.d_a.forward(rgb).dims()[1], 1);
    assert_eq!(d.d_b.forward(gray).dims()[1], 1);
    let colour = |n, seed| {
        let g = rectangles(n, 8, seed, true);
        let mut c = (*g).clone();
        c.pixels = g.pixels.chunks(64).flat_map(|p| p.repeat(3)).collect();
        c.channels = 3;
        Arc::new(c)
    };
    let data = Domains::from_sets(
        rectangles(8, 8, 1, false),
        colour(8, 2),
        None,
        None,
        m.sampling(&cfg),
    )
    .expect("domains");
    let dir = tempfile_dir();
    let run = RunDir::create(&dir, CycleGan::NAME).expect("run");
    let summary = train_game::<CycleGan>(&cfg, data, &run, false);
    assert!(
        summary.last.iter().all(|(_, v)| v.is_finite()),
        "{:?}",
        summary.last
    );
    // The grid shows every row in colour.
    let (g1, _) = load_trained::<CycleGan>(&cfg, &run);
    let probe = Pair {
        a: Tensor::zeros([2, 1, 8, 8], &dev),
        b: Tensor::zeros([2, 3, 8, 8], &dev),
    };
    let (grid, k) = m.grid(&g1.valid(), &probe);
    assert_eq!((grid.dims(), k), ([12, 3, 8, 8], 2));
    let _ = std::fs::remove_dir_all(dir);
}
