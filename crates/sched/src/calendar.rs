//! The capacity calendar: free units per site, resource class and time slot over a
//! rolling horizon. It is the scheduler's only mutable state and is never overbooked:
//! [`Calendar::reserve`] refuses a reservation that does not fit.
//!
//! Slots are absolute (`slot k` covers `[k·slot_secs, (k+1)·slot_secs)`); the window
//! holds slots `base .. base + horizon` in a ring. A reservation that runs past the
//! window keeps its tail aside and applies it as each later slot enters the window,
//! so a slot is always complete when anyone can book it.

use suanwang_model::{N_CLASSES, ResourceClass, SimTime};

/// Units of each class a job holds, plus facility power in watts (for power caps).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Need {
    /// Units per class.
    pub units: [u32; N_CLASSES],
    /// Facility power, W (IT power × PUE), counted only at sites with a power cap.
    pub watts: u32,
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
}

/// A site's capacity as the calendar sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SiteCapacity {
    /// Units per class.
    pub units: [u32; N_CLASSES],
    /// Power cap, W, if the site has one.
    pub watts: Option<u32>,
}

/// Why a reservation was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReserveError {
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
    // Layout: ((site * (N_CLASSES + 1)) + dim) * horizon + ring; dim N_CLASSES is power.
    free: Vec<u32>,
    tails: Vec<Tail>,
}

const DIMS: usize = N_CLASSES + 1;

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

    fn reset_slot(&mut self, slot: i64) {
        for site in 0..self.capacity.len() {
            let cap = self.capacity[site];
            for dim in 0..N_CLASSES {
                let i = self.at(site, dim, slot);
                self.free[i] = cap.units[dim];
            }
            let i = self.at(site, N_CLASSES, slot);
            self.free[i] = cap.watts.unwrap_or(u32::MAX);
        }
        for t in 0..self.tails.len() {
            let tail = self.tails[t].clone();
            if tail.from <= slot && slot < tail.to {
                self.take(tail.site, &tail.need, slot);
            }
        }
    }

    fn take(&mut self, site: usize, need: &Need, slot: i64) {
        for (dim, units) in need.classes() {
            let i = self.at(site, dim, slot);
            self.free[i] -= units;
        }
        if self.capacity[site].watts.is_some() && need.watts > 0 {
            let i = self.at(site, N_CLASSES, slot);
            self.free[i] -= need.watts;
        }
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
        need.watts == 0
            || self.capacity[site].watts.is_none()
            || self.free[row + N_CLASSES * self.horizon] >= need.watts
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
    /// (class index, units) and its watts, at a ring position: the scheduler's
    /// inner loop, which walks slots in order and so avoids a division per slot.
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
    pub fn reserve(
        &mut self,
        site: usize,
        need: &Need,
        from: i64,
        to: i64,
    ) -> Result<(), ReserveError> {
        if from < self.base || from >= self.end() {
            return Err(ReserveError::OutsideWindow { slot: from });
        }
        let last = to.min(self.end());
        let mut dims = [(0usize, 0u32); N_CLASSES];
        let mut n = 0;
        for (dim, units) in need.classes() {
            dims[n] = (dim, units);
            n += 1;
        }
        let dims = &dims[..n];
        let capped = self.capacity[site].watts.is_some() && need.watts > 0;
        let start_ring = self.ring(from);
        let mut ring = start_ring;
        for k in from..last {
            if !self.fits_at_ring(site, dims, need.watts, ring) {
                let class = need
                    .classes()
                    .find(|(dim, units)| self.free(site, *dim, k) < *units)
                    .and_then(|(dim, _)| ResourceClass::from_index(dim));
                return Err(ReserveError::Full { slot: k, class });
            }
            ring = self.next_ring(ring);
        }
        let row = site * DIMS * self.horizon;
        let mut ring = start_ring;
        for _ in from..last {
            for &(dim, units) in dims {
                self.free[row + dim * self.horizon + ring] -= units;
            }
            if capped {
                self.free[row + N_CLASSES * self.horizon + ring] -= need.watts;
            }
            ring = self.next_ring(ring);
        }
        if to > last {
            self.tails.push(Tail {
                site,
                need: *need,
                from: last,
                to,
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
}
