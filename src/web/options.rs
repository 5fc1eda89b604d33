//! What JavaScript sends, checked: the load and run options (each field by name, unknown keys
//! refused with the list of known ones), numbers that must be whole, arrays of numbers.

use js_sys::{Float32Array, Reflect};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use wasm_bindgen::prelude::*;

use super::WebError;
use crate::likelihood::LikelihoodOptions;
use crate::sampling::autoguidance::Autoguidance;
use crate::sampling::guidance::Guidance;
use crate::sampling::interpolate;
use crate::frontend;
use crate::sampling::defaults::SamplingDefaults;
use crate::sampling::{self, SampleOptions, Sampler};
use crate::serde_fields::field_names;

/// Which backend to run on: `auto` takes WebGPU when the browser has a hardware adapter and it
/// starts, else the CPU ([`super::device::resolve`], the one definition of `auto`: the page, the
/// widget and the worker pass it through).
#[derive(Clone, Copy, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum BackendChoice {
    #[default]
    Auto,
    Webgpu,
    Cpu,
}

#[derive(Default, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct LoadOptions {
    pub(super) backend: BackendChoice,
}

/// Options of `generate` and `inpaint`, checked field by field.
#[derive(Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct RunOptions {
    /// Default: the model's (its card's `sampling`), at that sampler's steps on it.
    pub(super) sampler: Option<String>,
    pub(super) steps: Option<f64>,
    pub(super) batch: f64,
    pub(super) seed: f64,
    /// The index of the run's first image in the seed's sequence: image b of this run is image
    /// `firstSample + b` of a run from 0 (the samplers marked `perSample`), its class too when
    /// `class` is `"all"`. The worker pool splits a batch across workers with it.
    pub(super) first_sample: f64,
    pub(super) snr: f64,
    pub(super) corrector_steps: Option<f64>,
    pub(super) ald_eps: Option<f64>,
    pub(super) rtol: f64,
    pub(super) atol: f64,
    pub(super) rho: f64,
    /// `consistency`: the noise levels its later steps re-noise to, high to low (at least
    /// `steps − 1`); default the model's (its card's `sampling.consistency_levels`), else the
    /// Karras grid of `rho`.
    pub(super) levels: Option<Vec<f64>>,
    pub(super) churn: f64,
    pub(super) denoise: bool,
    /// Send a preview every this many steps (0: about 25 previews per run).
    pub(super) preview_every: f64,
    /// What the previews show: `mean` (the step's noise-free mean, the default) or `x` (the noisy
    /// state x(t) itself, as the trajectory view wants).
    pub(super) preview_of: PreviewOf,
    /// A caller's id for this run, so that `cancel(runId)` stops this run and no other.
    pub(super) run_id: Option<f64>,
    /// Draw digits of this class (a whole number, 0 for the first class), or `"all"` for every
    /// class in turn, by classifier guidance (the model's card must name its classifier).
    /// Absent: unguided. (Read as any JSON value, so that a wrong type is named here.)
    pub(super) class: Option<serde_json::Value>,
    /// The guidance scale w of `class` (1: Bayes' rule exactly; more: more clearly of the class);
    /// default the model's (its card's `sampling.guided.scale`).
    pub(super) guidance: Option<f64>,
    /// Guidance acts at noise levels in (guidanceMinSigma, guidanceMaxSigma]; defaults
    /// the model's `sampling.guided.min_sigma` and `guidance::DEFAULT_GUIDANCE_MAX_SIGMA`.
    pub(super) guidance_min_sigma: Option<f64>,
    pub(super) guidance_max_sigma: Option<f64>,
    /// The autoguidance weight w (1: the model alone; more: further from the worse model its
    /// card names); default the model's `sampling.autoguidance.weight` when it has a guide.
    pub(super) autoguidance: Option<f64>,
    /// Autoguidance acts at noise levels in (autoguidanceMinSigma, autoguidanceMaxSigma];
    /// defaults the model's `sampling.autoguidance.min_sigma` and `DEFAULT_AUTOGUIDANCE_MAX_SIGMA`.
    pub(super) autoguidance_min_sigma: Option<f64>,
    pub(super) autoguidance_max_sigma: Option<f64>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum PreviewOf {
    #[default]
    Mean,
    X,
}

