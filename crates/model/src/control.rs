//! The control plane's vocabulary: the life of a job ([`JobState`], with its state
//! machine in pure code), the roles of API callers ([`Role`]) and what the control
//! plane answers about a lease an agent holds ([`HeldVerdict`]). The store keeps
//! them, the API sends them; neither defines them again.

use serde::{Deserialize, Serialize};

/// The life of a job. `Pending → Placed → Dispatched → Running → Succeeded |
/// Failed`; `Pending → Failed` when the scheduler refuses it for good; `Cancelled`
/// from any live state; `Lost` when a site stops answering
/// for a dispatched or running job; a lost or placed job may go back to `Pending`
/// to be placed again, and so may a dispatched or running one that is preempted
/// for a job of a higher class.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum JobState {
    /// Waiting to be placed.
    Pending,
    /// Has a site and a start time.
    Placed,
    /// Handed to the site's agent.
    Dispatched,
    /// Running at the site.
    Running,
    /// Finished with exit code 0.
    Succeeded,
    /// Finished otherwise.
    Failed,
    /// Cancelled by its tenant or an operator.
    Cancelled,
    /// Its site stopped answering.
    Lost,
}

impl JobState {
    /// Every state.
    pub const ALL: [JobState; 8] = [
        JobState::Pending,
        JobState::Placed,
        JobState::Dispatched,
        JobState::Running,
        JobState::Succeeded,
        JobState::Failed,
        JobState::Cancelled,
        JobState::Lost,
    ];

    /// The name stored and shown.
    pub fn name(self) -> &'static str {
        match self {
            JobState::Pending => "Pending",
            JobState::Placed => "Placed",
            JobState::Dispatched => "Dispatched",
            JobState::Running => "Running",
            JobState::Succeeded => "Succeeded",
            JobState::Failed => "Failed",
            JobState::Cancelled => "Cancelled",
            JobState::Lost => "Lost",
        }
    }

    /// Parses a stored name.
    pub fn parse(text: &str) -> Option<JobState> {
        JobState::ALL.into_iter().find(|s| s.name() == text)
    }

    /// Whether the job has ended for good.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobState::Succeeded | JobState::Failed | JobState::Cancelled
        )
    }

    /// Whether `self → to` is a legal transition.
    pub fn can_become(self, to: JobState) -> bool {
        use JobState::*;
        match (self, to) {
            (Pending, Placed) => true,
            // Refused by the scheduler (no site can ever run it).
            (Pending, Failed) => true,
            (Placed, Dispatched) | (Placed, Pending) => true,
            (Dispatched, Running) | (Dispatched, Lost) | (Dispatched, Failed) => true,
            (Running, Succeeded) | (Running, Failed) | (Running, Lost) => true,
            (Lost, Pending) => true,
            // Preempted for a job of a higher class: requeued, to run again.
            (Dispatched, Pending) | (Running, Pending) => true,
            (from, Cancelled) => !from.is_terminal(),
            _ => false,
        }
    }
}

impl std::fmt::Display for JobState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// An API role.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything, including tenants and tokens.
    Admin,
    /// Sites, links and every job.
    Operator,
    /// Its own jobs only.
    Tenant,
    /// A company that owns sites: its own sites, their agents and the jobs on
    /// them (without the tenants' commands, environment or logs).
    Provider,
    /// An agent's credential, bound to one site: registers, heartbeats, leases
    /// and reports for that site only.
    Agent,
}

impl Role {
    /// The name stored.
    pub fn name(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Tenant => "tenant",
            Role::Provider => "provider",
            Role::Agent => "agent",
        }
    }
    /// Parses a stored name.
    pub fn parse(text: &str) -> Option<Role> {
        [
            Role::Admin,
            Role::Operator,
            Role::Tenant,
            Role::Provider,
            Role::Agent,
        ]
        .into_iter()
        .find(|r| r.name() == text)
    }
}

/// What the control plane says about a job an agent reports holding.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HeldVerdict {
    /// The lease is live and now renewed: keep running it.
    Renewed,
    /// The job was cancelled: stop it.
    Cancel,
    /// The job was preempted for a job of a higher class: stop it gracefully
    /// (signal, grace period, kill) and report nothing more for this attempt;
    /// it has been requeued and runs again as a new attempt.
    Preempt,
    /// The lease is no longer this agent's (expired and handed out again, or the
    /// job is no longer live): stop it and report nothing more for it.
    Stale,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transitions_follow_the_documented_machine() {
        use JobState::*;
        assert!(Pending.can_become(Placed));
        assert!(Placed.can_become(Dispatched));
        assert!(Running.can_become(Succeeded));
        assert!(Lost.can_become(Pending));
        assert!(Running.can_become(Cancelled));
        assert!(
            !Pending.can_become(Running),
            "must be placed and dispatched first"
        );
        assert!(!Succeeded.can_become(Cancelled), "terminal states stay");
        assert!(!Cancelled.can_become(Pending));
        for s in JobState::ALL {
            assert_eq!(JobState::parse(s.name()), Some(s));
            assert!(!s.can_become(s), "{s} to itself is not a change");
        }
    }
}
