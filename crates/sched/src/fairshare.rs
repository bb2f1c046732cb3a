//! Weighted fair share: in which order the tenants' waiting jobs are considered.
//!
//! Each tenant is entitled to a fraction of the network, from a tree of weights
//! (a company and its departments): a group's fraction is split among its members
//! that have work, in proportion to their weights ([`entitlements`]). A tenant's
//! usage is its dominant resource share (DRF: the largest fraction of any one
//! class of the network's capacity it holds), past usage decayed with a
//! half-life by the driver ([`decay`]) plus what it holds now.
//!
//! [`crate::plan_fair`] serves, within one priority, the tenant whose usage is
//! furthest below its entitlement first (smallest usage ÷ entitlement), one job
//! at a time, adding each placed job's dominant share to its tenant's usage. So
//! when demand exceeds capacity, placements converge to the weights; when others
//! have no work, a tenant takes what is idle (it borrows), and the next pass
//! serves the others first as soon as they have work again.

use crate::calendar::Need;
use suanwang_model::N_CLASSES;

/// One node of the share tree: a tenant (which may also be the group of others).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ShareNode {
    /// The tenant, as the driver numbers it ([`crate::Request::tenant`]).
    pub tenant: u32,
    /// The group it belongs to (another node's `tenant`), or `None` at the top.
    pub parent: Option<u32>,
    /// Its weight among its siblings (> 0).
    pub weight: f64,
}

/// A tenant's standing: what it is entitled to and what it uses.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TenantShare {
    /// The tenant.
    pub tenant: u32,
    /// Its fraction of the network (from [`entitlements`]), > 0.
    pub entitled: f64,
    /// Its usage as a dominant share: decayed past plus held now (≥ 0).
    pub usage: f64,
}

/// What [`crate::plan_fair`] orders tenants by.
#[derive(Debug, Clone, Default)]
pub struct FairShare {
    /// By tenant.
    tenants: Vec<TenantShare>,
    /// 1 / network capacity per class (0 where the network has none).
    inverse_total: [f64; N_CLASSES],
    /// Entitlement of a tenant not listed.
    default_entitled: f64,
}

impl FairShare {
    /// No fair share: jobs are considered in priority order alone.
    pub fn off() -> FairShare {
        FairShare::default()
    }

    /// Fair share over `tenants`, with `totals` the network's capacity per class
    /// (units). A tenant not listed is entitled to the smallest listed
    /// entitlement.
    pub fn new(mut tenants: Vec<TenantShare>, totals: &[u64; N_CLASSES]) -> FairShare {
        tenants.sort_by_key(|t| t.tenant);
        tenants.dedup_by_key(|t| t.tenant);
        for t in &mut tenants {
            if !(t.entitled.is_finite() && t.entitled > 0.0) {
                t.entitled = f64::MIN_POSITIVE;
            }
            if !(t.usage.is_finite() && t.usage >= 0.0) {
                t.usage = 0.0;
            }
        }
        let default_entitled = tenants
            .iter()
            .map(|t| t.entitled)
            .fold(f64::INFINITY, f64::min);
        let mut inverse_total = [0.0; N_CLASSES];
        for (inv, total) in inverse_total.iter_mut().zip(totals) {
            if *total > 0 {
                *inv = 1.0 / *total as f64;
            }
        }
        FairShare {
            tenants,
            inverse_total,
            default_entitled: if default_entitled.is_finite() {
                default_entitled
            } else {
                1.0
            },
        }
    }

    /// Whether fair share orders anything.
    pub fn is_off(&self) -> bool {
        self.tenants.is_empty() && self.inverse_total.iter().all(|v| *v == 0.0)
    }

    /// The tenants listed.
    pub fn tenants(&self) -> &[TenantShare] {
        &self.tenants
    }

    /// `tenant`'s (entitlement, usage): a tenant not listed has used nothing.
    pub fn standing(&self, tenant: u32) -> (f64, f64) {
        match self.tenants.binary_search_by_key(&tenant, |t| t.tenant) {
            Ok(i) => (self.tenants[i].entitled, self.tenants[i].usage),
            Err(_) => (self.default_entitled, 0.0),
        }
    }

