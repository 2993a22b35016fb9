//! Management request bodies, read as Java's Jackson mapper reads them.
//!
//! The management requests are many and each is read once, so instead of one decoder per
//! request type (as the hot registry and discovery requests have, in `api::decode`) a request
//! is a [`Props`]: its properties found by their Java names. A name matches whatever its case,
//! and with its underscores dropped (`region_id`), as the rest of the API accepts; unknown
//! properties are ignored and scalars are coerced as Jackson coerces them. A property of the
//! wrong shape is a [`DecodeError`], a 400.

use std::collections::BTreeMap;

use simd_json::prelude::*;
use simd_json::tape::Value;
use simd_json::ValueType;

use crate::decode::{first_value, DecodeError};

/// Parses `body` and reads its object with `read`; `Ok(None)` for a JSON `null`, which Java
/// answers with "request is null".
pub(super) fn parse<T>(
    body: &mut [u8],
    read: impl FnOnce(Props) -> Result<T, DecodeError>,
) -> Result<Option<T>, DecodeError> {
    let tape = simd_json::to_tape(first_value(body))
        .map_err(|e| DecodeError(format!("Malformed JSON: {e}")))?;
    Props::of("request", tape.as_value())?.map(read).transpose()
}

/// A JSON object of a request, its properties looked up by Java name.
#[derive(Clone, Copy)]
pub(super) struct Props<'t, 'i>(Value<'t, 'i>);

/// Whether the property `key` is Java's property `name`: case aside, and underscores dropped.
fn same_name(key: &str, name: &str) -> bool {
    let key = key.bytes().filter(|&b| b != b'_');
    key.map(|b| b.to_ascii_lowercase())
        .eq(name.bytes().map(|b| b.to_ascii_lowercase()))
}

fn wrong(name: &str, wanted: &str) -> DecodeError {
    DecodeError(format!("Property {name}: expected {wanted}"))
}

/// A string value; a number or boolean is taken as its text.
fn text(name: &str, v: Value) -> Result<Option<String>, DecodeError> {
    if v.is_null() {
        return Ok(None);
    }
    if let Some(s) = v.as_str() {
        return Ok(Some(s.to_owned()));
    }
    let shown = v
        .as_bool()
        .map(|b| b.to_string())
        .or_else(|| v.as_i64().map(|n| n.to_string()))
        .or_else(|| v.as_u64().map(|n| n.to_string()))
        .or_else(|| v.as_f64().map(|f| f.to_string()));
    shown.map(Some).ok_or_else(|| wrong(name, "a string"))
}

/// A `Long` value: an integer, a fraction truncated, or a numeric string.
fn long(name: &str, v: Value) -> Result<Option<i64>, DecodeError> {
    if v.is_null() {
        return Ok(None);
    }
    if let Some(n) = v.as_i64() {
        return Ok(Some(n));
    }
    let out_of_range = || DecodeError(format!("Property {name}: number out of range"));
    if v.as_u64().is_some() {
        return Err(out_of_range());
    }
    if let Some(f) = v.as_f64() {
        let f = f.trunc();
        return match f >= i64::MIN as f64 && f <= i64::MAX as f64 {
            true => Ok(Some(f as i64)),
            false => Err(out_of_range()),
        };
    }
    match v.as_str().map(str::trim) {
        Some("") => Ok(None),
        Some(s) => s
            .parse()
            .map(Some)
            .map_err(|_| DecodeError(format!("Property {name}: `{s}` is not a number"))),
        None => Err(wrong(name, "a number")),
    }
}

/// A `Boolean` value; `"true"`/`"false"` strings are taken as Jackson takes them.
fn boolean(name: &str, v: Value) -> Result<Option<bool>, DecodeError> {
    if v.is_null() {
        return Ok(None);
    }
    match (v.as_bool(), v.as_str()) {
        (Some(b), _) => Ok(Some(b)),
        (_, Some("true")) => Ok(Some(true)),
        (_, Some("false")) => Ok(Some(false)),
        _ => Err(wrong(name, "a boolean")),
    }
}

