//! Network addresses in configuration: listen addresses, dialable `host:port` pairs and seeds
//! (ops.md §2.4, cluster.md §1).
//!
//! Listen addresses are resolved once at start (ops.md §2.4) so the bind on every data core uses
//! the same IP. Dialable addresses (DIST_ADVERTISE, seeds) are kept as text and never resolved
//! here: peers may not exist yet when this node starts (Kubernetes creates DNS records late), and
//! the name is what other nodes should dial.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};

use super::is_valid_node_id;

/// A listen address as configured (`text`, e.g. `:8080`) and as resolved (`addr`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenAddr {
    /// The trimmed configured text; shown in `/config` and in bind errors (ops.md §4).
    pub text: String,
    pub addr: SocketAddr,
}

impl ListenAddr {
    /// Parses `host:port`, `[ipv6]:port` or `:port` (all interfaces, 0.0.0.0); port 0-65535.
    ///
    /// A host name is resolved once with the system resolver; when it has both IPv4 and IPv6
    /// addresses the first IPv4 one is used, as Go's listeners prefer IPv4 for `localhost`.
    pub fn parse(text: &str) -> Result<ListenAddr, String> {
        let (host, port) = split_host_port(text)?;
        let ip = if host.is_empty() {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        } else if let Ok(ip) = host.parse::<IpAddr>() {
            ip
        } else {
            let found: Vec<SocketAddr> = (host, port)
                .to_socket_addrs()
                .map_err(|e| format!("cannot resolve host {host:?} ({e})"))?
                .collect();
            match found.iter().find(|a| a.is_ipv4()).or(found.first()) {
                Some(a) => a.ip(),
                None => return Err(format!("host {host:?} has no address")),
            }
        };
        Ok(ListenAddr {
            text: text.to_string(),
            addr: SocketAddr::new(ip, port),
        })
    }

    /// The configured host without brackets (`""` for `:port`), as peers would dial it.
    pub fn host(&self) -> &str {
        split_host_port(&self.text).map_or("", |(h, _)| h)
    }
}

/// A dialable address kept as configured: the host is a name or an IP literal (IPv6 without
/// brackets; `Display` adds them back).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostPort {
    pub host: String,
    pub port: u16,
}

impl HostPort {
    /// Parses `host:port` or `[ipv6]:port` with a non-empty host and a port of 1-65535.
    pub fn parse(text: &str) -> Result<HostPort, String> {
        let (host, port) = split_host_port(text)?;
        if host.is_empty() {
            return Err("the host is empty".to_string());
        }
        if port == 0 {
            return Err("port 0 cannot be dialled".to_string());
        }
        Ok(HostPort {
            host: host.to_string(),
            port,
        })
    }

    /// cluster.md §1: not routable when the host is empty or unspecified (`0.0.0.0`, `::`) or
    /// the port is 0. Loopback is routable on purpose (local clusters).
    pub fn is_routable(&self) -> bool {
        let unspecified = self
            .host
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_unspecified());
        !self.host.is_empty() && !unspecified && self.port != 0
    }

    /// Compares addresses the way DNS does: host names are case-insensitive.
    pub fn same_as(&self, other: &HostPort) -> bool {
        self.port == other.port && self.host.eq_ignore_ascii_case(&other.host)
    }
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// One `HYPERCACHE_SEEDS` entry: `id@host:port` (a member at once) or `host:port` (a pending
/// seed whose id is learned from its gossip answer), cluster.md §1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seed {
    pub id: Option<String>,
    pub addr: HostPort,
}

impl Seed {
    /// Parses one trimmed, non-empty entry; the id follows the NODE_ID rules.
    pub fn parse(entry: &str) -> Result<Seed, String> {
        let (id, addr) = match entry.split_once('@') {
            Some((id, addr)) => {
                if !is_valid_node_id(id) {
                    return Err(format!(
                        "node id {id:?} is not 1-128 characters of A-Z a-z 0-9 . _ -"
                    ));
                }
                (Some(id.to_string()), addr)
            }
            None => (None, entry),
        };
        Ok(Seed {
            id,
            addr: HostPort::parse(addr)?,
        })
    }
}

impl fmt::Display for Seed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.id {
            Some(id) => write!(f, "{id}@{}", self.addr),
            None => write!(f, "{}", self.addr),
        }
    }
}

/// Splits `host:port`, `[ipv6]:port` or `:port` into the host (without brackets, possibly
/// empty) and the port (0-65535). Like Go's `net.SplitHostPort`, a bare IPv6 address is refused
/// because `::1:80` is ambiguous. Host names are limited to DNS characters (plus `_`, which
/// Docker service names use) so a stray space or `@` is caught here rather than by the resolver.
pub(crate) fn split_host_port(text: &str) -> Result<(&str, u16), String> {
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| "missing ']' after the IPv6 address".to_string())?;
        let port = after
            .strip_prefix(':')
            .ok_or_else(|| "missing :port after ']'".to_string())?;
        if host.parse::<Ipv6Addr>().is_err() {
            return Err(format!("[{host}] is not an IPv6 address"));
        }
        (host, port)
    } else {
        let (host, port) = text
            .rsplit_once(':')
            .ok_or_else(|| "missing :port".to_string())?;
        if host.contains(':') {
            return Err("an IPv6 address needs brackets, as in [::1]:7946".to_string());
        }
        if !host.is_empty() && host.parse::<Ipv4Addr>().is_err() && !is_host_name(host) {
            return Err(format!("{host:?} is not a host name or IP address"));
        }
        (host, port)
    };
    Ok((host, parse_port(port)?))
}

