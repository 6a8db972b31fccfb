//! Fetching the image a caller names, safely: http(s) only, every address checked after DNS
//! resolution (so a name cannot smuggle in a private address), every redirect target checked
//! again, at most three redirects, timeouts, and a size cap enforced on the bytes as they
//! arrive rather than on a Content-Length the remote side chooses.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::Url;

/// The most redirects a download follows.
pub const MAX_REDIRECTS: usize = 3;

/// Which destination addresses a download may reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressPolicy {
    /// Permit loopback, private and link-local addresses (the local sandbox). Instance-metadata
    /// addresses are refused either way: no image ever lives there.
    pub allow_private: bool,
}

impl AddressPolicy {
    /// Why `ip` may not be reached, or `None` when it may.
    pub fn refusal(self, ip: IpAddr) -> Option<&'static str> {
        let ip = canonical(ip);
        if is_instance_metadata(ip) {
            return Some("an instance-metadata address");
        }
        let class = classify(ip)?;
        if self.allow_private && class.private_kind {
            return None;
        }
        Some(class.reason)
    }
}

struct Refused {
    reason: &'static str,
    /// Loopback, private or link-local: allowed by `allow_private`.
    private_kind: bool,
}

/// Maps IPv4-mapped and NAT64-embedded IPv6 addresses to the IPv4 address they reach.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return IpAddr::V4(v4);
            }
            let segments = v6.segments();
            // 64:ff9b::/96, the well-known NAT64 prefix, embeds an IPv4 address.
            if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                let [a, b] = segments[6].to_be_bytes();
                let [c, d] = segments[7].to_be_bytes();
                return IpAddr::V4(Ipv4Addr::new(a, b, c, d));
            }
            IpAddr::V6(v6)
        }
        v4 => v4,
    }
}

fn is_instance_metadata(ip: IpAddr) -> bool {
    const EC2_METADATA_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254);
    match ip {
        IpAddr::V4(v4) => v4 == Ipv4Addr::new(169, 254, 169, 254),
        IpAddr::V6(v6) => v6 == EC2_METADATA_V6,
    }
}

fn classify(ip: IpAddr) -> Option<Refused> {
    let private = |reason| {
        Some(Refused {
            reason,
            private_kind: true,
        })
    };
    let never = |reason| {
        Some(Refused {
            reason,
            private_kind: false,
        })
    };
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            if v4.is_loopback() {
                private("a loopback address")
            } else if v4.is_private() || (a == 100 && (64..128).contains(&b)) {
                // 100.64.0.0/10 is carrier-grade NAT space: private in all but name.
                private("a private address")
            } else if v4.is_link_local() {
                private("a link-local address")
            } else if a == 0 {
                never("an unspecified address")
            } else if v4.is_broadcast() || v4.is_multicast() || a >= 240 {
                never("a broadcast, multicast or reserved address")
            } else if (a == 192 && b == 0 && c == 0) || (a == 198 && (18..20).contains(&b)) {
                never("a reserved address")
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            if v6.is_loopback() {
                private("a loopback address")
            } else if v6.is_unspecified() {
                never("an unspecified address")
            } else if first & 0xfe00 == 0xfc00 {
                private("a private (unique local) address")
            } else if first & 0xffc0 == 0xfe80 {
                private("a link-local address")
            } else if v6.is_multicast() {
                never("a multicast address")
            } else if first == 0x2002 {
                // 6to4 embeds an IPv4 address that could be anything; refuse rather than parse.
                never("a 6to4 address")
            } else {
                None
            }
        }
    }
}

/// Why a download failed; each maps to one of the server's error codes.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    #[error("{0}")]
    InvalidUrl(String),
    #[error("{host} resolves to {address}, {reason}, which this server does not fetch from")]
    Forbidden {
        host: String,
        address: IpAddr,
        reason: &'static str,
    },
    #[error("the image is larger than the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("the download did not finish within {0:?}")]
    Timeout(Duration),
    #[error("more than {MAX_REDIRECTS} redirects")]
    TooManyRedirects,
    #[error("the image host answered HTTP {0}")]
    Status(u16),
    #[error("the image host could not be reached: {0}")]
    Connect(String),
    #[error("the image host sent an empty body")]
    Empty,
}

