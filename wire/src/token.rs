//! The bearer token the proxy function presents to the image server: the one rule the server
//! (at start-up), the function (at init) and `up` (when it keeps a token) all apply.

use std::fmt;

/// The fewest characters a token may have. `up` makes 64 hex characters (256 bits); the
/// CloudFormation export's `ServerToken` parameter asks for the same minimum. A token below it
/// could be guessed online against a server that the internet can reach.
pub const MIN_TOKEN_CHARS: usize = 32;

/// The environment variable that carries the token to the server and to the function.
pub const TOKEN_ENV: &str = "HYBRIDLAB_TOKEN";

/// Why a token is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    /// No token at all. There is no "no check" mode: a server the internet can reach without a
    /// token would process (and store, and bill for) anyone's images.
    Missing,
    /// An empty value, as `HYBRIDLAB_TOKEN=` gives.
    Empty,
    /// Fewer than [`MIN_TOKEN_CHARS`] characters.
    TooShort { chars: usize },
    /// Whitespace or control characters, which an HTTP header or an env file would mangle.
    NotPrintable,
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing => write!(
                f,
                "{TOKEN_ENV} is not set: the server needs a bearer token of at least \
                 {MIN_TOKEN_CHARS} characters (`openssl rand -hex 32` makes one)"
            ),
            Self::Empty => write!(
                f,
                "{TOKEN_ENV} is empty: an empty token would let anyone call the server; set at \
                 least {MIN_TOKEN_CHARS} characters (`openssl rand -hex 32` makes one)"
            ),
            Self::TooShort { chars } => write!(
                f,
                "{TOKEN_ENV} has {chars} characters, fewer than the {MIN_TOKEN_CHARS} required \
                 (`openssl rand -hex 32` makes one)"
            ),
            Self::NotPrintable => write!(
                f,
                "{TOKEN_ENV} contains whitespace or control characters; use printable ASCII \
                 (`openssl rand -hex 32` makes one)"
            ),
        }
    }
}

impl std::error::Error for TokenError {}

/// The token if it may be used: present, printable ASCII, at least [`MIN_TOKEN_CHARS`] long.
pub fn check_token(token: Option<&str>) -> Result<&str, TokenError> {
    let token = token.ok_or(TokenError::Missing)?;
    if token.is_empty() {
        return Err(TokenError::Empty);
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(TokenError::NotPrintable);
    }
    let chars = token.chars().count();
    if chars < MIN_TOKEN_CHARS {
        return Err(TokenError::TooShort { chars });
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_empty_short_and_unprintable_tokens_are_refused() {
        assert_eq!(check_token(None), Err(TokenError::Missing));
        assert_eq!(check_token(Some("")), Err(TokenError::Empty));
        assert_eq!(
            check_token(Some("s3cret")),
            Err(TokenError::TooShort { chars: 6 })
        );
        let spaced = format!("{} ", "a".repeat(MIN_TOKEN_CHARS));
        assert_eq!(check_token(Some(&spaced)), Err(TokenError::NotPrintable));
        let good = "a".repeat(MIN_TOKEN_CHARS);
        assert_eq!(check_token(Some(&good)), Ok(good.as_str()));
        // Every message names the variable and says how to make a good token.
        for err in [
            TokenError::Missing,
            TokenError::Empty,
            TokenError::TooShort { chars: 3 },
        ] {
            let text = err.to_string();
            assert!(
                text.contains(TOKEN_ENV) && text.contains("openssl rand"),
                "{text}"
            );
        }
    }
}
