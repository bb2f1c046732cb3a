//! The capacity calendar: free units per site, resource class and time slot over a
//! rolling horizon. It is the scheduler's only mutable state and is never overbooked:
//! [`Calendar::reserve`] refuses a reservation that does not fit.
//!
//! Slots are absolute (`slot k` covers `[k·slot_secs, (k+1)·slot_secs)`); the window
//! holds slots `base .. base + horizon` in a ring. A reservation that runs past the
//! window keeps its tail aside and applies it as each later slot enters the window,
//! so a slot is always complete when anyone can book it.
//!
//! Nodes: a site that declares its nodes ([`SiteCapacity::nodes`], one shape) has
//! one more dimension, [`NODE_DIM`], the whole nodes free in a slot. A gang
//! ([`Need::nodes`] > 0) holds its nodes whole: it books `nodes × per-node units`
//! of every class of the shape, and fits where `nodes` whole nodes are free. Other
//! jobs are counted in units only and are taken to be packed densely onto the
//! nodes no gang holds, so a site's whole free nodes in a slot are
//! `min over the shape's classes of ⌊free units / units per node⌋`; the calendar
//! keeps that dimension up to date on every booking at such a site, so it never
//! books more whole nodes than the site has.

use suanwang_model::{N_CLASSES, ResourceClass, SimTime};

/// Units of each class a job holds, plus facility power in watts (for power caps).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Need {
    /// Units per class.
    pub units: [u32; N_CLASSES],
    /// Facility power, W (IT power × PUE), counted only at sites with a power cap.
    pub watts: u32,
    /// Whole nodes held (a gang job); 0 for a job counted in units only. A gang's
    /// `units` are what it asks (per node × nodes); where it runs it holds its
    /// nodes whole.
    pub nodes: u32,
}

impl Need {
    /// Classes with a non-zero count.
    pub fn classes(&self) -> impl Iterator<Item = (usize, u32)> + '_ {
        self.units
            .iter()
            .enumerate()
            .filter(|(_, u)| **u > 0)
            .map(|(c, u)| (c, *u))
    }
}

#[derive(Debug, Clone)]
struct Tail {
    site: usize,
    need: Need,
    from: i64,
    to: i64,
    /// Whether the tail holds site capacity (false: it only counts against a quota).
    capacity: bool,
    /// The tenant whose quotas the tail counts against, if any.
    tenant: Option<u32>,
}

/// A hard cap on the units of one class a tenant may hold at once, network-wide
/// (`site: None`) or at one site.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// The tenant, as the driver numbers it (the key of [`crate::Request::tenant`]).
    pub tenant: u32,
    /// Class index.
    pub class: usize,
    /// The site it caps, or `None` for the whole network.
    pub site: Option<usize>,
    /// Most units held at once.
    pub cap: u32,
}

/// The quota rows that bind one job at one site: (row, units the job asks).
#[derive(Debug, Clone, Copy)]
pub struct QuotaDims {
    rows: [(usize, u32); 2 * N_CLASSES],
    len: usize,
}

impl QuotaDims {
    /// No quota binds.
    pub const NONE: QuotaDims = QuotaDims {
        rows: [(0, 0); 2 * N_CLASSES],
        len: 0,
    };
    /// The rows as a slice.
    #[inline]
    pub fn as_slice(&self) -> &[(usize, u32)] {
        &self.rows[..self.len]
    }
}

/// A site's nodes, all of one shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Nodes {
    /// Number of nodes.
    pub count: u32,
    /// Units of each class on one node.
    pub per_node: [u32; N_CLASSES],
}

impl Nodes {
    /// Whether one node holds `per_node` units of each class.
    pub fn fits(&self, per_node: &[u32; N_CLASSES]) -> bool {
        per_node
            .iter()
            .zip(&self.per_node)
            .all(|(need, has)| need <= has)
    }
}

/// A site's capacity as the calendar sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SiteCapacity {
    /// Units per class.
    pub units: [u32; N_CLASSES],
    /// Power cap, W, if the site has one.
    pub watts: Option<u32>,
    /// Its nodes, if it declares them (needed to run a gang there).
    pub nodes: Option<Nodes>,
}

