//! `scorefield average`: post-hoc averaging of a run's weight snapshots ([`scorefield::posthoc`]),
//! e.g. a longer average than the trainer's EMA, as the mean of its snapshots.

use anyhow::anyhow;
use std::path::PathBuf;

use clap::Args;
use scorefield::store::{self, files};
use scorefield::{Device, posthoc};

#[derive(Args)]
pub(crate) struct AverageArgs {
    /// The snapshots' model cards (comma-separated), all of the same network.
    #[arg(long, value_delimiter = ',', required = true)]
    snapshots: Vec<PathBuf>,
    /// One coefficient per snapshot, summing to 1 (comma-separated; negative ones allowed, e.g.
    /// to take an EMA's earlier part out). Default: the plain mean.
    #[arg(long, value_delimiter = ',', allow_hyphen_values = true)]
    coefficients: Vec<f64>,
    /// f32, f16 or int8, as in `scorefield convert`.
    #[arg(long, default_value = "f16")]
    dtype: String,
    /// The new card (its weights file is named after it).
    #[arg(long)]
    out: PathBuf,
}

pub(crate) fn run(a: AverageArgs) -> anyhow::Result<()> {
    let dtype = crate::convert::dtype(&a.dtype)?;
    let n = a.snapshots.len();
    let coefficients = if a.coefficients.is_empty() { vec![1.0 / n as f64; n] } else { a.coefficients.clone() };
    if coefficients.len() != n {
        return Err(anyhow!("--coefficients: {} given for {n} snapshots", coefficients.len()));
    }
    let mut cards = Vec::with_capacity(n);
    let mut bytes = Vec::with_capacity(n);
    for path in &a.snapshots {
        let card = files::read_card(path)?;
        let source = files::weights_path(path, &card);
        bytes.push(std::fs::read(&source).map_err(|e| anyhow!("{}: {e}", source.display()))?);
        cards.push(card);
    }
    let first = &cards[0];
    for (path, card) in a.snapshots.iter().zip(&cards).skip(1) {
        let same = card.architecture == first.architecture && card.parameterisation == first.parameterisation && card.sde == first.sde && card.image == first.image;
        if !same {
            return Err(anyhow!("{}: another network, parameterisation, SDE or image than {}; only snapshots of one run average", path.display(), a.snapshots[0].display()));
        }
    }
    let pairs: Vec<(&[u8], f64)> = bytes.iter().map(|b| b.as_slice()).zip(coefficients.iter().copied()).collect();
    let averaged = posthoc::combine(&pairs, dtype)?;
    // Loads as the card's network, or is refused.
    store::load(first, &averaged, &Device::flex())?;
    let stem = super::out_stem(&a.out)?;
    let latest = cards.iter().max_by_key(|c| c.training.images_seen.unwrap_or(0)).unwrap_or(first);
    let mut card = latest.clone();
    card.name = stem.to_string();
    card.weights = format!("{stem}.safetensors");
    // What the latest snapshot's card measured or logged belongs to it, not to the average.
    card.likelihood_references = None;
    card.metrics.clear();
    card.training.final_loss = None;
    card.training.learning_rate_schedule = card.training.learning_rate_schedule.map(|s| format!("the latest snapshot's: {s}"));
    let terms: Vec<String> = a.snapshots.iter().zip(&coefficients).map(|(p, c)| format!("{c} × {}", p.display())).collect();
    card.training.command = Some(format!("scorefield average: {}", terms.join(" + ")));
    let target = files::write(&a.out, &card, &averaged)?;
    println!("{} -> {} ({} bytes, {dtype:?})", terms.join(" + "), target.display(), averaged.len());
    Ok(())
}
