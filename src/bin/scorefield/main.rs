//! The scorefield command line: create, sample from, inpaint with, train and score models, one
//! module per subcommand. Every error prints as one line (an `anyhow::Error`, with its causes
//! after colons) and exits with status 1.

mod average;
mod bench;
mod convert;
mod data;
mod distill;
mod evaluate;
mod export_onnx;
mod inpaint;
mod init;
mod likelihood;
mod reference;
mod sample;
mod train;
mod train_classifier;

use std::path::Path;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use scorefield::store::{ModelCard, files};
use scorefield::{Device, ScoreModel};

#[derive(Parser)]
#[command(name = "scorefield", version, about = "Score-based generative modeling through SDEs (Song et al. 2021) on Burn")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write a randomly initialised model (card + safetensors).
    Init(init::InitArgs),
    /// Draw samples and write them as a PNG grid (and optionally .npy).
    Sample(sample::SampleArgs),
    /// Fill in the masked part of an image.
    Inpaint(inpaint::InpaintArgs),
    /// Bits/dim of images through the probability-flow ODE.
    Likelihood(likelihood::LikelihoodArgs),
    /// Fetch, check and cache a training set: the MNIST digits, the emoji, or a folder of pictures.
    Data(data::DataArgs),
    /// Train a score network on a training set (`--data`) by denoising score matching.
    Train(train::TrainArgs),
    /// Distil a trained score model into a consistency model, which samples in one to four
    /// network evaluations (Song et al. 2023; resumable like `train`).
    Distill(distill::DistillArgs),
    /// Train the noise-conditional classifier that guides sampling to a chosen class of the
    /// model's data (a digit, an emoji category, a folder's subfolder).
    TrainClassifier(train_classifier::TrainClassifierArgs),
    /// Score a model: classifier-based sample quality per sampler, held-out bits/dim.
    Evaluate(evaluate::EvaluateArgs),
    /// Time score evaluations and sampler runs on this machine.
    Bench(bench::BenchArgs),
    /// Write the model's network as ONNX: the first network's inputs x [B, C, H, W] and t [B],
    /// output net (the score is net / σ(t) with the card's SDE); the U-Net's inputs x (already
    /// scaled by c_in) and c_noise [B], output F (EDM's preconditioning is applied outside).
    ExportOnnx(export_onnx::ExportOnnxArgs),
    /// Rewrite a model's weights in another float format (f16 halves the download; the network
    /// still computes in f32). Writes the card and its weights beside it.
    Convert(convert::ConvertArgs),
    /// Average snapshots of one training run (post-hoc EMA, Karras et al. 2024): the mean, or any
    /// coefficients summing to 1. Writes the card and its weights beside it.
    Average(average::AverageArgs),
    /// Print a reference table of the docs from the code that defines it: every subcommand's
    /// flags (docs/reference/cli.md) or the sampler table of a model (docs/reference/samplers.md).
    Reference(reference::ReferenceArgs),
}

/// A resumable run's length and this sitting's end (`train`, `distill`).
#[derive(Args)]
struct Sitting {
    /// Continue from the checkpoint (its settings win; --steps may extend the run).
    #[arg(long)]
    resume: bool,
    /// Total steps of the run (a sitting may stop earlier with --until, --for-seconds or Ctrl-C:
    /// the last checkpoint resumes it). A new run's default: 1,000,000 for `train`, 100,000 for
    /// `distill`; a resumed run keeps its own unless this changes it.
    #[arg(long)]
    steps: Option<u64>,
    /// Stop this sitting at this step (default: --steps).
    #[arg(long)]
    until: Option<u64>,
    /// Stop this sitting after this many seconds (at the next checkpoint).
    #[arg(long)]
    for_seconds: Option<f64>,
}

#[derive(Clone, Copy, ValueEnum)]
enum DeviceChoice {
    /// Burn's pure-Rust CPU backend (flex).
    Cpu,
    /// Native wgpu (Vulkan, Metal, DX12); needs a build with `--features wgpu`.
    Wgpu,
}

#[derive(Args)]
struct DeviceArg {
    /// Backend to run on: Burn's CPU backend (flex), or native wgpu (needs a build with `--features wgpu`).
    #[arg(long, value_enum, default_value = "cpu")]
    device: DeviceChoice,
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Init(a) => init::run(a),
        Command::Sample(a) => sample::run(a),
        Command::Inpaint(a) => inpaint::run(a),
        Command::Likelihood(a) => likelihood::run(a),
        Command::Data(a) => data::run(a),
        Command::Train(a) => train::run(a),
        Command::Distill(a) => distill::run(a),
        Command::TrainClassifier(a) => train_classifier::run(a),
        Command::Evaluate(a) => evaluate::run(a),
        Command::Bench(a) => bench::run(a),
        Command::ExportOnnx(a) => export_onnx::run(a),
        Command::Convert(a) => convert::run(a),
        Command::Average(a) => average::run(a),
        Command::Reference(a) => reference::run(a),
    }
}

fn device(choice: DeviceChoice) -> anyhow::Result<Device> {
    match choice {
        DeviceChoice::Cpu => Ok(Device::flex()),
        #[cfg(feature = "wgpu")]
        DeviceChoice::Wgpu => {
            let backend = scorefield::backend::wgpu_native().map_err(anyhow::Error::msg)?;
            eprintln!("wgpu adapter: {}", backend.adapter);
            Ok(backend.device)
        }
        #[cfg(not(feature = "wgpu"))]
        DeviceChoice::Wgpu => anyhow::bail!("this build has no wgpu backend; rebuild with `cargo build --release --features wgpu`"),
    }
}

fn load(model: &Path, device: &Device) -> anyhow::Result<(ModelCard, ScoreModel)> {
    Ok(files::load(model, device)?)
}

/// A model card alone, checked.
fn load_card(model: &Path) -> anyhow::Result<ModelCard> {
    Ok(files::read_card(model)?)
}

/// The file name of `--out` without its extension, which names the weights written beside it.
fn out_stem(out: &Path) -> anyhow::Result<&str> {
    out.file_stem().and_then(|s| s.to_str()).ok_or_else(|| anyhow::anyhow!("--out needs a file name like model.json"))
}

/// The command line of this run as a reader would type it (`scorefield …`, whatever the binary's
/// file is called), for the model card's training record.
fn command_line() -> String {
    std::iter::once("scorefield".to_string()).chain(std::env::args().skip(1)).collect::<Vec<_>>().join(" ")
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