    /// The dominant share of `need`: its largest fraction of the network's
    /// capacity of any one class.
    pub fn dominant_share(&self, need: &Need) -> f64 {
        need.units
            .iter()
            .zip(&self.inverse_total)
            .map(|(u, inv)| *u as f64 * inv)
            .fold(0.0, f64::max)
    }
}

/// Each tenant's fraction of the network from the share tree, counting only the
/// branches with a tenant in `active` (a group with no active member takes
/// nothing, so its siblings share its part). A tenant that is also a group
/// competes among its own members with weight 1 for its own jobs. Nodes whose
/// parent is unknown, or in a cycle, count at the top. Returns (tenant,
/// fraction) for each active tenant, by tenant; fractions sum to 1 when any
/// tenant is active. An active tenant missing from `nodes` counts at the top
/// with weight 1.
pub fn entitlements(nodes: &[ShareNode], active: &[u32]) -> Vec<(u32, f64)> {
    use std::collections::{BTreeMap, BTreeSet};
    let active: BTreeSet<u32> = active.iter().copied().collect();
    let mut weight: BTreeMap<u32, f64> = BTreeMap::new();
    let mut parent: BTreeMap<u32, Option<u32>> = BTreeMap::new();
    for n in nodes {
        let w = if n.weight.is_finite() && n.weight > 0.0 {
            n.weight
        } else {
            1.0
        };
        weight.insert(n.tenant, w);
        parent.insert(n.tenant, n.parent.filter(|p| *p != n.tenant));
    }
    for t in &active {
        weight.entry(*t).or_insert(1.0);
        parent.entry(*t).or_insert(None);
    }
    // A parent that is not a node, or a chain that loops, is cut at the top.
    let ids: Vec<u32> = parent.keys().copied().collect();
    for id in &ids {
        let mut seen = BTreeSet::from([*id]);
        let mut at = *id;
        while let Some(Some(p)) = parent.get(&at).copied() {
            if !parent.contains_key(&p) || !seen.insert(p) {
                parent.insert(at, None);
                break;
            }
            at = p;
        }
    }
    // Which nodes have an active tenant in their subtree (themselves included).
    let mut live: BTreeSet<u32> = BTreeSet::new();
    for t in &active {
        let mut at = Some(*t);
        while let Some(id) = at {
            if !live.insert(id) {
                break;
            }
            at = parent.get(&id).copied().flatten();
        }
    }
    let mut children: BTreeMap<Option<u32>, Vec<u32>> = BTreeMap::new();
    for id in &live {
        children.entry(parent[id]).or_default().push(*id);
    }
    // Split each node's fraction among its live children and, if it is active
    // itself, its own jobs (weight 1).
    let mut out = Vec::new();
    let mut stack: Vec<(Option<u32>, f64)> = vec![(None, 1.0)];
    while let Some((node, fraction)) = stack.pop() {
        let kids = children.get(&node).map(Vec::as_slice).unwrap_or(&[]);
        let own = node.is_some_and(|n| active.contains(&n));
        let total: f64 = kids.iter().map(|k| weight[k]).sum::<f64>() + if own { 1.0 } else { 0.0 };
        if own {
            out.push((node.expect("own jobs belong to a node"), fraction / total));
        }
        for k in kids {
            stack.push((Some(*k), fraction * weight[k] / total));
        }
    }
    out.sort_by_key(|(t, _)| *t);
    out
}

/// Usage decayed over `elapsed_secs` with a half-life of `half_life_secs`, plus
/// `share` held through that interval: the running integral of dominant share
/// over time (share·seconds) where each second counts half as much per
/// half-life. [`average_share`] turns it into a share.
pub fn decay(usage: f64, share: f64, elapsed_secs: f64, half_life_secs: f64) -> f64 {
    if elapsed_secs <= 0.0 {
        return usage;
    }
    let k = std::f64::consts::LN_2 / half_life_secs;
    let factor = (-k * elapsed_secs).exp();
    // The exact integral of a constant share over the interval, decayed to its end.
    usage * factor + share * (1.0 - factor) / k
}

