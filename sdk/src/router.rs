//! A small router: `Router::new().get("/items/:id", show)`.
use crate::{Error, Request, Response};

/// Path parameters captured by `:name` segments.
#[derive(Debug, Default, Clone)]
pub struct Params(Vec<(String, String)>);

impl Params {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// A parameter that the route pattern guarantees; a missing one is a 400.
    pub fn require(&self, name: &str) -> Result<&str, Error> {
        self.get(name).ok_or_else(|| Error::invalid(format!("missing path parameter `{name}`")))
    }
}

pub type Handler = Box<dyn Fn(&Request, &Params) -> Result<Response, Error>>;

struct Route {
    method: String,
    segments: Vec<String>,
    handler: Handler,
}

#[derive(Default)]
pub struct Router {
    routes: Vec<Route>,
}

impl Router {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn route(mut self, method: &str, pattern: &str, handler: impl Fn(&Request, &Params) -> Result<Response, Error> + 'static) -> Self {
        self.routes.push(Route {
            method: method.to_ascii_uppercase(),
            segments: split(pattern).map(str::to_string).collect(),
            handler: Box::new(handler),
        });
        self
    }

    pub fn get(self, pattern: &str, handler: impl Fn(&Request, &Params) -> Result<Response, Error> + 'static) -> Self {
        self.route("GET", pattern, handler)
    }
    pub fn post(self, pattern: &str, handler: impl Fn(&Request, &Params) -> Result<Response, Error> + 'static) -> Self {
        self.route("POST", pattern, handler)
    }
    pub fn put(self, pattern: &str, handler: impl Fn(&Request, &Params) -> Result<Response, Error> + 'static) -> Self {
        self.route("PUT", pattern, handler)
    }
    pub fn delete(self, pattern: &str, handler: impl Fn(&Request, &Params) -> Result<Response, Error> + 'static) -> Self {
        self.route("DELETE", pattern, handler)
    }

    /// Run the matching route; 404 when no pattern matches, 405 when only the method is
    /// wrong, and a route's `Err` as a JSON error response.
    pub fn dispatch(&self, request: Request) -> Response {
        let path: Vec<&str> = split(&request.path).collect();
        let mut path_matched = false;
        for route in &self.routes {
            let Some(params) = match_path(&route.segments, &path) else { continue };
            path_matched = true;
            if route.method == request.method || (route.method == "GET" && request.method == "HEAD") {
                return (route.handler)(&request, &params).unwrap_or_else(Response::from);
            }
        }
        if path_matched {
            Error::new(crate::ErrorCode::InvalidArgument, format!("method {} not allowed on {}", request.method, request.path))
                .into_response_with_status(405)
        } else {
            Error::not_found(format!("no route for {} {}", request.method, request.path)).into()
        }
    }
}

impl Error {
    fn into_response_with_status(self, status: u16) -> Response {
        let mut response = Response::from(self);
        response.status = status;
        response
    }
}

fn split(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|s| !s.is_empty())
}

fn match_path(pattern: &[String], path: &[&str]) -> Option<Params> {
    let wildcard = pattern.last().is_some_and(|s| s == "*");
    if (!wildcard && pattern.len() != path.len()) || (wildcard && path.len() < pattern.len() - 1) {
        return None;
    }
    let mut params = Vec::new();
    for (i, segment) in pattern.iter().enumerate() {
        if segment == "*" {
            params.push(("*".to_string(), path[i..].join("/")));
            break;
        }
        let actual = path.get(i)?;
        if let Some(name) = segment.strip_prefix(':') {
            params.push((name.to_string(), (*actual).to_string()));
        } else if segment != actual {
            return None;
        }
    }
    Some(Params(params))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(p: &str) -> Vec<String> {
        split(p).map(str::to_string).collect()
    }

    #[test]
    fn matches_literals_params_and_wildcards() {
        assert!(match_path(&seg("/"), &[]).is_some());
        assert!(match_path(&seg("/a/b"), &["a", "b"]).is_some());
        assert!(match_path(&seg("/a/b"), &["a"]).is_none());
        let p = match_path(&seg("/items/:id"), &["items", "42"]).unwrap();
        assert_eq!(p.get("id"), Some("42"));
        let p = match_path(&seg("/files/*"), &["files", "x", "y.css"]).unwrap();
        assert_eq!(p.get("*"), Some("x/y.css"));
        assert!(match_path(&seg("/files/*"), &["other"]).is_none());
    }
}
