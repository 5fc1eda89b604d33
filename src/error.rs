//! Error types. Each message names the field, tensor or value that was wrong, so that the CLI can
//! print it as one line and the web layer can hand it to JavaScript unchanged.

use thiserror::Error;

/// A configuration, option or model-card field that is missing, malformed or out of range.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum ConfigError {
    #[error("`{field}` {reason}")]
    Invalid { field: String, reason: String },
    #[error("model card is not valid JSON for a scorefield card: {0}")]
    Json(String),
}

impl ConfigError {
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError::Invalid { field: field.into(), reason: reason.into() }
    }
}

/// Why a set of weights could not be loaded into the architecture a model card describes.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum WeightsError {
    #[error("weights file is truncated or corrupt: {0}")]
    Corrupt(String),
    #[error("weights file lacks tensor `{name}` that the card's architecture needs")]
    MissingTensor { name: String },
    #[error("weights file has tensor `{name}` that the card's architecture does not have")]
    UnexpectedTensor { name: String },
    #[error("tensor `{name}` has shape {found:?} in the weights file, but the card's architecture expects {expected:?}")]
    ShapeMismatch { name: String, expected: Vec<usize>, found: Vec<usize> },
    #[error("tensor `{name}` has dtype {found}; supported are F32, F16, BF16 and I8 (with its `NAME_scale`)")]
    UnsupportedDtype { name: String, found: String },
    #[error("tensor `{name}` holds a non-finite value ({value}) at flat index {index}")]
    NonFinite { name: String, index: usize, value: String },
    #[error("model card: {0}")]
    Card(#[from] ConfigError),
    #[error("could not apply the weights to the network: {0}")]
    Apply(String),
    #[error("could not serialise the weights: {0}")]
    Save(String),
    #[error("{path}: {reason}")]
    Io { path: String, reason: String },
}

/// The kinds of failure, by the `name` JavaScript sees (`src/web/error.rs` sets it on the JS
/// `Error`): the page, the worker and the widget branch on these, never on a message's wording.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorName {
    /// An option, attribute or input the caller sent is missing, malformed or out of range.
    InvalidOption,
    /// A model card or weights file that cannot be used (corrupt, wrong shapes, non-finite).
    ModelFile,
    /// A file could not be fetched.
    Fetch,
    /// WebGPU was asked for and could not start.
    NoWebGpu,
    /// The caller cancelled the run.
    Cancelled,
    /// The GPU device was lost: load again (a new worker) to get a new one.
    DeviceLost,
    /// A run produced NaN or ±∞.
    NonFinite,
    /// Training's loss stopped being finite.
    Diverged,
    /// Anything else a run can meet: a read-back that failed, an ODE solver that gave up.
    Run,
}

impl ErrorName {
    pub const ALL: [ErrorName; 9] = [
        ErrorName::InvalidOption,
        ErrorName::ModelFile,
        ErrorName::Fetch,
        ErrorName::NoWebGpu,
        ErrorName::Cancelled,
        ErrorName::DeviceLost,
        ErrorName::NonFinite,
        ErrorName::Diverged,
        ErrorName::Run,
    ];

    /// The `name` of the JS error.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorName::InvalidOption => "InvalidOptionError",
            ErrorName::ModelFile => "ModelFileError",
            ErrorName::Fetch => "FetchError",
            ErrorName::NoWebGpu => "NoWebGPUError",
            ErrorName::Cancelled => "CancelledError",
            ErrorName::DeviceLost => "DeviceLostError",
            ErrorName::NonFinite => "NonFiniteError",
            ErrorName::Diverged => "DivergedError",
            ErrorName::Run => "RunError",
        }
    }
}

/// Why a sampler, inpainting or likelihood run stopped without a result.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum SampleError {
    #[error("`{field}` {reason}")]
    InvalidOption { field: &'static str, reason: String },
    #[error("cancelled at step {step}")]
    Cancelled { step: usize },
    /// `sampler` names the run (a sampler, a field dynamics, or `likelihood`); `advice` is what to
    /// change for that run (the samplers' `Sampler::if_non_finite`).
    #[error("{sampler} produced non-finite values by step {step} (t = {t:.4}); {advice}")]
    NonFinite { sampler: &'static str, step: usize, t: f64, advice: &'static str },
    #[error("reading a tensor back from the device failed: {0}")]
    Readback(String),
    #[error("ODE solver did not reach the end time: {0}")]
    Solver(String),
    #[error("training diverged at step {step}: the loss is not finite; reset the network")]
    Diverged { step: usize },
}

impl WeightsError {
    /// Every weights or card problem is the file's.
    pub fn name(&self) -> ErrorName {
        ErrorName::ModelFile
    }
}

impl SampleError {
    /// The kind of failure, for JavaScript.
    pub fn name(&self) -> ErrorName {
        match self {
            SampleError::InvalidOption { .. } => ErrorName::InvalidOption,
            SampleError::Cancelled { .. } => ErrorName::Cancelled,
            SampleError::NonFinite { .. } => ErrorName::NonFinite,
            SampleError::Diverged { .. } => ErrorName::Diverged,
            SampleError::Readback(_) | SampleError::Solver(_) => ErrorName::Run,
        }
    }

    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        SampleError::InvalidOption { field, reason: reason.into() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each kind of failure reaches JavaScript under its own name, and the names are distinct
    /// (the browser tests check the ones a page can provoke: tests/browser/hardening.test.mjs).
    #[test]
    fn every_error_has_its_name() {
        let cases = [
            (SampleError::invalid("steps", "0").name(), "InvalidOptionError"),
            (SampleError::Cancelled { step: 3 }.name(), "CancelledError"),
            (SampleError::NonFinite { sampler: "em", step: 1, t: 0.5, advice: "" }.name(), "NonFiniteError"),
            (SampleError::Diverged { step: 7 }.name(), "DivergedError"),
            (SampleError::Readback("lost".into()).name(), "RunError"),
            (SampleError::Solver("stiff".into()).name(), "RunError"),
            (WeightsError::Corrupt("x".into()).name(), "ModelFileError"),
        ];
        for (name, expected) in cases {
            assert_eq!(name.as_str(), expected);
        }
        let mut all: Vec<&str> = ErrorName::ALL.iter().map(|n| n.as_str()).collect();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), ErrorName::ALL.len());
        assert!(all.iter().all(|n| n.ends_with("Error")));
    }
}
