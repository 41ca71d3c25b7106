//! Per-address request limiting for every endpoint that takes a password, a code or an
//! emailed token without a session, API and page forms alike: a fixed window per client IP
//! address, kept in memory on each node (the per-account throttling that every node must agree
//! on lives in the database). The client address is the connection's, or, when the connection
//! comes from a trusted proxy, the one the proxy forwarded.

use ipnet::IpNet;
use poem::http::{HeaderMap, HeaderValue, StatusCode, header};
use poem::{Endpoint, EndpointExt, IntoResponse, Response};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The proxies (addresses or CIDR ranges) whose forwarding headers are believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// From a comma-separated list such as `10.0.0.0/8, 192.168.1.7, ::1`.
    ///
    /// # Errors
    /// Names the first entry that is neither an address nor a range.
    pub fn parse(list: &str) -> anyhow::Result<Self> {
        let mut nets = Vec::new();
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let net = entry
                .parse::<IpNet>()
                .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    anyhow::anyhow!("trusted_proxies: {entry:?} is not an address or range")
                })?;
            nets.push(net);
        }
        Ok(Self(nets))
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|n| n.contains(&ip))
    }

    /// The client's address: the peer's, unless the peer is a trusted proxy; then the
    /// nearest address in `Forwarded` (else `X-Forwarded-For`) that is not a trusted proxy,
    /// read from the right, as each proxy appends the address it saw. A hop that does not
    /// parse ends the walk at the last trusted one (a client may write anything to the left).
    pub fn client(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> Option<IpAddr> {
        let peer = peer?;
        if !self.trusts(peer) {
            return Some(peer);
        }
        let hops = forwarded_for(headers);
        let mut client = peer;
        for hop in hops.iter().rev() {
            match hop {
                Some(ip) if self.trusts(*ip) => client = *ip,
                Some(ip) => return Some(*ip),
                None => return Some(client),
            }
        }
        Some(client)
    }
}

/// The `for=` addresses of `Forwarded` (RFC 7239), or else of `X-Forwarded-For`, in order;
/// `None` for a hop that is not an address (`unknown`, an obfuscated name, garbage).
fn forwarded_for(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let values = |name| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let forwarded = values(header::FORWARDED);
    if !forwarded.is_empty() {
        return forwarded
            .iter()
            .map(|element| {
                element
                    .split(';')
                    .filter_map(|pair| pair.trim().split_once('='))
                    .find(|(k, _)| k.eq_ignore_ascii_case("for"))
                    .and_then(|(_, v)| parse_node(v.trim_matches('"')))
            })
            .collect();
    }
    values(header::HeaderName::from_static("x-forwarded-for"))
        .iter()
        .map(|v| parse_node(v))
        .collect()
}

/// An address, bare or as a node with a port (`192.0.2.1:4711`, `[2001:db8::1]:4711`).
fn parse_node(v: &str) -> Option<IpAddr> {
    if let Ok(ip) = v.parse() {
        return Some(ip);
    }
    if let Some(rest) = v.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok();
    }
    v.rsplit_once(':')?.0.parse().ok()
}

/// Limits `POST`s of the endpoints `guarded` names to `limit` a minute per client address;
/// beyond that `429` with `Retry-After`, as the API's JSON error or as a page.
pub fn per_client_address<E: Endpoint + 'static>(
    ep: E,
    limit: u32,
    proxies: TrustedProxies,
    guarded: fn(&str, &str) -> bool,
    is_api: fn(&str) -> bool,
) -> impl Endpoint {
    let limiter = Arc::new(PerAddress::new(limit, Duration::from_secs(60)));
    let proxies = Arc::new(proxies);
    ep.around(move |ep, req| {
        let (limiter, proxies) = (limiter.clone(), proxies.clone());
        async move {
            let path = req.uri().path();
            if guarded(req.method().as_str(), path) {
                let peer = req.remote_addr().as_socket_addr().map(|a| a.ip());
                if let Some(ip) = proxies.client(peer, req.headers())
                    && let Err(wait) = limiter.check(ip)
                {
                    return Ok(too_many(is_api(path), wait));
                }
            }
            ep.call(req).await.map(IntoResponse::into_response)
        }
    })
}

