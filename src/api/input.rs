//! Reading what a client sends, strictly: a JSON body or a query string becomes the handler's
//! type, or a 422 that lists every problem at once, each at its path, in the API's words.
//!
//! - A field the type does not have is refused (`unknown field`), at any depth; objects the
//!   API documents as free-form are `serde_json::Value`s, which take any field.
//! - A key given twice in one JSON object is refused (`given more than once`): JSON leaves
//!   its meaning open, and "the last one wins" would let a second `"required": false` hide.
//! - Every value of the wrong type or out of range is reported, not only the first: the
//!   value is set aside and the rest read again, until nothing more is wrong.
//! - Messages never show serde's or Rust's wording (`invalid type: floating point`,
//!   `expected u32`, `at line 1 column 40`).

use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeOwned, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use serde_path_to_error::Segment;

use crate::error::FieldError;

/// Problems reported at most in one answer: enough for any real body, and a bound on the work
/// a hostile one can cause.
const MAX_PROBLEMS: usize = 50;

/// What an unknown field or query parameter is told.
pub const UNKNOWN_FIELD: &str = "unknown field";

/// The JSON text as a value, with the paths of the keys given more than once in any of its
/// objects (`steps[0].id`); `Err` with serde's message if it is not JSON. The value is read
/// by serde_json itself, so numbers keep their exact text (see `money`).
pub fn parse(bytes: &[u8]) -> Result<(Value, Vec<String>), serde_json::Error> {
    let mut twice = Vec::new();
    let mut de = serde_json::Deserializer::from_slice(bytes);
    Keys {
        path: String::new(),
        twice: &mut twice,
    }
    .deserialize(&mut de)?;
    de.end()?;
    Ok((serde_json::from_slice(bytes)?, twice))
}

/// Visitor methods that accept a scalar and look no further.
macro_rules! scalars {
    ($($name:ident: $ty:ty),*) => {
        $(fn $name<E>(self, _: $ty) -> Result<(), E> {
            Ok(())
        })*
    };
}

/// Walks a JSON text, noting keys repeated within one object.
struct Keys<'a> {
    path: String,
    twice: &'a mut Vec<String>,
}

impl<'de> DeserializeSeed<'de> for Keys<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Keys<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = child(&self.path, &key);
            if !seen.insert(key) && self.twice.len() < MAX_PROBLEMS {
                self.twice.push(path.clone());
            }
            map.next_value_seed(Keys {
                path,
                twice: &mut *self.twice,
            })?;
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0;
        while seq
            .next_element_seed(Keys {
                path: format!("{}[{index}]", self.path),
                twice: &mut *self.twice,
            })?
            .is_some()
        {
            index += 1;
        }
        Ok(())
    }

    scalars!(visit_bool: bool, visit_i64: i64, visit_u64: u64, visit_f64: f64, visit_str: &str);

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
}

/// `parent.key`, or `key` at the top.
fn child(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}

