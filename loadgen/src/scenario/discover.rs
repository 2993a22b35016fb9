//! Discovery requests: `service.json` by POST or GET, or `lookup.json` for `batch` services,
//! the service chosen uniformly or by Zipf popularity.

use super::{endpoint, Workload};
use crate::body::Population;
use crate::op::Op;
use crate::request::{Endpoint, Headers};
use crate::zipf::Zipf;
use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum DiscoveryApi {
    /// `POST /api/discovery/service.json`
    Post,
    /// `GET /api/discovery/service.json?serviceId=..`
    Get,
    /// `POST /api/discovery/lookup.json`
    Lookup,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Popularity {
    Uniform,
    /// Service `k` (by rank) is asked for in proportion to `1 / (k + 1)^exponent`.
    Zipf {
        exponent: f64,
    },
}

pub(super) struct Discover {
    api: DiscoveryApi,
    endpoint: Endpoint,
    population: Population,
    zipf: Option<Zipf>,
    rng: fastrand::Rng,
    /// Services per lookup request.
    batch: u64,
    payload: Vec<u8>,
}

impl Discover {
    pub(super) fn new(
        api: DiscoveryApi,
        popularity: Popularity,
        batch: u64,
        population: Population,
        rng: fastrand::Rng,
    ) -> Discover {
        let endpoint = match api {
            DiscoveryApi::Post => endpoint(Op::Discover),
            DiscoveryApi::Get => Endpoint::get("/api/discovery/service.json"),
            DiscoveryApi::Lookup => Endpoint::post("/api/discovery/lookup.json"),
        };
        let zipf = match popularity {
            Popularity::Uniform => None,
            Popularity::Zipf { exponent } => Some(Zipf::new(population.services(), exponent)),
        };
        Discover {
            api,
            endpoint,
            population,
            zipf,
            rng,
            batch,
            payload: Vec::new(),
        }
    }
}

impl Workload for Discover {
    fn next(&mut self, headers: &Headers, out: &mut Vec<u8>) -> Option<Op> {
        let Discover {
            api,
            endpoint,
            population,
            zipf,
            rng,
            batch,
            payload,
        } = self;
        let mut choose = || match zipf {
            None => rng.u64(0..population.services()),
            Some(z) => z.sample(rng.f64()),
        };
        payload.clear();
        match api {
            DiscoveryApi::Post => population.write_get_service(choose(), payload),
            DiscoveryApi::Get => population.write_service_query(choose(), payload),
            DiscoveryApi::Lookup => population.write_lookup((0..*batch).map(|_| choose()), payload),
        }
        endpoint.write(headers, payload, out);
        Some(Op::Discover)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn discover(api: DiscoveryApi, popularity: Popularity) -> Discover {
        Discover::new(
            api,
            popularity,
            3,
            Population::new("default", "default", 1000),
            fastrand::Rng::with_seed(1),
        )
    }

    fn request(d: &mut Discover) -> String {
        let mut out = vec![];
        assert_eq!(
            d.next(&Headers::new("h", false), &mut out),
            Some(Op::Discover)
        );
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn each_api_has_its_request() {
        let post = request(&mut discover(DiscoveryApi::Post, Popularity::Uniform));
        assert!(post.starts_with("POST /api/discovery/service.json HTTP/1.1\r\n"));
        assert!(
            post.contains("{\"discoveryConfig\":{\"serviceId\":\"framework.soa.loadgen.v1.service")
        );
        let get = request(&mut discover(DiscoveryApi::Get, Popularity::Uniform));
        assert!(get.starts_with("GET /api/discovery/service.json?serviceId=framework.soa."));
        assert!(get.contains("&regionId=default&zoneId=default HTTP/1.1\r\n"));
        let lookup = request(&mut discover(DiscoveryApi::Lookup, Popularity::Uniform));
        assert!(lookup.starts_with("POST /api/discovery/lookup.json HTTP/1.1\r\n"));
        assert_eq!(lookup.matches("\"serviceId\"").count(), 3);
    }

    #[test]
    fn zipf_favours_the_first_services() {
        let mut d = discover(DiscoveryApi::Post, Popularity::Zipf { exponent: 1.0 });
        let hits = (0..1000)
            .filter(|_| request(&mut d).contains("\"framework.soa.loadgen.v1.service0\""))
            .count();
        // Rank 0 of 1000 at exponent 1 gets 1/H(1000) ≈ 13 % of requests.
        assert!((90..180).contains(&hits), "{hits}");
    }
}
