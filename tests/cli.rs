//! The `scorefield` command line, end to end on a small randomly initialised model.

use std::path::{Path, PathBuf};
use std::process::Command;

use scorefield::io::{self, Batch, NpyData};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_scorefield"))
}

fn workdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("scorefield-cli-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs the command; returns (success, stdout, stderr).
fn run(cmd: &mut Command) -> (bool, String, String) {
    let out = cmd.output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

fn init_small(dir: &Path) -> PathBuf {
    let card = dir.join("tiny.json");
    let (ok, stdout, stderr) = run(bin().args(["init", "--out"]).arg(&card).args(["--height", "8", "--width", "8", "--widths", "8,16", "--embed-dim", "16"]));
    assert!(ok, "init failed: {stderr}");
    assert!(stdout.contains("untrained"), "{stdout}");
    assert!(dir.join("tiny.safetensors").exists());
    card
}

#[test]
fn init_sample_inpaint_and_likelihood_work_end_to_end() {
    let dir = workdir("e2e");
    let card = init_small(&dir);
    for sampler in ["em", "rd", "pc", "ald", "ode-euler", "ode-heun", "ode-rk45", "edm-heun", "dpmpp-2m"] {
        let png = dir.join(format!("{sampler}.png"));
        let npy = dir.join(format!("{sampler}.npy"));
        let (ok, stdout, stderr) = run(bin()
            .args(["sample", "--model"])
            .arg(&card)
            .args(["--sampler", sampler, "--steps", "4", "--corrector-steps", "2", "--rtol", "1e-2", "--atol", "1e-2", "--n", "3", "--seed", "1", "--out"])
            .arg(&png)
            .arg("--npy")
            .arg(&npy));
        assert!(ok, "{sampler}: {stderr}");
        assert!(stdout.contains("3 samples"), "{stdout}");
        let (shape, data) = io::read_npy(&npy).unwrap();
        assert_eq!(shape, [3, 1, 8, 8], "{sampler}");
        assert!(matches!(data, NpyData::F32(v) if v.iter().all(|x| x.is_finite())));
        assert!(io::read_png(&png, 1).is_ok());
    }

    // Inpaint: keep the left half of an image, generate the right half.
    let image = Batch { shape: [1, 1, 8, 8], data: (0..64).map(|i| (i % 8) as f32 / 8.0).collect() };
    let mask = Batch { shape: [1, 1, 8, 8], data: (0..64).map(|i| if i % 8 < 4 { 1.0 } else { 0.0 }).collect() };
    io::write_npy(&dir.join("image.npy"), &image).unwrap();
    io::write_npy(&dir.join("mask.npy"), &mask).unwrap();
    let (ok, stdout, stderr) = run(bin()
        .args(["inpaint", "--model"])
        .arg(&card)
        .args(["--image"])
        .arg(dir.join("image.npy"))
        .arg("--mask")
        .arg(dir.join("mask.npy"))
        .args(["--sampler", "pc", "--steps", "5", "--n", "2", "--out"])
        .arg(dir.join("inpainted.png"))
        .arg("--npy")
        .arg(dir.join("inpainted.npy")));
    assert!(ok, "{stderr}");
    assert!(stdout.contains("32 of 64 pixels kept"), "{stdout}");
    let (_, NpyData::F32(out)) = io::read_npy(&dir.join("inpainted.npy")).unwrap() else { panic!("dtype") };
    for copy in out.chunks(64) {
        for i in 0..64 {
            if i % 8 < 4 {
                assert_eq!(copy[i], image.data[i], "kept pixel {i} changed");
            }
        }
    }

    // Likelihood of the samples (continuous) and of a PNG (dequantised). DPM-Solver++'s: four
    // Euler–Maruyama steps from σ = 40 leave values far outside the model's range.
    let (ok, stdout, stderr) = run(bin().args(["likelihood", "--model"]).arg(&card).arg("--images").arg(dir.join("dpmpp-2m.npy")).args(["--rtol", "1e-3", "--atol", "1e-3"]));
    assert!(ok, "{stderr}");
    assert_eq!(stdout.lines().filter(|l| l.starts_with("image ")).count(), 3, "{stdout}");
    let mean_line = stdout.lines().find(|l| l.starts_with("mean:")).expect("a mean line");
    let mean: f64 = mean_line.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(mean.is_finite() && mean.abs() < 100.0, "{mean_line}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn errors_are_one_clear_line_and_a_failure_status() {
    let dir = workdir("errors");
    let card = init_small(&dir);
    let out = dir.join("x.png");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["sample".into(), "--model".into(), card.display().to_string(), "--sampler".into(), "euler".into()], "`sampler` is `euler`"),
        (vec!["sample".into(), "--model".into(), card.display().to_string(), "--steps".into(), "0".into()], "`steps` must be"),
        (vec!["sample".into(), "--model".into(), card.display().to_string(), "--n".into(), "0".into()], "`batch` must be"),
        (vec!["sample".into(), "--model".into(), dir.join("missing.json").display().to_string()], "missing.json"),
    ];
    for (args, expected) in cases {
        let (ok, _, stderr) = run(bin().args(&args).arg("--out").arg(&out));
        assert!(!ok, "{args:?} succeeded");
        assert_eq!(stderr.trim().lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.starts_with("error: ") && stderr.contains(expected), "{args:?}: {stderr}");
    }
    // A corrupt weights file names the problem.
    std::fs::write(dir.join("tiny.safetensors"), b"garbage").unwrap();
    let (ok, _, stderr) = run(bin().args(["sample", "--model"]).arg(&card).arg("--out").arg(&out));
    assert!(!ok);
    assert!(stderr.contains("truncated or corrupt"), "{stderr}");
    std::fs::remove_dir_all(&dir).ok();
}

/// `--sigma-min` reaches the model card, and σ_min ≥ σ_max is refused naming the field.
#[test]
fn init_takes_sigma_min_and_refuses_an_inverted_range() {
    let dir = workdir("sigma");
    let card = dir.join("sharp.json");
    let (ok, _, stderr) = run(bin().args(["init", "--out"]).arg(&card).args(["--height", "8", "--width", "8", "--widths", "8", "--embed-dim", "8", "--sigma-min", "0.001", "--sigma-max", "10"]));
    assert!(ok, "{stderr}");
    let text = std::fs::read_to_string(&card).unwrap();
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(value["sde"]["sigma_min"], 0.001);
    let (ok, _, stderr) = run(bin().args(["init", "--out"]).arg(dir.join("bad.json")).args(["--sigma-min", "30", "--sigma-max", "25"]));
    assert!(!ok);
    assert!(stderr.contains("sde.sigma_max"), "{stderr}");
    std::fs::remove_dir_all(&dir).ok();
}

/// Autoguidance from the command line: the worse model named by `--guide-model` or by the card's
/// `guide`; each step in the interval evaluates both networks (dpmpp-2m, 4 steps: 4 + 4
/// evaluations guided everywhere, 4 + 2 over the default (1, ∞)); a weight
/// of 1 is the model alone; a missing guide, a weight below 1 and a guide with other noise levels
/// are refused naming the problem.
#[test]
fn autoguidance_uses_the_worse_model_and_refuses_what_cannot_work() {
    let dir = workdir("autoguidance");
    let card = init_small(&dir);
    let guide = dir.join("guide.json");
    // Untrained U-Nets output zero (EDM's zero-initialised last layer), so the guide differs by its
    // σ_data: another c_skip, another denoiser.
    let init = |path: &Path, sigma_max: &str| run(bin().args(["init", "--out"]).arg(path).args(["--height", "8", "--width", "8", "--widths", "8", "--embed-dim", "8", "--sigma-max", sigma_max, "--sigma-data", "1.0", "--seed", "7"]));
    let default_sigma_max = scorefield::precond::EDM_MNIST_SIGMA_MAX.to_string();
    assert!(init(&guide, &default_sigma_max).0);
    let sample = |extra: &[&str], name: &str| {
        let npy = dir.join(format!("{name}.npy"));
        let (ok, stdout, stderr) = run(bin().args(["sample", "--model"]).arg(&card).args(["--sampler", "dpmpp-2m", "--steps", "4", "--n", "2", "--seed", "3"]).args(extra).arg("--out").arg(dir.join(format!("{name}.png"))).arg("--npy").arg(&npy));
        let data = if ok { match io::read_npy(&npy).unwrap().1 { NpyData::F32(v) => v, _ => panic!("dtype") } } else { vec![] };
        (ok, stdout, stderr, data)
    };
    let g = guide.display().to_string();
    let (ok, stdout, stderr, guided) = sample(&["--guide-model", &g, "--autoguidance", "2", "--autoguidance-min-sigma", "0"], "guided");
    assert!(ok, "{stderr}");
    assert!(stdout.contains("8 network evaluations, autoguidance w = 2: 4 of them by the guide model"), "{stdout}");
    // The default interval (1, ∞): of the 4-step Karras grid σ = 40, 5.2, 0.29, 0.002 the guide
    // sees the first two.
    let (ok, stdout, stderr, _) = sample(&["--guide-model", &g, "--autoguidance", "2"], "interval");
    assert!(ok, "{stderr}");
    assert!(stdout.contains("6 network evaluations, autoguidance w = 2: 2 of them by the guide model"), "{stdout}");
    let (ok, stdout, _, alone) = sample(&["--guide-model", &g, "--autoguidance", "1"], "alone");
    assert!(ok && stdout.contains("(4 network evaluations)"), "{stdout}");
    let (_, _, _, plain) = sample(&[], "plain");
    assert_eq!(alone, plain, "w = 1 is the model alone");
    assert!(guided.iter().zip(&plain).any(|(a, b)| (a - b).abs() > 1e-3), "the guide changed nothing");
    // The card's `guide`, relative to the card, is the default guide at the default weight.
    let mut value: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&card).unwrap()).unwrap();
    value["guide"] = "guide.json".into();
    std::fs::write(&card, serde_json::to_string(&value).unwrap()).unwrap();
    let (ok, stdout, stderr, by_card) = sample(&["--autoguidance", "2", "--autoguidance-min-sigma", "0"], "by-card");
    assert!(ok, "{stderr}");
    assert!(stdout.contains("4 of them by the guide model"), "{stdout}");
    assert_eq!(by_card, guided);
    let (ok, stdout, _, _) = sample(&[], "default");
    assert!(ok && stdout.contains(&format!("autoguidance w = {}", scorefield::sampling::autoguidance::DEFAULT_AUTOGUIDANCE)), "{stdout}");
    // Refusals.
    let (ok, _, stderr, _) = sample(&["--autoguidance", "0.5"], "low");
    assert!(!ok && stderr.contains("`autoguidance` must be in [1,"), "{stderr}");
    let other = dir.join("other.json");
    assert!(init(&other, "7").0);
    let (ok, _, stderr, _) = sample(&["--guide-model", &other.display().to_string()], "other");
    assert!(!ok && stderr.contains("`guide`") && stderr.contains("SDE"), "{stderr}");
    value.as_object_mut().unwrap().remove("guide");
    std::fs::write(&card, serde_json::to_string(&value).unwrap()).unwrap();
    let (ok, _, stderr, _) = sample(&["--autoguidance", "2"], "none");
    assert!(!ok && stderr.contains("names no `guide`"), "{stderr}");
    std::fs::remove_dir_all(&dir).ok();
}

