//! §4.8's groups: the instances of a service whose group keys a group's key
//! (`service/region/zone/name`) prefixes, their tags, the instances named into them, and the
//! group operations that pull a whole group out.

use artemis_shards::management::{group_key, Group, GroupInstance, GroupOperation, GroupTag};

use super::json::{write_list, write_map, write_object, write_texts, Field};
use super::requests::Props;
use super::{grouped, id_matches, text_matches, write_first, Asked, Read};
use crate::api::decode::DecodeError;
use crate::api::Context;
use crate::management::store::{GroupOperations, GroupTags, Write};
use crate::rate_limit::LimitedOp;

/// Java's `Group` (its read-only `groupKey` and `metadata` are not read).
pub(super) fn group(p: &Props) -> Result<Group, DecodeError> {
    let text = |name| Ok::<_, DecodeError>(p.text(name)?.unwrap_or_default());
    Ok(Group {
        group_id: p.long("groupId")?.unwrap_or(0),
        service_id: text("serviceId")?,
        region_id: text("regionId")?,
        zone_id: text("zoneId")?,
        name: text("name")?,
        app_id: p.text("appId")?,
        description: p.text("description")?,
        status: p.text("status")?,
    })
}

/// `insert-groups.json`: `{"groups":[Group]}`, upserted on service, region, zone and name.
pub(super) fn insert(_: &Context<'_>, p: Props<'_, '_>) -> Result<Asked<Write>, DecodeError> {
    Ok(Ok(Write::InsertGroups(p.each("groups", group)?)))
}

/// `update-groups.json`, as insert.
pub(super) fn update(_: &Context<'_>, p: Props<'_, '_>) -> Result<Asked<Write>, DecodeError> {
    Ok(Ok(Write::UpdateGroups(p.each("groups", group)?)))
}

/// `delete-groups.json`: `{"groupIds":[long]}`.
pub(super) fn delete(_: &Context<'_>, p: Props<'_, '_>) -> Result<Asked<Write>, DecodeError> {
    Ok(Ok(Write::DeleteGroups(p.longs("groupIds")?)))
}

fn group_tags(p: &Props) -> Result<GroupTags, DecodeError> {
    Ok(GroupTags {
        group_id: p.long("groupId")?.unwrap_or(0),
        tags: p.map("tags")?.unwrap_or_default(),
    })
}

/// `insert-group-tags.json`: `{"groupTagsList":[{"groupId","tags":{..}}]}`.
pub(super) fn insert_tags(_: &Context<'_>, p: Props<'_, '_>) -> Result<Asked<Write>, DecodeError> {
    Ok(Ok(Write::InsertGroupTags(
        p.each("groupTagsList", group_tags)?,
    )))
}

/// `update-group-tags.json`, as insert.
pub(super) fn update_tags(_: &Context<'_>, p: Props<'_, '_>) -> Result<Asked<Write>, DecodeError> {
    Ok(Ok(Write::UpdateGroupTags(
        p.each("groupTagsList", group_tags)?,
    )))
}

/// `delete-group-tags.json`: `{"groupId","tag","value"}`, each a filter when given.
pub(super) fn delete_tags(_: &Context<'_>, p: Props<'_, '_>) -> Result<Asked<Write>, DecodeError> {
    Ok(Ok(Write::DeleteGroupTags {
        group_id: p.long("groupId")?,
        tag: p.text("tag")?,
        value: p.text("value")?,
    }))
}

/// `operate-group-operations.json`: `{"groupOperationsList":[{"groupId","operations":[..]}],
/// "operationComplete"}`.
pub(super) fn operate_all(_: &Context<'_>, p: Props<'_, '_>) -> Result<Asked<Write>, DecodeError> {
    let groups = p.each("groupOperationsList", |g| {
        Ok(GroupOperations {
            group_id: g.long("groupId")?.unwrap_or(0),
            operations: g.texts("operations")?,
        })
    })?;
    let complete = p.flag("operationComplete")?;
    Ok(Ok(Write::GroupOperations { groups, complete }))
}

