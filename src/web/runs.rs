//! The runs of a loaded model: `generate`, `inpaint`, `likelihood` and `interpolate`, each
//! parsing its options against the model's card, sampling with the one composition of model,
//! guide model and classifier ([`crate::compose::RunScore`]), and reporting progress.

use std::rc::Rc;

use js_sys::{Function, Reflect};
use wasm_bindgen::prelude::*;

use super::observer::{JsObserver, tensor_to_js};
use super::options::{InterpolateRunOptions, LikelihoodRunOptions, PreviewOf, RunOptions, parse_options, pixels, take_numbers};
use super::*;
use crate::compose::as_score;

#[wasm_bindgen(js_class = ScoreModel)]
impl WebModel {
    /// Draws `batch` samples. Resolves to `{data: Float32Array, shape, evals, seconds}`.
    pub async fn generate(&self, options: JsValue, on_progress: Option<Function>) -> Result<JsValue, WebError> {
        for key in ["image", "mask"] {
            if options.is_object() && Reflect::has(&options, &key.into()).unwrap_or(false) {
                return Err(WebError::invalid(format!("`{key}` belongs to inpaint(), not generate()")));
            }
        }
        let options: RunOptions = parse_options(options)?;
        let (sample_options, batch, preview_every) = options.to_sample_options(&self.card.sampling)?;
        let [c, h, w] = self.card.image_shape();
        self.check_batch(batch)?;
        let (mut observer, _guard) = self.observer(on_progress, options.run_id()?, every(preview_every, &sample_options), options.preview_of);
        let guide = self.guide(&options, sample_options.first_sample).await?;
        let score = RunScore::new(&self.model, self.guide_model(&options)?, guide.as_ref().map(|(net, g)| (&**net, g.clone())))?;
        let start = js_sys::Date::now();
        let out = score.sample([batch, c, h, w], &sample_options, &self.backend.device, &mut observer).await.map_err(|e| self.fail(e))?;
        self.finish(out, score.guide_evals(), start, sample_options.sampler, observer.observer_ms.get()).await
    }

    /// Fills in where `mask` is 0. `image`: C·H·W values in the card's range (one image, repeated
    /// `batch` times); `mask`: C·H·W values, 1 = keep, 0 = generate. Resolves like `generate`;
    /// pixels where mask = 1 equal the image exactly.
    pub async fn inpaint(&self, options: JsValue, on_progress: Option<Function>) -> Result<JsValue, WebError> {
        let (options, image) = take_numbers(&options, "image")?;
        let (options, mask) = take_numbers(&options, "mask")?;
        let options: RunOptions = parse_options(options)?;
        let (sample_options, batch, preview_every) = options.to_sample_options(&self.card.sampling)?;
        let [c, h, w] = self.card.image_shape();
        self.check_batch(batch)?;
        let image = image.ok_or_else(|| WebError::invalid("`image` is missing"))?;
        let mask = mask.ok_or_else(|| WebError::invalid("`mask` is missing"))?;
        let per_image = c * h * w;
        if image.len() != per_image {
            return Err(WebError::invalid(format!("`image` has {} values; this model's images have {per_image} ({c}×{h}×{w})", image.len())));
        }
        let images: Vec<f32> = image.iter().copied().cycle().take(batch * per_image).collect();
        let known = Known::from_host(&images, &mask, [batch, c, h, w], self.card.image.range, &self.backend.device)?;
        let (mut observer, _guard) = self.observer(on_progress, options.run_id()?, every(preview_every, &sample_options), options.preview_of);
        let guide = self.guide(&options, sample_options.first_sample).await?;
        let score = RunScore::new(&self.model, self.guide_model(&options)?, guide.as_ref().map(|(net, g)| (&**net, g.clone())))?;
        let start = js_sys::Date::now();
        let out = score.inpaint(&known, &sample_options, &mut observer).await.map_err(|e| self.fail(e))?;
        self.finish(out, score.guide_evals(), start, sample_options.sampler, observer.observer_ms.get()).await
    }

