//! The browser API (wasm-bindgen). Async at the edge, pure in the middle: this file fetches, starts
//! the device, checks what JavaScript sent, reads tensors back asynchronously and turns every
//! error into a JS `Error` with a message and a `name` (`error.rs`); the sampling math does not
//! know it is in a browser.
//!
//! ```js
//! const model = await ScoreModel.load(new URL('models/mnist.json', location.href).href, { backend: 'auto' });
//! const { data, shape } = await model.generate({ sampler: 'dpmpp-2m', steps: 10, batch: 16, seed: 1 },
//!                                              (p) => console.log(p.step, p.total, p.preview));
//! ```

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use burn::prelude::*;
use js_sys::{Float32Array, Function, Promise, Reflect, Uint8Array};
use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

mod error;
mod field;

pub use error::{ErrorName, WebError};

use crate::backend::{self, Backend};
use crate::sampling::{self, Flow, Known, Observer, SampleOptions, Sampler, Step, catalog};
use crate::weights::{self, ModelCard};

#[wasm_bindgen(start)]
pub fn start() {
    // A panic is a bug; print it to the console rather than as a bare "unreachable".
    console_error_panic_hook::set_once();
}

/// Which backend to run on: `auto` takes WebGPU when the browser has a hardware adapter and it
/// starts ([`webgpu_adapter`]), else the CPU; the one definition of `auto` (the page, the widget and
/// the worker pass it through).
#[derive(Clone, Copy, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum BackendChoice {
    #[default]
    Auto,
    Webgpu,
    Cpu,
}

#[derive(Default, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
struct LoadOptions {
    backend: BackendChoice,
}