impl Default for RunOptions {
    fn default() -> Self {
        let d = SampleOptions::default();
        Self {
            sampler: None,
            steps: None,
            batch: frontend::BATCH.generate as f64,
            seed: d.seed as f64,
            first_sample: 0.0,
            snr: d.snr,
            corrector_steps: None,
            ald_eps: d.ald_eps,
            rtol: d.rtol,
            atol: d.atol,
            rho: d.rho,
            levels: None,
            churn: d.churn,
            denoise: true,
            preview_every: 0.0,
            preview_of: PreviewOf::Mean,
            run_id: None,
            class: None,
            guidance: None,
            guidance_min_sigma: None,
            guidance_max_sigma: None,
            autoguidance: None,
            autoguidance_min_sigma: None,
            autoguidance_max_sigma: None,
        }
    }
}

/// Options of `likelihood` besides `pixels`, checked field by field; the defaults are the
/// library's ([`LikelihoodOptions::default`]), which the CLI uses too.
#[derive(Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct LikelihoodRunOptions {
    /// Seed of the dequantisation noise and of the Hutchinson probes.
    pub(super) seed: f64,
    pub(super) rtol: f64,
    pub(super) atol: f64,
    /// Hutchinson probes (their estimates are averaged).
    pub(super) probes: f64,
    /// Send a preview of x(t) every this many accepted steps (0: every step).
    pub(super) preview_every: f64,
    pub(super) run_id: Option<f64>,
}

impl Default for LikelihoodRunOptions {
    fn default() -> Self {
        let d = LikelihoodOptions::default();
        Self { seed: d.seed as f64, rtol: d.rtol, atol: d.atol, probes: d.probes as f64, preview_every: 0.0, run_id: None }
    }
}

impl LikelihoodRunOptions {
    pub(super) fn parse(options: JsValue) -> Result<Self, WebError> {
        parse_checked(options, "likelihood option")
    }

    pub(super) fn run_id(&self) -> Result<Option<u32>, WebError> {
        run_id(self.run_id)
    }

    /// The library's options and the preview interval (tolerances and probes are checked by
    /// the likelihood itself, with the CLI's messages).
    pub(super) fn to_options(&self) -> Result<(LikelihoodOptions, usize), WebError> {
        let seed = whole_number("seed", self.seed)?;
        let probes = count("probes", self.probes, 1, 64)?;
        let preview_every = count("previewEvery", self.preview_every, 0, sampling::MAX_STEPS)?;
        Ok((LikelihoodOptions { rtol: self.rtol, atol: self.atol, seed, probes }, preview_every.max(1)))
    }
}

/// Options of `interpolate` besides the two images, checked field by field.
#[derive(Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct InterpolateRunOptions {
    /// Decoded points of the path, the two ends included.
    pub(super) frames: f64,
    pub(super) rtol: f64,
    pub(super) atol: f64,
    pub(super) preview_every: f64,
    pub(super) run_id: Option<f64>,
}

impl Default for InterpolateRunOptions {
    fn default() -> Self {
        Self { frames: interpolate::DEFAULT_FRAMES as f64, rtol: sampling::DEFAULT_ODE_TOL, atol: sampling::DEFAULT_ODE_TOL, preview_every: 0.0, run_id: None }
    }
}

impl InterpolateRunOptions {
    pub(super) fn parse(options: JsValue) -> Result<Self, WebError> {
        parse_checked(options, "interpolate option")
    }

    pub(super) fn run_id(&self) -> Result<Option<u32>, WebError> {
        run_id(self.run_id)
    }

    /// Frames and the preview interval (the tolerances are checked by the interpolation).
    pub(super) fn counts(&self) -> Result<(usize, usize), WebError> {
        let frames = count("frames", self.frames, 2, interpolate::MAX_FRAMES)?;
        let preview_every = count("previewEvery", self.preview_every, 0, sampling::MAX_STEPS)?;
        Ok((frames, preview_every.max(1)))
    }
}

