//! Errors as JavaScript sees them: a JS `Error` whose `name` says what kind of failure it is, set
//! here and nowhere else, so that the page, the worker and the widget branch on `error.name`
//! rather than on the wording of a message. The message names the field, file or value at fault.

use wasm_bindgen::prelude::*;

pub use crate::error::ErrorName;
use crate::error::{ConfigError, SampleError, WeightsError};

/// An error on its way to JavaScript: a kind and a message.
#[derive(Debug, Clone, PartialEq)]
pub struct WebError {
    pub name: ErrorName,
    pub message: String,
}

impl WebError {
    pub fn new(name: ErrorName, message: impl std::fmt::Display) -> Self {
        WebError { name, message: message.to_string() }
    }

    /// Something the caller sent is wrong.
    pub fn invalid(message: impl std::fmt::Display) -> Self {
        Self::new(ErrorName::InvalidOption, message)
    }

    /// A model card or weights file is wrong.
    pub fn model_file(message: impl std::fmt::Display) -> Self {
        Self::new(ErrorName::ModelFile, message)
    }

    /// Anything else a run can meet.
    pub fn run(message: impl std::fmt::Display) -> Self {
        Self::new(ErrorName::Run, message)
    }
}

impl From<WebError> for JsValue {
    fn from(e: WebError) -> JsValue {
        let error = js_sys::Error::new(&e.message);
        error.set_name(e.name.as_str());
        error.into()
    }
}

impl From<SampleError> for WebError {
    fn from(e: SampleError) -> Self {
        WebError::new(e.name(), e)
    }
}

/// In the browser API a `ConfigError` comes from what the caller sent (an option's value, a
/// preset's name); a model card's errors are turned into `ModelFile` where the card is read.
impl From<ConfigError> for WebError {
    fn from(e: ConfigError) -> Self {
        WebError::invalid(e)
    }
}

impl From<WeightsError> for WebError {
    fn from(e: WeightsError) -> Self {
        WebError::new(e.name(), e)
    }
}

/// Every error name, for JavaScript (tests check that the names the page branches on exist).
#[wasm_bindgen(js_name = errorNames)]
pub fn error_names() -> Vec<String> {
    ErrorName::ALL.iter().map(|n| n.as_str().to_string()).collect()
}
