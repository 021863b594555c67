//! Running an exported file with tract, an ONNX runtime written independently of zoo and of
//! burn, to check that it computes what zoo's own forward does.

use anyhow::{Context, Result, ensure};
use tract_onnx::prelude::*;

/// One input of a run: a float or an int64 tensor.
#[derive(Debug, Clone, PartialEq)]
pub enum Feed {
    /// A float32 tensor of `dims`.
    F32(Vec<usize>, Vec<f32>),
    /// An int64 tensor of `dims`.
    I64(Vec<usize>, Vec<i64>),
}

/// The first output of `onnx` (the file's bytes) on `inputs`, by tract: its shape and values.
pub fn run_tract(onnx: &[u8], inputs: &[Feed]) -> Result<(Vec<usize>, Vec<f32>)> {
    let model = tract_onnx::onnx()
        .model_for_read(&mut &onnx[..])
        .map_err(|e| anyhow::anyhow!("{e:?}"))
        .context("tract could not read the exported file")?
        .into_optimized()
        .map_err(|e| anyhow::anyhow!("{e:?}"))
        .context("tract could not type and optimise the exported graph")?
        .into_runnable()
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let feeds: TVec<TValue> = inputs
        .iter()
        .map(|f| match f {
            Feed::F32(d, v) => Tensor::from_shape(d, v),
            Feed::I64(d, v) => Tensor::from_shape(d, v),
        })
        .map(|t| t.map(TValue::from))
        .collect::<TractResult<_>>()
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let out = model
        .run(feeds)
        .map_err(|e| anyhow::anyhow!("{e:?}"))
        .context("tract failed to run the exported graph")?;
    ensure!(!out.is_empty(), "the exported graph gave no output");
    let view = out[0]
        .to_plain_array_view::<f32>()
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    Ok((view.shape().to_vec(), view.iter().copied().collect()))
}

/// The largest absolute difference between two equally long value lists (∞ when a value is
/// not finite on one side only, or the lengths differ).
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() {
        return f32::INFINITY;
    }
    a.iter()
        .zip(b)
        .map(|(x, y)| {
            if x.is_finite() && y.is_finite() {
                (x - y).abs()
            } else if x.to_bits() == y.to_bits() {
                0.0
            } else {
                f32::INFINITY
            }
        })
        .fold(0.0, f32::max)
}
