use burn::module::Param;
use burn::nn::conv::{Conv2dConfig, ConvTranspose2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, InstanceNormConfig, LinearConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::Distribution;
use burn::tensor::activation;

use super::*;
use crate::layers::*;

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .expect("f32")
}

/// Batch norm with non-trivial running statistics, γ and β (as after training).
fn trained_bn(c: usize, device: &Device) -> BatchNorm {
    let mut bn = BatchNormConfig::new(c).init(device);
    bn.gamma = Param::from_tensor(Tensor::random([c], Distribution::Normal(1.0, 0.3), device));
    bn.beta = Param::from_tensor(Tensor::random([c], Distribution::Normal(0.0, 0.3), device));
    bn.running_mean = burn::module::RunningState::new(Tensor::random(
        [c],
        Distribution::Normal(0.0, 0.5),
        device,
    ));
    bn.running_var = burn::module::RunningState::new(Tensor::random(
        [c],
        Distribution::Uniform(0.5, 2.0),
        device,
    ));
    bn
}

/// Every lowering of [`layers`] in one graph, against burn's own forward of the same layers.
#[test]
fn layers_match_burn_under_tract() {
    let device = Device::flex();
    device.seed(3);
    let conv = Conv2dConfig::new([3, 4], [4, 4])
        .with_stride([2, 2])
        .with_padding(PaddingConfig2d::Explicit(1, 2, 1, 0))
        .init(&device);
    let bn = trained_bn(4, &device);
    let up = ConvTranspose2dConfig::new([4, 5], [3, 3])
        .with_stride([2, 2])
        .with_padding([1, 1])
        .with_padding_out([1, 1])
        .init(&device);
    let inorm = InstanceNormConfig::new(5).init(&device);
    let side = Conv2dConfig::new([3, 5], [3, 3]).init(&device);

    let x = Tensor::<4>::random([2, 3, 8, 8], Distribution::Normal(0.0, 1.0), &device);
    // burn: conv → BN → leaky → conv_t → IN → relu; beside it pad → conv; concat; tanh.
    let h = activation::leaky_relu(bn.valid().forward(conv.forward(x.clone())), 0.2);
    let h = activation::relu(inorm.forward(up.forward(h)));
    let s = side.forward(
        x.clone()
            .pad((1, 1, 1, 1), burn::tensor::ops::PadMode::Reflect),
    );
    let want =
        activation::tanh(Tensor::cat(vec![h, s.clone()], 1) + Tensor::cat(vec![s.clone(), s], 1));

    let mut g = Graph::new();
    let xi = image_input(&mut g, "image", 3, 8);
    let h = conv2d(&mut g, &xi, &conv, "conv").expect("lowering");
    let h = batch_norm(&mut g, &h, &bn, "bn").expect("lowering");
    let h = leaky_relu(&mut g, &h, 0.2, "leaky");
    let h = conv_transpose2d(&mut g, &h, &up, "up").expect("lowering");
    let h = instance_norm(&mut g, &h, &inorm, "in").expect("lowering");
    let h = relu(&mut g, &h, "relu");
    let p = reflect_pad(&mut g, &xi, 1, "pad");
    let s = conv2d(&mut g, &p, &side, "side").expect("lowering");
    let a = concat(&mut g, &[&h, &s], 1, "cat");
    let b = concat(&mut g, &[&s, &s], 1, "cat2");
    let y = add(&mut g, &a, &b, "add");
    let y = tanh(&mut g, &y, "tanh");
    image_output(&mut g, y, "out", 10, 8);
    let model = finish(g, "test", None, "layers").expect("lowering");
    let bytes = model.to_bytes().expect("lowering");

    let (dims, got) =
        run_tract(&bytes, &[Feed::F32(vec![2, 3, 8, 8], values(x))]).expect("lowering");
    assert_eq!(dims, want.dims().to_vec());
    let d = max_abs_diff(&got, &values(want));
    assert!(d <= 1e-5, "max |tract - burn| = {d}");
    assert!(d.is_finite());
}

/// Linear, 2-D batch norm, an embedding lookup, reshape and mul, with a dynamic batch: the
/// same file runs at two batch sizes.
#[test]
fn dense_layers_and_a_dynamic_batch() {
    let device = Device::flex();
    device.seed(5);
    let lin = LinearConfig::new(6, 4).init(&device);
    let bn = trained_bn(4, &device);
    let table = Tensor::<2>::random([3, 4], Distribution::Normal(0.0, 1.0), &device);

    let mut g = Graph::new();
    let z = noise_input(&mut g, 6, zoo_core::gan::Prior::Normal);
    let names: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
    let y = class_input(&mut g, &names);
    let h = linear(&mut g, &z, &lin, "fc").expect("lowering");
    let h = batch_norm(&mut g, &h, &bn, "bn").expect("lowering");
    let t = g.weight("table", table.clone()).expect("lowering");
    let e = rows(&mut g, &t, &y, "embed");
    let h = mul(&mut g, &h, &e, "mul");
    let h = reshape(&mut g, &h, &[0, 1, 2, 2], "reshape");
    image_output(&mut g, h, "image", 1, 2);
    let model = finish(g, "dense", None, "dense").expect("lowering");
    assert_eq!(model.meta("zoo.classes"), Some(r#"["a","b","c"]"#));
    assert_eq!(model.meta("zoo.prior"), Some("normal"));
    let bytes = model.to_bytes().expect("lowering");

    for n in [1usize, 5] {
        let z = Tensor::<2>::random([n, 6], Distribution::Normal(0.0, 1.0), &device);
        let labels: Vec<i64> = (0..n as i64).map(|i| i % 3).collect();
        let idx = Tensor::<1, Int>::from_data(TensorData::new(labels.clone(), [n]), &device);
        let h = bn.valid().forward(lin.forward(z.clone()));
        let want = (h * table.clone().select(0, idx)).reshape([n, 1, 2, 2]);
        let (dims, got) = run_tract(
            &bytes,
            &[Feed::F32(vec![n, 6], values(z)), Feed::I64(vec![n], labels)],
        )
        .expect("lowering");
        assert_eq!(dims, vec![n, 1, 2, 2]);
        let d = max_abs_diff(&got, &values(want));
        assert!(d <= 1e-5, "batch {n}: max |tract - burn| = {d}");
    }
}

/// A layer the lowering cannot express is an error that names it.
#[test]
fn same_padding_is_an_error_naming_the_layer() {
    let device = Device::flex();
    let conv = Conv2dConfig::new([1, 1], [3, 3])
        .with_padding(PaddingConfig2d::Same)
        .init(&device);
    let mut g = Graph::new();
    let x = image_input(&mut g, "image", 1, 4);
    let err = conv2d(&mut g, &x, &conv, "g.head")
        .expect_err("Same padding")
        .to_string();
    assert!(err.contains("g.head") && err.contains("Same"), "{err}");
}

#[test]
fn max_abs_diff_is_two_sided_and_catches_nan() {
    assert_eq!(max_abs_diff(&[1.0, 2.0], &[1.5, 1.0]), 1.0);
    assert_eq!(max_abs_diff(&[1.0], &[f32::NAN]), f32::INFINITY);
    assert_eq!(max_abs_diff(&[1.0], &[1.0, 2.0]), f32::INFINITY);
}
