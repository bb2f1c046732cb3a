//! The audit log: who changed what — one entry per change, or per run of like
//! changes to consecutive jobs in one transaction — chained by hashes.
//!
//! Every entry carries the hash of the entry before it, and its own hash is
//! SHA-256 over a canonical encoding of all its fields ([`canonical`]), so that
//! editing, deleting or reordering a stored entry breaks the chain at that entry.
//! The store appends entries in the same transaction as the change they record
//! (see `backend.rs`, `append_audit`); this module holds the types, the encoding
//! and the [`Verifier`], which is pure: it is given entries in order and says
//! where the chain breaks. [`verify`] walks a store's log with it, page by page,
//! in constant memory.
//!
//! What the chain does and does not protect against is in docs/AUDIT.md.

use crate::{Result, Store};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The hash before the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What the canonical encoding starts with: names the format, so that a future
/// change to it cannot be confused with this one.
pub const DOMAIN: &[u8] = b"suanwang.audit/v1\n";

/// Entries per page when walking the whole log ([`verify`], export).
pub const WALK_PAGE: u32 = 1000;

/// Most jobs one entry covers (a run: [`Subject::job`] to [`Subject::job_last`]).
/// The store never writes a longer run, so that finding the entries about job N
/// reads only the entries whose first job is in `N - MAX_RUN + 1 ..= N`.
pub const MAX_RUN: i64 = 1024;

/// Who made a change: a token's holder, or the control plane itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// `admin`, `operator`, `tenant`, `provider`, `agent` (a token's role), or
    /// `scheduler` or `system` (the control plane's own actions).
    pub role: String,
    /// The token's id (the first 16 hex digits of its digest), or `scheduler` /
    /// `system`.
    pub id: String,
    /// The tenant a tenant's token acts for.
    pub tenant_id: Option<i64>,
    /// The provider a provider's token acts for (or that issued an agent's).
    pub provider_id: Option<i64>,
    /// The one site an agent's token acts for.
    pub site: Option<String>,
}

impl Actor {
    /// The scheduler loop (placements, expired leases, re-queues).
    pub fn scheduler() -> Actor {
        Actor::internal("scheduler")
    }

    /// The control plane acting on its own (start-up, the command line on the
    /// database).
    pub fn system() -> Actor {
        Actor::internal("system")
    }

    fn internal(name: &str) -> Actor {
        Actor {
            role: name.to_string(),
            id: name.to_string(),
            tenant_id: None,
            provider_id: None,
            site: None,
        }
    }
}

/// What a change was about. Every field that applies is set, so that each
/// party's view can find it: a tenant its jobs, a provider its sites.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    /// The job; for an entry that covers a run of jobs, the first.
    pub job: Option<i64>,
    /// For an entry that covers a run of consecutive jobs (one kind of change,
    /// by one actor, to one tenant's jobs, in one transaction): the last job of
    /// the run, which is every id from `job` to this one. Absent for an entry
    /// about one job.
    #[serde(default)]
    pub job_last: Option<i64>,
    /// The tenant owning the job (or a token).
    pub tenant_id: Option<i64>,
    /// The site.
    pub site: Option<String>,
    /// Another key: a token's id, a link (`A--B`), a provider's name, an agent.
    pub key: Option<String>,
}

impl Subject {
    /// A job of `tenant_id`, at `site` if placed.
    pub fn job(job: i64, tenant_id: i64, site: Option<&str>) -> Subject {
        Subject {
            job: Some(job),
            tenant_id: Some(tenant_id),
            site: site.map(str::to_string),
            key: None,
            job_last: None,
        }
    }

    /// Whether the entry is about job `id` (the one job, or a run covering it).
    pub fn covers(&self, id: i64) -> bool {
        match (self.job, self.job_last) {
            (Some(first), Some(last)) => (first..=last).contains(&id),
            (Some(job), None) => job == id,
            _ => false,
        }
    }

    /// A site.
    pub fn site(site: &str) -> Subject {
        Subject {
            site: Some(site.to_string()),
            ..Subject::default()
        }
    }
}

