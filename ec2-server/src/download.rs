//! Fetching the image a caller names, safely: http(s) only, every address checked after DNS
//! resolution (so a name cannot smuggle in a private address), every redirect target checked
//! again, at most three redirects, timeouts, and a size cap enforced on the bytes as they
//! arrive rather than on a Content-Length the remote side chooses.
//!
//! The body is read into memory reserved from the download budget (`budget.rs`), its
//! Content-Length up front or a chunk at a time, and that memory is held for as long as the
//! image's bytes live.
//!
//! A caller must not be able to use the server as a port scanner: every failure before a host
//! has answered with an HTTP response (refused, timed out, reset, no such name, not HTTP) is
//! the one [`DownloadError::Connect`], whose message says only that; what happened is in the
//! server's log.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::Url;

use crate::budget::DownloadBudget;

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

/// Maps the IPv6 addresses that carry an IPv4 address in their last 32 bits to the IPv4
/// address they reach: IPv4-mapped `::ffff:0:0/96`, IPv4-translated `::ffff:0:0:0/96`
/// (RFC 2765), the deprecated IPv4-compatible `::/96` (RFC 4291 2.5.5.1; a host that still
/// routes them reaches the IPv4 address) and the well-known NAT64 prefix `64:ff9b::/96`
/// (RFC 6052), through which a NAT64 gateway reaches that IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return IpAddr::V4(v4);
            }
            let segments = v6.segments();
            let embedded = || {
                let [a, b] = segments[6].to_be_bytes();
                let [c, d] = segments[7].to_be_bytes();
                IpAddr::V4(Ipv4Addr::new(a, b, c, d))
            };
            // `::` and `::1` are IPv6's own unspecified and loopback addresses, not
            // IPv4-compatible ones.
            let compatible = segments[..6] == [0; 6] && !v6.is_unspecified() && !v6.is_loopback();
            let translated = segments[..6] == [0, 0, 0, 0, 0xffff, 0];
            let nat64 = segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0];
            if compatible || translated || nat64 {
                return embedded();
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
            } else if first == 0x2001 && v6.segments()[1] == 0 {
                // Teredo (2001::/32, RFC 4380) embeds a server and an obfuscated client IPv4
                // address, and a relay delivers to the client's: refused rather than decoded,
                // as no image host is reached through Teredo.
                never("a Teredo address")
            } else if first == 0x64 && v6.segments()[1] == 0xff9b && v6.segments()[2] == 1 {
                // 64:ff9b:1::/48 (RFC 8215) is NAT64 for a network's own use, where the IPv4
                // address may sit anywhere after the prefix and is local by definition.
                never("a local-use NAT64 address")
            } else if first == 0x64 && v6.segments()[1] == 0xff9b {
                // The rest of 64:ff9b::/32 is neither the well-known prefix (mapped to IPv4
                // by `canonical`) nor allocated.
                never("a reserved NAT64 address")
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
    /// The host answered, but its body did not arrive in time.
    #[error("the download did not finish within {0:?}")]
    Timeout(Duration),
    #[error("more than {MAX_REDIRECTS} redirects")]
    TooManyRedirects,
    #[error("the image host answered HTTP {0}")]
    Status(u16),
    /// Every failure to get an HTTP answer: the field is the detail for the server's log, and
    /// is never shown to the caller, to whom refused, timed-out and reset connections (open,
    /// closed and filtered ports) must look alike.
    #[error("could not connect to the image host")]
    Connect(String),
    #[error("the image host sent an empty body")]
    Empty,
    /// The downloads and uploads in flight hold the server's memory for them, and not enough
    /// of it freed up in time.
    #[error(
        "the server's downloads and uploads hold their memory budget of {} MiB: this image \
         needs {} MiB more, which did not free up within {} ms; retry shortly",
        budget_bytes / (1024 * 1024),
        needed_bytes.div_ceil(1024 * 1024),
        waited.as_millis()
    )]
    Busy {
        needed_bytes: u64,
        budget_bytes: u64,
        waited: Duration,
    },
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
    memory: Arc<DownloadBudget>,
}