impl<'t, 'i> Props<'t, 'i> {
    /// `v` as an object: `None` for `null`, an error for anything else.
    fn of(name: &str, v: Value<'t, 'i>) -> Result<Option<Props<'t, 'i>>, DecodeError> {
        match v.value_type() {
            ValueType::Null => Ok(None),
            ValueType::Object => Ok(Some(Props(v))),
            _ => Err(wrong(name, "an object")),
        }
    }

    /// The value of property `name`; the last one when a body repeats it, as Jackson keeps.
    fn get(&self, name: &str) -> Option<Value<'t, 'i>> {
        let object = self.0.as_object()?;
        let found = object.iter().filter(|(key, _)| same_name(key, name)).last();
        found.map(|(_, v)| v)
    }

    /// Reads property `name` with `read`; a missing property is `None`.
    fn read<T>(
        &self,
        name: &str,
        read: impl FnOnce(&str, Value<'t, 'i>) -> Result<Option<T>, DecodeError>,
    ) -> Result<Option<T>, DecodeError> {
        self.get(name).map_or(Ok(None), |v| read(name, v))
    }

    /// A `String` property.
    pub(super) fn text(&self, name: &str) -> Result<Option<String>, DecodeError> {
        self.read(name, text)
    }

    /// A `String` property with Java's default `absent` when the request leaves it out (an
    /// explicit `null` stays null).
    pub(super) fn text_or(&self, name: &str, absent: &str) -> Result<Option<String>, DecodeError> {
        match self.get(name) {
            None => Ok(Some(absent.to_owned())),
            Some(v) => text(name, v),
        }
    }

    /// The `String` properties `names`, in their order.
    pub(super) fn texts_of<const N: usize>(
        &self,
        names: [&str; N],
    ) -> Result<[Option<String>; N], DecodeError> {
        let mut values = [const { None }; N];
        for (value, name) in values.iter_mut().zip(names) {
            *value = self.text(name)?;
        }
        Ok(values)
    }

    /// A `Long` property.
    pub(super) fn long(&self, name: &str) -> Result<Option<i64>, DecodeError> {
        self.read(name, long)
    }

    /// A `Boolean` property.
    pub(super) fn boolean(&self, name: &str) -> Result<Option<bool>, DecodeError> {
        self.read(name, boolean)
    }

    /// A `boolean` property: missing or null is `false`.
    pub(super) fn flag(&self, name: &str) -> Result<bool, DecodeError> {
        Ok(self.boolean(name)?.unwrap_or(false))
    }

    /// An `int` property: missing or null is 0; beyond Java's `int` is an error.
    pub(super) fn int(&self, name: &str) -> Result<i32, DecodeError> {
        let n = self.long(name)?.unwrap_or(0);
        i32::try_from(n).map_err(|_| DecodeError(format!("Property {name}: number out of range")))
    }

    /// An object property.
    pub(super) fn object(&self, name: &str) -> Result<Option<Props<'t, 'i>>, DecodeError> {
        self.read(name, Props::of)
    }

    /// A list property, each item read by `item`: a missing or null list is empty (Java's
    /// services skip a null list), and null items are skipped.
    fn list<T>(
        &self,
        name: &str,
        item: impl Fn(&str, Value<'t, 'i>) -> Result<Option<T>, DecodeError>,
    ) -> Result<Vec<T>, DecodeError> {
        let Some(v) = self.get(name).filter(|v| !v.is_null()) else {
            return Ok(Vec::new());
        };
        let array = v.as_array().ok_or_else(|| wrong(name, "an array"))?;
        let items = array.iter().map(|x| item(name, x));
        items.filter_map(Result::transpose).collect()
    }

    /// A list of strings.
    pub(super) fn texts(&self, name: &str) -> Result<Vec<String>, DecodeError> {
        self.list(name, text)
    }