/// An entry to append: what the store is told; it adds seq, time and hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Who.
    pub actor: Actor,
    /// What was done, e.g. `job.submit`, `site.drain`, `identity.refused`.
    pub action: String,
    /// To what.
    pub subject: Subject,
    /// A small JSON object with the particulars.
    pub detail: String,
}

/// A stored audit entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Position in the chain, from 1, without gaps.
    pub seq: i64,
    /// When, unix seconds (network time).
    pub at: i64,
    /// Who.
    pub actor: Actor,
    /// What was done.
    pub action: String,
    /// To what.
    pub subject: Subject,
    /// Particulars (a JSON object, as text: hashed as stored).
    pub detail: String,
    /// The hash of the entry before ([`GENESIS`] for the first), lowercase hex.
    pub prev_hash: String,
    /// SHA-256 of [`canonical`], lowercase hex.
    pub hash: String,
}

impl AuditEntry {
    /// The change an entry records, for sealing again at another place in the
    /// chain.
    pub fn unseal(self) -> Change {
        Change {
            actor: self.actor,
            action: self.action,
            subject: self.subject,
            detail: self.detail,
        }
    }

    /// The entry `change` becomes at `seq` after `prev_hash`, with its hash.
    pub fn seal(seq: i64, at: i64, change: Change, prev_hash: &str) -> AuditEntry {
        let mut entry = AuditEntry {
            seq,
            at,
            actor: change.actor,
            action: change.action,
            subject: change.subject,
            detail: change.detail,
            prev_hash: prev_hash.to_string(),
            hash: String::new(),
        };
        entry.hash = entry.compute_hash();
        entry
    }

    /// SHA-256 of the canonical encoding of every field but `hash`.
    pub fn compute_hash(&self) -> String {
        lower_hex(&Sha256::digest(canonical(self)))
    }
}

/// `bytes` in lowercase hex (a table lookup per nibble: the append path hashes
/// every entry, and `hex::encode`'s char iterator cost more than the hash).
fn lower_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(DIGITS[usize::from(byte >> 4)] as char);
        out.push(DIGITS[usize::from(byte & 0xf)] as char);
    }
    out
}

/// The canonical encoding of an entry, the bytes its hash is taken over:
/// [`DOMAIN`], then each field in this order — seq, at, actor role, actor id,
/// actor tenant, actor provider, actor site, action, subject job, subject tenant,
/// subject site, subject key, detail, prev hash, and for an entry that covers a
/// run of jobs the run's last job ([`Subject::job_last`]; absent, it is not
/// written at all, so that an entry about one job encodes as it always did) —
/// each as one of:
///
/// - an integer: the byte `i` and 8 bytes, big-endian two's complement;
/// - a text: the byte `s`, its length in bytes as 4 bytes big-endian, its UTF-8;
/// - absent (NULL): the byte `n`.
///
/// Each field says its kind and length, so no two different entries encode
/// alike (a text cannot run into the next field, and the fifteenth field is
/// either there after the fourteenth or the bytes end).
pub fn canonical(entry: &AuditEntry) -> Vec<u8> {
    let mut out = Vec::with_capacity(
        DOMAIN.len() + 160 + entry.detail.len() + entry.action.len() + entry.actor.id.len(),
    );
    out.extend_from_slice(DOMAIN);
    let int = |out: &mut Vec<u8>, v: i64| {
        out.push(b'i');
        out.extend_from_slice(&v.to_be_bytes());
    };
    let text = |out: &mut Vec<u8>, v: &str| {
        out.push(b's');
        // An entry's text is far below 4 GiB: the store caps what it is given.
        out.extend_from_slice(&(v.len() as u32).to_be_bytes());
        out.extend_from_slice(v.as_bytes());
    };
    let opt_int = |out: &mut Vec<u8>, v: Option<i64>| match v {
        Some(v) => int(out, v),
        None => out.push(b'n'),
    };
    let opt_text = |out: &mut Vec<u8>, v: Option<&str>| match v {
        Some(v) => text(out, v),
        None => out.push(b'n'),
    };
    int(&mut out, entry.seq);
    int(&mut out, entry.at);
    text(&mut out, &entry.actor.role);
    text(&mut out, &entry.actor.id);
    opt_int(&mut out, entry.actor.tenant_id);
    opt_int(&mut out, entry.actor.provider_id);
    opt_text(&mut out, entry.actor.site.as_deref());
    text(&mut out, &entry.action);
    opt_int(&mut out, entry.subject.job);
    opt_int(&mut out, entry.subject.tenant_id);
    opt_text(&mut out, entry.subject.site.as_deref());
    opt_text(&mut out, entry.subject.key.as_deref());
    text(&mut out, &entry.detail);
    text(&mut out, &entry.prev_hash);
    if let Some(last) = entry.subject.job_last {
        int(&mut out, last);
    }
    out
}

