//! Encoding into the prior and interpolating there (Song et al. 2021, §4.3).

mod common;

use burn::prelude::*;
use common::Gaussian;
use pollster::block_on;
use scorefield::Sde;
use scorefield::likelihood::References;
use scorefield::sampling::interpolate::interpolate;
use scorefield::sampling::ode::{encode_rk45, sample_rk45};
use scorefield::sampling::{DEFAULT_ODE_TOL, no_observer};
use scorefield::store::files;

/// With the exact score of Gaussian data the probability-flow ODE is an exact bijection: for
/// N(μ, s² I) data on the VE SDE the code is x(T) = μ + (x − μ)·√((s² + σ(T)²)/(s² + σ(ε)²)), and
/// decoding the code gives x back, both to the solver's tolerance.
#[test]
fn encoding_is_the_closed_form_map_and_decoding_inverts_it() {
    let device = Device::flex();
    let sde = Sde::ve(20.0);
    let (d, s2) = (16, 0.04);
    let target = Gaussian { sde, mean: vec![0.5; d], cov: (0..d * d).map(|k| if k / d == k % d { s2 } else { 0.0 }).collect() };
    let values: Vec<f32> = (0..2 * d).map(|i| 0.5 + 0.3 * ((i as f32) * 0.7).sin()).collect();
    let x = Tensor::<4>::from_data(TensorData::new(values.clone(), [2, 1, 4, 4]), &device);
    let code = block_on(encode_rk45(&target, &sde, x, DEFAULT_ODE_TOL, DEFAULT_ODE_TOL, &mut no_observer())).unwrap();
    let (sigma_eps, sigma_t) = (sde.marginal(sde.eps()).1, sde.marginal(1.0).1);
    let scale = ((s2 + sigma_t * sigma_t) / (s2 + sigma_eps * sigma_eps)).sqrt();
    let got: Vec<f32> = code.clone().into_data().try_to_vec::<f32>().unwrap();
    for (g, v) in got.iter().zip(&values) {
        let expected = 0.5 + (*v as f64 - 0.5) * scale;
        assert!((*g as f64 - expected).abs() < 1e-3 * expected.abs().max(1.0), "code {g}, closed form {expected}");
    }
    let back: Vec<f32> = block_on(sample_rk45(&target, &sde, code, DEFAULT_ODE_TOL, DEFAULT_ODE_TOL, &mut no_observer())).unwrap().into_data().try_to_vec::<f32>().unwrap();
    let worst = back.iter().zip(&values).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
    assert!(worst < 1e-3, "decoding the code is off by {worst}");
}

/// The shipped model, the page's setting: encoding the held-out reference digit and the scribble
/// and decoding their codes gives them back (RMS per pixel, in the [0, 1] range, below 0.002),
/// the path's ends are those reconstructions, and its middle is a different image.
#[test]
fn the_shipped_model_reconstructs_what_it_encodes() {
    let device = Device::flex();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("www/models");
    let (card, model) = files::load(&dir.join("mnist.json"), &device).unwrap();
    let refs: References = serde_json::from_str(&std::fs::read_to_string(dir.join(card.likelihood_references.as_ref().unwrap())).unwrap()).unwrap();
    let pixels: Vec<f32> = refs.images[..2].iter().flat_map(|r| r.pixels.iter().map(|&k| k as f32 / 255.0)).collect();
    let x = Tensor::<4>::from_data(TensorData::new(pixels.clone(), [2, 1, 28, 28]), &device);
    let path = block_on(interpolate(&model, &model.sde, x, 5, DEFAULT_ODE_TOL, DEFAULT_ODE_TOL, &mut no_observer())).unwrap();
    println!("reconstruction RMS: held-out {:.5}, scribble {:.5}; {} evaluations", path.reconstruction_rms[0], path.reconstruction_rms[1], path.evals);
    assert!(path.reconstruction_rms.iter().all(|&r| r < 0.002), "{:?}", path.reconstruction_rms);
    let frames: Vec<f32> = path.frames.into_data().try_to_vec::<f32>().unwrap();
    let rms = |a: &[f32], b: &[f32]| (a.iter().zip(b).map(|(x, y)| ((x - y) as f64).powi(2)).sum::<f64>() / a.len() as f64).sqrt();
    assert!(rms(&frames[..784], &pixels[..784]) < 0.02 && rms(&frames[4 * 784..], &pixels[784..]) < 0.02);
    let middle = &frames[2 * 784..3 * 784];
    assert!(rms(middle, &pixels[..784]) > 0.05 && rms(middle, &pixels[784..]) > 0.05, "the middle of the path is one of its ends");
}
