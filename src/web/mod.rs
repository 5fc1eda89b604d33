//! The browser API (wasm-bindgen). Async at the edge, pure in the middle; by concern: the model
//! and its runs here, what JavaScript sends (`options.rs`), progress and previews
//! (`observer.rs`), files and the WebGPU device (`device.rs`), errors with a `name` (`error.rs`)
//! and the 2-D explainer (`field.rs`). The sampling math does not know it is in a browser.
//!
//! ```js
//! const model = await ScoreModel.load(new URL('models/mnist.json', location.href).href, { backend: 'auto' });
//! const { data, shape } = await model.generate({ sampler: 'dpmpp-2m', steps: 10, batch: 16, seed: 1 },
//!                                              (p) => console.log(p.step, p.total, p.preview));
//! ```

mod device;
mod error;
mod field;
mod observer;
mod options;
mod runs;

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use burn::prelude::*;
use js_sys::{Float32Array, Reflect};
use wasm_bindgen::prelude::*;

pub use error::{ErrorName, WebError};

use crate::backend::Backend;
use crate::frontend::RunDefaults;
use crate::sampling::{self, Known, SampleOptions, Sampler, catalog};
use crate::nn::classifier::NoisyClassifier;
use crate::store::classifier::{self, ClassifierCard};
use crate::compose::RunScore;
use crate::sampling::autoguidance::Autoguidance;
use crate::sampling::guidance::Guidance;
use crate::likelihood;
use crate::store::{self, ModelCard};
use device::{device_lost, fetch_bytes, resolve, start_webgpu};
use crate::serde_fields::field_names;
use observer::now_ms;
use options::{LoadOptions, count, refuse_unknown_keys, take_numbers};

// The linker's constructor list (`__wasm_call_ctors`): the `inventory` registrations of Burn's
// WGSL compiler, 4,892 of them in this module.
#[cfg(target_family = "wasm")]
unsafe extern "C" {
    fn __wasm_call_ctors();
}

#[wasm_bindgen(start)]
pub fn start() {
    // Run the constructors once, here. A module whose exports never call `__wasm_call_ctors` is
    // linked "command-style": wasm-ld wraps every export in a call to it, so each call from
    // JavaScript into the module (every string or object handed across, every allocation by the
    // bindings) re-ran all 4,892 constructors, about 0.5 ms each time, 10–20 ms per sampler step
    // (docs/PERFORMANCE.md, "The per-step overhead"). Calling it from the start function makes the
    // module a reactor: no wrappers. `inventory`'s constructors are idempotent, so the order
    // relative to the bindings' own start-up does not matter.
    #[cfg(target_family = "wasm")]
    unsafe {
        __wasm_call_ctors()
    };
    // A panic is a bug; print it to the console rather than as a bare "unreachable".
    console_error_panic_hook::set_once();
}

/// One score evaluation at t = 0.5, waited for by reading its sum back (the device has finished).
async fn evaluate_once(model: &crate::model::ScoreModel, x: Tensor<4>) -> Result<f32, String> {
    use crate::sampling::ScoreFn;
    let total = model.score(x, 0.5).sum().into_data_async().await.map_err(|e| format!("readback failed: {e:?}"))?;
    total.try_to_vec::<f32>().map_err(|e| format!("{e:?}")).map(|v| v[0])
}

fn parse_load_options(options: JsValue) -> Result<LoadOptions, WebError> {
    if options.is_undefined() || options.is_null() {
        return Ok(LoadOptions::default());
    }
    refuse_unknown_keys(&options, field_names::<LoadOptions>(), "load option")?;
    serde_wasm_bindgen::from_value(options).map_err(|e| WebError::invalid(format!("load options: {e}")))
}

/// A score model loaded in the page.
#[wasm_bindgen(js_name = ScoreModel)]
pub struct WebModel {
    card: ModelCard,
    model: crate::model::ScoreModel,
    backend: Backend,
    /// Why `auto` did not take WebGPU, if it did not.
    fallback_reason: Option<String>,
    /// The cancel flag of every run in progress, by run id: runs on one model (two widgets) do
    /// not cancel each other.
    runs: RunFlags,
    /// Seconds the load spent pre-warming the GPU kernels (0 on the CPU).
    warmup_seconds: f64,
    /// The classifier that guides runs to a class: its card, fetched with the model when the
    /// model's card names one (or why it could not be), and its weights, fetched at the first
    /// guided run.
    classifier: Guide,
    /// The worse model that autoguides this one, when the card names one: fetched and loaded
    /// with the model (runs use it by default), or why it could not be.
    worse: Worse,
}