/// Why a reservation was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReserveError {
    /// Some slot would take a tenant past its quota.
    Quota {
        /// The slot.
        slot: i64,
        /// The class whose cap would be exceeded.
        class: Option<ResourceClass>,
        /// The site the cap is for (`None`: network-wide).
        site: Option<usize>,
    },
    /// Some slot has fewer whole free nodes than the gang asks (or the site
    /// declares no nodes).
    Nodes {
        /// The slot.
        slot: i64,
    },
    /// Some slot has fewer free units than asked.
    Full {
        /// The slot.
        slot: i64,
        /// The class short of units (`None`: power).
        class: Option<ResourceClass>,
    },
    /// The start lies outside the window.
    OutsideWindow {
        /// The slot asked for.
        slot: i64,
    },
}

/// Free capacity per site, class and slot over a rolling window.
#[derive(Debug, Clone)]
pub struct Calendar {
    slot_secs: i64,
    horizon: usize,
    base: i64,
    capacity: Vec<SiteCapacity>,
    // Layout: ((site * DIMS) + dim) * horizon + ring; dim N_CLASSES is power, dim
    // NODE_DIM whole free nodes.
    free: Vec<u32>,
    tails: Vec<Tail>,
    // Quotas sorted by tenant, and what each has left per slot: row * horizon + ring.
    quotas: Vec<Quota>,
    quota_free: Vec<u32>,
}

const DIMS: usize = N_CLASSES + 2;

/// The calendar's dimension of whole free nodes, as a class index is the
/// dimension of that class: a gang's fit check lists `(NODE_DIM, nodes)` beside
/// its classes (see [`Calendar::fits_at_ring`]).
pub const NODE_DIM: usize = N_CLASSES + 1;

impl Calendar {
    /// An empty calendar whose window starts at the slot containing `start`.
    pub fn new(
        capacity: Vec<SiteCapacity>,
        slot_secs: i64,
        horizon: usize,
        start: SimTime,
    ) -> Calendar {
        let start_secs = start.0;
        assert!(
            slot_secs > 0 && horizon > 0,
            "slot and horizon must be positive"
        );
        let base = start_secs.div_euclid(slot_secs);
        let mut calendar = Calendar {
            slot_secs,
            horizon,
            base,
            free: vec![0; capacity.len() * DIMS * horizon],
            capacity,
            tails: Vec::new(),
            quotas: Vec::new(),
            quota_free: Vec::new(),
        };
        for k in base..base + horizon as i64 {
            calendar.reset_slot(k);
        }
        calendar
    }

    /// Slot length, seconds.
    pub fn slot_secs(&self) -> i64 {
        self.slot_secs
    }
    /// Number of slots in the window.
    pub fn horizon(&self) -> usize {
        self.horizon
    }
    /// First slot of the window.
    pub fn base(&self) -> i64 {
        self.base
    }
    /// One past the last slot of the window.
    pub fn end(&self) -> i64 {
        self.base + self.horizon as i64
    }
    /// Number of sites.
    pub fn n_sites(&self) -> usize {
        self.capacity.len()
    }
    /// Capacity of `site`.
    pub fn capacity(&self, site: usize) -> &SiteCapacity {
        &self.capacity[site]
    }
    /// The slot containing the instant `secs` seconds after the epoch.
    pub fn slot_of(&self, secs: i64) -> i64 {
        secs.div_euclid(self.slot_secs)
    }

    #[inline]
    fn at(&self, site: usize, dim: usize, slot: i64) -> usize {
        (site * DIMS + dim) * self.horizon + slot.rem_euclid(self.horizon as i64) as usize
    }

    /// Sets the tenants' quotas, replacing any earlier ones; every slot of the
    /// window starts at the full cap. Call before booking anything, or the
    /// bookings made so far do not count against the quotas.
    pub fn set_quotas(&mut self, mut quotas: Vec<Quota>) {
        quotas.sort_by_key(|q| (q.tenant, q.site, q.class));
        self.quota_free = Vec::with_capacity(quotas.len() * self.horizon);
        for q in &quotas {
            self.quota_free
                .extend(std::iter::repeat_n(q.cap, self.horizon));
        }
        self.quotas = quotas;
    }

    /// The quotas, sorted by tenant.
    pub fn quotas(&self) -> &[Quota] {
        &self.quotas
    }

