//! `zoo eval` of a CycleGAN run: cycle consistency on held-out images, and, for a domain pair
//! with a known true mapping (`zoo data pair`), the error against it and whether zoo's MNIST
//! classifier gives a digit and its translation the same label.

use anyhow::{Context, Result};
use burn::prelude::*;
use zoo_core::classifier;
use zoo_core::config::{DatasetKind, RunConfig};
use zoo_core::data::pair::{Mapping, TranslationError, read_pair_info, translation_error};
use zoo_core::data::{ImageSet, load_folder};
use zoo_core::eval::TranslationEval;
use zoo_core::game::Game;

use crate::{CycleGan, CycleGanConfig, DomainDirs, Generators};

/// Images per forward pass.
const CHUNK: usize = 64;

/// Running sums of one direction.
#[derive(Default)]
struct Sums {
    n: f64,
    cycle: f64,
    l1: f64,
    mse: f64,
    identity: f64,
    agree: f64,
}

impl Sums {
    fn error(&self) -> TranslationError {
        TranslationError {
            l1: self.l1 / self.n,
            psnr: -10.0 * (self.mse / self.n).max(1e-12).log10(),
            identity_l1: self.identity / self.n,
        }
    }
}

fn scalar(t: Tensor<1>) -> f64 {
    t.into_scalar::<f32>().to_f64()
}

fn labels(net: &classifier::Classifier, x: Tensor<4>) -> Vec<i64> {
    net.forward(x)
        .argmax(1)
        .into_data()
        .convert::<i64>()
        .try_to_vec::<i64>()
        .expect("converted to i64")
}

/// One direction: `there` translates `set`, `back` reconstructs.
fn direction(
    set: &ImageSet,
    there: &crate::ResnetGenerator,
    back: &crate::ResnetGenerator,
    mapping: Option<Mapping>,
    net: Option<&classifier::Classifier>,
    // A digit of the source domain in the classifier's style: `true` when the source domain
    // is the mapped (inverted) one.
    source_is_mapped: bool,
    device: &Device,
) -> Sums {
    let mut s = Sums::default();
    let idx: Vec<usize> = (0..set.len).collect();
    for chunk in idx.chunks(CHUNK) {
        let x = set.tensor(chunk, device);
        let y = there.forward(x.clone());
        let rec = back.forward(y.clone());
        let k = chunk.len() as f64;
        s.n += k;
        s.cycle += scalar((rec - x.clone()).abs().mean()) / 2.0 * k;
        if let Some(m) = mapping {
            let e = translation_error(m, x.clone(), y.clone());
            s.l1 += e.l1 * k;
            s.mse += 10f64.powf(-e.psnr / 10.0) * k;
            s.identity += e.identity_l1 * k;
            if let Some(net) = net {
                // Show the classifier digits in its own (A) style.
                let (src, out) = if source_is_mapped {
                    (m.apply(x), y)
                } else {
                    (x, m.apply(y))
                };
                let a = labels(net, src);
                let b = labels(net, out);
                s.agree += a.iter().zip(&b).filter(|(p, q)| p == q).count() as f64;
            }
        }
    }
    s
}

/// Evaluates `g` on up to `n` held-out images per domain.
pub fn evaluate(
    g: &Generators,
    cfg: &RunConfig<CycleGanConfig>,
    n: usize,
    device: &Device,
) -> Result<TranslationEval> {
    let dirs = DomainDirs::resolve(&cfg.data.domains)?;
    let size = cfg.data.image_size;
    let load = |test: &Option<std::path::PathBuf>, train: &std::path::Path| -> Result<ImageSet> {
        let dir = test.as_deref().unwrap_or(train);
        let mut set = load_folder(dir, cfg.data.channels, size)
            .with_context(|| format!("evaluation images in {}", dir.display()))?;
        set.truncate(n);
        Ok(set)
    };
    let a = load(&dirs.test_a, &dirs.train_a)?;
    let b = load(&dirs.test_b, &dirs.train_b)?;
    let root = dirs.train_a.parent().map(std::path::Path::to_path_buf);
    let pair = match &root {
        Some(r) => read_pair_info(r)?,
        None => None,
    };
    let mapping = pair.as_ref().map(|p| p.mapping);
    let digits = mapping.is_some() && size == 28 && cfg.data.channels == 1;
    let net = if digits {
        Some(classifier::load_or_train(DatasetKind::Mnist, None, device)?.0)
    } else {
        None
    };
    let fwd = direction(&a, &g.g, &g.f, mapping, net.as_ref(), false, device);
    let bwd = direction(&b, &g.f, &g.g, mapping, net.as_ref(), true, device);
    Ok(TranslationEval {
        model: <CycleGan as Game>::NAME.to_string(),
        run: std::path::PathBuf::new(),
        step: 0,
        images: (a.len, b.len),
        cycle_l1_a: fwd.cycle / fwd.n,
        cycle_l1_b: bwd.cycle / bwd.n,
        mapping: mapping.map(|m| format!("{m:?}").to_lowercase()),
        a2b: mapping.map(|_| fwd.error()),
        b2a: mapping.map(|_| bwd.error()),
        label_agreement_a2b: net.as_ref().map(|_| fwd.agree / fwd.n),
        label_agreement_b2a: net.as_ref().map(|_| bwd.agree / bwd.n),
    })
}