/// A model card as a plain JS object (the front ends read its fields).
fn card_object(card: &ModelCard) -> JsValue {
    js_sys::JSON::parse(&card.to_json()).unwrap_or(JsValue::NULL)
}

/// The worse model of autoguided runs.
enum Worse {
    /// The model's card names none.
    None,
    /// It could not be fetched or read: runs that ask for autoguidance give this error; the
    /// others run on the model alone.
    Broken(WebError),
    /// The network and its card (which a front end describes: `guide`).
    Loaded(Box<crate::model::ScoreModel>, Box<ModelCard>),
}

/// The worse model's card and weights, fetched with the model (or why not), to be loaded on
/// the model's device.
enum WorseSource {
    None,
    Broken(WebError),
    Bytes(ModelCard, Vec<u8>),
}

/// The classifier of guided runs, as far as it has been loaded.
enum Guide {
    /// The model's card names no classifier.
    None,
    /// Its card could not be read: guided runs give this error; unguided ones work.
    Broken(WebError),
    /// Its card, the URL of its weights, and the network once fetched.
    Card { card: ClassifierCard, weights_url: Option<String>, net: RefCell<Option<Rc<NoisyClassifier>>> },
}

/// The cancel flag of each run in progress, with the caller's run id.
type RunFlags = Rc<RefCell<Vec<(Option<u32>, Rc<Cell<bool>>)>>>;

/// Removes a run's cancel flag when the run ends, however it ends.
struct RunGuard {
    runs: RunFlags,
    flag: Rc<Cell<bool>>,
}

impl Drop for RunGuard {
    fn drop(&mut self) {
        self.runs.borrow_mut().retain(|(_, f)| !Rc::ptr_eq(f, &self.flag));
    }
}

#[wasm_bindgen(js_class = ScoreModel)]
impl WebModel {
    /// Fetches the model card at `card_url` (absolute URL) and the weights it names (relative to
    /// the card), starts the backend and loads the weights.
    pub async fn load(card_url: String, options: JsValue) -> Result<WebModel, WebError> {
        let card_bytes = fetch_bytes(&card_url, "model card").await?;
        let card_text = String::from_utf8(card_bytes).map_err(|_| WebError::model_file(format!("the model card at {card_url} is not UTF-8 text")))?;
        let card = ModelCard::from_json(&card_text).map_err(|e| WebError::model_file(format!("model card {card_url}: {e}")))?;
        let weights_url = web_sys::Url::new_with_base(&card.weights, &card_url).map_err(|_| WebError::model_file(format!("cannot resolve `{}` against {card_url}", card.weights)))?.href();
        let weights = fetch_bytes(&weights_url, "weights").await?;
        let classifier = match &card.classifier {
            None => Guide::None,
            Some(name) => fetch_classifier_card(name, &card_url, &card).await.unwrap_or_else(Guide::Broken),
        };
        let worse = match &card.guide {
            None => WorseSource::None,
            Some(name) => fetch_guide(name, &card_url, &card).await.map_or_else(WorseSource::Broken, |(c, w)| WorseSource::Bytes(c, w)),
        };
        Self::start(card, &weights, options, classifier, worse).await
    }

    /// Loads a model from a card's JSON text and the safetensors bytes (for files a reader
    /// chose, or tests).
    #[wasm_bindgen(js_name = fromBytes)]
    pub async fn from_bytes(card_json: String, weights: Vec<u8>, options: JsValue) -> Result<WebModel, WebError> {
        let card = ModelCard::from_json(&card_json).map_err(|e| WebError::model_file(format!("model card: {e}")))?;
        let classifier = match &card.classifier {
            None => Guide::None,
            Some(_) => Guide::Broken(WebError::model_file("a model loaded from bytes has no classifier; give it one with setClassifier(card, weights)")),
        };
        let worse = match &card.guide {
            None => WorseSource::None,
            Some(_) => WorseSource::Broken(WebError::model_file("a model loaded from bytes has no guide model; give it one with setGuide(card, weights)")),
        };
        Self::start(card, &weights, options, classifier, worse).await
    }