impl Downloader {
    /// Builds the client; fails only if the TLS stack cannot be initialised. The bodies
    /// downloaded hold their memory in `memory`.
    pub(crate) fn new(
        policy: AddressPolicy,
        max_bytes: u64,
        connect_timeout: Duration,
        timeout: Duration,
        memory: Arc<DownloadBudget>,
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
            memory,
        })
    }

    /// Downloads `url` into memory reserved from the download budget; the reservation lasts
    /// as long as the [`Bytes`] returned (and their clones).
    pub async fn fetch(&self, url: &Url) -> Result<Bytes, DownloadError> {
        check_url_shape(url)?;
        check_literal_host(url, self.policy)?;
        let mut response = self
            .client
            .get(url.clone())
            .send()
            .await
            .map_err(|err| self.before_answer(url, err))?;
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
        // The buffer's capacity is what the reservation covers: the declared length up front,
        // else grown a chunk at a time (never doubled, as a growing buffer would be).
        let mut memory = self.memory.reserve();
        let declared = response.content_length().unwrap_or(0);
        memory.grow_to(declared).await?;
        let mut body: Vec<u8> = Vec::with_capacity(usize::try_from(declared).unwrap_or(0));
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|err| self.during_body(url, err))?
        {
            if body.len() as u64 + chunk.len() as u64 > self.max_bytes {
                return Err(DownloadError::TooLarge {
                    limit: self.max_bytes,
                });
            }
            memory
                .make_room(&mut body, chunk.len(), self.max_bytes)
                .await?;
            body.extend_from_slice(&chunk);
        }
        if body.is_empty() {
            return Err(DownloadError::Empty);
        }
        Ok(memory.hold(body))
    }

    /// The error of a request that got no HTTP answer. Our own refusals (raised in the
    /// resolver or the redirect policy) are found in reqwest's source chain and kept, since
    /// they say what the caller did wrong; everything else is one [`DownloadError::Connect`],
    /// its cause logged here.
    fn before_answer(&self, url: &Url, err: reqwest::Error) -> DownloadError {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&err);
        while let Some(current) = source {
            if let Some(own) = current.downcast_ref::<DownloadError>() {
                match own {
                    DownloadError::Forbidden {
                        host,
                        address,
                        reason,
                    } => {
                        return DownloadError::Forbidden {
                            host: host.clone(),
                            address: *address,
                            reason,
                        };
                    }
                    DownloadError::TooManyRedirects => return DownloadError::TooManyRedirects,
                    DownloadError::InvalidUrl(message) => {
                        return DownloadError::InvalidUrl(message.clone());
                    }
                    _ => {}
                }
            }
            source = current.source();
        }
        if err.is_redirect() {
            return DownloadError::TooManyRedirects;
        }
        unreachable_host(url, &err)
    }

    /// The error of a body that stopped arriving: the host answered, so saying it was slow
    /// tells the caller nothing a status code did not.
    fn during_body(&self, url: &Url, err: reqwest::Error) -> DownloadError {
        let timed_out = err.is_timeout()
            || chain(&err).any(|current| {
                current
                    .downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
            });
        if timed_out {
            return DownloadError::Timeout(self.timeout);
        }
        unreachable_host(url, &err)
    }
}

/// `err` and its sources, outermost first.
fn chain<'a>(
    err: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(Some(err), |current| current.source())
}

