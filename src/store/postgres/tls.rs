//! TLS for the PostgreSQL store: libpq's `sslmode` and `sslrootcert` on rustls.
//!
//! `tokio-postgres` knows `sslmode` `disable`, `prefer` and `require` and no root
//! certificates, so the store takes both options out of the connection string itself
//! ([`take_options`]), hands the rest to the driver, and gives it a rustls connector whose
//! certificate check is the one libpq makes for that mode ([`connector`]).

use std::fmt;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio_postgres_rustls::MakeRustlsConnect;

/// libpq's `sslmode` values, `allow` aside (plain first, TLS if refused: no managed
/// server wants it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SslMode {
    /// No TLS.
    Disable,
    /// TLS when the server offers it, else plain; the default.
    Prefer,
    /// TLS, or no connection.
    Require,
    /// TLS, with the server's certificate chain checked against the roots.
    VerifyCa,
    /// As `VerifyCa`, and the certificate names the host connected to.
    VerifyFull,
}

impl SslMode {
    fn parse(value: &str) -> Option<Self> {
        Some(match value {
            "disable" => Self::Disable,
            "prefer" => Self::Prefer,
            "require" => Self::Require,
            "verify-ca" => Self::VerifyCa,
            "verify-full" => Self::VerifyFull,
            _ => return None,
        })
    }

    /// The mode the driver negotiates with: it knows no verification modes.
    pub(super) fn driver(self) -> tokio_postgres::config::SslMode {
        use tokio_postgres::config::SslMode as Driver;
        match self {
            Self::Disable => Driver::Disable,
            Self::Prefer => Driver::Prefer,
            Self::Require | Self::VerifyCa | Self::VerifyFull => Driver::Require,
        }
    }
}

/// The TLS options a connection string gave.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct SslOptions {
    /// `sslmode`, if given.
    pub(super) mode: Option<SslMode>,
    /// `sslrootcert`, if given: a PEM file, or `system`.
    pub(super) root_cert: Option<String>,
}

/// The options this module reads, which the driver would refuse.
const TAKEN: [&str; 2] = ["sslmode", "sslrootcert"];

/// `s` without its `sslmode` and `sslrootcert` options, and their values. The error names
/// the option, never a value (a value may be a misplaced part of a password).
pub(super) fn take_options(s: &str) -> Result<(String, SslOptions), String> {
    let (rest, taken) = match ["postgres://", "postgresql://"]
        .iter()
        .find(|prefix| s.starts_with(*prefix))
    {
        Some(prefix) => take_from_url(s, prefix.len()),
        None => take_from_key_value(s),
    };
    let mut options = SslOptions::default();
    for (key, value) in taken {
        if key == "sslmode" {
            let mode = SslMode::parse(&value).ok_or_else(|| {
                "invalid value for option `sslmode`: it takes disable, prefer, require, \
                 verify-ca or verify-full"
                    .to_owned()
            })?;
            options.mode = Some(mode);
        } else if value.is_empty() {
            return Err("option `sslrootcert` is empty".to_owned());
        } else {
            options.root_cert = Some(value);
        }
    }
    Ok((rest, options))
}

/// A URL's query without the taken options; the query starts at the first `?` after the
/// user info (the store refuses URLs whose `@` is ambiguous before this runs).
fn take_from_url(s: &str, start: usize) -> (String, Vec<(String, String)>) {
    let after_user = s[start..].rfind('@').map_or(start, |at| start + at + 1);
    let Some(query) = s[after_user..].find('?').map(|i| after_user + i) else {
        return (s.to_owned(), Vec::new());
    };
    let mut kept = Vec::new();
    let mut taken = Vec::new();
    for pair in s[query + 1..].split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match crate::redact::percent_decode(key) {
            Some(key) if TAKEN.contains(&key.as_str()) => {
                taken.push((
                    key,
                    crate::redact::percent_decode(value).unwrap_or_default(),
                ));
            }
            _ => kept.push(pair),
        }
    }
    let mut rest = s[..query].to_owned();
    if !kept.is_empty() {
        rest.push('?');
        rest.push_str(&kept.join("&"));
    }
    (rest, taken)
}

