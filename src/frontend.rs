//! What the front ends offer, apart from any model: the images a run draws when its caller says
//! nothing (a grid to generate, a few completions to inpaint, one path), the largest batch the
//! page's controls offer, the ends of its sliders, and how many model workers a CPU run in the
//! browser may use. The CLI takes its starting batches from here too. The library below (the
//! samplers, models, files) knows none of this; each model's own sampling settings are in its
//! card ([`crate::sampling::defaults`]).

use serde::Serialize;

use crate::sampling::defaults::SamplingDefaults;
use crate::sampling::{self, DEFAULT_SEED, autoguidance, guidance};

/// Images per run, by what the run is for: a 4 × 4 grid of samples; a 2 × 2 grid of completions of
/// one image, the widget's (the source beside them stays readable; the page inpaints its Batch
/// field's count); one path drawn through time.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct BatchDefaults {
    pub generate: usize,
    pub inpaint: usize,
    pub trajectory: usize,
}

pub const BATCH: BatchDefaults = BatchDefaults { generate: 16, inpaint: 4, trajectory: 1 };

/// The largest batch the page and the widget offer (a 16 × 16 grid); the wasm API itself takes up
/// to [`sampling::MAX_BATCH`], and a device may hold fewer (`ScoreModel.maxBatch`).
pub const MAX_BATCH: usize = 256;

/// The page's guidance slider ends here: beyond it the measured samples lose their shape
/// (docs/EVALUATION.md, "Guided generation").
pub const GUIDANCE_SLIDER_MAX: f64 = 10.0;

/// The page's autoguidance slider ends here.
pub const AUTOGUIDANCE_SLIDER_MAX: f64 = 4.0;

/// The most model workers (wasm instances, each with its own copy of the model) a CPU run in the
/// page or a widget is split across; fewer when the browser reports fewer cores
/// (`navigator.hardwareConcurrency`), or as the page's `?workers=N` and the widget's `workers`
/// attribute pin. See www/client.js and docs/PERFORMANCE.md ("Workers").
pub const MAX_WORKERS: usize = 8;

/// What the page and the widget are told when a model loads (`model.runDefaults()`): the
/// front end's settings above, the API's limits, and the model's own guided and autoguided
/// starting points from its card.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunDefaults {
    pub batch: BatchDefaults,
    pub seed: u64,
    pub max_batch: usize,
    pub max_steps: usize,
    pub max_corrector_steps: usize,
    pub max_snr: f64,
    pub max_churn: f64,
    pub guidance: f64,
    pub guidance_slider_max: f64,
    pub max_guidance: f64,
    pub autoguidance: f64,
    pub autoguidance_slider_max: f64,
    pub autoguidance_min_sigma: f64,
    pub max_autoguidance: f64,
    pub max_workers: usize,
    /// The sampler, steps and churn a guided run starts with.
    pub guided: GuidedRun,
}

/// A guided run's sampler, steps and churn.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GuidedRun {
    pub sampler: &'static str,
    pub steps: usize,
    pub churn: f64,
}

impl RunDefaults {
    /// The settings for a model with these sampling defaults.
    pub fn for_model(d: &SamplingDefaults) -> Self {
        Self {
            batch: BATCH,
            seed: DEFAULT_SEED,
            max_batch: MAX_BATCH,
            max_steps: sampling::MAX_STEPS,
            max_corrector_steps: sampling::MAX_CORRECTOR_STEPS,
            max_snr: sampling::MAX_SNR,
            max_churn: sampling::MAX_CHURN,
            guidance: d.guided.scale,
            guidance_slider_max: GUIDANCE_SLIDER_MAX,
            max_guidance: guidance::MAX_GUIDANCE,
            autoguidance: d.autoguidance.weight,
            autoguidance_slider_max: AUTOGUIDANCE_SLIDER_MAX,
            autoguidance_min_sigma: d.autoguidance.min_sigma,
            max_autoguidance: autoguidance::MAX_AUTOGUIDANCE,
            max_workers: MAX_WORKERS,
            guided: GuidedRun { sampler: d.guided.sampler.name(), steps: d.guided.steps, churn: d.guided.churn },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sampling::SampleOptions;
    use crate::sde::Sde;

    /// The starting batches fit the page's limit, which fits the API's; the sliders' ends lie
    /// within the API's limits; the library's guided run is a valid run above its fewest steps.
    #[test]
    fn run_defaults_are_within_the_limits() {
        let d = RunDefaults::for_model(&SamplingDefaults::default());
        for batch in [d.batch.generate, d.batch.inpaint, d.batch.trajectory] {
            assert!((1..=d.max_batch).contains(&batch));
        }
        assert!(d.max_batch <= sampling::MAX_BATCH);
        assert!(0.0 < d.guidance && d.guidance <= d.guidance_slider_max && d.guidance_slider_max <= d.max_guidance);
        assert!(1.0 <= d.autoguidance && d.autoguidance <= d.autoguidance_slider_max && d.autoguidance_slider_max <= d.max_autoguidance);
        let guided = SamplingDefaults::default().guided;
        let options = SampleOptions { sampler: guided.sampler, steps: guided.steps, churn: guided.churn, ..Default::default() };
        options.validate(&Sde::ve(40.0)).unwrap();
        assert!(guided.steps >= guided.sampler.starting_steps().min);
    }
}
