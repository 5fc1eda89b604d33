//! Native wgpu against the CPU backend, on a tiny model (the first kernels compile slowly on a
//! software Vulkan device such as Mesa's lavapipe). These tests need a wgpu device, so they are
//! ignored by a plain `cargo test` (reported as ignored, never as passed) and run with
//! `cargo test --release --features wgpu --test wgpu -- --ignored`, which `./build.sh test` does
//! once it has installed lavapipe; run so, a missing adapter fails them.

mod common;

/// The wgpu device; a test that runs without one fails, naming why.
#[cfg(feature = "wgpu")]
fn wgpu_device() -> scorefield::backend::Backend {
    scorefield::backend::wgpu_native().unwrap_or_else(|reason| panic!("no wgpu device: {reason} (install mesa-vulkan-drivers for a CPU Vulkan device)"))
}

#[cfg(feature = "wgpu")]
#[test]
#[ignore = "needs a wgpu device (Mesa's lavapipe will do): run with -- --ignored"]
fn wgpu_and_cpu_agree_on_a_tiny_model() {
    use burn::prelude::*;
    use pollster::block_on;
    use scorefield::sampling::{self, SampleOptions, Sampler, no_observer};
    use scorefield::{ScoreFn, store};

    let gpu = wgpu_device();
    println!("wgpu adapter: {}", gpu.adapter);
    let cpu = Device::flex();
    // The EDM U-Net with non-zero weights everywhere (attention and GroupNorm included).
    let (card, bytes) = common::tiny_unet(&cpu);
    let on_cpu = store::load(&card, &bytes, &cpu).unwrap();
    let on_gpu = store::load(&card, &bytes, &gpu.device).unwrap();

    let x: Vec<f32> = (0..2 * 64).map(|i| ((i * 37) % 101) as f32 / 50.0 - 1.0).collect();
    let score = |model: &scorefield::ScoreModel, device: &Device| {
        let x = Tensor::<4>::from_data(TensorData::new(x.clone(), [2, 1, 8, 8]), device);
        model.score(x, 0.3).into_data().try_to_vec::<f32>().unwrap()
    };
    let (a, b) = (score(&on_cpu, &cpu), score(&on_gpu, &gpu.device));
    let diff = a.iter().zip(&b).map(|(p, q)| (p - q).abs()).fold(0.0f32, f32::max);
    let scale = a.iter().map(|v| v.abs()).fold(0.0f32, f32::max);
    println!("max |cpu − wgpu| = {diff:e} (scores up to {scale})");
    assert!(diff <= 1e-3 * scale.max(1.0), "wgpu and cpu scores differ by {diff}");

    // A short stochastic run: the noise is drawn on the host per sample (`Noise::per_sample`), so
    // the GPU and the CPU draw the same numbers and end at the same samples, up to float error.
    let opts = SampleOptions { sampler: Sampler::EulerMaruyama, steps: 3, ..Default::default() };
    let run = |model: &scorefield::ScoreModel, device: &Device| {
        let out = block_on(sampling::sample(model, &model.sde, [2, 1, 8, 8], &opts, device, &mut no_observer())).unwrap();
        assert_eq!(out.x.dims(), [2, 1, 8, 8]);
        out.x.into_data().try_to_vec::<f32>().unwrap()
    };
    let (a, b) = (run(&on_cpu, &cpu), run(&on_gpu, &gpu.device));
    assert!(b.iter().all(|v| v.is_finite()));
    let diff = a.iter().zip(&b).map(|(p, q)| (p - q).abs()).fold(0.0f32, f32::max);
    println!("EM, 3 steps: max |cpu − wgpu| = {diff:e}");
    assert!(diff <= 1e-3, "the same seed gives other samples on wgpu than on the cpu (by {diff})");
}

/// The reproduction of what Burn's kernel fusion gets wrong (docs/PERFORMANCE.md, "Burn's
/// kernel fusion"), `examples/fusion_repro.rs`: vector–Jacobian products of small chains and of
/// a small U-Net's score, each on the CPU and on wgpu. The shipped builds (no fusion) agree on
/// every one; built with `--features wgpu,fusion` this test fails on the chains where a
/// convolution feeds a per-channel mean (group norm), e.g. [−6, 0] for the exact [−12, −12].
#[cfg(feature = "wgpu")]
#[path = "../examples/fusion_repro.rs"]
#[allow(dead_code)]
mod fusion_repro;

#[cfg(feature = "wgpu")]
#[test]
#[ignore = "needs a wgpu device (Mesa's lavapipe will do): run with -- --ignored"]
fn vector_jacobian_products_on_wgpu_are_the_cpus() {
    let gpu = wgpu_device();
    let cpu = fusion_repro::cases(&burn::prelude::Device::flex());
    let wgpu = fusion_repro::cases(&gpu.device);
    let mut wrong = Vec::new();
    for ((name, a), (_, b)) in cpu.iter().zip(&wgpu) {
        let diff = a.iter().zip(b).map(|(p, q)| (p - q).abs()).fold(0.0f32, f32::max);
        let scale = a.iter().map(|v| v.abs()).fold(1.0f32, f32::max);
        println!("{name}: max |cpu − wgpu| = {diff:e}");
        if diff > 1e-4 * scale {
            wrong.push(format!("{name}: cpu {:?}, wgpu {:?}", &a[..a.len().min(4)], &b[..b.len().min(4)]));
        }
    }
    assert!(wrong.is_empty(), "wgpu (fusion {}) differs from the CPU on: {wrong:#?}", if cfg!(feature = "fusion") { "on" } else { "off" });
}