    /// Gives the model the worse model of autoguided runs from a model card's JSON text and its
    /// safetensors bytes (a model loaded from bytes, or tests).
    #[wasm_bindgen(js_name = setGuide)]
    pub fn set_guide(&mut self, card_json: String, weights: Vec<u8>) -> Result<(), WebError> {
        let card = ModelCard::from_json(&card_json).map_err(|e| WebError::model_file(format!("guide model card: {e}")))?;
        self.card.check_guide(&card).map_err(|e| WebError::model_file(format!("guide model card: {e}")))?;
        let model = store::load(&card, &weights, &self.backend.device).map_err(|e| WebError::model_file(format!("guide model: {e}")))?;
        self.worse = Worse::Loaded(Box::new(model), Box::new(card));
        Ok(())
    }

    /// Whether runs are autoguided by a worse model unless they say `autoguidance: 1`.
    #[wasm_bindgen(getter)]
    pub fn autoguided(&self) -> bool {
        matches!(self.worse, Worse::Loaded(..))
    }

    /// Why the model's guide model cannot be used, if its card names one that is broken (runs
    /// then draw from the model alone).
    #[wasm_bindgen(getter, js_name = guideProblem)]
    pub fn guide_problem(&self) -> Option<String> {
        match &self.worse {
            Worse::Broken(e) => Some(e.message.clone()),
            _ => None,
        }
    }

    /// The number of the network's parameters (a front end compares it with the guide's).
    #[wasm_bindgen(getter)]
    pub fn parameters(&self) -> usize {
        self.model.net.num_params()
    }

    /// The worse model of autoguided runs, for a front end to describe: `{card, parameters}`
    /// (its model card as a plain object and its network's parameter count), or null.
    #[wasm_bindgen(getter, js_name = guide)]
    pub fn guide_description(&self) -> JsValue {
        let Worse::Loaded(model, card) = &self.worse else { return JsValue::NULL };
        let out = js_sys::Object::new();
        let _ = js_sys::Reflect::set(&out, &"card".into(), &card_object(card));
        let _ = js_sys::Reflect::set(&out, &"parameters".into(), &JsValue::from(model.net.num_params() as f64));
        out.into()
    }

    /// Gives the model the classifier of guided runs from a classifier card's JSON text and its
    /// safetensors bytes (a model loaded from bytes, or tests).
    #[wasm_bindgen(js_name = setClassifier)]
    pub fn set_classifier(&mut self, card_json: String, weights: Vec<u8>) -> Result<(), WebError> {
        let card = ClassifierCard::from_json(&card_json).map_err(|e| WebError::model_file(format!("classifier card: {e}")))?;
        card.check_for(&self.card).map_err(|e| WebError::model_file(format!("classifier card: {e}")))?;
        let net = classifier::load(&card, &weights, &self.backend.device).map_err(|e| WebError::model_file(format!("classifier: {e}")))?;
        self.classifier = Guide::Card { card, weights_url: None, net: RefCell::new(Some(Rc::new(net))) };
        Ok(())
    }

    /// The names of the classes a run can be guided to (`class` is an index into them), or
    /// null when the model has no classifier.
    #[wasm_bindgen(getter)]
    pub fn classes(&self) -> JsValue {
        match &self.classifier {
            Guide::Card { card, .. } => serde_wasm_bindgen::to_value(&card.architecture.classes).unwrap_or(JsValue::NULL),
            _ => JsValue::NULL,
        }
    }

    /// Why the model's classifier cannot be used, if its card names one that is broken.
    #[wasm_bindgen(getter, js_name = classifierProblem)]
    pub fn classifier_problem(&self) -> Option<String> {
        match &self.classifier {
            Guide::Broken(e) => Some(e.message.clone()),
            _ => None,
        }
    }

