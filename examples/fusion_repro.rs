//! A reproduction of the wrong values Burn's kernel fusion computes on wgpu (docs/PERFORMANCE.md,
//! "Burn's kernel fusion"): the vector–Jacobian product of the likelihood's right-hand side, with
//! the network replaced by a closed-form score, on the CPU (flex, no fusion) and on native wgpu.
//!
//!     cargo run --release --example fusion_repro --features wgpu            # agree
//!     cargo run --release --example fusion_repro --features wgpu,fusion     # the fused one differs?
//!
//! Each case prints the largest difference between the two devices; every case computes
//! v·(∂f/∂x)·v for f(x) = k·x (so the exact answer is k·Σv², the same on both devices).

use burn::prelude::*;

pub fn cases(device: &Device) -> Vec<(&'static str, Vec<f32>)> {
    let (b, d) = (2usize, 16usize);
    let shape = [b, 1, 4, 4];
    let k = -0.75f32;
    let y: Vec<f32> = (0..b * (d + 1)).map(|i| ((i * 37) % 101) as f32 / 50.0 - 1.0).collect();
    let v: Vec<f32> = (0..b * d).map(|i| if (i * 7) % 3 == 0 { 1.0 } else { -1.0 }).collect();
    let y = Tensor::<2>::from_data(TensorData::new(y, [b, d + 1]), device);
    let probe = Tensor::<4>::from_data(TensorData::new(v, shape), device);
    let read = |t: Tensor<2>| t.into_data().try_to_vec::<f32>().unwrap();
    let mut out = Vec::new();

    // 1. The plain chain: x requires grad, f = k·x, backward of Σ v·f, then Σ v·grad per row.
    {
        let x = y.clone().slice([0..b, 0..d]).reshape(shape).autodiff().require_grad();
        let f = x.clone() * k;
        let grads = (f.clone() * probe.clone()).sum().backward();
        let g = x.grad(&grads).unwrap();
        let div = (g * probe.clone()).sum_dims(&[1, 2, 3]).reshape([b, 1]);
        out.push(("slice → autodiff → k·x → vjp", read(Tensor::cat(vec![f.without_autodiff().reshape([b, d]), div], 1))));
    }
    // 2. As the likelihood does it: the state leaves and re-enters autodiff first.
    {
        let x = y.clone().slice([0..b, 0..d]).reshape(shape);
        let x = x.without_autodiff().autodiff().require_grad();
        let f = x.clone() * k;
        let grads = (f.clone() * probe.clone()).sum().backward();
        let g = x.grad(&grads).unwrap();
        let div = (g * probe.clone()).sum_dims(&[1, 2, 3]).reshape([b, 1]);
        out.push(("… without_autodiff().autodiff() first", read(Tensor::cat(vec![f.without_autodiff().reshape([b, d]), div], 1))));
    }
    // 3. The divergence alone, no slice.
    {
        let x = y.clone().slice([0..b, 0..d]).reshape(shape);
        let x = Tensor::<4>::from_data(x.into_data(), device).autodiff().require_grad();
        let f = x.clone() * k;
        let grads = (f * probe.clone()).sum().backward();
        let g = x.grad(&grads).unwrap();
        out.push(("fresh tensor → vjp, divergence only", read((g * probe.clone()).sum_dims(&[1, 2, 3]).reshape([b, 1]))));
    }
    // 4. Two paths from x: f = a·x + 0·g(b·x), for a few g; exact: a·Σv².
    let branches: [(&'static str, fn(Tensor<4>) -> Tensor<4>); 5] = [
        ("two paths, g = identity", |h| h),
        ("two paths, g = exp", |h| h.exp()),
        ("two paths, g = silu", |h| burn::tensor::activation::silu(h)),
        ("two paths, g = h − mean(h)", |h| {
            let m = h.clone().mean_dim(3).mean_dim(2);
            h - m
        }),
        ("two paths, g = (h − mean)/std", |h| {
            let m = h.clone().mean_dim(3).mean_dim(2);
            let c = h - m;
            let var = c.clone().powi_scalar(2).mean_dim(3).mean_dim(2);
            c / (var + 1e-5).sqrt()
        }),
    ];
    for (name, g) in branches {
        let x = y.clone().slice([0..b, 0..d]).reshape(shape);
        let x = Tensor::<4>::from_data(x.into_data(), device).autodiff().require_grad();
        let f = x.clone() * k + g(x.clone() * 0.3) * 0.0;
        let grads = (f * probe.clone()).sum().backward();
        let grad = x.grad(&grads).unwrap();
        out.push((name, read((grad * probe.clone()).sum_dims(&[1, 2, 3]).reshape([b, 1]))));
    }
    // 5. Two paths through the U-Net's layer types, on [2, 1, 4, 4] lifted to 8 channels.
    {
        use burn::nn::conv::{Conv2dConfig, ConvTranspose2dConfig};
        use burn::nn::{GroupNormConfig, PaddingConfig2d};
        device.seed(9);
        let lift = Conv2dConfig::new([1, 8], [3, 3]).with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1)).init(device);
        let conv = Conv2dConfig::new([8, 8], [3, 3]).with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1)).init(device);
        let down = Conv2dConfig::new([8, 8], [3, 3]).with_stride([2, 2]).with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1)).init(device);
        let up = ConvTranspose2dConfig::new([8, 8], [3, 3]).with_stride([2, 2]).with_padding([1, 1]).with_padding_out([1, 1]).init(device);
        let norm = GroupNormConfig::new(4, 8).init(device);
        let norm1 = GroupNormConfig::new(1, 1).init(device);
        let layers: Vec<(&'static str, Box<dyn Fn(Tensor<4>) -> Tensor<4>>)> = vec![
            ("two paths, g = conv", Box::new(|h| lift.forward(h))),
            ("two paths, g = conv → conv", Box::new(|h| conv.forward(lift.forward(h)))),
            ("two paths, g = conv → group norm", Box::new(|h| norm.forward(lift.forward(h)))),
            ("two paths, g = conv → (h − mean)/std per channel", Box::new(|h| {
                let h = lift.forward(h);
                let c = h.clone() - h.mean_dim(3).mean_dim(2);
                let var = c.clone().powi_scalar(2).mean_dim(3).mean_dim(2);
                c / (var + 1e-5).sqrt()
            })),
            ("two paths, g = conv → h − mean per channel", Box::new(|h| {
                let h = lift.forward(h);
                h.clone() - h.mean_dim(3).mean_dim(2)
            })),
            ("two paths, g = conv → h²", Box::new(|h| lift.forward(h).powi_scalar(2))),
            ("two paths, g = group norm (1 group, 1 channel)", Box::new(|h| norm1.forward(h))),
            ("two paths, g = cat of 8 copies → group norm", Box::new(|h| norm.forward(Tensor::cat(vec![h; 8], 1)))),
            ("two paths, g = conv → cat with itself", Box::new(|h| {
                let a = lift.forward(h);
                Tensor::cat(vec![a.clone(), a], 1)
            })),
            ("two paths, g = conv → stride-2 conv", Box::new(|h| down.forward(lift.forward(h)))),
            ("two paths, g = conv → stride-2 conv → transposed conv", Box::new(|h| up.forward(down.forward(lift.forward(h))))),
        ];
        for (name, g) in layers {
            let x = y.clone().slice([0..b, 0..d]).reshape(shape);
            let x = Tensor::<4>::from_data(x.into_data(), device).autodiff().require_grad();
            let f = x.clone() * k + g(x.clone() * 0.3).sum_dims(&[1, 2, 3]) * 0.0;
            let grads = (f * probe.clone()).sum().backward();
            let grad = x.grad(&grads).unwrap();
            out.push((name, read((grad * probe.clone()).sum_dims(&[1, 2, 3]).reshape([b, 1]))));
        }
    }
    // 6–7. The same vector–Jacobian product through the score of a small EDM U-Net (8×8 images),
    // fresh (its last convolution is zero, so the network adds nothing: the score of a Gaussian)
    // and with every weight random.
    for random in [false, true] {
        let arch = scorefield::UNetConfig { height: 8, width: 8, widths: vec![8, 16], embed_dim: 16, dropout: 0.0, ..Default::default() };
        let card = scorefield::store::ModelCard::new("tiny", scorefield::Architecture::Unet(arch), scorefield::Parameterisation::Edm { sigma_data: 0.5 }, scorefield::Sde::ve(10.0));
        let mut bytes = scorefield::store::save(&scorefield::store::init(&card, &Device::flex()).unwrap()).unwrap();
        if random {
            let (entries, _) = scorefield::store::safetensors::parse_safetensors(&bytes).unwrap();
            let mut rng = scorefield::rng::SplitMix::new(5);
            for e in &entries {
                for chunk in bytes[e.start..e.end].chunks_mut(4) {
                    chunk.copy_from_slice(&(0.2 * rng.normal() as f32).to_le_bytes());
                }
            }
        }
        let model = scorefield::store::load(&card, &bytes, device).unwrap();
        let shape = [2, 1, 8, 8];
        let x: Vec<f32> = (0..128).map(|i| ((i * 37) % 101) as f32 / 50.0 - 1.0).collect();
        let v: Vec<f32> = (0..128).map(|i| if (i * 7) % 3 == 0 { 1.0 } else { -1.0 }).collect();
        let probe = Tensor::<4>::from_data(TensorData::new(v, shape), device);
        let x = Tensor::<4>::from_data(TensorData::new(x, shape), device).autodiff().require_grad();
        let s = scorefield::ScoreFn::score(&model, x.clone(), 0.5);
        let grads = (s.clone() * probe.clone()).sum().backward();
        let g = x.grad(&grads).unwrap();
        let div = (g * probe.clone()).sum_dims(&[1, 2, 3]).reshape([2, 1]);
        let name = if random { "U-Net score, random weights: [score, vᵀ∂s/∂x v]" } else { "U-Net score, fresh (zero last layer): [score, vᵀ∂s/∂x v]" };
        out.push((name, read(Tensor::cat(vec![div, s.without_autodiff().reshape([2, 64])], 1))));
    }
    out
}

fn main() {
    let gpu = scorefield::backend::wgpu_native().expect("a wgpu device (lavapipe: mesa-vulkan-drivers)");
    println!("wgpu adapter: {}; fusion {}", gpu.adapter, if cfg!(feature = "fusion") { "on" } else { "off" });
    let cpu = cases(&Device::flex());
    let gpu = cases(&gpu.device);
    for ((name, a), (_, b)) in cpu.iter().zip(&gpu) {
        let diff = a.iter().zip(b).map(|(p, q)| (p - q).abs()).fold(0.0f32, f32::max);
        println!("{name}: max |cpu − wgpu| = {diff:e}\n  cpu  {:?}\n  wgpu {:?}", &a[..a.len().min(6)], &b[..b.len().min(6)]);
    }
}
