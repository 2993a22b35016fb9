//! Register, heartbeat or unregister requests carrying a batch of instances: the three registry
//! writes differ only in the endpoint (an HTTP path, or a WebSocket frame for heartbeats).

use super::batches::Batches;
use super::Workload;
use crate::body::Population;
use crate::op::Op;
use crate::request::{Endpoint, Headers};

pub(super) struct InstanceWrites {
    op: Op,
    endpoint: Endpoint,
    population: Population,
    batches: Batches,
    body: Vec<u8>,
}

impl InstanceWrites {
    pub(super) fn new(
        op: Op,
        endpoint: Endpoint,
        population: Population,
        batches: Batches,
    ) -> InstanceWrites {
        InstanceWrites {
            op,
            endpoint,
            population,
            batches,
            body: Vec::new(),
        }
    }
}

impl Workload for InstanceWrites {
    fn next(&mut self, headers: &Headers, out: &mut Vec<u8>) -> Option<Op> {
        let ids = self.batches.next_batch()?;
        self.body.clear();
        self.population.write_instances(ids, &mut self.body);
        self.endpoint.write(headers, &self.body, out);
        Some(self.op)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeats_walk_the_slice() {
        let mut w = InstanceWrites::new(
            Op::Heartbeat,
            super::super::endpoint(Op::Heartbeat),
            Population::new("default", "default", 2),
            Batches::cycle(0..3, 2),
        );
        let mut out = vec![];
        assert_eq!(
            w.next(&Headers::new("h", false), &mut out),
            Some(Op::Heartbeat)
        );
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("POST /api/registry/heartbeat.json HTTP/1.1\r\n"));
        let body: serde_json::Value =
            serde_json::from_str(text.split("\r\n\r\n").nth(1).unwrap()).unwrap();
        assert_eq!(body["instances"].as_array().unwrap().len(), 2);
    }
}
