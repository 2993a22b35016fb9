//! Java's management DTOs as JSON: objects written field by field in the alphabetical order
//! Jackson sorts them into, nulls written, lists, string maps, and the `*Operations` shape.
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

/// Appends `open`, the items written by `write`, separated by commas, and `close`.
fn write_sequence<T>(
    out: &mut Vec<u8>,
    [open, close]: [u8; 2],
    items: impl IntoIterator<Item = T>,
    mut write: impl FnMut(&mut Vec<u8>, T),
) {
    out.push(open);
    let first = out.len();
    for item in items {
        if out.len() > first {
            out.push(b',');
        }
        write(out, item);
    }
    out.push(close);
}

/// Appends `{"key":value,...}` from fields already in alphabetical order.
pub(super) fn write_object(out: &mut Vec<u8>, fields: &[(&str, Field<'_>)]) {
    write_sequence(out, *b"{}", fields, |out, (key, value)| {
        write_key(out, key);
        match value {
            Field::Text(s) => write_opt_str(out, *s),
            Field::Int(Some(n)) => write_int(out, *n),
            Field::Bool(Some(b)) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
            Field::Int(None) | Field::Bool(None) => out.extend_from_slice(b"null"),
            Field::With(write) => write(out),
        }
    });
}

/// Appends `[item,...]`, each item written by `write`.
pub(super) fn write_list<T>(
    out: &mut Vec<u8>,
    items: impl IntoIterator<Item = T>,
    write: impl FnMut(&mut Vec<u8>, T),
) {
    write_sequence(out, *b"[]", items, write);
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
    write_sequence(out, *b"{}", entries, |out, (key, value)| {
        write_str(out, key);
        out.push(b':');
        write_str(out, value);
    });
}

/// Java's `*Operations` DTOs: the key under `key_name` beside the key's `operations`, in
/// alphabetical order (`groupId`/`instanceKey` come first, `serverKey`/`zoneKey` last).
pub(super) fn write_operations(out: &mut Vec<u8>, key_name: &str, key: Field<'_>, ops: &[&str]) {
    let ops_json = |out: &mut Vec<u8>| write_texts(out, ops.iter().copied());
    let ops = ("operations", Field::With(&ops_json));
    match key_name < "operations" {
        true => write_object(out, &[(key_name, key), ops]),
        false => write_object(out, &[ops, (key_name, key)]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(write: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut out = Vec::new();
        write(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn objects_lists_and_maps() {
        let ops = |out: &mut Vec<u8>| write_texts(out, ["pullout", "x\"y"]);
        let map = |out: &mut Vec<u8>| write_map(out, [("k", "v"), ("l", "w")]);
        let fields = [
            ("a", Field::Text(None)),
            ("b", Field::Int(Some(-3))),
            ("c", Field::Bool(Some(true))),
            ("d", Field::Int(None)),
            ("e", Field::With(&ops)),
            ("f", Field::With(&map)),
        ];
        assert_eq!(
            written(|out| write_object(out, &fields)),
            r#"{"a":null,"b":-3,"c":true,"d":null,"e":["pullout","x\"y"],"f":{"k":"v","l":"w"}}"#
        );
        assert_eq!(
            written(|out| write_list(out, Vec::<i64>::new(), write_int)),
            "[]"
        );
        assert_eq!(written(|out| write_map(out, [])), "{}");
    }

    #[test]
    fn operations_sit_where_the_alphabet_puts_their_key() {
        let group = written(|out| write_operations(out, "groupId", Field::Int(Some(7)), &["a"]));
        assert_eq!(group, r#"{"groupId":7,"operations":["a"]}"#);
        let server = written(|out| write_operations(out, "serverKey", Field::Int(None), &[]));
        assert_eq!(server, r#"{"operations":[],"serverKey":null}"#);
    }
}
