//! `scorefield convert`: a model's weights in another format (f16 halves the download, int8
//! quarters it; the network still computes in f32).

use anyhow::anyhow;
use std::path::PathBuf;

use clap::Args;
use scorefield::Device;
use scorefield::store::{self, files};

#[derive(Args)]
pub(crate) struct ConvertArgs {
    /// Model card whose weights to convert.
    #[arg(long)]
    model: PathBuf,
    /// f32, f16, or int8 (8-bit kernels and matrices with one scale per output channel, the rest f16).
    #[arg(long)]
    dtype: String,
    /// With int8: quantise only the tensors whose names start with one of these prefixes
    /// (comma-separated); the others are stored in f16.
    #[arg(long, value_delimiter = ',')]
    int8_only: Vec<String>,
    /// The new card (its weights file is named after it).
    #[arg(long)]
    out: PathBuf,
}

/// A `--dtype` value.
pub(crate) fn dtype(name: &str) -> anyhow::Result<store::Dtype> {
    match name.to_ascii_lowercase().as_str() {
        "f16" => Ok(store::Dtype::F16),
        "f32" => Ok(store::Dtype::F32),
        "int8" => Ok(store::Dtype::Int8),
        other => Err(anyhow!("--dtype {other}: expected f32, f16 or int8")),
    }
}

pub(crate) fn run(a: ConvertArgs) -> anyhow::Result<()> {
    let dtype = dtype(&a.dtype)?;
    let mut card = files::read_card(&a.model)?;
    let source = files::weights_path(&a.model, &card);
    let bytes = std::fs::read(&source).map_err(|e| anyhow!("{}: {e}", source.display()))?;
    // Loads before and after: the converted file must be a valid model for the same card.
    store::load(&card, &bytes, &Device::flex())?;
    if !a.int8_only.is_empty() && dtype != store::Dtype::Int8 {
        anyhow::bail!("--int8-only needs --dtype int8");
    }
    let quantise = |name: &str| a.int8_only.is_empty() || a.int8_only.iter().any(|p| name.starts_with(p.as_str()));
    let converted = store::safetensors::convert_safetensors_where(&bytes, dtype, quantise)?;
    store::load(&card, &converted, &Device::flex())?;
    card.weights = format!("{}.safetensors", super::out_stem(&a.out)?);
    let target = files::write(&a.out, &card, &converted)?;
    println!("{} ({} bytes) -> {} ({} bytes, {:?})", source.display(), bytes.len(), target.display(), converted.len(), dtype);
    Ok(())
}