    /// Units of `row`'s class the row's tenant may still book in `slot`.
    pub fn quota_free(&self, row: usize, slot: i64) -> u32 {
        self.quota_free[row * self.horizon + self.ring(slot)]
    }

    /// The quota rows that bind `tenant` asking `need` at `site`. Empty (and
    /// cheap) when the tenant has no quotas.
    #[inline]
    pub fn quota_dims(&self, tenant: u32, site: usize, need: &Need) -> QuotaDims {
        let mut out = QuotaDims::NONE;
        if self.quotas.is_empty() {
            return out;
        }
        let lo = self.quotas.partition_point(|q| q.tenant < tenant);
        for (row, q) in self.quotas[lo..].iter().enumerate() {
            if q.tenant != tenant {
                break;
            }
            let units = need.units[q.class];
            if units > 0 && q.site.is_none_or(|s| s == site) {
                out.rows[out.len] = (lo + row, units);
                out.len += 1;
            }
        }
        out
    }

    /// Whether every quota row in `rows` has room for its units at ring position `ring`.
    #[inline]
    pub fn fits_quota_at_ring(&self, rows: &[(usize, u32)], ring: usize) -> bool {
        rows.iter()
            .all(|&(row, units)| self.quota_free[row * self.horizon + ring] >= units)
    }

    fn charge(&mut self, rows: &[(usize, u32)], slot: i64) {
        let ring = self.ring(slot);
        for &(row, units) in rows {
            let i = row * self.horizon + ring;
            self.quota_free[i] = self.quota_free[i].saturating_sub(units);
        }
    }

    fn reset_slot(&mut self, slot: i64) {
        let ring = self.ring(slot);
        for (row, q) in self.quotas.iter().enumerate() {
            self.quota_free[row * self.horizon + ring] = q.cap;
        }
        for site in 0..self.capacity.len() {
            let cap = self.capacity[site];
            for dim in 0..N_CLASSES {
                let i = self.at(site, dim, slot);
                self.free[i] = cap.units[dim];
            }
            let i = self.at(site, N_CLASSES, slot);
            self.free[i] = cap.watts.unwrap_or(u32::MAX);
            let i = self.at(site, NODE_DIM, slot);
            self.free[i] = cap.nodes.map_or(0, |n| n.count);
        }
        for t in 0..self.tails.len() {
            let tail = self.tails[t].clone();
            if tail.from <= slot && slot < tail.to {
                if tail.capacity {
                    self.take(tail.site, &tail.need, slot);
                }
                if let Some(tenant) = tail.tenant {
                    let rows = self.quota_dims(tenant, tail.site, &tail.need);
                    self.charge(rows.as_slice(), slot);
                }
            }
        }
    }

    fn take(&mut self, site: usize, need: &Need, slot: i64) {
        let ring = self.ring(slot);
        self.take_at_ring(site, need, ring);
    }

    /// Books `need` at `site` in one slot (known to fit): the units it holds (whole
    /// nodes for a gang at a site with nodes), its power, and the site's whole
    /// free nodes after.
    fn take_at_ring(&mut self, site: usize, need: &Need, ring: usize) {
        let row = site * DIMS * self.horizon + ring;
        match self.capacity[site].nodes {
            Some(shape) => {
                for dim in 0..N_CLASSES {
                    let units = self.held(&shape, need, dim);
                    if units > 0 {
                        self.free[row + dim * self.horizon] -= units;
                    }
                }
            }
            None => {
                for (dim, units) in need.classes() {
                    self.free[row + dim * self.horizon] -= units;
                }
            }
        }
        if self.capacity[site].watts.is_some() && need.watts > 0 {
            self.free[row + N_CLASSES * self.horizon] -= need.watts;
        }
        if let Some(shape) = self.capacity[site].nodes {
            self.free[row + NODE_DIM * self.horizon] = self.whole_free(&shape, row);
        }
    }

    /// Units of class `dim` that `need` holds at a site whose nodes are `shape`:
    /// a gang holds its nodes whole, any other job what it asks.
    #[inline]
    fn held(&self, shape: &Nodes, need: &Need, dim: usize) -> u32 {
        if need.nodes > 0 {
            (need.nodes * shape.per_node[dim]).max(need.units[dim])
        } else {
            need.units[dim]
        }
    }