/// 8-bit pixel values: whole numbers in 0..=255.
pub(super) fn pixels(values: &[f32], field: &str) -> Result<Vec<u8>, WebError> {
    values
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            if v.is_finite() && v.fract() == 0.0 && (0.0..=255.0).contains(&v) {
                Ok(v as u8)
            } else {
                Err(WebError::invalid(format!("`{field}`[{i}] is {v}; 8-bit pixels are whole numbers in 0..=255")))
            }
        })
        .collect()
}

/// A whole number in 0..=2⁵³ − 1 (what a JS number holds exactly): a seed, a first sample.
fn whole_number(field: &str, v: f64) -> Result<u64, WebError> {
    if !(v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v <= 9_007_199_254_740_991.0) {
        return Err(WebError::invalid(format!("`{field}` must be a non-negative whole number, got {v}")));
    }
    Ok(v as u64)
}

/// Takes `key` out of a copy of `options` as numbers (a typed array or an array of numbers).
pub(super) fn take_numbers(options: &JsValue, key: &str) -> Result<(JsValue, Option<Vec<f32>>), WebError> {
    if !options.is_object() {
        return Ok((options.clone(), None));
    }
    let copy = js_sys::Object::assign(&js_sys::Object::new(), options.unchecked_ref());
    let value = Reflect::get(&copy, &key.into()).unwrap_or(JsValue::UNDEFINED);
    Reflect::delete_property(&copy, &key.into()).ok();
    if value.is_undefined() || value.is_null() {
        return Ok((copy.into(), None));
    }
    let numbers: Vec<f32> = if let Some(a) = value.dyn_ref::<Float32Array>() {
        a.to_vec()
    } else if js_sys::ArrayBuffer::is_view(&value) || value.is_array() {
        let array = js_sys::Array::from(&value);
        let mut out = Vec::with_capacity(array.length() as usize);
        for (i, v) in array.iter().enumerate() {
            out.push(v.as_f64().ok_or_else(|| WebError::invalid(format!("`{key}`[{i}] is not a number")))? as f32);
        }
        out
    } else {
        return Err(WebError::invalid(format!("`{key}` must be a Float32Array or an array of numbers")));
    };
    Ok((copy.into(), Some(numbers)))
}

/// A whole number in range, from a JS number.
pub(super) fn count(field: &'static str, v: f64, lo: usize, hi: usize) -> Result<usize, WebError> {
    if !v.is_finite() || v.fract() != 0.0 || v < lo as f64 || v > hi as f64 {
        return Err(WebError::invalid(format!("`{field}` must be a whole number in {lo}..={hi}, got {v}")));
    }
    Ok(v as usize)
}

impl RunOptions {
    pub(super) fn run_id(&self) -> Result<Option<u32>, WebError> {
        run_id(self.run_id)
    }

    /// Whether `class` asks for guided sampling; the guidance options without it are refused
    /// (they would do nothing).
    pub(super) fn guided(&self) -> Result<bool, WebError> {
        if self.class.is_none() {
            if let Some(field) = [("guidance", self.guidance), ("guidanceMinSigma", self.guidance_min_sigma), ("guidanceMaxSigma", self.guidance_max_sigma)].iter().find(|(_, v)| v.is_some()).map(|(f, _)| f) {
                return Err(WebError::invalid(format!("`{field}` guides a run to a class: give `class` too")));
            }
        }
        Ok(self.class.is_some())
    }

    /// The autoguidance this run asks for (checked), or the default; `None`: the model alone
    /// (w = 1).
    pub(super) fn autoguidance(&self, model: &SamplingDefaults) -> Result<Option<Autoguidance>, WebError> {
        let d = &model.autoguidance;
        let g = Autoguidance::with_interval(self.autoguidance.unwrap_or(d.weight), Some(self.autoguidance_min_sigma.unwrap_or(d.min_sigma)), self.autoguidance_max_sigma)?;
        Ok((g.weight != 1.0).then_some(g))
    }

