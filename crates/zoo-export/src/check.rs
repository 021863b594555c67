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
    let n = inputs.first().map_or(1, |f| f.rows()).max(1);
    run_tract_in_chunks(onnx, inputs, n)
}

/// [`run_tract`] over at most `chunk` rows (the batch axis) at a time, the model read and
/// optimised once: the outputs are joined along the batch, the memory is a chunk's.
pub fn run_tract_in_chunks(
    onnx: &[u8],
    inputs: &[Feed],
    chunk: usize,
) -> Result<(Vec<usize>, Vec<f32>)> {
    let model = tract_onnx::onnx()
        .model_for_read(&mut &onnx[..])
        .map_err(|e| anyhow::anyhow!("{e:?}"))
        .context("tract could not read the exported file")?
        .into_optimized()
        .map_err(|e| anyhow::anyhow!("{e:?}"))
        .context("tract could not type and optimise the exported graph")?
        .into_runnable()
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let n = inputs.first().map_or(0, |f| f.rows());
    ensure!(
        inputs.iter().all(|f| f.rows() == n),
        "the inputs have different batch sizes"
    );
    let chunk = chunk.max(1);
    let mut dims: Option<Vec<usize>> = None;
    let mut values = Vec::new();
    for at in (0..n).step_by(chunk) {
        let k = chunk.min(n - at);
        let feeds: TVec<TValue> = inputs
            .iter()
            .map(|f| f.rows_of(at, k))
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
        let shape = view.shape().to_vec();
        ensure!(
            shape.first() == Some(&k),
            "the exported graph gave {shape:?} for a batch of {k}"
        );
        match &mut dims {
            None => dims = Some(shape),
            Some(d) => d[0] += k,
        }
        values.extend(view.iter().copied());
    }
    Ok((dims.context("no inputs to run")?, values))
}

impl Feed {
    /// Size of the batch axis.
    pub fn rows(&self) -> usize {
        match self {
            Feed::F32(d, _) | Feed::I64(d, _) => d.first().copied().unwrap_or(0),
        }
    }

    /// Rows `at..at + k` as a tract tensor.
    fn rows_of(&self, at: usize, k: usize) -> TractResult<Tensor> {
        fn slice<T: Datum + Copy>(
            d: &[usize],
            v: &[T],
            at: usize,
            k: usize,
        ) -> TractResult<Tensor> {
            let per: usize = d[1..].iter().product();
            let mut dims = d.to_vec();
            dims[0] = k;
            Tensor::from_shape(&dims, &v[at * per..(at + k) * per])
        }
        match self {
            Feed::F32(d, v) => slice(d, v, at, k),
            Feed::I64(d, v) => slice(d, v, at, k),
        }
    }
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
