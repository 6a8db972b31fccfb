//! Payload format 2.0 of an HTTP API's Lambda proxy integration: the event API Gateway sends
//! the function, and the HTTP response it makes of the function's answer
//! (https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-integrations-lambda.html).

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

/// What API Gateway knows of a request when it builds the event.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub account: &'a str,
    pub api_id: &'a str,
    pub stage: &'a str,
    pub route_key: &'a str,
    pub method: &'a str,
    /// The path as the client sent it after the stage (for `$default`, the whole path).
    pub raw_path: &'a str,
    pub raw_query: &'a str,
    /// Header names lower-cased, in order; repeated names are joined with commas.
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
    pub path_parameters: &'a BTreeMap<String, String>,
    pub stage_variables: &'a Map<String, Value>,
    pub source_ip: &'a str,
    pub request_id: &'a str,
    pub time_epoch_ms: i64,
    pub domain: &'a str,
}

/// The 2.0 event.
pub fn event(request: &Request<'_>) -> Value {
    let mut headers: Map<String, Value> = Map::new();
    let mut cookies: Vec<String> = Vec::new();
    for (name, value) in request.headers {
        let name = name.to_ascii_lowercase();
        if name == "cookie" {
            cookies.extend(
                value
                    .split(';')
                    .map(|c| c.trim().to_owned())
                    .filter(|c| !c.is_empty()),
            );
            continue;
        }
        match headers.get_mut(&name) {
            Some(Value::String(existing)) => {
                existing.push(',');
                existing.push_str(value);
            }
            _ => {
                headers.insert(name, Value::from(value.as_str()));
            }
        }
    }
    let mut query: Map<String, Value> = Map::new();
    for (name, value) in url::form_urlencoded::parse(request.raw_query.as_bytes()) {
        match query.get_mut(name.as_ref()) {
            Some(Value::String(existing)) => {
                existing.push(',');
                existing.push_str(&value);
            }
            _ => {
                query.insert(name.into_owned(), Value::from(value.into_owned()));
            }
        }
    }
    // Text stays text; anything else goes base64-encoded, as API Gateway sends binary.
    let (body, encoded) = match std::str::from_utf8(request.body) {
        Ok(text) => (Value::from(text), false),
        Err(_) => (Value::from(STANDARD.encode(request.body)), true),
    };
    let time = common_log_time(request.time_epoch_ms);
    let mut event = json!({
        "version": "2.0",
        "routeKey": request.route_key,
        "rawPath": request.raw_path,
        "rawQueryString": request.raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": request.account,
            "apiId": request.api_id,
            "domainName": request.domain,
            "domainPrefix": request.api_id,
            "http": {
                "method": request.method,
                "path": request.raw_path,
                "protocol": "HTTP/1.1",
                "sourceIp": request.source_ip,
                "userAgent": request.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case("user-agent")).map(|(_, v)| v.as_str()).unwrap_or(""),
            },
            "requestId": request.request_id,
            "routeKey": request.route_key,
            "stage": request.stage,
            "time": time,
            "timeEpoch": request.time_epoch_ms,
        },
        "isBase64Encoded": encoded,
    });
    if !cookies.is_empty() {
        event["cookies"] = json!(cookies);
    }
    if !query.is_empty() {
        event["queryStringParameters"] = Value::Object(query);
    }
    if !request.path_parameters.is_empty() {
        event["pathParameters"] = json!(request.path_parameters);
    }
    if !request.stage_variables.is_empty() {
        event["stageVariables"] = Value::Object(request.stage_variables.clone());
    }
    if !request.body.is_empty() {
        event["body"] = body;
    }
    event
}

/// `12/Mar/2020:19:03:58 +0000`, the request time's format in the event.
fn common_log_time(epoch_ms: i64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    time::OffsetDateTime::from_unix_timestamp(epoch_ms.div_euclid(1000))
        .map(|at| {
            format!(
                "{:02}/{}/{}:{:02}:{:02}:{:02} +0000",
                at.day(),
                MONTHS[usize::from(u8::from(at.month())) - 1],
                at.year(),
                at.hour(),
                at.minute(),
                at.second()
            )
        })
        .unwrap_or_default()
}

/// The HTTP response API Gateway makes of a function's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// API Gateway's answer when the integration fails (an error, a malformed answer, no
    /// permission to invoke).
    pub fn internal_error() -> Self {
        Self::message(500, "Internal Server Error")
    }

    pub fn message(status: u16, message: &str) -> Self {
        Self {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: json!({"message": message}).to_string().into_bytes(),
        }
    }
}

