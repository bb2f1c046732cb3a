//! Tenants and API tokens (admins only).

use serde::{Deserialize, Serialize};
use suanwang_model::Role;

/// A tenant.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TenantDoc {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: String,
}

/// Body of a new tenant.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTenant {
    /// 1 to 64 characters: letters, digits, `-`, `_`, `.`.
    #[schema(pattern = r"^[A-Za-z0-9._-]{1,64}$")]
    pub name: String,
}

/// Body of a new token: its role, and for a tenant's token, the tenant it acts
/// for (created if new).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
// Admin and operator are empty struct variants, not unit ones: serde lets a unit
// variant of an internally tagged enum ignore fields, so `{"role": "admin",
// "tenant": "x"}` would pass.
#[serde(tag = "role", rename_all = "lowercase", deny_unknown_fields)]
pub enum NewToken {
    /// Everything, including tenants and tokens.
    Admin {},
    /// Sites, links, agents and every job.
    Operator {},
    /// One tenant's own jobs.
    Tenant {
        /// The tenant's name (1 to 64 letters, digits, `-`, `_`, `.`).
        #[schema(pattern = r"^[A-Za-z0-9._-]{1,64}$")]
        tenant: String,
    },
    /// A provider's own sites, their agents and the jobs on them (admins only).
    Provider {
        /// The provider's name (created if new; give it sites with
        /// `PUT /v1/providers/{name}`).
        #[schema(pattern = r"^[A-Za-z0-9._-]{1,64}$")]
        provider: String,
    },
    /// An agent's credential, good for one site only. Admins issue it for any
    /// site; a provider for its own sites.
    Agent {
        /// The site (1 to 64 letters, digits, `-`, `_`, `.`).
        #[schema(pattern = r"^[A-Za-z0-9._-]{1,64}$")]
        site: String,
    },
}

impl NewToken {
    /// Its role.
    pub fn role(&self) -> Role {
        match self {
            NewToken::Admin {} => Role::Admin,
            NewToken::Operator {} => Role::Operator,
            NewToken::Tenant { .. } => Role::Tenant,
            NewToken::Provider { .. } => Role::Provider,
            NewToken::Agent { .. } => Role::Agent,
        }
    }

    /// The site it acts for (agent role).
    pub fn site(&self) -> Option<&str> {
        match self {
            NewToken::Agent { site } => Some(site),
            _ => None,
        }
    }

    /// The provider it acts for (provider role).
    pub fn provider(&self) -> Option<&str> {
        match self {
            NewToken::Provider { provider } => Some(provider),
            _ => None,
        }
    }

    /// The tenant it acts for.
    pub fn tenant(&self) -> Option<&str> {
        match self {
            NewToken::Tenant { tenant } => Some(tenant),
            _ => None,
        }
    }
}

/// A token just issued: the only time it is shown.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct IssuedToken {
    /// The token. Store it now: only its digest is kept.
    pub token: String,
    /// Its id (the first 16 hex digits of its digest), to list or revoke it.
    pub id: String,
    /// Role.
    pub role: Role,
    /// Tenant, for the tenant role.
    pub tenant: Option<String>,
    /// Provider, for the provider role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// Site, for the agent role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
}

/// A stored token, as an admin sees it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TokenDoc {
    /// The first 16 hex digits of its digest.
    pub id: String,
    /// Role.
    pub role: Role,
    /// Tenant id, for the tenant role.
    pub tenant_id: Option<i64>,
    /// Provider id: for the provider role, and for an agent's token a provider
    /// issued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_id: Option<i64>,
    /// Site, for the agent role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
}

/// A provider: a company that owns sites.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProviderDoc {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// The sites it owns, sorted (a site may be named before it joins).
    pub sites: Vec<String>,
}

/// Body of `PUT /v1/providers/{name}`: the sites the provider owns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProviderSites {
    /// Site ids (each 1 to 64 letters, digits, `-`, `_`, `.`); a site has one
    /// owner at most.
    #[schema(max_items = 1000)]
    pub sites: Vec<String>,
}

/// One quota row: the most units of `class` that the tenant's placed and
/// running jobs may hold at once, network-wide or at one site.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct QuotaDoc {
    /// Tenant name.
    pub tenant: String,
    /// The site it caps; absent for the whole network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
    /// Resource class (as the catalogue spells it, e.g. `cpu`, `a800`).
    pub class: String,
    /// Most units held at once.
    pub units: i64,
    /// Last set, unix seconds.
    pub updated_at: i64,
}

/// Body of `PUT /v1/tenants/{name}/quota`: the caps for one scope, replacing
/// the tenant's caps for that scope (an empty `caps` clears it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuotaSet {
    /// The site the caps are for; absent for the whole network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
    /// Class name to most units held at once (0 to 1000000).
    pub caps: std::collections::BTreeMap<String, i64>,
}

/// A tenant's place in the weighted fair share: its weight, the group it is
/// in, its entitlement and its usage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ShareDoc {
    /// Tenant name.
    pub tenant: String,
    /// Weight among its siblings (1 unless set).
    pub weight: f64,
    /// The tenant that groups it (a company over its departments), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// Its fraction of the network (0 to 1) were every tenant to have work;
    /// when some have none, their part goes to their siblings.
    pub entitled: f64,
    /// Its past usage as a dominant share (the largest fraction of any one
    /// class of the network it held), averaged with the server's half-life, as
    /// of `usage_as_of`; absent when fair share is off or nothing was saved yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<f64>,
    /// When the scheduler last saved the usage, unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage_as_of: Option<i64>,
}

/// Body of `PUT /v1/tenants/{name}/share`: the tenant's fair-share weight and
/// the tenant that groups it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShareSet {
    /// Weight among its siblings: more than 0, at most 1000000.
    pub weight: f64,
    /// The tenant that groups it; absent for none (top level).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
}

/// A tenant's priority class (`GET /v1/classes`, `PUT /v1/tenants/{name}/class`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ClassDoc {
    /// Tenant name.
    pub tenant: String,
    /// The highest class its jobs run at, and their default.
    pub class: suanwang_model::PriorityClass,
}

/// Body of `PUT /v1/tenants/{name}/class`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClassSet {
    /// `batch`, `normal` (every tenant's to begin with) or `urgent`.
    pub class: suanwang_model::PriorityClass,
}

/// A tenant's default spill-over list: what its jobs that name none use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SpillDoc {
    /// Tenant name.
    pub tenant: String,
    /// The list an admin set (choices as in a job's `spill`); empty: none.
    pub spill: Vec<String>,
    /// The provider whose own tenant this is: its jobs try that provider's
    /// sites first (the provider's sites' "first call").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub own_provider: Option<String>,
    /// What the tenant's jobs that name no list of their own use: the
    /// provider's sites first (with an own provider), then `spill` (then
    /// `anywhere`, when `spill` is empty); empty: no list, anywhere at once.
    pub effective: Vec<String>,
}

/// Body of `PUT /v1/tenants/{name}/spill`: the tenant's default spill-over
/// list and its own provider, replacing both (empty and absent clear them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SpillSet {
    /// Choices, most wanted first: `site:ID`, `provider:NAME`,
    /// `jurisdiction:NAME` or `anywhere` (at most 16).
    #[serde(default)]
    #[schema(max_items = 16)]
    pub spill: Vec<String>,
    /// A provider that names this tenant as its own: the provider's sites come
    /// first in the tenant's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub own_provider: Option<String>,
}