/// Reads `value` as a `T`, or lists every problem with it: unknown fields, values of the wrong
/// type or out of range, missing required fields.
pub fn from_value<T: DeserializeOwned>(mut value: Value) -> Result<T, Vec<FieldError>> {
    let mut errors: Vec<FieldError> = Vec::new();
    let mut unknown: Vec<String> = Vec::new();
    // Paths set aside so far: a "missing" field among them, or under them, is not news.
    let mut set_aside: Vec<String> = Vec::new();
    for _ in 0..MAX_PROBLEMS {
        let mut ignored = Vec::new();
        let mut note = |path: serde_ignored::Path| ignored.push(ignored_path(&path));
        let attempt = serde_path_to_error::deserialize::<_, T>(serde_ignored::Deserializer::new(
            &value, &mut note,
        ));
        for path in ignored {
            if !unknown.contains(&path) {
                unknown.push(path);
            }
        }
        let err = match attempt {
            Ok(read) if errors.is_empty() && unknown.is_empty() => return Ok(read),
            Ok(_) => break,
            Err(err) => err,
        };
        let segments: Vec<Segment> = err.path().iter().cloned().collect();
        let problem = Problem::of(&err.into_inner().to_string());
        let (field, aside) = match &problem {
            // Named at the object that lacks (or should not have) it.
            Problem::Missing(name) | Problem::Unknown(name) => {
                let mut field = segments.clone();
                // An unknown field's path already ends at it; a missing one's at its object.
                if !matches!(field.last(), Some(Segment::Map { key }) if key == name) {
                    field.push(Segment::Map { key: name.clone() });
                }
                let aside = if matches!(problem, Problem::Unknown(_)) {
                    field.clone()
                } else {
                    segments.clone()
                };
                (field, aside)
            }
            Problem::Invalid(_) => (segments.clone(), segments.clone()),
        };
        let name = render(&field);
        let news = !set_aside.iter().any(|a| within(&name, a));
        match problem {
            Problem::Unknown(_) if !unknown.contains(&name) => unknown.push(name.clone()),
            Problem::Missing(_) if news => errors.push(FieldError::new(&name, "is required")),
            Problem::Invalid(message) if news => errors.push(FieldError::new(&name, message)),
            _ => {}
        }
        set_aside.push(render(&aside));
        if !remove(&mut value, &aside) {
            break;
        }
    }
    errors.extend(
        unknown
            .into_iter()
            .map(|f| FieldError::new(f, UNKNOWN_FIELD)),
    );
    if errors.is_empty() {
        errors.push(FieldError::new("body", "could not be read"));
    }
    Err(errors)
}

/// Whether the field at `path` is `outer` or inside it.
fn within(path: &str, outer: &str) -> bool {
    path == outer
        || path
            .strip_prefix(outer)
            .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
}

/// What serde said was wrong, in the API's terms.
#[derive(Debug, PartialEq)]
enum Problem {
    /// A required field is absent (its name).
    Missing(String),
    /// A field the object does not have (a type that refuses unknown fields said so).
    Unknown(String),
    /// The value at the path is wrong; what it must be.
    Invalid(String),
}

impl Problem {
    fn of(message: &str) -> Self {
        let message = match message.rfind(" at line ") {
            Some(i) => &message[..i],
            None => message,
        };
        if let Some(rest) = message.strip_prefix("missing field `") {
            return Self::Missing(rest.split('`').next().unwrap_or("").to_owned());
        }
        if let Some(rest) = message.strip_prefix("unknown field `") {
            return Self::Unknown(rest.split('`').next().unwrap_or("").to_owned());
        }
        if let Some(rest) = message.strip_prefix("unknown variant `") {
            return Self::Invalid(one_of(rest.split_once(", expected ").map(|(_, e)| e)));
        }
        for prefix in ["invalid type: ", "invalid value: "] {
            if let Some(rest) = message.strip_prefix(prefix) {
                let expected = rest.split_once(", expected ").map_or("", |(_, e)| e);
                return Self::Invalid(format!("must be {}", expectation(expected)));
            }
        }
        // A primitive number type reading a number it cannot hold (serde_json's exact numbers
        // say no more than this); the API's own number types say their range instead.
        if message == "invalid number" {
            return Self::Invalid("must be a number in the accepted range".into());
        }
        if message.starts_with("invalid length ") {
            return Self::Invalid("has the wrong number of items".into());
        }
        // The type's own check, already in the API's words.
        Self::Invalid(message.to_owned())
    }
}

/// "must be one of: a, b" from serde's list of variants (`` `a`, `b` `` or `` `a` or `b` ``).
fn one_of(expected: Option<&str>) -> String {
    let names: Vec<&str> = expected
        .unwrap_or("")
        .split('`')
        .skip(1)
        .step_by(2)
        .collect();
    if names.is_empty() {
        "is not one of the accepted values".into()
    } else {
        format!("must be one of: {}", names.join(", "))
    }
}

