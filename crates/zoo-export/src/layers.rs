//! burn's layers, and zoo's, lowered to ONNX operators. Each function mirrors the forward the
//! generators run in inference mode (batch norm with its running statistics, dropout off)
//! and names its nodes and weights after `name`, the layer's path.

use anyhow::{Result, bail};
use burn::nn::conv::{Conv2d, ConvTranspose2d};
use burn::nn::{BatchNorm, InstanceNorm, Linear, PaddingConfig2d};
use burn::prelude::*;
use zoo_core::nn::ConditionalBatchNorm;

use crate::graph::{Attr, Graph, Value};

/// `x · W + b` (burn's `Linear`: `W` is `[in, out]`), as `Gemm`.
pub fn linear(g: &mut Graph, x: &Value, l: &Linear, name: &str) -> Result<Value> {
    let inputs = with_weights(g, x, l.weight.val(), l.bias.as_ref().map(|b| b.val()), name)?;
    let refs: Vec<&Value> = inputs.iter().collect();
    Ok(g.op("Gemm", name, &refs, Vec::new()))
}

/// A 2-D convolution (`Conv`, NCHW, weights `[out, in/groups, kh, kw]` as burn's).
pub fn conv2d(g: &mut Graph, x: &Value, c: &Conv2d, name: &str) -> Result<Value> {
    let pads = match c.padding {
        PaddingConfig2d::Valid => [0, 0, 0, 0],
        // burn: (top, left, bottom, right); ONNX: (h begin, w begin, h end, w end).
        PaddingConfig2d::Explicit(t, l, b, r) => [t, l, b, r],
        PaddingConfig2d::Same => bail!(
            "layer {name} (Conv2d) uses `PaddingConfig2d::Same`, whose pads depend on the \
             input size; zoo's ONNX export lowers explicit pads only (give the layer \
             `PaddingConfig2d::Explicit`)"
        ),
    };
    let inputs = with_weights(g, x, c.weight.val(), c.bias.as_ref().map(|b| b.val()), name)?;
    let refs: Vec<&Value> = inputs.iter().collect();
    Ok(g.op(
        "Conv",
        name,
        &refs,
        conv_attrs(c.kernel_size, c.stride, c.dilation, c.groups, pads),
    ))
}

/// A transposed 2-D convolution (`ConvTranspose`; weights `[in, out/groups, kh, kw]` as
/// burn's), with its output padding.
pub fn conv_transpose2d(
    g: &mut Graph,
    x: &Value,
    c: &ConvTranspose2d,
    name: &str,
) -> Result<Value> {
    let inputs = with_weights(g, x, c.weight.val(), c.bias.as_ref().map(|b| b.val()), name)?;
    let refs: Vec<&Value> = inputs.iter().collect();
    let [ph, pw] = c.padding;
    Ok(g.op("ConvTranspose", name, &refs, {
        let mut a = conv_attrs(
            c.kernel_size,
            c.stride,
            c.dilation,
            c.groups,
            [ph, pw, ph, pw],
        );
        a.push(("output_padding", ints(&c.padding_out)));
        a
    }))
}

/// Batch norm in inference mode: the running statistics, γ and β (`BatchNormalization`;
/// `[N, C]` or `[N, C, H, W]`).
pub fn batch_norm(g: &mut Graph, x: &Value, bn: &BatchNorm, name: &str) -> Result<Value> {
    let scale = g.weight(&format!("{name}.gamma"), bn.gamma.val())?;
    let bias = g.weight(&format!("{name}.beta"), bn.beta.val())?;
    let mean = g.weight(&format!("{name}.running_mean"), bn.running_mean.value())?;
    let var = g.weight(&format!("{name}.running_var"), bn.running_var.value())?;
    Ok(g.op(
        "BatchNormalization",
        name,
        &[x, &scale, &bias, &mean, &var],
        vec![("epsilon", Attr::Float(bn.epsilon as f32))],
    ))
}

/// zoo's class-conditional batch norm: the normalisation, then γ and β of each image's
/// `class` (`Gather` rows of the tables), or of row 0 for every image when `class` is `None`.
pub fn conditional_batch_norm(
    g: &mut Graph,
    x: &Value,
    cbn: &ConditionalBatchNorm,
    class: Option<&Value>,
    name: &str,
) -> Result<Value> {
    let y = batch_norm(g, x, &cbn.norm, &format!("{name}.norm"))?;
    let c = cbn.gamma.dims()[1] as i64;
    let mut affine = |what: &str, table: Tensor<2>| -> Result<Value> {
        Ok(match class {
            Some(class) => {
                let t = g.weight(&format!("{name}.{what}"), table)?;
                let r = rows(g, &t, class, &format!("{name}.{what}_of_class"));
                reshape(g, &r, &[0, c, 1, 1], &format!("{name}.{what}_nchw"))
            }
            None => {
                let row = table.narrow(0, 0, 1).reshape([1, c as usize, 1, 1]);
                g.weight(&format!("{name}.{what}"), row)?
            }
        })
    };
    let gamma = affine("gamma", cbn.gamma.val())?;
    let beta = affine("beta", cbn.beta.val())?;
    let y = mul(g, &y, &gamma, &format!("{name}.scale"));
    Ok(add(g, &y, &beta, &format!("{name}.shift")))
}