    /// Whole free nodes at the slot whose first dimension is at `row`: the
    /// nodes no gang holds less those the other jobs fill, packed densely.
    fn whole_free(&self, shape: &Nodes, row: usize) -> u32 {
        (0..N_CLASSES)
            .filter(|&dim| shape.per_node[dim] > 0)
            .map(|dim| self.free[row + dim * self.horizon] / shape.per_node[dim])
            .min()
            .unwrap_or(0)
            .min(shape.count)
    }

    /// Moves the window so that it starts at the slot containing `now`. Slots that
    /// enter the window get their full capacity less the tails of reservations made
    /// earlier. Never moves backwards.
    pub fn advance_to(&mut self, now: SimTime) {
        let new_base = self.slot_of(now.0);
        if new_base <= self.base {
            return;
        }
        let old_end = self.end();
        let new_end = new_base + self.horizon as i64;
        self.base = new_base;
        for k in old_end.max(new_base)..new_end {
            self.reset_slot(k);
        }
        self.tails.retain(|t| t.to > new_end);
    }

    /// Free units of class `class` at `site` in `slot` (a slot in the window).
    pub fn free(&self, site: usize, class: usize, slot: i64) -> u32 {
        self.free[self.at(site, class, slot)]
    }

    /// Whole free nodes at `site` in `slot` (0 at a site that declares no nodes).
    pub fn free_nodes(&self, site: usize, slot: i64) -> u32 {
        self.free[self.at(site, NODE_DIM, slot)]
    }

    /// Whole nodes at `site` held by gangs, or filled by other jobs, in `slot`.
    pub fn busy_nodes(&self, site: usize, slot: i64) -> u32 {
        self.capacity[site].nodes.map_or(0, |n| n.count) - self.free_nodes(site, slot)
    }

    /// Free power at `site` in `slot`, W (`u32::MAX` without a cap).
    pub fn free_watts(&self, site: usize, slot: i64) -> u32 {
        self.free[self.at(site, N_CLASSES, slot)]
    }

    /// Whether `need` fits at `site` in one slot.
    #[inline]
    pub fn fits_slot(&self, site: usize, need: &Need, slot: i64) -> bool {
        let ring = slot.rem_euclid(self.horizon as i64) as usize;
        let row = site * DIMS * self.horizon + ring;
        for (dim, units) in need.units.iter().enumerate() {
            if *units > 0 && self.free[row + dim * self.horizon] < *units {
                return false;
            }
        }
        (need.nodes == 0 || self.free[row + NODE_DIM * self.horizon] >= need.nodes)
            && (need.watts == 0
                || self.capacity[site].watts.is_none()
                || self.free[row + N_CLASSES * self.horizon] >= need.watts)
    }

    /// Position of `slot` in the ring that stores the window.
    #[inline]
    pub fn ring(&self, slot: i64) -> usize {
        slot.rem_euclid(self.horizon as i64) as usize
    }

    /// The ring position after `ring`.
    #[inline]
    pub fn next_ring(&self, ring: usize) -> usize {
        if ring + 1 == self.horizon {
            0
        } else {
            ring + 1
        }
    }

    /// Like [`Calendar::fits_slot`] for a need given as its non-zero dimensions
    /// (class index, units; a gang adds `(NODE_DIM, nodes)`) and its watts, at a
    /// ring position: the scheduler's inner loop, which walks slots in order and
    /// so avoids a division per slot.
    #[inline]
    pub fn fits_at_ring(
        &self,
        site: usize,
        dims: &[(usize, u32)],
        watts: u32,
        ring: usize,
    ) -> bool {
        let row = site * DIMS * self.horizon + ring;
        dims.iter()
            .all(|&(dim, units)| self.free[row + dim * self.horizon] >= units)
            && (watts == 0
                || self.capacity[site].watts.is_none()
                || self.free[row + N_CLASSES * self.horizon] >= watts)
    }

    /// Whether `need` fits at `site` over slots `from..to` (clipped to the window;
    /// slots past the window are free by construction).
    pub fn fits(&self, site: usize, need: &Need, from: i64, to: i64) -> bool {
        (from.max(self.base)..to.min(self.end())).all(|k| self.fits_slot(site, need, k))
    }