/// The decayed integral of [`decay`] as the constant share that would give it
/// in the long run: a tenant that has held `s` for many half-lives has
/// `average_share == s`.
pub fn average_share(usage: f64, half_life_secs: f64) -> f64 {
    usage * std::f64::consts::LN_2 / half_life_secs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(tenant: u32, parent: Option<u32>, weight: f64) -> ShareNode {
        ShareNode {
            tenant,
            parent,
            weight,
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn flat_weights_split_the_network() {
        let e = entitlements(&[node(1, None, 1.0), node(2, None, 3.0)], &[1, 2]);
        assert_eq!(e.len(), 2);
        assert!(close(e[0].1, 0.25) && close(e[1].1, 0.75), "{e:?}");
    }

    #[test]
    fn an_idle_branch_leaves_its_part_to_its_siblings() {
        // Company 10 (weight 1) with departments 11 and 12 (1 and 1); company 20 (weight 1).
        let nodes = [
            node(10, None, 1.0),
            node(11, Some(10), 1.0),
            node(12, Some(10), 1.0),
            node(20, None, 1.0),
        ];
        let both = entitlements(&nodes, &[11, 12, 20]);
        assert_eq!(both.iter().map(|e| e.0).collect::<Vec<_>>(), [11, 12, 20]);
        assert!(close(both[0].1, 0.25) && close(both[1].1, 0.25) && close(both[2].1, 0.5));
        // Department 12 idle: department 11 gets all of company 10's half.
        let one = entitlements(&nodes, &[11, 20]);
        assert!(close(one[0].1, 0.5) && close(one[1].1, 0.5), "{one:?}");
        // A group with its own jobs competes among its members with weight 1.
        let own = entitlements(&nodes, &[10, 11]);
        assert!(close(own[0].1, 0.5) && close(own[1].1, 0.5), "{own:?}");
    }

    #[test]
    fn cycles_and_unknown_parents_count_at_the_top() {
        let nodes = [
            node(1, Some(2), 1.0),
            node(2, Some(1), 1.0),
            node(3, Some(99), 1.0),
        ];
        let e = entitlements(&nodes, &[1, 2, 3]);
        let sum: f64 = e.iter().map(|x| x.1).sum();
        assert!(close(sum, 1.0), "{e:?}");
        assert_eq!(e.len(), 3);
        // An active tenant with no node counts at the top with weight 1.
        let e = entitlements(&[node(1, None, 3.0)], &[1, 7]);
        assert!(close(e[0].1, 0.75) && close(e[1].1, 0.25), "{e:?}");
    }

    #[test]
    fn usage_halves_each_half_life_and_averages_to_the_share_held() {
        let hl = 3600.0;
        let u = decay(100.0, 0.0, hl, hl);
        assert!((u - 50.0).abs() < 1e-9, "{u}");
        // Holding 0.4 for many half-lives averages to 0.4.
        let mut u = 0.0;
        for _ in 0..1000 {
            u = decay(u, 0.4, 600.0, hl);
        }
        assert!((average_share(u, hl) - 0.4).abs() < 1e-9);
        // Steps add up to one long step.
        let a = decay(decay(7.0, 0.2, 100.0, hl), 0.2, 200.0, hl);
        let b = decay(7.0, 0.2, 300.0, hl);
        assert!((a - b).abs() < 1e-9);
    }

    #[test]
    fn dominant_share_is_the_largest_fraction() {
        let mut totals = [0u64; N_CLASSES];
        totals[0] = 100;
        totals[1] = 10;
        let fair = FairShare::new(vec![], &totals);
        let mut need = Need::default();
        need.units[0] = 10;
        need.units[1] = 5;
        assert!(close(fair.dominant_share(&need), 0.5));
        assert!(!fair.is_off());
        assert!(FairShare::off().is_off());
    }
}