/// `scorefield average` writes Σ cᵢ θᵢ of the snapshots' tensors as a model the card loads, names
/// the average in the card, and refuses snapshots of another network and coefficients that do
/// not fit.
#[test]
fn average_combines_snapshots_of_one_network() {
    let dir = workdir("average");
    let init = |name: &str, seed: &str, widths: &str| {
        let path = dir.join(format!("{name}.json"));
        let (ok, _, stderr) = run(bin().args(["init", "--out"]).arg(&path).args(["--height", "8", "--width", "8", "--widths", widths, "--embed-dim", "8", "--seed", seed]));
        assert!(ok, "{stderr}");
        path
    };
    let (a, b) = (init("a", "1", "8"), init("b", "2", "8"));
    // Each snapshot's card carries its own measurements, which the average must not inherit.
    for card in [&a, &b] {
        let mut value: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(card).unwrap()).unwrap();
        value["metrics"] = serde_json::json!({ "held_out_bits_per_dim": { "mean": 1.5 } });
        std::fs::write(card, serde_json::to_string(&value).unwrap()).unwrap();
    }
    let out = dir.join("avg.json");
    let (ok, stdout, stderr) = run(bin().args(["average", "--dtype", "f32", "--coefficients", "0.25,0.75", "--snapshots"]).arg(format!("{},{}", a.display(), b.display())).arg("--out").arg(&out));
    assert!(ok, "{stderr}");
    assert!(stdout.contains("avg.safetensors"), "{stdout}");
    let tensors = |name: &str| scorefield::store::safetensors::decode(&std::fs::read(dir.join(format!("{name}.safetensors"))).unwrap()).unwrap();
    let (ta, tb, tavg) = (tensors("a"), tensors("b"), tensors("avg"));
    assert_eq!(ta.len(), tavg.len());
    let mut differ = false;
    for ((x, y), z) in ta.iter().zip(&tb).zip(&tavg) {
        assert_eq!((&x.name, &y.name), (&z.name, &z.name));
        for ((p, q), r) in x.values.iter().zip(&y.values).zip(&z.values) {
            assert!((0.25 * p + 0.75 * q - r).abs() <= 1e-6 * (1.0 + r.abs()), "{}: {r} is not 0.25·{p} + 0.75·{q}", z.name);
            differ |= (p - q).abs() > 1e-3;
        }
    }
    assert!(differ, "the two snapshots were the same; the test would not see a wrong coefficient");
    let card: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(card["weights"], "avg.safetensors");
    assert!(card["training"]["command"].as_str().unwrap().starts_with("scorefield average: 0.25 × "), "{card}");
    assert!(card["metrics"].as_object().is_some_and(|m| m.is_empty()), "a snapshot's metrics are not the average's: {card}");
    // Refusals, by name.
    let average = |snapshots: String, extra: &[&str]| run(bin().args(["average", "--snapshots"]).arg(snapshots).args(extra).arg("--out").arg(dir.join("bad.json")));
    let wide = init("wide", "1", "16");
    let (ok, _, stderr) = average(format!("{},{}", a.display(), wide.display()), &[]);
    assert!(!ok && stderr.contains("another network"), "{stderr}");
    let (ok, _, stderr) = average(format!("{},{}", a.display(), b.display()), &["--coefficients", "0.5,0.6"]);
    assert!(!ok && stderr.contains("sum to 1.1"), "{stderr}");
    let (ok, _, stderr) = average(format!("{},{}", a.display(), b.display()), &["--coefficients", "1"]);
    assert!(!ok && stderr.contains("1 given for 2 snapshots"), "{stderr}");
    std::fs::remove_dir_all(&dir).ok();
}

