//! `zoo eval` of an image-to-image run, for any model with the [`Translate`] capability: cycle
//! consistency on held-out images (models with both directions), and, where the truth is
//! known (paired test folders, or a `zoo data pair` pair), L1, PSNR and SSIM against it beside
//! the input's own (doing nothing); for MNIST digits, whether zoo's classifier gives a digit
//! and its translation the same label.

use anyhow::Result;
use burn::prelude::*;
use zoo_core::config::{DatasetKind, RunConfig};
use zoo_core::data::ImageSet;
use zoo_core::data::pair::{Mapping, read_pair_info};
use zoo_core::data::similarity::ErrorSums;
use zoo_core::game::{Direction, Game, Translator};

use crate::classifier::{self, Classifier};
use crate::eval::TranslationEval;

/// Images per forward pass.
const CHUNK: usize = 64;

/// Running sums of one direction.
#[derive(Default)]
struct Sums {
    n: f64,
    /// Set when the model translates back (a cycle to score).
    cycled: bool,
    cycle: f64,
    truth: ErrorSums,
    agree: f64,
}

fn scalar(t: Tensor<1>) -> f64 {
    t.into_scalar::<f32>().to_f64()
}

fn labels(net: &Classifier, x: Tensor<4>) -> Vec<i64> {
    net.forward(x)
        .argmax(1)
        .into_data()
        .convert::<i64>()
        .try_to_vec::<i64>()
        .expect("converted to i64")
}

/// What one direction is scored with.
struct Scoring<'a> {
    mapping: Option<Mapping>,
    net: Option<&'a Classifier>,
}

/// One direction: translate `set`, reconstruct, and score against `truth` (the counterparts
/// of `set`'s images) or the pair's pixelwise mapping. `source_is_mapped`: the source domain
/// is the mapped (e.g. inverted) one, so the classifier sees it mapped back.
#[allow(clippy::too_many_arguments)]
fn direction<M: Game>(
    t: &dyn Translator<M>,
    g: &M::G,
    dir: Direction,
    set: &ImageSet,
    truth: Option<&ImageSet>,
    s: &Scoring,
    source_is_mapped: bool,
    device: &Device,
) -> Sums {
    let mut sums = Sums::default();
    let idx: Vec<usize> = (0..set.len).collect();
    for chunk in idx.chunks(CHUNK) {
        let x = set.tensor(chunk, device);
        let (y, rec) = t.translate(g, dir, x.clone());
        let k = chunk.len() as f64;
        sums.n += k;
        if let Some(rec) = rec {
            sums.cycled = true;
            sums.cycle += scalar((rec - x.clone()).abs().mean()) / 2.0 * k;
        }
        let want = match truth {
            Some(t) => Some(t.tensor(chunk, device)),
            None => s.mapping.and_then(|m| m.apply(x.clone())),
        };
        if let Some(want) = want {
            sums.truth.add(x.clone(), y.clone(), want);
        }
        if let (Some(net), Some(m)) = (s.net, s.mapping) {
            // Show the classifier digits in its own (A) style.
            let back = |t: Tensor<4>| m.apply(t).expect("a pixelwise mapping");
            let (src, out) = if source_is_mapped {
                (back(x), y)
            } else {
                (x, back(y))
            };
            let a = labels(net, src);
            let b = labels(net, out);
            sums.agree += a.iter().zip(&b).filter(|(p, q)| p == q).count() as f64;
        }
    }
    sums
}

/// Scores the generators `g` of a translating model on up to `n` held-out images per domain,
/// in each direction the model translates.
pub fn evaluate<M: Game>(
    t: &dyn Translator<M>,
    g: &M::G,
    cfg: &RunConfig<M::Config>,
    n: usize,
    device: &Device,
) -> Result<TranslationEval> {
    let held = t.held_out(cfg, n)?;
    let pair = match &held.root {
        Some(r) => read_pair_info(r)?,
        None => None,
    };
    let mapping = pair.as_ref().map(|p| p.mapping);
    let pixelwise = mapping.filter(|m| *m == Mapping::Invert);
    let digits = pixelwise.is_some() && cfg.data.image_size == 28 && held.a.channels == 1;
    let net = if digits {
        Some(classifier::load_or_train(DatasetKind::Mnist, None, device)?.0)
    } else {
        None
    };
    let s = Scoring {
        mapping: pixelwise,
        net: net.as_ref(),
    };
    let dirs = t.directions();
    let run = |d: Direction, set: &ImageSet, truth: Option<&ImageSet>, mapped: bool| {
        dirs.contains(&d)
            .then(|| direction(t, g, d, set, truth, &s, mapped, device))
    };
    let fwd = run(Direction::AToB, &held.a, held.truth_a.as_ref(), false);
    let bwd = run(Direction::BToA, &held.b, held.truth_b.as_ref(), true);
    let cycle = |x: &Option<Sums>| x.as_ref().filter(|s| s.cycled).map(|s| s.cycle / s.n);
    let truth = |x: &Option<Sums>| x.as_ref().and_then(|s| s.truth.error());
    let agree = |x: &Option<Sums>| x.as_ref().filter(|_| net.is_some()).map(|s| s.agree / s.n);
    let truth_kind = match (&held.truth_a, mapping) {
        (Some(_), _) | (None, Some(Mapping::Counterparts)) => Some("counterparts".to_string()),
        (None, Some(m)) => Some(format!("{m:?}").to_lowercase()),
        (None, None) => None,
    };
    Ok(TranslationEval {
        model: M::NAME.to_string(),
        run: std::path::PathBuf::new(),
        step: 0,
        images: (held.a.len, held.b.len),
        cycle_l1_a: cycle(&fwd),
        cycle_l1_b: cycle(&bwd),
        mapping: truth_kind,
        a2b: truth(&fwd),
        b2a: truth(&bwd),
        label_agreement_a2b: agree(&fwd),
        label_agreement_b2a: agree(&bwd),
    })
}