    async fn start(card: ModelCard, weights: &[u8], options: JsValue, classifier: Guide, worse: WorseSource) -> Result<WebModel, WebError> {
        let options = parse_load_options(options)?;
        let (backend, fallback_reason) = resolve(options.backend).await?;
        let model = store::load(&card, weights, &backend.device)?;
        let mut worse = match worse {
            WorseSource::None => Worse::None,
            WorseSource::Broken(e) => Worse::Broken(e),
            WorseSource::Bytes(guide, bytes) => match store::load(&guide, &bytes, &backend.device) {
                Ok(m) => Worse::Loaded(Box::new(m), Box::new(guide)),
                Err(e) => Worse::Broken(WebError::model_file(format!("guide model `{}`: {e}", guide.name))),
            },
        };
        // Pre-warm: on WebGPU the first forward pass compiles (and autotunes) its kernels; do it
        // while the model loads rather than in the reader's first Generate (measured on the
        // software adapter: the first batch-4 Generate took 2.3 s longer than the second).
        let start = now_ms();
        if backend.kind == "webgpu" {
            let [c, h, w] = card.image_shape();
            let x = Tensor::<4>::zeros([1, c, h, w], &backend.device);
            evaluate_once(&model, x.clone()).await.map_err(|e| WebError::run(format!("the first forward pass on the GPU failed: {e}")))?;
            // The guide's kernels too (another network: other shapes); if it fails, the model
            // draws alone.
            if let Worse::Loaded(guide, _) = &worse {
                if let Err(e) = evaluate_once(guide, x).await {
                    worse = Worse::Broken(WebError::run(format!("the guide model's first forward pass on the GPU failed: {e}")));
                }
            }
        }
        let warmup_seconds = (now_ms() - start) / 1000.0;
        Ok(WebModel { card, model, backend, fallback_reason, runs: Rc::new(RefCell::new(Vec::new())), warmup_seconds, classifier, worse })
    }

    /// What a backend choice (`{backend: "auto" | "webgpu" | "cpu"}`) comes to in this wasm
    /// instance: `{backend: "webgpu" | "cpu", fallbackReason}`, the same every time, so that a
    /// worker holds one copy of a model per device rather than per name (`auto` that took the CPU
    /// and `cpu` share one).
    #[wasm_bindgen(js_name = resolveBackend)]
    pub async fn resolve_backend(options: JsValue) -> Result<JsValue, WebError> {
        let (backend, reason) = resolve(parse_load_options(options)?.backend).await?;
        let out = js_sys::Object::new();
        Reflect::set(&out, &"backend".into(), &backend.kind.into()).ok();
        Reflect::set(&out, &"fallbackReason".into(), &reason.map_or(JsValue::NULL, JsValue::from)).ok();
        Ok(out.into())
    }


    /// Bytes of this wasm instance's linear memory (it only grows: flat over many runs means no
    /// leak on the wasm side).
    #[wasm_bindgen(js_name = wasmMemoryBytes)]
    pub fn wasm_memory_bytes() -> f64 {
        wasm_bindgen::memory().unchecked_into::<js_sys::WebAssembly::Memory>().buffer().unchecked_into::<js_sys::ArrayBuffer>().byte_length() as f64
    }

    /// "webgpu" or "cpu".
    #[wasm_bindgen(getter)]
    pub fn backend(&self) -> String {
        self.backend.kind.into()
    }

    /// The adapter the backend runs on.
    #[wasm_bindgen(getter)]
    pub fn adapter(&self) -> String {
        self.backend.adapter.clone()
    }

    /// Seconds the load spent compiling GPU kernels with a first forward pass (0 on the CPU).
    #[wasm_bindgen(getter, js_name = warmupSeconds)]
    pub fn warmup_seconds(&self) -> f64 {
        self.warmup_seconds
    }

    /// The largest batch this device takes in one run (from its buffer limits; see
    /// `ScoreNetConfig::max_batch_for`).
    #[wasm_bindgen(getter, js_name = maxBatch)]
    pub fn max_batch(&self) -> usize {
        let limit = self.backend.max_tensor_bytes.map_or(sampling::MAX_BATCH, |bytes| self.card.architecture.max_batch_for(bytes));
        limit.min(sampling::MAX_BATCH)
    }

    /// What the GPU allocator holds: `{allocations, bytesInUse, bytesReserved}` (CubeCL's memory
    /// pools on this device; WebGPU itself has no memory query), or null on the CPU.
    #[wasm_bindgen(js_name = gpuMemory)]
    pub fn gpu_memory(&self) -> JsValue {
        if self.backend.kind == "cpu" {
            return JsValue::NULL;
        }
        let Some(usage) = self.backend.device.memory_pool_usage() else { return JsValue::NULL };
        let out = js_sys::Object::new();
        Reflect::set(&out, &"allocations".into(), &(usage.number_allocs as f64).into()).ok();
        Reflect::set(&out, &"bytesInUse".into(), &(usage.bytes_in_use as f64).into()).ok();
        Reflect::set(&out, &"bytesReserved".into(), &(usage.bytes_reserved as f64).into()).ok();
        out.into()
    }