/// "Train on your own pictures" as the how-to gives it: a folder of PNGs in two subfolders
/// (classes), one of them broken; `data` names the broken file; without it, `data` reports 2
/// classes of 3 pictures (one of each class held out) and writes a preview; `train --data DIR`
/// trains a colour 8×8 network on them (its card names the folder and the shape), and `sample`
/// draws 8×8 colour images from it. `distill` makes a consistency model of it in two sittings
/// (the second resumes the checkpoint, which names the teacher), whose card samples with its own
/// sampler by default and refuses a score model's.
#[test]
fn a_folder_of_pictures_trains_and_samples() {
    let dir = workdir("folder");
    let pictures = dir.join("pictures");
    for (class, colour) in [("cats", [200u8, 40, 40]), ("dogs", [40, 40, 200])] {
        std::fs::create_dir_all(pictures.join(class)).unwrap();
        for i in 0..3 {
            // 12×10 pictures: a coloured square on transparency, placed by i.
            let mut rgba = vec![0u8; 12 * 10 * 4];
            for y in 2..8 {
                for x in (1 + i)..(7 + i) {
                    rgba[(y * 12 + x) * 4..(y * 12 + x) * 4 + 4].copy_from_slice(&[colour[0], colour[1], colour[2], 255]);
                }
            }
            let mut png = Vec::new();
            image::ImageEncoder::write_image(image::codecs::png::PngEncoder::new(&mut png), &rgba, 12, 10, image::ExtendedColorType::Rgba8).unwrap();
            std::fs::write(pictures.join(class).join(format!("{i}.png")), png).unwrap();
        }
    }
    std::fs::write(pictures.join("dogs/broken.png"), b"not a png").unwrap();
    let (ok, _, stderr) = run(bin().arg("data").arg(&pictures).args(["--side", "8"]));
    assert!(!ok && stderr.contains("broken.png"), "a broken picture must be named: {stderr}");
    std::fs::remove_file(pictures.join("dogs/broken.png")).unwrap();

    let preview = dir.join("preview.png");
    let (ok, stdout, stderr) = run(bin().arg("data").arg(&pictures).args(["--side", "8", "--preview"]).arg(&preview));
    assert!(ok, "{stderr}");
    assert!(stdout.contains("6 images of 8×8×3") && stdout.contains("cats: 2 training, 1 held out") && stdout.contains("dogs: 2 training, 1 held out"), "{stdout}");
    assert!(io::read_png(&preview, 3).is_ok());

    let card = dir.join("mine.json");
    let (ok, stdout, stderr) = run(bin()
        .args(["train", "--data"])
        .arg(&pictures)
        .args(["--side", "8", "--flip", "--widths", "4,8", "--embed-dim", "8", "--batch-size", "2", "--steps", "3", "--warmup", "1", "--snapshots", "none", "--out"])
        .arg(&card)
        .arg("--checkpoint")
        .arg(dir.join("ckpt")));
    assert!(ok, "{stderr}");
    assert!(stdout.contains("trained to step 3"), "{stdout}");
    let written = std::fs::read_to_string(&card).unwrap();
    assert!(written.contains("\"channels\": 3") && written.contains("pictures"), "{written}");
    // Pictures composited on white: the card names the white background its front ends paint on.
    assert!(written.contains("\"background\": 1.0"), "{written}");
    let npy = dir.join("mine.npy");
    let (ok, _, stderr) = run(bin().args(["sample", "--model"]).arg(&card).args(["--sampler", "dpmpp-2m", "--steps", "4", "--n", "2", "--out"]).arg(dir.join("mine.png")).arg("--npy").arg(&npy));
    assert!(ok, "{stderr}");
    let (shape, _) = io::read_npy(&npy).unwrap();
    assert_eq!(shape, [2, 3, 8, 8]);

    // The page's likelihood references of this model: a held-out picture named by the card's
    // subject and its class, and a scribble in the data's colours (dark ink on the white the
    // pictures were composited on), each with its bits/dim.
    let refs = dir.join("mine-likelihood.json");
    let (ok, _, stderr) = run(bin().args(["likelihood", "--model"]).arg(&card).arg("--references").arg(&refs).arg("--data").arg(&pictures).args(["--side", "8"]));
    assert!(ok, "{stderr}");
    let refs: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&refs).unwrap()).unwrap();
    let list = refs["images"].as_array().unwrap();
    let names: Vec<&str> = list.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["held-out", "scribble", "noise"]);
    let label = list[0]["label"].as_str().unwrap();
    assert!(label.starts_with("a held-out image (") && (label.contains("cats") || label.contains("dogs")), "{label}");
    let scribble: Vec<u64> = list[1]["pixels"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
    assert_eq!(scribble.len(), 3 * 8 * 8);
    assert!([0, 64, 128].iter().all(|&corner| scribble[corner] == 255) && scribble.iter().any(|&v| v < 128), "dark ink on white: {scribble:?}");
    assert!(list.iter().all(|r| r["bits_per_dim"].as_f64().is_some_and(f64::is_finite)));

    let student = dir.join("mine-cm.json");
    let distill = |extra: &[&str]| {
        let (ok, stdout, stderr) = run(bin().arg("distill").args(extra).arg("--data").arg(&pictures).args(["--side", "8", "--checkpoint"]).arg(dir.join("ckpt-cm")).arg("--out").arg(&student));
        assert!(ok, "{stderr}");
        stdout
    };
    let teacher = card.to_string_lossy().into_owned();
    // Autoguided by a model of the same data (here the teacher itself: any card `check_guide`
    // accepts); the resumed sitting finds the guide from the checkpoint.
    assert!(distill(&["--teacher", &teacher, "--guide-model", &teacher, "--autoguidance", "2", "--steps", "4", "--until", "2", "--batch-size", "2", "--checkpoint-every", "2"]).contains("distilled to step 2"));
    assert!(distill(&["--resume"]).contains("distilled to step 4"));
    let (ok, _, stderr) = run(bin().args(["distill", "--teacher", &teacher, "--intervals-start", "40", "--intervals-end", "10", "--checkpoint"]).arg(dir.join("ckpt-bad")));
    assert!(!ok && stderr.contains("intervals_start ≤ intervals_end") && stderr.contains("40 and 10"), "{stderr}");
    let written = std::fs::read_to_string(&student).unwrap();
    assert!(written.contains("\"consistency\"") && written.contains(&format!("{teacher}, autoguided by {teacher} (w = 2, where σ > 1)")), "{written}");
    let (ok, _, stderr) = run(bin().args(["sample", "--model"]).arg(&student).args(["--n", "2", "--out"]).arg(dir.join("cm.png")).arg("--npy").arg(&npy));
    assert!(ok, "{stderr}");
    assert_eq!(io::read_npy(&npy).unwrap().0, [2, 3, 8, 8]);
    let (ok, _, stderr) = run(bin().args(["sample", "--model"]).arg(&student).args(["--sampler", "dpmpp-2m", "--n", "2", "--out"]).arg(dir.join("cm.png")));
    assert!(!ok && stderr.contains("consistency model") && stderr.contains("dpmpp-2m"), "{stderr}");
    std::fs::remove_dir_all(&dir).ok();
}

