//! The evaluation's outputs: the Markdown report, the quality-per-evaluation plot and the
//! headline metrics written into the model's card.

use std::path::Path;

use anyhow::anyhow;

use super::{NEAR_COPY_QUANTILE, Results, RunResult};

pub(super) fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

pub(super) fn std(v: &[f64]) -> f64 {
    if v.len() < 2 {
        return 0.0;
    }
    let m = mean(v);
    (v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (v.len() - 1) as f64).sqrt()
}

/// Headline numbers into the card's `metrics` (other keys are kept).
pub(super) fn write_card_metrics(path: &Path, results: &Results) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(path).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    let mut card = scorefield::ModelCard::from_json(&text)?;
    let put = |card: &mut scorefield::ModelCard, key: &str, value: serde_json::Value| {
        card.metrics.insert(key.to_string(), value);
    };
    if let Some(l) = &results.likelihood {
        put(&mut card, "held_out_bits_per_dim", serde_json::json!({ "mean": round(l.mean, 4), "std_over_seeds": round(l.std_over_seeds, 4), "images": l.images, "seeds": l.per_seed.len(), "rtol": l.rtol }));
    }
    if let Some(c) = &results.classifier {
        put(&mut card, "classifier_held_out_accuracy", serde_json::json!(round(c.held_out_accuracy, 4)));
    }
    let classifier = results.classifier.as_ref().map(|c| c.file.clone());
    for r in &results.runs {
        let floor = results.reference.as_ref().and_then(|f| f.floor.get(&r.samples)).copied();
        let mut metrics = serde_json::json!({
            "samples": r.samples,
            "seed": r.options.seed,
            "confident_share": round(r.quality.confident, 4),
            "class_entropy_nats": round(r.quality.class_entropy, 4),
            "frechet": round(r.quality.frechet, 3),
            "frechet_real_floor": floor.map(|f| round(f, 3)),
            "near_copies": r.memorisation.as_ref().map(|m| round(m.sample_near_copies, 4)),
            "evals_per_sample": round(r.evals_per_sample, 1),
            "classifier": classifier,
        });
        if let Some(ag) = &r.autoguidance {
            // The guide as the card names it (beside the card), not the path it was run from.
            metrics["autoguidance"] = serde_json::json!({ "guide": card.guide, "weight": ag.weight, "min_sigma": ag.min_sigma, "max_sigma": ag.max_sigma });
        }
        put(&mut card, &format!("samples/{}", r.run), metrics);
    }
    std::fs::write(path, card.to_json()).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    println!("wrote the metrics into {}", path.display());
    Ok(())
}

fn round(v: f64, digits: i32) -> f64 {
    let s = 10f64.powi(digits);
    (v * s).round() / s
}

