//! Helpers for model crates' tests: tiny data, one-call training, loading what a run saved.

use std::sync::Arc;

use burn::prelude::*;
use zoo_core::config::RunConfig;
use zoo_core::data::{Batches, ImageSet};
use zoo_core::game::Game;
use zoo_core::gan::GanModel;
pub use zoo_core::kernels::rng_lock;

use crate::checkpoint::{init_networks, load_generator};
use crate::engine::{self, Summary, TrainOptions};
use crate::run::RunDir;

/// `n` deterministic patterned images of `channels`×`size`×`size`.
pub fn toy_images(n: usize, channels: usize, size: usize) -> Arc<ImageSet> {
    Arc::new(ImageSet::synthetic(n, channels, size))
}

/// [`toy_images`] labelled `i mod classes`.
pub fn labelled_toy_images(
    n: usize,
    channels: usize,
    size: usize,
    classes: usize,
) -> Arc<ImageSet> {
    let mut set = ImageSet::synthetic(n, channels, size);
    set.labels = Some((0..n).map(|i| (i % classes) as u8).collect());
    Arc::new(set)
}

/// Writes a labelled image folder `root/<class>/*.png` of `per_class` gray `size`×`size`
/// images per class: class `k` of `K` is a bright horizontal band `k` of `K` (rows
/// `k·size/K ..`) on a dark ground, with seeded jitter. [`band_of`] reads the class back.
pub fn write_band_folder(root: &std::path::Path, classes: &[&str], per_class: usize, size: usize) {
    let k = classes.len();
    let mut state = 0x9e37_79b9_u32;
    let mut jitter = || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        (state % 40) as u8
    };
    for (c, name) in classes.iter().enumerate() {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).expect("class folder");
        for i in 0..per_class {
            let img = image::GrayImage::from_fn(size as u32, size as u32, |_, y| {
                let band = (y as usize * k) / size;
                image::Luma([if band == c { 215 + jitter() } else { jitter() }])
            });
            img.save(dir.join(format!("{i:03}.png"))).expect("png");
        }
    }
}

/// The band (class) of a gray image of [`write_band_folder`]'s kind: the brightest of `k`.
pub fn band_of(img: &image::GrayImage, k: usize) -> usize {
    let size = img.height() as usize;
    let mut sums = vec![0.0; k];
    for (_, y, p) in img.enumerate_pixels() {
        sums[(y as usize * k) / size] += p.0[0] as f64;
    }
    (0..k)
        .max_by(|&a, &b| sums[a].total_cmp(&sums[b]))
        .unwrap_or(0)
}

/// Seeded batches of `data` for a noise GAN's config.
pub fn batches<C>(cfg: &RunConfig<C>, data: Arc<ImageSet>) -> Batches {
    Batches::new(data, cfg.train.batch_size, cfg.train.seed).expect("enough images")
}

/// Trains the noise GAN `M` on `data` into `run` (from its latest checkpoint when
/// `resume`), on the CPU.
pub fn train<M: GanModel>(
    cfg: &RunConfig<M::Config>,
    data: Arc<ImageSet>,
    run: &RunDir,
    resume: bool,
) -> Summary {
    train_game::<M>(cfg, batches(cfg, data), run, resume)
}

/// Trains any [`Game`] into `run` (from its latest checkpoint when `resume`), on the CPU.
pub fn train_game<M: Game>(
    cfg: &RunConfig<M::Config>,
    data: M::Data,
    run: &RunDir,
    resume: bool,
) -> Summary {
    train_game_with::<M>(cfg, data, run, resume, TrainOptions::default())
}

/// [`train_game`] with the session's options (a time limit, a stop signal).
pub fn train_game_with<M: Game>(
    cfg: &RunConfig<M::Config>,
    data: M::Data,
    run: &RunDir,
    resume: bool,
    opts: TrainOptions,
) -> Summary {
    let mut model = M::new(cfg).expect("valid config");
    let ck = resume.then(|| {
        run.latest_checkpoint()
            .expect("readable")
            .expect("a checkpoint")
    });
    engine::train(
        &mut model,
        cfg,
        data,
        run,
        ck.as_ref(),
        &Device::flex(),
        opts,
        &engine::unobserved::<M>,
    )
    .expect("training runs")
}