/// serde's or a type's "expected ..." in the API's words.
fn expectation(expected: &str) -> String {
    let e = expected.trim();
    let integer = |min: &str, max: &str| format!("a whole number from {min} to {max}");
    match e {
        "u8" => integer("0", "255"),
        "u16" => integer("0", "65535"),
        "u32" => integer("0", "4294967295"),
        "u64" | "usize" => integer("0", "18446744073709551615"),
        "i8" => integer("-128", "127"),
        "i16" => integer("-32768", "32767"),
        "i32" => integer("-2147483648", "2147483647"),
        "i64" | "isize" => integer("-9223372036854775808", "9223372036854775807"),
        "f32" | "f64" | "a float" => "a number".into(),
        "a string" | "a borrowed string" | "a character" | "a char" => "a string".into(),
        "a boolean" => "true or false".into(),
        "a sequence" | "a vector" | "a list" | "a tuple" => "an array".into(),
        "a map" | "a JSON object" => "an object".into(),
        // An enum given something other than the name of one of its values.
        "string or map" => "one of the accepted values (a string)".into(),
        "unit" | "null" => "null".into(),
        _ if e.starts_with("struct ")
            || e.starts_with("internally tagged enum ")
            || e.starts_with("adjacently tagged enum ") =>
        {
            "an object".into()
        }
        _ if e.starts_with("enum ") || e.starts_with("variant identifier") => {
            "one of the accepted values".into()
        }
        _ if e.starts_with("tuple") => "an array".into(),
        // A type's own `expecting` text is already written for people ("an RFC 3339 time").
        _ if !e.is_empty() && !e.contains('`') && !e.contains("::") => e.to_owned(),
        _ => "a value of another kind".into(),
    }
}

/// `steps[0].type` from the path serde_path_to_error kept.
fn render(segments: &[Segment]) -> String {
    let mut out = String::new();
    for segment in segments {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } => out = child(&out, key),
            Segment::Enum { .. } | Segment::Unknown => {}
        }
    }
    if out.is_empty() { "body".into() } else { out }
}

/// `steps[0].requried` from the path serde_ignored gives an ignored field.
fn ignored_path(path: &serde_ignored::Path) -> String {
    use serde_ignored::Path;
    match path {
        Path::Root => String::new(),
        Path::Seq { parent, index } => format!("{}[{index}]", ignored_path(parent)),
        Path::Map { parent, key } => child(&ignored_path(parent), key),
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => ignored_path(parent),
    }
}

