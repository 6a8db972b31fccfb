//! One-time sign-in codes: how `hybridlab gallery` signs a browser in without the stack's
//! token ever sitting in a URL (browser history, proxy and server logs) or on the command line
//! of the program that opens the browser.
//!
//! A caller holding the token (`Authorization: Bearer`, never the cookie) mints a code with
//! `POST /api/sign-in-codes`; the CLI opens `https://server/#code=...`; the page's script takes
//! the code out of the fragment (which browsers never send to a server) and posts it to
//! `/sign-in`, which exchanges it for the session cookie once. A code is 32 random bytes,
//! lives [`DEFAULT_TTL`] (60 s), works once, and is kept only as its SHA-256 digest, so a
//! memory dump or a log of the store shows nothing usable. At most [`MAX_OUTSTANDING`] are
//! kept: minting one more drops the oldest. The minter already holds the token, so there is
//! nothing to gain by minting many; dropping (rather than refusing with 503) means a script that
//! loops can never lock the student's own `hybridlab gallery` out for a minute.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::digest;
use ring::rand::{SecureRandom, SystemRandom};
use subtle::ConstantTimeEq;

/// Random bytes in a code: 256 bits, as many as the token's own 64 hex characters hold.
pub const CODE_BYTES: usize = 32;

/// How long a code is valid unless the server is told otherwise (`--sign-in-code-ttl-ms`):
/// long enough for a browser to start and load the page, short enough that a code copied from
/// a process list or a shell history is stale.
pub const DEFAULT_TTL: Duration = Duration::from_secs(60);

/// The longest lifetime the server accepts for a code: a code that lives long is the
/// token-in-the-URL again.
pub const MAX_TTL: Duration = Duration::from_secs(10 * 60);

/// Codes kept at once; minting one more drops the oldest.
pub const MAX_OUTSTANDING: usize = 16;

/// Why a code was not accepted. The page gives every case the same message, so it tells a
/// guesser nothing; the server's log names the case (never the code).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Never minted, already used, or dropped for newer ones.
    #[error("unknown, already used or superseded")]
    Unknown,
    /// Minted, but its lifetime is over.
    #[error("expired")]
    Expired,
}

/// The system's random source failed; no code was made.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the system's random number generator failed")]
pub struct RandomFailed;

/// A code waiting to be used: its digest and when it stops working.
#[derive(Debug)]
struct Outstanding {
    digest: [u8; 32],
    expires: Instant,
}

/// The codes minted and not yet used, in minting order.
#[derive(Debug)]
pub struct SignInCodes {
    ttl: Duration,
    capacity: usize,
    outstanding: Mutex<VecDeque<Outstanding>>,
    random: SystemRandom,
}

fn sha256(code: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, code.as_bytes()).as_ref());
    out
}

