//! `zoo export`: a run's generator as an ONNX file, checked by an independent runtime (tract)
//! against zoo's own forward on the same inputs before anything is written.

use std::path::PathBuf;

use anyhow::{Context, Result, bail, ensure};
use burn::prelude::*;
use burn::tensor::Distribution;
use zoo_core::game::{Direction, Game, Role};
use zoo_core::gan::label_tensor;
use zoo_core::streams::{SAMPLE, mix};
use zoo_export::{Export, Feed, OnnxModel, max_abs_diff, run_tract_in_chunks};

use crate::checkpoint::load_generator;
use crate::run::Checkpoint;
use crate::tasks::{chosen_checkpoint, open_trained};

/// The largest difference between tract's outputs and zoo's that `zoo export` accepts.
pub const TOLERANCE: f32 = 1e-4;

/// What `zoo export` asks for.
#[derive(Debug, Clone)]
pub struct ExportRequest {
    /// The run folder.
    pub run_dir: PathBuf,
    /// A checkpoint folder of the run (default: its latest).
    pub checkpoint: Option<PathBuf>,
    /// The way an image-to-image generator translates (default: its first direction).
    pub direction: Option<Direction>,
    /// Inputs the check runs through both zoo and tract.
    pub check_n: usize,
    /// Where zoo computes.
    pub device: Device,
}

/// An exported generator and how it was checked.
#[derive(Debug, Clone)]
pub struct ExportReport {
    /// The model (inputs, outputs, metadata).
    pub model: OnnxModel,
    /// The `.onnx` file's bytes.
    pub bytes: Vec<u8>,
    /// The checkpoint's step.
    pub step: u64,
    /// Whether the generator is the run's EMA copy.
    pub ema: bool,
    /// The direction exported (image-to-image models).
    pub direction: Option<Direction>,
    /// The largest |tract − zoo| over the check's outputs.
    pub max_diff: f32,
    /// Values compared.
    pub compared: usize,
    /// The check's inputs, in the graph's input order.
    pub feeds: Vec<Feed>,
    /// zoo's outputs for them: shape and values.
    pub outputs: (Vec<usize>, Vec<f32>),
    /// Float parameters stored in the file.
    pub parameters: usize,
    /// A translator's check inputs as PNG files (held-out images), for the page's examples.
    pub examples: Vec<Vec<u8>>,
}

fn values<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| anyhow::anyhow!("{e:?}"))
}