/// The generator and discriminator of a run's latest checkpoint.
pub fn load_trained<M: Game>(cfg: &RunConfig<M::Config>, run: &RunDir) -> (M::G, M::D) {
    let model = M::new(cfg).expect("valid config");
    let ck = run
        .latest_checkpoint()
        .expect("readable")
        .expect("a checkpoint");
    let dev = Device::flex();
    let g = load_generator(&model, &ck, &dev).expect("generator loads");
    let d = model
        .init_d(&dev)
        .try_load_file(ck.file("discriminator.bpk"))
        .expect("discriminator loads");
    (g, d)
}

/// Runs one training step from the seed's initial networks and asserts that the logged
/// values are finite and that every parameter tensor of both players moved.
pub fn assert_one_step_moves_both<M: GanModel>(cfg: &RunConfig<M::Config>, data: Arc<ImageSet>) {
    assert_one_step_moves_all::<M>(cfg, batches(cfg, data));
}

/// [`assert_one_step_moves_both`] for any [`Game`] (every network of a bundle checked).
pub fn assert_one_step_moves_all<M: Game>(cfg: &RunConfig<M::Config>, data: M::Data) {
    let mut cfg = cfg.clone();
    cfg.train.steps = 1;
    cfg.train.log_every = 1;
    let out = tempfile_dir();
    let run = RunDir::create(&out, M::NAME).expect("run folder");
    let model = M::new(&cfg).expect("valid config");
    let (g0, d0) = init_networks(&model, cfg.train.seed, &Device::flex());
    let summary = train_game::<M>(&cfg, data, &run, false);
    for (name, v) in &summary.last {
        assert!(v.is_finite(), "{name} = {v}");
    }
    let (g1, d1) = load_trained::<M>(&cfg, &run);
    let moved = |a: Vec<Vec<f32>>, b: Vec<Vec<f32>>| {
        a.len() == b.len() && a.iter().zip(&b).all(|(x, y)| x != y)
    };
    use zoo_core::gan::param_values;
    // Every trained tensor (buffers such as running statistics move in the forward pass, and
    // frozen parameters not at all, so neither is checked).
    let ad = Device::flex().autodiff();
    let (ga, da) = init_networks(&model, cfg.train.seed, &ad);
    let trainable = |m: Vec<Vec<f32>>, flags: Vec<bool>, a: Vec<Vec<f32>>| {
        m.into_iter()
            .zip(flags)
            .zip(a)
            .filter(|((_, trained), _)| *trained)
            .map(|((x, _), y)| (x, y))
            .unzip::<_, _, Vec<_>, Vec<_>>()
    };
    let (g0, g1) = trainable(param_values(&g0), trained(&ga), param_values(&g1));
    let (d0, d1) = trainable(param_values(&d0), trained(&da), param_values(&d1));
    assert!(moved(g0, g1), "every G tensor moved");
    let still: Vec<usize> = (0..d0.len()).filter(|&i| d0[i] == d1[i]).collect();
    assert!(moved(d0, d1), "every D tensor moved (unmoved: {still:?})");
    let _ = std::fs::remove_dir_all(out);
}

/// For each float tensor of a module built on an autodiff device, in [`param_values`]'s order:
/// whether it is trained (requires a gradient). Buffers (batch norm's running statistics)
/// and frozen parameters (conditional batch norm's unit affine part) are not.
///
/// [`param_values`]: zoo_core::gan::param_values
pub fn trained<M: Module>(module: &M) -> Vec<bool> {
    struct Flags(Vec<bool>);
    impl burn::module::ModuleVisitor for Flags {
        fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
            self.0.push(param.val().is_require_grad());
        }
    }
    let mut f = Flags(Vec::new());
    module.visit(&mut f);
    f.0
}

