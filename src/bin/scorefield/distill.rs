//! `scorefield distill`: a consistency model from a trained EDM score model (consistency
//! distillation, `scorefield::train::distill`), resumable from its checkpoint like `train`; every
//! default is `DistillConfig`'s.

use std::path::PathBuf;

use anyhow::anyhow;
use clap::Args;
use scorefield::model::Architecture;
use scorefield::store::files;
use scorefield::nn::unet::UNetConfig;
use scorefield::train::distill::{DistillConfig, Distiller, GuideRecord};

use super::{DeviceArg, device, hardware, load, out_stem};

#[derive(Args)]
pub(crate) struct DistillArgs {
    /// The teacher: an EDM score model's card (a resumed run takes its checkpoint's).
    #[arg(long, default_value = "www/models/mnist.json")]
    teacher: PathBuf,
    /// Model card to write with the student's weights (at every checkpoint and at the end).
    #[arg(long, default_value = "checkpoints/latest-consistency.json")]
    out: PathBuf,
    /// Checkpoint folder.
    #[arg(long, default_value = "checkpoints/consistency")]
    checkpoint: PathBuf,
    /// How long the run is and this sitting of it (the curriculum spreads over the run's steps).
    #[command(flatten)]
    sitting: super::Sitting,
    /// Images per step.
    #[arg(long, default_value_t = DistillConfig::default().batch_size)]
    batch_size: usize,
    /// Adam's learning rate.
    #[arg(long, default_value_t = DistillConfig::default().learning_rate)]
    lr: f64,
    /// Write the checkpoint (and the card at --out) every this many steps.
    #[arg(long, default_value_t = DistillConfig::default().checkpoint_every)]
    checkpoint_every: u64,
    /// The curriculum's first number of intervals N of the noise-level grid: N doubles from
    /// this to --intervals-end over the run (Song & Dhariwal 2023: 10 to 1280; the same number
    /// twice keeps one grid, as Song et al. 2023 distilled with N = 18).
    #[arg(long, default_value_t = DistillConfig::default().intervals_start)]
    intervals_start: usize,
    /// The curriculum's last number of intervals.
    #[arg(long, default_value_t = DistillConfig::default().intervals_end)]
    intervals_end: usize,
    /// Autoguide the teacher's ODE: the weight w of D_bad + w·(D − D_bad) (Karras et al. 2024);
    /// 1: the teacher alone. Default: the teacher card's `sampling.autoguidance.weight` when it
    /// names a guide model (`guide`), else 1.
    #[arg(long)]
    autoguidance: Option<f64>,
    /// The teacher's worse model (default: the one the teacher's card names).
    #[arg(long)]
    guide_model: Option<PathBuf>,
    /// Autoguidance acts only at noise levels above this σ (default: the teacher card's
    /// `sampling.autoguidance.min_sigma`).
    #[arg(long)]
    autoguidance_min_sigma: Option<f64>,
    /// Start the student from this consistency model's card (an earlier student of the same
    /// teacher, to go on with other settings) instead of from the teacher's weights.
    #[arg(long)]
    init: Option<PathBuf>,
    /// The student's dropout rate in training (default: the teacher's, from its card). The
    /// target network runs without dropout, so a rate above 0 also makes the student learn to
    /// agree with itself across dropout masks.
    #[arg(long)]
    dropout: Option<f64>,
    /// Seed of the training noise and batches.
    #[arg(long, default_value_t = DistillConfig::default().seed)]
    seed: u64,
    /// The teacher's training data: `--data mnist` (default), `emoji` or a folder, as for `train`.
    #[command(flatten)]
    data: super::data::DataChoice,
    #[command(flatten)]
    device: DeviceArg,
}

