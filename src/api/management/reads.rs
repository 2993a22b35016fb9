//! The management reads answered from the management data, as tables: each endpoint names the
//! rows it lists, the request fields that filter them (Java's DAO `select`, or its caches' key
//! lookups), and how what is left is written as the reply's one data field.

use std::collections::HashMap;
use std::hash::Hash;

use artemis_shards::management::ManagementData;

use super::requests::{self, Props};
use super::{found, Asked, Refusal};
use crate::api::envelope::malformed;
use crate::api::{rate_limited, Context, Input, Response};
use crate::decode::DecodeError;
use crate::rate_limit::LimitedOp;

/// What a row holds under a filter field.
enum Cell<R> {
    Text(fn(&R) -> Option<&str>),
    Id(fn(&R) -> i64),
}

/// A filter field of a read: its Java name, and the row's value it compares with. Text compares
/// whatever the case, as MySQL's default collation and Java's key classes do.
pub(super) struct Column<R> {
    name: &'static str,
    /// A key field: a request that leaves it out names no row (Java's key lookups). Other
    /// fields left out, or blank, filter nothing.
    key: bool,
    cell: Cell<R>,
}

impl<R> Column<R> {
    pub(super) const fn text(name: &'static str, cell: fn(&R) -> Option<&str>) -> Column<R> {
        Column {
            name,
            key: false,
            cell: Cell::Text(cell),
        }
    }

    pub(super) const fn id(name: &'static str, cell: fn(&R) -> i64) -> Column<R> {
        Column {
            name,
            key: false,
            cell: Cell::Id(cell),
        }
    }

    /// `column` as a key field.
    pub(super) const fn key(column: Column<R>) -> Column<R> {
        Column {
            key: true,
            ..column
        }
    }

    /// Whether `row` passes the filter `value` (a number as text for an id).
    fn admits(&self, row: &R, value: Option<&str>) -> bool {
        match (value.filter(|v| !v.trim().is_empty()), &self.cell) {
            (None, _) => !self.key,
            (Some(v), Cell::Text(cell)) => cell(row).is_some_and(|c| c.eq_ignore_ascii_case(v)),
            (Some(v), Cell::Id(cell)) => v.trim().parse() == Ok(cell(row)),
        }
    }
}

/// A read: the reply's data field, the rows, how the rows that pass are written, the filter
/// fields, and where the request keeps them.
pub(super) struct Read<R: 'static> {
    /// The reply's data field, `null` when the request fails.
    field: &'static str,
    rows: fn(&ManagementData) -> &[R],
    write: fn(&mut Vec<u8>, Vec<&R>),
    columns: &'static [Column<R>],
    /// Java's rate limit on the endpoint, if any.
    limited: Option<LimitedOp>,
    /// The request object the fields are in (`instanceKey`), and Java's refusal of a request
    /// without it (without a refusal, such a request names no row).
    within: Option<(&'static str, Option<&'static str>)>,
    /// The endpoint also takes GET, the fields in the query string; a `null` body then filters
    /// nothing (Java reads a missing request as no region).
    takes_get: bool,
}

impl<R> Read<R> {
    /// Every row of `rows`, written by `write` as `field`.
    pub(super) const fn of(
        field: &'static str,
        rows: fn(&ManagementData) -> &[R],
        write: fn(&mut Vec<u8>, Vec<&R>),
    ) -> Read<R> {
        Read {
            field,
            rows,
            write,
            columns: &[],
            limited: None,
            within: None,
            takes_get: false,
        }
    }

    /// Filtered by the request's `columns`.
    pub(super) const fn filtered(self, columns: &'static [Column<R>]) -> Read<R> {
        Read { columns, ..self }
    }

    /// Under `op`'s rate limit.
    pub(super) const fn limited(self, op: LimitedOp) -> Read<R> {
        Read {
            limited: Some(op),
            ..self
        }
    }

    /// The fields are in the request's `object`; `missing` is Java's refusal without one.
    pub(super) const fn within(
        self,
        object: &'static str,
        missing: Option<&'static str>,
    ) -> Read<R> {
        Read {
            within: Some((object, missing)),
            ..self
        }
    }

    /// Also answering GET.
    pub(super) const fn or_get(self) -> Read<R> {
        Read {
            takes_get: true,
            ..self
        }
    }

    /// A GET's filter values, from its query string.
    fn query_values(&self, input: &Input<'_>) -> Vec<Option<String>> {
        let values = self.columns.iter().map(|c| input.query_value(c.name));
        values.collect()
    }

