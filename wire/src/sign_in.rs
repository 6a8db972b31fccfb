//! The gallery's one-time sign-in, between `hybridlab gallery` and the image server: the route
//! that mints a code (with the stack's token as `Authorization: Bearer`), its answer, and the
//! URL fragment the gallery's page reads the code from (`ec2-server/src/page.rs` spells the
//! same `#code=` in its script's pattern). A fragment is never sent to a server, so the code
//! reaches no server or proxy log; it works once, for a minute.

use serde::{Deserialize, Serialize};

/// The server's route that mints a code.
pub const SIGN_IN_CODES_PATH: &str = "/api/sign-in-codes";

/// What comes before the code in the gallery's URL.
pub const CODE_FRAGMENT: &str = "#code=";

/// What [`SIGN_IN_CODES_PATH`] answers. Its `Debug` does not show the code.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignInCode {
    /// URL-safe base64, without padding.
    pub code: String,
    /// Seconds it stays valid (rounded up).
    pub expires_in_seconds: u64,
}

impl SignInCode {
    /// `url` with the code in its fragment, which a browser never sends to a server.
    pub fn link(&self, url: &str) -> String {
        format!("{url}{CODE_FRAGMENT}{}", self.code)
    }
}

impl std::fmt::Debug for SignInCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignInCode")
            .field("code", &"(hidden)")
            .field("expires_in_seconds", &self.expires_in_seconds)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answer_round_trips_and_the_link_carries_the_code_only_in_its_fragment() {
        let code = SignInCode {
            code: "c0de_-".into(),
            expires_in_seconds: 60,
        };
        let text = serde_json::to_string(&code).expect("JSON");
        assert_eq!(text, r#"{"code":"c0de_-","expires_in_seconds":60}"#);
        assert_eq!(
            serde_json::from_str::<SignInCode>(&text).expect("back"),
            code
        );
        assert_eq!(
            code.link("https://198.51.100.7:8080/"),
            "https://198.51.100.7:8080/#code=c0de_-"
        );
        assert!(!format!("{code:?}").contains("c0de"));
    }
}
