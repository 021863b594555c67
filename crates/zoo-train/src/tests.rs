//! The model contract end to end, on tiny models: the D-regulariser hook, the EMA generator
//! (checkpointed, resumed exactly, used for sampling), and labels reaching a conditional
//! model's G and D.

use std::sync::Arc;

use anyhow::Result;
use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use zoo_core::config::RunConfig;
use zoo_core::data::{Batches, ImageSet};
use zoo_core::game::{ClassSampler, Game, Role};
use zoo_core::gan::{Conditional, ConditionalGan, GanModel, Losses, param_values};
use zoo_core::loss::Adversarial;
use zoo_core::reg::drift;

use crate::checkpoint::{EMA_FILE, load_generator};
use crate::engine::{Players, TrainOptions};
use crate::run::RunDir;
use crate::testing::{batches, rng_lock, tempfile_dir, train, train_game_with};

#[derive(Module, Debug)]
struct Net {
    l: Linear,
}

/// z ∈ R⁴ (plus a one-hot class) → a 1×2×2 image; D: 4 pixels → 1 logit.
struct Tiny {
    reg: bool,
}

#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
struct NoKnobs {}

fn image(g: &Net, x: Tensor<2>) -> Tensor<4> {
    let n = x.dims()[0];
    g.l.forward(x).tanh().reshape([n, 1, 2, 2])
}

fn logits(d: &Net, x: Tensor<4>) -> Tensor<2> {
    let n = x.dims()[0];
    d.l.forward(x.reshape([n, 4]))
}

impl GanModel for Tiny {
    type Config = NoKnobs;
    type G = Net;
    type D = Net;
    const NAME: &'static str = "tiny";
    const ABOUT: &'static str = "a test model";
    fn new(_cfg: &RunConfig<NoKnobs>) -> Result<Self> {
        Ok(Tiny { reg: false })
    }
    fn init_g(&self, device: &Device) -> Net {
        Net {
            l: LinearConfig::new(4, 4).init(device),
        }
    }
    fn init_d(&self, device: &Device) -> Net {
        Net {
            l: LinearConfig::new(4, 1).init(device),
        }
    }
    fn noise(&self, n: usize, device: &Device) -> Tensor<2> {
        Tensor::random([n, 4], burn::tensor::Distribution::Normal(0.0, 1.0), device)
    }
    fn generate(&self, g: &Net, z: Tensor<2>) -> Tensor<4> {
        image(g, z)
    }
    fn d_loss(&mut self, d: &Net, real: Tensor<4>, fake: Tensor<4>) -> Losses {
        Adversarial::NonSaturating.d_losses(logits(d, real), logits(d, fake))
    }
    fn g_loss(&mut self, d: &Net, fake: Tensor<4>) -> Losses {
        Adversarial::NonSaturating.g_losses(logits(d, fake))
    }
    fn d_regularizers(
        &mut self,
        d: &Net,
        real: &Tensor<4>,
        _fake: &Tensor<4>,
    ) -> Vec<(&'static str, Tensor<1>)> {
        if self.reg {
            vec![("drift", drift(logits(d, real.clone()), 0.5))]
        } else {
            Vec::new()
        }
    }
}

fn cfg(steps: u64) -> RunConfig<NoKnobs> {
    let mut c = RunConfig::<NoKnobs>::default();
    c.data.image_size = 2;
    c.train.steps = steps;
    c.train.batch_size = 8;
    c.train.log_every = 1;
    c.train.grid_samples = 4;
    c
}

fn data() -> Arc<ImageSet> {
    Arc::new(ImageSet::synthetic(64, 1, 2))
}

#[test]
fn d_regularizers_join_the_loss_and_are_logged() {
    let _l = rng_lock();
    let c = cfg(1);
    let ad = Device::flex().autodiff();
    let step = |reg: bool| {
        let mut m = Tiny { reg };
        let mut batches = Batches::new(data(), 8, c.train.seed).expect("batches");
        let p = Players::<Tiny>::init(&m, &c, &ad);
        let (_, out) = p.step(&mut m, &c, &mut batches, 0, 1, &ad, None);
        let (d, _) = out.expect("finite");
        let parts: Vec<(&str, f32)> = d
            .parts
            .iter()
            .map(|(n, v)| (*n, v.clone().into_scalar::<f32>()))
            .collect();
        (d.total.into_scalar::<f32>(), parts)
    };
    let (plain, plain_parts) = step(false);
    let (reg, parts) = step(true);
    assert!(!plain_parts.iter().any(|(n, _)| *n == "drift"));
    let drift = parts.iter().find(|(n, _)| *n == "drift").expect("logged").1;
    assert!(drift > 0.0);
    // Same seed, same networks and batch: the regularised loss is the plain one plus the term.
    assert!(
        (reg - plain - drift).abs() < 1e-5,
        "{reg} vs {plain} + {drift}"
    );
}

