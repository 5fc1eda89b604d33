//! Same seed, same samples (its own test binary, so nothing else draws from the device meanwhile).

mod common;

use burn::prelude::*;
use pollster::block_on;
use scorefield::sampling::{self, SampleOptions, Sampler, no_observer};

#[test]
fn same_seed_gives_same_samples_on_the_same_device() {
    let device = Device::flex();
    let (card, bytes) = common::tiny_unet(&device);
    let model = scorefield::store::load(&card, &bytes, &device).unwrap();
    for sampler in [Sampler::EulerMaruyama, Sampler::PredictorCorrector, Sampler::OdeRk45, Sampler::EdmHeun, Sampler::DpmSolver2M] {
        let run = |seed| {
            // edm-heun with churn, so that the seed matters to it too.
            let opts = SampleOptions { sampler, steps: 5, seed, rtol: 1e-3, atol: 1e-3, churn: 10.0, ..Default::default() };
            let out = block_on(sampling::sample(&model, &model.sde, [3, 1, 8, 8], &opts, &device, &mut no_observer())).unwrap();
            out.x.into_data().try_to_vec::<f32>().unwrap()
        };
        let (a, b, c) = (run(42), run(42), run(43));
        assert_eq!(a, b, "{}: same seed, different samples", sampler.name());
        assert_ne!(a, c, "{}: different seeds, same samples", sampler.name());
        assert!(a.iter().all(|v| v.is_finite()));
    }
}

/// Per-sample noise (`Noise::per_sample`): image i of a seed is the same whether it is drawn in
/// one batch of 5 or in parts of 2 and 3 (the second part starting at `first_sample` = 2), for
/// every sampler the catalog marks `per_sample`, and for inpainting, bit for bit on the CPU. The
/// batch-coupled ones (`pc`'s batch-averaged corrector norms, `ode-rk45`'s step size shared by the
/// batch) are marked so because their parts do differ (RK45's by about its tolerance).
#[test]
fn a_sample_does_not_depend_on_the_batch_it_is_drawn_in() {
    use scorefield::sampling::inpaint::{Known, inpaint};
    let device = Device::flex();
    let (card, bytes) = common::tiny_unet(&device);
    let model = scorefield::store::load(&card, &bytes, &device).unwrap();
    let pixels = 64;
    let image: Vec<f32> = (0..5 * pixels).map(|i| ((i * 13) % 17) as f32 / 16.0).collect();
    let mask: Vec<f32> = (0..pixels).map(|p| (p < 24) as u8 as f32).collect();
    for sampler in Sampler::ALL {
        let opts = SampleOptions { sampler, steps: 4, seed: 9, rtol: 1e-5, atol: 1e-5, churn: 10.0, ..Default::default() };
        let draw = |first: usize, n: usize, inpainting: bool| {
            let opts = SampleOptions { first_sample: first as u64, ..opts.clone() };
            let out = if inpainting {
                let known = Known::from_host(&image[first * pixels..(first + n) * pixels], &mask, [n, 1, 8, 8], [0.0, 1.0], &device).unwrap();
                block_on(inpaint(&model, &model.sde, &known, &opts, &mut no_observer()))
            } else {
                block_on(sampling::sample(&model, &model.sde, [n, 1, 8, 8], &opts, &device, &mut no_observer()))
            };
            out.unwrap().x.into_data().try_to_vec::<f32>().unwrap()
        };
        for inpainting in [false, true] {
            if inpainting && sampler == Sampler::OdeRk45 {
                continue; // inpainting refuses the adaptive solver
            }
            let whole = draw(0, 5, inpainting);
            let parts = [draw(0, 2, inpainting), draw(2, 3, inpainting)].concat();
            let diff = whole.iter().zip(&parts).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
            let what = format!("{} ({})", sampler.name(), if inpainting { "inpainting" } else { "sampling" });
            if sampler.about().per_sample {
                assert!(diff == 0.0, "{what}: the parts differ from the whole batch by {diff}");
            } else {
                assert!(diff > 0.0, "{what}: marked batch-coupled, but its parts equal the whole batch");
            }
        }
    }
}

/// Seeds do not share images: with a deterministic sampler (the probability-flow ODE by
/// DPM-Solver++(2M), whose only randomness is the first draw), the first 16 images of each seed
/// 1..=100 are 1,600 different arrays, and image b of seed a is not image a of seed b. The first
/// draw of every image is compared too (the prior noise decides a deterministic sample), over the
/// same 1,600 images. On the old key derivation seed 1's image 2 was seed 2's image 1, and image k
/// of seed k the same array for every k.
#[test]
fn no_two_seeds_share_an_image() {
    use std::collections::HashSet;
    let device = Device::flex();
    let (card, bytes) = common::tiny_unet(&device);
    let model = scorefield::store::load(&card, &bytes, &device).unwrap();
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<u32>>();
    let mut priors = HashSet::new();
    let mut samples = HashSet::new();
    let mut by_seed = Vec::new();
    for seed in 1..=100u64 {
        let mut noise = sampling::Noise::per_sample(seed, 0);
        let prior = noise.normal([16, 1, 8, 8], 1.0, &device).into_data().try_to_vec::<f32>().unwrap();
        let opts = SampleOptions { sampler: Sampler::DpmSolver2M, steps: 2, seed, ..Default::default() };
        let out = block_on(sampling::sample(&model, &model.sde, [16, 1, 8, 8], &opts, &device, &mut no_observer())).unwrap();
        let x = out.x.into_data().try_to_vec::<f32>().unwrap();
        for (p, s) in prior.chunks(64).zip(x.chunks(64)) {
            assert!(priors.insert(bits(p)), "seed {seed}: a first draw another image already had");
            assert!(samples.insert(bits(s)), "seed {seed}: an image another seed or index already drew");
        }
        by_seed.push(x);
    }
    // Seeds 1..=16 against their indices 1..=15 (index 0 is image 0): a's image b against b's image a.
    for a in 1..=15usize {
        for b in (a + 1)..=15 {
            assert_ne!(by_seed[a - 1][b * 64..(b + 1) * 64], by_seed[b - 1][a * 64..(a + 1) * 64], "seed {a}'s image {b} is seed {b}'s image {a}");
        }
    }
}