fn too_many(api: bool, wait: u64) -> Response {
    const MESSAGE: &str = "Too many requests from your network. Please wait a moment.";
    let mut resp = if api {
        salus_http::json_error(StatusCode::TOO_MANY_REQUESTS, "too_many_requests", MESSAGE)
    } else {
        salus_web::error_page(
            StatusCode::TOO_MANY_REQUESTS,
            "Please wait a moment",
            "There have been too many attempts from your network. Try again in a minute.",
        )
    };
    if let Ok(v) = HeaderValue::from_str(&wait.to_string()) {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

/// Beyond this many tracked addresses, expired windows are swept out.
const SWEEP_AT: usize = 10_000;

#[derive(Debug)]
pub struct PerAddress {
    limit: u32,
    window: Duration,
    seen: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl PerAddress {
    pub fn new(limit: u32, window: Duration) -> Self {
        Self {
            limit: limit.max(1),
            window,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Counts a request; `Err(seconds to wait)` once the address is over its limit.
    pub fn check(&self, ip: IpAddr) -> Result<(), u64> {
        self.check_at(ip, Instant::now())
    }

    fn check_at(&self, ip: IpAddr, now: Instant) -> Result<(), u64> {
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if seen.len() > SWEEP_AT {
            let window = self.window;
            seen.retain(|_, (start, _)| now.duration_since(*start) < window);
        }
        let entry = seen.entry(ip).or_insert((now, 0));
        if now.duration_since(entry.0) >= self.window {
            *entry = (now, 0);
        }
        if entry.1 >= self.limit {
            let left = self.window.saturating_sub(now.duration_since(entry.0));
            return Err(left.as_secs().max(1));
        }
        entry.1 += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn forwarded_addresses_count_only_behind_a_trusted_proxy() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let none = TrustedProxies::default();
        let xff = headers(&[("x-forwarded-for", "203.0.113.9")]);
        assert_eq!(
            none.client(Some(ip("198.51.100.1")), &xff),
            Some(ip("198.51.100.1")),
            "an untrusted peer cannot choose its address"
        );
        let proxies = TrustedProxies::parse("10.0.0.0/8, 192.168.1.7").unwrap();
        assert_eq!(
            proxies.client(Some(ip("10.1.2.3")), &xff),
            Some(ip("203.0.113.9"))
        );
        // A client that writes its own header: the proxy appends what it saw, read from the right.
        let spoofed = headers(&[("x-forwarded-for", "1.2.3.4, 203.0.113.9, 10.0.0.5")]);
        assert_eq!(
            proxies.client(Some(ip("10.1.2.3")), &spoofed),
            Some(ip("203.0.113.9"))
        );
        let forwarded = headers(&[(
            "forwarded",
            "for=\"[2001:db8::7]:4711\";proto=https, for=192.168.1.7",
        )]);
        assert_eq!(
            proxies.client(Some(ip("10.0.0.1")), &forwarded),
            Some(ip("2001:db8::7"))
        );
        let garbage = headers(&[("x-forwarded-for", "not-an-address, 10.0.0.9")]);
        assert_eq!(
            proxies.client(Some(ip("10.0.0.1")), &garbage),
            Some(ip("10.0.0.9")),
            "a hop that does not parse ends the walk at the last trusted one"
        );
        assert_eq!(
            proxies.client(Some(ip("10.0.0.1")), &HeaderMap::new()),
            Some(ip("10.0.0.1"))
        );
        assert!(TrustedProxies::parse("10.0.0.0/8, nonsense").is_err());
    }

    #[test]
    fn limits_each_address_within_its_window() {
        let l = PerAddress::new(3, Duration::from_secs(60));
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(l.check_at(a, t0).is_ok());
        }
        assert_eq!(l.check_at(a, t0 + Duration::from_secs(10)), Err(50));
        assert!(
            l.check_at(b, t0).is_ok(),
            "another address has its own budget"
        );
        assert!(
            l.check_at(a, t0 + Duration::from_secs(61)).is_ok(),
            "a new window"
        );
    }
}
