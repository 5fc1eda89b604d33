//! `scorefield inpaint`: the masked part of an image filled in, with any sampler.

use anyhow::anyhow;
use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Args;
use scorefield::io::{self, NpyData};
use scorefield::compose::RunScore;
use scorefield::sampling::{self, Known};
use scorefield::store::ModelCard;

use super::sample::{OutputArgs, SamplerArgs, progress, read_tensor, write_outputs};
use super::{device, load};

#[derive(Args)]
pub(crate) struct InpaintArgs {
    #[command(flatten)]
    sampler: SamplerArgs,
    /// The image (PNG of the model's height × width, or .npy [1, C, H, W] in the card's range).
    #[arg(long)]
    image: PathBuf,
    /// The mask: PNG of the same size, white (≥ 128) = keep, black = generate; or .npy in the
    /// card's range (float32: 1 = keep, 0 = generate; uint8: 255 = keep, 0 = generate).
    #[arg(long)]
    mask: PathBuf,
    /// Number of completions of the image (default: the widget's).
    #[arg(long, default_value_t = scorefield::frontend::BATCH.inpaint)]
    n: usize,
    #[command(flatten)]
    output: OutputArgs,
}

/// Reads one image as values in the card's range: PNG (8-bit) or .npy.
fn read_image(path: &Path, card: &ModelCard, what: &str) -> anyhow::Result<Vec<f32>> {
    let [c, h, w] = card.image_shape();
    let [lo, hi] = card.image.range;
    if path.extension().is_some_and(|e| e == "npy") {
        let (shape, data) = io::read_npy(path)?;
        if shape[1..] != [c, h, w] || shape[0] != 1 {
            return Err(anyhow!("{}: {what} has shape {shape:?}; the model needs [1, {c}, {h}, {w}]", path.display()));
        }
        return Ok(match data {
            NpyData::F32(v) => v,
            NpyData::U8(v) => v.into_iter().map(|b| lo + (hi - lo) * b as f32 / 255.0).collect(),
        });
    }
    let (ih, iw, bytes) = io::read_png(path, c)?;
    if (ih, iw) != (h, w) {
        return Err(anyhow!("{}: {what} is {iw}×{ih} pixels; the model needs {w}×{h}", path.display()));
    }
    Ok(bytes.into_iter().map(|b| lo + (hi - lo) * b as f32 / 255.0).collect())
}

pub(crate) fn run(a: InpaintArgs) -> anyhow::Result<()> {
    let device = device(a.sampler.device.device)?;
    let (card, model) = load(&a.sampler.model, &device)?;
    let options = a.sampler.options(&card)?;
    let [c, h, w] = card.image_shape();
    let image = read_image(&a.image, &card, "the image")?;
    let [lo, hi] = card.image.range;
    let mask: Vec<f32> = read_image(&a.mask, &card, "the mask")?.into_iter().map(|v| if (v - lo) / (hi - lo) >= 0.5 { 1.0 } else { 0.0 }).collect();
    sampling::validate_batch([a.n, c, h, w])?;
    let images: Vec<f32> = image.iter().copied().cycle().take(a.n * c * h * w).collect();
    let known = Known::from_host(&images, &mask, [a.n, c, h, w], card.image.range, &device)?;
    let start = Instant::now();
    let mut observer = progress("inpainting");
    let guide = a.sampler.guide(&card, &device)?;
    let worse = a.sampler.worse(&card, &device)?;
    let score = RunScore::new(&model, worse.as_ref().map(|(bad, g)| (bad, *g)), guide.as_ref().map(|(c, g)| (c, g.clone())))?;
    let out = pollster::block_on(score.inpaint(&known, &options, &mut observer))?;
    let batch = pollster::block_on(read_tensor(out.x))?;
    eprintln!();
    let kept = mask.iter().filter(|&&m| m == 1.0).count();
    println!("{} completions with {} in {:.2}s; {kept} of {} pixels kept", a.n, options.sampler.name(), start.elapsed().as_secs_f64(), mask.len());
    write_outputs(&batch, &card, &a.output)
}
