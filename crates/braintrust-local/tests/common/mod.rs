//! A small blocking HTTP client for talking to a `LocalServer` in tests.

#![allow(dead_code, unreachable_pub)]

use serde_json::Value;

/// A response: status and body (parsed as JSON when it is JSON).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub text: String,
}

/// A client bound to a base URL and an API key.
pub struct Http {
    agent: ureq::Agent,
    pub base: String,
    pub key: Option<String>,
}

impl Http {
    pub fn new(base: &str, key: Option<&str>) -> Http {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        Http {
            agent,
            base: base.trim_end_matches('/').to_owned(),
            key: key.map(str::to_owned),
        }
    }

    /// Sends `method path` with an optional raw body and extra headers.
    pub fn send(
        &self,
        method: &str,
        path_and_query: &str,
        body: Option<&[u8]>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let url = if path_and_query.starts_with("http") {
            path_and_query.to_owned()
        } else {
            format!("{}{path_and_query}", self.base)
        };
        let mut req = ureq::http::Request::builder().method(method).uri(&url);
        if let Some(key) = &self.key {
            req = req.header("Authorization", format!("Bearer {key}"));
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let result = match body {
            Some(bytes) => self.agent.run(req.body(bytes.to_vec()).expect("request")),
            None => self.agent.run(req.body(()).expect("request")),
        };
        let mut resp = result.unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply { status, body, text }
    }

    /// `GET` of an absolute URL without credentials; the raw body of a 200 answer.
    #[allow(dead_code)]
    pub fn get_bytes(&self, url: &str) -> Vec<u8> {
        let mut resp = self
            .agent
            .get(url)
            .call()
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        assert_eq!(resp.status().as_u16(), 200, "GET {url}");
        resp.body_mut()
            .with_config()
            .limit(u64::MAX)
            .read_to_vec()
            .unwrap()
    }

    pub fn get(&self, path: &str) -> Reply {
        self.send("GET", path, None, &[])
    }

    pub fn post(&self, path: &str, body: &Value) -> Reply {
        self.send(
            "POST",
            path,
            Some(body.to_string().as_bytes()),
            &[("Content-Type", "application/json")],
        )
    }

    pub fn post_raw(&self, path: &str, body: &[u8]) -> Reply {
        self.send("POST", path, Some(body), &[])
    }
}

/// Asserts a 2xx status, showing the body otherwise.
#[track_caller]
pub fn ok(reply: Reply) -> Value {
    assert!(
        (200..300).contains(&reply.status),
        "status {}: {}",
        reply.status,
        reply.text
    );
    reply.body
}
