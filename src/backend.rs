//! Choosing and starting a compute backend: Burn's pure-Rust CPU backend (flex) everywhere, wgpu
//! where the build has it. A wgpu runtime can be registered once per process (or page), so the
//! first initialisation is kept and its device cloned afterwards.
//!
//! A GPU device can be lost (driver reset, a backgrounded tab's device reclaimed, or
//! `GPUDevice.destroy()`): [`Backend::lost`] says so from then on. Burn cannot register a second
//! runtime for the page, so in the browser recovering means a fresh wasm instance (the page's
//! worker is restarted, see www/client.js).

use std::sync::{Arc, OnceLock};

use burn::prelude::Device;

/// The largest single tensor the CPU backend in wasm is allowed to allocate: wasm32 has 4 GiB of
/// address space at most, and a network holds many tensors of that size at once.
pub const CPU_WASM_MAX_TENSOR_BYTES: u64 = 256 << 20;

/// A started device and a one-line description of what it runs on.
#[derive(Clone, Debug)]
pub struct Backend {
    pub device: Device,
    /// "cpu" or "webgpu"/"wgpu".
    pub kind: &'static str,
    pub adapter: String,
    /// The largest buffer one tensor may occupy on this device, in bytes: on a GPU
    /// min(maxBufferSize, maxStorageBufferBindingSize) of the device; `None` where only the
    /// machine's memory limits it (native CPU).
    pub max_tensor_bytes: Option<u64>,
    /// Set (with wgpu's reason) once the GPU device is lost.
    pub lost: Arc<OnceLock<String>>,
    #[cfg(feature = "wgpu")]
    gpu: Option<burn::tensor::wgpu::wgpu::Device>,
}

impl Backend {
    /// Why the device was lost, if it was.
    pub fn lost(&self) -> Option<String> {
        self.lost.get().cloned()
    }

    /// Destroys the GPU device, as a driver reset would (`GPUDevice.destroy()` in the browser):
    /// for tests of what happens next. No-op on the CPU.
    pub fn destroy_gpu_device(&self) {
        #[cfg(feature = "wgpu")]
        if let Some(device) = &self.gpu {
            device.destroy();
        }
    }
}

pub fn cpu() -> Backend {
    let max_tensor_bytes = cfg!(target_arch = "wasm32").then_some(CPU_WASM_MAX_TENSOR_BYTES);
    Backend {
        device: Device::flex(),
        kind: "cpu",
        adapter: "Burn flex (CPU)".into(),
        max_tensor_bytes,
        lost: Arc::default(),
        #[cfg(feature = "wgpu")]
        gpu: None,
    }
}

/// Watches a freshly started wgpu device: its limits, and the reason once it is lost. (CubeCL
/// installs its own lost callback too; in the browser each callback is one more `then` on
/// `GPUDevice.lost`, natively the last one set wins, so native runs rely on CubeCL's poisoning.)
#[cfg(feature = "wgpu")]
fn gpu_backend(device: Device, setup: &burn::tensor::wgpu::WgpuSetup, kind: &'static str) -> Backend {
    let limits = setup.device.limits();
    let lost: Arc<OnceLock<String>> = Arc::default();
    #[cfg(target_arch = "wasm32")]
    {
        let lost = lost.clone();
        setup.device.set_device_lost_callback(move |reason, message| {
            let _ = lost.set(format!("{reason:?}: {message}"));
        });
    }
    Backend {
        device,
        kind,
        adapter: describe(setup),
        max_tensor_bytes: Some(limits.max_buffer_size.min(limits.max_storage_buffer_binding_size)),
        lost,
        gpu: Some(setup.device.clone()),
    }
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
                Ok(Ok((device, setup))) => Ok(gpu_backend(device, &setup, "wgpu")),
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
        Ok((device, setup)) => Ok(gpu_backend(device, &setup, "webgpu")),
        Err(e) => Err(format!("WebGPU could not start: {e}")),
    };
    // Another caller may have finished first while this one awaited: keep the first result.
    STARTED.with(|s| s.borrow_mut().get_or_insert(started).clone())
}
