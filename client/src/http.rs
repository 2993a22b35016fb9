//! One HTTP exchange with one node: a JSON POST on a pooled keep-alive connection, the reply
//! read whole up to a size limit and ungzipped (the server gzips replies of 1 KiB or more when
//! asked, and discovery replies are large), all within the request timeout. hyper's pooled
//! client is the whole HTTP stack here: the registry speaks plain HTTP/1.1.

use std::io::Read;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{HeaderValue, ACCEPT_ENCODING, AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE};
use hyper::Request;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::config::ClientConfig;
use crate::error::Error;

/// A pooled connection is dropped after this long unused: well inside the server's 60 s idle
/// timeout, so a request never goes out on a connection the server is closing.
const POOL_IDLE: Duration = Duration::from_secs(30);

pub(crate) struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
    timeout: Duration,
    max_reply: usize,
    /// `Authorization: Bearer <token>` on every request, if any (the management token).
    authorization: Option<HeaderValue>,
}

/// A reply's status and its (decompressed) body.
pub(crate) struct HttpReply {
    pub(crate) status: u16,
    pub(crate) body: Vec<u8>,
}

impl Http {
    pub(crate) fn new(config: &ClientConfig) -> Http {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(config.connect_timeout));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(POOL_IDLE)
            .pool_max_idle_per_host(4)
            .build(connector);
        Http {
            client,
            timeout: config.request_timeout,
            max_reply: config.max_reply_bytes,
            authorization: None,
        }
    }

    /// Sends `token` as `Authorization: Bearer` from now on; a token that cannot be a header
    /// value is a configuration error.
    pub(crate) fn set_bearer(&mut self, token: &str) -> Result<(), Error> {
        let value = HeaderValue::try_from(format!("Bearer {token}"))
            .map_err(|_| Error::Config("the token is not a valid header value".into()))?;
        self.authorization = Some(value);
        Ok(())
    }

    /// `POST node path` with a JSON `body`.
    pub(crate) async fn post(
        &self,
        node: &str,
        path: &str,
        body: Bytes,
    ) -> Result<HttpReply, Error> {
        let transport = |reason: String| Error::Transport {
            node: node.to_string(),
            reason,
        };
        let mut request = Request::post(format!("{node}{path}"))
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT_ENCODING, "gzip");
        if let Some(authorization) = &self.authorization {
            request = request.header(AUTHORIZATION, authorization.clone());
        }
        let request = request
            .body(Full::new(body))
            .map_err(|e| transport(format!("bad request URL: {e}")))?;
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| transport(describe(&e)))?;
            let status = response.status().as_u16();
            let gzip = response
                .headers()
                .get(CONTENT_ENCODING)
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"));
            let body = Limited::new(response.into_body(), self.max_reply)
                .collect()
                .await
                .map_err(|e| transport(format!("reading the reply: {e}")))?
                .to_bytes();
            let body = if gzip {
                gunzip(&body, self.max_reply).map_err(transport)?
            } else {
                body.to_vec()
            };
            Ok(HttpReply { status, body })
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| Error::Timeout {
                node: node.to_string(),
                after: self.timeout,
            })?
    }
}

/// A gzip body, refused past `max` bytes decompressed.
fn gunzip(body: &[u8], max: usize) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(body)
        .take(max as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("a gzip reply that does not decompress: {e}"))?;
    if out.len() > max {
        return Err(format!("a reply over {max} bytes decompressed"));
    }
    Ok(out)
}

/// An error with its causes, which hyper keeps in the source chain ("client error (Connect):
/// tcp connect error: Connection refused").
pub(crate) fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::gunzip;

    #[test]
    fn gunzip_is_bounded() {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(&[b'x'; 4096]).unwrap();
        let gz = encoder.finish().unwrap();
        assert_eq!(gunzip(&gz, 4096).unwrap().len(), 4096);
        assert!(gunzip(&gz, 4095).is_err());
        assert!(gunzip(b"not gzip", 100).is_err());
    }
}
