//! `scorefield data`: fetch, check and cache a training set (the MNIST digits, the emoji), or
//! read a folder of your own pictures; prints what it holds and can write a grid of it.

use anyhow::anyhow;
use std::path::PathBuf;

use clap::Args;
use scorefield::data::DataSpec;
use scorefield::data::folder::Fit;

#[derive(Args)]
pub(crate) struct DataArgs {
    /// `mnist`, `emoji`, or the path of a folder of PNG/JPEG pictures (subfolders name classes).
    #[arg(default_value = "mnist")]
    pub(crate) data: String,
    #[command(flatten)]
    pub(crate) options: DataOptions,
    /// Write a grid of the first ten training images of each class (PNG).
    #[arg(long)]
    pub(crate) preview: Option<PathBuf>,
}

/// How the images of a data set are made and where they are cached.
#[derive(Args)]
pub(crate) struct DataOptions {
    /// Side of the square images (emoji: 32; a folder: 32; MNIST is 28×28 and takes none).
    #[arg(long)]
    pub(crate) side: Option<usize>,
    /// How a folder's pictures become square: crop (the centre) or pad (on white).
    #[arg(long, default_value = "crop")]
    pub(crate) fit: Fit,
    /// Channels of a folder's images: 3 (RGB) or 1 (grey).
    #[arg(long, default_value_t = 3)]
    pub(crate) channels: usize,
    /// Cache folder of the data (default $SCOREFIELD_CACHE or ~/.cache/scorefield).
    #[arg(long)]
    pub(crate) cache: Option<PathBuf>,
}

impl DataOptions {
    /// The data set named `data` (`mnist`, `emoji` or a folder's path) with these options.
    pub(crate) fn spec(&self, data: &str) -> anyhow::Result<DataSpec> {
        if data == "mnist" && self.side.is_some_and(|s| s != scorefield::data::mnist::SIDE) {
            return Err(anyhow!("the MNIST digits are {0}×{0}; --side does not apply", scorefield::data::mnist::SIDE));
        }
        Ok(DataSpec::parse(data, self.side, self.fit, self.channels)?)
    }

    pub(crate) fn cache(&self) -> PathBuf {
        self.cache.clone().unwrap_or_else(scorefield::data::cache_dir)
    }
}

/// The training set another command works on: `--data` and the same options.
#[derive(Args)]
pub(crate) struct DataChoice {
    /// `mnist`, `emoji`, or a folder of PNG/JPEG pictures (as for `scorefield data`).
    #[arg(long = "data", default_value = "mnist")]
    pub(crate) name: String,
    #[command(flatten)]
    pub(crate) options: DataOptions,
}

impl DataChoice {
    pub(crate) fn spec(&self) -> anyhow::Result<DataSpec> {
        self.options.spec(&self.name)
    }

    pub(crate) fn cache(&self) -> PathBuf {
        self.options.cache()
    }
}

pub(crate) fn run(a: DataArgs) -> anyhow::Result<()> {
    let spec = a.options.spec(&a.data)?;
    let (train, held) = spec.load_split(&a.options.cache())?;
    let [c, h, w] = train.shape;
    println!("{}: {} images of {h}×{w}×{c} ({})", a.data, train.len() + held.len(), spec.card_dataset(&train));
    println!("split: {} for training, {} held out (whole groups)", train.len(), held.len());
    let (tc, hc) = (train.class_counts(), held.class_counts());
    for (k, name) in train.classes.iter().enumerate() {
        println!("  {name}: {} training, {} held out", tc[k], hc[k]);
    }
    if let Some(path) = &a.preview {
        let labels = &train.labels;
        let shown: Vec<usize> = (0..train.classes.len() as u16).flat_map(|k| (0..labels.len()).filter(move |&i| labels[i] == k).take(10)).collect();
        let batch = scorefield::io::Batch { shape: [shown.len(), c, h, w], data: train.floats(&shown) };
        scorefield::io::write_grid_png(path, &batch, [0.0, 1.0], 2)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