/// `operate-group-operation.json`: a flat group and `operation`, `operationComplete`; the group
/// is found or created.
pub(super) fn operate_one(_: &Context<'_>, p: Props<'_, '_>) -> Result<Asked<Write>, DecodeError> {
    Ok(Ok(Write::GroupOperation {
        group: group(&p)?,
        operation: p.text("operation")?.unwrap_or_default(),
        complete: p.flag("operationComplete")?,
    }))
}

/// `insert-group-instances.json`: `{"groupInstances":[{"groupId","instanceId"}]}`.
pub(super) fn insert_instances(
    _: &Context<'_>,
    p: Props<'_, '_>,
) -> Result<Asked<Write>, DecodeError> {
    let pairs = p.each("groupInstances", |g| {
        Ok((
            g.long("groupId")?.unwrap_or(0),
            g.text("instanceId")?.unwrap_or_default(),
        ))
    })?;
    Ok(Ok(Write::InsertGroupInstances(pairs)))
}

/// `delete-group-instances.json`: `{"groupInstanceIds":[long]}`.
pub(super) fn delete_instances(
    _: &Context<'_>,
    p: Props<'_, '_>,
) -> Result<Asked<Write>, DecodeError> {
    Ok(Ok(Write::DeleteGroupInstances(
        p.longs("groupInstanceIds")?,
    )))
}

/// `Group`: `{"appId","description","groupId","groupKey","metadata","name","regionId",
/// "serviceId","status","zoneId"}`; `metadata` is always `null` here, as in Java.
fn write_group(out: &mut Vec<u8>, g: &Group) {
    let key = group_key(&g.service_id, &g.region_id, &g.zone_id, &g.name);
    write_object(
        out,
        &[
            ("appId", Field::Text(g.app_id.as_deref())),
            ("description", Field::Text(g.description.as_deref())),
            ("groupId", Field::Int(Some(g.group_id))),
            ("groupKey", Field::Text(Some(&key))),
            ("metadata", Field::Text(None)),
            ("name", Field::Text(Some(&g.name))),
            ("regionId", Field::Text(Some(&g.region_id))),
            ("serviceId", Field::Text(Some(&g.service_id))),
            ("status", Field::Text(g.status.as_deref())),
            ("zoneId", Field::Text(Some(&g.zone_id))),
        ],
    );
}

/// `get-all-groups.json` → `groups` (the request's region is ignored).
pub(super) const ALL_GROUPS: Read<()> = Read::of(
    "groups",
    |_| Ok(Ok(())),
    |data, (), out| write_list(out, &data.groups, write_group),
);

/// The filter of `get-groups.json` (its `groupId` is ignored, as in Java).
pub(super) struct GroupFilter {
    service_id: Option<String>,
    region_id: Option<String>,
    zone_id: Option<String>,
    name: Option<String>,
    app_id: Option<String>,
    status: Option<String>,
}

/// `get-groups.json`: `{"serviceId","regionId","zoneId","name","appId","status"}` → `groups`.
pub(super) const GROUPS: Read<GroupFilter> = Read::of(
    "groups",
    |p| {
        Ok(Ok(GroupFilter {
            service_id: p.text("serviceId")?,
            region_id: p.text("regionId")?,
            zone_id: p.text("zoneId")?,
            name: p.text("name")?,
            app_id: p.text("appId")?,
            status: p.text("status")?,
        }))
    },
    |data, f, out| {
        let groups = data.groups.iter().filter(|g| {
            text_matches(&f.service_id, Some(&g.service_id))
                && text_matches(&f.region_id, Some(&g.region_id))
                && text_matches(&f.zone_id, Some(&g.zone_id))
                && text_matches(&f.name, Some(&g.name))
                && text_matches(&f.app_id, g.app_id.as_deref())
                && text_matches(&f.status, g.status.as_deref())
        });
        write_list(out, groups, write_group)
    },
)
.limited(LimitedOp::GetGroups);

/// The tags of each group among `rows`, by group, each tag in key order.
pub(super) fn tags_by_group<'a>(
    rows: impl IntoIterator<Item = &'a GroupTag>,
) -> Vec<(i64, Vec<(&'a str, &'a str)>)> {
    let by_group = grouped(rows, |t| t.group_id, |t| (t.tag.as_str(), t.value.as_str()));
    let sorted = by_group.into_iter().map(|(first, mut tags)| {
        tags.sort_unstable();
        (first.group_id, tags)
    });
    sorted.collect()
}

