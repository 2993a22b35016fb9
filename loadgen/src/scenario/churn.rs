//! Churn: register a batch of instances, then unregister the same batch, then the next batch,
//! the way deployments replace instances.

use super::batches::{Batch, Batches};
use super::{endpoint, Workload};
use crate::body::Population;
use crate::op::Op;
use crate::request::{Endpoint, Headers};

pub(super) struct Churn {
    register: Endpoint,
    unregister: Endpoint,
    population: Population,
    batches: Batches,
    /// The batch registered last, to unregister next.
    registered: Option<Batch>,
    body: Vec<u8>,
}

impl Churn {
    pub(super) fn new(population: Population, batches: Batches) -> Churn {
        Churn {
            register: endpoint(Op::Register),
            unregister: endpoint(Op::Unregister),
            population,
            batches,
            registered: None,
            body: Vec::new(),
        }
    }
}

impl Workload for Churn {
    fn next(&mut self, headers: &Headers, out: &mut Vec<u8>) -> Option<Op> {
        let (op, ids) = match self.registered.take() {
            Some(ids) => (Op::Unregister, ids),
            None => {
                let ids = self.batches.next_batch()?;
                self.registered = Some(ids.clone());
                (Op::Register, ids)
            }
        };
        self.body.clear();
        self.population.write_instances(ids, &mut self.body);
        let endpoint = match op {
            Op::Register => &self.register,
            _ => &self.unregister,
        };
        endpoint.write(headers, &self.body, out);
        Some(op)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers_then_unregisters_the_same_batch() {
        let mut c = Churn::new(
            Population::new("default", "default", 1),
            Batches::cycle(0..2, 1),
        );
        let mut requests = vec![];
        for _ in 0..4 {
            let mut out = vec![];
            let op = c.next(&Headers::new("h", false), &mut out).unwrap();
            let text = String::from_utf8(out).unwrap();
            let ip = text
                .split("\"ip\":\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap()
                .to_owned();
            requests.push((op, ip));
        }
        assert_eq!(
            requests,
            vec![
                (Op::Register, "10.0.0.0".to_owned()),
                (Op::Unregister, "10.0.0.0".to_owned()),
                (Op::Register, "10.0.0.1".to_owned()),
                (Op::Unregister, "10.0.0.1".to_owned()),
            ]
        );
    }
}
