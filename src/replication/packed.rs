//! A batch's request body, gzipped once for every peer it goes to.
//!
//! The outboxes of a core's peers are fed the same updates in the same order and cut into
//! batches by the same rule, so while the peers keep up their senders take the same batches; and
//! deflating a body is most of what replication adds to a client's write. So the body last packed
//! on this core for each kind is kept with the updates it carries, and a sender whose batch is
//! those very updates (the same shared allocations, in the same order) sends the same bytes.
//! Anything else (retries, a peer that fell behind) is packed for itself. What is kept is one
//! batch per kind, whose updates stay alive until the next batch of the kind replaces them.

use std::cell::RefCell;
use std::rc::Rc;

use super::outbox::Task;
use super::update::Update;
use crate::http::client::pack;
use crate::shard_link::WriteOp;

/// The last body packed for each kind on this core.
#[derive(Default)]
pub(super) struct Packer {
    last: RefCell<[Option<Packed>; WriteOp::ALL.len()]>,
    /// Where the JSON is written, reused.
    json: RefCell<Vec<u8>>,
}

/// A body and the updates it carries, in order.
struct Packed {
    updates: Vec<Update>,
    body: Rc<[u8]>,
}

impl Packer {
    /// The gzipped `{"instances":[...]}` of `tasks` (of `kind`): the kept one when it carries
    /// these very updates, else packed now and kept.
    pub(super) fn body(&self, kind: WriteOp, tasks: &[Task]) -> Rc<[u8]> {
        let mut last = self.last.borrow_mut();
        let slot = &mut last[kind.index()];
        if let Some(kept) = slot.as_ref().filter(|kept| kept.carries(tasks)) {
            return kept.body.clone();
        }
        let mut json = self.json.borrow_mut();
        write_body(&mut json, tasks);
        let body: Rc<[u8]> = pack(&json).into();
        *slot = Some(Packed {
            updates: tasks.iter().map(|task| task.update.clone()).collect(),
            body: body.clone(),
        });
        body
    }
}

impl Packed {
    fn carries(&self, tasks: &[Task]) -> bool {
        self.updates.len() == tasks.len()
            && self
                .updates
                .iter()
                .zip(tasks)
                .all(|(u, t)| u.same(&t.update))
    }
}

/// `{"instances":[...]}` of `tasks`, in `body` (emptied first).
fn write_body(body: &mut Vec<u8>, tasks: &[Task]) {
    body.clear();
    body.extend_from_slice(br#"{"instances":["#);
    for (i, task) in tasks.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(task.update.json());
    }
    body.extend_from_slice(b"]}");
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::super::update::tests::update;
    use super::*;

    fn tasks(updates: &[Update]) -> Vec<Task> {
        let since = Instant::now();
        updates
            .iter()
            .map(|update| Task {
                update: update.clone(),
                since,
            })
            .collect()
    }

    #[test]
    fn a_body_is_javas_instances_request() {
        let (a, b) = (update("s", "a", "1"), update("s", "b", "1"));
        let mut body = b"stale".to_vec();
        write_body(&mut body, &tasks(&[a.clone(), b.clone()]));
        let text = |u: &Update| String::from_utf8(u.json().to_vec()).unwrap();
        let expected = format!(r#"{{"instances":[{},{}]}}"#, text(&a), text(&b));
        assert_eq!(String::from_utf8(body).unwrap(), expected);
    }

    #[test]
    fn the_same_batch_is_packed_once_and_any_other_anew() {
        let packer = Packer::default();
        let (a, b) = (update("s", "a", "1"), update("s", "b", "1"));
        let first = packer.body(WriteOp::Heartbeat, &tasks(&[a.clone(), b.clone()]));
        let again = packer.body(WriteOp::Heartbeat, &tasks(&[a.clone(), b.clone()]));
        assert!(Rc::ptr_eq(&first, &again), "the second peer's same batch");

        // Equal bytes in another allocation (a newer write), another order, fewer: packed anew.
        let newer_a = update("s", "a", "1");
        for other in [
            vec![newer_a, b.clone()],
            vec![b.clone(), a.clone()],
            vec![a.clone()],
        ] {
            let body = packer.body(WriteOp::Heartbeat, &tasks(&other));
            assert!(!Rc::ptr_eq(&first, &body));
        }
        // Each kind keeps its own.
        let one = tasks(std::slice::from_ref(&a));
        let register = packer.body(WriteOp::Register, &one);
        let heartbeat = packer.body(WriteOp::Heartbeat, &one);
        assert!(Rc::ptr_eq(
            &heartbeat,
            &packer.body(WriteOp::Heartbeat, &tasks(&[a]))
        ));
        assert!(!Rc::ptr_eq(&register, &heartbeat));
    }
}