/// Parses and checks an image URL: absolute, http or https, a host, no credentials.
pub fn parse_image_url(raw: &str) -> Result<Url, DownloadError> {
    let url = Url::parse(raw.trim())
        .map_err(|err| DownloadError::InvalidUrl(format!("`{raw}` is not a URL: {err}")))?;
    check_url_shape(&url)?;
    Ok(url)
}

fn check_url_shape(url: &Url) -> Result<(), DownloadError> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(DownloadError::InvalidUrl(format!(
            "only http and https URLs are fetched, not {}:",
            url.scheme()
        )));
    }
    if url.host().is_none() {
        return Err(DownloadError::InvalidUrl("the URL has no host".into()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(DownloadError::InvalidUrl(
            "URLs with credentials are not fetched".into(),
        ));
    }
    Ok(())
}

/// Checks a URL whose host is an IP literal, which never reaches the resolver.
fn check_literal_host(url: &Url, policy: AddressPolicy) -> Result<(), DownloadError> {
    let address = match url.host() {
        Some(url::Host::Ipv4(v4)) => IpAddr::V4(v4),
        Some(url::Host::Ipv6(v6)) => IpAddr::V6(v6),
        _ => return Ok(()),
    };
    match policy.refusal(address) {
        Some(reason) => Err(DownloadError::Forbidden {
            host: address.to_string(),
            address,
            reason,
        }),
        None => Ok(()),
    }
}

/// A DNS resolver that refuses a name if any of its addresses is forbidden. Because reqwest
/// connects to exactly the addresses this returns, a name cannot resolve one way for the check
/// and another way for the connection.
#[derive(Debug)]
struct GuardedResolver {
    policy: AddressPolicy,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addresses: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            for address in &addresses {
                if let Some(reason) = policy.refusal(address.ip()) {
                    return Err(Box::new(DownloadError::Forbidden {
                        host: host.clone(),
                        address: address.ip(),
                        reason,
                    })
                        as Box<dyn std::error::Error + Send + Sync>);
                }
            }
            Ok(Box::new(addresses.into_iter()) as Addrs)
        })
    }
}

/// An HTTP client for image downloads, built once and shared.
#[derive(Debug, Clone)]
pub struct Downloader {
    client: reqwest::Client,
    policy: AddressPolicy,
    max_bytes: u64,
    timeout: Duration,
}

