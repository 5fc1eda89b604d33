//! `scorefield likelihood`: bits/dim of images through the probability-flow ODE.

use std::path::PathBuf;
use std::time::Instant;

use burn::prelude::*;
use clap::Args;
use scorefield::io::{self, NpyData};
use scorefield::likelihood::{self, LikelihoodOptions};

use super::{DeviceArg, device, load};

#[derive(Args)]
pub(crate) struct LikelihoodArgs {
    #[arg(long)]
    model: PathBuf,
    /// Images: .npy float32 in the card's range (continuous bits/dim), .npy uint8 or PNG (8-bit
    /// pixels, uniformly dequantised).
    #[arg(long)]
    images: PathBuf,
    #[arg(long, default_value_t = LikelihoodOptions::default().rtol)]
    rtol: f64,
    #[arg(long, default_value_t = LikelihoodOptions::default().atol)]
    atol: f64,
    /// Hutchinson probes per image.
    #[arg(long, default_value_t = LikelihoodOptions::default().probes)]
    probes: usize,
    /// Seed of the probes and of the dequantisation noise.
    #[arg(long, default_value_t = LikelihoodOptions::default().seed)]
    seed: u64,
    /// Images per ODE solve.
    #[arg(long, default_value_t = 64)]
    batch: usize,
    #[command(flatten)]
    device: DeviceArg,
}

pub(crate) fn run(a: LikelihoodArgs) -> Result<(), String> {
    let device = device(a.device.device)?;
    let (card, model) = load(&a.model, &device)?;
    let [c, h, w] = card.image_shape();
    let range = card.image.range;
    // (values, whether they came from 8-bit pixels)
    let (shape, values, quantized) = if a.images.extension().is_some_and(|e| e == "npy") {
        match io::read_npy(&a.images).map_err(|e| e.to_string())? {
            (shape, NpyData::F32(v)) => (shape, v, false),
            (shape, NpyData::U8(v)) => (shape, likelihood::dequantize(&v, range, a.seed), true),
        }
    } else {
        let (ih, iw, bytes) = io::read_png(&a.images, c).map_err(|e| e.to_string())?;
        ([1, c, ih, iw], likelihood::dequantize(&bytes, range, a.seed), true)
    };
    if shape[1..] != [c, h, w] {
        return Err(format!("{}: images have shape {:?}; the model needs [N, {c}, {h}, {w}]", a.images.display(), shape));
    }
    if let Some(v) = values.iter().find(|v| !v.is_finite()) {
        return Err(format!("{}: images contain {v}", a.images.display()));
    }
    let per_image = c * h * w;
    let options = LikelihoodOptions { rtol: a.rtol, atol: a.atol, seed: a.seed, probes: a.probes };
    let start = Instant::now();
    let mut all = Vec::new();
    for (chunk_index, chunk) in values.chunks(per_image * a.batch.max(1)).enumerate() {
        let n = chunk.len() / per_image;
        let x = Tensor::<4>::from_data(TensorData::new(chunk.to_vec(), [n, c, h, w]), &device);
        let result = pollster::block_on(likelihood::log_likelihood(&model, &model.sde, x, &options)).map_err(|e| e.to_string())?;
        let bpd = if quantized { result.dequantized_bits_per_dim(range) } else { result.bits_per_dim() };
        for (i, b) in bpd.iter().enumerate() {
            println!("image {}: {b:.4} bits/dim", chunk_index * a.batch.max(1) + i);
        }
        eprintln!("({} evaluations for {n} images)", result.evals);
        all.extend(bpd);
    }
    let mean = all.iter().sum::<f64>() / all.len() as f64;
    let kind = if quantized { "dequantised 8-bit" } else { "continuous" };
    println!("mean: {mean:.4} bits/dim over {} images ({kind}; {:.1}s)", all.len(), start.elapsed().as_secs_f64());
    Ok(())
}
