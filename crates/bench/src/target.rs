//! The server under test: a base URL that must point at this machine's loopback.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use anyhow::{Context, Result, bail};
use url::{Host, Url};

/// Where the server is, checked to be loopback and resolved once.
#[derive(Debug, Clone)]
pub struct Target {
    /// `http://host:port` as given (origin only).
    pub origin: Url,
    /// The resolved loopback socket address every connection goes to.
    pub addr: SocketAddr,
    /// `ws://host:port/api/v1/ws` (without the token).
    pub ws_url: String,
}

/// Accepts `http://` URLs whose host is `localhost`, an address in 127.0.0.0/8, or `[::1]`,
/// with no path beyond `/`, no credentials, query or fragment. Anything else is refused:
/// this tool sends load, and load goes to this machine only.
pub fn check_loopback(url: &Url) -> Result<()> {
    if url.scheme() != "http" {
        bail!(
            "--url must be a plain http:// URL on loopback (got scheme {:?})",
            url.scheme()
        );
    }
    if !url.username().is_empty() || url.password().is_some() {
        bail!("--url must not carry credentials");
    }
    if url.query().is_some() || url.fragment().is_some() {
        bail!("--url must not have a query or fragment");
    }
    if !matches!(url.path(), "" | "/") {
        bail!(
            "--url is the server's origin, e.g. http://127.0.0.1:8080 (got path {:?})",
            url.path()
        );
    }
    match url.host() {
        Some(Host::Domain(d)) if d.eq_ignore_ascii_case("localhost") => Ok(()),
        Some(Host::Ipv4(ip)) if ip.is_loopback() => Ok(()),
        Some(Host::Ipv6(ip)) if ip == Ipv6Addr::LOCALHOST => Ok(()),
        Some(host) => bail!(
            "refusing to load {host}: only loopback targets are allowed \
             (localhost, 127.0.0.0/8 or [::1])"
        ),
        None => bail!("--url has no host"),
    }
}

/// True for the addresses a loopback URL may resolve to.
pub fn is_loopback_addr(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => v6 == Ipv6Addr::LOCALHOST,
    }
}

impl Target {
    /// Parses, checks and resolves `--url`. A name that resolves to anything but loopback
    /// addresses is refused too.
    pub async fn resolve(raw: &str) -> Result<Self> {
        let origin = Url::parse(raw).with_context(|| format!("--url {raw:?} is not a URL"))?;
        check_loopback(&origin)?;
        let host = origin.host_str().context("--url has no host")?.to_owned();
        let port = origin.port_or_known_default().unwrap_or(80);
        let lookup_host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((lookup_host.as_str(), port))
            .await
            .with_context(|| format!("cannot resolve {host}"))?
            .collect();
        if addrs.is_empty() {
            bail!("{host} resolves to nothing");
        }
        if let Some(bad) = addrs.iter().find(|a| !is_loopback_addr(a.ip())) {
            bail!("{host} resolves to {bad}, which is not loopback; refusing");
        }
        // Prefer IPv4 loopback (the server's default bind) when a name gives both.
        let addr = addrs
            .iter()
            .find(|a| a.is_ipv4())
            .or_else(|| addrs.first())
            .copied()
            .context("no address")?;
        let ws_url = format!("ws://{}/api/v1/ws", host_port(&origin)?);
        Ok(Self {
            origin,
            addr,
            ws_url,
        })
    }

    /// `http://host:port/api/v1/<path>`.
    pub fn api(&self, path: &str) -> Result<Url> {
        self.origin
            .join(&format!("/api/v1/{}", path.trim_start_matches('/')))
            .context("building an API URL")
    }

    /// The WebSocket URL with `?token=` (percent-encoded).
    pub fn ws_with_token(&self, token: &str) -> String {
        let encoded: String = url::form_urlencoded::byte_serialize(token.as_bytes()).collect();
        format!("{}?token={encoded}", self.ws_url)
    }
}

fn host_port(url: &Url) -> Result<String> {
    let host = match url.host() {
        Some(Host::Ipv6(ip)) => format!("[{ip}]"),
        Some(h) => h.to_string(),
        None => bail!("--url has no host"),
    };
    Ok(match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> bool {
        Url::parse(s).is_ok_and(|u| check_loopback(&u).is_ok())
    }

    #[test]
    fn loopback_hosts_are_accepted() {
        assert!(ok("http://127.0.0.1:8080"));
        assert!(ok("http://127.0.0.1:8080/"));
        assert!(ok("http://127.1.2.3:9000"));
        assert!(ok("http://127.255.255.254"));
        assert!(ok("http://localhost:8080"));
        assert!(ok("http://LOCALHOST:8080"));
        assert!(ok("http://[::1]:8080"));
    }

    #[test]
    fn everything_else_is_refused() {
        assert!(!ok("http://128.0.0.1:8080"));
        assert!(!ok("http://10.0.0.1:8080"));
        assert!(!ok("http://192.168.1.10"));
        assert!(!ok("http://172.16.0.1"));
        assert!(!ok("http://0.0.0.0:8080"));
        assert!(!ok("http://example.com"));
        assert!(!ok("http://localhost.example.com"));
        assert!(!ok("http://127.0.0.1.nip.io"));
        assert!(!ok("http://[::2]:8080"));
        assert!(!ok("http://[::ffff:127.0.0.1]:8080"));
        assert!(!ok("http://[::]:8080"));
        assert!(!ok("https://127.0.0.1:8080"));
        assert!(!ok("ws://127.0.0.1:8080"));
        assert!(!ok("http://user:pw@127.0.0.1:8080"));
        assert!(!ok("http://127.0.0.1:8080/api/v1"));
        assert!(!ok("http://127.0.0.1:8080/?x=1"));
    }

    #[test]
    fn url_parser_normalises_odd_ipv4_spellings() {
        // The WHATWG parser turns these into 127.0.0.1; they are loopback, so fine.
        assert!(ok("http://2130706433:8080"));
        assert!(ok("http://0x7f.1:8080"));
        // ...and these into non-loopback addresses, refused.
        assert!(!ok("http://3232235777"));
    }

    #[tokio::test]
    async fn resolve_builds_urls() -> Result<()> {
        let t = Target::resolve("http://127.0.0.1:18080").await?;
        assert_eq!(t.addr, "127.0.0.1:18080".parse::<SocketAddr>()?);
        assert_eq!(t.ws_url, "ws://127.0.0.1:18080/api/v1/ws");
        assert_eq!(
            t.api("auth/login")?.as_str(),
            "http://127.0.0.1:18080/api/v1/auth/login"
        );
        assert_eq!(
            t.ws_with_token("a.b+c/d="),
            "ws://127.0.0.1:18080/api/v1/ws?token=a.b%2Bc%2Fd%3D"
        );
        let v6 = Target::resolve("http://[::1]:18080").await?;
        assert_eq!(v6.ws_url, "ws://[::1]:18080/api/v1/ws");
        assert!(Target::resolve("http://10.1.1.1:8080").await.is_err());
        Ok(())
    }
}
