//! Bearer tokens: API tokens and session tokens, as every front receives them.

use agora_service::{Authenticated, Credential, Hub};

/// Resolves a session token or an API token through the query service: `None` for anything
/// that does not authenticate (unknown, revoked, expired, or a deactivated user), an error
/// only when the store fails.
pub async fn resolve_token(hub: &Hub, token: &str) -> agora_service::Result<Option<Authenticated>> {
    match hub.query().authenticate(Credential::Token(token)).await {
        Ok(who) => Ok(Some(who)),
        Err(agora_service::Error::Unauthenticated) => Ok(None),
        Err(e) => Err(e),
    }
}
