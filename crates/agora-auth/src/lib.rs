//! Authentication that Agora's fronts share, without any HTTP framework: bearer tokens
//! ([`resolve_token`]: API and session tokens through the query service) and signing in with
//! OpenID Connect (the authorization-code flow with PKCE, S256, for a confidential client).
//!
//! ```text
//! browser ── login ──► front ── SignIns::start ──► new state, nonce, PKCE verifier (kept in
//!    │                                              memory, 10 minutes, single use) + binding
//!    ◄── redirect to the provider's /authorize?state&nonce&code_challenge
//!    │   (the person signs in at the provider)
//!    └── callback?code&state ──► front ── SignIns::finish ──► state known, unexpired, same
//!                                          browser (binding)
//!                                          ├─ POST token endpoint (code + verifier + secret)
//!                                          ├─ ID token: signature (JWKS), iss, aud/azp,
//!                                          │  exp/iat, nonce
//!                                          ├─ (issuer, subject) → local user (governance)
//!    ◄── the front's answer: session cookie ┘─ new session
//! ```
//!
//! What is here: the configuration ([`OidcSettings`] → [`CheckedSettings`] → [`OidcConfig`],
//! from plain values: the front reads its flags, files and environment), the provider client
//! (discovery, JWK Set cache and token endpoint over blocking `ureq`), the ID-token checks
//! (pure; signatures with `ring`), and the sign-ins in flight. What is not: HTTP. Errors carry
//! an [`agora_core::ErrorKind`] and variants; the front decides what the browser sees and
//! with which status ([`SignInError::is_upstream`] marks the provider's failures).
//!
//! ```
//! let settings = agora_auth::OidcSettings {
//!     issuer: "https://id.example".into(),
//!     client_id: "agora".into(),
//!     redirect_url: Some("https://hub.example/auth/oidc/callback".into()),
//!     scopes: "openid email profile".into(),
//! };
//! let config = settings.check()?.with_client_secret("s3cret".into())?;
//! assert!(config.secure());
//! assert_eq!(config.binding_path(), "/auth/oidc/");
//! # Ok::<(), agora_auth::ConfigError>(())
//! ```
#![warn(missing_docs)]

mod config;
mod jwt;
mod pending;
mod provider;
mod signin;
mod token;

pub use config::{
    CALLBACK_PATH, CheckedSettings, ConfigError, LOGIN_PATH, OidcConfig, OidcSettings,
};
pub use jwt::TokenError;
pub use pending::TTL as SIGN_IN_TTL;
pub use provider::ProviderError;
pub use signin::{AuthorizationResponse, SignInError, SignIns, SignedIn, Started};
pub use token::resolve_token;
