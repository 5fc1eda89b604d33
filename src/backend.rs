//! Choosing and starting a compute backend: Burn's pure-Rust CPU backend (flex) everywhere, wgpu
//! where the build has it. A wgpu runtime can be registered once per process (or page), so the
//! first initialisation is kept and its device cloned afterwards.

use burn::prelude::Device;

/// A started device and a one-line description of what it runs on.
#[derive(Clone, Debug)]
pub struct Backend {
    pub device: Device,
    /// "cpu" or "webgpu"/"wgpu".
    pub kind: &'static str,
    pub adapter: String,
}

pub fn cpu() -> Backend {
    Backend { device: Device::flex(), kind: "cpu", adapter: "Burn flex (CPU)".into() }
}

#[cfg(feature = "wgpu")]
fn describe(setup: &burn::tensor::wgpu::WgpuSetup) -> String {
    let info = setup.adapter.get_info();
    // Browsers hide the adapter's name; the vendor and architecture are what they tell.
    let name = [info.name.as_str(), info.driver.as_str()].into_iter().find(|s| !s.is_empty()).map(str::to_string).unwrap_or_else(|| format!("vendor {:#x}", info.vendor));
    format!("{name} ({:?}, {:?})", info.backend, info.device_type)
}

/// Starts native wgpu once per process; later calls return the same device, or the same error.
#[cfg(all(feature = "wgpu", not(target_arch = "wasm32")))]
pub fn wgpu_native() -> Result<Backend, String> {
    static STARTED: std::sync::OnceLock<Result<Backend, String>> = std::sync::OnceLock::new();
    STARTED
        .get_or_init(|| {
            // wgpu panics rather than erring on some broken drivers; keep that out of callers.
            let started = std::panic::catch_unwind(|| Device::wgpu_options().init_with_setup());
            match started {
                Ok(Ok((device, setup))) => Ok(Backend { device, kind: "wgpu", adapter: describe(&setup) }),
                Ok(Err(e)) => Err(format!("no wgpu adapter: {e}")),
                Err(_) => Err("no wgpu adapter: the wgpu runtime panicked while starting".into()),
            }
        })
        .clone()
}

/// Starts WebGPU in the browser once per page.
#[cfg(all(feature = "wgpu", target_arch = "wasm32"))]
pub async fn webgpu() -> Result<Backend, String> {
    thread_local! {
        static STARTED: std::cell::RefCell<Option<Result<Backend, String>>> = const { std::cell::RefCell::new(None) };
    }
    if let Some(done) = STARTED.with(|s| s.borrow().clone()) {
        return done;
    }
    let started = match Device::wgpu_options().init_with_setup_async().await {
        Ok((device, setup)) => Ok(Backend { device, kind: "webgpu", adapter: describe(&setup) }),
        Err(e) => Err(format!("WebGPU could not start: {e}")),
    };
    // Another caller may have finished first while this one awaited: keep the first result.
    STARTED.with(|s| s.borrow_mut().get_or_insert(started).clone())
}