    /// Books `need` at `site` over slots `from..to`. `from` must lie in the window.
    /// Counts against no quota.
    pub fn reserve(
        &mut self,
        site: usize,
        need: &Need,
        from: i64,
        to: i64,
    ) -> Result<(), ReserveError> {
        self.reserve_inner(None, site, need, from, to)
    }

    /// Books `need` at `site` over slots `from..to` for `tenant`: refused when it
    /// does not fit the site or would take the tenant past one of its quotas.
    pub fn reserve_for(
        &mut self,
        tenant: u32,
        site: usize,
        need: &Need,
        from: i64,
        to: i64,
    ) -> Result<(), ReserveError> {
        self.reserve_inner(Some(tenant), site, need, from, to)
    }

    /// Counts `need` at `site` over slots `from..to` against `tenant`'s quotas
    /// without checking them and without touching site capacity: for work the
    /// tenant holds already (running, or booked with [`Calendar::reserve`]),
    /// which counts even past a quota lowered since.
    pub fn charge_quota(&mut self, tenant: u32, site: usize, need: &Need, from: i64, to: i64) {
        let rows = self.quota_dims(tenant, site, need);
        if rows.len == 0 {
            return;
        }
        let from = from.max(self.base);
        let last = to.min(self.end());
        for k in from..last {
            self.charge(rows.as_slice(), k);
        }
        if to > last {
            self.tails.push(Tail {
                site,
                need: *need,
                from: last.max(from),
                to,
                capacity: false,
                tenant: Some(tenant),
            });
        }
    }

    /// Gives back, from slot `from` on, what a booking of `need` at `site` until
    /// slot `to` holds: its units (whole nodes for a gang), its power and, when
    /// `tenant` is given, what it counted against that tenant's quotas. The
    /// inverse of [`Calendar::reserve_for`] (or of [`Calendar::reserve`] with
    /// [`Calendar::charge_quota`]) over `from..to`, for a job stopped early
    /// (preempted). The caller must name a booking that exists: giving back
    /// what was never booked would make room that is not there.
    pub fn release(&mut self, tenant: Option<u32>, site: usize, need: &Need, from: i64, to: i64) {
        let from = from.max(self.base);
        let last = to.min(self.end());
        let quota = match tenant {
            Some(t) => self.quota_dims(t, site, need),
            None => QuotaDims::NONE,
        };
        for k in from..last {
            let ring = self.ring(k);
            self.give_at_ring(site, need, ring);
            for &(row, units) in quota.as_slice() {
                let i = row * self.horizon + ring;
                self.quota_free[i] = (self.quota_free[i] + units).min(self.quotas[row].cap);
            }
        }
        if to > last {
            // The part past the window waits as a tail: one holding capacity
            // (and the quota, when booked with `reserve_for`), or two (capacity,
            // and the quota charged apart). Cut them at `from`.
            let mut capacity_left = true;
            let mut quota_left = tenant.is_some() && quota.len > 0;
            for tail in &mut self.tails {
                if tail.site != site || tail.need != *need || tail.to != to {
                    continue;
                }
                let cut = match (tail.capacity, tail.tenant) {
                    (true, Some(_)) if capacity_left => {
                        quota_left = false;
                        true
                    }
                    (true, None) => capacity_left,
                    (false, t) => quota_left && t == tenant,
                    _ => false,
                };
                if !cut {
                    continue;
                }
                if tail.capacity {
                    capacity_left = false;
                } else {
                    quota_left = false;
                }
                tail.to = tail.to.min(from.max(tail.from));
                if !capacity_left && !quota_left {
                    break;
                }
            }
            self.tails.retain(|t| t.to > t.from);
        }
    }

    /// The inverse of [`Calendar::take_at_ring`].
    fn give_at_ring(&mut self, site: usize, need: &Need, ring: usize) {
        let row = site * DIMS * self.horizon + ring;
        let capacity = self.capacity[site];
        match capacity.nodes {
            Some(shape) => {
                for dim in 0..N_CLASSES {
                    let units = self.held(&shape, need, dim);
                    if units > 0 {
                        let i = row + dim * self.horizon;
                        self.free[i] = (self.free[i] + units).min(capacity.units[dim]);
                    }
                }
            }
            None => {
                for (dim, units) in need.classes() {
                    let i = row + dim * self.horizon;
                    self.free[i] = (self.free[i] + units).min(capacity.units[dim]);
                }
            }
        }
        if let Some(cap) = capacity.watts
            && need.watts > 0
        {
            let i = row + N_CLASSES * self.horizon;
            self.free[i] = (self.free[i] + need.watts).min(cap);
        }
        if let Some(shape) = capacity.nodes {
            self.free[row + NODE_DIM * self.horizon] = self.whole_free(&shape, row);
        }
    }