/// Which entries to read, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Only seqs greater than this (the previous page's last).
    pub after_seq: Option<i64>,
    /// Only this actor (a token's id, `scheduler`, `system`).
    pub actor: Option<String>,
    /// Only this action.
    pub action: Option<String>,
    /// Only entries about this job: about it alone, or a run covering it.
    pub job: Option<i64>,
    /// Only entries about this site or made by its agents.
    pub site: Option<String>,
    /// Only entries about this tenant's jobs and tokens (a tenant's view).
    pub tenant_id: Option<i64>,
    /// Only entries about these sites or made by their agents (a provider's
    /// view); `Some(empty)` matches nothing.
    pub sites: Option<Vec<String>>,
    /// Only at or after this, unix seconds.
    pub since: Option<i64>,
    /// Only at or before this, unix seconds.
    pub until: Option<i64>,
    /// At most this many (capped at [`WALK_PAGE`]).
    pub limit: u32,
}

/// Where the chain breaks: the first entry that does not match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Finding {
    /// The entry's fields do not hash to its stored hash: it was edited.
    #[error(
        "entry {seq}: hash mismatch: its fields hash to {computed}, but it says {stored} (the entry was edited)"
    )]
    HashMismatch {
        /// The entry.
        seq: i64,
        /// Its stored hash.
        stored: String,
        /// The hash of its fields.
        computed: String,
    },
    /// The entry does not name the hash of the entry before it.
    #[error(
        "entry {seq}: broken link: it follows a hash {found}, but entry {previous} has {expected} (entries before it were replaced or rewritten)"
    )]
    BrokenLink {
        /// The entry.
        seq: i64,
        /// The seq before it.
        previous: i64,
        /// The hash it says came before.
        found: String,
        /// The hash of the entry before it.
        expected: String,
    },
    /// Seqs are missing: entries were deleted.
    #[error("entry {seq}: missing (the next entry is {next}): entries were deleted")]
    Gap {
        /// The first missing seq.
        seq: i64,
        /// The seq found instead.
        next: i64,
    },
    /// The entry was written after another one than the entry before it.
    #[error(
        "entry {seq}: out of order: it was written after entry {written_after}, not after entry {previous} (entries were reordered)"
    )]
    Reordered {
        /// The entry.
        seq: i64,
        /// The entry before it in the log.
        previous: i64,
        /// The entry whose hash it names.
        written_after: i64,
    },
    /// The log ends before its head says it does: its last entries were deleted.
    #[error(
        "entry {seq}: missing: the log ends at entry {last} but its head says {head} (the last entries were deleted)"
    )]
    Truncated {
        /// The first missing seq.
        seq: i64,
        /// The last entry present.
        last: i64,
        /// The head's seq.
        head: i64,
    },
    /// The head's hash is not the last entry's.
    #[error("head: its hash {head_hash} is not the last entry's ({last_hash}, entry {last})")]
    HeadMismatch {
        /// The last entry.
        last: i64,
        /// Its hash.
        last_hash: String,
        /// The head's hash.
        head_hash: String,
    },
}

impl Finding {
    /// The entry named (the first that does not match).
    pub fn seq(&self) -> i64 {
        match self {
            Finding::HashMismatch { seq, .. }
            | Finding::BrokenLink { seq, .. }
            | Finding::Gap { seq, .. }
            | Finding::Reordered { seq, .. }
            | Finding::Truncated { seq, .. } => *seq,
            Finding::HeadMismatch { last, .. } => *last,
        }
    }
}

