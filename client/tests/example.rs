//! `examples/register_and_discover.rs` against a real server exits 0. The example is built by
//! `cargo test` beside the tests (`target/<profile>/examples/`).

mod common;

use std::process::Command;

use common::{Server, REGION, ZONE};

#[test]
fn the_example_registers_discovers_watches_and_exits_0() {
    let server = Server::start(&[]);
    let exe = std::env::current_exe().unwrap();
    let example = exe
        .parent()
        .and_then(|deps| deps.parent())
        .unwrap()
        .join("examples/register_and_discover");
    assert!(
        example.exists(),
        "{} is missing: run the whole suite (`cargo test -p artemis-client`), which builds it",
        example.display()
    );
    let output = Command::new(example)
        .args([
            "--server",
            &server.url(),
            "--region",
            REGION,
            "--zone",
            ZONE,
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{:?}\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    for step in [
        "registered",
        "discovered",
        "watched a change",
        "unregistered",
    ] {
        assert!(stdout.contains(step), "{stdout}");
    }
}
