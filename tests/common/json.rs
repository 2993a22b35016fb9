//! Comparing replies with what Java sends.
//!
//! Where the bytes are known exactly (the reference exchanges of docs/compatibility.md, Java's
//! constant replies), tests compare exact bytes ([`assert_body`]): key order (alphabetical, as
//! Jackson's `SORT_PROPERTIES_ALPHABETICALLY` writes it) and `null` fields are part of the wire
//! format. Elsewhere they compare structure ([`assert_json`]) and check the key order separately
//! ([`assert_java_key_order`]).

use std::cell::RefCell;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::Reply;

/// `ResponseStatusUtil.SUCCESS_STATUS`.
pub(crate) const SUCCESS: &str = r#"{"errorCode":"success","message":"","status":"success"}"#;

/// A `responseStatus` object with `status` `fail`.
pub(crate) fn fail_status(error_code: &str, message: &str) -> String {
    format!(r#"{{"errorCode":"{error_code}","message":"{message}","status":"fail"}}"#)
}

/// Asserts a 200 reply whose body is exactly `expected`.
pub(crate) fn assert_body(reply: &Reply, expected: &str) {
    assert_eq!(reply.status, 200, "status of a reply: {}", reply.text());
    assert_eq!(reply.text(), expected, "reply body");
}

/// Asserts that `actual` equals the JSON text `expected`, ignoring key order and whitespace.
pub(crate) fn assert_json(actual: &Value, expected: &str) {
    let expected: Value = serde_json::from_str(expected).expect("the expected text is JSON");
    assert_eq!(
        actual, &expected,
        "\n actual:   {actual}\n expected: {expected}"
    );
}

/// The `responseStatus.errorCode` of a reply body.
pub(crate) fn error_code(body: &Value) -> &str {
    body["responseStatus"]["errorCode"]
        .as_str()
        .unwrap_or_else(|| panic!("no responseStatus.errorCode in {body}"))
}

/// Properties whose values are Java `Map`s: their entries keep their own order.
const MAP_PROPERTIES: &[&str] = &[
    "metadata",
    "discoveryData",
    "properties",
    "sources",
    "leases",
    "delta",
];

/// Asserts that every JSON object in `body` has its properties in strictly ascending order
/// (Java's bean order), except the entries of map-valued properties.
pub(crate) fn assert_java_key_order(body: &[u8]) {
    let errors = RefCell::new(Vec::new());
    let mut de = serde_json::Deserializer::from_slice(body);
    KeyOrder {
        path: "$".into(),
        is_map: false,
        errors: &errors,
    }
    .deserialize(&mut de)
    .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(body)));
    let errors = errors.into_inner();
    assert!(
        errors.is_empty(),
        "properties out of alphabetical order: {errors:?} in {}",
        String::from_utf8_lossy(body)
    );
}

/// Walks a JSON document in wire order, noting objects whose keys are out of order.
struct KeyOrder<'a> {
    path: String,
    is_map: bool,
    errors: &'a RefCell<Vec<String>>,
}

impl<'de> DeserializeSeed<'de> for KeyOrder<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for KeyOrder<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let path = format!("{}[]", self.path);
        while seq
            .next_element_seed(KeyOrder {
                path: path.clone(),
                is_map: false,
                errors: self.errors,
            })?
            .is_some()
        {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut previous: Option<String> = None;
        while let Some(key) = map.next_key::<String>()? {
            if let Some(previous) = previous.as_ref().filter(|p| **p >= key && !self.is_map) {
                self.errors
                    .borrow_mut()
                    .push(format!("{}: {previous:?} before {key:?}", self.path));
            }
            map.next_value_seed(KeyOrder {
                path: format!("{}.{key}", self.path),
                is_map: MAP_PROPERTIES.contains(&key.as_str()),
                errors: self.errors,
            })?;
            previous = Some(key);
        }
        Ok(())
    }
}
