//! `scorefield train-classifier`: the noise-conditional classifier of guided sampling, over the
//! classes of a model's training data (the digits, the emoji's categories, a folder's
//! subfolders), for the model's σ range; written beside the model as `NAME-classifier.json` (+
//! safetensors), its held-out accuracy against σ in the card.

use anyhow::anyhow;
use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Args;
use scorefield::nn::classifier::ClassifierArch;
use scorefield::store::classifier::{self, ClassifierCard};
use scorefield::train::classifier::{self as training, ClassifierTraining};

use super::{DeviceArg, device, hardware};

/// Noise levels at which the card reports held-out accuracy.
pub(crate) const ACCURACY_SIGMAS: [f64; 12] = [0.002, 0.01, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0, 20.0];

#[derive(Args)]
pub(crate) struct TrainClassifierArgs {
    /// The score model whose σ range, σ_data and image shape the classifier is trained for.
    #[arg(long, default_value = "www/models/mnist.json")]
    model: PathBuf,
    /// The classifier card to write (default: NAME-classifier.json beside the model, whose card
    /// then names it).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Passes over the training images.
    #[arg(long, default_value_t = ClassifierTraining::default().epochs)]
    epochs: usize,
    /// Images per step.
    #[arg(long, default_value_t = ClassifierTraining::default().batch_size)]
    batch_size: usize,
    /// Adam's learning rate (divided by 10 for the last quarter of the epochs).
    #[arg(long, default_value_t = ClassifierTraining::default().learning_rate)]
    lr: f64,
    /// Seed of the initial weights and of the training noise.
    #[arg(long, default_value_t = ClassifierTraining::default().seed)]
    seed: u64,
    /// How training noise levels are drawn: `log-uniform` over the model's σ range, or
    /// `log-normal:MEAN,STD` of ln σ (clamped to the range).
    #[arg(long, default_value_t = ClassifierTraining::default().sigmas.to_string())]
    sigmas: String,
    /// Trunk widths (the U-Net's downsampling half).
    #[arg(long, value_delimiter = ',', default_values_t = scorefield::nn::classifier::default_trunk().widths)]
    widths: Vec<usize>,
    /// Width of the noise embedding.
    #[arg(long, default_value_t = scorefield::nn::classifier::default_trunk().embed_dim)]
    embed_dim: usize,
    /// The model's training data, whose classes the classifier learns (its held-out images
    /// measure it).
    #[command(flatten)]
    data: super::data::DataChoice,
    #[command(flatten)]
    device: DeviceArg,
}

/// `www/models/mnist.json` → `www/models/mnist-classifier.json`: the classifier's default place.
fn beside(model: &Path) -> PathBuf {
    let stem = model.file_stem().and_then(|s| s.to_str()).unwrap_or("model");
    model.with_file_name(format!("{stem}-classifier.json"))
}

pub(crate) fn run(a: TrainClassifierArgs) -> anyhow::Result<()> {
    let device = device(a.device.device)?;
    let card = scorefield::store::files::read_card(&a.model)?;
    let sigma_data = match card.parameterisation {
        scorefield::precond::Parameterisation::Edm { sigma_data } | scorefield::precond::Parameterisation::Consistency { sigma_data, .. } => sigma_data,
        // The first networks have no σ_data of their own: EDM's default scale.
        scorefield::precond::Parameterisation::Noise => scorefield::precond::EDM_SIGMA_DATA,
    };
    let sde = card.sde;
    let sigma_range = [sde.noise_level(sde.eps()), sde.noise_level(1.0)];
    let trunk = scorefield::nn::unet::UNetConfig { channels: card.image.channels, height: card.image.height, width: card.image.width, widths: a.widths, embed_dim: a.embed_dim, ..scorefield::nn::classifier::default_trunk() };
    let spec = a.data.spec()?;
    let (train, held) = spec.load_split(&a.data.cache())?;
    if train.shape != card.image_shape() {
        return Err(anyhow!("{}: the model makes {:?} images, the data (--data {}) are {:?}", a.model.display(), card.image_shape(), a.data.name, train.shape));
    }
    if train.classes.len() < 2 {
        return Err(anyhow!("--data {}: a classifier needs labelled images of at least two classes (a folder's subfolders), this data has {:?}", a.data.name, train.classes));
    }
    let arch = ClassifierArch::new(trunk, train.classes.clone(), sigma_data);
    let sigmas = training::SigmaDraw::parse(&a.sigmas)?;
    let config = ClassifierTraining { epochs: a.epochs, batch_size: a.batch_size, learning_rate: a.lr, seed: a.seed, sigmas };
    eprintln!("training a classifier of {} classes on {} images noised at σ ∈ [{:.3}, {:.1}] ({}), {} epochs", train.classes.len(), train.len(), sigma_range[0], sigma_range[1], config.sigmas, config.epochs);
    let start = Instant::now();
    let (net, loss) = training::train(&train, &arch, sigma_range, card.image.range, &config, &device, |epoch, loss| {
        eprintln!("epoch {epoch}/{}  loss {loss:.4}  {:.0}s", config.epochs, start.elapsed().as_secs_f64());
    })
    ?;
    let seconds = start.elapsed().as_secs_f64();
    let accuracy = training::accuracy_by_sigma(&net, &held, &ACCURACY_SIGMAS, card.image.range, &device);
    for [sigma, acc] in &accuracy {
        println!("σ = {sigma:<6} held-out accuracy {:.1} %", 100.0 * acc);
    }
    let out = a.out.unwrap_or_else(|| beside(&a.model));
    let name = out.file_stem().and_then(|s| s.to_str()).ok_or_else(|| anyhow::anyhow!("--out needs a file name"))?.to_string();
    let mut c = ClassifierCard::new(&name, arch, sigma_range, card.image.clone());
    c.dataset = Some(spec.card_dataset(&train));
    c.training = scorefield::store::card::TrainingRecord {
        command: Some(format!("scorefield train-classifier --model {} --data {} --epochs {} --sigmas {} (for {})", a.model.display(), a.data.name, config.epochs, config.sigmas, card.name)),
        steps: Some((config.epochs * train.len().div_ceil(config.batch_size)) as u64),
        images_seen: Some((config.epochs * train.len()) as u64),
        batch_size: Some(config.batch_size),
        learning_rate: Some(config.learning_rate),
        wall_time_s: Some(seconds),
        hardware: Some(hardware(&device)),
        final_loss: Some(loss),
        seed: Some(config.seed),
        ..Default::default()
    };
    c.metrics.insert("held_out_accuracy_by_sigma".into(), serde_json::json!(accuracy));
    c.metrics.insert("held_out_images".into(), serde_json::json!(held.len()));
    c.metrics.insert("parameters".into(), serde_json::json!(burn::module::Module::num_params(&net)));
    classifier::files::save(&out, &c, &net)?;
    println!("wrote {} ({seconds:.0} s, last epoch's loss {loss:.4})", out.display());
    // The model card names its classifier when it sits beside it (the page and the CLI find it so).
    if out.parent() == a.model.parent() {
        let mut card = card;
        card.classifier = out.file_name().and_then(|n| n.to_str()).map(String::from);
        std::fs::write(&a.model, card.to_json() + "\n").map_err(|e| anyhow!("{}: {e}", a.model.display()))?;
        println!("{} now names it as its classifier", a.model.display());
    }
    Ok(())
}