/// A fresh folder under the system temp dir (removed by the caller).
pub fn tempfile_dir() -> std::path::PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let p = std::env::temp_dir().join(format!(
        "zoo-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&p).expect("temp folder");
    p
}

/// `n` seeded gray images of a bright rectangle on black; with `invert` the colours swap (the
/// same seed draws the same rectangles, so the two sets are exact inverses).
pub fn rectangles(n: usize, size: usize, seed: u64, invert: bool) -> ImageSet {
    let mut pixels = Vec::with_capacity(n * size * size);
    let mut s = seed;
    let mut next = |m: usize| {
        s = zoo_core::streams::mix(s, 1);
        (s % m as u64) as usize
    };
    for _ in 0..n {
        let (x0, y0) = (next(size / 2), next(size / 2));
        let (w, h) = (2 + next(size / 2), 2 + next(size / 2));
        for y in 0..size {
            for x in 0..size {
                let inside = (x0..x0 + w).contains(&x) && (y0..y0 + h).contains(&y);
                pixels.push(if inside != invert { 255 } else { 0 });
            }
        }
    }
    ImageSet {
        pixels,
        labels: None,
        len: n,
        channels: 1,
        size,
        floats: None,
    }
}

/// Training `cfg.train.steps` steps straight and in two sessions (half, then `--resume` from
/// the half-way checkpoint) gives the same networks bit for bit; `data` builds a fresh copy of
/// the training data for each session.
pub fn assert_resume_is_exact<M: Game>(cfg: &RunConfig<M::Config>, data: impl Fn() -> M::Data) {
    use zoo_core::gan::param_values;
    let dir = tempfile_dir();
    let mut cfg = cfg.clone();
    let steps = cfg.train.steps;
    cfg.train.checkpoint_every = steps / 2;
    let straight = RunDir::create(&dir.join("a"), M::NAME).expect("run");
    train_game::<M>(&cfg, data(), &straight, false);
    let split = RunDir::create(&dir.join("b"), M::NAME).expect("run");
    let mut half = cfg.clone();
    half.train.steps = steps / 2;
    train_game::<M>(&half, data(), &split, false);
    train_game::<M>(&cfg, data(), &split, true);
    let (ga, da) = load_trained::<M>(&cfg, &straight);
    let (gb, db) = load_trained::<M>(&cfg, &split);
    assert!(param_values(&ga) == param_values(&gb), "generators differ");
    assert!(
        param_values(&da) == param_values(&db),
        "discriminators differ"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// Save → load of both networks reproduces their outputs bit for bit.
pub fn assert_checkpoint_round_trip<M: GanModel>(cfg: &RunConfig<M::Config>) {
    let dev = Device::flex();
    let dir = tempfile_dir();
    let m = <M as GanModel>::new(cfg).expect("valid config");
    let (g, d) = init_networks(&m, 3, &dev);
    g.clone().save_file(dir.join("g.bpk")).expect("save");
    d.clone().save_file(dir.join("d.bpk")).expect("save");
    let g2 = <M as GanModel>::init_g(&m, &dev)
        .try_load_file(dir.join("g.bpk"))
        .expect("load");
    let d2 = <M as GanModel>::init_d(&m, &dev)
        .try_load_file(dir.join("d.bpk"))
        .expect("load");
    let z = m.noise(5, &dev);
    let x = m.generate(&g.valid(), z.clone());
    let x2 = m.generate(&g2.valid(), z);
    x.clone().into_data().assert_eq(&x2.into_data(), true);
    // The discriminators agree too (through the model's own G loss on the same fakes).
    let mut m = m;
    let a = <M as GanModel>::g_loss(&mut m, &d.valid(), x.clone()).total;
    let b = <M as GanModel>::g_loss(&mut m, &d2.valid(), x).total;
    a.into_data().assert_eq(&b.into_data(), true);
    let _ = std::fs::remove_dir_all(dir);
}

/// Save → load of both networks of any [`Game`] reproduces them bit for bit: the same grid
/// from the same probe, the same D loss on the same batch and fakes.
pub fn assert_game_round_trip<M: Game>(cfg: &RunConfig<M::Config>, mut data: M::Data) {
    let dev = Device::flex();
    let dir = tempfile_dir();
    let mut m = M::new(cfg).expect("valid config");
    let (g, d) = init_networks(&m, 3, &dev);
    g.clone().save_file(dir.join("g.bpk")).expect("save");
    d.clone().save_file(dir.join("d.bpk")).expect("save");
    let g2 = m
        .init_g(&dev)
        .try_load_file(dir.join("g.bpk"))
        .expect("load");
    let d2 = m
        .init_d(&dev)
        .try_load_file(dir.join("d.bpk"))
        .expect("load");
    let probe = m.probe(&data, 1, 6, &dev);
    let (a, _) = m.grid(&g.valid(), &probe);
    let (b, _) = m.grid(&g2.valid(), &probe);
    a.into_data().assert_eq(&b.into_data(), true);
    let batch = m.batch(&mut data, 0, &dev);
    let fakes = m.fakes(&g.valid(), &batch);
    let a = m.d_loss(&d.valid(), &batch, &fakes).total;
    let b = m.d_loss(&d2.valid(), &batch, &fakes).total;
    a.into_data().assert_eq(&b.into_data(), true);
    let _ = std::fs::remove_dir_all(dir);
}

/// Trains the conditional model `M` through `zoo train`'s own path on a [`write_band_folder`]
/// of three 8×8 classes (`top`, `middle`, `bottom`) for `steps` steps with the extra `--set`s,
/// deletes the data, samples each class by name through `zoo sample --class`, and asserts
/// that at least 90% of each class's samples show that class's band (chance is a third) and
/// that the run recorded its class names.
pub fn assert_class_sampling<M: Game>(sets: &[&str], steps: u64) {
    let root = tempfile_dir();
    let data = root.join("bands");
    let names = ["top", "middle", "bottom"];
    write_band_folder(&data, &names, 24, 8);
    let mut all = vec![
        "data.dataset=\"folder\"".to_string(),
        "data.image_size=8".to_string(),
        "train.sample_every=100000".to_string(),
    ];
    all.extend(sets.iter().map(|s| s.to_string()));
    let req = crate::tasks::TrainRequest {
        config_file: None,
        sets: all,
        data_dir: Some(data.clone()),
        domains: Vec::new(),
        steps: Some(steps),
        epochs: None,
        batch_size: Some(12),
        seed: Some(5),
        out: root.join("runs"),
        resume: None,
        device: Device::flex(),
        progress: false,
        stop: None,
        time_limit: None,
        on_run: None,
    };
    let report = crate::tasks::train::<M>(&req, &engine::unobserved::<M>).expect("trains");
    std::fs::remove_dir_all(&data).expect("data removed");
    let config = std::fs::read_to_string(report.run_dir.join("config.toml")).expect("config");
    let mut agreement = Vec::new();
    for (k, name) in names.iter().enumerate() {
        let out = root.join(format!("samples-{name}"));
        let files = crate::tasks::sample::<M>(&crate::tasks::SampleRequest {
            run_dir: report.run_dir.clone(),
            n: 30,
            seed: None,
            out: None,
            out_dir: Some(out),
            class: Some(name.to_string()),
            save_noise: None,
            device: Device::flex(),
        })
        .expect("samples");
        let hits = files
            .iter()
            .filter(|f| band_of(&image::open(f).expect("png").to_luma8(), 3) == k)
            .count();
        agreement.push(hits as f64 / files.len() as f64);
    }
    let _ = std::fs::remove_dir_all(root);
    assert!(
        agreement.iter().all(|a| *a >= 0.9),
        "per-class agreement {agreement:?}"
    );
    // Sampling above ran without the data: the names came from the run.
    assert!(
        config.contains("classes = [\"bottom\", \"middle\", \"top\"]"),
        "{config}"
    );
}