/// A key-value string without the taken options, read as the driver reads it: a value is
/// quoted (`'…'`) or runs to the next whitespace, with `\` escaping the next character.
/// From a parameter that does not parse on, the string is left as it is for the driver
/// to report.
fn take_from_key_value(s: &str) -> (String, Vec<(String, String)>) {
    let mut it = s.char_indices().peekable();
    let mut cut = Vec::new();
    let mut taken = Vec::new();
    loop {
        while it.next_if(|&(_, c)| c.is_whitespace()).is_some() {}
        let Some(&(param, _)) = it.peek() else { break };
        while it
            .next_if(|&(_, c)| !c.is_whitespace() && c != '=')
            .is_some()
        {}
        let key_end = it.peek().map_or(s.len(), |&(i, _)| i);
        while it.next_if(|&(_, c)| c.is_whitespace()).is_some() {}
        if key_end == param || it.next_if(|&(_, c)| c == '=').is_none() {
            break;
        }
        while it.next_if(|&(_, c)| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        let mut closed = true;
        if it.next_if(|&(_, c)| c == '\'').is_some() {
            closed = false;
            while let Some((_, c)) = it.next() {
                match c {
                    '\\' => value.extend(it.next().map(|(_, c)| c)),
                    '\'' => {
                        closed = true;
                        break;
                    }
                    c => value.push(c),
                }
            }
        } else {
            while let Some((_, c)) = it.next_if(|&(_, c)| !c.is_whitespace()) {
                if c == '\\' {
                    value.extend(it.next().map(|(_, c)| c));
                } else {
                    value.push(c);
                }
            }
        }
        if !closed {
            break;
        }
        let end = it.peek().map_or(s.len(), |&(i, _)| i);
        let key = &s[param..key_end];
        if TAKEN.contains(&key) {
            cut.push(param..end);
            taken.push((key.to_owned(), value));
        }
    }
    let mut rest = String::with_capacity(s.len());
    let mut shown = 0;
    for range in cut {
        rest.push_str(&s[shown..range.start]);
        // The whitespace after a cut parameter goes with it.
        shown = range.end + (s[range.end..].len() - s[range.end..].trim_start().len());
    }
    rest.push_str(&s[shown..]);
    (rest, taken)
}

/// Where the trusted roots come from.
#[derive(Debug, Default)]
pub(super) struct Roots {
    /// Certificates the host gave: the `sslrootcert` file, the configured CA file and PEM.
    pub(super) given: Vec<CertificateDer<'static>>,
    /// `sslrootcert=system`: the bundled Mozilla roots.
    pub(super) system: bool,
}

/// Reads the certificates of a PEM file; `what` names it in the error.
pub(super) fn read_pem_file(
    path: &std::path::Path,
    what: &str,
) -> Result<Vec<CertificateDer<'static>>, String> {
    let bytes = std::fs::read(path)
        .map_err(|e| format!("cannot read the {what} {}: {e}", path.display()))?;
    read_pem(&bytes, &format!("the {what} {}", path.display()))
}

/// The certificates of PEM text; `what` names it in the error.
pub(super) fn read_pem(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{what} is not valid PEM: {e}"))?;
    if certs.is_empty() {
        return Err(format!("{what} holds no certificate"));
    }
    Ok(certs)
}