    /// Why the GPU device was lost, once it was (then every call fails; load the model again).
    #[wasm_bindgen(getter, js_name = deviceLost)]
    pub fn device_lost(&self) -> Option<String> {
        self.backend.lost()
    }

    /// Destroys the GPU device (`GPUDevice.destroy()`), as a driver reset would: for tests of
    /// device loss. Does nothing on the CPU.
    #[wasm_bindgen(js_name = destroyDevice)]
    pub fn destroy_device(&self) {
        self.backend.destroy_gpu_device();
    }

    /// Why `auto` fell back to the CPU, if it did.
    #[wasm_bindgen(getter, js_name = fallbackReason)]
    pub fn fallback_reason(&self) -> Option<String> {
        self.fallback_reason.clone()
    }

    /// The samplers this model runs, as the page and the widget describe them, its default
    /// first: `[{name, label, paper, step, options, takesSteps, defaultSteps, minSteps,
    /// minStepsWhy, defaultCorrectorSteps, defaultSnr}]` (`src/sampling/catalog.rs`; the step
    /// counts are this model's, from its card's `sampling`).
    #[wasm_bindgen(getter)]
    pub fn samplers(&self) -> JsValue {
        // Plain objects, not JS Maps: each entry flattens the sampler's description into it.
        let samplers = catalog::samplers_for(&self.model.sde, &self.model.param, &self.card.sampling);
        serde::Serialize::serialize(&samplers, &serde_wasm_bindgen::Serializer::new().serialize_maps_as_objects(true)).unwrap_or(JsValue::NULL)
    }

    /// How many images a run draws, and from which seed, unless told otherwise; the largest batch
    /// and the sliders' ends the page offers; this model's guided and autoguided starting points
    /// (`src/frontend.rs` `RunDefaults`).
    #[wasm_bindgen(js_name = runDefaults)]
    pub fn run_defaults(&self) -> JsValue {
        serde_wasm_bindgen::to_value(&RunDefaults::for_model(&self.card.sampling)).unwrap_or(JsValue::NULL)
    }

    /// The model card as a plain object.
    #[wasm_bindgen(getter)]
    pub fn card(&self) -> JsValue {
        card_object(&self.card)
    }

    /// Stops the run started with `runId` (or, without an id, every run of this model) within
    /// one step; it rejects with "cancelled".
    pub fn cancel(&self, run_id: Option<u32>) {
        for (id, flag) in self.runs.borrow().iter() {
            if run_id.is_none() || *id == run_id {
                flag.set(true);
            }
        }
    }

    /// Times score evaluations of `batch` random images: `warmup` untimed, then `repeats` timed,
    /// each ending with one number read back so that the device has finished. Resolves to
    /// `{batch, ms: number[]}` (for the benchmark page).
    pub async fn benchmark(&self, batch: f64, repeats: f64, warmup: f64) -> Result<JsValue, WebError> {
        let batch = count("batch", batch, 1, sampling::MAX_BATCH)?;
        let repeats = count("repeats", repeats, 1, 10_000)?;
        let warmup = count("warmup", warmup, 0, 10_000)?;
        let [c, h, w] = self.card.image_shape();
        self.check_batch(batch)?;
        let x = sampling::Noise::new(0).normal([batch, c, h, w], 1.0, &self.backend.device);
        let eval = async || -> Result<f64, WebError> {
            let start = now_ms();
            let value = evaluate_once(&self.model, x.clone()).await.map_err(|e| self.fail(WebError::run(e)))?;
            if !value.is_finite() {
                return Err(WebError::new(ErrorName::NonFinite, "the score is not finite"));
            }
            Ok(now_ms() - start)
        };
        for _ in 0..warmup {
            eval().await?;
        }
        let times = js_sys::Array::new();
        for _ in 0..repeats {
            times.push(&eval().await?.into());
        }
        let out = js_sys::Object::new();
        Reflect::set(&out, &"batch".into(), &(batch as f64).into()).ok();
        Reflect::set(&out, &"ms".into(), &times).ok();
        Ok(out.into())
    }

