//! API tokens: high-entropy random strings, stored only as their SHA-256 digest.
//! A token is 32 random bytes (256 bits), so a fast digest is enough — checking one
//! costs microseconds, unlike a password hash — and a stolen database does not
//! reveal tokens.

use sha2::{Digest, Sha256};
use suanwang_store::{Role, Store, TokenRecord};

/// Prefix of every token, so that one found in a log is recognisable.
pub const TOKEN_PREFIX: &str = "sw_";

/// A new random token.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system's random source works");
    format!("{TOKEN_PREFIX}{}", hex::encode(bytes))
}

/// The hex SHA-256 digest of a token, as stored.
pub fn digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Issues a new token with `role`, acting for `tenant` (created if new), stores its
/// digest and returns the token — the only time it exists in clear.
pub async fn issue_token<S: Store>(
    store: &S,
    role: Role,
    tenant: Option<&str>,
    now: i64,
) -> suanwang_store::Result<String> {
    let tenant_id = match tenant {
        Some(name) => Some(store.tenant(name, now).await?.id),
        None => None,
    };
    let token = new_token();
    store
        .insert_token(
            &TokenRecord {
                digest: digest(&token),
                tenant_id,
                role,
            },
            now,
        )
        .await?;
    Ok(token)
}

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Role.
    pub role: Role,
    /// Tenant, for the tenant role.
    pub tenant_id: Option<i64>,
}

impl Principal {
    /// Whether the caller may see jobs of `tenant_id`.
    pub fn may_see(&self, tenant_id: i64) -> bool {
        match self.role {
            Role::Admin | Role::Operator => true,
            Role::Tenant => self.tenant_id == Some(tenant_id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_digests_stable() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert!(a.starts_with(TOKEN_PREFIX) && a.len() == TOKEN_PREFIX.len() + 64);
        assert_eq!(digest(&a), digest(&a));
        assert_eq!(
            digest("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
