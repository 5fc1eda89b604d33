//! The keys a struct accepts, read from its own `Deserialize` (after its serde renames), so that
//! a list of accepted option names is the struct itself and never a copy kept by hand.

use serde::de::{self, DeserializeOwned, Deserializer, Visitor};

/// The field names `T`'s derived `Deserialize` asks for, e.g. `["sampler", "correctorSteps"]`
/// for a struct with `#[serde(rename_all = "camelCase")]`; empty for a type that is not a struct.
pub fn field_names<T: DeserializeOwned>() -> &'static [&'static str] {
    let mut fields: &'static [&'static str] = &[];
    // The probe records what the derive asks for and stops it there.
    let _ = T::deserialize(Probe(&mut fields));
    fields
}

struct Probe<'a>(&'a mut &'static [&'static str]);

#[derive(Debug)]
struct Stop;

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("field names read")
    }
}

impl std::error::Error for Stop {}

impl de::Error for Stop {
    fn custom<M: std::fmt::Display>(_: M) -> Self {
        Stop
    }
}

impl<'de> Deserializer<'de> for Probe<'_> {
    type Error = Stop;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
        Err(Stop)
    }

    fn deserialize_struct<V: Visitor<'de>>(self, _: &'static str, fields: &'static [&'static str], _: V) -> Result<V::Value, Stop> {
        *self.0 = fields;
        Err(Stop)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option
        unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(dead_code)]
    #[derive(serde::Deserialize)]
    #[serde(default, rename_all = "camelCase")]
    struct Options {
        sampler: String,
        corrector_steps: Option<f64>,
        #[serde(rename = "runId")]
        id: u32,
    }

    impl Default for Options {
        fn default() -> Self {
            Options { sampler: String::new(), corrector_steps: None, id: 0 }
        }
    }

    /// The names are the renamed ones, in declaration order; a non-struct has none.
    #[test]
    fn reads_the_renamed_field_names() {
        assert_eq!(field_names::<Options>(), ["sampler", "correctorSteps", "runId"]);
        assert!(field_names::<f64>().is_empty());
    }
}
