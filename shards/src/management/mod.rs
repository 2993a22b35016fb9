//! Management state as the shards apply it: the rows operators keep in the store, and the view
//! built from them that decides which instances leave discovery and what route rules and
//! logical instances a service's discovery bytes carry (Java's discovery filter chain).

mod group_key;
mod model;
mod view;

pub use crate::shard::{ManagedInstance, ManagedService};
pub use group_key::{fix_weight, group_key, instance_group_key, path_key, SearchTree};
pub use model::*;
pub use view::{Affected, InstanceFacts, ManagementView, CANARY_ROUTE_RULE, NO_LISTS};
