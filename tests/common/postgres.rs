//! PostgreSQL for the tests that name it: a fresh database per test on the server that
//! `ARTEMIS_TEST_POSTGRES` points at (CI installs and starts one), and a TCP proxy in front of it
//! that a test can cut to play a database that goes away.
//!
//! Without `ARTEMIS_TEST_POSTGRES` such a test is skipped with a note, except under CI (`CI`
//! set), where a missing database is a failure: there it must not pass by being skipped.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The variable naming a PostgreSQL server the tests may create databases on.
const SERVER_VAR: &str = "ARTEMIS_TEST_POSTGRES";

/// A database of its own for one test, dropped when the test ends.
pub(crate) struct TestDatabase {
    admin_url: String,
    name: String,
}

impl TestDatabase {
    /// A new empty database, or `None` (with a note) when no server is configured outside CI.
    pub(crate) fn create(test: &str) -> Option<TestDatabase> {
        let Ok(admin_url) = std::env::var(SERVER_VAR) else {
            if std::env::var_os("CI").is_some() {
                panic!("{test}: {SERVER_VAR} is not set; CI must provide a PostgreSQL server");
            }
            eprintln!("{test}: skipped, {SERVER_VAR} is not set");
            return None;
        };
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let name = format!(
            "artemis_test_{}_{}_{}",
            std::process::id(),
            nanos % 1_000_000_000,
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let mut admin = postgres::Client::connect(&admin_url, postgres::NoTls)
            .unwrap_or_else(|e| panic!("{test}: cannot reach {SERVER_VAR} ({admin_url}): {e}"));
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("the test database is created");
        Some(TestDatabase { admin_url, name })
    }

    /// The database's URL.
    pub(crate) fn url(&self) -> String {
        self.url_via(None)
    }

    /// The database's URL through `proxy` (its host and port replace the server's).
    pub(crate) fn url_via(&self, proxy: Option<SocketAddr>) -> String {
        let config: postgres::Config = self.admin_url.parse().expect("a valid URL");
        let user = config.get_user().unwrap_or("postgres");
        let password = config
            .get_password()
            .map(|p| format!(":{}", String::from_utf8_lossy(p)))
            .unwrap_or_default();
        let target = match proxy {
            Some(addr) => addr.to_string(),
            None => self.server().to_string(),
        };
        format!("postgres://{user}{password}@{target}/{}", self.name)
    }

    /// The server's address (TCP hosts only).
    pub(crate) fn server(&self) -> SocketAddr {
        let config: postgres::Config = self.admin_url.parse().expect("a valid URL");
        let host = match config.get_hosts().first() {
            Some(postgres::config::Host::Tcp(host)) => host.clone(),
            _ => "127.0.0.1".into(),
        };
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let host = if host == "localhost" {
            "127.0.0.1".into()
        } else {
            host
        };
        format!("{host}:{port}").parse().expect("a numeric host")
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Ok(mut admin) = postgres::Client::connect(&self.admin_url, postgres::NoTls) {
            let _ = admin.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

/// How long to wait for a change to reach another node: well above the notice path, well below
/// the periodic reload the tests turn off.
pub(crate) const ACROSS_NODES: Duration = Duration::from_secs(5);
