//! Where provider requests may go: the one table of internal address ranges, and the client that
//! refuses them for every URL the operator did not configure.
//!
//! A URL on a platform's configured base origin (`FH_<PLATFORM>_BASE_URL`, trusted: tests point
//! it at fakes on loopback) is sent by the core's plain client. Every other URL (a credential's
//! base URL, a redirect target, a download URL from a caller or an answer) is sent by the
//! guarded client, whose resolver drops internal addresses and fails when none is left. reqwest
//! connects only to what its resolver returned, so a name that resolves to an internal address
//! (or rebinds to one between two lookups) cannot be reached. IP literals never reach a
//! resolver, so they are checked against the same table before the request.
//! `FH_CONNECTOR_ALLOW_PRIVATE_HOSTS` turns both off.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use super::config::BaseUrls;
use crate::domain::Platform;
use crate::error::{Error, ErrorKind, Reason};

/// IPv4 ranges no tenant- or provider-chosen URL may reach: (network, prefix length).
const INTERNAL_V4: &[(Ipv4Addr, u8)] = &[
    (Ipv4Addr::new(0, 0, 0, 0), 8),      // "this network", unspecified
    (Ipv4Addr::new(10, 0, 0, 0), 8),     // private
    (Ipv4Addr::new(100, 64, 0, 0), 10),  // CGNAT (and some clouds' metadata)
    (Ipv4Addr::new(127, 0, 0, 0), 8),    // loopback
    (Ipv4Addr::new(169, 254, 0, 0), 16), // link-local (cloud metadata)
    (Ipv4Addr::new(172, 16, 0, 0), 12),  // private
    (Ipv4Addr::new(192, 168, 0, 0), 16), // private
    (Ipv4Addr::new(198, 18, 0, 0), 15),  // benchmarking
    (Ipv4Addr::new(224, 0, 0, 0), 4),    // multicast
    (Ipv4Addr::new(240, 0, 0, 0), 4),    // reserved, and the broadcast address
];

/// IPv6 ranges no tenant- or provider-chosen URL may reach. IPv4-mapped addresses
/// (`::ffff:0:0/96`) are judged by the IPv4 address they carry.
const INTERNAL_V6: &[(Ipv6Addr, u8)] = &[
    (Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 0), 96), // unspecified, loopback, IPv4-compatible
    (Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0), 96), // NAT64: reaches any IPv4
    (Ipv6Addr::new(0x64, 0xff9b, 1, 0, 0, 0, 0, 0), 48), // local-use NAT64
    (Ipv6Addr::new(0x2002, 0, 0, 0, 0, 0, 0, 0), 16), // 6to4: embeds any IPv4
    (Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0), 7), // unique local
    (Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10), // link-local
    (Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 0), 10), // site-local (deprecated)
    (Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0), 8), // multicast
];

fn in_v4(ip: Ipv4Addr, (net, len): (Ipv4Addr, u8)) -> bool {
    let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
    u32::from(ip) & mask == u32::from(net) & mask
}

fn in_v6(ip: Ipv6Addr, (net, len): (Ipv6Addr, u8)) -> bool {
    let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
    u128::from(ip) & mask == u128::from(net) & mask
}

/// Is `ip` loopback, private, link-local, CGNAT, unspecified, broadcast, multicast, reserved, or
/// a translation prefix that could carry one of those?
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => INTERNAL_V4.iter().any(|r| in_v4(v4, *r)),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_internal(IpAddr::V4(v4)),
            None => INTERNAL_V6.iter().any(|r| in_v6(v6, *r)),
        },
    }
}

/// A URL that names an internal host without any lookup: an internal IP literal, `localhost` or a
/// `.localhost` name (RFC 6761), or no host at all. Names are left to the resolver.
pub fn is_internal_host(url: &Url) -> bool {
    let Some(host) = url.host_str() else {
        return true;
    };
    // `Url` has already normalised literals (`0x7f.1` is `127.0.0.1`); v6 ones keep brackets.
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<IpAddr>() {
        Ok(ip) => is_internal(ip),
        Err(_) => {
            let d = bare.trim_end_matches('.').to_ascii_lowercase();
            d == "localhost" || d.ends_with(".localhost")
        }
    }
}

