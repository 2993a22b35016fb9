//! Registers an instance, discovers it, watches one change of it, unregisters and exits 0:
//!
//! ```text
//! cargo run -p artemis-client --example register_and_discover -- --server http://127.0.0.1:8080
//! ```
//!
//! `--region` and `--zone` (default `default`, the server's defaults) must be the server's.

use std::process::ExitCode;
use std::time::Duration;

use artemis_client::{ClientConfig, DiscoveryClient, Instance, RegistryClient, ServiceChange};
use futures_util::StreamExt;

const SERVICE: &str = "example.register-and-discover";

struct Args {
    server: String,
    region: String,
    zone: String,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        server: "http://127.0.0.1:8080".to_string(),
        region: "default".to_string(),
        zone: "default".to_string(),
    };
    let mut given = std::env::args().skip(1);
    while let Some(flag) = given.next() {
        let slot = match flag.as_str() {
            "--server" => &mut args.server,
            "--region" => &mut args.region,
            "--zone" => &mut args.zone,
            other => return Err(format!("unknown argument {other:?}")),
        };
        *slot = given.next().ok_or(format!("{flag} needs a value"))?;
    }
    Ok(args)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(why) => {
            eprintln!("{why}\nusage: register_and_discover [--server URL] [--region R] [--zone Z]");
            return ExitCode::from(2);
        }
    };
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(why) => {
            eprintln!("register_and_discover: {why}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let mut config = ClientConfig::new([args.server]);
    config.region_id = args.region;
    config.zone_id = args.zone;
    let registry = RegistryClient::new(config.clone())?;
    let discovery = DiscoveryClient::new(config)?;

    let instance_id = format!("example-{}", std::process::id());
    let mut instance = Instance::new(SERVICE, &instance_id, "http://127.0.0.1:9999/");
    registry.register([instance.clone()]).await?;
    println!("registered {SERVICE}/{instance_id}");

    let service = discovery.service(SERVICE).await?;
    if !service
        .instances()
        .iter()
        .any(|i| i.instance_id == instance_id)
    {
        return Err(format!("{SERVICE} does not list {instance_id}").into());
    }
    println!(
        "discovered {} instance(s) of {SERVICE}",
        service.instances().len()
    );

    // Change the instance (a register replaces it) and wait for the push.
    let mut changes = discovery.watch(SERVICE);
    instance.status = Some("up".to_string());
    let waiting = async {
        while let Some(change) = changes.next().await {
            if let ServiceChange::Updated { instance, .. } = change {
                if instance.instance_id == instance_id {
                    return Some(instance);
                }
            }
        }
        None
    };
    registry.register([instance]).await?;
    match tokio::time::timeout(Duration::from_secs(10), waiting).await {
        Ok(Some(changed)) => println!(
            "watched a change: {instance_id} is now {}",
            changed.status.as_deref().unwrap_or("?")
        ),
        _ => return Err("no change arrived within 10 s".into()),
    }

    registry.shutdown().await?;
    println!("unregistered {instance_id}");
    Ok(())
}