    /// A list of `Long`s (ids).
    pub(super) fn longs(&self, name: &str) -> Result<Vec<i64>, DecodeError> {
        self.list(name, long)
    }

    /// A list of objects.
    pub(super) fn objects(&self, name: &str) -> Result<Vec<Props<'t, 'i>>, DecodeError> {
        self.list(name, Props::of)
    }

    /// Every object of the list `name`, each read by `read`.
    pub(super) fn each<T>(
        &self,
        name: &str,
        read: impl Fn(&Props<'t, 'i>) -> Result<T, DecodeError>,
    ) -> Result<Vec<T>, DecodeError> {
        self.objects(name)?.iter().map(read).collect()
    }

    /// A `Map<String, String>` property, its null values dropped.
    pub(super) fn map(&self, name: &str) -> Result<Option<BTreeMap<String, String>>, DecodeError> {
        let Some(props) = self.object(name)? else {
            return Ok(None);
        };
        let mut map = BTreeMap::new();
        for (key, v) in props.0.as_object().into_iter().flat_map(|o| o.iter()) {
            if let Some(value) = text(key, v)? {
                map.insert(key.to_owned(), value);
            }
        }
        Ok(Some(map))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read<T>(
        json: &str,
        f: impl FnOnce(Props) -> Result<T, DecodeError>,
    ) -> Result<T, DecodeError> {
        let mut body = json.as_bytes().to_vec();
        parse(&mut body, f).map(|found| found.expect("an object"))
    }

    #[test]
    fn names_match_whatever_the_case_and_underscores() {
        let region = |json| read(json, |p| p.text("regionId"));
        assert_eq!(region(r#"{"regionId":"SHA"}"#), Ok(Some("SHA".into())));
        assert_eq!(region(r#"{"REGIONID":"SHA"}"#), Ok(Some("SHA".into())));
        assert_eq!(region(r#"{"region_id":"SHA"}"#), Ok(Some("SHA".into())));
        assert_eq!(region(r#"{"region":"SHA"}"#), Ok(None));
        assert_eq!(
            region(r#"{"regionId":"a","regionid":"b"}"#),
            Ok(Some("b".into()))
        );
    }

    #[test]
    fn scalars_are_coerced_as_jackson_does() {
        let json = r#"{"s":7,"b":true,"n":"42","f":3.9,"t":"true","list":[1,null,"2"],"m":{"k":"v","n":null}}"#;
        read(json, |p| {
            assert_eq!(p.text("s")?, Some("7".into()));
            assert_eq!(p.text("b")?, Some("true".into()));
            assert_eq!(p.long("n")?, Some(42));
            assert_eq!(p.long("f")?, Some(3));
            assert_eq!(p.int("missing")?, 0);
            assert!(p.flag("t")?);
            assert!(!p.flag("missing")?);
            assert_eq!(p.boolean("missing")?, None);
            assert_eq!(p.longs("list")?, vec![1, 2]);
            assert_eq!(p.texts("missing")?, Vec::<String>::new());
            let map = p.map("m")?.unwrap();
            assert_eq!(
                map.into_iter().collect::<Vec<_>>(),
                vec![("k".into(), "v".into())]
            );
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn wrong_shapes_are_errors_and_null_is_no_request() {
        assert!(read(r#"{"ids":{}}"#, |p| p.longs("ids")).is_err());
        assert!(read(r#"{"id":"x"}"#, |p| p.long("id")).is_err());
        assert!(read(r#"{"flag":1}"#, |p| p.flag("flag")).is_err());
        assert!(read(r#"{"key":[]}"#, |p| p.object("key").map(|o| o.is_some())).is_err());
        assert!(read(r#"{"port":99999999999}"#, |p| p.int("port")).is_err());
        assert!(parse(&mut b"null".to_vec(), |_| Ok(())).unwrap().is_none());
        assert!(parse(&mut b"[]".to_vec(), |_| Ok(())).is_err());
        assert!(parse(&mut b"  ".to_vec(), |_| Ok(())).is_err());
    }
}