    /// Bits/dim of one 8-bit image through the probability-flow ODE, as `scorefield likelihood`
    /// measures a PNG: the pixels dequantised and the Hutchinson probes drawn from `seed` on the
    /// host, so the CLI and every backend agree for the same image and seed. Options: `pixels`
    /// (C·H·W whole numbers in 0..=255), `seed`, `rtol`, `atol`, `probes` (the library's
    /// defaults), `previewEvery` (accepted steps; default every step), `runId`. Progress comes
    /// per accepted RK45 step (`total` is null: the solver picks its steps) with x(t) on its way
    /// to the prior as the preview; `cancel()` stops it. Resolves to
    /// `{bitsPerDim, nats, evals, steps, seconds}` (`nats`: log p of the dequantised image).
    pub async fn likelihood(&self, options: JsValue, on_progress: Option<Function>) -> Result<JsValue, WebError> {
        let (options, values) = take_numbers(&options, "pixels")?;
        let options = LikelihoodRunOptions::parse(options)?;
        let (likelihood_options, preview_every) = options.to_options()?;
        let [c, h, w] = self.card.image_shape();
        let values = values.ok_or_else(|| WebError::invalid("`pixels` is missing"))?;
        if values.len() != c * h * w {
            return Err(WebError::invalid(format!("`pixels` has {} values; this model's images have {} ({c}×{h}×{w})", values.len(), c * h * w)));
        }
        let pixels = pixels(&values, "pixels")?;
        self.check_batch(likelihood_options.probes)?;
        let range = self.card.image.range;
        let x = Tensor::<4>::from_data(TensorData::new(likelihood::dequantize(&pixels, range, likelihood_options.seed), [1, c, h, w]), &self.backend.device);
        let (mut observer, _guard) = self.observer(on_progress, options.run_id()?, preview_every, PreviewOf::X);
        let start = js_sys::Date::now();
        let result = likelihood::log_likelihood(as_score(&self.model, "the likelihood")?, &self.model.sde, x, &likelihood_options, &mut observer).await.map_err(|e| self.fail(e))?;
        let out = js_sys::Object::new();
        Reflect::set(&out, &"bitsPerDim".into(), &result.dequantized_bits_per_dim(range)[0].into()).ok();
        Reflect::set(&out, &"nats".into(), &result.logp[0].into()).ok();
        Reflect::set(&out, &"evals".into(), &(result.evals as f64).into()).ok();
        Reflect::set(&out, &"steps".into(), &(result.steps as f64).into()).ok();
        Reflect::set(&out, &"seconds".into(), &((js_sys::Date::now() - start) / 1000.0).into()).ok();
        Ok(out.into())
    }