/// Confident share against network evaluations per sample (log scale), one line per sampler, with
/// the held-out digits' share dashed, as an SVG: the quality-per-evaluation plot of docs/EVALUATION.md.
/// `sets`: the results to draw, each with the name its lines carry (empty: the sampler alone); the
/// held-out line is the first set's.
pub(super) fn quality_plot(sets: &[(String, &Results)]) -> String {
    let (w, h, left, right, top, bottom) = (640.0, 300.0, 60.0, 170.0, 20.0, 40.0);
    let (pw, ph) = (w - left - right, h - top - bottom);
    // Guided runs are another question (docs/EVALUATION.md, "Guided generation"): not plotted here.
    // Autoguided runs get a line per sampler and weight; another model's lines carry its name.
    let unguided = || sets.iter().flat_map(|(name, r)| r.runs.iter().filter(|run| run.guidance.is_none()).map(move |run| (name, run)));
    let line = |name: &String, run: &RunResult| {
        let sampler = match &run.autoguidance {
            Some(a) => format!("{} ag={}", run.options.sampler.name(), a.weight),
            None => run.options.sampler.name().to_string(),
        };
        if name.is_empty() { sampler } else { format!("{name}: {sampler}") }
    };
    let evals: Vec<f64> = unguided().map(|(_, run)| run.evals_per_sample.max(1.0)).collect();
    let lo = evals.iter().cloned().fold(f64::INFINITY, f64::min).log10().floor();
    let hi = evals.iter().cloned().fold(0.0, f64::max).log10().ceil().max(lo + 1.0);
    let x = |e: f64| left + pw * (e.max(1.0).log10() - lo) / (hi - lo);
    let y = |share: f64| top + ph * (1.0 - share);
    let mut svg = format!("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"11\">\n");
    svg += &format!("<rect x=\"{left}\" y=\"{top}\" width=\"{pw}\" height=\"{ph}\" fill=\"none\" stroke=\"#888\"/>\n");
    for k in 0..=10 {
        let v = k as f64 / 10.0;
        svg += &format!("<text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}%</text>\n", left - 4.0, y(v) + 4.0, k * 10);
    }
    let mut decade = lo;
    while decade <= hi {
        let px = x(10f64.powf(decade));
        svg += &format!("<text x=\"{px:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n", h - bottom + 14.0, 10f64.powf(decade));
        decade += 1.0;
    }
    svg += &format!("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">network evaluations per sample (log scale)</text>\n", left + pw / 2.0, h - 6.0);
    svg += &format!("<text x=\"12\" y=\"{}\" transform=\"rotate(-90 12 {})\" text-anchor=\"middle\">confident &gt; 0.9</text>\n", top + ph / 2.0, top + ph / 2.0);
    let colours = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#7f7f7f"];
    let mut lines: Vec<String> = unguided().map(|(name, run)| line(name, run)).collect();
    lines.sort();
    lines.dedup();
    for (i, label) in lines.iter().enumerate() {
        let colour = colours[i % colours.len()];
        let mut points: Vec<(f64, f64)> = unguided().filter(|(name, run)| line(name, run) == *label).map(|(_, run)| (run.evals_per_sample, run.quality.confident)).collect();
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        let path: Vec<String> = points.iter().map(|&(e, c)| format!("{:.1},{:.1}", x(e), y(c))).collect();
        svg += &format!("<polyline points=\"{}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\"/>\n", path.join(" "));
        for &(e, c) in &points {
            svg += &format!("<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{colour}\"/>\n", x(e), y(c));
        }
        svg += &format!("<text x=\"{}\" y=\"{}\" fill=\"{colour}\">{label}</text>\n", w - right + 10.0, top + 14.0 * (i as f64 + 1.0));
    }
    if let Some(held) = sets.first().and_then(|(_, r)| r.reference.as_ref()).and_then(|f| f.held_out.as_ref()) {
        let (x2, hy) = (left + pw, y(held.confident));
        svg += &format!("<line x1=\"{left}\" x2=\"{x2}\" y1=\"{hy:.1}\" y2=\"{hy:.1}\" stroke=\"#888\" stroke-dasharray=\"4 3\"/>\n");
        // In the legend, below the lines.
        svg += &format!("<text x=\"{}\" y=\"{}\" fill=\"#666\">- - held-out images</text>\n", w - right + 10.0, top + 14.0 * (lines.len() as f64 + 1.0));
    }
    svg + "</svg>\n"
}

/// The results as Markdown tables.
pub(super) fn report(r: &Results) -> String {
    let mut out = String::new();
    let steps = r.training_steps.map(|s| format!(", {s} training steps")).unwrap_or_default();
    out += &format!("Model `{}` (weights sha256 {}…{steps}).\n\n", r.model, r.weights_sha256);
    if let Some(c) = &r.classifier {
        out += &format!(
            "Classifier: {} parameters, {} epochs on the training images ({}×{}×{}, {} classes); held-out accuracy **{:.2}%**.\n\n",
            c.parameters,
            c.config.epochs,
            c.config.image[1],
            c.config.image[2],
            c.config.image[0],
            c.config.classes,
            100.0 * c.held_out_accuracy
        );
    }
    if let Some(f) = &r.reference {
        if let Some(h) = &f.held_out {
            out += &format!("Held-out images scored as samples: {:.1}% confident, class entropy {:.3} nats.\n", 100.0 * h.confident, h.class_entropy);
        }
        for (n, fd) in &f.floor {
            out += &format!("Floor: Fréchet distance of {n} training images to the held-out images: {fd:.2}.\n");
        }
        if let Some(h) = f.halves {
            out += &format!("Fréchet distance between the two halves of the held-out images: {h:.2}.\n");
        }
        out += "\n";
    }
    if !r.runs.is_empty() {
        out += &format!("| run | samples | evals/sample | confident > 0.9 | class entropy (nats) | Fréchet | × floor | near-copies (held-out: {:.0}%) | nearest-train median (held-out) | seconds |\n", 100.0 * NEAR_COPY_QUANTILE);
        out += "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
        for run in &r.runs {
            let floor = r.reference.as_ref().and_then(|f| f.floor.get(&run.samples)).copied();
            let ratio = floor.map(|f| format!("{:.1}", run.quality.frechet / f)).unwrap_or_else(|| "–".into());
            let (copies, median) = match &run.memorisation {
                Some(m) => (format!("{:.1}%", 100.0 * m.sample_near_copies), format!("{:.2} ({:.2})", m.sample_median, m.held_out_median)),
                None => ("–".into(), "–".into()),
            };
            out += &format!(
                "| `{}` | {} | {:.0} | {:.1}% | {:.3} | {:.2} | {ratio} | {copies} | {median} | {:.0} |\n",
                run.run,
                run.samples,
                run.evals_per_sample,
                100.0 * run.quality.confident,
                run.quality.class_entropy,
                run.quality.frechet,
                run.seconds
            );
        }
        out += "\n";
    }
    let guided: Vec<&RunResult> = r.runs.iter().filter(|run| run.guidance.is_some()).collect();
    if !guided.is_empty() {
        out += "Guided runs (sample i drawn for class i mod K, the classifier's K classes):\n\n| run | guidance w | at σ in | of the requested class | confident > 0.9 | Fréchet | evals/sample | seconds |\n|---|---:|---:|---:|---:|---:|---:|---:|\n";
        for run in guided {
            out += &format!(
                "| `{}` | {} | {} | {:.1}% | {:.1}% | {:.2} | {:.0} | {:.0} |\n",
                run.run,
                run.guidance.unwrap_or_default(),
                format!("({}, {}]", run.guidance_min_sigma.unwrap_or(0.0), run.guidance_max_sigma.filter(|s| s.is_finite()).map_or("∞".into(), |s| s.to_string())),
                100.0 * run.requested_class.unwrap_or_default(),
                100.0 * run.quality.confident,
                run.quality.frechet,
                run.evals_per_sample,
                run.seconds
            );
        }
        out += "\n";
    }
    if let Some(l) = &r.likelihood {
        out += &format!(
            "Held-out bits/dim ({} held-out images, uniform dequantisation, RK45 rtol = atol = {:.0e}): **{:.4} ± {:.4}** (mean ± std over {} probe/dequantisation seeds).\n\n",
            l.images,
            l.rtol,
            l.mean,
            l.std_over_seeds,
            l.per_seed.len()
        );
        out += "| seed | bits/dim | std over images | evaluations | seconds |\n|---:|---:|---:|---:|---:|\n";
        for s in &l.per_seed {
            out += &format!("| {} | {:.4} | {:.3} | {} | {:.0} |\n", s.seed, s.bits_per_dim, s.std_over_images, s.evals, s.seconds);
        }
    }
    out
}
