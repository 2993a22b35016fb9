//! §4.8's groups: the instances of a service whose group keys a group's key
//! (`service/region/zone/name`) prefixes, their tags, the instances named into them, and the
//! group operations that pull a whole group out.

use artemis_shards::management::{group_key, Group, GroupInstance, GroupOperation, GroupTag};

use super::json::{write_list, write_map, write_object, write_operations, Field};
use super::reads::{grouped, write_first, Column, Read};
use super::requests::Props;
use super::writes::{ids, rows, Writes};
use crate::decode::DecodeError;
use crate::management::store::{GroupOperations, GroupTags, Write};
use crate::rate_limit::LimitedOp;

/// Java's `Group` (its read-only `groupKey` and `metadata` are not read).
pub(super) fn group(p: &Props) -> Result<Group, DecodeError> {
    let [service_id, region_id, zone_id, name] = p
        .texts_of(["serviceId", "regionId", "zoneId", "name"])?
        .map(Option::unwrap_or_default);
    let [app_id, description, status] = p.texts_of(["appId", "description", "status"])?;
    Ok(Group {
        group_id: p.long("groupId")?.unwrap_or(0),
        service_id,
        region_id,
        zone_id,
        name,
        app_id,
        description,
        status,
    })
}

/// `insert-groups.json`: `{"groups":[Group]}`, upserted on service, region, zone and name.
pub(super) const INSERT: Writes = Writes::checked("insert groups failed.", |_, p| {
    rows(&p, "groups", group, Write::InsertGroups)
});

/// `update-groups.json`, as insert.
pub(super) const UPDATE: Writes = Writes::checked("update groups failed.", |_, p| {
    rows(&p, "groups", group, Write::UpdateGroups)
});

/// `delete-groups.json`: `{"groupIds":[long]}`.
pub(super) const DELETE: Writes = Writes::checked("delete group failed.", |_, p| {
    ids(&p, "groupIds", Write::DeleteGroups)
});

fn group_tags(p: &Props) -> Result<GroupTags, DecodeError> {
    Ok(GroupTags {
        group_id: p.long("groupId")?.unwrap_or(0),
        tags: p.map("tags")?.unwrap_or_default(),
    })
}

/// `insert-group-tags.json`: `{"groupTagsList":[{"groupId","tags":{..}}]}`; Java checks no
/// operator here.
pub(super) const INSERT_TAGS: Writes = Writes::plain("insert group tag failed.", |_, p| {
    rows(&p, "groupTagsList", group_tags, Write::InsertGroupTags)
});

/// `update-group-tags.json`, as insert.
pub(super) const UPDATE_TAGS: Writes = Writes::plain("update group tag failed.", |_, p| {
    rows(&p, "groupTagsList", group_tags, Write::UpdateGroupTags)
});

/// `delete-group-tags.json`: `{"groupId","tag","value"}`, each a filter when given.
pub(super) const DELETE_TAGS: Writes = Writes::plain("delete group-tags failed.", |_, p| {
    let [tag, value] = p.texts_of(["tag", "value"])?;
    let group_id = p.long("groupId")?;
    Ok(Ok(Write::DeleteGroupTags {
        group_id,
        tag,
        value,
    }))
});

/// `operate-group-operations.json`: `{"groupOperationsList":[{"groupId","operations":[..]}],
/// "operationComplete"}`.
pub(super) const OPERATE_ALL: Writes =
    Writes::checked("operate group operation failed.", |_, p| {
        let groups = p.each("groupOperationsList", |g| {
            let group_id = g.long("groupId")?.unwrap_or(0);
            let operations = g.texts("operations")?;
            Ok(GroupOperations {
                group_id,
                operations,
            })
        })?;
        let complete = p.flag("operationComplete")?;
        Ok(Ok(Write::GroupOperations { groups, complete }))
    });

/// `operate-group-operation.json`: a flat group and `operation`, `operationComplete`; the group
/// is found or created.
pub(super) const OPERATE_ONE: Writes =
    Writes::checked("operate group operation failed.", |_, p| {
        let operation = p.text("operation")?.unwrap_or_default();
        let complete = p.flag("operationComplete")?;
        let group = group(&p)?;
        Ok(Ok(Write::GroupOperation {
            group,
            operation,
            complete,
        }))
    });

