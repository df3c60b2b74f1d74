//! A text form of an HTTP request for the `evaluate` target, close to HTTP/1.1 so that seeds
//! read like requests and mutations stay meaningful:
//!
//! ```text
//! POST /ofrep/v1/evaluate/flags?environment=production
//! Authorization: Bearer efk.production.0123456789abcdef0123456789abcdef
//!
//! {"context":{"targetingKey":"user-1"}}
//! ```
//!
//! The first line is the method and the target (path, then `?` and the query), the following
//! lines up to an empty one are `Name: value` headers, the rest is the body. Everything before
//! the body is read as UTF-8, invalid sequences replaced (the adapters only ever pass `&str`).

/// A request decoded from bytes; [`Request::http`] borrows it as the evaluation API's view.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    /// The method, e.g. `GET`.
    pub method: String,
    /// The path, still percent-encoded.
    pub path: String,
    /// The query without `?`.
    pub query: String,
    /// `(name, value)` pairs in order.
    pub headers: Vec<(String, String)>,
    /// The body bytes.
    pub body: Vec<u8>,
}

impl Request {
    /// Decodes the text form; every input is some request.
    #[must_use]
    pub fn decode(bytes: &[u8]) -> Self {
        let (head, body) = match find(bytes, b"\n\n") {
            Some(i) => (&bytes[..i], &bytes[i + 2..]),
            None => (bytes, &[][..]),
        };
        let head = String::from_utf8_lossy(head);
        let mut lines = head.split('\n');
        let line = lines.next().unwrap_or_default();
        let (method, target) = line.split_once(' ').unwrap_or((line, ""));
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let headers = lines
            .map(|line| {
                let (name, value) = line.split_once(':').unwrap_or((line, ""));
                (
                    name.to_owned(),
                    value.strip_prefix(' ').unwrap_or(value).to_owned(),
                )
            })
            .collect();
        Self {
            method: method.to_owned(),
            path: path.to_owned(),
            query: query.to_owned(),
            headers,
            body: body.to_vec(),
        }
    }

    /// The text form [`Request::decode`] reads back (for seeds).
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut out = format!("{} {}", self.method, self.path);
        if !self.query.is_empty() {
            out.push('?');
            out.push_str(&self.query);
        }
        for (name, value) in &self.headers {
            out.push('\n');
            out.push_str(name);
            out.push_str(": ");
            out.push_str(value);
        }
        out.push_str("\n\n");
        let mut out = out.into_bytes();
        out.extend_from_slice(&self.body);
        out
    }

    /// The evaluation API's view of this request.
    #[must_use]
    pub fn http(&self) -> evaluation_api::HttpRequest<'_> {
        evaluation_api::HttpRequest {
            method: &self.method,
            path: &self.path,
            query: &self.query,
            headers: evaluation_api::RequestHeaders::from_pairs(
                self.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())),
            ),
            body: &self.body,
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_reads_back_as_it_was_written() {
        let request = Request {
            method: "POST".into(),
            path: "/api/v1/flags/batch".into(),
            query: "environment=production".into(),
            headers: vec![("X-Client-Key".into(), "efk.production.00".into())],
            body: b"{\"flagKeys\":[\"a\"]}\n\nmore".to_vec(),
        };
        assert_eq!(Request::decode(&request.encode()), request);
    }

    #[test]
    fn any_bytes_are_some_request() {
        let request = Request::decode(b"GET /x\xff\n\n");
        assert_eq!(request.method, "GET");
        assert_eq!(request.path, "/x\u{fffd}");
        assert!(request.body.is_empty());
    }
}