fn is_host_name(s: &str) -> bool {
    s.len() <= 253
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
}

fn parse_port(s: &str) -> Result<u16, String> {
    // Digits only: u16::from_str would accept "+80", and Go's service names ("http") are not
    // supported.
    if s.is_empty() || s.len() > 5 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("port {s:?} is not a number from 0 to 65535"));
    }
    s.parse::<u16>()
        .map_err(|_| format!("port {s} is not a number from 0 to 65535"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listen(text: &str) -> SocketAddr {
        ListenAddr::parse(text).unwrap().addr
    }

    #[test]
    fn listen_forms() {
        assert_eq!(listen(":8080"), "0.0.0.0:8080".parse().unwrap());
        assert_eq!(listen("127.0.0.1:0"), "127.0.0.1:0".parse().unwrap());
        assert_eq!(listen("[::1]:7946"), "[::1]:7946".parse().unwrap());
        assert_eq!(listen("[::]:65535"), "[::]:65535".parse().unwrap());
        assert_eq!(listen("0.0.0.0:1"), "0.0.0.0:1".parse().unwrap());
        let l = ListenAddr::parse("localhost:8081").unwrap();
        assert!(l.addr.ip().is_loopback());
        assert_eq!(l.addr.port(), 8081);
        assert_eq!(l.text, "localhost:8081");
        assert_eq!(l.host(), "localhost");
        assert_eq!(ListenAddr::parse(":1").unwrap().host(), "");
        assert_eq!(ListenAddr::parse("[::1]:1").unwrap().host(), "::1");
    }

    #[test]
    fn listen_rejects() {
        for text in [
            "",
            "8080",
            ":",
            ":65536",
            ":-1",
            ":+80",
            ":http",
            "::1:80",
            "[::1]",
            "[::1]80",
            "[1.2.3.4]:80",
            "[::1:80",
            "a b:80",
            "host@x:80",
            "127.0.0.1:8080x",
        ] {
            assert!(ListenAddr::parse(text).is_err(), "{text:?}");
        }
        let err = ListenAddr::parse("no-such-host.invalid:80").unwrap_err();
        assert!(err.contains("no-such-host.invalid"), "{err}");
    }

    #[test]
    fn host_port_forms() {
        let hp = HostPort::parse("hc-2:7946").unwrap();
        assert_eq!((hp.host.as_str(), hp.port), ("hc-2", 7946));
        assert_eq!(hp.to_string(), "hc-2:7946");
        let v6 = HostPort::parse("[fe80::1]:1").unwrap();
        assert_eq!(v6.host, "fe80::1");
        assert_eq!(v6.to_string(), "[fe80::1]:1");
        for text in [":7946", "h:0", "h", "h:", "h:99999", "[::1]:0", "a,b:1"] {
            assert!(HostPort::parse(text).is_err(), "{text:?}");
        }
    }

    #[test]
    fn routability() {
        let hp = |h: &str, p| HostPort {
            host: h.to_string(),
            port: p,
        };
        assert!(hp("127.0.0.1", 7946).is_routable());
        assert!(hp("::1", 7946).is_routable());
        assert!(hp("hc-1", 1).is_routable());
        assert!(!hp("", 7946).is_routable());
        assert!(!hp("0.0.0.0", 7946).is_routable());
        assert!(!hp("::", 7946).is_routable());
        assert!(!hp("0:0::0", 7946).is_routable());
        assert!(!hp("hc-1", 0).is_routable());
        assert!(hp("HC-1", 1).same_as(&hp("hc-1", 1)));
        assert!(!hp("hc-1", 1).same_as(&hp("hc-1", 2)));
    }

    #[test]
    fn seed_forms() {
        let s = Seed::parse("node-2@hc-2:7946").unwrap();
        assert_eq!(s.id.as_deref(), Some("node-2"));
        assert_eq!(s.addr.to_string(), "hc-2:7946");
        assert_eq!(s.to_string(), "node-2@hc-2:7946");
        let bare = Seed::parse("10.0.0.2:7946").unwrap();
        assert_eq!(bare.id, None);
        assert_eq!(bare.to_string(), "10.0.0.2:7946");
        assert_eq!(Seed::parse("n@[::1]:7").unwrap().to_string(), "n@[::1]:7");
        for text in ["@h:1", "bad id@h:1", "a@b@h:1", "n@h", "n@:1", "n@h:0", "h"] {
            assert!(Seed::parse(text).is_err(), "{text:?}");
        }
    }
}
