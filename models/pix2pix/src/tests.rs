use burn::module::Param;
use burn::prelude::*;
use burn::tensor::Distribution;
use zoo_core::config::RunConfig;
use zoo_core::data::ImageSet;
use zoo_core::gan::trainable_params;
use zoo_train::run::RunDir;
use zoo_train::testing::{
    assert_game_round_trip, assert_resume_is_exact, load_trained, rng_lock, tempfile_dir,
    train_game,
};

use super::*;

/// A tiny config: `size`×`size` gray images, 8 filters, a 1-layer PatchGAN, batch 4.
fn tiny(size: usize) -> RunConfig<Pix2PixConfig> {
    let mut cfg = Pix2Pix::defaults();
    cfg.data.image_size = size;
    cfg.data.channels = 1;
    cfg.model.g_filters = 8;
    cfg.model.d_filters = 8;
    cfg.model.d_layers = 1;
    cfg.model.load_size = size;
    cfg.train.batch_size = 4;
    cfg.train.epochs = None;
    cfg.train.steps = 2;
    cfg.train.lr_schedule = zoo_core::config::LrSchedule::Constant;
    cfg.train.grid_samples = 2;
    cfg
}

/// `n` seeded pairs: A = a bright rectangle on black, B = the same rectangle dark on white
/// (the truth is inversion, pixel for pixel).
fn rectangles(n: usize, size: usize, seed: u64) -> (ImageSet, ImageSet) {
    let draw = |invert| zoo_train::testing::rectangles(n, size, seed, invert);
    (draw(false), draw(true))
}

fn data(cfg: &RunConfig<Pix2PixConfig>, n: usize) -> PairedData {
    let s = cfg.data.image_size;
    PairedData::new(
        rectangles(n, s, 1),
        Some(rectangles(8, s, 2)),
        (s, cfg.model.flip),
        cfg.train.batch_size,
        cfg.train.seed,
    )
    .expect("valid data")
}

#[test]
fn parameter_counts_match_the_reference() {
    let _l = rng_lock();
    // unet_256 with batch norm, 3 -> 3 channels, and the 70x70 PatchGAN over 6 channels: the
    // reference prints 54.414 M and 2.769 M parameters.
    let cfg = Pix2Pix::defaults();
    let m = Pix2Pix::new(&cfg).expect("valid");
    assert_eq!(m.depth(), 8);
    let dev = Device::flex().autodiff();
    let (g, d) = (m.init_g(&dev), m.init_d(&dev));
    let (gp, dp) = (trainable_params(&g), trainable_params(&d));
    assert!((gp as f64 / 1e6 - 54.414).abs() < 0.0005, "G has {gp}");
    assert!((dp as f64 / 1e6 - 2.769).abs() < 0.0005, "D has {dp}");
}

#[test]
fn unet_shapes_at_each_depth_and_channels() {
    let dev = Device::flex();
    for (size, depth, (ci, co)) in [
        (8, 3, (1, 1)),
        (32, 5, (1, 3)),
        (64, 6, (3, 3)),
        (64, 4, (3, 1)),
    ] {
        let mut cfg = tiny(size);
        cfg.data.channels = ci;
        cfg.data.channels_b = Some(co);
        cfg.model.g_depth = Some(depth);
        let m = Pix2Pix::new(&cfg).expect("valid");
        let g = m.init_g(&dev);
        assert_eq!(g.depth(), depth);
        let y = g.forward(Tensor::zeros([2, ci, size, size], &dev));
        assert_eq!(y.dims(), [2, co, size, size], "{size} px, depth {depth}");
        let d = m.init_d(&dev);
        let logits = d.forward(Tensor::zeros([2, ci, size, size], &dev), y);
        assert_eq!(logits.dims()[..2], [2, 1]);
    }
    // By default as deep as the side halves (24 = 3 x 2^3: a 3x3 bottleneck); a deeper U-Net
    // or one below 2 levels is refused by name.
    let mut cfg = tiny(24);
    assert_eq!(Pix2Pix::new(&cfg).expect("valid").depth(), 3);
    cfg.model.g_depth = Some(4);
    let err = Pix2Pix::new(&cfg)
        .expect_err("24 halves only 3 times")
        .to_string();
    assert!(err.contains("2^levels"), "{err}");
    cfg.model.g_depth = Some(1);
    assert!(Pix2Pix::new(&cfg).is_err());
}