/// Both players' weights and optimiser states are the same bytes in `a` and `b`.
fn assert_same_training(a: &crate::run::Checkpoint, b: &crate::run::Checkpoint, why: &str) {
    for f in [
        "generator.bpk",
        "discriminator.bpk",
        "optim_g.bpk",
        "optim_d.bpk",
    ] {
        let read = |ck: &crate::run::Checkpoint| std::fs::read(ck.file(f)).expect("file");
        assert_eq!(read(a), read(b), "{f}: {why}");
    }
}

#[test]
fn ema_is_checkpointed_resumed_exactly_and_sampled_from() {
    let _l = rng_lock();
    let mut c = cfg(6);
    c.train.ema.decay = 0.8;
    c.train.checkpoint_every = 3;
    c.train.keep_checkpoints = 5;
    let out = tempfile_dir();
    let whole = RunDir::create(&out.join("a"), "tiny").expect("run");
    train::<Tiny>(&c, data(), &whole, false);
    let parted = RunDir::create(&out.join("b"), "tiny").expect("run");
    let mut first = c.clone();
    first.train.steps = 3;
    train::<Tiny>(&first, data(), &parted, false);
    train::<Tiny>(&c, data(), &parted, true);
    let ck = |r: &RunDir| r.latest_checkpoint().expect("readable").expect("one");
    let (a, b) = (ck(&whole), ck(&parted));
    for f in [EMA_FILE, "generator.bpk", "optim_g.bpk"] {
        let read = |ck: &crate::run::Checkpoint| std::fs::read(ck.file(f)).expect("file");
        assert_eq!(read(&a), read(&b), "{f} differs after a resume");
    }
    // The average is not the generator, and sampling loads the average.
    let m = Tiny { reg: false };
    let dev = Device::flex();
    let ema = load_generator(&m, &a, &dev).expect("loads");
    let g = crate::params::load_module(GanModel::init_g(&m, &dev), &a.file("generator.bpk"))
        .expect("g");
    assert_ne!(param_values(&ema), param_values(&g));
    let saved =
        crate::params::load_module(GanModel::init_g(&m, &dev), &a.file(EMA_FILE)).expect("ema");
    assert_eq!(param_values(&ema), param_values(&saved));
    // Off by default: no EMA file; and the average does not touch training.
    let plain = RunDir::create(&out.join("c"), "tiny").expect("run");
    let mut off = c.clone();
    off.train.ema = Default::default();
    train::<Tiny>(&off, data(), &plain, false);
    assert!(!ck(&plain).file(EMA_FILE).exists());
    assert_same_training(&ck(&plain), &a, "the EMA changed training");
    let _ = std::fs::remove_dir_all(out);
}

#[test]
fn a_time_limit_ends_the_session_with_a_checkpoint_and_resume_finishes_the_same_run() {
    let _l = rng_lock();
    let mut c = cfg(6);
    c.train.checkpoint_every = 100;
    c.train.sample_every = 100;
    c.train.log_every = 100;
    let out = tempfile_dir();
    let whole = RunDir::create(&out.join("a"), "tiny").expect("run");
    let full = train::<Tiny>(&c, data(), &whole, false);
    assert!(!full.time_limited);
    assert_eq!(full.step, 6);
    // A zero limit: the first step is the last of the session, and it is checkpointed,
    // logged and sampled like a final step although no interval falls on it.
    let parted = RunDir::create(&out.join("b"), "tiny").expect("run");
    let opts = TrainOptions {
        time_limit: Some(std::time::Duration::ZERO),
        ..Default::default()
    };
    let cut = train_game_with::<Tiny>(&c, batches(&c, data()), &parted, false, opts);
    assert!(cut.time_limited);
    assert_eq!((cut.step, cut.total_steps), (1, 6));
    let ck = |r: &RunDir| r.latest_checkpoint().expect("readable").expect("one");
    assert_eq!(ck(&parted).state().expect("state").step, 1);
    assert!(parted.samples_dir().join("step_000001.png").exists());
    let logged = std::fs::read_to_string(parted.metrics_path()).expect("log");
    assert_eq!(logged.lines().count(), 2, "the header and step 1: {logged}");
    // Resumed without a limit, it ends where the uninterrupted run did, byte for byte.
    let rest = train::<Tiny>(&c, data(), &parted, true);
    assert!(!rest.time_limited);
    assert_eq!(rest.step, 6);
    assert_same_training(&ck(&whole), &ck(&parted), "differs after the cut");
    let _ = std::fs::remove_dir_all(out);
}

