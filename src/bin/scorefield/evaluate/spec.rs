//! Run specs: `SAMPLER:STEPS[:KEY=VALUE…]` as `scorefield evaluate --runs` takes them.

use anyhow::anyhow;

use scorefield::sampling::autoguidance::Autoguidance;
use scorefield::sampling::guidance::{self, Guidance};
use scorefield::sampling::{SampleOptions, Sampler};

/// A run as its spec describes it.
#[derive(Debug)]
pub(super) struct Run {
    pub(super) options: SampleOptions,
    pub(super) guidance: Option<Guidance>,
    pub(super) autoguidance: Option<Autoguidance>,
    /// Whether the spec chose the noise levels (`rho=` or `levels=`); else a consistency run takes
    /// the card's measured levels ([`scorefield::sampling::defaults::SamplingDefaults::levels_for`]).
    pub(super) own_levels: bool,
}

/// `em:1000`, `pc:200`, `ode-rk45:1e-5`, `ald:10x100`, or any sampler name with a step count;
/// then optionally `:churn=S`, `:tmin=A`, `:tmax=B`, `:snoise=N` (`edm-heun`'s S_churn, S_tmin,
/// S_tmax, S_noise), `:snr=R` (`pc`), `:rho=P` (the Karras grid), `:levels=A/B/…` (`consistency`'s
/// re-noising levels, high to low) or
/// `:guidance=W` (classifier guidance at scale W, sample i drawn for class i mod K, the
/// classifier's K classes: [`every_class`]) with
/// `:gmin=A` and `:gmax=B` (guidance only at A < σ ≤ B; defaults `guidance::DEFAULT_GUIDANCE_MIN_SIGMA`
/// and `DEFAULT_GUIDANCE_MAX_SIGMA`), or `:ag=W` (autoguidance by `--guide-model` at weight W)
/// with `:agmin=A` and `:agmax=B` (only at A < σ ≤ B; defaults `autoguidance::DEFAULT_AUTOGUIDANCE_MIN_SIGMA`
/// and `DEFAULT_AUTOGUIDANCE_MAX_SIGMA`).
pub(super) fn parse_run(spec: &str, seed: u64) -> anyhow::Result<Run> {
    let (name, arg) = spec.split_once(':').ok_or_else(|| anyhow!("run `{spec}`: expected SAMPLER:ARG, e.g. em:1000"))?;
    let mut parts = arg.split(':');
    let arg = parts.next().unwrap_or_default();
    let extras: Vec<&str> = parts.collect();
    let sampler: Sampler = name.parse::<Sampler>()?;
    let mut options = SampleOptions { sampler, seed, ..Default::default() };
    let bad = |what: &str| anyhow!("run `{spec}`: {what}");
    let (mut guidance, mut min_sigma, mut max_sigma) = (None, None, None);
    let (mut auto, mut auto_min, mut auto_max) = (None, None, None);
    match sampler {
        Sampler::OdeRk45 => {
            let tol: f64 = arg.parse().map_err(|_| bad("expected a tolerance, e.g. ode-rk45:1e-5"))?;
            options.rtol = tol;
            options.atol = tol;
        }
        Sampler::AnnealedLangevin => {
            let (levels, per) = arg.split_once('x').ok_or_else(|| bad("expected LEVELSxSTEPS, e.g. ald:10x100"))?;
            options.steps = levels.parse().map_err(|_| bad("levels must be a number"))?;
            options.corrector_steps = Some(per.parse().map_err(|_| bad("steps per level must be a number"))?);
        }
        _ => {
            options.steps = arg.parse().map_err(|_| bad("expected a step count, e.g. em:1000"))?;
            if sampler == Sampler::PredictorCorrector {
                options.corrector_steps = Some(1);
            }
        }
    }
    let mut own_levels = false;
    for extra in extras {
        let (key, value) = extra.split_once('=').ok_or_else(|| bad("options after the steps are KEY=VALUE, e.g. edm-heun:18:churn=40"))?;
        if key == "levels" {
            options.levels = value.split('/').map(|v| v.parse::<f64>()).collect::<Result<_, _>>().map_err(|_| bad("`levels` must be noise levels separated by `/`, e.g. consistency:3:levels=1.4/0.5"))?;
            own_levels = true;
            continue;
        }
        own_levels |= key == "rho";
        let value: f64 = value.parse().map_err(|_| bad(&format!("`{key}` must be a number")))?;
        match key {
            "churn" => options.churn = value,
            "tmin" => options.s_tmin = value,
            "tmax" => options.s_tmax = value,
            "snoise" => options.s_noise = value,
            "snr" => options.snr = value,
            "rho" => options.rho = value,
            "guidance" => guidance = Some(value),
            "gmin" => min_sigma = Some(value),
            "gmax" => max_sigma = Some(value),
            "ag" => auto = Some(value),
            "agmin" => auto_min = Some(value),
            "agmax" => auto_max = Some(value),
            _ => return Err(bad(&format!("unknown option `{key}`; expected churn, tmin, tmax, snoise, snr, rho, levels, guidance, gmin, gmax, ag, agmin or agmax"))),
        }
    }
    // Levels are checked against the model's noise levels, where the model is known.
    SampleOptions { levels: Vec::new(), ..options.clone() }.validate(&scorefield::Sde::ve(1.0)).map_err(|e| bad(&e.to_string()))?;
    let guidance = match guidance {
        Some(scale) => {
            // Class 0 until the classifier is known (every_class cycles through its classes).
            let g = Guidance {
                min_sigma: min_sigma.unwrap_or(guidance::DEFAULT_GUIDANCE_MIN_SIGMA),
                max_sigma: max_sigma.unwrap_or(guidance::DEFAULT_GUIDANCE_MAX_SIGMA),
                ..Guidance::new(vec![0], scale)
            };
            g.validate(1).map_err(|e| bad(&e.to_string()))?;
            Some(g)
        }
        None if min_sigma.is_some() || max_sigma.is_some() => return Err(bad("`gmin` and `gmax` bound the guidance: give `guidance` too")),
        None => None,
    };
    let autoguidance = match auto {
        Some(weight) => Some(Autoguidance::with_interval(weight, auto_min, auto_max).map_err(|e| bad(&e.to_string()))?),
        None if auto_min.is_some() || auto_max.is_some() => return Err(bad("`agmin` and `agmax` bound the autoguidance: give `ag` too")),
        None => None,
    };
    if guidance.is_some() && autoguidance.is_some() {
        return Err(bad("`guidance` and `ag` are not combined"));
    }
    Ok(Run { options, guidance, autoguidance, own_levels })
}

/// The guidance of a run to each of the classifier's `classes` in turn: sample i of the run is
/// drawn for class i mod `classes` (each batch starts where its first sample's class is,
/// [`Guidance::from_sample`]).
pub(super) fn every_class(guidance: Guidance, classes: usize) -> Guidance {
    Guidance { classes: (0..classes).collect(), ..guidance }
}
