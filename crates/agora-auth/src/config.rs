//! The OpenID Connect configuration, built from plain values and checked once.

use url::Url;

use agora_core::{ErrorKind, HasKind};

use crate::provider;

/// The path the redirect URL must end with: fronts serve the provider's callback there.
pub const CALLBACK_PATH: &str = "/auth/oidc/callback";
/// The path of the endpoint that starts a sign-in, beside the callback.
pub const LOGIN_PATH: &str = "/auth/oidc/login";

/// The configuration as given, before it is checked (a front builds it from its own flags,
/// files or environment).
#[derive(Debug, Clone, Default)]
pub struct OidcSettings {
    /// The provider's issuer URL (its discovery document is
    /// `<issuer>/.well-known/openid-configuration`).
    pub issuer: String,
    /// The client id the provider registered for this hub (empty: missing).
    pub client_id: String,
    /// This hub's callback URL as registered at the provider.
    pub redirect_url: Option<String>,
    /// The scopes to request, space-separated; must include `openid`.
    pub scopes: String,
}

/// Why a configuration is refused. The front says it in terms of its own options.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The issuer is not a URL.
    #[error("the issuer {0:?} is not a URL")]
    IssuerNotUrl(String, #[source] url::ParseError),
    /// The issuer is not https (or http on loopback), or has a query or fragment.
    #[error(
        "the issuer {0:?} must be an https URL without query or fragment (http only on loopback)"
    )]
    IssuerNotAcceptable(String),
    /// No client id.
    #[error("the client id is missing")]
    MissingClientId,
    /// No redirect URL.
    #[error("the redirect URL is missing")]
    MissingRedirectUrl,
    /// The redirect URL is not a URL.
    #[error("the redirect URL {0:?} is not a URL")]
    RedirectNotUrl(String, #[source] url::ParseError),
    /// The redirect URL is not https (or http on loopback), has a query or fragment, or its
    /// path does not end with [`CALLBACK_PATH`].
    #[error(
        "the redirect URL {0:?} must be an https URL (http only on loopback) whose path ends with {CALLBACK_PATH}"
    )]
    RedirectNotAcceptable(String),
    /// The scopes lack `openid`.
    #[error("the scopes {0:?} must include openid")]
    NoOpenidScope(String),
    /// The client secret is empty.
    #[error("the OpenID Connect client secret is empty")]
    EmptySecret,
}

impl HasKind for ConfigError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidInput
    }
}

/// Settings that passed every check but the client secret's: the front reads the secret
/// (from wherever it keeps it) only once the rest is known to be good.
#[derive(Debug, Clone)]
pub struct CheckedSettings {
    issuer: String,
    client_id: String,
    redirect_url: Url,
    scopes: String,
}

impl OidcSettings {
    /// Checks, in this order, the issuer, the client id, the redirect URL and the scopes.
    pub fn check(self) -> Result<CheckedSettings, ConfigError> {
        let issuer = self.issuer;
        let url = Url::parse(&issuer).map_err(|e| ConfigError::IssuerNotUrl(issuer.clone(), e))?;
        if !provider::acceptable(&url) || url.query().is_some() || url.fragment().is_some() {
            return Err(ConfigError::IssuerNotAcceptable(issuer));
        }
        if self.client_id.is_empty() {
            return Err(ConfigError::MissingClientId);
        }
        let Some(redirect) = self.redirect_url else {
            return Err(ConfigError::MissingRedirectUrl);
        };
        let redirect_url =
            Url::parse(&redirect).map_err(|e| ConfigError::RedirectNotUrl(redirect.clone(), e))?;
        if !provider::acceptable(&redirect_url)
            || !redirect_url.path().ends_with(CALLBACK_PATH)
            || redirect_url.query().is_some()
            || redirect_url.fragment().is_some()
        {
            return Err(ConfigError::RedirectNotAcceptable(redirect));
        }
        let scopes: Vec<&str> = self.scopes.split_whitespace().collect();
        if !scopes.contains(&"openid") {
            return Err(ConfigError::NoOpenidScope(self.scopes));
        }
        let scopes = scopes.join(" ");
        Ok(CheckedSettings {
            issuer,
            client_id: self.client_id,
            redirect_url,
            scopes,
        })
    }
}