/// Checks entries given in seq order, one at a time, keeping only the last
/// entry's seq and hash (constant memory). Pure: reordering is told apart from
/// editing by [`verify`], which can look an entry's link up in the store.
#[derive(Debug, Clone)]
pub struct Verifier {
    last_seq: i64,
    last_hash: String,
}

impl Default for Verifier {
    fn default() -> Self {
        Verifier {
            last_seq: 0,
            last_hash: GENESIS.to_string(),
        }
    }
}

impl Verifier {
    /// A verifier at the start of the chain.
    pub fn new() -> Verifier {
        Verifier::default()
    }

    /// The last entry accepted (0 before any) and its hash.
    pub fn head(&self) -> (i64, &str) {
        (self.last_seq, &self.last_hash)
    }

    /// Checks the next entry: the seq after the last, linked to the last's hash,
    /// its own hash right. The first failure is returned and nothing is accepted.
    pub fn check(&mut self, entry: &AuditEntry) -> std::result::Result<(), Finding> {
        let expected = self.last_seq + 1;
        if entry.seq != expected {
            return Err(Finding::Gap {
                seq: expected,
                next: entry.seq,
            });
        }
        let computed = entry.compute_hash();
        if computed != entry.hash {
            return Err(Finding::HashMismatch {
                seq: entry.seq,
                stored: entry.hash.clone(),
                computed,
            });
        }
        if entry.prev_hash != self.last_hash {
            return Err(Finding::BrokenLink {
                seq: entry.seq,
                previous: self.last_seq,
                found: entry.prev_hash.clone(),
                expected: self.last_hash.clone(),
            });
        }
        self.last_seq = entry.seq;
        self.last_hash.clone_from(&entry.hash);
        Ok(())
    }

    /// Checks the end of the log against its head (seq and hash).
    pub fn finish(&self, head_seq: i64, head_hash: &str) -> std::result::Result<(), Finding> {
        if head_seq > self.last_seq {
            return Err(Finding::Truncated {
                seq: self.last_seq + 1,
                last: self.last_seq,
                head: head_seq,
            });
        }
        if head_seq != self.last_seq || head_hash != self.last_hash {
            return Err(Finding::HeadMismatch {
                last: self.last_seq,
                last_hash: self.last_hash.clone(),
                head_hash: head_hash.to_string(),
            });
        }
        Ok(())
    }
}

/// What [`verify`] found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// Entries that matched (before the first that did not).
    pub checked: u64,
    /// The first entry that does not match, if any.
    pub finding: Option<Finding>,
}

/// Walks the whole log of `store` in seq order, page by page (constant
/// memory), and names the first entry that does not match. `progress` is
/// called after each page with the entries checked so far.
pub async fn verify<S: Store>(store: &S, mut progress: impl FnMut(u64)) -> Result<Verdict> {
    let mut verifier = Verifier::new();
    let mut checked = 0u64;
    let mut after = 0i64;
    loop {
        let page = store
            .audit(&AuditFilter {
                after_seq: Some(after),
                limit: WALK_PAGE,
                ..AuditFilter::default()
            })
            .await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for entry in &page {
            if let Err(finding) = verifier.check(entry) {
                let finding = refine(store, &verifier, entry, finding).await?;
                return Ok(Verdict {
                    checked,
                    finding: Some(finding),
                });
            }
            checked += 1;
        }
        progress(checked);
    }
    let (head_seq, head_hash) = store.audit_head().await?;
    Ok(Verdict {
        checked,
        finding: verifier.finish(head_seq, &head_hash).err(),
    })
}