/// The README's command-line quick start runs as written: every line of its first `sh` block,
/// with `cargo run --release --` standing for this build's binary, in a fresh folder that sees
/// the repository's `www/` (the shipped models), and each command's output files appear.
#[test]
fn the_readme_cli_quick_start_runs_as_written() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let section = readme.split("## Quick start 3").nth(1).expect("README has a third quick start");
    let block = section.split("```sh\n").nth(1).and_then(|b| b.split("```").next()).expect("a sh block in it");
    let dir = workdir("readme");
    std::os::unix::fs::symlink(root.join("www"), dir.join("www")).ok();
    let mut ran = 0;
    for line in block.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let rest = line.strip_prefix("cargo run --release -- ").unwrap_or_else(|| panic!("not a `cargo run --release --` line: {line}"));
        let args: Vec<&str> = rest.split_whitespace().collect();
        let (ok, stdout, stderr) = run(bin().current_dir(&dir).args(&args));
        assert!(ok, "`{line}` failed:\n{stdout}\n{stderr}");
        for out in args.windows(2).filter(|w| w[0] == "--out" || w[0] == "--npy").map(|w| w[1]) {
            assert!(dir.join(out).exists(), "`{line}` did not write {out}");
        }
        ran += 1;
    }
    assert!(ran >= 2, "the quick start has {ran} commands");
    std::fs::remove_dir_all(&dir).ok();
}