    fn reserve_inner(
        &mut self,
        tenant: Option<u32>,
        site: usize,
        need: &Need,
        from: i64,
        to: i64,
    ) -> Result<(), ReserveError> {
        if from < self.base || from >= self.end() {
            return Err(ReserveError::OutsideWindow { slot: from });
        }
        let last = to.min(self.end());
        let mut dims = [(0usize, 0u32); N_CLASSES + 1];
        let mut n = 0;
        for (dim, units) in need.classes() {
            dims[n] = (dim, units);
            n += 1;
        }
        if need.nodes > 0 {
            dims[n] = (NODE_DIM, need.nodes);
            n += 1;
        }
        let dims = &dims[..n];
        let capped = self.capacity[site].watts.is_some() && need.watts > 0;
        let start_ring = self.ring(from);
        let mut ring = start_ring;
        for k in from..last {
            if !self.fits_at_ring(site, dims, need.watts, ring) {
                if need.nodes > 0 && self.free[self.at(site, NODE_DIM, k)] < need.nodes {
                    return Err(ReserveError::Nodes { slot: k });
                }
                let class = need
                    .classes()
                    .find(|(dim, units)| self.free(site, *dim, k) < *units)
                    .and_then(|(dim, _)| ResourceClass::from_index(dim));
                return Err(ReserveError::Full { slot: k, class });
            }
            ring = self.next_ring(ring);
        }
        let quota = match tenant {
            Some(t) => self.quota_dims(t, site, need),
            None => QuotaDims::NONE,
        };
        if quota.len > 0 {
            let mut ring = start_ring;
            for k in from..last {
                if let Some(&(row, _)) = quota
                    .as_slice()
                    .iter()
                    .find(|&&(row, units)| self.quota_free[row * self.horizon + ring] < units)
                {
                    let q = self.quotas[row];
                    return Err(ReserveError::Quota {
                        slot: k,
                        class: ResourceClass::from_index(q.class),
                        site: q.site,
                    });
                }
                ring = self.next_ring(ring);
            }
            for k in from..last {
                self.charge(quota.as_slice(), k);
            }
        }
        let row = site * DIMS * self.horizon;
        let mut ring = start_ring;
        if self.capacity[site].nodes.is_some() {
            // Whole nodes for a gang, and the whole free nodes kept up to date.
            for _ in from..last {
                self.take_at_ring(site, need, ring);
                ring = self.next_ring(ring);
            }
        } else {
            for _ in from..last {
                for &(dim, units) in dims {
                    self.free[row + dim * self.horizon + ring] -= units;
                }
                if capped {
                    self.free[row + N_CLASSES * self.horizon + ring] -= need.watts;
                }
                ring = self.next_ring(ring);
            }
        }
        if to > last {
            self.tails.push(Tail {
                site,
                need: *need,
                from: last,
                to,
                capacity: true,
                tenant: tenant.filter(|_| quota.len > 0),
            });
        }
        Ok(())
    }

