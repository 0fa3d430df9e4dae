//! Alert targets must not reach internal services (SSRF): a URL whose host is, or resolves to,
//! a loopback, private, link-local, unique-local, CGNAT, unspecified, multicast or documentation
//! address is refused unless the channel sets `allow_private_targets = true`. The check runs on
//! the configuration (literal addresses, `localhost`) and again on every delivery after DNS
//! resolution; the request then goes to the address that was checked (no second lookup, so
//! DNS rebinding cannot swap it).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// Whether `ip` is somewhere an alert may not be sent to by default.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_internal_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_internal_v4(v4);
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (first & 0xffc0) == 0xfe80 // link-local fe80::/10
                || (first == 0x2001 && v6.segments()[1] == 0x0db8) // documentation
                || (first == 0x0064 && v6.segments()[1] == 0xff9b) // NAT64 of any v4
        }
    }
}

fn is_internal_v4(ip: Ipv4Addr) -> bool {
    let [a, b, _, _] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // CGNAT 100.64.0.0/10
        || (a == 192 && b == 0) // IETF protocol assignments 192.0.0.0/24 (and 192.0.2.0/24)
        || (a == 198 && (18..20).contains(&b)) // benchmarking 198.18.0.0/15
        || a >= 240 // reserved
}

/// Why a channel's target cannot be posted to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("environment variable {0} (url_env) is not set")]
    EnvUnset(String),
    #[error("no url")]
    NoUrl,
    #[error("`{url}` is not a URL: {reason}")]
    NotUrl { url: String, reason: String },
    #[error("`{0}`: only http and https targets")]
    Scheme(String),
    #[error("`{0}` has no host")]
    NoHost(String),
    #[error("`{0}` is a loopback or private address; set allow_private_targets = true to allow it")]
    Private(String),
    #[error("cannot resolve `{host}`: {reason}")]
    Unresolvable { host: String, reason: String },
    #[error("`{0}` resolves to no address")]
    NoAddress(String),
    #[error(
        "`{host}` resolves to {ip} (loopback or private); set allow_private_targets = true to allow it"
    )]
    ResolvesPrivate { host: String, ip: IpAddr },
}

/// The scheme, host and port of an http(s) URL, refusing what can be judged without DNS.
pub fn check_url(url: &str, allow_private: bool) -> Result<(String, u16), TargetError> {
    let parsed = reqwest::Url::parse(url).map_err(|error| TargetError::NotUrl {
        url: url.to_owned(),
        reason: error.to_string(),
    })?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(TargetError::Scheme(url.to_owned()));
    }
    let host = parsed
        .host_str()
        .ok_or_else(|| TargetError::NoHost(url.to_owned()))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    let port = parsed.port_or_known_default().unwrap_or(80);
    if !allow_private {
        let literal = host.parse::<IpAddr>().ok();
        let local_name = host == "localhost"
            || host.ends_with(".localhost")
            || host.ends_with(".local")
            || host.ends_with(".internal");
        if local_name || literal.is_some_and(is_internal) {
            return Err(TargetError::Private(host));
        }
    }
    Ok((host, port))
}

/// Resolves the URL's host and checks every address; returns the host and the address to use.
pub async fn resolve_checked(
    url: &str,
    allow_private: bool,
) -> Result<(String, SocketAddr), TargetError> {
    let (host, port) = check_url(url, allow_private)?;
    let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
        .await
        .map_err(|error| TargetError::Unresolvable {
            host: host.clone(),
            reason: error.to_string(),
        })?
        .collect();
    let first = refuse_internal(&host, &addresses, allow_private)?;
    Ok((host, first))
}

/// The address to use, unless any of `addresses` is internal and that is not allowed.
pub fn refuse_internal(
    host: &str,
    addresses: &[SocketAddr],
    allow_private: bool,
) -> Result<SocketAddr, TargetError> {
    let first = *addresses
        .first()
        .ok_or_else(|| TargetError::NoAddress(host.to_owned()))?;
    if !allow_private && let Some(bad) = addresses.iter().find(|a| is_internal(a.ip())) {
        return Err(TargetError::ResolvesPrivate {
            host: host.to_owned(),
            ip: bad.ip(),
        });
    }
    Ok(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_ranges_are_refused() {
        for url in [
            "http://127.0.0.1:9000/hook",
            "http://localhost/hook",
            "http://10.1.2.3/",
            "http://172.16.0.1/",
            "http://192.168.1.1/",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]/",
            "http://[fd00::1]/",
            "http://[fe80::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://100.64.0.1/",
            "http://0.0.0.0/",
        ] {
            assert!(check_url(url, false).is_err(), "{url} should be refused");
            assert!(check_url(url, true).is_ok(), "{url} allowed when asked");
        }
        assert!(check_url("https://hooks.slack.com/services/T/B/X", false).is_ok());
        assert!(check_url("https://8.8.8.8/", false).is_ok());
        assert!(check_url("ftp://example.com/", true).is_err());
        assert!(check_url("not a url", true).is_err());
    }

    #[test]
    fn public_addresses_pass() {
        assert!(!is_internal("8.8.8.8".parse().expect("ip")));
        assert!(!is_internal("2606:4700::1111".parse().expect("ip")));
        assert!(is_internal(IpAddr::V6(std::net::Ipv6Addr::LOCALHOST)));
    }

    #[tokio::test]
    async fn names_are_checked_after_resolution() {
        let refused = resolve_checked("http://localhost.:8080/x", false).await;
        assert!(refused.is_err(), "{refused:?}");
        let allowed = resolve_checked("http://127.0.0.1:8080/x", true)
            .await
            .expect("allowed");
        assert_eq!(allowed.1.port(), 8080);
    }
}
