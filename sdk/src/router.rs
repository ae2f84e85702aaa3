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
    method: &'static str,
    pattern: &'static str,
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

    /// A fresh instance serves each request and builds its router anew, so a route stores
    /// its method and pattern as given and matches them in place, without allocating.
    /// `method` is upper-case (`"GET"`).
    pub fn route(mut self, method: &'static str, pattern: &'static str, handler: impl Fn(&Request, &Params) -> Result<Response, Error> + 'static) -> Self {
        self.routes.push(Route { method, pattern, handler: Box::new(handler) });
        self
    }

    pub fn get(self, pattern: &'static str, handler: impl Fn(&Request, &Params) -> Result<Response, Error> + 'static) -> Self {
        self.route("GET", pattern, handler)
    }
    pub fn post(self, pattern: &'static str, handler: impl Fn(&Request, &Params) -> Result<Response, Error> + 'static) -> Self {
        self.route("POST", pattern, handler)
    }
    pub fn put(self, pattern: &'static str, handler: impl Fn(&Request, &Params) -> Result<Response, Error> + 'static) -> Self {
        self.route("PUT", pattern, handler)
    }
    pub fn delete(self, pattern: &'static str, handler: impl Fn(&Request, &Params) -> Result<Response, Error> + 'static) -> Self {
        self.route("DELETE", pattern, handler)
    }

    /// Run the matching route; 404 when no pattern matches, 405 when only the method is
    /// wrong, and a route's `Err` as a JSON error response.
    pub fn dispatch(&self, request: Request) -> Response {
        let path: Vec<&str> = split(&request.path).collect();
        let mut path_matched = false;
        for route in &self.routes {
            let Some(params) = match_path(route.pattern, &path) else { continue };
            path_matched = true;
            if route.method == request.method || (route.method == "GET" && request.method == "HEAD") {
                return (route.handler)(&request, &params).unwrap_or_else(Response::from);
            }
        }
        if path_matched {
            Error::new(crate::ErrorCode::InvalidArgument, format!("method {} not allowed on {}", request.method, request.path)).into_response_with_status(405)
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

fn match_path(pattern: &str, path: &[&str]) -> Option<Params> {
    let mut params = Vec::new();
    let mut segments = split(pattern);
    let mut i = 0;
    for segment in segments.by_ref() {
        if segment == "*" {
            params.push(("*".to_string(), path[i.min(path.len())..].join("/")));
            return Some(Params(params));
        }
        let actual = path.get(i)?;
        if let Some(name) = segment.strip_prefix(':') {
            params.push((name.to_string(), (*actual).to_string()));
        } else if segment != *actual {
            return None;
        }
        i += 1;
    }
    (i == path.len()).then_some(Params(params))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_literals_params_and_wildcards() {
        assert!(match_path("/", &[]).is_some());
        assert!(match_path("/", &["a"]).is_none());
        assert!(match_path("/a/b", &["a", "b"]).is_some());
        assert!(match_path("/a/b", &["a"]).is_none());
        assert!(match_path("/a", &["a", "b"]).is_none());
        let p = match_path("/items/:id", &["items", "42"]).unwrap();
        assert_eq!(p.get("id"), Some("42"));
        let p = match_path("/files/*", &["files", "x", "y.css"]).unwrap();
        assert_eq!(p.get("*"), Some("x/y.css"));
        assert_eq!(match_path("/files/*", &["files"]).unwrap().get("*"), Some(""));
        assert!(match_path("/files/*", &["other"]).is_none());
    }
}