/// The guarded resolver's error when a name has only internal addresses. Found again in the
/// reqwest error's sources, so the core answers BASE_URL_NOT_ALLOWED, not PROVIDER_UNAVAILABLE.
#[derive(Debug)]
struct OnlyInternal;

impl fmt::Display for OnlyInternal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the name resolves only to internal addresses")
    }
}

impl std::error::Error for OnlyInternal {}

/// Resolves with the system resolver (as reqwest's default does) and keeps public addresses only.
struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            // Port 0: reqwest puts the URL's port in.
            let all = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let public: Vec<SocketAddr> = all.filter(|a| !is_internal(a.ip())).collect();
            if public.is_empty() {
                return Err(OnlyInternal.into());
            }
            let addrs: Addrs = Box::new(public.into_iter());
            Ok(addrs)
        })
    }
}

/// Did the request fail because its name resolved only to internal addresses?
pub fn refused_by_resolver(err: &reqwest::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = source {
        if e.is::<OnlyInternal>() {
            return true;
        }
        source = e.source();
    }
    false
}

/// The answer when a request would reach an internal address. It names no host: a redirect's
/// target is the provider's, and may carry a signed URL.
pub fn not_allowed(platform: Platform) -> Error {
    Error::new(
        ErrorKind::FailedPrecondition,
        Reason::BaseUrlNotAllowed,
        "the request's host is, or resolves only to, a loopback, private or reserved address; \
         set FH_CONNECTOR_ALLOW_PRIVATE_HOSTS to allow it",
    )
    .with_metadata("platform", platform.as_str())
}

fn origin(url: &Url) -> String {
    url.origin().ascii_serialization()
}

/// Which client sends a request; see the module doc.
pub struct Egress {
    /// Each platform's configured base origin, serialized.
    configured: HashMap<Platform, String>,
    /// Sends to every other URL; None when private hosts are allowed (the plain client does).
    guarded: Option<reqwest::Client>,
}

/// The client a request goes out on.
pub enum Route<'a> {
    /// The operator's configured origin, or every URL when private hosts are allowed.
    Plain,
    /// Public addresses only.
    Guarded(&'a reqwest::Client),
}

impl Egress {
    /// `builder` carries the core's client settings (timeouts, no redirects, user agent); the
    /// guarded client adds its resolver and ignores proxy variables, since a proxy would resolve
    /// the name itself. With `allow_private_hosts` nothing is guarded.
    pub fn new(
        builder: reqwest::ClientBuilder,
        base_urls: &BaseUrls,
        allow_private_hosts: bool,
    ) -> reqwest::Result<Self> {
        let guarded = if allow_private_hosts {
            None
        } else {
            Some(
                builder
                    .dns_resolver(Arc::new(PublicOnly))
                    .no_proxy()
                    .build()?,
            )
        };
        let configured = Platform::ALL
            .iter()
            .filter_map(|p| Some((*p, origin(base_urls.get(*p)?))))
            .collect();
        Ok(Self {
            configured,
            guarded,
        })
    }

    /// How `url` goes out for `platform`; BASE_URL_NOT_ALLOWED, before any request, when it
    /// names an internal host outright.
    pub fn route(&self, platform: Platform, url: &Url) -> Result<Route<'_>, Error> {
        let Some(guarded) = &self.guarded else {
            return Ok(Route::Plain);
        };
        if self.configured.get(&platform) == Some(&origin(url)) {
            return Ok(Route::Plain);
        }
        if is_internal_host(url) {
            return Err(not_allowed(platform));
        }
        Ok(Route::Guarded(guarded))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn every_internal_range_is_recognised_at_its_edges() {
        for bad in [
            "0.0.0.0",
            "0.255.255.255",
            "10.0.0.1",
            "10.255.255.255",
            "100.64.0.1",
            "100.127.255.255",
            "100.100.100.200",
            "127.0.0.1",
            "127.255.255.254",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.0.1",
            "198.18.0.1",
            "198.19.255.255",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::127.0.0.1",
            "64:ff9b::808:808",
            "64:ff9b:1::1",
            "2002:7f00:1::1",
            "2002:808:808::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "febf::1",
            "fec0::1",
            "ff02::1",
        ] {
            assert!(is_internal(ip(bad)), "{bad}");
        }
        for good in [
            "1.1.1.1",
            "8.8.8.8",
            "9.255.255.255",
            "11.0.0.0",
            "100.63.255.255",
            "100.128.0.0",
            "126.255.255.255",
            "128.0.0.0",
            "169.253.255.255",
            "172.15.255.255",
            "172.32.0.0",
            "192.167.255.255",
            "192.169.0.0",
            "198.17.255.255",
            "198.20.0.0",
            "223.255.255.255",
            "2001:4860:4860::8888",
            "2606:4700::1111",
            "64:ff9a::1",
            "2003::1",
        ] {
            assert!(!is_internal(ip(good)), "{good}");
        }
    }