#[test]
fn time_limits_take_seconds_minutes_and_hours() {
    use crate::tasks::parse_time_limit as parse;
    for (text, ms) in [
        ("90", 90_000),
        ("90s", 90_000),
        ("10m", 600_000),
        ("1.5h", 5_400_000),
        ("0.25s", 250),
    ] {
        assert_eq!(
            parse(text),
            Ok(std::time::Duration::from_millis(ms)),
            "{text}"
        );
    }
    for bad in ["", "m", "0", "-5m", "ten", "5d", "nanm", "inf", "1e12h"] {
        assert!(parse(bad).is_err(), "{bad:?} parsed");
    }
}

/// A conditional tiny model that records the labels its D and G losses receive.
struct TinyCond {
    seen_d: Vec<Vec<i64>>,
    seen_g: Vec<Vec<i64>>,
}

const K: usize = 3;

fn ints(t: Tensor<1, Int>) -> Vec<i64> {
    t.into_data()
        .convert::<i64>()
        .try_to_vec::<i64>()
        .expect("i64")
}

impl ConditionalGan for TinyCond {
    type Config = NoKnobs;
    type G = Net;
    type D = Net;
    const NAME: &'static str = "tinycond";
    const ABOUT: &'static str = "a conditional test model";
    fn new(_cfg: &RunConfig<NoKnobs>) -> Result<Self> {
        Ok(TinyCond {
            seen_d: Vec::new(),
            seen_g: Vec::new(),
        })
    }
    fn class_names(&self) -> Vec<String> {
        (0..K).map(|k| format!("c{k}")).collect()
    }
    fn init_g(&self, device: &Device) -> Net {
        Net {
            l: LinearConfig::new(4 + K, 4).init(device),
        }
    }
    fn init_d(&self, device: &Device) -> Net {
        Net {
            l: LinearConfig::new(4, 1).init(device),
        }
    }
    fn noise(&self, n: usize, device: &Device) -> Tensor<2> {
        Tensor::random([n, 4], burn::tensor::Distribution::Normal(0.0, 1.0), device)
    }
    fn generate(&self, g: &Net, z: Tensor<2>, labels: Tensor<1, Int>) -> Tensor<4> {
        let onehot: Tensor<2> = labels.one_hot::<2>(K).float();
        image(g, Tensor::cat(vec![z, onehot], 1))
    }
    fn d_loss(&mut self, d: &Net, real: Tensor<4>, fake: Tensor<4>, y: Tensor<1, Int>) -> Losses {
        self.seen_d.push(ints(y));
        Adversarial::Hinge.d_losses(logits(d, real), logits(d, fake))
    }
    fn g_loss(&mut self, d: &Net, fake: Tensor<4>, y: Tensor<1, Int>) -> Losses {
        self.seen_g.push(ints(y));
        Adversarial::Hinge.g_losses(logits(d, fake))
    }
}