/// Tells a moved entry from an edited one: an entry whose link names the hash
/// of another entry than the one before it was written after that one.
async fn refine<S: Store>(
    store: &S,
    verifier: &Verifier,
    entry: &AuditEntry,
    finding: Finding,
) -> Result<Finding> {
    let (previous, last_hash) = verifier.head();
    if matches!(finding, Finding::Gap { .. }) || entry.prev_hash == last_hash {
        return Ok(finding);
    }
    let written_after = if entry.prev_hash == GENESIS {
        Some(0)
    } else {
        store.audit_seq_of_hash(&entry.prev_hash).await?
    };
    Ok(match written_after {
        Some(written_after) if written_after != previous => Finding::Reordered {
            seq: entry.seq,
            previous,
            written_after,
        },
        _ => finding,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(action: &str) -> Change {
        Change {
            actor: Actor::system(),
            action: action.into(),
            subject: Subject::site("hami"),
            detail: "{}".into(),
        }
    }

    #[test]
    fn the_encoding_is_fixed() {
        let entry = AuditEntry::seal(1, 1_700_000_000, change("site.drain"), GENESIS);
        // A change to the encoding changes every hash: this one is the format.
        assert_eq!(
            entry.hash,
            hex::encode(Sha256::digest(canonical(&entry))),
            "seal hashes the canonical encoding"
        );
        let bytes = canonical(&entry);
        assert!(bytes.starts_with(DOMAIN));
        assert_eq!(
            &bytes[DOMAIN.len()..DOMAIN.len() + 9],
            b"i\0\0\0\0\0\0\0\x01"
        );
    }

    #[test]
    fn fields_cannot_run_into_each_other() {
        let mut a = change("ab");
        a.detail = "c".into();
        let mut b = change("a");
        b.detail = "bc".into();
        assert_ne!(
            AuditEntry::seal(1, 0, a.clone(), GENESIS).hash,
            AuditEntry::seal(1, 0, b, GENESIS).hash
        );
        let mut none = change("x");
        none.subject.key = None;
        let mut empty = change("x");
        empty.subject.key = Some(String::new());
        assert_ne!(
            AuditEntry::seal(1, 0, none, GENESIS).hash,
            AuditEntry::seal(1, 0, empty, GENESIS).hash
        );
    }

    #[test]
    fn a_run_encodes_its_last_job_after_the_fourteenth_field() {
        let one = AuditEntry::seal(1, 0, change("job.submit"), GENESIS);
        let mut run = change("job.submit");
        run.subject.job_last = Some(7);
        let run = AuditEntry::seal(1, 0, run, GENESIS);
        let (a, b) = (canonical(&one), canonical(&run));
        // An entry about one job encodes as before; a run adds one integer.
        assert_eq!(&b[..a.len()], &a[..]);
        assert_eq!(&b[a.len()..], b"i\0\0\0\0\0\0\0\x07");
        assert_ne!(one.hash, run.hash);
        let mut edited = run.clone();
        edited.subject.job_last = Some(8);
        assert_ne!(edited.compute_hash(), run.hash);
        edited.subject.job_last = None;
        assert_ne!(edited.compute_hash(), run.hash);
        let subject = Subject {
            job: Some(5),
            job_last: Some(7),
            ..Subject::default()
        };
        assert!(!subject.covers(4) && subject.covers(5) && subject.covers(7) && !subject.covers(8));
    }

    #[test]
    fn the_verifier_names_the_first_bad_entry() {
        let mut chain = Vec::new();
        let mut prev = GENESIS.to_string();
        for seq in 1..=4 {
            let entry = AuditEntry::seal(seq, seq, change("job.submit"), &prev);
            prev.clone_from(&entry.hash);
            chain.push(entry);
        }
        let run = |chain: &[AuditEntry]| {
            let mut v = Verifier::new();
            chain.iter().try_for_each(|e| v.check(e))
        };
        assert_eq!(run(&chain), Ok(()));
        let mut edited = chain.clone();
        edited[2].detail = r#"{"x":1}"#.into();
        assert!(matches!(
            run(&edited),
            Err(Finding::HashMismatch { seq: 3, .. })
        ));
        let mut deleted = chain.clone();
        deleted.remove(1);
        assert_eq!(run(&deleted), Err(Finding::Gap { seq: 2, next: 3 }));
        let mut v = Verifier::new();
        chain.iter().for_each(|e| v.check(e).unwrap());
        assert!(v.finish(4, &chain[3].hash).is_ok());
        assert!(matches!(
            v.finish(5, "x"),
            Err(Finding::Truncated { seq: 5, .. })
        ));
    }
}