/// Sets aside the value at `path` so the rest can be read: a key is removed from its object;
/// an array is cut before the element (later elements are then not looked at, so that every
/// path reported stays true). `false` if nothing could be removed (the path is the whole body).
fn remove(value: &mut Value, path: &[Segment]) -> bool {
    let Some((last, parents)) = path.split_last() else {
        return false;
    };
    let mut here = value;
    for segment in parents {
        here = match (segment, here) {
            (Segment::Map { key }, Value::Object(map)) => match map.get_mut(key) {
                Some(next) => next,
                None => return false,
            },
            (Segment::Seq { index }, Value::Array(items)) => match items.get_mut(*index) {
                Some(next) => next,
                None => return false,
            },
            (Segment::Enum { .. } | Segment::Unknown, same) => same,
            _ => return false,
        };
    }
    match (last, here) {
        (Segment::Map { key }, Value::Object(map)) => map.remove(key).is_some(),
        (Segment::Seq { index }, Value::Array(items)) if *index < items.len() => {
            items.truncate(*index);
            true
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::json;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase")]
    #[allow(dead_code)]
    struct Approver {
        user_id: String,
        required: Option<bool>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase")]
    #[allow(dead_code)]
    struct Request {
        entity_id: String,
        approvers: Vec<Approver>,
        timeout_hours: Option<crate::bounded::Hours>,
        priority: Option<Priority>,
        context: Option<Value>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "snake_case")]
    enum Priority {
        Low,
        High,
    }

    fn problems(body: Value) -> Vec<(String, String)> {
        from_value::<Request>(body)
            .unwrap_err()
            .into_iter()
            .map(|e| (e.field, e.message))
            .collect()
    }

    #[test]
    fn a_misspelt_field_at_any_depth_is_refused_and_free_form_objects_take_anything() {
        let got = problems(json!({
            "entityId": "e", "approvers": [{ "userId": "u", "requried": true }],
            "context": { "anything": { "goes": 1 } }, "extra": 1
        }));
        assert_eq!(
            got,
            [
                ("approvers[0].requried".into(), UNKNOWN_FIELD.into()),
                ("extra".into(), UNKNOWN_FIELD.into())
            ]
        );
    }

    #[test]
    fn every_mistyped_field_is_reported_at_once_in_the_apis_words() {
        let got = problems(json!({
            "entityId": 7, "approvers": [{ "userId": "u", "required": "yes" }],
            "timeoutHours": 1.5, "priority": "urgent"
        }));
        // In the order of the keys (a JSON object's keys are kept sorted).
        assert_eq!(
            got,
            [
                (
                    "approvers[0].required".into(),
                    "must be true or false".into()
                ),
                ("entityId".into(), "must be a string".into()),
                ("priority".into(), "must be one of: low, high".into()),
                (
                    "timeoutHours".into(),
                    "must be a whole number from 1 to 87600".into()
                ),
            ]
        );
        for (_, message) in &got {
            for rust in ["invalid type", "expected", "u32", "floating point", "line"] {
                assert!(!message.contains(rust), "{message}");
            }
        }
    }

    #[test]
    fn missing_fields_are_required_and_an_overflow_is_out_of_range() {
        let got = problems(json!({ "approvers": [{}], "timeoutHours": 99_999_999_999u64 }));
        assert_eq!(
            got,
            [
                ("approvers[0].userId".into(), "is required".into()),
                (
                    "timeoutHours".into(),
                    "must be a whole number from 1 to 87600".into()
                ),
                ("entityId".into(), "is required".into()),
            ]
        );
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Strict {
        a: Option<crate::bounded::Port>,
        inner: Option<Box<Strict>>,
    }

    #[test]
    fn a_type_that_refuses_unknown_fields_has_each_one_named() {
        let got: Vec<(String, String)> =
            from_value::<Strict>(json!({ "x": 1, "inner": { "y": 2, "a": 0 }, "z": 3 }))
                .unwrap_err()
                .into_iter()
                .map(|e| (e.field, e.message))
                .collect();
        assert_eq!(
            got,
            [
                (
                    "inner.a".into(),
                    "must be a whole number from 1 to 65535".into()
                ),
                ("inner.y".into(), UNKNOWN_FIELD.into()),
                ("x".into(), UNKNOWN_FIELD.into()),
                ("z".into(), UNKNOWN_FIELD.into()),
            ]
        );
    }

    #[test]
    fn a_valid_body_reads() {
        let read = from_value::<Request>(json!({
            "entityId": "e", "approvers": [{ "userId": "u" }], "priority": "high"
        }))
        .unwrap();
        assert_eq!(read.approvers.len(), 1);
    }

    #[test]
    fn keys_given_twice_are_found_at_any_depth_and_the_value_is_read_whole() {
        let (_, found) =
            parse(br#"{"a": 1, "b": [{"x": 1, "x": 2}], "a": 3, "c": {"d": {"e": 1, "e": 1}}}"#)
                .unwrap();
        assert_eq!(found, ["b[0].x", "a", "c.d.e"]);
        let text = br#"{"a": [1, -2, 2.50, 1e400, {"b": "a\u00e9"}], "t": true, "n": null}"#;
        let (value, found) = parse(text).unwrap();
        assert!(found.is_empty());
        assert_eq!(value, serde_json::from_slice::<Value>(text).unwrap());
        assert!(parse(b"{\"a\": 1} x").is_err());
    }
}