    /// The guidance `class` and `guidance` ask for, for a classifier of `classes` classes, in a
    /// run whose image 0 is image `first_sample` of the seed's sequence.
    pub(super) fn guidance(&self, classes: usize, first_sample: u64, model: &SamplingDefaults) -> Result<Guidance, WebError> {
        let bad = || WebError::invalid(format!("`class` must be a class number in 0..{classes} or \"all\", got {}", self.class.as_ref().map_or("nothing".into(), |v| v.to_string())));
        let chosen = match &self.class {
            Some(serde_json::Value::Number(n)) => vec![count("class", n.as_f64().ok_or_else(bad)?, 0, classes.saturating_sub(1))?],
            Some(serde_json::Value::String(name)) if name == "all" => (0..classes).collect(),
            _ => return Err(bad()),
        };
        let d = Guidance::new(chosen, self.guidance.unwrap_or(model.guided.scale)).from_sample(first_sample);
        let guidance = Guidance { min_sigma: self.guidance_min_sigma.unwrap_or(model.guided.min_sigma), max_sigma: self.guidance_max_sigma.unwrap_or(d.max_sigma), ..d };
        guidance.validate(classes)?;
        Ok(guidance)
    }

    /// The library's options for a model with these sampling defaults, the batch and the preview
    /// interval.
    pub(super) fn to_sample_options(&self, model: &SamplingDefaults) -> Result<(SampleOptions, usize, usize), WebError> {
        let sampler: Sampler = match &self.sampler {
            Some(name) => name.parse()?,
            None => model.sampler,
        };
        let steps = count("steps", self.steps.unwrap_or(model.steps_for(sampler).default as f64), 1, sampling::MAX_STEPS)?;
        let batch = count("batch", self.batch, 1, sampling::MAX_BATCH)?;
        let seed = whole_number("seed", self.seed)?;
        let first_sample = whole_number("firstSample", self.first_sample)?;
        let corrector_steps = match self.corrector_steps {
            Some(m) => Some(count("correctorSteps", m, 1, sampling::MAX_CORRECTOR_STEPS)?),
            None => None,
        };
        let preview_every = count("previewEvery", self.preview_every, 0, sampling::MAX_STEPS)?;
        let options = SampleOptions {
            sampler,
            steps,
            corrector_steps,
            snr: self.snr,
            ald_eps: self.ald_eps,
            rtol: self.rtol,
            atol: self.atol,
            rho: self.rho,
            levels: self.levels.clone().unwrap_or_else(|| model.levels_for(sampler, steps)),
            churn: self.churn,
            // The page offers S_churn alone; where it churns is the library's choice.
            s_tmin: sampling::karras::DEFAULT_S_TMIN,
            s_tmax: sampling::karras::DEFAULT_S_TMAX,
            s_noise: sampling::karras::DEFAULT_S_NOISE,
            denoise: self.denoise,
            seed,
            first_sample,
        };
        Ok((options, batch, preview_every))
    }
}

/// serde-wasm-bindgen reads only the fields a struct declares, so `deny_unknown_fields` never sees
/// a misspelt option: check the object's own keys here.
pub(super) fn refuse_unknown_keys(options: &JsValue, known: &[&str], what: &str) -> Result<(), WebError> {
    if !options.is_object() {
        return Err(WebError::invalid(format!("{what} must be an object")));
    }
    let object: &js_sys::Object = options.unchecked_ref();
    for key in js_sys::Object::keys(object).iter().filter_map(|k| k.as_string()) {
        if !known.contains(&key.as_str()) {
            return Err(WebError::invalid(format!("unknown {what} field `{key}`; expected one of {}", known.join(", "))));
        }
    }
    Ok(())
}

pub(super) fn parse_options(options: JsValue) -> Result<RunOptions, WebError> {
    parse_checked(options, "option")
}

/// Options of one call: its defaults when absent, else each key checked against the struct's
/// fields (`what` names them in the errors) and each value against its type.
fn parse_checked<T: DeserializeOwned + Default>(options: JsValue, what: &str) -> Result<T, WebError> {
    if options.is_undefined() || options.is_null() {
        return Ok(T::default());
    }
    refuse_unknown_keys(&options, field_names::<T>(), what)?;
    serde_wasm_bindgen::from_value(options).map_err(|e| WebError::invalid(format!("{what}s: {e}")))
}

/// A run id, checked: a whole number in 0..2³².
fn run_id(v: Option<f64>) -> Result<Option<u32>, WebError> {
    v.map(|v| count("runId", v, 0, u32::MAX as usize).map(|v| v as u32)).transpose()
}