/// `GroupTags`: `{"groupId","tags":{..}}`.
fn write_group_tags(out: &mut Vec<u8>, (group_id, tags): (i64, Vec<(&str, &str)>)) {
    let tags = |out: &mut Vec<u8>| write_map(out, tags.iter().copied());
    write_object(
        out,
        &[
            ("groupId", Field::Int(Some(group_id))),
            ("tags", Field::With(&tags)),
        ],
    );
}

/// `GroupOperations`: `{"groupId","operations":[..]}`.
fn write_group_operations(out: &mut Vec<u8>, (row, ops): (&GroupOperation, Vec<&str>)) {
    let ops = |out: &mut Vec<u8>| write_texts(out, ops.iter().copied());
    write_object(
        out,
        &[
            ("groupId", Field::Int(Some(row.group_id))),
            ("operations", Field::With(&ops)),
        ],
    );
}

fn group_operations<'a>(
    rows: impl IntoIterator<Item = &'a GroupOperation>,
) -> Vec<(&'a GroupOperation, Vec<&'a str>)> {
    grouped(rows, |r| r.group_id, |r| r.operation.as_str())
}

/// A request naming one group by `groupId` (none names no group).
fn group_id(p: Props<'_, '_>) -> Result<Asked<Option<i64>>, DecodeError> {
    Ok(Ok(p.long("groupId")?))
}

/// `get-all-group-tags.json` → `allGroupTags`.
pub(super) const ALL_GROUP_TAGS: Read<()> = Read::of(
    "allGroupTags",
    |_| Ok(Ok(())),
    |data, (), out| write_list(out, tags_by_group(&data.group_tags), write_group_tags),
);

/// `get-group-tags.json`: `{"groupId"}` → `groupTags`, `null` when none.
pub(super) const GROUP_TAGS: Read<Option<i64>> =
    Read::of("groupTags", group_id, |data, id, out| {
        let rows = data.group_tags.iter().filter(|t| Some(t.group_id) == id);
        write_first(out, tags_by_group(rows), write_group_tags)
    });

/// `get-all-group-operations.json` → `allGroupOperations`.
pub(super) const ALL_GROUP_OPERATIONS: Read<()> = Read::of(
    "allGroupOperations",
    |_| Ok(Ok(())),
    |data, (), out| {
        write_list(
            out,
            group_operations(&data.group_operations),
            write_group_operations,
        )
    },
);

/// `get-group-operations.json`: `{"groupId"}` → `groupOperations`, `null` when none.
pub(super) const GROUP_OPERATIONS: Read<Option<i64>> =
    Read::of("groupOperations", group_id, |data, id, out| {
        let rows = data
            .group_operations
            .iter()
            .filter(|r| Some(r.group_id) == id);
        write_first(out, group_operations(rows), write_group_operations)
    });

/// `GroupInstance`: `{"groupId","id","instanceId"}`.
fn write_group_instance(out: &mut Vec<u8>, row: &GroupInstance) {
    write_object(
        out,
        &[
            ("groupId", Field::Int(Some(row.group_id))),
            ("id", Field::Int(Some(row.id))),
            ("instanceId", Field::Text(Some(&row.instance_id))),
        ],
    );
}

/// The filter of `get-group-instances.json`.
pub(super) struct GroupInstanceFilter {
    group_id: Option<i64>,
    instance_id: Option<String>,
}

/// `get-group-instances.json`: `{"groupId","instanceId"}` → `groupInstances`.
pub(super) const GROUP_INSTANCES: Read<GroupInstanceFilter> = Read::of(
    "groupInstances",
    |p| {
        Ok(Ok(GroupInstanceFilter {
            group_id: p.long("groupId")?,
            instance_id: p.text("instanceId")?,
        }))
    },
    |data, f, out| {
        let rows = data.group_instances.iter().filter(|r| {
            id_matches(f.group_id, r.group_id) && text_matches(&f.instance_id, Some(&r.instance_id))
        });
        write_list(out, rows, write_group_instance)
    },
);