    /// Units of class `class` booked at `site` in `slot`.
    pub fn busy(&self, site: usize, class: usize, slot: i64) -> u32 {
        self.capacity[site].units[class] - self.free(site, class, slot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn need(cpu: u32) -> Need {
        let mut n = Need::default();
        n.units[0] = cpu;
        n
    }

    fn calendar(cpu: u32, horizon: usize) -> Calendar {
        let mut cap = SiteCapacity::default();
        cap.units[0] = cpu;
        Calendar::new(vec![cap], 900, horizon, SimTime(0))
    }

    #[test]
    fn refuses_overbooking() {
        let mut cal = calendar(4, 8);
        cal.reserve(0, &need(3), 0, 4).unwrap();
        assert_eq!(
            cal.reserve(0, &need(2), 3, 5),
            Err(ReserveError::Full {
                slot: 3,
                class: Some(ResourceClass::Cpu)
            })
        );
        cal.reserve(0, &need(2), 4, 6).unwrap();
        assert_eq!(cal.free(0, 0, 3), 1);
        assert_eq!(cal.free(0, 0, 4), 2);
    }

    /// Four nodes of 8 cores and 2 GPUs (class 2).
    fn four_nodes() -> Calendar {
        let mut per_node = [0; N_CLASSES];
        per_node[0] = 8;
        per_node[2] = 2;
        let cap = SiteCapacity {
            units: per_node.map(|u| u * 4),
            watts: None,
            nodes: Some(Nodes { count: 4, per_node }),
        };
        Calendar::new(vec![cap], 900, 8, SimTime(0))
    }

    fn gang(cpu_per_node: u32, nodes: u32) -> Need {
        let mut n = need(cpu_per_node * nodes);
        n.nodes = nodes;
        n
    }

    #[test]
    fn a_gang_holds_whole_nodes_and_other_jobs_fill_nodes_densely() {
        let mut cal = four_nodes();
        assert_eq!(cal.free_nodes(0, 0), 4);
        // A gang of 2 asking 1 core per node holds both nodes whole.
        cal.reserve(0, &gang(1, 2), 0, 4).unwrap();
        assert_eq!(cal.free_nodes(0, 0), 2);
        assert_eq!(cal.free(0, 0, 0), 16, "two whole nodes of 8 cores held");
        assert_eq!(cal.free(0, 2, 0), 4, "and their GPUs");
        // Nine cores of plain jobs fill one node and part of another.
        cal.reserve(0, &need(9), 0, 2).unwrap();
        assert_eq!(cal.free_nodes(0, 0), 0);
        assert_eq!(cal.busy_nodes(0, 0), 4);
        assert_eq!(
            cal.reserve(0, &gang(1, 1), 1, 2),
            Err(ReserveError::Nodes { slot: 1 })
        );
        // After the plain jobs end, one node is whole again... and then two.
        assert_eq!(cal.free_nodes(0, 2), 2);
        cal.reserve(0, &gang(8, 2), 2, 4).unwrap();
        assert_eq!(cal.free_nodes(0, 3), 0);
        assert_eq!(cal.free(0, 0, 3), 0);
        assert!(cal.reserve(0, &need(1), 3, 4).is_err());
        // A gang's tail past the window is applied, whole, as its slots enter.
        cal.reserve(0, &gang(2, 3), 5, 12).unwrap();
        cal.advance_to(SimTime(9 * 900));
        assert_eq!(cal.free_nodes(0, 11), 1);
        assert_eq!(cal.free(0, 0, 11), 8);
        assert_eq!(cal.free_nodes(0, 12), 4);
    }

    #[test]
    fn a_site_without_nodes_runs_no_gang() {
        let mut cal = calendar(64, 4);
        assert_eq!(cal.free_nodes(0, 0), 0);
        assert_eq!(
            cal.reserve(0, &gang(1, 2), 0, 1),
            Err(ReserveError::Nodes { slot: 0 })
        );
        assert!(!cal.fits_slot(0, &gang(1, 2), 0));
        cal.reserve(0, &need(64), 0, 1).unwrap();
    }

    #[test]
    fn tails_apply_as_slots_enter_the_window() {
        let mut cal = calendar(4, 4);
        // Runs slots 2..10 with a window of 0..4.
        cal.reserve(0, &need(4), 2, 10).unwrap();
        cal.advance_to(SimTime(6 * 900));
        assert_eq!(cal.base(), 6);
        for k in 6..10 {
            assert_eq!(cal.free(0, 0, k), 0, "slot {k}");
        }
        cal.advance_to(SimTime(9 * 900));
        assert_eq!(cal.free(0, 0, 9), 0);
        assert_eq!(cal.free(0, 0, 10), 4);
        assert_eq!(cal.free(0, 0, 12), 4);
    }

    #[test]
    fn jumps_past_the_whole_window() {
        let mut cal = calendar(4, 4);
        cal.reserve(0, &need(1), 0, 2).unwrap();
        cal.advance_to(SimTime(100 * 900));
        assert!((100..104).all(|k| cal.free(0, 0, k) == 4));
    }

    /// Every free figure of site 0 over `slots`, quotas included.
    fn state(cal: &Calendar, slots: std::ops::Range<i64>) -> Vec<u32> {
        let mut out = Vec::new();
        for k in slots {
            out.extend([0, 2].map(|c| cal.free(0, c, k)));
            out.push(cal.free_nodes(0, k));
            out.extend((0..cal.quotas().len()).map(|row| cal.quota_free(row, k)));
        }
        out
    }

    #[test]
    fn release_gives_back_a_booking_from_a_slot_on_past_the_window_too() {
        for nodes in [false, true] {
            let mut cal = if nodes { four_nodes() } else { calendar(32, 8) };
            cal.set_quotas(vec![Quota {
                tenant: 7,
                class: 0,
                site: None,
                cap: 20,
            }]);
            cal.reserve(0, &need(3), 0, 20).unwrap();
            let mut want = cal.clone();
            // Booked the two ways a driver books: with the quota, and apart.
            let job = if nodes { gang(2, 1) } else { need(5) };
            cal.reserve_for(7, 0, &job, 1, 14).unwrap();
            cal.reserve(0, &job, 2, 12).unwrap();
            cal.charge_quota(7, 0, &job, 2, 12);
            // Cut both at slot 3: what remains is the slots before.
            cal.release(Some(7), 0, &job, 3, 14);
            cal.release(Some(7), 0, &job, 3, 12);
            want.reserve_for(7, 0, &job, 1, 3).unwrap();
            want.reserve(0, &job, 2, 3).unwrap();
            want.charge_quota(7, 0, &job, 2, 3);
            assert_eq!(state(&cal, 0..8), state(&want, 0..8), "nodes {nodes}");
            // The tails past the window were cut too.
            cal.advance_to(SimTime(10 * 900));
            want.advance_to(SimTime(10 * 900));
            assert_eq!(state(&cal, 10..18), state(&want, 10..18), "nodes {nodes}");
        }
    }

    #[test]
    fn per_site_quota_caps_one_site_only() {
        let mut cap = SiteCapacity::default();
        cap.units[0] = 8;
        let mut cal = Calendar::new(vec![cap, cap], 900, 8, SimTime(0));
        cal.set_quotas(vec![
            Quota {
                tenant: 7,
                class: 0,
                site: Some(0),
                cap: 2,
            },
            Quota {
                tenant: 7,
                class: 0,
                site: None,
                cap: 5,
            },
        ]);
        cal.reserve_for(7, 0, &need(2), 0, 4).unwrap();
        // Site 0's cap is spent; site 1 takes more up to the network-wide cap.
        assert_eq!(
            cal.reserve_for(7, 0, &need(1), 2, 3),
            Err(ReserveError::Quota {
                slot: 2,
                class: Some(ResourceClass::Cpu),
                site: Some(0)
            })
        );
        cal.reserve_for(7, 0, &need(1), 4, 5).unwrap();
        cal.reserve_for(7, 1, &need(3), 0, 4).unwrap();
        assert_eq!(
            cal.reserve_for(7, 1, &need(1), 3, 6),
            Err(ReserveError::Quota {
                slot: 3,
                class: Some(ResourceClass::Cpu),
                site: None
            })
        );
        // Another tenant is not capped, and a plain reservation counts against no one.
        cal.reserve_for(8, 0, &need(3), 0, 4).unwrap();
        cal.reserve(0, &need(1), 0, 4).unwrap();
        assert_eq!(cal.free(0, 0, 0), 2);
        // Held work counts past the window as its slots enter it.
        cal.charge_quota(7, 1, &need(3), 6, 12);
        cal.advance_to(SimTime(8 * 900));
        // Rows sort by (tenant, site, class): the network-wide row comes first.
        assert_eq!(cal.quotas()[0].site, None);
        assert_eq!(cal.quota_free(0, 9), 2, "network-wide row: 5 less 3 held");
        assert_eq!(
            cal.quota_free(1, 9),
            2,
            "site 0 row untouched by site 1 work"
        );
        assert!(cal.reserve_for(7, 1, &need(3), 9, 10).is_err());
        cal.reserve_for(7, 1, &need(2), 9, 10).unwrap();
    }
}