/// The response for the function's `payload`: a `{"statusCode": ...}` object as it says,
/// anything else as a 200 JSON body (format 2.0's inference).
pub fn response(payload: &[u8]) -> Response {
    let Ok(value) = serde_json::from_slice::<Value>(payload) else {
        return Response::internal_error();
    };
    let Some(answer) = value
        .as_object()
        .filter(|object| object.contains_key("statusCode"))
    else {
        return Response {
            status: 200,
            headers: vec![("content-type".into(), "application/json".into())],
            body: value.to_string().into_bytes(),
        };
    };
    let Some(status) = answer["statusCode"]
        .as_u64()
        .and_then(|code| u16::try_from(code).ok())
        .filter(|code| (100..600).contains(code))
    else {
        return Response::internal_error();
    };
    let mut headers: Vec<(String, String)> = answer
        .get("headers")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(name, value)| {
            let value = value
                .as_str()
                .map_or_else(|| value.to_string(), str::to_owned);
            (name.clone(), value)
        })
        .collect();
    for cookie in answer
        .get("cookies")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(cookie) = cookie.as_str() {
            headers.push(("set-cookie".into(), cookie.to_owned()));
        }
    }
    let text = match answer.get("body") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(text)) => text.clone(),
        Some(other) => other.to_string(),
    };
    let body = if answer.get("isBase64Encoded").and_then(Value::as_bool) == Some(true) {
        match STANDARD.decode(text.as_bytes()) {
            Ok(bytes) => bytes,
            Err(_) => return Response::internal_error(),
        }
    } else {
        text.into_bytes()
    };
    if !headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("content-type"))
    {
        headers.push(("content-type".into(), "application/json".into()));
    }
    Response {
        status,
        headers,
        body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_event_has_format_2_0s_fields() {
        let headers = vec![
            ("Content-Type".to_owned(), "application/json".to_owned()),
            ("X-Multi".to_owned(), "a".to_owned()),
            ("x-multi".to_owned(), "b".to_owned()),
            ("Cookie".to_owned(), "s=1; t=2".to_owned()),
        ];
        let parameters = BTreeMap::from([("id".to_owned(), "j-1".to_owned())]);
        let request = Request {
            account: "123456789012",
            api_id: "abc123",
            stage: "$default",
            route_key: "GET /jobs/{id}",
            method: "GET",
            raw_path: "/jobs/j-1",
            raw_query: "a=1&a=2&b=x%20y",
            headers: &headers,
            body: b"",
            path_parameters: &parameters,
            stage_variables: &Map::new(),
            source_ip: "127.0.0.1",
            request_id: "r-1",
            time_epoch_ms: 1_583_348_638_390,
            domain: "127.0.0.1:4566",
        };
        let event = event(&request);
        assert_eq!(event["version"], "2.0");
        assert_eq!(event["routeKey"], "GET /jobs/{id}");
        assert_eq!(event["headers"]["x-multi"], "a,b");
        assert_eq!(event["cookies"], json!(["s=1", "t=2"]));
        assert_eq!(
            event["queryStringParameters"],
            json!({"a": "1,2", "b": "x y"})
        );
        assert_eq!(event["pathParameters"]["id"], "j-1");
        assert_eq!(event["requestContext"]["http"]["method"], "GET");
        assert_eq!(
            event["requestContext"]["time"],
            "04/Mar/2020:19:03:58 +0000"
        );
        assert_eq!(event["isBase64Encoded"], false);
        assert!(event.get("body").is_none());
        let binary = Request {
            body: &[0xff, 0xfe],
            ..request
        };
        let event = super::event(&binary);
        assert_eq!(event["isBase64Encoded"], true);
        assert_eq!(event["body"], "//4=");
    }

    #[test]
    fn a_functions_answer_becomes_the_response() {
        let answer = response(br#"{"statusCode": 201, "headers": {"location": "/jobs/j-1"}, "cookies": ["s=1"], "body": "{\"id\":\"j-1\"}"}"#);
        assert_eq!(answer.status, 201);
        assert!(
            answer
                .headers
                .contains(&("location".into(), "/jobs/j-1".into()))
        );
        assert!(
            answer
                .headers
                .contains(&("set-cookie".into(), "s=1".into()))
        );
        assert_eq!(answer.body, br#"{"id":"j-1"}"#);
        // Without statusCode, the answer is the body of a 200.
        let inferred = response(br#"{"jobs": []}"#);
        assert_eq!(
            (inferred.status, inferred.body.as_slice()),
            (200, br#"{"jobs":[]}"#.as_slice())
        );
        let binary = response(br#"{"statusCode": 200, "isBase64Encoded": true, "body": "//4="}"#);
        assert_eq!(binary.body, vec![0xff, 0xfe]);
        assert_eq!(response(b"not json").status, 500);
        assert_eq!(response(br#"{"statusCode": 42}"#).status, 500);
    }
}