/// Instance norm (`InstanceNormalization`; unit scale and zero bias when the layer has no
/// affine part).
pub fn instance_norm(g: &mut Graph, x: &Value, n: &InstanceNorm, name: &str) -> Result<Value> {
    let c = n.num_channels;
    let scale = match &n.gamma {
        Some(p) => g.weight(&format!("{name}.gamma"), p.val())?,
        None => g.floats(&format!("{name}.gamma"), &[c], vec![1.0; c]),
    };
    let bias = match &n.beta {
        Some(p) => g.weight(&format!("{name}.beta"), p.val())?,
        None => g.floats(&format!("{name}.beta"), &[c], vec![0.0; c]),
    };
    Ok(g.op(
        "InstanceNormalization",
        name,
        &[x, &scale, &bias],
        vec![("epsilon", Attr::Float(n.epsilon as f32))],
    ))
}

/// `max(x, 0)`.
pub fn relu(g: &mut Graph, x: &Value, name: &str) -> Value {
    g.op("Relu", name, &[x], Vec::new())
}

/// `x` where positive, `slope · x` elsewhere.
pub fn leaky_relu(g: &mut Graph, x: &Value, slope: f64, name: &str) -> Value {
    g.op(
        "LeakyRelu",
        name,
        &[x],
        vec![("alpha", Attr::Float(slope as f32))],
    )
}

/// `tanh(x)`.
pub fn tanh(g: &mut Graph, x: &Value, name: &str) -> Value {
    g.op("Tanh", name, &[x], Vec::new())
}

/// `x` reshaped; a 0 keeps that axis of the input (the batch), a -1 is inferred.
pub fn reshape(g: &mut Graph, x: &Value, shape: &[i64], name: &str) -> Value {
    let s = g.ints(&format!("{name}.shape"), shape);
    g.op("Reshape", name, &[x, &s], Vec::new())
}

/// Reflection padding of `p` pixels on every side of `[N, C, H, W]`.
pub fn reflect_pad(g: &mut Graph, x: &Value, p: usize, name: &str) -> Value {
    let p = p as i64;
    let pads = g.ints(&format!("{name}.pads"), &[0, 0, p, p, 0, 0, p, p]);
    g.op(
        "Pad",
        name,
        &[x, &pads],
        vec![("mode", Attr::Str("reflect".into()))],
    )
}

/// The values joined along `axis`.
pub fn concat(g: &mut Graph, xs: &[&Value], axis: i64, name: &str) -> Value {
    g.op("Concat", name, xs, vec![("axis", Attr::Int(axis))])
}

/// `a + b` (broadcasting).
pub fn add(g: &mut Graph, a: &Value, b: &Value, name: &str) -> Value {
    g.op("Add", name, &[a, b], Vec::new())
}

/// `a · b` elementwise (broadcasting).
pub fn mul(g: &mut Graph, a: &Value, b: &Value, name: &str) -> Value {
    g.op("Mul", name, &[a, b], Vec::new())
}

/// Row `index[i]` of `table` for each `i` (`Gather` on axis 0: an embedding lookup).
pub fn rows(g: &mut Graph, table: &Value, index: &Value, name: &str) -> Value {
    g.op(
        "Gather",
        name,
        &[table, index],
        vec![("axis", Attr::Int(0))],
    )
}

/// `[x, weight, (bias)]` as a node's inputs, the weights stored as `{name}.weight`/`.bias`.
fn with_weights<const D: usize>(
    g: &mut Graph,
    x: &Value,
    weight: Tensor<D>,
    bias: Option<Tensor<1>>,
    name: &str,
) -> Result<Vec<Value>> {
    let mut inputs = vec![x.clone(), g.weight(&format!("{name}.weight"), weight)?];
    if let Some(b) = bias {
        inputs.push(g.weight(&format!("{name}.bias"), b)?);
    }
    Ok(inputs)
}

/// The attributes `Conv` and `ConvTranspose` share.
fn conv_attrs(
    kernel: [usize; 2],
    stride: [usize; 2],
    dilation: [usize; 2],
    groups: usize,
    pads: [usize; 4],
) -> Vec<(&'static str, Attr)> {
    vec![
        ("kernel_shape", ints(&kernel)),
        ("strides", ints(&stride)),
        ("dilations", ints(&dilation)),
        ("pads", ints(&pads)),
        ("group", Attr::Int(groups as i64)),
    ]
}

fn ints(v: &[usize]) -> Attr {
    Attr::Ints(v.iter().map(|&x| x as i64).collect())
}