pub(crate) fn run(a: DistillArgs) -> anyhow::Result<()> {
    let device = device(a.device.device)?;
    let cache = a.data.cache();
    let mut distiller = if a.sitting.resume {
        if a.init.is_some() || a.dropout.is_some() {
            return Err(anyhow!("--init and --dropout start a run; a resumed run keeps its checkpoint's student and dropout"));
        }
        let teacher_path = PathBuf::from(Distiller::checkpoint_teacher(&a.checkpoint)?);
        let (teacher_card, teacher) = load(&teacher_path, &device)?;
        let guide = match Distiller::checkpoint_guide(&a.checkpoint)? {
            Some(record) => {
                let (guide_card, guide) = load(std::path::Path::new(&record.card), &device).map_err(|e| anyhow!("the teacher's guide model: {e}"))?;
                teacher_card.check_guide(&guide_card).map_err(|e| anyhow!("{}: {e}", record.card))?;
                Some(guide)
            }
            None => None,
        };
        let d = Distiller::load_checkpoint(&a.checkpoint, &teacher, guide.as_ref(), &device, a.sitting.steps)?;
        eprintln!("resuming {} at step {} ({} images)", a.checkpoint.display(), d.step, d.images_seen());
        d
    } else {
        if a.checkpoint.join("state.json").exists() {
            return Err(anyhow!("{} already holds a checkpoint: pass --resume to continue it, or another --checkpoint", a.checkpoint.display()));
        }
        let (card, teacher) = load(&a.teacher, &device)?;
        let Architecture::Unet(arch) = &card.architecture else {
            return Err(anyhow!("{}: the teacher must be a U-Net trained by `scorefield train`", a.teacher.display()));
        };
        let config = DistillConfig {
            steps: a.sitting.steps.unwrap_or(DistillConfig::default().steps),
            batch_size: a.batch_size,
            learning_rate: a.lr,
            checkpoint_every: a.checkpoint_every.max(1),
            seed: a.seed,
            intervals_start: a.intervals_start,
            intervals_end: a.intervals_end,
            ..Default::default()
        };
        let arch = UNetConfig { dropout: a.dropout.unwrap_or(arch.dropout), ..arch.clone() };
        let mut distiller = Distiller::new(&teacher, &arch, &a.teacher.to_string_lossy(), a.data.spec()?, &device, config)?;
        if let Some(init) = &a.init {
            let (_, student) = load(init, &device).map_err(|e| anyhow!("--init: {e}"))?;
            distiller = distiller.starting_from(&student, &init.to_string_lossy())?;
            eprintln!("the student starts from {}", init.display());
        }
        match super::sample::worse_model(&a.teacher, &card, a.guide_model.as_deref(), a.autoguidance, a.autoguidance_min_sigma, f64::INFINITY, &device)? {
            None => distiller,
            Some((path, guide, guidance)) => {
                eprintln!("the teacher is autoguided by {} (w = {}, where σ > {})", path.display(), guidance.weight, guidance.min_sigma);
                distiller.with_guide(&guide, GuideRecord { card: path.to_string_lossy().into(), weight: guidance.weight, min_sigma: guidance.min_sigma })?
            }
        }
    };
    let (train_set, _) = distiller.data.load_split(&cache)?;
    let until = a.sitting.until.unwrap_or(distiller.config.steps).min(distiller.config.steps);
    if distiller.step < until {
        distiller.begin_session(hardware(&device));
    }
    let command = crate::command_line();
    let name = out_stem(&a.out)?.to_string();
    let write_card = |d: &Distiller| -> anyhow::Result<()> {
        let mut card = d.card(&name);
        card.dataset = Some(d.data.card_dataset(&train_set));
        card.subject = d.data.subject();
        card.image.background = train_set.background();
        card.training.command = Some(command.clone());
        if let Some(dir) = a.out.parent() {
            std::fs::create_dir_all(dir)?;
        }
        Ok(files::save(&a.out, &card, &d.student_model())?)
    };
    let started = std::time::Instant::now();
    let first_step = distiller.step;
    while distiller.step < until {
        if a.sitting.for_seconds.is_some_and(|limit| started.elapsed().as_secs_f64() >= limit) {
            eprintln!("stopping after {:.0} s (--for-seconds)", started.elapsed().as_secs_f64());
            break;
        }
        let every = distiller.config.checkpoint_every;
        let chunk_end = ((distiller.step / every + 1) * every).min(until);
        distiller.run(&train_set, &a.checkpoint, chunk_end)?;
        write_card(&distiller)?;
    }
    if distiller.step == first_step {
        write_card(&distiller)?;
    }
    println!("distilled to step {} ({} images) in {:.0}s; loss {:.4}; wrote {}", distiller.step, distiller.images_seen(), distiller.wall_time(), distiller.last_loss, a.out.display());
    Ok(())
}
