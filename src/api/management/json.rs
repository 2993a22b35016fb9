//! Java's management DTOs as JSON: objects written field by field in the alphabetical order
//! Jackson sorts them into, nulls written, lists and string maps.
//!
//! Management replies are small and rare, so they are built here per request, unlike the
//! pre-serialized discovery replies.

use artemis_shards::json::{write_int, write_key, write_opt_str, write_str};

/// One field's value.
pub(super) enum Field<'a> {
    Text(Option<&'a str>),
    Int(Option<i64>),
    Bool(Option<bool>),
    /// A value written by a function (a list, a nested object).
    With(&'a dyn Fn(&mut Vec<u8>)),
}

/// Appends `{"key":value,...}` from fields already in alphabetical order.
pub(super) fn write_object(out: &mut Vec<u8>, fields: &[(&str, Field<'_>)]) {
    out.push(b'{');
    for (i, (key, value)) in fields.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_key(out, key);
        match value {
            Field::Text(s) => write_opt_str(out, *s),
            Field::Int(Some(n)) => write_int(out, *n),
            Field::Bool(Some(b)) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
            Field::Int(None) | Field::Bool(None) => out.extend_from_slice(b"null"),
            Field::With(write) => write(out),
        }
    }
    out.push(b'}');
}

/// Appends `[item,...]`, each item written by `write`.
pub(super) fn write_list<T>(
    out: &mut Vec<u8>,
    items: impl IntoIterator<Item = T>,
    write: impl Fn(&mut Vec<u8>, T),
) {
    out.push(b'[');
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write(out, item);
    }
    out.push(b']');
}

/// Appends `["a","b",...]`.
pub(super) fn write_texts<'a>(out: &mut Vec<u8>, texts: impl IntoIterator<Item = &'a str>) {
    write_list(out, texts, write_str);
}

/// Appends `{"k":"v",...}`: a Java `Map<String, String>`.
pub(super) fn write_map<'a>(
    out: &mut Vec<u8>,
    entries: impl IntoIterator<Item = (&'a str, &'a str)>,
) {
    out.push(b'{');
    for (i, (key, value)) in entries.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(out, key);
        out.push(b':');
        write_str(out, value);
    }
    out.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_lists_and_maps() {
        let mut out = Vec::new();
        let ops = |out: &mut Vec<u8>| write_texts(out, ["pullout", "x\"y"]);
        write_object(
            &mut out,
            &[
                ("a", Field::Text(None)),
                ("b", Field::Int(Some(-3))),
                ("c", Field::Bool(Some(true))),
                ("d", Field::Int(None)),
                ("e", Field::With(&ops)),
                (
                    "f",
                    Field::With(&|out: &mut Vec<u8>| write_map(out, [("k", "v")])),
                ),
            ],
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"a":null,"b":-3,"c":true,"d":null,"e":["pullout","x\"y"],"f":{"k":"v"}}"#
        );
        let mut out = Vec::new();
        write_list(&mut out, Vec::<i64>::new(), write_int);
        assert_eq!(out, b"[]");
    }
}
