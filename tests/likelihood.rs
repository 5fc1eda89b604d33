//! Likelihood through the probability-flow ODE against the exact density of Gaussian data.

mod common;

use burn::prelude::*;
use common::{Gaussian, rows};
use pollster::block_on;
use scorefield::Sde;
use scorefield::likelihood::{self, LikelihoodOptions, References, dequantize, log_likelihood};
use scorefield::sampling::{Flow, Step, no_observer};
use scorefield::{SampleError, store::ModelCard};

/// A 1×8×8 Gaussian image (mean 0.5, std 0.2, correlation 0.5^|i−j|). With the exact score, the
/// ODE's density at ε is p_ε = N(m μ, m² Σ + σ² I), known in closed form. Bits/dim
/// (−log p / (D ln 2)) of 128 images from the ODE with 4 Hutchinson probes each equals the
/// analytic value within 0.02 on average; single images within 0.3 (one probe's estimate of the
/// correlated Jacobian's trace has a standard deviation near 0.15 bits/dim here).
#[test]
fn bits_per_dim_of_gaussian_data_match_the_analytic_value() {
    let device = Device::flex();
    for sde in [Sde::ve(20.0), Sde::vp(), Sde::sub_vp()] {
        let d = 64;
        let cov = (0..d * d).map(|k| 0.04 * 0.5f64.powi(((k / d) as i32 - (k % d) as i32).abs())).collect();
        let target = Gaussian { sde, mean: vec![0.5; d], cov };
        let x = Tensor::<4>::from_data(TensorData::new(sample(&target, 128, 99), [128, 1, 8, 8]), &device);
        let (data, _) = rows(x.clone());
        let result = block_on(log_likelihood(&target, &sde, x, &LikelihoodOptions { probes: 4, ..Default::default() }, &mut no_observer())).unwrap();
        let bpd = result.bits_per_dim();
        let analytic: Vec<f64> = data.chunks(d).map(|img| -target.log_density(img, sde.eps()) / (d as f64 * std::f64::consts::LN_2)).collect();
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        let worst = bpd.iter().zip(&analytic).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
        println!("{}: ODE {:.4} bits/dim, analytic {:.4}, worst image {worst:.4}, {} evals", sde.name(), mean(&bpd), mean(&analytic), result.evals);
        assert!((mean(&bpd) - mean(&analytic)).abs() < 0.02, "{}", sde.name());
        assert!(worst < 0.3, "{}: worst image off by {worst}", sde.name());
    }
}

/// Exact samples via a Cholesky factor and the project's seeded host generator.
fn sample(target: &Gaussian, n: usize, seed: u64) -> Vec<f32> {
    let d = target.dim();
    let l = target.cholesky();
    let mut rng = scorefield::rng::SplitMix::new(seed);
    let mut out = Vec::with_capacity(n * d);
    for _ in 0..n {
        let z: Vec<f64> = (0..d).map(|_| rng.normal()).collect();
        for i in 0..d {
            out.push((target.mean[i] + (0..=i).map(|k| l[i * d + k] * z[k]).sum::<f64>()) as f32);
        }
    }
    out
}

/// Dequantisation maps pixel k into [(k)/256, (k+1)/256) of the range, reproducibly per seed.
#[test]
fn dequantisation_stays_in_each_pixels_bin() {
    let pixels: Vec<u8> = (0..=255).collect();
    let a = dequantize(&pixels, [0.0, 1.0], 1);
    assert_eq!(a, dequantize(&pixels, [0.0, 1.0], 1));
    assert_ne!(a, dequantize(&pixels, [0.0, 1.0], 2));
    for (k, v) in a.iter().enumerate() {
        assert!(*v >= k as f32 / 256.0 && *v < (k + 1) as f32 / 256.0, "pixel {k} → {v}");
    }
    let b = dequantize(&pixels, [-1.0, 1.0], 1);
    assert!(b.iter().all(|v| (-1.0..1.0).contains(v)));
}

