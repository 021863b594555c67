//! A trained generator as an ONNX file, for use outside zoo (onnxruntime in Python or C++,
//! onnxruntime-web in a page, tract in Rust).
//!
//! Every registered model implements [`Export`]: it lowers its inference-mode generator into a
//! [`Graph`], layer by layer with the functions of [`layers`], the same order of operations as
//! its forward. The inputs and outputs are the same for every model of a role:
//!
//! | role | inputs | output |
//! |---|---|---|
//! | noise → image | `z` float32 `[N, latent]` from the model's prior | `image` float32 `[N, C, H, W]` in [-1, 1] |
//! | noise + class → image | `z` and `class` int64 `[N]` (index into `zoo.classes`) | `image` |
//! | image → image | `image` float32 `[N, C, H, W]` in [-1, 1] | `translated` float32 `[N, C', H, W]` in [-1, 1] |
//!
//! The batch `N` is symbolic; everything else is fixed by the run's config. The file's
//! `metadata_props` repeat the facts a caller needs (`zoo.model`, `zoo.latent_dim`,
//! `zoo.prior`, `zoo.classes`, `zoo.image_size`, `zoo.channels`, `zoo.direction`,
//! `zoo.range`, `zoo.layout`). `zoo export` checks each file with an independent runtime
//! (tract) against zoo's own forward before it writes it.

pub mod check;
pub mod graph;
pub mod layers;

use anyhow::Result;
use zoo_core::game::{Direction, Game};
use zoo_core::gan::{Conditional, ConditionalGan, Prior};

pub use check::{Feed, max_abs_diff, run_tract, run_tract_in_chunks};
pub use graph::{BATCH, Dim, Elem, Graph, OPSET, OnnxModel, Port, Value};

/// A model whose trained generator lowers to ONNX.
pub trait Export: Game {
    /// The inference-mode generator `g` (the EMA copy where the run keeps one) as an ONNX
    /// graph: for an image-to-image model the way `direction` (one of its
    /// `Translate::directions`), `None` for the others. A layer the format (or zoo's
    /// lowering) cannot express is an error naming the layer.
    fn export(&self, g: &Self::G, direction: Option<Direction>) -> Result<OnnxModel>;
}

/// A class-conditional model ([`ConditionalGan`]): its [`Conditional`] game exports through
/// this, with the inputs `z` and `class`.
pub trait ExportConditional: ConditionalGan {
    /// The inference-mode generator as an ONNX graph (see [`Export::export`]).
    fn export_generator(&self, g: &Self::G) -> Result<OnnxModel>;
}

impl<M: ExportConditional> Export for Conditional<M> {
    fn export(&self, g: &M::G, _direction: Option<Direction>) -> Result<OnnxModel> {
        self.0.export_generator(g)
    }
}

/// The name of a [`Prior`] as the file records it.
pub fn prior_name(prior: Prior) -> &'static str {
    match prior {
        Prior::Normal => "normal",
        Prior::Uniform => "uniform",
    }
}

/// The latent input `z` `[N, latent]` and its metadata.
pub fn noise_input(g: &mut Graph, latent: usize, prior: Prior) -> Value {
    let doc = match prior {
        Prior::Normal => "latent codes, one row per image: z ~ N(0, I)",
        Prior::Uniform => "latent codes, one row per image: z ~ U(-1, 1) per coordinate",
    };
    g.metadata("zoo.latent_dim", latent);
    g.metadata("zoo.prior", prior_name(prior));
    g.input("z", vec![Dim::Batch, Dim::Fixed(latent)], Elem::F32, doc)
}

/// The class input `class` `[N]` (int64 indices into `names`) and its metadata.
pub fn class_input(g: &mut Graph, names: &[String]) -> Value {
    g.metadata("zoo.num_classes", names.len());
    // A JSON array: class names are folder names and may hold commas.
    g.metadata(
        "zoo.classes",
        serde_json::to_string(names).unwrap_or_else(|_| "[]".to_string()),
    );
    let doc = format!(
        "the class of each image, an index 0..{} into zoo.classes ({})",
        names.len(),
        names.join(", ")
    );
    g.input("class", vec![Dim::Batch], Elem::I64, &doc)
}

/// An image input `[N, channels, size, size]` in [-1, 1].
pub fn image_input(g: &mut Graph, name: &str, channels: usize, size: usize) -> Value {
    g.input(
        name,
        image_dims(channels, size),
        Elem::F32,
        &image_doc(channels, size),
    )
}

/// Declares `v` the image output `name` `[N, channels, size, size]` in [-1, 1], and the
/// image metadata.
pub fn image_output(g: &mut Graph, v: Value, name: &str, channels: usize, size: usize) {
    g.metadata("zoo.image_size", size);
    g.metadata("zoo.channels", channels);
    g.metadata("zoo.range", "-1,1");
    g.metadata("zoo.layout", "NCHW");
    g.output(
        v,
        name,
        image_dims(channels, size),
        &image_doc(channels, size),
    );
}

fn image_dims(channels: usize, size: usize) -> Vec<Dim> {
    vec![
        Dim::Batch,
        Dim::Fixed(channels),
        Dim::Fixed(size),
        Dim::Fixed(size),
    ]
}

fn image_doc(channels: usize, size: usize) -> String {
    let kind = if channels == 1 { "gray" } else { "RGB" };
    format!(
        "{kind} images, NCHW [N, {channels}, {size}, {size}], values in [-1, 1] \
         (pixel = (v + 1) / 2 * 255)"
    )
}

/// The image shape of a generator's output: channels and side.
pub type ImageShape = (usize, usize);

/// A noise-to-image generator's file: input `z`, output `image`; `lower` maps `z` to the image.
pub fn noise_to_image(
    model: &str,
    (latent, prior): (usize, Prior),
    (channels, size): ImageShape,
    about: &str,
    lower: impl FnOnce(&mut Graph, &Value) -> Result<Value>,
) -> Result<OnnxModel> {
    let mut g = Graph::new();
    let z = noise_input(&mut g, latent, prior);
    let x = lower(&mut g, &z)?;
    image_output(&mut g, x, "image", channels, size);
    finish(g, model, None, about)
}

/// A class-conditional generator's file: inputs `z` and `class`, output `image`; `lower` maps
/// them to the image.
pub fn class_to_image(
    model: &str,
    (latent, prior): (usize, Prior),
    classes: &[String],
    (channels, size): ImageShape,
    about: &str,
    lower: impl FnOnce(&mut Graph, &Value, &Value) -> Result<Value>,
) -> Result<OnnxModel> {
    let mut g = Graph::new();
    let z = noise_input(&mut g, latent, prior);
    let class = class_input(&mut g, classes);
    let x = lower(&mut g, &z, &class)?;
    image_output(&mut g, x, "image", channels, size);
    finish(g, model, None, about)
}

/// Finishes a generator's graph with the common metadata and a description.
pub fn finish(
    mut g: Graph,
    model: &str,
    direction: Option<Direction>,
    about: &str,
) -> Result<OnnxModel> {
    g.metadata("zoo.model", model);
    if let Some(d) = direction {
        g.metadata("zoo.direction", d.name());
    }
    let what = match direction {
        Some(d) => format!("{model} generator ({}), exported by zoo: {about}", d.name()),
        None => format!("{model} generator, exported by zoo: {about}"),
    };
    g.finish(&format!("{model}_generator"), &what)
}

#[cfg(test)]
mod tests;
