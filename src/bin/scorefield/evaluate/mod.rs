//! `scorefield evaluate`: sample quality per sampler (classifier-based, see `scorefield::evaluate`)
//! and held-out bits/dim, merged into `<out>/results.json`, with a 10×10 grid per run, printed as a
//! Markdown report.

use anyhow::anyhow;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::prelude::*;
use clap::Args;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use scorefield::data::{self, Images};
use scorefield::evaluate::{self, Classifier, ClassifierConfig, Memorisation, Predictions, Quality};
use scorefield::io::{self, Batch};
use scorefield::likelihood::{self, LikelihoodOptions};
use scorefield::nn::classifier::NoisyClassifier;
use scorefield::compose::RunScore;
use scorefield::sampling::SampleOptions;
use scorefield::store::files;

mod report;
mod spec;

use super::DeviceArg;
use super::sample::{progress, read_tensor};
use report::{mean, quality_plot, report, std, write_card_metrics};
use spec::{Run, parse_run};

/// The runs of every point of the learning curve in docs/EVALUATION.md: the page's default, the
/// few-step samplers at 20 and 35 evaluations, Heun with churn and Euler–Maruyama at 100 steps.
const LEARNING_CURVE_RUNS: [&str; 5] = ["dpmpp-2m:10", "dpmpp-2m:20", "edm-heun:18", "edm-heun:18:churn=40", "em:100"];

#[derive(Args)]
pub(crate) struct EvaluateArgs {
    /// Model card (NAME.json).
    #[arg(long, default_value = "www/models/mnist.json")]
    model: PathBuf,
    /// Sampler runs, comma-separated: `em:1000` (N steps), `pc:200` (N steps, one corrector
    /// step each), `ode-rk45:1e-5` (tolerance), `ald:10x100` (levels × steps per level),
    /// `edm-heun:18:churn=40`. The default is the learning curve's set (docs/EVALUATION.md).
    #[arg(long, value_delimiter = ',', default_values_t = LEARNING_CURVE_RUNS.map(String::from))]
    runs: Vec<String>,
    /// Samples per run.
    #[arg(long, default_value_t = 1000)]
    samples: usize,
    /// Samples per sampler call.
    #[arg(long, default_value_t = 250)]
    batch: usize,
    /// Seed of every run (each draws the same sequence of noise, so runs differ only in their sampler) and of the reference subset.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Held-out digits whose bits/dim to measure (0: skip the likelihood).
    #[arg(long, default_value_t = 1000)]
    likelihood_images: usize,
    /// Probe/dequantisation seeds of the likelihood (its spread is over these).
    #[arg(long, default_value_t = 3)]
    likelihood_seeds: u64,
    /// The classifier card of `guidance=` runs (default: the one the model card names).
    #[arg(long)]
    classifier: Option<PathBuf>,
    /// The worse model of `ag=` runs (autoguidance): a model card of the same data and noise levels.
    #[arg(long)]
    guide_model: Option<PathBuf>,
    /// Folder for results.json (merged with earlier results) and the 10×10 grids.
    #[arg(long, default_value = "docs/evaluation")]
    out: PathBuf,
    /// Also write the headline numbers into the model card's `metrics`.
    #[arg(long)]
    card: bool,
    /// Other models' results (their results.json, comma-separated), drawn in the quality-against-
    /// evaluations plot beside this model's runs, each line named by its model: a consistency
    /// model against its teacher, say. They must be scored by the same classifier on the same
    /// reference images (the same data and seed).
    #[arg(long, value_delimiter = ',')]
    plot_with: Vec<PathBuf>,
    /// The data the model was trained on (its held-out images, training images and classes).
    #[command(flatten)]
    data: super::data::DataChoice,
    /// The digit classifier that scores the samples: the committed reference, so that every
    /// machine judges with the same network (trained anew, its weights differ between CPUs).
    /// When the file is missing a classifier is trained, cached, and flagged. Default: the
    /// committed one of the data (docs/evaluation/digit-classifier.bpk, emoji-classifier.bpk).
    #[arg(long)]
    digit_classifier: Option<PathBuf>,
    #[command(flatten)]
    device: DeviceArg,
}

/// The evaluation's reference classifier: trained by `classifier` with two rayon
/// threads on the project's machine (held-out accuracy 98.40 %), committed.
const REFERENCE_CLASSIFIER: &str = "docs/evaluation/digit-classifier.bpk";
/// The emoji evaluation's reference classifier, committed likewise.
const EMOJI_CLASSIFIER: &str = "docs/evaluation/emoji-classifier.bpk";

