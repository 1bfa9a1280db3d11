//! Where webhooks may go: no server-side request forgery through an endpoint URL. The
//! notification providers a tenant sets (Twilio's and FCM's URLs, an SMTP host) go through the
//! same checks, switched off by `notification_allow_private_providers`.
//!
//! An endpoint's URL is checked when it is set (scheme, credentials, an address literal or a
//! name that can only be local), and every attempt resolves the name again through
//! [`GuardedResolver`], which drops loopback, private, link-local, shared and metadata
//! addresses: a name that pointed outside when it was set and inside later (DNS rebinding) is
//! still refused. `webhooks.allow_private_targets` turns both checks off.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Longest endpoint URL accepted.
pub const MAX_URL_LEN: usize = 2048;

/// Whether an address is one a webhook must never reach unless private targets are allowed.
pub fn is_forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => forbidden_v4(v4),
            None => forbidden_v6(v6),
        },
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local() // 169.254/16, with the clouds' metadata service 169.254.169.254
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space, 100.100.100.200 metadata
        || (a == 192 && b == 0 && ip.octets()[2] == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240 // reserved
}

fn forbidden_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local, fd00:ec2::254 metadata
        || (first & 0xffc0) == 0xfe80 // link-local
        || (first & 0xffc0) == 0xfec0 // site-local (deprecated)
        || first == 0x2001 && ip.segments()[1] == 0x0db8 // documentation
        || first == 0x0064 && ip.segments()[1] == 0xff9b // NAT64 to any IPv4
        || ip.to_ipv4().is_some_and(|v4| !v4.is_unspecified() && forbidden_v4(v4)) // IPv4-compatible
}

/// The settings that allow what the guard refuses, as its messages name them: each user of the
/// guard (webhooks, identity providers) has its own.
#[derive(Debug, Clone, Copy)]
pub struct Allowances {
    /// The setting that allows `http://`.
    pub http: &'static str,
    /// The setting that allows private targets.
    pub private: &'static str,
}

/// Webhook endpoints' settings.
pub const WEBHOOKS: Allowances = Allowances {
    http: "webhooks.allow_http",
    private: "webhooks.allow_private_targets",
};

/// Why a URL is refused, as a field message naming the setting that would allow it (`named`);
/// `None` if it is acceptable.
pub fn url_problem(
    url: &str,
    allow_http: bool,
    allow_private: bool,
    named: Allowances,
) -> Option<String> {
    let problem = |message: &str| Some(message.to_owned());
    if url.len() > MAX_URL_LEN {
        return problem("must be at most 2048 characters");
    }
    let Ok(u) = Url::parse(url) else {
        return problem("must be an absolute https URL");
    };
    match u.scheme() {
        "https" => {}
        "http" if allow_http => {}
        "http" => return Some(format!("must be https (http only with {})", named.http)),
        _ => return problem("must be an absolute https URL"),
    }
    if !u.username().is_empty() || u.password().is_some() {
        return problem("must not carry credentials: receivers verify the signature instead");
    }
    if u.fragment().is_some() {
        return problem("must not have a fragment");
    }
    if u.host().is_none() {
        return problem("must have a host");
    }
    (!allow_private && refused_literal(&u)).then(|| refused(named))
}

/// The message for a target that is refused for where it points.
pub fn refused(named: Allowances) -> String {
    format!(
        "must not point to a loopback, private, link-local or metadata address (allowed only \
         with {})",
        named.private
    )
}

/// Names that only ever mean this machine or its local network.
fn is_local_name(name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost"
        || name.ends_with(".localhost")
        || name.ends_with(".local")
        || name.ends_with(".internal")
        || !name.contains('.')
}

/// Whether an attempt to `url` is refused for where its host literally points (a name is
/// checked by [`GuardedResolver`] when it is resolved).
pub fn refused_literal(url: &Url) -> bool {
    url.host_str().is_none_or(host_refused)
}

