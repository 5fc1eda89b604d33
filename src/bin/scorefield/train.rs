//! `scorefield train`: the EDM U-Net by denoising score matching on a training set (the MNIST
//! digits, the emoji, or a folder of pictures), resumable from its checkpoint; every default is
//! `TrainConfig`'s and `UNetConfig`'s, the image shape the data's.

use anyhow::anyhow;
use std::path::PathBuf;

use burn::prelude::*;
use clap::Args;
use scorefield::train::TrainConfig;
use scorefield::store::files;
use scorefield::{Sde, UNetConfig};

use super::{DeviceArg, device, hardware};

#[derive(Args)]
pub(crate) struct TrainArgs {
    /// Model card to write with the EMA weights (at every checkpoint and at the end).
    #[arg(long, default_value = "www/models/mnist.json")]
    out: PathBuf,
    /// Checkpoint folder (the repository keeps the run's latest in checkpoints/mnist).
    #[arg(long, default_value = "checkpoints/mnist")]
    checkpoint: PathBuf,
    /// Folder for the EMA snapshots of the learning curve (f16 model files); `none` for none.
    #[arg(long, default_value = "checkpoints/snapshots")]
    snapshots: PathBuf,
    #[command(flatten)]
    sitting: super::Sitting,
    /// Images per step.
    #[arg(long, default_value_t = TrainConfig::default().batch_size)]
    batch_size: usize,
    /// Adam's learning rate.
    #[arg(long, default_value_t = TrainConfig::default().learning_rate)]
    lr: f64,
    /// Steps over which the learning rate ramps up linearly from 0.
    #[arg(long, default_value_t = TrainConfig::default().warmup)]
    warmup: u64,
    /// Learning-rate cool-down START,LENGTH in images: from START images the rate falls as
    /// 1 − √progress to 0 over LENGTH (Hägele et al. 2024). Also sets it on a resumed run.
    #[arg(long, value_parser = parse_cooldown)]
    cooldown: Option<(u64, u64)>,
    /// EMA half-life in images (EDM: 500,000), ramped up to 5 % of the images seen.
    #[arg(long, default_value_t = TrainConfig::default().ema_halflife_images)]
    ema_halflife: f64,
    /// Write the checkpoint (and the card at --out) every this many steps.
    #[arg(long, default_value_t = TrainConfig::default().checkpoint_every)]
    checkpoint_every: u64,
    /// Images between EMA snapshots for the learning curve.
    #[arg(long, default_value_t = TrainConfig::default().snapshot_every_images)]
    snapshot_every: u64,
    /// Seed of the initial weights and of the training noise.
    #[arg(long, default_value_t = TrainConfig::default().seed)]
    seed: u64,
    /// σ_max of the VE SDE the model samples with.
    #[arg(long, default_value_t = scorefield::precond::EDM_MNIST_SIGMA_MAX)]
    sigma_max: f64,
    /// σ_min of the VE SDE (EDM: 0.002; bits/dim of 8-bit data with an exact score are at least
    /// 8 + log2(σ_min·√(2π)), see docs/EVALUATION.md).
    #[arg(long, default_value_t = scorefield::precond::EDM_SIGMA_MIN)]
    sigma_min: f64,
    /// Feature widths per U-Net level, comma-separated (each level after the first at half the resolution).
    #[arg(long, value_delimiter = ',', default_values_t = UNetConfig::default().widths)]
    widths: Vec<usize>,
    /// Width of the noise embedding.
    #[arg(long, default_value_t = UNetConfig::default().embed_dim)]
    embed_dim: usize,
    /// Dropout before the last convolution of each residual block, during training.
    #[arg(long, default_value_t = UNetConfig::default().dropout)]
    dropout: f64,
    /// Mirror training images left–right at random (for data without a handedness, like emoji).
    #[arg(long)]
    flip: bool,
    /// What to train on: `--data mnist` (default), `--data emoji`, or `--data PATH` with
    /// `--side`, `--fit`, `--channels` as for `scorefield data`. A resumed run keeps its own.
    #[command(flatten)]
    data: super::data::DataChoice,
    #[command(flatten)]
    device: DeviceArg,
}

/// `START,LENGTH` in images.
fn parse_cooldown(text: &str) -> anyhow::Result<(u64, u64)> {
    let numbers: Vec<u64> = text.split(',').map(|n| n.trim().parse::<u64>()).collect::<Result<_, _>>().map_err(|e| anyhow!("{e}"))?;
    match numbers[..] {
        [start, length] => Ok((start, length)),
        _ => Err(anyhow!("expected START,LENGTH in images, got `{text}`")),
    }
}