    /// From one image to another through the prior: both encoded with the probability-flow ODE
    /// (RK45), their codes interpolated spherically, `frames` points decoded with the same ODE.
    /// Options: `a`, `b` (C·H·W values in the card's range), `frames` (default 9, the ends
    /// included), `rtol`, `atol` (the library's), `previewEvery`, `runId`. Progress: the encoding
    /// as the first half, the decoding as the second, x(t) as the preview. Resolves to
    /// `{data, shape: [frames, C, H, W], reconstructionRms: [a, b], evals, seconds}`: the ends are
    /// the images' reconstructions, `reconstructionRms` their root-mean-square error.
    pub async fn interpolate(&self, options: JsValue, on_progress: Option<Function>) -> Result<JsValue, WebError> {
        let (options, a) = take_numbers(&options, "a")?;
        let (options, b) = take_numbers(&options, "b")?;
        let options = InterpolateRunOptions::parse(options)?;
        let (frames, preview_every) = options.counts()?;
        let [c, h, w] = self.card.image_shape();
        let mut images = Vec::with_capacity(2 * c * h * w);
        for (name, values) in [("a", a), ("b", b)] {
            let values = values.ok_or_else(|| WebError::invalid(format!("`{name}` is missing: give two images, `a` and `b`")))?;
            if values.len() != c * h * w {
                return Err(WebError::invalid(format!("`{name}` has {} values; this model's images have {} ({c}×{h}×{w})", values.len(), c * h * w)));
            }
            if let Some(i) = values.iter().position(|v| !v.is_finite()) {
                return Err(WebError::invalid(format!("`{name}` holds {} at index {i}", values[i])));
            }
            images.extend(values);
        }
        self.check_batch(frames)?;
        let x = Tensor::<4>::from_data(TensorData::new(images, [2, c, h, w]), &self.backend.device);
        let (mut observer, _guard) = self.observer(on_progress, options.run_id()?, preview_every, PreviewOf::X);
        let start = js_sys::Date::now();
        let path = sampling::interpolate::interpolate(as_score(&self.model, "interpolation through the prior")?, &self.model.sde, x, frames, options.rtol, options.atol, &mut observer).await.map_err(|e| self.fail(e))?;
        let (out, first_bad) = tensor_to_js(path.frames).await.map_err(|e| self.fail(WebError::run(e)))?;
        if let Some(i) = first_bad {
            return Err(WebError::new(ErrorName::NonFinite, format!("the interpolation produced a non-finite value (at index {i}); try a smaller rtol and atol")));
        }
        let rms = js_sys::Array::of2(&path.reconstruction_rms[0].into(), &path.reconstruction_rms[1].into());
        Reflect::set(&out, &"reconstructionRms".into(), &rms).ok();
        Reflect::set(&out, &"evals".into(), &(path.evals as f64).into()).ok();
        Reflect::set(&out, &"seconds".into(), &((js_sys::Date::now() - start) / 1000.0).into()).ok();
        Ok(out)
    }
}


/// A sampling run's preview interval: the one asked for, or about 25 previews per run.
fn every(preview_every: usize, options: &SampleOptions) -> usize {
    if preview_every > 0 { preview_every } else { (options.steps / 25).max(1) }
}

impl WebModel {
    /// The guide model and autoguidance of a run: its `autoguidance` weight (default
    /// the card's `sampling.autoguidance.weight` when the model has a guide), or
    /// `None` for the model alone.
    pub(super) fn guide_model(&self, options: &RunOptions) -> Result<Option<(&crate::model::ScoreModel, Autoguidance)>, WebError> {
        match (&self.worse, options.autoguidance(&self.card.sampling)?) {
            (_, None) => Ok(None),
            (Worse::Loaded(worse, _), Some(guidance)) => Ok(Some((&**worse, guidance))),
            // Absent, the default: the model alone when its guide is missing or broken.
            (Worse::None | Worse::Broken(_), Some(_)) if options.autoguidance.is_none() => Ok(None),
            (Worse::None, Some(_)) => Err(WebError::invalid(format!("`autoguidance` needs a guide model, and the model card `{}` names none", self.card.name))),
            (Worse::Broken(e), Some(_)) => Err(e.clone()),
        }
    }

    /// The classifier and guidance of a run with `class`, its weights fetched the first time;
    /// `None` for an unguided run.
    pub(super) async fn guide(&self, options: &RunOptions, first_sample: u64) -> Result<Option<(Rc<NoisyClassifier>, Guidance)>, WebError> {
        if !options.guided()? {
            return Ok(None);
        }
        let (card, weights_url, net) = match &self.classifier {
            Guide::None => return Err(WebError::invalid(format!("`class` needs a classifier, and the model card `{}` names none", self.card.name))),
            Guide::Broken(e) => return Err(e.clone()),
            Guide::Card { card, weights_url, net } => (card, weights_url, net),
        };
        // The options first, against the card's classes: a bad one costs no download.
        let guidance = options.guidance(card.architecture.classes.len(), first_sample, &self.card.sampling)?;
        let loaded = net.borrow().clone();
        let loaded = match loaded {
            Some(n) => n,
            None => {
                let url = weights_url.as_ref().ok_or_else(|| WebError::model_file("the classifier has no weights"))?;
                let bytes = fetch_bytes(url, "classifier weights").await?;
                let n = Rc::new(classifier::load(card, &bytes, &self.backend.device).map_err(|e| WebError::model_file(format!("classifier {url}: {e}")))?);
                // Two runs may have fetched at once: keep the first.
                net.borrow_mut().get_or_insert(n).clone()
            }
        };
        Ok(Some((loaded, guidance)))
    }