/// The solve reports each accepted step with x(t) and progress (t − ε)/(T − ε): increasing, and 1
/// exactly at the last step; a cancel from the observer stops it at that step with `Cancelled`.
#[test]
fn the_solve_reports_progress_and_can_be_cancelled() {
    let device = Device::flex();
    let sde = Sde::ve(20.0);
    let d = 16;
    let target = Gaussian { sde, mean: vec![0.5; d], cov: (0..d * d).map(|k| if k / d == k % d { 0.04 } else { 0.0 }).collect() };
    let x = || Tensor::<4>::from_data(TensorData::new(vec![0.5f32; 2 * d], [2, 1, 4, 4]), &device);
    let mut seen = Vec::new();
    let mut record = |s: &Step<'_>| {
        assert_eq!(s.x.dims(), [2, 1, 4, 4]);
        seen.push(s.progress);
        Flow::Continue
    };
    block_on(log_likelihood(&target, &sde, x(), &LikelihoodOptions::default(), &mut record)).unwrap();
    assert!(seen.len() > 3, "{seen:?}");
    assert!(seen.windows(2).all(|p| p[0] < p[1]) && seen[0] > 0.0, "{seen:?}");
    assert_eq!(*seen.last().unwrap(), 1.0);

    let mut calls = 0;
    let mut cancel_at_3 = |_: &Step<'_>| {
        calls += 1;
        if calls == 3 { Flow::Cancel } else { Flow::Continue }
    };
    match block_on(log_likelihood(&target, &sde, x(), &LikelihoodOptions::default(), &mut cancel_at_3)) {
        Err(SampleError::Cancelled { step }) => assert_eq!(step, 3),
        other => panic!("expected a cancel at step 3, got {:?}", other.map(|l| l.logp)),
    }
}

/// Hutchinson's probes are ±1 with E[v vᵀ] = I: each row's mean is within 4 standard errors
/// (4/√D) of 0, a seed gives the same signs every time (the browser and the CLI draw them on the
/// host for that reason), and another seed other signs.
#[test]
fn probes_are_reproducible_rademacher_signs() {
    let (rows, dim) = (8, 784);
    let v = likelihood::probes(3, rows, dim);
    assert_eq!(v, likelihood::probes(3, rows, dim));
    assert_ne!(v, likelihood::probes(4, rows, dim));
    assert!(v.iter().all(|&s| s == 1.0 || s == -1.0));
    for row in v.chunks(dim) {
        let mean = row.iter().sum::<f32>() / dim as f32;
        assert!(mean.abs() < 4.0 / (dim as f32).sqrt(), "row mean {mean}");
    }
}

/// The generated reference images: the scribble is a stroke (between 3 % and 30 % of the pixels
/// inked, some fully) on images of any size down to 1×1, the same for a seed; the noise covers
/// 0..=255 with mean near 127.5.
#[test]
fn reference_images_are_reproducible() {
    let s = likelihood::scribble(28, 28, 0);
    assert_eq!(s, likelihood::scribble(28, 28, 0));
    let inked = s.iter().filter(|&&p| p > 127).count() as f64 / s.len() as f64;
    assert!((0.03..0.30).contains(&inked), "inked share {inked}");
    assert!(s.contains(&255));
    for side in [1, 8, 32] {
        let s = likelihood::scribble(side, side, 0);
        assert!(s.len() == side * side && s.contains(&255), "{side}×{side}");
    }
    let n = likelihood::uniform_noise(784 * 10, 0);
    let mean = n.iter().map(|&p| p as f64).sum::<f64>() / n.len() as f64;
    assert!((mean - 127.5).abs() < 4.0 * 73.9 / (n.len() as f64).sqrt(), "noise mean {mean}");
}

/// The shipped reference likelihoods of each model (the page's "how likely is this digit?")
/// belong to its shipped weights and were measured with the options the page sends: stale
/// values after new weights, or other options, fail here.
#[test]
fn shipped_references_match_the_shipped_weights() {
    for model in ["mnist.json", "emoji.json"] {
        references_match_weights(model);
    }
}

fn references_match_weights(model: &str) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("www/models");
    let card = ModelCard::from_json(&std::fs::read_to_string(dir.join(model)).unwrap()).unwrap();
    let name = card.likelihood_references.as_deref().expect("the shipped card names its likelihood references");
    let refs: References = serde_json::from_str(&std::fs::read_to_string(dir.join(name)).unwrap()).unwrap();
    assert_eq!((refs.format.as_str(), refs.version), (likelihood::REFERENCES_FORMAT, likelihood::REFERENCES_VERSION));
    let weights = std::fs::read(dir.join(&card.weights)).unwrap();
    assert_eq!(refs.weights_sha256, scorefield::io::sha256_hex(&weights), "{name} was measured with other weights: run `scorefield likelihood --references`");
    assert_eq!(refs.options, LikelihoodOptions::default());
    let names: Vec<&str> = refs.images.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["held-out", "scribble", "noise"]);
    for r in &refs.images {
        assert_eq!(r.pixels.len(), card.image.channels * card.image.height * card.image.width, "{}", r.name);
        assert!(r.bits_per_dim.is_finite() && r.bits_per_dim > 0.0, "{}", r.name);
    }
}