    #[test]
    fn ipv4_mapped_ipv6_addresses_are_judged_by_their_ipv4_address() {
        for bad in [
            "::ffff:127.0.0.1",
            "::ffff:10.1.2.3",
            "::ffff:169.254.169.254",
            "::ffff:100.64.0.1",
            "::ffff:0.0.0.0",
            "::ffff:198.18.0.1",
            "::ffff:240.0.0.1",
            "::ffff:7f00:1",
        ] {
            assert!(is_internal(ip(bad)), "{bad}");
        }
        assert!(!is_internal(ip("::ffff:8.8.8.8")));
    }

    #[test]
    fn hosts_that_are_internal_without_a_lookup_are_recognised() {
        for bad in [
            "http://127.0.0.1:9000",
            "http://localhost",
            "http://LOCALHOST.",
            "http://db.localhost",
            "http://10.1.2.3",
            "http://192.168.0.1",
            "http://172.16.5.5",
            "http://169.254.169.254",
            "http://100.64.0.1",
            "http://0.0.0.0",
            "http://0x7f.1",
            "http://2130706433",
            "http://[::1]",
            "http://[fd00::1]",
            "http://[fe80::1]",
            "http://[::ffff:127.0.0.1]",
            "http://[64:ff9b::7f00:1]",
            "data:text/plain,x",
        ] {
            assert!(is_internal_host(&Url::parse(bad).unwrap()), "{bad}");
        }
        for good in [
            "https://zerodb.example.com",
            "https://8.8.8.8",
            "https://[2001:4860::8888]",
            "https://localhost.example.com",
        ] {
            assert!(!is_internal_host(&Url::parse(good).unwrap()), "{good}");
        }
    }

    fn egress(allow_private_hosts: bool) -> Egress {
        // As `app::http_client_builder` does: a client needs rustls' provider.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut base_urls = BaseUrls::default();
        base_urls
            .set(Platform::Zoom, "http://127.0.0.1:9/v2")
            .unwrap();
        Egress::new(reqwest::Client::builder(), &base_urls, allow_private_hosts).unwrap()
    }

    #[test]
    fn only_the_platforms_configured_origin_skips_the_guard() {
        let e = egress(false);
        let url = |s: &str| Url::parse(s).unwrap();
        let plain = |r: Result<Route<'_>, Error>| matches!(r, Ok(Route::Plain));
        let guarded = |r: Result<Route<'_>, Error>| matches!(r, Ok(Route::Guarded(_)));
        assert!(plain(
            e.route(Platform::Zoom, &url("http://127.0.0.1:9/rec/x"))
        ));
        assert!(guarded(
            e.route(Platform::Zoom, &url("https://us02web.zoom.us/rec/x"))
        ));
        let other_port = e.route(Platform::Zoom, &url("http://127.0.0.1:10/rec/x"));
        assert_eq!(
            other_port.err().map(|e| e.reason()),
            Some(Reason::BaseUrlNotAllowed)
        );
        // Another platform's configured origin is not this one's.
        let zerodb = e.route(Platform::Zerodb, &url("http://127.0.0.1:9/v2"));
        assert!(zerodb.is_err());
        assert!(plain(
            egress(true).route(Platform::Zerodb, &url("http://127.0.0.1:10/"))
        ));
    }

    #[tokio::test]
    async fn the_resolver_drops_internal_addresses_and_fails_when_none_is_left() {
        let err = PublicOnly
            .resolve("localhost".parse().unwrap())
            .await
            .err()
            .unwrap();
        assert!(err.is::<OnlyInternal>(), "{err}");
    }
}