#[test]
fn dropout_sits_in_the_levels_outside_the_bottleneck() {
    let shape = |depth| UnetShape {
        channels: (3, 3),
        filters: 64,
        depth,
        dropout_levels: 3,
        norm: NormKind::Batch,
        init_std: 0.02,
    };
    // The reference's unet_256: the three 8·ngf decoder blocks around the innermost.
    let at = |d| {
        (0..d)
            .filter(|&i| shape(d).has_dropout(i))
            .collect::<Vec<_>>()
    };
    assert_eq!(at(8), vec![4, 5, 6]);
    assert_eq!(at(5), vec![1, 2, 3]);
    assert_eq!(at(3), vec![1]);
    assert_eq!(shape(8).inner(0), 64);
    assert_eq!(shape(8).inner(7), 512);
}

#[test]
fn skip_connections_carry_the_input_past_the_bottleneck() {
    // With the innermost decoder's weights zeroed, nothing passes through the bottleneck: the
    // output can only depend on the input through the skips.
    let _l = rng_lock();
    let dev = Device::flex();
    let m = Pix2Pix::new(&tiny(16)).expect("valid");
    let mut g = m.init_g(&dev);
    let last = g.ups.len() - 1;
    let w = g.ups[last].weight.val();
    g.ups[last].weight = Param::from_tensor(w.zeros_like());
    let g = g.valid();
    dev.seed(3);
    let x = Tensor::<4>::random([1, 1, 16, 16], Distribution::Uniform(-1.0, 1.0), &dev);
    let y1 = g.forward(x.clone());
    let y2 = g.forward(x.clone().neg());
    let diff = (y1.clone() - y2).abs().mean().into_scalar::<f32>();
    assert!(diff > 1e-3, "the output ignores the input: {diff}");
    // And the same input gives the same output (inference mode: no dropout).
    let again = (y1 - g.forward(x)).abs().max().into_scalar::<f32>();
    assert_eq!(again, 0.0);
}

#[test]
fn checkpoints_round_trip() {
    let _l = rng_lock();
    let cfg = tiny(16);
    assert_game_round_trip::<Pix2Pix>(&cfg, data(&cfg, 8));
}

#[test]
fn batches_keep_pairs_aligned_through_crops_and_flips() {
    // A and B are exact inverses; a random crop or flip applied to one side only would break
    // that in the batch.
    let mut cfg = tiny(16);
    cfg.model.load_size = 20;
    cfg.model.flip = true;
    let (a, b) = rectangles(8, 20, 4);
    let mut d = PairedData::new((a, b), None, (16, true), 4, 9).expect("data");
    let dev = Device::flex();
    for i in 0..4 {
        let p = d.batch(i, &dev);
        assert_eq!(p.input.dims(), [4, 1, 16, 16]);
        let err = (p.input + p.target).abs().max().into_scalar::<f32>();
        assert!(err < 1e-6, "batch {i}: pairs misaligned by {err}");
    }
}

#[test]
fn resume_continues_exactly() {
    let _l = rng_lock();
    let mut cfg = tiny(8);
    cfg.train.steps = 6;
    assert_resume_is_exact::<Pix2Pix>(&cfg, || data(&cfg, 8));
}

#[test]
fn short_training_learns_the_paired_mapping() {
    // Inputs: rectangles; targets: the same rectangles inverted. 150 steps at 16 px take the
    // held-out L1 to the truth well below doing nothing (the input itself): 0.16 against 1.0
    // (untrained 0.50), SSIM 0.12 -> 0.49.
    let _l = rng_lock();
    let mut cfg = tiny(16);
    cfg.model.g_filters = 16;
    cfg.model.flip = false;
    cfg.train.steps = 150;
    cfg.train.checkpoint_every = 150;
    cfg.train.sample_every = 150;
    let dir = tempfile_dir();
    let run = RunDir::create(&dir, Pix2Pix::NAME).expect("run");
    let m = Pix2Pix::new(&cfg).expect("valid");
    let dev = Device::flex();
    let (x, truth) = rectangles(32, 16, 99);
    let idx: Vec<usize> = (0..32).collect();
    let (x, truth) = (x.tensor(&idx, &dev), truth.tensor(&idx, &dev));
    let error = |g: &UnetGenerator| {
        let (y, rec) = m.translate(&g.valid(), Direction::AToB, x.clone());
        assert!(rec.is_none(), "pix2pix has no way back");
        zoo_core::data::similarity::translation_error(x.clone(), y, truth.clone())
    };
    let (g0, _) = zoo_train::checkpoint::init_networks(&m, cfg.train.seed, &dev);
    let before = error(&g0);
    train_game::<Pix2Pix>(&cfg, data(&cfg, 64), &run, false);
    let (g1, _) = load_trained::<Pix2Pix>(&cfg, &run);
    let after = error(&g1);
    assert!(
        after.l1 < 0.5 * before.l1
            && after.l1 < 0.25 * after.identity_l1
            && after.ssim > before.ssim + 0.2,
        "after {after:?}, untrained {before:?}"
    );
    let _ = std::fs::remove_dir_all(dir);
}