/// `zoo export`: lowers the run's generator, runs `check_n` inputs through zoo and through
/// tract, and fails when they differ by more than [`TOLERANCE`].
pub fn export<M: Game + Export>(req: &ExportRequest) -> Result<ExportReport> {
    ensure!(
        (1..=256).contains(&req.check_n),
        "--check-n must be between 1 and 256 (got {})",
        req.check_n
    );
    let (cfg, model, latest) = open_trained::<M>(&req.run_dir, "export")?;
    let ck: Checkpoint = chosen_checkpoint(latest, req.checkpoint.as_deref())?;
    let step = ck.state()?.step;
    let ema = ck.file(crate::ema::EMA_FILE).is_file();
    let g = load_generator(&model, &ck, &req.device)?.valid();
    let n = req.check_n;
    let direction = match M::Role::translator(&model) {
        Some(t) => {
            let dirs = t.directions();
            Some(match req.direction {
                Some(d) if !dirs.contains(&d) => bail!(
                    "{} translates {} only; --direction {} is not a way this run was trained \
                     (use --direction {}, or leave it out)",
                    M::NAME,
                    dirs.iter().map(|d| d.name()).collect::<Vec<_>>().join(", "),
                    d.name(),
                    dirs[0].name()
                ),
                Some(d) => d,
                None => dirs[0],
            })
        }
        None => {
            ensure!(
                req.direction.is_none(),
                "{} generates from noise; --direction is for image-to-image runs",
                M::NAME
            );
            None
        }
    };
    let onnx = model.export(&g, direction)?;
    // The check's inputs: the noise (and classes) `zoo sample` draws for the run's seed, or
    // images uniform in [-1, 1] for a translator.
    req.device.seed(mix(cfg.train.seed, SAMPLE));
    let mut examples = Vec::new();
    let (feeds, want) = match (M::Role::translator(&model), direction) {
        (Some(t), Some(direction)) => {
            let [c, h, w] = image_dims(&onnx)?;
            // Held-out images of the input domain where the data is still there, else images
            // uniform in [-1, 1].
            let held = held_out_inputs(t, &cfg, direction, n, [c, h, w]);
            let x = match &held {
                Some(set) => {
                    let v: Vec<f32> = set.pixels.iter().map(|&b| b as f32 / 127.5 - 1.0).collect();
                    Tensor::<4>::from_data(TensorData::new(v, [set.len, c, h, w]), &req.device)
                }
                None => {
                    Tensor::<4>::random([n, c, h, w], Distribution::Uniform(-1.0, 1.0), &req.device)
                }
            };
            examples = match &held {
                Some(set) => example_pngs(set)?,
                None => Vec::new(),
            };
            let y = t.translate(&g, direction, x.clone()).0;
            let feeds = vec![Feed::F32(x.dims().to_vec(), values(x)?)];
            (feeds, (y.dims().to_vec(), values(y)?))
        }
        _ => {
            let sampler = crate::tasks::sampler_of(&model)?;
            let z = sampler.noise(n, &req.device);
            let zf = Feed::F32(z.dims().to_vec(), values(z.clone())?);
            match M::Role::class_sampler(&model) {
                Some(cs) => {
                    let k = cs.classes().len().max(1) as i64;
                    let labels: Vec<i64> = (0..n as i64).map(|i| i % k).collect();
                    let y = cs.images_of(&g, z, label_tensor(labels.clone(), &req.device));
                    (
                        vec![zf, Feed::I64(vec![n], labels)],
                        (y.dims().to_vec(), values(y)?),
                    )
                }
                None => {
                    let y = sampler.images(&g, z);
                    (vec![zf], (y.dims().to_vec(), values(y)?))
                }
            }
        }
    };
    let bytes = onnx.to_bytes()?;
    // Two images at a time: tract's memory for a 256-px CycleGAN is about 1 GiB per image.
    let (dims, got) = run_tract_in_chunks(&bytes, &feeds, 2)
        .context("checking the exported file with tract (an independent ONNX runtime)")?;
    ensure!(
        dims == want.0,
        "the exported graph gives {dims:?} where zoo gives {:?}: zoo's lowering of {} is wrong \
         (please report it)",
        want.0,
        M::NAME
    );
    let max_diff = max_abs_diff(&got, &want.1);
    ensure!(
        max_diff <= TOLERANCE,
        "the exported graph differs from zoo's forward by up to {max_diff:e} (more than \
         {TOLERANCE:e}) on {n} inputs: zoo's lowering of {} is wrong (please report it); \
         nothing was written",
        M::NAME
    );
    Ok(ExportReport {
        parameters: onnx.parameters(),
        model: onnx,
        bytes,
        step,
        ema,
        direction,
        max_diff,
        compared: got.len(),
        feeds,
        outputs: want,
        examples,
    })
}

/// Up to `n` held-out images of `direction`'s input domain, when they load and have the
/// graph's input shape.
fn held_out_inputs<M: Game>(
    t: &dyn zoo_core::game::Translator<M>,
    cfg: &zoo_core::config::RunConfig<M::Config>,
    direction: Direction,
    n: usize,
    [c, h, w]: [usize; 3],
) -> Option<zoo_core::data::ImageSet> {
    let held = match t.held_out(cfg, n) {
        Ok(h) => h,
        Err(e) => {
            tracing::warn!("no held-out images for the check ({e:#}); using random images");
            return None;
        }
    };
    let mut set = match direction {
        Direction::AToB => held.a,
        Direction::BToA => held.b,
    };
    set.truncate(n);
    (set.len > 0 && set.channels == c && set.size == h && h == w && set.floats.is_none())
        .then_some(set)
}

/// Each image of `set` as PNG bytes.
fn example_pngs(set: &zoo_core::data::ImageSet) -> Result<Vec<Vec<u8>>> {
    let (c, s) = (set.channels, set.size);
    (0..set.len)
        .map(|i| {
            let px = &set.pixels[i * set.image_len()..(i + 1) * set.image_len()];
            let img = if c == 1 {
                image::DynamicImage::ImageLuma8(
                    image::GrayImage::from_raw(s as u32, s as u32, px.to_vec())
                        .context("an example image")?,
                )
            } else {
                let plane = s * s;
                let rgb: Vec<u8> = (0..plane)
                    .flat_map(|p| (0..3).map(move |k| px[k * plane + p]))
                    .collect();
                image::DynamicImage::ImageRgb8(
                    image::RgbImage::from_raw(s as u32, s as u32, rgb)
                        .context("an example image")?,
                )
            };
            crate::output::png_bytes(&img)
        })
        .collect()
}

/// `[C, H, W]` of the graph's (image) input.
fn image_dims(onnx: &OnnxModel) -> Result<[usize; 3]> {
    use zoo_export::Dim::Fixed;
    let input = onnx
        .inputs
        .first()
        .context("the exported graph has no input")?;
    match input.dims.as_slice() {
        [_, Fixed(c), Fixed(h), Fixed(w)] => Ok([*c, *h, *w]),
        _ => bail!(
            "the exported graph's input {} is not [N, C, H, W]",
            input.shape_text()
        ),
    }
}
