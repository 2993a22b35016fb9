//! What one core holds while it serves: its view of the node, its link to every shard (its own
//! included), its metrics slot and the HTTP limits.

use std::rc::Rc;
use std::sync::Arc;

use crate::http::Limits;
use crate::metrics::{CoreMetrics, Metrics};
use crate::node::Node;
use crate::shard_link::ShardLink;

pub struct Core {
    pub node: Node,
    pub link: Rc<ShardLink>,
    pub metrics: Arc<Metrics>,
    pub limits: Limits,
}

impl Core {
    /// This core's own counters.
    pub fn counters(&self) -> &CoreMetrics {
        self.metrics.core(self.link.me())
    }
}