/// Logs why `url`'s host gave no answer and returns the error the caller sees, which says
/// nothing of it.
fn unreachable_host(url: &Url, err: &reqwest::Error) -> DownloadError {
    // The chain's innermost message is the useful one ("connection refused", "dns error").
    let detail = chain(err)
        .last()
        .map_or_else(|| err.to_string(), ToString::to_string);
    tracing::warn!(
        host = url.host_str().unwrap_or(""),
        port = url.port_or_known_default().unwrap_or(0),
        timeout = err.is_timeout(),
        detail = %detail,
        "the image host could not be reached"
    );
    DownloadError::Connect(detail)
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
    fn ipv6_forms_that_embed_an_ipv4_address_are_judged_by_it() {
        for (address, embedded) in [
            // IPv4-compatible ::/96
            ("::127.0.0.1", "127.0.0.1"),
            ("::a9fe:a9fe", "169.254.169.254"),
            ("::10.0.0.1", "10.0.0.1"),
            // IPv4-translated ::ffff:0:0:0/96
            ("::ffff:0:127.0.0.1", "127.0.0.1"),
            // the well-known NAT64 prefix 64:ff9b::/96
            ("64:ff9b::127.0.0.1", "127.0.0.1"),
            ("64:ff9b::192.168.0.1", "192.168.0.1"),
            ("64:ff9b::a9fe:a9fe", "169.254.169.254"),
        ] {
            assert_eq!(
                STRICT.refusal(ip(address)),
                STRICT.refusal(ip(embedded)),
                "{address} is judged as {embedded}"
            );
            assert!(STRICT.refusal(ip(address)).is_some(), "{address}");
        }
        // The metadata address stays refused in the sandbox, whatever its form.
        for address in ["::a9fe:a9fe", "64:ff9b::a9fe:a9fe", "::ffff:0:a9fe:a9fe"] {
            assert_eq!(
                SANDBOX.refusal(ip(address)),
                Some("an instance-metadata address"),
                "{address}"
            );
        }
        // A public IPv4 address behind these prefixes is as public as itself.
        for address in ["::8.8.8.8", "64:ff9b::8.8.8.8", "::ffff:0:8.8.8.8"] {
            assert_eq!(STRICT.refusal(ip(address)), None, "{address}");
        }
        // `::1` and `::` keep their IPv6 meaning.
        assert_eq!(STRICT.refusal(ip("::1")), Some("a loopback address"));
        assert_eq!(SANDBOX.refusal(ip("::1")), None);
        assert_eq!(STRICT.refusal(ip("::")), Some("an unspecified address"));
    }

    #[test]
    fn tunnelling_and_local_nat64_ranges_are_refused_outright() {
        for (address, reason) in [
            // Teredo 2001::/32: server 65.54.227.120, client 127.0.0.1 obfuscated and public.
            ("2001:0:4136:e378:8000:63bf:80ff:fffe", "a Teredo address"),
            ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "a Teredo address"),
            ("2001::1", "a Teredo address"),
            // 6to4 2002::/16, embedding 127.0.0.1 and a public address.
            ("2002:7f00:1::1", "a 6to4 address"),
            ("2002:808:808::1", "a 6to4 address"),
            // local-use NAT64 64:ff9b:1::/48, with the IPv4 address at /48 and at /96.
            ("64:ff9b:1:7f00:1::", "a local-use NAT64 address"),
            ("64:ff9b:1::808:808", "a local-use NAT64 address"),
            ("64:ff9b:2::1", "a reserved NAT64 address"),
        ] {
            assert_eq!(STRICT.refusal(ip(address)), Some(reason), "{address}");
            assert_eq!(
                SANDBOX.refusal(ip(address)),
                Some(reason),
                "{address} in the sandbox"
            );
        }
        // Neighbours of these ranges are ordinary public addresses.
        for address in [
            "2001:4860:4860::8888",
            "2001:db9::1",
            "2003::1",
            "64:ff9a::1",
        ] {
            assert_eq!(STRICT.refusal(ip(address)), None, "{address}");
        }
    }

    type Behaviour = fn(tokio::net::TcpStream) -> futures::future::BoxFuture<'static, ()>;

    /// A host on loopback that does one thing to every connection, for `connections` of them.
    async fn hostile_host(
        connections: usize,
        behave: Behaviour,
    ) -> (u16, tokio::task::JoinHandle<()>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let port = listener.local_addr().expect("bound").port();
        let task = tokio::spawn(async move {
            for _ in 0..connections {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(behave(stream));
            }
        });
        (port, task)
    }

    fn downloader() -> Downloader {
        Downloader::new(
            SANDBOX,
            1024 * 1024,
            Duration::from_millis(800),
            Duration::from_millis(800),
            Arc::new(DownloadBudget::new(
                64 * 1024 * 1024,
                Duration::from_secs(1),
            )),
        )
        .expect("a client")
    }

    async fn fetch(downloader: &Downloader, url: &str) -> Result<Bytes, DownloadError> {
        let url = parse_image_url(url).expect("a URL");
        tokio::time::timeout(Duration::from_secs(10), downloader.fetch(&url))
            .await
            .expect("every download ends within its own timeouts")
    }

    /// A closed port, a port that resets, one that never answers, one that speaks another
    /// protocol and a name that does not resolve all answer the same words: a caller learns
    /// nothing of which ports are open.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_failure_to_reach_a_host_reads_the_same() {
        use tokio::io::AsyncWriteExt;
        let closed = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
            listener.local_addr().expect("bound").port()
        };
        let (reset, reset_task) = hostile_host(1, |stream| {
            Box::pin(async move {
                // SO_LINGER 0: closing sends RST rather than FIN.
                let _ = stream.set_zero_linger();
                drop(stream);
            })
        })
        .await;
        let (silent, silent_task) = hostile_host(1, |stream| {
            Box::pin(async move {
                tokio::time::sleep(Duration::from_secs(5)).await;
                drop(stream);
            })
        })
        .await;
        let (ssh, ssh_task) = hostile_host(1, |mut stream| {
            Box::pin(async move {
                let _ = stream.write_all(b"SSH-2.0-OpenSSH_9.6\r\n").await;
                let _ = stream.shutdown().await;
            })
        })
        .await;
        let downloader = downloader();
        let mut messages = Vec::new();
        for (case, url) in [
            ("closed", format!("http://127.0.0.1:{closed}/a.jpg")),
            ("reset", format!("http://127.0.0.1:{reset}/a.jpg")),
            ("silent", format!("http://127.0.0.1:{silent}/a.jpg")),
            ("another protocol", format!("http://127.0.0.1:{ssh}/a.jpg")),
            (
                "no such name",
                "http://no-such-host.invalid/a.jpg".to_owned(),
            ),
        ] {
            match fetch(&downloader, &url).await {
                Err(err @ DownloadError::Connect(_)) => messages.push((case, err.to_string())),
                other => panic!("{case}: {other:?}"),
            }
        }
        for (case, message) in &messages {
            assert_eq!(message, "could not connect to the image host", "{case}");
        }
        for task in [reset_task, silent_task, ssh_task] {
            task.abort();
        }
    }

    /// A host that answered but whose body stalls is a timeout, which says no more than the
    /// status line it sent.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_body_that_stalls_is_a_timeout() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (port, task) = hostile_host(1, |mut stream| {
            Box::pin(async move {
                // The request first: hyper takes an answer sent before it as an error.
                let mut request = [0u8; 4096];
                let _ = stream.read(&mut request).await;
                let _ = stream
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: image/jpeg\r\ncontent-length: 1000\r\n\r\n\xff\xd8")
                    .await;
                tokio::time::sleep(Duration::from_secs(5)).await;
            })
        })
        .await;
        let result = fetch(&downloader(), &format!("http://127.0.0.1:{port}/a.jpg")).await;
        assert!(
            matches!(result, Err(DownloadError::Timeout(_))),
            "{result:?}"
        );
        task.abort();
    }

    const MIB: usize = 1024 * 1024;

    /// Reads the request, then answers `body` with `content-length` when `sized`, else with a
    /// body that ends when the connection closes.
    async fn answer(mut stream: tokio::net::TcpStream, body: usize, sized: bool) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut request = [0u8; 4096];
        let _ = stream.read(&mut request).await;
        let head = if sized {
            format!(
                "HTTP/1.1 200 OK\r\ncontent-type: image/jpeg\r\ncontent-length: {body}\r\nconnection: close\r\n\r\n"
            )
        } else {
            "HTTP/1.1 200 OK\r\ncontent-type: image/jpeg\r\nconnection: close\r\n\r\n".to_owned()
        };
        let _ = stream.write_all(head.as_bytes()).await;
        // A client that waits for memory stops reading; this write then ends when it hangs up.
        let _ = stream.write_all(&vec![0xAB; body]).await;
        let _ = stream.shutdown().await;
    }

    /// Many large downloads at once: those the budget holds proceed and keep their memory as
    /// long as their bytes live; the others wait for a bounded time, then are refused as a
    /// busy server; one that waits while another's bytes are dropped gets their memory.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_large_downloads_at_once_hold_no_more_than_the_download_budget() {
        const CONCURRENT: usize = 8;
        let (sized_port, sized_task) =
            hostile_host(CONCURRENT + 8, |stream| Box::pin(answer(stream, MIB, true))).await;
        let (unsized_port, unsized_task) = hostile_host(1, |stream| {
            Box::pin(answer(stream, 2 * MIB + MIB / 2, false))
        })
        .await;
        let budget = Arc::new(DownloadBudget::new(3 * MIB as u64, Duration::from_secs(2)));
        let downloader = Downloader::new(
            SANDBOX,
            4 * MIB as u64,
            Duration::from_secs(5),
            Duration::from_secs(20),
            budget.clone(),
        )
        .expect("a client");
        let sized = format!("http://127.0.0.1:{sized_port}/photo.jpg");

        // Room for three of the eight: the other five wait, and are refused.
        let results =
            futures::future::join_all((0..CONCURRENT).map(|_| fetch(&downloader, &sized))).await;
        let held: Vec<Bytes> = results
            .iter()
            .filter_map(|r| r.as_ref().ok().cloned())
            .collect();
        let busy = results
            .iter()
            .filter(|r| matches!(r, Err(DownloadError::Busy { .. })))
            .count();
        let outcomes: Vec<_> = results
            .iter()
            .map(|r| r.as_ref().map(Bytes::len).map_err(ToString::to_string))
            .collect();
        assert_eq!((held.len(), busy), (3, CONCURRENT - 3), "{outcomes:?}");
        assert!(held.iter().all(|bytes| bytes.len() == MIB));
        assert_eq!(budget.held_bytes(), 3 * MIB as u64);
        drop(results);
        assert_eq!(
            budget.held_bytes(),
            3 * MIB as u64,
            "held while the bytes live"
        );
        drop(held);
        assert_eq!(budget.held_bytes(), 0, "given back with the bytes");

        // A body of unknown length reserves a chunk at a time: 2.5 MiB holds 3.
        let streamed = fetch(
            &downloader,
            &format!("http://127.0.0.1:{unsized_port}/photo.jpg"),
        )
        .await
        .expect("fits the budget");
        assert_eq!(streamed.len(), 2 * MIB + MIB / 2);
        assert_eq!(budget.held_bytes(), 3 * MIB as u64);
        drop(streamed);

        // Queued: a download that waits gets the memory of bytes dropped meanwhile.
        let mut first_three = Vec::new();
        for _ in 0..3 {
            first_three.push(fetch(&downloader, &sized).await.expect("fits"));
        }
        let waiting = {
            let downloader = downloader.clone();
            let sized = sized.clone();
            tokio::spawn(async move { fetch(&downloader, &sized).await })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(
            budget.held_bytes(),
            3 * MIB as u64,
            "the fourth is not held"
        );
        first_three.pop();
        let fourth = waiting
            .await
            .expect("joined")
            .expect("memory freed in time");
        assert_eq!(fourth.len(), MIB);
        assert_eq!(budget.held_bytes(), 3 * MIB as u64);
        drop((first_three, fourth));
        assert_eq!(budget.held_bytes(), 0);
        sized_task.abort();
        unsized_task.abort();
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
