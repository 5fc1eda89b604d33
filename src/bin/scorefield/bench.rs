//! `scorefield bench`: time per score-network evaluation at several batch sizes (median of N after
//! warm-up), the network's FLOPs, and whole sampler runs, printed as a table and as JSON.

use anyhow::anyhow;
use std::path::PathBuf;
use std::time::Instant;

use burn::prelude::*;
use clap::Args;
use serde::Serialize;

use scorefield::sampling::{self, SampleOptions, Sampler, ScoreFn};

use super::{DeviceArg, hardware};

#[derive(Args)]
pub(crate) struct BenchArgs {
    /// Model card to time.
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

#[derive(Serialize)]
struct EvalTiming {
    batch: usize,
    repeats: usize,
    median_ms: f64,
    p10_ms: f64,
    p90_ms: f64,
    /// Achieved arithmetic rate at the median.
    gflops: f64,
}

#[derive(Serialize)]
struct RunTiming {
    run: String,
    batch: usize,
    seconds: f64,
    evals: usize,
}

#[derive(Serialize)]
struct Report {
    device: String,
    model: String,
    flops_per_image: u64,
    evals: Vec<EvalTiming>,
    runs: Vec<RunTiming>,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

/// Waits for the device: reads one number (the sum) back.
fn sync(x: Tensor<4>) -> f32 {
    x.sum().into_scalar::<f32>()
}

pub fn run(a: BenchArgs) -> anyhow::Result<()> {
    let device = super::device(a.device.device)?;
    let (card, model) = super::load(&a.model, &device)?;
    let [c, h, w] = card.image_shape();
    let flops = card.architecture.flops_per_image();
    let mut report = Report { device: format!("{device:?} ({})", hardware(&device)), model: a.model.display().to_string(), flops_per_image: flops, evals: Vec::new(), runs: Vec::new() };
    for &batch in &a.batches {
        sampling::validate_batch([batch, c, h, w])?;
        let x = sampling::Noise::new(0).normal([batch, c, h, w], 1.0, &device);
        for _ in 0..a.warmup {
            sync(model.score(x.clone(), 0.5));
        }
        let mut times = Vec::with_capacity(a.repeats);
        for _ in 0..a.repeats.max(1) {
            let start = Instant::now();
            let value = sync(model.score(x.clone(), 0.5));
            times.push(start.elapsed().as_secs_f64() * 1000.0);
            if !value.is_finite() {
                return Err(anyhow!("the score at batch {batch} is not finite"));
            }
        }
        times.sort_by(f64::total_cmp);
        let median = percentile(&times, 0.5);
        let timing = EvalTiming { batch, repeats: times.len(), median_ms: median, p10_ms: percentile(&times, 0.1), p90_ms: percentile(&times, 0.9), gflops: flops as f64 * batch as f64 / (median / 1000.0) / 1e9 };
        eprintln!("batch {batch}: median {median:.2} ms per evaluation");
        report.evals.push(timing);
    }
    let runs = [("em:1000", SampleOptions { sampler: Sampler::EulerMaruyama, steps: 1000, ..Default::default() }), ("ode-rk45:1e-5", SampleOptions { sampler: Sampler::OdeRk45, ..Default::default() })];
    for (name, options) in runs.into_iter().filter(|_| a.run_batch > 0) {
        let start = Instant::now();
        let out = pollster::block_on(sampling::sample(&model, &model.sde, [a.run_batch, c, h, w], &options, &device, &mut sampling::no_observer()))?;
        sync(out.x);
        let seconds = start.elapsed().as_secs_f64();
        eprintln!("{name} at batch {}: {seconds:.2} s, {} evaluations", a.run_batch, out.evals);
        report.runs.push(RunTiming { run: name.into(), batch: a.run_batch, seconds, evals: out.evals });
    }

    println!("{}", report.device);
    println!("{:.1} MFLOP per image per evaluation\n", flops as f64 / 1e6);
    println!("| batch | median ms / evaluation | p10 | p90 | GFLOP/s | repeats |\n|---:|---:|---:|---:|---:|---:|");
    for e in &report.evals {
        println!("| {} | {:.2} | {:.2} | {:.2} | {:.1} | {} |", e.batch, e.median_ms, e.p10_ms, e.p90_ms, e.gflops, e.repeats);
    }
    if !report.runs.is_empty() {
        println!("\n| run | batch | seconds | evaluations |\n|---|---:|---:|---:|");
        for r in &report.runs {
            println!("| `{}` | {} | {:.2} | {} |", r.run, r.batch, r.seconds, r.evals);
        }
    }
    let json = serde_json::to_string_pretty(&report).expect("serialises");
    if let Some(path) = &a.json {
        std::fs::write(path, &json).map_err(|e| anyhow!("{}: {e}", path.display()))?;
        println!("\nwrote {}", path.display());
    } else {
        println!("\n{json}");
    }
    Ok(())
}
