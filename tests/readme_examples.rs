//! The README's curl examples, run as written against a real server.
//!
//! The `sh` block under "### Examples" is split into commands (a trailing `\` continues a line,
//! `#` lines are expected-output notes); each command runs in `bash` with the README's address
//! replaced by the test server's, must exit 0, and must get the reply the README promises.

mod common;

use std::process::Command;

use common::Server;

const README_ADDR: &str = "127.0.0.1:8080";

/// The commands of the README's "### Examples" block.
fn readme_commands() -> Vec<String> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = readme
        .split("### Examples")
        .nth(1)
        .expect("an Examples section");
    let block = section
        .split("```sh\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("a sh block");
    let mut commands = Vec::new();
    let mut current = String::new();
    for line in block
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        match line.strip_suffix('\\') {
            Some(part) => current.push_str(part),
            None => {
                current.push_str(line);
                commands.push(std::mem::take(&mut current));
            }
        }
    }
    commands
}

fn run(command: &str, server: &Server) -> String {
    let command = command.replace(README_ADDR, &server.addr.to_string());
    let output = Command::new("bash")
        .arg("-c")
        .arg(&command)
        .output()
        .expect("bash runs");
    assert!(output.status.success(), "`{command}` failed: {output:?}");
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn readme_examples_work_as_written() {
    let server = Server::start(&["--region", "default", "--zone", "default"]);
    let commands = readme_commands();
    assert!(commands.len() >= 8, "found {commands:?}");
    let success = r#""status":"success""#;
    for command in &commands {
        let out = run(command, &server);
        let path = command
            .split_whitespace()
            .find(|w| w.contains(README_ADDR))
            .unwrap_or_default();
        if path.contains("/metrics") {
            assert!(out.contains("artemis_active_instances"), "{out}");
        } else if path.contains("/health") {
            assert_eq!(out, r#"{"status":"up"}"#);
        } else {
            assert!(out.contains(success), "`{command}` answered {out}");
        }
        if path.contains("service.json") {
            assert!(
                out.contains(r#""instanceId":"10.0.0.1:8080""#),
                "`{command}` answered {out}"
            );
        }
    }
    // The last registry command unregistered the example instance.
    let after = server
        .get("/api/discovery/service.json?serviceId=demo.service&regionId=default")
        .json();
    assert!(after["service"]["instances"].is_null(), "{after}");
}