/// The reference docs' tables are what the code says: every subcommand's flags (clap) in
/// docs/reference/cli.md, every sampler with the shipped card's step counts in samplers.md; and
/// every subcommand has its block there.
#[test]
fn the_reference_tables_are_the_code() {
    let (ok, out, err) = run(bin().args(["reference", "--check", "docs/reference/cli.md", "docs/reference/samplers.md"]));
    assert!(ok, "{out}{err}");
    let doc = std::fs::read_to_string("docs/reference/cli.md").unwrap();
    let (_, help, _) = run(bin().arg("help"));
    let listed = help.split("Commands:").nth(1).unwrap().split("\n\n").next().unwrap();
    let commands: Vec<&str> = listed.lines().filter_map(|l| l.split_whitespace().next()).filter(|c| *c != "help").collect();
    assert!(commands.len() >= 12, "{help}");
    for c in commands {
        assert!(doc.contains(&format!("<!-- flags: {c} -->")), "docs/reference/cli.md has no flag table for `{c}`");
    }
    // A stale table is seen: the check fails on a copy whose table lost a row.
    let dir = workdir("reference");
    let stale = dir.join("cli.md");
    std::fs::write(&stale, doc.replacen("| `--seed SEED` |", "| `--sed SEED` |", 1)).unwrap();
    let (ok, _, err) = run(bin().args(["reference", "--check"]).arg(&stale));
    assert!(!ok && err.contains("differ from the code"), "{err}");
}
