//! A run's progress to JavaScript: a callback per step, previews read back asynchronously, a turn
//! of the event loop every 16 ms (so that a cancel gets in), and the cancel and device-lost flags
//! checked at every step.

use std::cell::Cell;
use std::rc::Rc;

use burn::prelude::*;
use js_sys::{Float32Array, Function, Promise, Reflect};
use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use super::options::PreviewOf;
use crate::sampling::{Flow, Observer, Step};

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
pub(super) struct JsObserver {
    pub(super) on_progress: Option<Function>,
    pub(super) preview_every: usize,
    pub(super) preview_of: PreviewOf,
    pub(super) sde: crate::sde::Sde,
    pub(super) cancel: Rc<Cell<bool>>,
    /// The device's lost flag: a run on a lost GPU stops at its next step (and reports the loss).
    pub(super) lost: std::sync::Arc<std::sync::OnceLock<String>>,
    pub(super) last_yield: f64,
    /// Milliseconds spent in `observe` (previews, progress calls, yields) and when it last
    /// returned: the rest of the wall time is the sampler's own.
    pub(super) observer_ms: Rc<Cell<f64>>,
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

/// `performance.now()` in a page or worker (milliseconds, sub-millisecond resolution).
pub(super) fn now_ms() -> f64 {
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
pub(super) async fn tensor_to_js(x: Tensor<4>) -> Result<(JsValue, Option<usize>), String> {
    let shape = x.dims();
    let data = x.into_data_async().await.map_err(|e| format!("reading the samples back from the device failed: {e:?}"))?;
    let values = data.try_to_vec::<f32>().map_err(|e| format!("{e:?}"))?;
    let first_bad = values.iter().position(|v| !v.is_finite());
    let out = js_sys::Object::new();
    Reflect::set(&out, &"data".into(), &Float32Array::from(values.as_slice()).into()).ok();
    Reflect::set(&out, &"shape".into(), &serde_wasm_bindgen::to_value(&shape).unwrap_or(JsValue::NULL)).ok();
    Ok((out.into(), first_bad))
}