impl CheckedSettings {
    /// The complete configuration, with the client secret (which must not be empty).
    pub fn with_client_secret(self, secret: String) -> Result<OidcConfig, ConfigError> {
        if secret.is_empty() {
            return Err(ConfigError::EmptySecret);
        }
        Ok(OidcConfig {
            issuer: self.issuer,
            client_id: self.client_id,
            client_secret: ClientSecret(secret),
            redirect_url: self.redirect_url,
            scopes: self.scopes,
        })
    }
}

/// A validated OpenID Connect configuration.
#[derive(Debug, Clone)]
pub struct OidcConfig {
    issuer: String,
    client_id: String,
    client_secret: ClientSecret,
    redirect_url: Url,
    scopes: String,
}

#[derive(Clone)]
struct ClientSecret(String);

impl std::fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl OidcConfig {
    /// The provider's issuer URL, as configured.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub(crate) fn client_id(&self) -> &str {
        &self.client_id
    }

    pub(crate) fn client_secret(&self) -> &str {
        &self.client_secret.0
    }

    pub(crate) fn redirect_url(&self) -> &Url {
        &self.redirect_url
    }

    pub(crate) fn scopes(&self) -> &str {
        &self.scopes
    }

    /// Whether the hub is reached over https, so that its cookies must be `Secure`.
    pub fn secure(&self) -> bool {
        self.redirect_url.scheme() == "https"
    }

    /// Where the browser-binding cookie is sent: the directory of the callback, which is
    /// also that of the login endpoint, as the browser sees them (behind any path prefix).
    pub fn binding_path(&self) -> &str {
        let path = self.redirect_url.path();
        &path[..path.len() - "callback".len()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> OidcSettings {
        OidcSettings {
            issuer: "https://id.example".into(),
            client_id: "agora".into(),
            redirect_url: Some("https://hub.example/x/auth/oidc/callback".into()),
            scopes: "openid  email".into(),
        }
    }

    #[test]
    fn a_good_configuration_is_accepted() {
        let config = settings()
            .check()
            .unwrap()
            .with_client_secret("s".into())
            .unwrap();
        assert_eq!(config.scopes(), "openid email");
        assert_eq!(config.binding_path(), "/x/auth/oidc/");
        assert!(config.secure());
        assert!(!format!("{config:?}").contains("\"s\""));
    }

    #[test]
    fn each_check_has_its_error() {
        let bad = |f: fn(&mut OidcSettings)| {
            let mut s = settings();
            f(&mut s);
            s.check().unwrap_err()
        };
        assert!(matches!(
            bad(|s| s.issuer = "nope".into()),
            ConfigError::IssuerNotUrl(..)
        ));
        assert!(matches!(
            bad(|s| s.issuer = "http://id.example".into()),
            ConfigError::IssuerNotAcceptable(_)
        ));
        assert!(matches!(
            bad(|s| s.client_id.clear()),
            ConfigError::MissingClientId
        ));
        assert!(matches!(
            bad(|s| s.redirect_url = None),
            ConfigError::MissingRedirectUrl
        ));
        assert!(matches!(
            bad(|s| s.redirect_url = Some("https://hub.example/cb".into())),
            ConfigError::RedirectNotAcceptable(_)
        ));
        assert!(matches!(
            bad(|s| s.scopes = "email".into()),
            ConfigError::NoOpenidScope(_)
        ));
        assert!(matches!(
            settings()
                .check()
                .unwrap()
                .with_client_secret(String::new()),
            Err(ConfigError::EmptySecret)
        ));
    }
}
