//! Which route of an HTTP API (API Gateway v2) a request takes, as API Gateway chooses it
//! (https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-routes.html):
//! a route of the request's method before `ANY`; among paths, the most specific (an exact
//! path, then one with `{parameters}`, then a greedy `{proxy+}`); `$default` when nothing
//! else matches.

use std::collections::BTreeMap;

/// A route's key: `$default`, or `METHOD /path` with `{param}` and a final `{greedy+}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteKey {
    Default,
    Route {
        /// `ANY`, or an upper-case method.
        method: String,
        segments: Vec<Segment>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Literal(String),
    Parameter(String),
    /// `{name+}`: the rest of the path, one or more segments.
    Greedy(String),
}

impl RouteKey {
    /// Reads a `routeKey`; `None` if it is not one API Gateway accepts.
    pub fn parse(key: &str) -> Option<Self> {
        if key == "$default" {
            return Some(RouteKey::Default);
        }
        let (method, path) = key.split_once(' ')?;
        let path = path.strip_prefix('/')?;
        let mut segments = Vec::new();
        let parts: Vec<&str> = if path.is_empty() {
            Vec::new()
        } else {
            path.split('/').collect()
        };
        for (index, part) in parts.iter().enumerate() {
            let segment = match part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                Some(name) => match name.strip_suffix('+') {
                    // A greedy parameter can only be last.
                    Some(name) if index + 1 == parts.len() => Segment::Greedy(name.to_owned()),
                    Some(_) => return None,
                    None => Segment::Parameter(name.to_owned()),
                },
                None => Segment::Literal((*part).to_owned()),
            };
            segments.push(segment);
        }
        Some(RouteKey::Route {
            method: method.to_ascii_uppercase(),
            segments,
        })
    }
}

/// How a route matched: its path parameters, and how specific the match is (higher wins).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matched {
    pub parameters: BTreeMap<String, String>,
    rank: (u8, usize, usize, u8),
}

/// Whether `key` matches `method` and `path` (`/a/b`, percent-decoded).
pub fn matches(key: &RouteKey, method: &str, path: &str) -> Option<Matched> {
    let RouteKey::Route {
        method: wanted,
        segments,
    } = key
    else {
        return Some(Matched {
            parameters: BTreeMap::new(),
            rank: (0, 0, 0, 0),
        });
    };
    let method_rank = if wanted == method {
        1
    } else if wanted == "ANY" {
        0
    } else {
        return None;
    };
    let parts: Vec<&str> = path
        .trim_start_matches('/')
        .split('/')
        .filter(|part| !part.is_empty())
        .collect();
    let mut parameters = BTreeMap::new();
    let mut literals = 0;
    let mut greedy = false;
    for (index, segment) in segments.iter().enumerate() {
        match segment {
            Segment::Literal(literal) => {
                if parts.get(index) != Some(&literal.as_str()) {
                    return None;
                }
                literals += 1;
            }
            Segment::Parameter(name) => {
                parameters.insert(name.clone(), (*parts.get(index)?).to_owned());
            }
            Segment::Greedy(name) => {
                let rest = parts.get(index..).filter(|rest| !rest.is_empty())?;
                parameters.insert(name.clone(), rest.join("/"));
                greedy = true;
            }
        }
    }
    if !greedy && parts.len() != segments.len() {
        return None;
    }
    Some(Matched {
        parameters,
        // Not `$default`; no greedy part; the most literal segments; the exact method.
        rank: (1, usize::from(!greedy), literals, method_rank),
    })
}

/// The route `method` and `path` take among `routes` (their keys, with a value each), and its
/// path parameters.
pub fn select<'a, T>(
    routes: &'a [(RouteKey, T)],
    method: &str,
    path: &str,
) -> Option<(&'a T, BTreeMap<String, String>)> {
    routes
        .iter()
        .filter_map(|(key, value)| matches(key, method, path).map(|matched| (matched, value)))
        .max_by(|a, b| a.0.rank.cmp(&b.0.rank))
        .map(|(matched, value)| (value, matched.parameters))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routes(keys: &[&str]) -> Vec<(RouteKey, String)> {
        keys.iter()
            .map(|key| {
                (
                    RouteKey::parse(key).expect("a route key"),
                    (*key).to_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn the_most_specific_route_wins_and_names_its_parameters() {
        let routes = routes(&[
            "$default",
            "ANY /jobs/{proxy+}",
            "GET /jobs/{id}",
            "GET /jobs/latest",
            "POST /jobs",
            "GET /jobs",
        ]);
        let chosen = |method: &str, path: &str| {
            select(&routes, method, path).map(|(key, parameters)| (key.clone(), parameters))
        };
        assert_eq!(
            chosen("GET", "/jobs/latest").map(|c| c.0),
            Some("GET /jobs/latest".into())
        );
        let (key, parameters) = chosen("GET", "/jobs/j-1").expect("a route");
        assert_eq!(key, "GET /jobs/{id}");
        assert_eq!(parameters.get("id").map(String::as_str), Some("j-1"));
        let (key, parameters) = chosen("DELETE", "/jobs/j-1/output").expect("a route");
        assert_eq!(key, "ANY /jobs/{proxy+}");
        assert_eq!(
            parameters.get("proxy").map(String::as_str),
            Some("j-1/output")
        );
        assert_eq!(
            chosen("POST", "/jobs").map(|c| c.0),
            Some("POST /jobs".into())
        );
        assert_eq!(chosen("PUT", "/jobs").map(|c| c.0), Some("$default".into()));
        assert_eq!(
            chosen("GET", "/other").map(|c| c.0),
            Some("$default".into())
        );
        assert!(select(&routes[2..], "GET", "/other").is_none());
    }

    #[test]
    fn malformed_route_keys_are_refused() {
        assert!(RouteKey::parse("GET jobs").is_none());
        assert!(RouteKey::parse("GET /{proxy+}/x").is_none());
        assert!(RouteKey::parse("/jobs").is_none());
        assert_eq!(
            RouteKey::parse("get /"),
            Some(RouteKey::Route {
                method: "GET".into(),
                segments: Vec::new()
            })
        );
    }
}