pub(crate) fn run(a: TrainArgs) -> anyhow::Result<()> {
    use scorefield::train::{Trainer, sigma_data};
    let device = device(a.device.device)?;
    let cache = a.data.cache();
    let chosen = a.data.spec()?;
    let mut trainer = if a.sitting.resume {
        let mut t = Trainer::load_checkpoint(&a.checkpoint, &device, a.sitting.steps)?;
        if let Some(c) = &a.cooldown {
            (t.config.cooldown_start_images, t.config.cooldown_images) = *c;
        }
        eprintln!("resuming {} at step {} ({} images)", a.checkpoint.display(), t.step, t.images_seen());
        t
    } else {
        if a.checkpoint.join("state.json").exists() {
            return Err(anyhow!("{} already holds a checkpoint: pass --resume to continue it, or another --checkpoint", a.checkpoint.display()));
        }
        let sde = Sde::Ve { sigma_min: a.sigma_min, sigma_max: a.sigma_max };
        let (train_set, _) = chosen.load_split(&cache)?;
        let [channels, height, width] = train_set.shape;
        let arch = UNetConfig { channels, height, width, widths: a.widths.clone(), embed_dim: a.embed_dim, dropout: a.dropout, ..Default::default() };
        let config = TrainConfig {
            steps: a.sitting.steps.unwrap_or(TrainConfig::default().steps),
            batch_size: a.batch_size,
            learning_rate: a.lr,
            warmup: a.warmup,
            ema_halflife_images: a.ema_halflife,
            seed: a.seed,
            checkpoint_every: a.checkpoint_every.max(1),
            snapshot_every_images: a.snapshot_every,
            cooldown_start_images: a.cooldown.map_or(0, |c| c.0),
            cooldown_images: a.cooldown.map_or(0, |c| c.1),
            flip: a.flip,
            ..Default::default()
        };
        let sigma_data = sigma_data(&train_set);
        eprintln!("σ_data of the training images: {sigma_data:.4}");
        let mut t = Trainer::new(arch, sde, sigma_data, config, &device)?;
        t.data = chosen;
        t
    };
    // The run's own data (a resumed run's from its checkpoint), checked against its network.
    let (train_set, _) = trainer.data.load_split(&cache)?;
    let arch = &trainer.arch;
    if train_set.shape != [arch.channels, arch.height, arch.width] {
        let [c, h, w] = train_set.shape;
        return Err(anyhow!("the data's images are {h}×{w}×{c}, the network's {}×{}×{}", arch.height, arch.width, arch.channels));
    }
    let until = a.sitting.until.unwrap_or(trainer.config.steps).min(trainer.config.steps);
    // An export (`--until` at or below the checkpoint's step) trains nothing and adds no session.
    if trainer.step < until {
        trainer.begin_session(hardware(&device));
    }
    eprintln!(
        "training on {} images, {} parameters, {:.1} MFLOPs per image, {}",
        train_set.len(),
        trainer.net.num_params(),
        trainer.arch.flops_per_image() as f64 / 1e6,
        hardware(&device)
    );
    let command = crate::command_line();
    let write_card = |trainer: &Trainer| -> anyhow::Result<()> {
        let name = a.out.file_stem().and_then(|s| s.to_str()).unwrap_or("mnist");
        let mut card = trainer.card(name);
        // Keep the measured metrics of the previous card only if it describes the same run, and
        // the classifier it names (trained for the same σ range and images) in any case.
        if let Ok(old) = files::read_card(&a.out) {
            if old.architecture == card.architecture && old.parameterisation == card.parameterisation {
                card.metrics = old.metrics;
            }
            card.classifier = old.classifier;
        }
        card.dataset = Some(trainer.data.card_dataset(&train_set));
        card.subject = trainer.data.subject();
        card.image.background = train_set.background();
        card.training.command = Some(command.clone());
        if let Some(dir) = a.out.parent() {
            std::fs::create_dir_all(dir)?;
        }
        Ok(files::save(&a.out, &card, &trainer.ema_model())?)
    };
    // Train in checkpoint-sized chunks and refresh the card after each.
    let first_step = trainer.step;
    let started = std::time::Instant::now();
    let snapshots = (a.snapshots.as_os_str() != "none").then_some(a.snapshots.as_path());
    while trainer.step < until {
        if a.sitting.for_seconds.is_some_and(|limit| started.elapsed().as_secs_f64() >= limit) {
            eprintln!("stopping after {:.0} s (--for-seconds)", started.elapsed().as_secs_f64());
            break;
        }
        let chunk_end = ((trainer.step / trainer.config.checkpoint_every + 1) * trainer.config.checkpoint_every).min(until);
        trainer.run(&train_set, &a.checkpoint, snapshots, chunk_end)?;
        write_card(&trainer)?;
    }
    // When nothing was left to train (`--until` at or below the checkpoint's step), the card still
    // gets written: it then holds the checkpoint's EMA weights as they are.
    if trainer.step == first_step {
        write_card(&trainer)?;
    }
    println!("trained to step {} ({} images) in {:.0}s; loss {:.4}; wrote {}", trainer.step, trainer.images_seen(), trainer.wall_time(), trainer.last_loss, a.out.display());
    Ok(())
}