/// Another model's results (`--plot-with`), as its results.json holds them.
fn read_results(path: &Path) -> anyhow::Result<Results> {
    let text = std::fs::read_to_string(path).map_err(|e| anyhow!("--plot-with {}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| anyhow!("--plot-with {}: not an evaluation's results.json: {e}", path.display()))
}

/// Whether `other` (read from `path`) may be plotted beside `ours`: only if the same classifier
/// scored both against the same held-out reference (the same data and seed: the same Fréchet
/// floors, to 10⁻⁵ relative, since feature sums differ in their last bits between CPUs), so that
/// the two sets of points share their axes' meaning.
fn comparable(path: &Path, other: &Results, ours: &Results) -> anyhow::Result<()> {
    let judge = |r: &Results| r.classifier.as_ref().map(|c| c.sha256.clone());
    if judge(other) != judge(ours) {
        return Err(anyhow!("--plot-with {}: scored by another classifier ({:?} against this run's {:?})", path.display(), judge(other), judge(ours)));
    }
    let floor = |r: &Results| r.reference.as_ref().map(|f| f.floor.clone()).unwrap_or_default();
    let (theirs, mine) = (floor(other), floor(ours));
    let same = theirs.len() == mine.len() && theirs.iter().zip(&mine).all(|((n, a), (m, b))| n == m && (a - b).abs() <= 1e-5 * a.abs().max(b.abs()));
    if !same {
        return Err(anyhow!("--plot-with {}: another reference (other data or seed: Fréchet floors {theirs:?} against {mine:?})", path.display()));
    }
    Ok(())
}

/// A plot legend's name for a model card path: its file name without `.json`.
fn model_label(card: &str) -> String {
    let name = Path::new(card).file_name().map_or(card.into(), |n| n.to_string_lossy().into_owned());
    name.strip_suffix(".json").unwrap_or(&name).to_string()
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Results {
    /// The model card and the first 16 hex digits of its weights' SHA-256: results of other
    /// weights are dropped.
    model: String,
    weights_sha256: String,
    training_steps: Option<u64>,
    classifier: Option<ClassifierReport>,
    reference: Option<Reference>,
    runs: Vec<RunResult>,
    likelihood: Option<LikelihoodReport>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct ClassifierReport {
    /// Where the weights came from (the reference file, or the cache when it was missing), and
    /// the first 16 hex digits of their SHA-256: results scored by another classifier are dropped.
    #[serde(default)]
    file: String,
    #[serde(default)]
    sha256: String,
    config: ClassifierConfig,
    parameters: usize,
    held_out_accuracy: f64,
    last_epoch_loss: Option<f64>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Reference {
    /// The held-out digits themselves, scored like samples.
    held_out: Option<Quality>,
    /// Fréchet distance of N training digits to the held-out digits, per N: the floor of a run
    /// with N samples.
    floor: BTreeMap<usize, f64>,
    /// Fréchet distance between the two halves (500/500) of the held-out digits.
    halves: Option<f64>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct RunResult {
    run: String,
    options: SampleOptions,
    samples: usize,
    evals_per_sample: f64,
    seconds: f64,
    quality: Quality,
    grid: String,
    /// Nearest-training-digit distances of the samples against those of the held-out digits.
    #[serde(default)]
    memorisation: Option<Memorisation>,
    /// Guided runs: the scale, and the share of samples the evaluation classifier assigns to
    /// the class they were drawn for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    guidance: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    guidance_min_sigma: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    guidance_max_sigma: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    requested_class: Option<f64>,
    /// Autoguided runs: the weight, interval and the worse model (card path and weights' SHA-256).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    autoguidance: Option<AutoguidanceReport>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct AutoguidanceReport {
    weight: f64,
    min_sigma: f64,
    /// None: ∞ (JSON has no infinity).
    max_sigma: Option<f64>,
    model: String,
    weights_sha256: String,
}


#[derive(Clone, Debug, Serialize, Deserialize)]
struct LikelihoodReport {
    images: usize,
    rtol: f64,
    atol: f64,
    per_seed: Vec<SeedBpd>,
    mean: f64,
    /// Standard deviation of the per-seed means.
    std_over_seeds: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct SeedBpd {
    seed: u64,
    bits_per_dim: f64,
    /// Standard deviation over images.
    std_over_images: f64,
    evals: usize,
    seconds: f64,
}

/// A sample is a near-copy when it is nearer to a training digit than 95 % of the held-out digits
/// are to theirs: held-out digits are near-copies 5 % of the time by construction.
const NEAR_COPY_QUANTILE: f64 = 0.05;

fn all_indices(d: &Images) -> Vec<usize> {
    (0..d.len()).collect()
}

/// The reference classifier when `reference` exists (an unreadable one is an error); otherwise
/// one trained once per configuration and cached in `<cache>/classifier-*.bpk`. Also returns the
/// file it came from.
fn classifier(reference: Option<&Path>, cache: &Path, train: &Images, device: &Device) -> anyhow::Result<(Classifier, ClassifierConfig, Option<f64>, PathBuf)> {
    let config = ClassifierConfig::for_images(train);
    match reference {
        Some(reference) if reference.exists() => {
            let loaded = config.init(device).try_load_file(reference).map_err(|e| anyhow!("{}: not a classifier of this configuration: {e:?}", reference.display()))?;
            return Ok((loaded, config, None, reference.to_path_buf()));
        }
        Some(reference) => eprintln!(
            "warning: {} is missing: scoring with a classifier trained on this machine, whose numbers are not comparable with docs/EVALUATION.md",
            reference.display()
        ),
        None => eprintln!("no committed classifier for this data: scoring with one trained on this machine"),
    }
    let key = format!("{:x}", Sha256::digest(serde_json::to_string(&config).expect("serialises")));
    let path = cache.join(format!("classifier-{}.bpk", &key[..12]));
    if let Ok(loaded) = config.init(device).try_load_file(&path) {
        return Ok((loaded, config, None, path));
    }
    let start = Instant::now();
    eprintln!("training the classifier ({} epochs on {} images)…", config.epochs, train.len());
    let (classifier, loss) = evaluate::train_classifier(train, &config, device);
    eprintln!("  done in {:.0}s, last-epoch loss {loss:.4}", start.elapsed().as_secs_f64());
    classifier.clone().save_file(&path).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    Ok((classifier, config, Some(loss), path))
}

pub fn run(a: EvaluateArgs) -> anyhow::Result<()> {
    let device = super::device(a.device.device)?;
    let cache = a.data.cache();
    let spec = a.data.spec()?;
    let (train, held) = spec.load_split(&cache)?;
    let (card, model) = super::load(&a.model, &device)?;
    if card.image_shape() != train.shape {
        return Err(anyhow!("{}: the model makes {:?} images, the data (--data {}) are {:?}", a.model.display(), card.image_shape(), a.data.name, train.shape));
    }
    let shape = train.shape;
    let [c, h, w] = shape;
    let per = c * h * w;
    let reference_file = a.digit_classifier.clone().or(match spec {
        data::DataSpec::Mnist => Some(PathBuf::from(REFERENCE_CLASSIFIER)),
        data::DataSpec::Emoji { side } if side == data::emoji::SIDE => Some(PathBuf::from(EMOJI_CLASSIFIER)),
        _ => None,
    });
    if a.samples < 100 || a.batch == 0 {
        anyhow::bail!("--samples must be at least 100 (the grid shows 100) and --batch at least 1");
    }
    // Read before any run, so that a missing or broken file costs no sampling.
    let others = a.plot_with.iter().map(|path| read_results(path)).collect::<anyhow::Result<Vec<_>>>()?;
    let [lo, hi] = card.image.range;
    let weights = std::fs::read(files::weights_path(&a.model, &card))?;
    let sha = format!("{:x}", Sha256::digest(&weights))[..16].to_string();

    std::fs::create_dir_all(&a.out).map_err(|e| anyhow!("{}: {e}", a.out.display()))?;
    let results_path = a.out.join("results.json");
    // Earlier results are merged into; a file that cannot be read is an error, not a blank slate
    // (overwriting it would lose every run in it).
    let mut results: Results = match std::fs::read_to_string(&results_path) {
        Ok(text) => serde_json::from_str(&text).map_err(|e| anyhow!("{}: cannot read the earlier results ({e}); move the file away to start afresh", results_path.display()))?,
        Err(_) => Results::default(),
    };
    if results.weights_sha256 != sha {
        results = Results { model: a.model.display().to_string(), weights_sha256: sha, training_steps: card.training.steps, ..Default::default() };
    }
    let save = |results: &Results| std::fs::write(&results_path, serde_json::to_string_pretty(results).expect("serialises")).map_err(|e| anyhow!("{}: {e}", results_path.display()));

    // The classifier and the real-data reference numbers.
    let (classifier, config, loss, classifier_file) = classifier(reference_file.as_deref(), &cache, &train, &device)?;
    let classifier_bytes = std::fs::read(&classifier_file).map_err(|e| anyhow!("{}: {e}", classifier_file.display()))?;
    let classifier_sha = format!("{:x}", Sha256::digest(&classifier_bytes))[..16].to_string();
    if results.classifier.as_ref().is_some_and(|c| c.sha256 != classifier_sha) {
        eprintln!("{}: scored by another classifier; starting afresh", results_path.display());
        results = Results { model: results.model.clone(), weights_sha256: results.weights_sha256.clone(), training_steps: results.training_steps, ..Default::default() };
    }
    let held_pred = evaluate::predict(&classifier, &held.floats(&all_indices(&held)), shape, 500, &device);
    let held_out_accuracy = evaluate::accuracy(&held_pred, &held.labels);
    eprintln!("classifier held-out accuracy {:.2}%", 100.0 * held_out_accuracy);
    results.classifier = Some(ClassifierReport {
        file: classifier_file.display().to_string(),
        sha256: classifier_sha,
        parameters: classifier.num_params(),
        config,
        held_out_accuracy,
        last_epoch_loss: loss.or(results.classifier.as_ref().and_then(|c| c.last_epoch_loss)),
    });
    let mut reference = results.reference.clone().unwrap_or_default();
    reference.held_out = Some(evaluate::quality(&held_pred, &held_pred));
    let halves = evaluate::subset(held.len(), held.len(), 99);
    let (h1, h2) = halves.split_at(held.len() / 2);
    reference.halves = Some(evaluate::feature_distance(&held_pred.select(h1), &held_pred.select(h2)));
    if !reference.floor.contains_key(&a.samples) {
        let idx = evaluate::subset(train.len(), a.samples, a.seed ^ 0xf100);
        let real = evaluate::predict(&classifier, &train.floats(&idx), shape, 500, &device);
        reference.floor.insert(a.samples, evaluate::feature_distance(&real, &held_pred));
    }
    results.reference = Some(reference);
    save(&results)?;
    // The memorisation check's reference: each held-out digit's distance to its nearest training
    // digit.
    let train_pixels = train.floats(&all_indices(&train));
    let held_nearest = evaluate::nearest_distances(&held.floats(&all_indices(&held)), &train_pixels, per, &device);

    let mut guide: Option<NoisyClassifier> = None;
    let mut worse: Option<(scorefield::ScoreModel, String, String)> = None;
    for spec in a.runs.iter().filter(|s| !s.trim().is_empty()) {
        let Run { mut options, guidance, autoguidance, own_levels } = parse_run(spec, a.seed)?;
        if !own_levels {
            options.levels = card.sampling.levels_for(options.sampler, options.steps);
        }
        options.validate(&model.sde).map_err(|e| anyhow!("run `{spec}`: {e}"))?;
        if guidance.is_some() && guide.is_none() {
            guide = Some(super::sample::load_classifier(&a.model, &card, a.classifier.as_deref(), &device).map_err(|e| anyhow!("run `{spec}`: {e}"))?);
        }
        let classes = guide.as_ref().map_or(0, |g| g.classes());
        let guidance = guidance.map(|g| spec::every_class(g, classes));
        if autoguidance.is_some() && worse.is_none() {
            let path = a.guide_model.as_ref().ok_or_else(|| anyhow!("run `{spec}`: `ag=` needs --guide-model, the worse model"))?;
            let (worse_card, worse_model) = super::load(path, &device).map_err(|e| anyhow!("run `{spec}`: {e}"))?;
            card.check_guide(&worse_card).map_err(|e| anyhow!("run `{spec}`: {e}"))?;
            let bytes = std::fs::read(files::weights_path(path, &worse_card))?;
            worse = Some((worse_model, path.display().to_string(), format!("{:x}", Sha256::digest(&bytes))[..16].to_string()));
        }
        let start = Instant::now();
        let mut pixels = Vec::with_capacity(a.samples * per);
        let mut evals = 0;
        let mut done = 0;
        while done < a.samples {
            let n = a.batch.min(a.samples - done);
            // Image i of the run is image i of the seed's sequence (per-sample noise), whatever the
            // batch size; so is its class when guided to every class in turn.
            let batch_options = SampleOptions { first_sample: done as u64, ..options.clone() };
            let mut observer = progress("sampling");
            let shape = [n, c, h, w];
            let score = RunScore::new(&model, worse.as_ref().map(|(bad, _, _)| bad).zip(autoguidance), guide.as_ref().zip(guidance.clone().map(|g| g.from_sample(done as u64)))).map_err(|e| anyhow!("run `{spec}`: {e}"))?;
            let out = pollster::block_on(score.sample(shape, &batch_options, &device, &mut observer)).map_err(|e| anyhow!("run `{spec}`: {e}"))?;
            evals += (out.evals + score.guide_evals()) * n;
            let batch = pollster::block_on(read_tensor(out.x)).map_err(|e| anyhow!("run `{spec}`: {e}"))?;
            pixels.extend(batch.data.iter().map(|v| (v - lo) / (hi - lo)));
            done += n;
            eprintln!("\r{spec}: {done}/{} samples, {:.0}s", a.samples, start.elapsed().as_secs_f64());
        }
        let seconds = start.elapsed().as_secs_f64();
        let predictions: Predictions = evaluate::predict(&classifier, &pixels, shape, 500, &device);
        let quality = evaluate::quality(&predictions, &held_pred);
        let nearest = evaluate::nearest_distances(&pixels, &train_pixels, per, &device);
        let memorisation = evaluate::memorisation(&nearest, &held_nearest, NEAR_COPY_QUANTILE);
        let requested_class = guidance.as_ref().map(|_| {
            let labels = predictions.labels();
            labels.iter().enumerate().filter(|&(i, &y)| y == i % classes).count() as f64 / labels.len() as f64
        });
        let grid = format!("{}.png", spec.replace([':', '/'], "-"));
        let first = Batch { shape: [100, c, h, w], data: pixels[..100 * per].to_vec() };
        io::write_grid_png(&a.out.join(&grid), &first, [0.0, 1.0], 2)?;
        eprintln!(
            "{spec}: confident {:.1}%, class entropy {:.3}, Fréchet {:.2}, near-copies {:.1}% (held-out {:.0}%), {:.0} evals/sample, {seconds:.0}s",
            100.0 * quality.confident,
            quality.class_entropy,
            quality.frechet,
            100.0 * memorisation.sample_near_copies,
            100.0 * NEAR_COPY_QUANTILE,
            evals as f64 / a.samples as f64
        );
        if let Some(share) = requested_class {
            eprintln!("{spec}: {:.1}% of the samples are of the class they were drawn for", 100.0 * share);
        }
        let result = RunResult { run: spec.clone(), options, samples: a.samples, evals_per_sample: evals as f64 / a.samples as f64, seconds, quality, grid, memorisation: Some(memorisation), guidance: guidance.as_ref().map(|g| g.scale), guidance_min_sigma: guidance.as_ref().map(|g| g.min_sigma), guidance_max_sigma: guidance.as_ref().map(|g| g.max_sigma), requested_class, autoguidance: autoguidance.zip(worse.as_ref()).map(|(g, (_, model, sha))| AutoguidanceReport { weight: g.weight, min_sigma: g.min_sigma, max_sigma: Some(g.max_sigma).filter(|s| s.is_finite()), model: model.clone(), weights_sha256: sha.clone() }) };
        results.runs.retain(|r| !(r.run == result.run && r.samples == result.samples));
        results.runs.push(result);
        save(&results)?;
    }

    if a.likelihood_images > 0 {
        let n = a.likelihood_images.min(held.len());
        let options = LikelihoodOptions::default();
        let mut per_seed = Vec::new();
        for seed in 0..a.likelihood_seeds.max(1) {
            let start = Instant::now();
            let mut bpd = Vec::new();
            let mut evals = 0;
            // Evenly spread over the held-out set (it is ordered by class): every class whatever n.
            let indices: Vec<usize> = (0..n).map(|k| k * held.len() / n).collect();
            for chunk in indices.chunks(100) {
                let pixels: Vec<u8> = chunk.iter().flat_map(|&i| held.image(i).iter().copied()).collect();
                let values = likelihood::dequantize(&pixels, card.image.range, seed.wrapping_mul(1_000_003).wrapping_add(chunk[0] as u64));
                let x = Tensor::<4>::from_data(TensorData::new(values, [chunk.len(), c, h, w]), &device);
                let opts = LikelihoodOptions { seed: seed.wrapping_mul(1_000_003).wrapping_add(chunk[0] as u64), ..options.clone() };
                let result = pollster::block_on(likelihood::log_likelihood(&model, &model.sde, x, &opts, &mut scorefield::sampling::no_observer()))?;
                evals += result.evals;
                bpd.extend(result.dequantized_bits_per_dim(card.image.range));
                eprintln!("bits/dim seed {seed}: {}/{n} images, running mean {:.4}, {:.0}s", bpd.len(), mean(&bpd), start.elapsed().as_secs_f64());
            }
            per_seed.push(SeedBpd { seed, bits_per_dim: mean(&bpd), std_over_images: std(&bpd), evals, seconds: start.elapsed().as_secs_f64() });
        }
        let means: Vec<f64> = per_seed.iter().map(|s| s.bits_per_dim).collect();
        results.likelihood = Some(LikelihoodReport { images: n, rtol: options.rtol, atol: options.atol, mean: mean(&means), std_over_seeds: std(&means), per_seed });
        save(&results)?;
    }

    for (path, other) in a.plot_with.iter().zip(&others) {
        comparable(path, other, &results)?;
    }
    if results.runs.iter().any(|r| r.guidance.is_none()) {
        let plot = a.out.join("quality-vs-evals.svg");
        let mut sets = vec![(if others.is_empty() { String::new() } else { model_label(&results.model) }, &results)];
        sets.extend(others.iter().map(|o| (model_label(&o.model), o)));
        std::fs::write(&plot, quality_plot(&sets)).map_err(|e| anyhow!("{}: {e}", plot.display()))?;
    }
    if a.card {
        write_card_metrics(&a.model, &results)?;
    }
    print!("{}", report(&results));
    Ok(())
}


#[cfg(test)]
mod tests {
    use scorefield::sampling::{Sampler, guidance::{self, Guidance}};
    use super::*;

    /// The committed reference classifier loads as the evaluation's configuration; a file that
    /// is not one is refused by name, never replaced by a freshly trained network.
    #[test]
    fn the_reference_classifier_loads_and_a_wrong_file_is_refused() {
        let device = Device::flex();
        let none = data::mnist::empty();
        let cache = std::env::temp_dir();
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let (net, _, loss, file) = classifier(Some(&root.join(REFERENCE_CLASSIFIER)), &cache, &none, &device).unwrap();
        assert_eq!((net.num_params(), loss, file), (426_122, None, root.join(REFERENCE_CLASSIFIER)));
        let err = classifier(Some(&root.join("Cargo.toml")), &cache, &none, &device).err().unwrap();
        assert!(err.to_string().contains("Cargo.toml: not a classifier of this configuration"), "{err}");
    }

    #[test]
    fn run_specs_parse_into_sampler_options() {
        let em = parse_run("em:1000", 3).unwrap().options;
        assert_eq!((em.sampler, em.steps, em.seed), (Sampler::EulerMaruyama, 1000, 3));
        let pc = parse_run("pc:200", 0).unwrap().options;
        assert_eq!((pc.sampler, pc.steps, pc.corrector_steps), (Sampler::PredictorCorrector, 200, Some(1)));
        let ode = parse_run("ode-rk45:1e-3", 0).unwrap().options;
        assert_eq!((ode.rtol, ode.atol), (1e-3, 1e-3));
        let ald = parse_run("ald:10x20", 0).unwrap().options;
        assert_eq!((ald.steps, ald.corrector_steps), (10, Some(20)));
        assert!(parse_run("em", 0).unwrap_err().to_string().contains("SAMPLER:ARG"));
        assert!(parse_run("ald:10", 0).unwrap_err().to_string().contains("LEVELSxSTEPS"));
        assert!(parse_run("magic:10", 0).is_err());
        let Run { options: churned, guidance: unguided, .. } = parse_run("edm-heun:18:churn=40", 0).unwrap();
        assert_eq!(unguided, None);
        let guided = parse_run("dpmpp-2m:10:guidance=2.5", 0).unwrap().guidance;
        assert_eq!(guided.map(|g| (g.scale, g.max_sigma)), Some((2.5, guidance::DEFAULT_GUIDANCE_MAX_SIGMA)));
        let bounded = parse_run("dpmpp-2m:10:guidance=2:gmax=5", 0).unwrap().guidance;
        assert_eq!(bounded.clone().map(|g| g.max_sigma), Some(5.0));
        // Every class of the classifier in turn, nine for the emoji; a batch starting at sample
        // 12 starts at class 12 mod 9 = 3.
        let nine = spec::every_class(bounded.unwrap(), 9);
        assert_eq!((nine.classes, nine.max_sigma), ((0..9).collect::<Vec<_>>(), 5.0));
        assert_eq!(spec::every_class(Guidance::new(vec![0], 2.0), 9).from_sample(12).classes[0], 3);
        assert!(parse_run("dpmpp-2m:10:gmax=5", 0).unwrap_err().to_string().contains("give `guidance`"));
        assert!(parse_run("dpmpp-2m:10:guidance=1:gmin=5:gmax=2", 0).unwrap_err().to_string().contains("guidanceMinSigma"));
        assert!(parse_run("dpmpp-2m:10:guidance=-1", 0).unwrap_err().to_string().contains("guidance"));
        assert_eq!((churned.sampler, churned.steps, churned.churn), (Sampler::EdmHeun, 18, 40.0));
        assert!(parse_run("edm-heun:18:churn", 0).unwrap_err().to_string().contains("KEY=VALUE"));
        assert!(parse_run("edm-heun:18:warp=2", 0).unwrap_err().to_string().contains("unknown option `warp`"));
        let chosen = parse_run("consistency:3:levels=1.4/0.5", 0).unwrap();
        assert_eq!((chosen.options.levels, chosen.own_levels), (vec![1.4, 0.5], true));
        assert!(parse_run("consistency:3:rho=5", 0).unwrap().own_levels);
        assert!(!parse_run("consistency:3", 0).unwrap().own_levels);
        assert!(parse_run("consistency:3:levels=1.4/x", 0).unwrap_err().to_string().contains("separated by `/`"));
        assert!(parse_run("edm-heun:18:churn=-1", 0).unwrap_err().to_string().contains("churn"));
        let auto = parse_run("dpmpp-2m:17:ag=2:agmin=0.5", 0).unwrap().autoguidance.unwrap();
        assert_eq!((auto.weight, auto.min_sigma, auto.max_sigma), (2.0, 0.5, f64::INFINITY));
        assert!(parse_run("dpmpp-2m:17:ag=0.5", 0).unwrap_err().to_string().contains("`autoguidance`"));
        assert!(parse_run("dpmpp-2m:17:agmax=3", 0).unwrap_err().to_string().contains("give `ag`"));
        assert!(parse_run("dpmpp-2m:17:ag=2:guidance=2", 0).unwrap_err().to_string().contains("not combined"));
        let placed = parse_run("edm-heun:18:churn=40:tmin=0.3:tmax=10:snoise=1.007", 0).unwrap().options;
        assert_eq!((placed.s_tmin, placed.s_tmax, placed.s_noise), (0.3, 10.0, 1.007));
        assert!(parse_run("edm-heun:18:churn=40:tmin=5:tmax=1", 0).unwrap_err().to_string().contains("s_tmax"));
    }

    /// One line per sampler through its runs in order of evaluations, a dot per run, and the
    /// held-out reference: 3 runs of 2 samplers give 2 polylines and 3 dots, an autoguided run
    /// another line and dot; 67 % confident at 10 evaluations sits at y = top + (1 − 0.67)·height.
    #[test]
    fn quality_plot_draws_a_line_per_sampler() {
        let quality = |confident: f64| Quality { count: 1000, confident, class_entropy: 2.3, frechet: 60.0, histogram: vec![0.1; 10] };
        let run = |spec: &str, evals: f64, confident: f64| RunResult {
            run: spec.into(),
            options: parse_run(spec, 0).unwrap().options,
            samples: 1000,
            evals_per_sample: evals,
            seconds: 1.0,
            quality: quality(confident),
            grid: String::new(),
            memorisation: None,
            guidance: parse_run(spec, 0).unwrap().guidance.map(|g| g.scale),
            guidance_min_sigma: None,
            guidance_max_sigma: None,
            requested_class: None,
            autoguidance: parse_run(spec, 0).unwrap().autoguidance.map(|a| AutoguidanceReport { weight: a.weight, min_sigma: a.min_sigma, max_sigma: Some(a.max_sigma).filter(|s| s.is_finite()), model: "guide.json".into(), weights_sha256: String::new() }),
        };
        // (A guided run is left out of the plot: still 2 lines and 3 dots, and an autoguided run
        // is a line of its own.)
        let results = Results {
            runs: vec![run("dpmpp-2m:20", 20.0, 0.7), run("dpmpp-2m:10", 10.0, 0.67), run("edm-heun:18", 35.0, 0.72), run("dpmpp-2m:10:guidance=2", 10.0, 0.9), run("dpmpp-2m:10:ag=2", 20.0, 0.86)],
            reference: Some(Reference { held_out: Some(quality(0.95)), ..Default::default() }),
            ..Default::default()
        };
        // The results file reads back (JSON has no ∞: an unbounded interval is stored as null).
        let back: Results = serde_json::from_str(&serde_json::to_string(&results).unwrap()).unwrap();
        assert_eq!(back.runs.len(), 5);
        let svg = quality_plot(&[(String::new(), &results)]);
        assert_eq!(svg.matches("<polyline").count(), 3);
        assert_eq!(svg.matches("<circle").count(), 4);
        assert!(svg.contains(">dpmpp-2m ag=2<"), "{svg}");
        assert!(svg.contains("held-out images") && svg.contains(">dpmpp-2m<") && svg.contains(">edm-heun<"));
        // x: log10(10) is the left edge of the 10..100 decade; y: 20 + 240·0.33 = 99.2.
        assert!(svg.contains("cx=\"60.0\" cy=\"99.2\""), "{svg}");

        // Beside another model's results (a consistency model at 1 and 2 evaluations): its line is
        // named by its model and the x axis widens to the decade from 1; 80 % at 2 evaluations sits
        // at x = 60 + 410·log10(2)/2 (two decades, 1 to 100, over the plot's 410 px) and
        // y = 20 + 240·0.2 = 68.
        let student = Results { model: "www/models/mnist-cm.json".into(), runs: vec![run("consistency:1", 1.0, 0.6), run("consistency:2", 2.0, 0.8)], ..Default::default() };
        let both = quality_plot(&[("mnist".into(), &results), (model_label(&student.model), &student)]);
        assert_eq!(both.matches("<polyline").count(), 4);
        assert_eq!(both.matches("<circle").count(), 6);
        assert!(both.contains(">mnist-cm: consistency<") && both.contains(">mnist: dpmpp-2m ag=2<"), "{both}");
        let x2 = 60.0 + 410.0 * 2f64.log10() / 2.0;
        assert!(both.contains(&format!("cx=\"{x2:.1}\" cy=\"68.0\"")), "{both}");
    }

    /// Results scored by another classifier, or against another reference, are not plotted
    /// beside these: the refusal names the file and why.
    #[test]
    fn other_results_must_share_the_judge_and_the_reference() {
        let dir = std::env::temp_dir().join(format!("scorefield-plot-with-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let judged = |sha: &str, floor: f64| Results {
            classifier: Some(ClassifierReport { file: String::new(), sha256: sha.into(), config: ClassifierConfig::default(), parameters: 1, held_out_accuracy: 0.98, last_epoch_loss: None }),
            reference: Some(Reference { floor: BTreeMap::from([(1000, floor)]), ..Default::default() }),
            ..Default::default()
        };
        let ours = judged("aa", 30.9);
        let write = |name: &str, r: &Results| {
            let path = dir.join(name);
            std::fs::write(&path, serde_json::to_string(r).unwrap()).unwrap();
            path
        };
        let check = |name: &str, r: &Results| {
            let path = write(name, r);
            comparable(&path, &read_results(&path).unwrap(), &ours).map_err(|e| e.to_string())
        };
        // The same floor up to the last bits of another CPU's sums is the same reference.
        assert!(check("same.json", &judged("aa", 30.9 * (1.0 + 2e-7))).is_ok());
        let err = check("judge.json", &judged("bb", 30.9)).unwrap_err();
        assert!(err.contains("judge.json") && err.contains("another classifier"), "{err}");
        let err = check("seed.json", &judged("aa", 22.3)).unwrap_err();
        assert!(err.contains("seed.json") && err.contains("another reference"), "{err}");
        std::fs::write(dir.join("junk.json"), "{").unwrap();
        assert!(read_results(&dir.join("junk.json")).unwrap_err().to_string().contains("not an evaluation's results.json"));
        assert!(read_results(&dir.join("missing.json")).unwrap_err().to_string().contains("missing.json"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