    /// The request's filter values, column by column.
    fn values(&self, p: Props<'_, '_>) -> Result<Asked<Vec<Option<String>>>, DecodeError> {
        let p = match self.within {
            None => p,
            Some((object, missing)) => match (p.object(object)?, missing) {
                (Some(inner), _) => inner,
                (None, Some(why)) => return Ok(Err(Refusal::bad_request(why))),
                (None, None) => return Ok(Ok(vec![None; self.columns.len()])),
            },
        };
        let values = self.columns.iter().map(|c| p.text(c.name));
        Ok(Ok(values.collect::<Result<_, _>>()?))
    }
}

/// A management read: rate limit, request, then the rows of the data as last loaded.
pub(super) async fn read<R>(ctx: &Context<'_>, input: Input<'_>, spec: &Read<R>) -> Response {
    let asked = match spec.takes_get && input.is_get() {
        true => Ok(Some(Ok(spec.query_values(&input)))),
        false => requests::parse(input.body, |p| spec.values(p)),
    };
    // A body that is not JSON is refused by the framework before Java's limiter counts it.
    let asked = match asked {
        Err(e) => return malformed(e),
        Ok(asked) => asked,
    };
    if let Some(limited) = spec.limited.and_then(|op| rate_limited(ctx, op)) {
        return limited;
    }
    let values = match asked {
        Some(Ok(values)) => values,
        None if spec.takes_get => vec![None; spec.columns.len()],
        None => return Refusal::bad_request("request is null").reply(&[spec.field]),
        Some(Err(refusal)) => return refusal.reply(&[spec.field]),
    };
    let data = match ctx.management.data().await {
        Ok(data) => data,
        Err(e) => return Refusal::internal(e.to_string()).reply(&[spec.field]),
    };
    let passes = |row: &&R| {
        let mut fields = spec.columns.iter().zip(&values);
        fields.all(|(column, value)| column.admits(row, value.as_deref()))
    };
    let rows = (spec.rows)(&data).iter().filter(passes).collect();
    let mut value = Vec::new();
    (spec.write)(&mut value, rows);
    found(spec.field, &value)
}

/// Rows grouped by `key`, in the order keys first appear, with each group's items (each
/// once): Java's `*Operations` and `GroupTags` DTOs, built from one row per key and item.
pub(super) fn grouped<'a, R: 'a, K: Hash + Eq, V: PartialEq>(
    rows: impl IntoIterator<Item = &'a R>,
    key: impl Fn(&R) -> K,
    item: impl Fn(&'a R) -> V,
) -> Vec<(&'a R, Vec<V>)> {
    let mut at: HashMap<K, usize> = HashMap::new();
    let mut groups: Vec<(&R, Vec<V>)> = Vec::new();
    for row in rows {
        let i = *at.entry(key(row)).or_insert_with(|| {
            groups.push((row, Vec::new()));
            groups.len() - 1
        });
        let item = item(row);
        if !groups[i].1.contains(&item) {
            groups[i].1.push(item);
        }
    }
    groups
}

/// Writes the first of `found` with `write`, or `null` when there is none (Java's lookups of
/// one key).
pub(super) fn write_first<T>(out: &mut Vec<u8>, found: Vec<T>, write: fn(&mut Vec<u8>, T)) {
    match found.into_iter().next() {
        Some(one) => write(out, one),
        None => out.extend_from_slice(b"null"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Row {
        name: &'static str,
        id: i64,
    }

    #[test]
    fn filters_take_what_they_name() {
        let name = Column::text("name", |r: &Row| Some(r.name));
        let id = Column::id("id", |r: &Row| r.id);
        let row = Row { name: "SVC", id: 3 };
        assert!(name.admits(&row, None), "a field left out filters nothing");
        assert!(name.admits(&row, Some(" ")), "nor does a blank one");
        assert!(name.admits(&row, Some("svc")), "whatever the case");
        assert!(!name.admits(&row, Some("other")));
        assert!(id.admits(&row, Some("3")) && !id.admits(&row, Some("4")));
        assert!(!id.admits(&row, Some("three")));
        assert!(!Column::key(Column::text("name", |r: &Row| Some(r.name))).admits(&row, None));
    }

    #[test]
    fn rows_are_grouped_by_key_in_first_seen_order() {
        let rows = [("A", "x"), ("b", "y"), ("a", "x"), ("a", "z")];
        let found = grouped(&rows, |r| r.0.to_lowercase(), |r| r.1);
        let shown: Vec<(&str, Vec<&str>)> =
            found.iter().map(|(r, ops)| (r.0, ops.clone())).collect();
        assert_eq!(shown, vec![("A", vec!["x", "z"]), ("b", vec!["y"])]);
    }
}