impl SignInCodes {
    /// A store whose codes live `ttl`, holding at most `capacity` (at least one).
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            ttl,
            capacity: capacity.max(1),
            outstanding: Mutex::new(VecDeque::with_capacity(capacity.max(1))),
            random: SystemRandom::new(),
        }
    }

    /// How long a code minted now is valid.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Codes minted and neither used nor dropped (expired ones included until the next mint).
    pub fn outstanding(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Outstanding>> {
        // The queue is consistent after every statement; a panic elsewhere cannot tear it.
        self.outstanding
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// A new code, valid from now for [`SignInCodes::ttl`].
    pub fn mint(&self) -> Result<String, RandomFailed> {
        self.mint_at(Instant::now())
    }

    /// [`SignInCodes::mint`] at `now` (tests choose the time).
    pub fn mint_at(&self, now: Instant) -> Result<String, RandomFailed> {
        let mut bytes = [0u8; CODE_BYTES];
        self.random.fill(&mut bytes).map_err(|_| RandomFailed)?;
        let code = URL_SAFE_NO_PAD.encode(bytes);
        let mut outstanding = self.lock();
        outstanding.retain(|entry| now < entry.expires);
        while outstanding.len() >= self.capacity {
            outstanding.pop_front();
        }
        outstanding.push_back(Outstanding {
            digest: sha256(&code),
            expires: now + self.ttl,
        });
        Ok(code)
    }

    /// Uses `code`: accepted once if it was minted here, is still valid and was not used or
    /// dropped; it is forgotten either way once found.
    pub fn redeem(&self, code: &str) -> Result<(), Refusal> {
        self.redeem_at(code, Instant::now())
    }

    /// [`SignInCodes::redeem`] at `now` (tests choose the time).
    pub fn redeem_at(&self, code: &str, now: Instant) -> Result<(), Refusal> {
        let presented = sha256(code.trim());
        let mut outstanding = self.lock();
        // Every digest is compared, in constant time, whatever matches: how long the search
        // takes says nothing about which stored code shares a prefix with the guess.
        let mut found = None;
        for (index, entry) in outstanding.iter().enumerate() {
            if bool::from(entry.digest.ct_eq(&presented)) {
                found = Some(index);
            }
        }
        let entry = found
            .and_then(|index| outstanding.remove(index))
            .ok_or(Refusal::Unknown)?;
        if now < entry.expires {
            Ok(())
        } else {
            Err(Refusal::Expired)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> SignInCodes {
        SignInCodes::new(DEFAULT_TTL, MAX_OUTSTANDING)
    }

    #[test]
    fn a_code_is_32_random_bytes_in_url_safe_base64() {
        let codes = store();
        let first = codes.mint().expect("a code");
        let second = codes.mint().expect("a code");
        assert_eq!(first.len(), 43, "{first}");
        assert_eq!(
            URL_SAFE_NO_PAD.decode(&first).expect("base64").len(),
            CODE_BYTES
        );
        assert!(
            first
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
            "{first}"
        );
        assert_ne!(first, second);
    }

    #[test]
    fn a_code_works_once() {
        let codes = store();
        let code = codes.mint().expect("a code");
        assert_eq!(codes.redeem(&code), Ok(()));
        assert_eq!(codes.redeem(&code), Err(Refusal::Unknown));
        assert_eq!(codes.outstanding(), 0);
    }

    #[test]
    fn a_wrong_code_is_refused_and_spends_nothing() {
        let codes = store();
        let code = codes.mint().expect("a code");
        let mut wrong = code.clone();
        wrong.pop();
        wrong.push(if code.ends_with('A') { 'B' } else { 'A' });
        for refused in [wrong.as_str(), "", "code", &code[..20]] {
            assert_eq!(codes.redeem(refused), Err(Refusal::Unknown), "{refused}");
        }
        assert_eq!(codes.redeem(&code), Ok(()), "the real one still works");
    }

    #[test]
    fn an_expired_code_is_refused() {
        let codes = store();
        let minted = Instant::now();
        let code = codes.mint_at(minted).expect("a code");
        let late = codes.mint_at(minted).expect("a code");
        assert_eq!(
            codes.redeem_at(&code, minted + DEFAULT_TTL),
            Err(Refusal::Expired),
            "valid for less than the TTL, not up to it"
        );
        assert_eq!(
            codes.redeem_at(&code, minted + Duration::from_secs(1)),
            Err(Refusal::Unknown),
            "and refused once seen expired"
        );
        assert_eq!(
            codes.redeem_at(&late, minted + DEFAULT_TTL - Duration::from_millis(1)),
            Ok(())
        );
    }

    #[test]
    fn expired_codes_are_forgotten_when_the_next_is_minted() {
        let codes = store();
        let minted = Instant::now();
        codes.mint_at(minted).expect("a code");
        codes.mint_at(minted).expect("a code");
        codes.mint_at(minted + DEFAULT_TTL).expect("a code");
        assert_eq!(codes.outstanding(), 1);
    }

    #[test]
    fn at_most_the_bound_is_kept_and_the_oldest_gives_way() {
        let codes = SignInCodes::new(DEFAULT_TTL, 3);
        let minted: Vec<String> = (0..5).map(|_| codes.mint().expect("a code")).collect();
        assert_eq!(codes.outstanding(), 3);
        assert_eq!(codes.redeem(&minted[0]), Err(Refusal::Unknown));
        assert_eq!(codes.redeem(&minted[1]), Err(Refusal::Unknown));
        for code in &minted[2..] {
            assert_eq!(codes.redeem(code), Ok(()), "the newest are kept");
        }
        assert_eq!(
            store().capacity,
            MAX_OUTSTANDING,
            "the server's bound is small"
        );
        assert_eq!(SignInCodes::new(DEFAULT_TTL, 0).capacity, 1);
    }

    #[test]
    fn only_the_digest_is_stored() {
        let codes = store();
        let code = codes.mint().expect("a code");
        let kept = format!("{codes:?}");
        assert!(!kept.contains(&code), "{kept}");
        let entry_digest = codes.lock()[0].digest;
        assert_eq!(entry_digest, sha256(&code));
        assert_ne!(
            &entry_digest[..],
            URL_SAFE_NO_PAD.decode(&code).expect("b64")
        );
    }
}