    /// Refuses to start on a lost device, and a batch that does not fit this device.
    pub(super) fn check_batch(&self, batch: usize) -> Result<(), WebError> {
        if let Some(reason) = self.backend.lost() {
            return Err(device_lost(&reason));
        }
        let [c, h, w] = self.card.image_shape();
        sampling::validate_batch([batch, c, h, w])?;
        let max = self.max_batch();
        if batch > max {
            let per_image = 4 * self.card.architecture.largest_tensor_per_image();
            let limit = self.backend.max_tensor_bytes.unwrap_or(0);
            let what = if self.backend.kind == "cpu" { "the CPU backend's limit per tensor in wasm" } else { "this GPU's largest buffer binding" };
            return Err(WebError::invalid(format!(
                "`batch` {batch} is too large for this device: at most {max} images fit ({:.2} MiB per image in the network's largest tensor; {what} is {} MiB)",
                per_image as f64 / (1u64 << 20) as f64,
                limit >> 20
            )));
        }
        Ok(())
    }

    /// The error of a failed run: the device's loss if that is what happened.
    pub(super) fn fail(&self, e: impl Into<WebError>) -> WebError {
        match self.backend.lost() {
            Some(reason) => device_lost(&reason),
            None => e.into(),
        }
    }

    /// The observer of a new run (previews every `preview_every` steps), and the guard that
    /// unregisters its cancel flag at the end.
    pub(super) fn observer(&self, on_progress: Option<Function>, run_id: Option<u32>, preview_every: usize, preview_of: PreviewOf) -> (JsObserver, RunGuard) {
        let flag = Rc::new(Cell::new(false));
        self.runs.borrow_mut().push((run_id, flag.clone()));
        let guard = RunGuard { runs: self.runs.clone(), flag: flag.clone() };
        let observer = JsObserver { on_progress, preview_every, preview_of, sde: self.model.sde, cancel: flag, lost: self.backend.lost.clone(), last_yield: js_sys::Date::now(), observer_ms: Rc::new(Cell::new(0.0)) };
        (observer, guard)
    }

    /// The run's result; `evals` counts network evaluations, the worse model's (`guide_evals`)
    /// among them.
    pub(super) async fn finish(&self, out: sampling::Samples, guide_evals: usize, start: f64, sampler: Sampler, observer_ms: f64) -> Result<JsValue, WebError> {
        let (result, first_bad) = tensor_to_js(out.x).await.map_err(|e| self.fail(WebError::run(e)))?;
        if let Some(i) = first_bad {
            return Err(WebError::new(ErrorName::NonFinite, format!("{} produced a non-finite value (at index {i}); {}", sampler.name(), sampler.if_non_finite())));
        }
        Reflect::set(&result, &"evals".into(), &((out.evals + guide_evals) as f64).into()).ok();
        Reflect::set(&result, &"guideEvals".into(), &(guide_evals as f64).into()).ok();
        Reflect::set(&result, &"seconds".into(), &((js_sys::Date::now() - start) / 1000.0).into()).ok();
        // Of those seconds, the time spent on previews, progress callbacks and yields.
        Reflect::set(&result, &"observerSeconds".into(), &(observer_ms / 1000.0).into()).ok();
        Ok(result)
    }
}