/// Options of `generate` and `inpaint`, checked field by field.
#[derive(Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
struct RunOptions {
    sampler: String,
    steps: f64,
    batch: f64,
    seed: f64,
    snr: f64,
    corrector_steps: Option<f64>,
    ald_eps: Option<f64>,
    rtol: f64,
    atol: f64,
    rho: f64,
    churn: f64,
    denoise: bool,
    /// Send a preview every this many steps (0: about 25 previews per run).
    preview_every: f64,
    /// What the previews show: `mean` (the step's noise-free mean, the default) or `x` (the noisy
    /// state x(t) itself, as the trajectory view wants).
    preview_of: PreviewOf,
    /// A caller's id for this run, so that `cancel(runId)` stops this run and no other.
    run_id: Option<f64>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum PreviewOf {
    #[default]
    Mean,
    X,
}

impl Default for RunOptions {
    fn default() -> Self {
        let d = SampleOptions::default();
        let start = catalog::DEFAULT_SAMPLER.info();
        Self {
            sampler: start.name.into(),
            steps: start.default_steps as f64,
            batch: 16.0,
            seed: 0.0,
            snr: d.snr,
            corrector_steps: None,
            ald_eps: d.ald_eps,
            rtol: d.rtol,
            atol: d.atol,
            rho: d.rho,
            churn: d.churn,
            denoise: true,
            preview_every: 0.0,
            preview_of: PreviewOf::Mean,
            run_id: None,
        }
    }
}

/// Takes `key` out of a copy of `options` as numbers (a typed array or an array of numbers).
fn take_numbers(options: &JsValue, key: &str) -> Result<(JsValue, Option<Vec<f32>>), WebError> {
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
fn count(field: &'static str, v: f64, lo: usize, hi: usize) -> Result<usize, WebError> {
    if !v.is_finite() || v.fract() != 0.0 || v < lo as f64 || v > hi as f64 {
        return Err(WebError::invalid(format!("`{field}` must be a whole number in {lo}..={hi}, got {v}")));
    }
    Ok(v as usize)
}

impl RunOptions {
    /// The run id, checked: a whole number in 0..2³².
    fn run_id(&self) -> Result<Option<u32>, WebError> {
        self.run_id.map(|v| count("runId", v, 0, u32::MAX as usize).map(|v| v as u32)).transpose()
    }

    fn to_sample_options(&self) -> Result<(SampleOptions, usize, usize), WebError> {
        let sampler: Sampler = self.sampler.parse()?;
        let steps = count("steps", self.steps, 1, sampling::MAX_STEPS)?;
        let batch = count("batch", self.batch, 1, sampling::MAX_BATCH)?;
        if !(self.seed.is_finite() && self.seed >= 0.0 && self.seed.fract() == 0.0 && self.seed <= 9_007_199_254_740_991.0) {
            return Err(WebError::invalid(format!("`seed` must be a non-negative whole number, got {}", self.seed)));
        }
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
            churn: self.churn,
            denoise: self.denoise,
            seed: self.seed as u64,
        };
        Ok((options, batch, preview_every))
    }
}

/// Progress sent to JavaScript.
#[derive(Serialize)]
struct ProgressInfo {
    step: usize,
    total: Option<usize>,
    t: f64,
    /// Marginal std σ(t) of the model's SDE at t: the noise level of x(t).
    sigma: f64,
    progress: f64,
}

/// Calls `onProgress` after each step with `{step, total, t, progress}` and, every
/// `preview_every` steps, `preview: {data, shape}` read back asynchronously; yields to the event
/// loop about every 16 ms so that the page (or worker) can deliver a `cancel()`.
struct JsObserver {
    on_progress: Option<Function>,
    preview_every: usize,
    preview_of: PreviewOf,
    sde: crate::Sde,
    cancel: Rc<Cell<bool>>,
    /// The device's lost flag: a run on a lost GPU stops at its next step (and reports the loss).
    lost: std::sync::Arc<std::sync::OnceLock<String>>,
    last_yield: f64,
    /// Milliseconds spent in `observe` (previews, progress calls, yields) and when it last
    /// returned: the rest of the wall time is the sampler's own.
    observer_ms: Rc<Cell<f64>>,
}

impl Observer for JsObserver {
    async fn observe(&mut self, s: Step<'_>) -> Flow {
        let start = now_ms();
        let flow = self.observe_inner(s).await;
        self.observer_ms.set(self.observer_ms.get() + now_ms() - start);
        flow
    }
}

impl JsObserver {
    async fn observe_inner(&mut self, s: Step<'_>) -> Flow {
        if self.cancel.get() || self.lost.get().is_some() {
            return Flow::Cancel;
        }
        if let Some(f) = &self.on_progress {
            let sigma = self.sde.marginal(s.t).1;
            let info = serde_wasm_bindgen::to_value(&ProgressInfo { step: s.step, total: s.total, t: s.t, sigma, progress: s.progress }).unwrap_or(JsValue::NULL);
            let last = s.total.is_some_and(|t| s.step == t);
            if self.preview_every > 0 && (s.step % self.preview_every == 0 || s.step == 1) && !last {
                let shown = if self.preview_of == PreviewOf::X { s.x } else { s.x_mean };
                if let Ok((preview, first_bad)) = tensor_to_js(shown.clone()).await {
                    // The preview was read back anyway: stop at once if the run has blown up.
                    if first_bad.is_some() {
                        return Flow::NonFinite;
                    }
                    Reflect::set(&info, &"preview".into(), &preview).ok();
                }
            }
            let _ = f.call1(&JsValue::NULL, &info);
        }
        let now = js_sys::Date::now();
        if now - self.last_yield > 16.0 {
            yield_to_event_loop().await;
            self.last_yield = js_sys::Date::now();
        }
        if self.cancel.get() || self.lost.get().is_some() { Flow::Cancel } else { Flow::Continue }
    }
}

/// One score evaluation at t = 0.5, waited for by reading its sum back (the device has finished).
async fn evaluate_once(model: &crate::ScoreModel, x: Tensor<4>) -> Result<f32, String> {
    use crate::sampling::ScoreFn;
    let total = model.score(x, 0.5).sum().into_data_async().await.map_err(|e| format!("readback failed: {e:?}"))?;
    total.try_to_vec::<f32>().map_err(|e| format!("{e:?}")).map(|v| v[0])
}

/// `performance.now()` in a page or worker (milliseconds, sub-millisecond resolution).
fn now_ms() -> f64 {
    Reflect::get(&js_sys::global(), &"performance".into())
        .ok()
        .and_then(|p| Reflect::get(&p, &"now".into()).ok().and_then(|f| f.dyn_into::<Function>().ok()).and_then(|f| f.call0(&p).ok()))
        .and_then(|v| v.as_f64())
        .unwrap_or_else(js_sys::Date::now)
}

/// A macrotask turn (MessageChannel), so that queued messages and events get handled.
async fn yield_to_event_loop() {
    let promise = Promise::new(&mut |resolve, _| {
        if let Ok(channel) = web_sys::MessageChannel::new() {
            let port = channel.port1();
            let resolve2 = resolve.clone();
            let cb = Closure::once_into_js(move || {
                let _ = resolve2.call0(&JsValue::NULL);
            });
            port.set_onmessage(Some(cb.unchecked_ref()));
            let _ = channel.port2().post_message(&JsValue::NULL);
        } else {
            let _ = resolve.call0(&JsValue::NULL);
        }
    });
    let _ = JsFuture::from(promise).await;
}

/// `{data: Float32Array, shape: [B, C, H, W]}` of a tensor, read back asynchronously, and the
/// index of its first NaN or ±∞, if any.
async fn tensor_to_js(x: Tensor<4>) -> Result<(JsValue, Option<usize>), String> {
    let shape = x.dims();
    let data = x.into_data_async().await.map_err(|e| format!("reading the samples back from the device failed: {e:?}"))?;
    let values = data.try_to_vec::<f32>().map_err(|e| format!("{e:?}"))?;
    let first_bad = values.iter().position(|v| !v.is_finite());
    let out = js_sys::Object::new();
    Reflect::set(&out, &"data".into(), &Float32Array::from(values.as_slice()).into()).ok();
    Reflect::set(&out, &"shape".into(), &serde_wasm_bindgen::to_value(&shape).unwrap_or(JsValue::NULL)).ok();
    Ok((out.into(), first_bad))
}

async fn fetch_bytes(url: &str, what: &str) -> Result<Vec<u8>, WebError> {
    let global = js_sys::global();
    let fetch: Function = Reflect::get(&global, &"fetch".into()).ok().and_then(|f| f.dyn_into().ok()).ok_or_else(|| WebError::new(ErrorName::Fetch, "this context has no fetch()"))?;
    let failed = |e: JsValue| WebError::new(ErrorName::Fetch, format!("could not fetch the {what} at {url}: {}", e.as_string().or_else(|| js_sys::JSON::stringify(&e).ok().and_then(|s| s.as_string())).unwrap_or_default()));
    let response = fetch.call1(&global, &url.into()).map_err(failed)?;
    let response = JsFuture::from(Promise::from(response)).await.map_err(|e| WebError::new(ErrorName::Fetch, format!("could not fetch the {what} at {url}: {}", error_text(&e))))?;
    let response: web_sys::Response = response.dyn_into().map_err(|_| WebError::new(ErrorName::Fetch, "fetch did not return a Response"))?;
    if !response.ok() {
        return Err(WebError::new(ErrorName::Fetch, format!("could not fetch the {what} at {url}: HTTP {} {}", response.status(), response.status_text())));
    }
    let buffer = JsFuture::from(response.array_buffer().map_err(|e| WebError::new(ErrorName::Fetch, error_text(&e)))?).await.map_err(|e| WebError::new(ErrorName::Fetch, error_text(&e)))?;
    Ok(Uint8Array::new(&buffer).to_vec())
}

/// The page's WebGPU device, when asked for by name (any adapter, a fallback one too).
async fn start_webgpu() -> Result<Backend, WebError> {
    webgpu_adapter().await.map_err(|e| WebError::new(ErrorName::NoWebGpu, e))?;
    backend::webgpu().await.map_err(|e| WebError::new(ErrorName::NoWebGpu, e))
}

/// The browser's WebGPU adapter, asked of `navigator.gpu` before a device is made (a wasm instance
/// can start only one): `Ok(whether it is a software fallback adapter)`, on which the CPU build is
/// faster (docs/PERFORMANCE.md: SwiftShader's WebGPU is about 30 × slower), or why there is none.
async fn webgpu_adapter() -> Result<bool, String> {
    let navigator = Reflect::get(&js_sys::global(), &"navigator".into()).unwrap_or(JsValue::UNDEFINED);
    let gpu = Reflect::get(&navigator, &"gpu".into()).unwrap_or(JsValue::UNDEFINED);
    if gpu.is_undefined() || gpu.is_null() {
        return Err("this browser has no WebGPU".into());
    }
    let request: Function = Reflect::get(&gpu, &"requestAdapter".into()).ok().and_then(|f| f.dyn_into().ok()).ok_or("this browser has no WebGPU")?;
    let options = js_sys::Object::new();
    Reflect::set(&options, &"powerPreference".into(), &"high-performance".into()).ok();
    let promise = request.call1(&gpu, &options).map_err(|e| format!("WebGPU adapter request failed: {}", error_text(&e)))?;
    let adapter = JsFuture::from(Promise::from(promise)).await.map_err(|e| format!("WebGPU adapter request failed: {}", error_text(&e)))?;
    if adapter.is_undefined() || adapter.is_null() {
        return Err("no WebGPU adapter".into());
    }
    // `GPUAdapter.info.isFallbackAdapter` (older browsers: `GPUAdapter.isFallbackAdapter`).
    let info = Reflect::get(&adapter, &"info".into()).unwrap_or(JsValue::UNDEFINED);
    let flag = |v: &JsValue| Reflect::get(v, &"isFallbackAdapter".into()).ok().and_then(|f| f.as_bool());
    Ok(if info.is_object() { flag(&info) } else { None }.or_else(|| flag(&adapter)).unwrap_or(false))
}

fn error_text(e: &JsValue) -> String {
    if let Some(err) = e.dyn_ref::<js_sys::Error>() {
        return err.message().into();
    }
    e.as_string().unwrap_or_else(|| format!("{e:?}"))
}

fn device_lost(reason: &str) -> WebError {
    WebError::new(ErrorName::DeviceLost, format!("the GPU device was lost ({reason}); load the model again to start a new device"))
}

/// A score model loaded in the page.
#[wasm_bindgen(js_name = ScoreModel)]
pub struct WebModel {
    card: ModelCard,
    model: crate::ScoreModel,
    backend: Backend,
    /// Why `auto` did not take WebGPU, if it did not.
    fallback_reason: Option<String>,
    /// The cancel flag of every run in progress, by run id: runs on one model (two widgets) do
    /// not cancel each other.
    runs: RunFlags,
    /// Seconds the load spent pre-warming the GPU kernels (0 on the CPU).
    warmup_seconds: f64,
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
        Self::start(card, &weights, options).await
    }

