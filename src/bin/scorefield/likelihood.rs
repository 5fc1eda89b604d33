//! `scorefield likelihood`: bits/dim of images through the probability-flow ODE, or of the page's
//! reference images (`--references`).

use anyhow::anyhow;
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::prelude::*;
use clap::Args;
use scorefield::io::{self, NpyData};
use scorefield::likelihood::{self, LikelihoodOptions, References, Reference};
use scorefield::store::ModelCard;

use super::{DeviceArg, device, load};

#[derive(Args)]
pub(crate) struct LikelihoodArgs {
    /// Model card.
    #[arg(long)]
    model: PathBuf,
    /// Images: .npy float32 in the card's range (continuous bits/dim), .npy uint8 or PNG (8-bit
    /// pixels, uniformly dequantised).
    #[arg(long, required_unless_present = "references", conflicts_with = "references")]
    images: Option<PathBuf>,
    /// Instead of `--images`: measure the page's reference images (a held-out image of the
    /// model's training data, a scribble, noise), one solve each with the library's options
    /// (which the page sends), and write them with their bits/dim to this JSON file (the card's
    /// `likelihood_references`).
    #[arg(long)]
    references: Option<PathBuf>,
    /// The training data of `--references`, whose held-out image is the first reference.
    #[command(flatten)]
    data: super::data::DataChoice,
    /// RK45 relative tolerance of the probability-flow ODE.
    #[arg(long, default_value_t = LikelihoodOptions::default().rtol)]
    rtol: f64,
    /// RK45 absolute tolerance of the probability-flow ODE.
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

pub(crate) fn run(a: LikelihoodArgs) -> anyhow::Result<()> {
    let device = device(a.device.device)?;
    let (card, model) = load(&a.model, &device)?;
    if let Some(out) = &a.references {
        return write_references(&a, &card, &model, out, &device);
    }
    let images = a.images.clone().expect("clap requires --images without --references");
    let [c, h, w] = card.image_shape();
    let range = card.image.range;
    // (values, whether they came from 8-bit pixels)
    let (shape, values, quantized) = if images.extension().is_some_and(|e| e == "npy") {
        match io::read_npy(&images)? {
            (shape, NpyData::F32(v)) => (shape, v, false),
            (shape, NpyData::U8(v)) => (shape, likelihood::dequantize(&v, range, a.seed), true),
        }
    } else {
        let (ih, iw, bytes) = io::read_png(&images, c)?;
        ([1, c, ih, iw], likelihood::dequantize(&bytes, range, a.seed), true)
    };
    if shape[1..] != [c, h, w] {
        return Err(anyhow!("{}: images have shape {:?}; the model needs [N, {c}, {h}, {w}]", images.display(), shape));
    }
    if let Some(v) = values.iter().find(|v| !v.is_finite()) {
        return Err(anyhow!("{}: images contain {v}", images.display()));
    }
    let per_image = c * h * w;
    let options = LikelihoodOptions { rtol: a.rtol, atol: a.atol, seed: a.seed, probes: a.probes };
    let start = Instant::now();
    let mut all = Vec::new();
    for (chunk_index, chunk) in values.chunks(per_image * a.batch.max(1)).enumerate() {
        let n = chunk.len() / per_image;
        let x = Tensor::<4>::from_data(TensorData::new(chunk.to_vec(), [n, c, h, w]), &device);
        let result = pollster::block_on(likelihood::log_likelihood(scorefield::compose::as_score(&model, "the likelihood")?, &model.sde, x, &options, &mut scorefield::sampling::no_observer()))?;
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

/// The page's reference images, measured one solve each with the library's options (the page's), written with the weights' SHA-256 so that a stale file
/// is noticed.
fn write_references(a: &LikelihoodArgs, card: &ModelCard, model: &scorefield::ScoreModel, out: &Path, device: &Device) -> anyhow::Result<()> {
    let [c, h, w] = card.image_shape();
    let spec = a.data.spec()?;
    let (_, held) = spec.load_split(&a.data.cache())?;
    if held.shape != [c, h, w] || held.is_empty() {
        return Err(anyhow!("--data {}: its held-out images are {:?} ({}), the model makes {:?}", a.data.name, held.shape, held.len(), [c, h, w]));
    }
    let options = LikelihoodOptions::default();
    let range = card.image.range;
    let i = held.len() * HELD_OUT_REFERENCE_PERMILLE / 1000;
    let class = held.classes.get(held.labels[i] as usize).map_or(String::new(), |k| format!("{k}, "));
    let images = [
        ("held-out", format!("a held-out {} ({class}not trained on)", card.subject.one), held.image(i).to_vec()),
        ("scribble", "a scribble".to_string(), scribble_on(&held, options.seed)),
        ("noise", "uniform noise".to_string(), likelihood::uniform_noise(c * h * w, options.seed)),
    ];
    let mut references = Vec::new();
    for (name, label, pixels) in images {
        let start = Instant::now();
        let values = likelihood::dequantize(&pixels, range, options.seed);
        let x = Tensor::<4>::from_data(TensorData::new(values, [1, c, h, w]), device);
        let result = pollster::block_on(likelihood::log_likelihood(scorefield::compose::as_score(model, "the likelihood")?, &model.sde, x, &options, &mut scorefield::sampling::no_observer())).map_err(|e| anyhow!("{name}: {e}"))?;
        let bits_per_dim = result.dequantized_bits_per_dim(range)[0];
        eprintln!("{name}: {bits_per_dim:.4} bits/dim ({} evaluations, {:.1}s)", result.evals, start.elapsed().as_secs_f64());
        references.push(Reference { name: name.into(), label, pixels, bits_per_dim, evals: result.evals });
    }
    let weights = std::fs::read(a.model.with_file_name(&card.weights)).map_err(|e| anyhow!("{}: {e}", card.weights))?;
    let file = References::new(&card.name, io::sha256_hex(&weights), options, references);
    std::fs::write(out, file.to_json()).map_err(|e| anyhow!("{}: {e}", out.display()))?;
    println!("wrote {} (name it in the card's `likelihood_references`)", out.display());
    Ok(())
}

/// Which held-out image the page offers, as a share (‰) of the class-ordered held-out set: for
/// the MNIST digits, image 700 of 1,000, a 7.
const HELD_OUT_REFERENCE_PERMILLE: usize = 700;

/// The scribble reference in the data's colours: a stroke of ink in every channel, dark on the
/// images' light background where they have one ([`scorefield::data::Images::background`]: the
/// emoji, most pictures), light on dark otherwise (the digits).
fn scribble_on(held: &scorefield::data::Images, seed: u64) -> Vec<u8> {
    let [c, h, w] = held.shape;
    let ink = likelihood::scribble(h, w, seed);
    let plane: Vec<u8> = if held.background().is_some() { ink.iter().map(|v| 255 - v).collect() } else { ink };
    plane.repeat(c)
}
