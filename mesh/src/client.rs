//! The outbound HTTP client: every request it builds carries the propagated headers of the request
//! being served, and a timeout.

use std::time::Duration;

use crate::propagation::RequestContext;

#[derive(Debug, Clone)]
pub struct MeshClient {
    http: reqwest::Client,
    timeout: Duration,
}

impl MeshClient {
    pub(crate) fn new(timeout: Duration) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(timeout.min(Duration::from_secs(2)))
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .unwrap_or_default();
        Self { http, timeout }
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    pub fn post(&self, ctx: &RequestContext, url: &str) -> reqwest::RequestBuilder {
        self.request(ctx, reqwest::Method::POST, url)
    }

    pub fn get(&self, ctx: &RequestContext, url: &str) -> reqwest::RequestBuilder {
        self.request(ctx, reqwest::Method::GET, url)
    }

    pub fn request(
        &self,
        ctx: &RequestContext,
        method: reqwest::Method,
        url: &str,
    ) -> reqwest::RequestBuilder {
        let mut headers = http::HeaderMap::new();
        ctx.inject(&mut headers);
        self.http
            .request(method, url)
            .headers(headers)
            .timeout(self.timeout)
    }
}