impl Downloader {
    /// Builds the client; fails only if the TLS stack cannot be initialised.
    pub fn new(
        policy: AddressPolicy,
        max_bytes: u64,
        connect_timeout: Duration,
        timeout: Duration,
    ) -> Result<Self, reqwest::Error> {
        let redirect_policy = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() > MAX_REDIRECTS {
                return attempt.error(DownloadError::TooManyRedirects);
            }
            let next = attempt.url().clone();
            match check_url_shape(&next).and_then(|()| check_literal_host(&next, policy)) {
                Ok(()) => attempt.follow(),
                Err(err) => attempt.error(err),
            }
        });
        let client = reqwest::Client::builder()
            .user_agent(concat!("hybridlab-ec2-server/", env!("CARGO_PKG_VERSION")))
            .dns_resolver(Arc::new(GuardedResolver { policy }))
            // A proxy would resolve names itself and bypass the address checks.
            .no_proxy()
            .redirect(redirect_policy)
            .connect_timeout(connect_timeout)
            .timeout(timeout)
            .build()?;
        Ok(Self {
            client,
            policy,
            max_bytes,
            timeout,
        })
    }

    /// Downloads `url` into memory.
    pub async fn fetch(&self, url: &Url) -> Result<Bytes, DownloadError> {
        check_url_shape(url)?;
        check_literal_host(url, self.policy)?;
        let mut response = self
            .client
            .get(url.clone())
            .send()
            .await
            .map_err(|err| self.classify(err))?;
        let status = response.status();
        if !status.is_success() {
            return Err(DownloadError::Status(status.as_u16()));
        }
        if response
            .content_length()
            .is_some_and(|len| len > self.max_bytes)
        {
            return Err(DownloadError::TooLarge {
                limit: self.max_bytes,
            });
        }
        let capacity = response
            .content_length()
            .unwrap_or(64 * 1024)
            .min(self.max_bytes);
        let mut body = BytesMut::with_capacity(usize::try_from(capacity).unwrap_or(0));
        while let Some(chunk) = response.chunk().await.map_err(|err| self.classify(err))? {
            if body.len() as u64 + chunk.len() as u64 > self.max_bytes {
                return Err(DownloadError::TooLarge {
                    limit: self.max_bytes,
                });
            }
            body.extend_from_slice(&chunk);
        }
        if body.is_empty() {
            return Err(DownloadError::Empty);
        }
        Ok(body.freeze())
    }

    /// Turns a reqwest error into the reason a person can act on, finding our own errors
    /// (raised in the resolver or the redirect policy) inside its source chain.
    fn classify(&self, err: reqwest::Error) -> DownloadError {
        if err.is_timeout() {
            return DownloadError::Timeout(self.timeout);
        }
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&err);
        while let Some(current) = source {
            if let Some(own) = current.downcast_ref::<DownloadError>() {
                return match own {
                    DownloadError::Forbidden {
                        host,
                        address,
                        reason,
                    } => DownloadError::Forbidden {
                        host: host.clone(),
                        address: *address,
                        reason,
                    },
                    DownloadError::TooManyRedirects => DownloadError::TooManyRedirects,
                    DownloadError::InvalidUrl(message) => {
                        DownloadError::InvalidUrl(message.clone())
                    }
                    other => DownloadError::Connect(other.to_string()),
                };
            }
            if let Some(io) = current.downcast_ref::<std::io::Error>()
                && io.kind() == std::io::ErrorKind::TimedOut
            {
                return DownloadError::Timeout(self.timeout);
            }
            source = current.source();
        }
        if err.is_redirect() {
            return DownloadError::TooManyRedirects;
        }
        // The chain's innermost message is the useful one ("connection refused", "dns error").
        let mut innermost: &(dyn std::error::Error + 'static) = &err;
        while let Some(next) = innermost.source() {
            innermost = next;
        }
        DownloadError::Connect(innermost.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STRICT: AddressPolicy = AddressPolicy {
        allow_private: false,
    };
    const SANDBOX: AddressPolicy = AddressPolicy {
        allow_private: true,
    };

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("test addresses parse")
    }

    #[test]
    fn strict_policy_refuses_every_internal_range() {
        for address in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "::1",
            "::",
            "fd00:ec2::254",
            "fc00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a9fe:a9fe",
        ] {
            assert!(
                STRICT.refusal(ip(address)).is_some(),
                "{address} must be refused"
            );
        }
    }

    #[test]
    fn strict_policy_allows_public_addresses() {
        for address in [
            "93.184.216.34",
            "8.8.8.8",
            "2606:4700::1111",
            "::ffff:1.1.1.1",
        ] {
            assert_eq!(STRICT.refusal(ip(address)), None, "{address} is public");
        }
    }

    #[test]
    fn sandbox_policy_allows_loopback_but_never_metadata() {
        assert_eq!(SANDBOX.refusal(ip("127.0.0.1")), None);
        assert_eq!(SANDBOX.refusal(ip("10.0.0.5")), None);
        assert_eq!(SANDBOX.refusal(ip("::1")), None);
        assert!(SANDBOX.refusal(ip("169.254.169.254")).is_some());
        assert!(SANDBOX.refusal(ip("fd00:ec2::254")).is_some());
        assert!(SANDBOX.refusal(ip("::ffff:169.254.169.254")).is_some());
        assert!(SANDBOX.refusal(ip("0.0.0.0")).is_some());
    }

    #[test]
    fn image_urls_must_be_absolute_http_without_credentials() {
        assert!(parse_image_url("https://example.com/a.jpg").is_ok());
        for bad in [
            "not a url",
            "/relative/path.jpg",
            "ftp://example.com/a.jpg",
            "file:///etc/passwd",
            "http://user:secret@example.com/a.jpg",
            "data:image/png;base64,AAAA",
        ] {
            assert!(
                matches!(parse_image_url(bad), Err(DownloadError::InvalidUrl(_))),
                "{bad} must be invalid"
            );
        }
    }
}