#[test]
fn labels_reach_a_conditional_model_and_sampling_takes_classes() {
    let _l = rng_lock();
    let c = cfg(2);
    let mut set = ImageSet::synthetic(30, 1, 2);
    set.labels = Some((0..30).map(|i| (i % K) as u8).collect());
    let set = Arc::new(set);
    let ad = Device::flex().autodiff();
    let mut m = Conditional::<TinyCond>::new(&c).expect("model");
    let mut data = Batches::new(set.clone(), 8, c.train.seed).expect("batches");
    let mut p = Players::init(&m, &c, &ad);
    for step in 0..2 {
        let (next, out) = p.step(&mut m, &c, &mut data, step, 2, &ad, None);
        out.expect("finite");
        p = next;
    }
    // D saw the labels of the very images of each batch, and G's fakes were of those classes.
    let mut order = Batches::new(set.clone(), 8, c.train.seed).expect("batches");
    for i in 0..2 {
        let want: Vec<i64> = order.indices(i).iter().map(|&j| (j % K) as i64).collect();
        assert_eq!(m.0.seen_d[i as usize], want, "batch {i}");
        assert_eq!(m.0.seen_g[i as usize], want, "batch {i}");
    }
    // The role says it; grids are class rows; requested classes change the images.
    type R = <Conditional<TinyCond> as Game>::Role;
    let sampler: &dyn ClassSampler<Conditional<TinyCond>> = R::class_sampler(&m).expect("cond");
    assert_eq!(sampler.classes(), ["c0", "c1", "c2"]);
    let dev = Device::flex();
    let (_, labels) = m.probe(&data, 1, 9, &dev);
    assert_eq!(ints(labels), [0, 0, 0, 1, 1, 1, 2, 2, 2]);
    let g = p.g.valid();
    let z = m.0.noise(2, &dev);
    let y = |k: i64| Tensor::<1, Int>::from_data(TensorData::new(vec![k, k], [2]), &dev);
    let a = sampler.images_of(&g, z.clone(), y(0));
    let b = sampler.images_of(&g, z, y(2));
    let diff = (a - b).abs().max().into_scalar::<f32>();
    assert!(
        diff > 1e-4,
        "class 0 and class 2 images are the same ({diff})"
    );
    // Unconditional models have no class sampler.
    assert!(<<Tiny as Game>::Role as Role<Tiny>>::class_sampler(&Tiny { reg: false }).is_none());
}

#[test]
fn initial_weights_do_not_depend_on_later_random_draws() {
    // burn initialises parameters lazily, at their first use; zoo's are drawn when the networks
    // are built, so nothing drawn afterwards (a log line that is or is not printed, a grid's
    // noise, an EMA copy) changes them. This once made `--quiet` change the trained weights.
    let _l = rng_lock();
    let ad = Device::flex().autodiff();
    let m = Tiny { reg: false };
    let (g0, d0) = crate::params::init_networks(&m, 7, &ad);
    let (g0, d0) = (param_values(&g0), param_values(&d0));
    let (g1, d1) = crate::params::init_networks(&m, 7, &ad);
    let _ = Tensor::<2>::random([64, 64], burn::tensor::Distribution::Default, &ad);
    assert_eq!(param_values(&g1), g0);
    assert_eq!(param_values(&d1), d0);
}

#[test]
fn class_picks_by_name_then_index_or_all() {
    use crate::tasks::class_pick;
    let fashion: Vec<String> = zoo_core::data::classes::FASHION_CLASSES
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(
        class_pick(&fashion, "sneaker", 3).expect("name"),
        (vec![7; 3], 2)
    );
    assert_eq!(
        class_pick(&fashion, "7", 4).expect("index"),
        (vec![7; 4], 2)
    );
    let (labels, per_row) = class_pick(&fashion, "all", 64).expect("all");
    assert_eq!((labels.len(), per_row), (60, 6));
    assert_eq!(&labels[..7], [0, 0, 0, 0, 0, 0, 1]);
    assert_eq!(labels[59], 9);
    // Fewer images than classes: one image of each of the first n classes.
    assert_eq!(
        class_pick(&fashion, "all", 3).expect("all"),
        (vec![0, 1, 2], 1)
    );
    // A name wins over an index: folder classes sort as strings.
    let odd = vec!["10".to_string(), "2".to_string()];
    assert_eq!(class_pick(&odd, "2", 1).expect("name").0, [1]);
    assert_eq!(class_pick(&odd, "1", 1).expect("index").0, [1]);
    let e = class_pick(&fashion, "10", 1)
        .expect_err("range")
        .to_string();
    assert!(
        e.contains("out of range") && e.contains("0 = t-shirt"),
        "{e}"
    );
    let e = class_pick(&fashion, "cat", 1)
        .expect_err("name")
        .to_string();
    assert!(e.contains("`cat` is not a class"), "{e}");
}
