//! How AWS states a refusal in an XML body (S3, EC2, IAM, STS, and moto for the rest): the
//! `<Code>` and `<Message>` of an `<Error>` or `<ErrorResponse>`. The provisioner reads it where
//! the SDK did not, and the benchmark's signed invoker reads it from raw answers.

/// The `<Code>` and `<Message>` of an XML error body; `None` when it has no code.
pub fn xml_error(body: &[u8]) -> Option<(String, String)> {
    let text = std::str::from_utf8(body).ok()?;
    let element = |name: &str| {
        let open = format!("<{name}>");
        let start = text.find(&open)? + open.len();
        let end = start + text[start..].find(&format!("</{name}>"))?;
        Some(text[start..end].trim().to_owned())
    };
    let code = element("Code").filter(|code| !code.is_empty())?;
    Some((code, element("Message").unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_code_and_message_are_read_from_either_envelope() {
        let s3 =
            b"<?xml version=\"1.0\"?><Error><Code>AccessDenied</Code><Message>no</Message></Error>";
        assert_eq!(xml_error(s3), Some(("AccessDenied".into(), "no".into())));
        let sts = b"<ErrorResponse><Error><Code>ExpiredToken</Code></Error></ErrorResponse>";
        assert_eq!(xml_error(sts), Some(("ExpiredToken".into(), String::new())));
        assert_eq!(xml_error(b"<Error><Code></Code></Error>"), None);
        assert_eq!(xml_error(b"{\"message\":\"json\"}"), None);
    }
}