/// Whether a bare host (a name or an address, as an SMTP server is given) is refused for where
/// it literally points; a name is checked again where it is resolved.
pub fn host_refused(host: &str) -> bool {
    let literal = host.strip_prefix('[').and_then(|h| h.strip_suffix(']'));
    match literal.unwrap_or(host).parse::<IpAddr>() {
        Ok(ip) => is_forbidden(ip),
        Err(_) => is_local_name(host),
    }
}

/// A resolver for the webhook client that never answers a forbidden address.
#[derive(Debug, Default)]
pub struct GuardedResolver;

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed = allowed_addresses(found);
            if allowed.is_empty() {
                return Err(format!("{host} resolves only to refused addresses").into());
            }
            let addrs: Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

/// How an outbound call failed, with every cause in the chain: a target the resolver refused
/// says so, where reqwest's own message names only the URL.
pub fn describe(e: &reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    let mut detail = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        detail = format!("{detail}: {s}");
        source = s.source();
    }
    format!("{what}: {detail}")
}

/// The addresses a webhook may connect to, of those a name resolved to.
pub fn allowed_addresses(found: Vec<SocketAddr>) -> Vec<SocketAddr> {
    found
        .into_iter()
        .filter(|a| !is_forbidden(a.ip()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_metadata_addresses_are_forbidden() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.100.100.200",
            "0.0.0.0",
            "::1",
            "::",
            "fe80::1",
            "fd00:ec2::254",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
        ] {
            assert!(is_forbidden(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "8.8.8.8", "2606:4700::1111"] {
            assert!(!is_forbidden(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn bare_hosts_are_refused_for_where_they_point() {
        for host in [
            "10.0.0.25",
            "[::1]",
            "::1",
            "169.254.169.254",
            "localhost",
            "relay",
            "mx.internal",
        ] {
            assert!(host_refused(host), "{host}");
        }
        for host in ["smtp.bank.example", "93.184.216.34", "[2606:4700::1111]"] {
            assert!(!host_refused(host), "{host}");
        }
    }

    #[test]
    fn urls_are_checked_for_scheme_credentials_and_target() {
        let ok = |u: &str| url_problem(u, false, false, WEBHOOKS);
        assert_eq!(ok("https://hooks.bank.example/omnirail"), None);
        assert!(ok("http://hooks.bank.example/").is_some());
        assert_eq!(
            url_problem("http://hooks.bank.example/", true, false, WEBHOOKS),
            None
        );
        for bad in [
            "https://127.0.0.1/x",
            "https://[::1]/",
            "https://[::ffff:7f00:1]/",
            "https://169.254.169.254/latest/meta-data/",
            "https://10.0.0.8/",
            "https://localhost:8443/",
            "https://api.localhost/",
            "https://metadata.google.internal/",
            "https://intranet/",
            "https://2130706433/",
            "https://0x7f.1/",
        ] {
            assert_eq!(ok(bad), Some(refused(WEBHOOKS)), "{bad}");
        }
        assert!(ok("https://user:pw@hooks.bank.example/").is_some());
        assert!(ok("ftp://hooks.bank.example/").is_some());
        assert!(ok("not a url").is_some());
        assert_eq!(
            url_problem("http://127.0.0.1:9/", true, true, WEBHOOKS),
            None
        );
    }

    #[tokio::test]
    async fn the_resolver_refuses_a_name_that_resolves_to_loopback() {
        let err = GuardedResolver
            .resolve("localhost".parse().unwrap())
            .await
            .err()
            .expect("localhost must be refused");
        assert!(err.to_string().contains("refused"), "{err}");
        let mixed = allowed_addresses(vec![
            "127.0.0.1:0".parse().unwrap(),
            "93.184.216.34:0".parse().unwrap(),
        ]);
        assert_eq!(mixed, vec!["93.184.216.34:0".parse().unwrap()]);
    }
}
