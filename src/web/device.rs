//! What the browser gives the model: files by `fetch()`, and the WebGPU device (whether `auto`
//! takes it, and the error once it is lost).

use js_sys::{Function, Promise, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use super::options::BackendChoice;
use super::{ErrorName, WebError};
use crate::backend::{self, Backend};

pub(super) async fn fetch_bytes(url: &str, what: &str) -> Result<Vec<u8>, WebError> {
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
pub(super) async fn start_webgpu() -> Result<Backend, WebError> {
    webgpu_adapter().await.map_err(|e| WebError::new(ErrorName::NoWebGpu, e))?;
    backend::webgpu().await.map_err(|e| WebError::new(ErrorName::NoWebGpu, e))
}

/// The backend a choice comes to in this wasm instance, and why `auto` took the CPU if it did: the
/// one definition of `auto` (WebGPU when the browser has a hardware adapter and its device starts,
/// else the CPU). The same answer every time (the adapter is asked once, the device started once),
/// so the worker can key its models by it.
pub(super) async fn resolve(choice: BackendChoice) -> Result<(Backend, Option<String>), WebError> {
    Ok(match choice {
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
    })
}

/// The browser's WebGPU adapter, asked of `navigator.gpu` once per wasm instance, before a device
/// is made (an instance can start only one): `Ok(whether it is a software fallback adapter)`, on
/// which the CPU build is faster (docs/PERFORMANCE.md: SwiftShader's WebGPU is about 30 × slower),
/// or why there is none.
pub(super) async fn webgpu_adapter() -> Result<bool, String> {
    thread_local! {
        static ASKED: std::cell::RefCell<Option<Result<bool, String>>> = const { std::cell::RefCell::new(None) };
    }
    if let Some(answer) = ASKED.with(|a| a.borrow().clone()) {
        return answer;
    }
    let answer = ask_for_adapter().await;
    ASKED.with(|a| a.borrow_mut().get_or_insert(answer).clone())
}

async fn ask_for_adapter() -> Result<bool, String> {
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

pub(super) fn device_lost(reason: &str) -> WebError {
    WebError::new(ErrorName::DeviceLost, format!("the GPU device was lost ({reason}); load the model again to start a new device"))
}