    /// Loads a model from a card's JSON text and the safetensors bytes (for files a reader
    /// chose, or tests).
    #[wasm_bindgen(js_name = fromBytes)]
    pub async fn from_bytes(card_json: String, weights: Vec<u8>, options: JsValue) -> Result<WebModel, WebError> {
        let card = ModelCard::from_json(&card_json).map_err(|e| WebError::model_file(format!("model card: {e}")))?;
        Self::start(card, &weights, options).await
    }

    async fn start(card: ModelCard, weights: &[u8], options: JsValue) -> Result<WebModel, WebError> {
        let options: LoadOptions = if options.is_undefined() || options.is_null() {
            LoadOptions::default()
        } else {
            refuse_unknown_keys(&options, &["backend"], "load option")?;
            serde_wasm_bindgen::from_value(options).map_err(|e| WebError::invalid(format!("load options: {e}")))?
        };
        let (backend, fallback_reason) = match options.backend {
            BackendChoice::Cpu => (backend::cpu(), None),
            BackendChoice::Webgpu => (start_webgpu().await?, None),
            BackendChoice::Auto => match webgpu_adapter().await {
                Ok(false) => match backend::webgpu().await {
                    Ok(b) => (b, None),
                    Err(reason) => (backend::cpu(), Some(reason)),
                },
                Ok(true) => (backend::cpu(), Some("the WebGPU adapter is a software fallback; the CPU is faster".into())),
                Err(reason) => (backend::cpu(), Some(reason)),
            },
        };
        let model = weights::load(&card, weights, &backend.device)?;
        // Pre-warm: on WebGPU the first forward pass compiles (and autotunes) its kernels; do it
        // while the model loads rather than in the reader's first Generate (measured on the
        // software adapter: the first batch-4 Generate took 2.3 s longer than the second).
        let start = now_ms();
        if backend.kind == "webgpu" {
            let [c, h, w] = card.image_shape();
            let x = Tensor::<4>::zeros([1, c, h, w], &backend.device);
            evaluate_once(&model, x).await.map_err(|e| WebError::run(format!("the first forward pass on the GPU failed: {e}")))?;
        }
        let warmup_seconds = (now_ms() - start) / 1000.0;
        Ok(WebModel { card, model, backend, fallback_reason, runs: Rc::new(RefCell::new(Vec::new())), warmup_seconds })
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

    /// The samplers this model runs, as the page and the widget describe them, the default
    /// first: `[{name, label, paper, step, options, takesSteps, defaultSteps, minSteps,
    /// minStepsWhy, defaultCorrectorSteps, defaultSnr}]` (`src/sampling/catalog.rs`).
    #[wasm_bindgen(getter)]
    pub fn samplers(&self) -> JsValue {
        serde_wasm_bindgen::to_value(&catalog::samplers_for(&self.model.sde)).unwrap_or(JsValue::NULL)
    }

    /// The model card as a plain object.
    #[wasm_bindgen(getter)]
    pub fn card(&self) -> JsValue {
        js_sys::JSON::parse(&self.card.to_json()).unwrap_or(JsValue::NULL)
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

    /// Draws `batch` samples. Resolves to `{data: Float32Array, shape, evals, seconds}`.
    pub async fn generate(&self, options: JsValue, on_progress: Option<Function>) -> Result<JsValue, WebError> {
        for key in ["image", "mask"] {
            if options.is_object() && Reflect::has(&options, &key.into()).unwrap_or(false) {
                return Err(WebError::invalid(format!("`{key}` belongs to inpaint(), not generate()")));
            }
        }
        let options: RunOptions = parse_options(options)?;
        let (sample_options, batch, preview_every) = options.to_sample_options()?;
        let [c, h, w] = self.card.image_shape();
        self.check_batch(batch)?;
        let (mut observer, _guard) = self.observer(on_progress, preview_every, &options, &sample_options)?;
        let start = js_sys::Date::now();
        let out = sampling::sample(&self.model, &self.model.sde, [batch, c, h, w], &sample_options, &self.backend.device, &mut observer).await.map_err(|e| self.fail(e))?;
        self.finish(out, start, sample_options.sampler, observer.observer_ms.get()).await
    }

    /// Fills in where `mask` is 0. `image`: C·H·W values in the card's range (one image, repeated
    /// `batch` times); `mask`: C·H·W values, 1 = keep, 0 = generate. Resolves like `generate`;
    /// pixels where mask = 1 equal the image exactly.
    pub async fn inpaint(&self, options: JsValue, on_progress: Option<Function>) -> Result<JsValue, WebError> {
        let (options, image) = take_numbers(&options, "image")?;
        let (options, mask) = take_numbers(&options, "mask")?;
        let options: RunOptions = parse_options(options)?;
        let (sample_options, batch, preview_every) = options.to_sample_options()?;
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
        let (mut observer, _guard) = self.observer(on_progress, preview_every, &options, &sample_options)?;
        let start = js_sys::Date::now();
        let out = sampling::inpaint::inpaint(&self.model, &self.model.sde, &known, &sample_options, &mut observer).await.map_err(|e| self.fail(e))?;
        self.finish(out, start, sample_options.sampler, observer.observer_ms.get()).await
    }
}

/// The option names `generate`/`inpaint` accept (besides `image` and `mask`).
const RUN_OPTIONS: [&str; 15] = ["sampler", "steps", "batch", "seed", "snr", "correctorSteps", "aldEps", "rtol", "atol", "rho", "churn", "denoise", "previewEvery", "previewOf", "runId"];

/// serde-wasm-bindgen reads only the fields a struct declares, so `deny_unknown_fields` never sees
/// a misspelt option: check the object's own keys here.
fn refuse_unknown_keys(options: &JsValue, known: &[&str], what: &str) -> Result<(), WebError> {
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

fn parse_options(options: JsValue) -> Result<RunOptions, WebError> {
    if options.is_undefined() || options.is_null() {
        return Ok(RunOptions::default());
    }
    refuse_unknown_keys(&options, &RUN_OPTIONS, "option")?;
    serde_wasm_bindgen::from_value(options).map_err(|e| WebError::invalid(format!("options: {e}")))
}

impl WebModel {
    /// Refuses to start on a lost device, and a batch that does not fit this device.
    fn check_batch(&self, batch: usize) -> Result<(), WebError> {
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
    fn fail(&self, e: impl Into<WebError>) -> WebError {
        match self.backend.lost() {
            Some(reason) => device_lost(&reason),
            None => e.into(),
        }
    }

    /// The observer of a new run, and the guard that unregisters its cancel flag at the end.
    fn observer(&self, on_progress: Option<Function>, preview_every: usize, run: &RunOptions, options: &SampleOptions) -> Result<(JsObserver, RunGuard), WebError> {
        let flag = Rc::new(Cell::new(false));
        self.runs.borrow_mut().push((run.run_id()?, flag.clone()));
        let guard = RunGuard { runs: self.runs.clone(), flag: flag.clone() };
        let every = if preview_every > 0 { preview_every } else { (options.steps / 25).max(1) };
        let observer = JsObserver { on_progress, preview_every: every, preview_of: run.preview_of, sde: self.model.sde, cancel: flag, lost: self.backend.lost.clone(), last_yield: js_sys::Date::now(), observer_ms: Rc::new(Cell::new(0.0)) };
        Ok((observer, guard))
    }

    async fn finish(&self, out: sampling::Samples, start: f64, sampler: Sampler, observer_ms: f64) -> Result<JsValue, WebError> {
        let (result, first_bad) = tensor_to_js(out.x).await.map_err(|e| self.fail(WebError::run(e)))?;
        if let Some(i) = first_bad {
            return Err(WebError::new(ErrorName::NonFinite, format!("{} produced a non-finite value (at index {i}); {}", sampler.name(), sampler.if_non_finite())));
        }
        Reflect::set(&result, &"evals".into(), &(out.evals as f64).into()).ok();
        Reflect::set(&result, &"seconds".into(), &((js_sys::Date::now() - start) / 1000.0).into()).ok();
        // Of those seconds, the time spent on previews, progress callbacks and yields.
        Reflect::set(&result, &"observerSeconds".into(), &(observer_ms / 1000.0).into()).ok();
        Ok(result)
    }
}