    /// The raw network output for `x` (B·C·H·W values) and `t` (B noise labels: the time t for
    /// the first network, whose output is score × σ(t); c_noise = ¼ ln σ for the EDM U-Net, whose
    /// output is F): what `scorefield export-onnx` writes as ONNX, so that the benchmark page can
    /// check another runtime against this one. Resolves to a Float32Array of B·C·H·W values.
    pub async fn network(&self, x: Vec<f32>, t: Vec<f32>) -> Result<Float32Array, WebError> {
        let [c, h, w] = self.card.image_shape();
        let batch = t.len();
        if batch == 0 || batch > sampling::MAX_BATCH {
            return Err(WebError::invalid(format!("`t` has {batch} values; give one time per image, 1..={}", sampling::MAX_BATCH)));
        }
        if x.len() != batch * c * h * w {
            return Err(WebError::invalid(format!("`x` has {} values; {batch} images of {c}×{h}×{w} need {}", x.len(), batch * c * h * w)));
        }
        self.check_batch(batch)?;
        for (name, values) in [("x", &x), ("t", &t)] {
            if let Some(i) = values.iter().position(|v| !v.is_finite()) {
                return Err(WebError::invalid(format!("`{name}` holds {} at index {i}", values[i])));
            }
        }
        let device = &self.backend.device;
        let x = Tensor::<4>::from_data(TensorData::new(x, [batch, c, h, w]), device);
        let t = Tensor::<1>::from_data(TensorData::new(t, [batch]), device);
        let out = self.model.net.forward(x, t).into_data_async().await.map_err(|e| self.fail(WebError::run(format!("reading the output back failed: {e:?}"))))?;
        let values = out.try_to_vec::<f32>().map_err(|e| WebError::run(format!("{e:?}")))?;
        Ok(Float32Array::from(values.as_slice()))
    }

}


/// The URL and text of the card of a `what` ("classifier", "guide model") that the model card at
/// `card_url` names as `name`, relative to itself.
async fn fetch_named_card(name: &str, card_url: &str, what: &str) -> Result<(String, String), WebError> {
    let url = web_sys::Url::new_with_base(name, card_url).map_err(|_| WebError::model_file(format!("cannot resolve the {what} `{name}` against {card_url}")))?.href();
    let bytes = fetch_bytes(&url, &format!("{what} card")).await?;
    let text = String::from_utf8(bytes).map_err(|_| WebError::model_file(format!("the {what} card at {url} is not UTF-8 text")))?;
    Ok((url, text))
}

/// Fetches the classifier card `name` (relative to the model card at `card_url`).
async fn fetch_classifier_card(name: &str, card_url: &str, model: &ModelCard) -> Result<Guide, WebError> {
    let (url, text) = fetch_named_card(name, card_url, "classifier").await?;
    let card = ClassifierCard::from_json(&text).map_err(|e| WebError::model_file(format!("classifier card {url}: {e}")))?;
    card.check_for(model).map_err(|e| WebError::model_file(format!("classifier card {url}: {e}")))?;
    let weights_url = web_sys::Url::new_with_base(&card.weights, &url).map_err(|_| WebError::model_file(format!("cannot resolve `{}` against {url}", card.weights)))?.href();
    Ok(Guide::Card { card, weights_url: Some(weights_url), net: RefCell::new(None) })
}

/// Fetches the guide model card `name` (relative to the model card at `card_url`), checks it
/// against the model's, and its weights.
async fn fetch_guide(name: &str, card_url: &str, model: &ModelCard) -> Result<(ModelCard, Vec<u8>), WebError> {
    let (url, text) = fetch_named_card(name, card_url, "guide model").await?;
    let card = ModelCard::from_json(&text).map_err(|e| WebError::model_file(format!("guide model card {url}: {e}")))?;
    model.check_guide(&card).map_err(|e| WebError::model_file(format!("guide model card {url}: {e}")))?;
    let weights_url = web_sys::Url::new_with_base(&card.weights, &url).map_err(|_| WebError::model_file(format!("cannot resolve `{}` against {url}", card.weights)))?.href();
    let weights = fetch_bytes(&weights_url, "guide model weights").await?;
    Ok((card, weights))
}