/// The connector for `mode`: libpq's checks, on rustls with the `ring` provider.
///
/// - Given roots: the chain is checked against them in every mode that uses TLS (libpq
///   checks the chain whenever it has a root certificate), the host name as well under
///   `verify-full`.
/// - `sslrootcert=system`: Mozilla's roots, and `verify-full` only (as libpq).
/// - No roots: `verify-ca` and `verify-full` check against Mozilla's roots; `prefer` and
///   `require` encrypt without checking the certificate, as libpq does.
pub(super) fn connector(mode: SslMode, roots: Roots) -> Result<MakeRustlsConnect, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    if roots.system && mode != SslMode::VerifyFull {
        return Err(
            "sslrootcert=system takes sslmode=verify-full (as libpq): a weaker mode would \
             not check that the certificate names the server"
                .to_owned(),
        );
    }
    let store = if !roots.given.is_empty() {
        let mut store = RootCertStore::empty();
        for cert in roots.given {
            store
                .add(cert)
                .map_err(|e| format!("a root certificate is not usable: {e}"))?;
        }
        Some(store)
    } else if roots.system || matches!(mode, SslMode::VerifyCa | SslMode::VerifyFull) {
        Some(RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        })
    } else {
        None
    };
    let verifier: Arc<dyn ServerCertVerifier> = match store {
        None => Arc::new(Unverified {
            algorithms: provider.signature_verification_algorithms,
        }),
        Some(store) => {
            let webpki =
                WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider.clone())
                    .build()
                    .map_err(|e| format!("the root certificates are not usable: {e}"))?;
            if mode == SslMode::VerifyFull {
                webpki
            } else {
                Arc::new(ChainOnly(webpki))
            }
        }
    };
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("cannot set up TLS: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

/// `prefer` and `require` without roots: the certificate is not checked, only the
/// handshake's signatures made with its key.
#[derive(Debug)]
struct Unverified {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Unverified {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// `verify-ca` (and `prefer`/`require` with roots): the chain is checked, the name not.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // The name is checked after the chain: a name error means the chain passed.
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// What went wrong with TLS in a driver error, in words, or `None` when it is not a TLS
/// failure.
pub(super) fn problem(e: &tokio_postgres::Error) -> Option<String> {
    let mut source = std::error::Error::source(e);
    while let Some(error) = source {
        let rustls = error.downcast_ref::<rustls::Error>().or_else(|| {
            error
                .downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        });
        if let Some(rustls) = rustls {
            return Some(describe(rustls));
        }
        if error.to_string() == "server does not support TLS" {
            return Some(
                "the server does not offer TLS, and the sslmode asks for it (require, \
                 verify-ca or verify-full)"
                    .to_owned(),
            );
        }
        source = error.source();
    }
    None
}

/// A rustls error in words, with what to do about it.
fn describe(e: &rustls::Error) -> String {
    match e {
        rustls::Error::InvalidCertificate(cert) => match cert {
            CertificateError::UnknownIssuer | CertificateError::BadSignature => format!(
                "the server's certificate is not signed by a trusted certificate authority \
                 ({e}); give the server's CA with sslrootcert=<file> or \
                 PostgresConfig::with_ca_file"
            ),
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                format!(
                    "the server's certificate is not issued for the host connected to ({e}); \
                     connect by a name the certificate holds, or use sslmode=verify-ca"
                )
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                format!("the server's certificate has expired ({e})")
            }
            _ => format!("the server's certificate is refused ({e})"),
        },
        _ => format!("the TLS handshake failed ({e})"),
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Disable => "disable",
            Self::Prefer => "prefer",
            Self::Require => "require",
            Self::VerifyCa => "verify-ca",
            Self::VerifyFull => "verify-full",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_come_out_of_urls() {
        let (rest, options) = take_options(
            "postgres://u:p%3Fx@db:5432/shop?sslmode=verify-full&application_name=a\
             &sslrootcert=%2Fetc%2Fca.pem",
        )
        .unwrap();
        assert_eq!(rest, "postgres://u:p%3Fx@db:5432/shop?application_name=a");
        assert_eq!(options.mode, Some(SslMode::VerifyFull));
        assert_eq!(options.root_cert.as_deref(), Some("/etc/ca.pem"));
        let (rest, options) = take_options("postgresql://db/shop?sslmode=require").unwrap();
        assert_eq!(rest, "postgresql://db/shop");
        assert_eq!(options.mode, Some(SslMode::Require));
        let (rest, options) = take_options("postgres://u:a?b@db/shop").unwrap();
        assert_eq!(rest, "postgres://u:a?b@db/shop");
        assert_eq!(options, SslOptions::default());
    }

    #[test]
    fn options_come_out_of_key_value_strings() {
        let (rest, options) = take_options(
            "host=db sslmode = verify-ca password='a b' sslrootcert='/my ca\\'s.pem' user=x",
        )
        .unwrap();
        assert_eq!(rest, "host=db password='a b' user=x");
        assert_eq!(options.mode, Some(SslMode::VerifyCa));
        assert_eq!(options.root_cert.as_deref(), Some("/my ca's.pem"));
        // A string that does not parse is left for the driver to report.
        let (rest, _) = take_options("host=db password='unterminated").unwrap();
        assert_eq!(rest, "host=db password='unterminated");
    }

    #[test]
    fn bad_values_are_named_not_shown() {
        let err = take_options("host=db sslmode=s3cret").unwrap_err();
        assert!(
            err.contains("`sslmode`") && !err.contains("s3cret"),
            "{err}"
        );
        let err = take_options("postgres://db/x?sslrootcert=").unwrap_err();
        assert!(err.contains("sslrootcert"), "{err}");
    }

    #[test]
    fn system_roots_take_verify_full() {
        let system = || Roots {
            given: Vec::new(),
            system: true,
        };
        assert!(connector(SslMode::Require, system()).is_err());
        assert!(connector(SslMode::VerifyFull, system()).is_ok());
        assert!(connector(SslMode::Prefer, Roots::default()).is_ok());
    }

    #[test]
    fn pem_without_certificates_is_refused() {
        let err = read_pem(b"not a certificate", "the CA").unwrap_err();
        assert!(err.contains("holds no certificate"), "{err}");
    }
}