/// `insert-group-instances.json`: `{"groupInstances":[{"groupId","instanceId"}]}`.
pub(super) const INSERT_INSTANCES: Writes =
    Writes::checked("insert group instances failed.", |_, p| {
        let named = |g: &Props| {
            let instance_id = g.text("instanceId")?.unwrap_or_default();
            Ok((g.long("groupId")?.unwrap_or(0), instance_id))
        };
        rows(&p, "groupInstances", named, Write::InsertGroupInstances)
    });

/// `delete-group-instances.json`: `{"groupInstanceIds":[long]}`.
pub(super) const DELETE_INSTANCES: Writes =
    Writes::checked("delete group instances failed.", |_, p| {
        ids(&p, "groupInstanceIds", Write::DeleteGroupInstances)
    });

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
pub(super) const ALL_GROUPS: Read<Group> = Read::of(
    "groups",
    |data| &data.groups,
    |out, groups| write_list(out, groups, write_group),
);

/// `get-groups.json`: `{"serviceId","regionId","zoneId","name","appId","status"}` → `groups`
/// (its `groupId` is ignored, as in Java).
pub(super) const GROUPS: Read<Group> = ALL_GROUPS
    .filtered(&[
        Column::text("serviceId", |g| Some(&g.service_id)),
        Column::text("regionId", |g| Some(&g.region_id)),
        Column::text("zoneId", |g| Some(&g.zone_id)),
        Column::text("name", |g| Some(&g.name)),
        Column::text("appId", |g| g.app_id.as_deref()),
        Column::text("status", |g| g.status.as_deref()),
    ])
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
    let id = ("groupId", Field::Int(Some(group_id)));
    write_object(out, &[id, ("tags", Field::With(&tags))]);
}

/// Each group's operations among `rows`, as `GroupOperations`.
fn write_group_operations(out: &mut Vec<u8>, rows: Vec<&GroupOperation>, first_only: bool) {
    let groups = grouped(rows, |r| r.group_id, |r| r.operation.as_str());
    let write = |out: &mut Vec<u8>, (row, ops): (&GroupOperation, Vec<&str>)| {
        write_operations(out, "groupId", Field::Int(Some(row.group_id)), &ops)
    };
    match first_only {
        true => write_first(out, groups, write),
        false => write_list(out, groups, write),
    }
}

/// `get-all-group-tags.json` → `allGroupTags`.
pub(super) const ALL_GROUP_TAGS: Read<GroupTag> = Read::of(
    "allGroupTags",
    |data| &data.group_tags,
    |out, tags| write_list(out, tags_by_group(tags), write_group_tags),
);

/// `get-group-tags.json`: `{"groupId"}` → `groupTags`, `null` when none.
pub(super) const GROUP_TAGS: Read<GroupTag> = Read::of(
    "groupTags",
    |data| &data.group_tags,
    |out, tags| write_first(out, tags_by_group(tags), write_group_tags),
)
.filtered(&[Column::key(Column::id("groupId", |t| t.group_id))]);

/// `get-all-group-operations.json` → `allGroupOperations`.
pub(super) const ALL_GROUP_OPERATIONS: Read<GroupOperation> = Read::of(
    "allGroupOperations",
    |data| &data.group_operations,
    |out, rows| write_group_operations(out, rows, false),
);

/// `get-group-operations.json`: `{"groupId"}` → `groupOperations`, `null` when none.
pub(super) const GROUP_OPERATIONS: Read<GroupOperation> = Read::of(
    "groupOperations",
    |data| &data.group_operations,
    |out, rows| write_group_operations(out, rows, true),
)
.filtered(&[Column::key(Column::id("groupId", |r| r.group_id))]);

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

/// `get-group-instances.json`: `{"groupId","instanceId"}` → `groupInstances`.
pub(super) const GROUP_INSTANCES: Read<GroupInstance> = Read::of(
    "groupInstances",
    |data| &data.group_instances,
    |out, rows| write_list(out, rows, write_group_instance),
)
.filtered(&[
    Column::id("groupId", |r| r.group_id),
    Column::text("instanceId", |r| Some(&r.instance_id)),
]);
