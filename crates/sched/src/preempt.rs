//! Preemption: a job of a higher priority class that cannot otherwise meet its
//! deadline may stop preemptible work of lower classes to start in time.
//!
//! Rules (each one checked where it is decided, and by the property tests):
//! - only a job with a deadline preempts, and only when the pass found no start
//!   that meets it (it was left pending, or placed late);
//! - a victim is [`Held::preemptible`] and of a strictly lower class than the
//!   job: never an equal or higher class;
//! - the job starts once the victims have had their grace period
//!   ([`Preempt::grace`]) and must then still meet its deadline;
//! - at most [`Preempt::budget`] victims per site (the driver's rate limit over
//!   a window, so that the network does not thrash);
//! - victims are chosen to lose the least work: jobs placed but not started
//!   first (they lose nothing), then by the money their run so far cost
//!   (time run × the site's compute price of what they hold); a site is chosen
//!   by the least work lost, then the fewest victims, then the policy's own
//!   ranking of the job there;
//! - a victim is stopped at most once per pass, and the job is placed once.
//!
//! The core only decides. The driver stops the victims (the agent sends
//! SIGTERM, waits the grace period, then SIGKILL; Slurm is signalled, then the
//! job cancelled), requeues them with their attempt counted, and counts the work
//! lost (`Victim::ran`, `Victim::lost_cny`).

use crate::calendar::{Calendar, Need};
use crate::plan::{Candidate, Outcome, Placement, Wait};
use crate::snapshot::Request;
use serde::{Deserialize, Serialize};
use suanwang_model::{JobId, SimDuration, SimTime};

/// A job holding capacity (running, handed out, or placed), as preemption sees
/// it. `from..to` must be the slots the driver booked for it in the calendar,
/// and only jobs whose booking succeeded may be listed: giving back what was
/// never booked would make room that is not there.
#[derive(Debug, Clone, PartialEq)]
pub struct Held {
    /// The job.
    pub id: JobId,
    /// Its tenant, as in [`Request::tenant`].
    pub tenant: u32,
    /// Site index.
    pub site: usize,
    /// What it holds (with the watts it was booked with).
    pub need: Need,
    /// Its class rank ([`Request::class`]).
    pub class: u8,
    /// Whether it may be stopped for a higher class.
    pub preemptible: bool,
    /// When it started running; none: placed (or handed out) and not started,
    /// so stopping it loses no work.
    pub started: Option<SimTime>,
    /// First booked slot.
    pub from: i64,
    /// One past the last booked slot.
    pub to: i64,
}

/// A job stopped so that another could start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Victim {
    /// The job stopped.
    pub job: JobId,
    /// Its index in the `held` slice.
    pub index: usize,
    /// Site index.
    pub site: usize,
    /// Its class rank.
    pub class: u8,
    /// How long it had run (the work lost; zero when it had not started).
    pub ran: SimDuration,
    /// What that run cost at the site's compute price, CNY.
    pub lost_cny: f64,
}

/// What a pass may preempt, and how: the running and placed work, the grace
/// period a victim gets, and what each site's rate limit still allows.
#[derive(Debug, Clone)]
pub struct Preempt<'a> {
    /// Work holding capacity.
    pub held: &'a [Held],
    /// Time from the stop signal to the kill: the job starts after it.
    pub grace: SimDuration,
    /// Victims each site may still lose in this pass (its rate limit).
    pub budget: Vec<u32>,
    pub(crate) taken: Vec<bool>,
}

impl<'a> Preempt<'a> {
    /// Preemption among `held`, with `grace` and a `budget` per site.
    pub fn new(held: &'a [Held], grace: SimDuration, budget: Vec<u32>) -> Preempt<'a> {
        Preempt {
            held,
            grace,
            budget,
            taken: vec![false; held.len()],
        }
    }

    /// No preemption.
    pub fn off() -> Preempt<'static> {
        Preempt {
            held: &[],
            grace: SimDuration::ZERO,
            budget: Vec::new(),
            taken: Vec::new(),
        }
    }

    /// Whether anything may be preempted at all.
    pub fn is_off(&self) -> bool {
        self.held.is_empty()
    }

    /// Whether `held[index]` was stopped in this pass.
    pub fn is_taken(&self, index: usize) -> bool {
        self.taken[index]
    }
}

/// Whether the outcome of placing `request` leaves it a reason to preempt: it
/// has a deadline, and it waits for capacity or was placed late.
pub(crate) fn wants(request: &Request, outcome: &Outcome) -> bool {
    request.deadline.is_some()
        && match outcome {
            Outcome::Pending(Wait::NoCapacityInHorizon) => true,
            Outcome::Placed(p) => p.chosen.terms.late_secs > SimDuration::ZERO,
            _ => false,
        }
}

/// One site's way to start the job in time.
pub(crate) struct Plan {
    pub site: usize,
    pub start: i64,
    pub from: i64,
    pub to: i64,
    pub need: Need,
    pub victims: Vec<usize>,
    pub lost: f64,
}

/// A victim's cost: (not started first, then) the money its run so far cost.
pub(crate) fn lost_cny(price_per_hour: f64, held: &Held, now: SimTime) -> (SimDuration, f64) {
    let ran = held
        .started
        .map_or(SimDuration::ZERO, |s| SimDuration((now.0 - s.0).max(0)));
    (ran, price_per_hour * ran.0 as f64 / 3600.0)
}

/// Gives back what `held` books from slot `from` on.
pub(crate) fn release(calendar: &mut Calendar, held: &Held, from: i64) {
    calendar.release(
        Some(held.tenant),
        held.site,
        &held.need,
        from.max(held.from),
        held.to,
    );
}

/// Books `held` again from slot `from` on (undoing [`release`]).
pub(crate) fn restore(calendar: &mut Calendar, held: &Held, from: i64) {
    let from = from.max(held.from).max(calendar.base());
    if from >= held.to {
        return;
    }
    let booked = calendar.reserve(held.site, &held.need, from, held.to);
    debug_assert!(booked.is_ok(), "what was just given back fits: {booked:?}");
    calendar.charge_quota(held.tenant, held.site, &held.need, from, held.to);
}

/// The placement a preempting job gets; with a spill-over list, the first
/// tier that holds its site (the tiers before are not reported as passed over:
/// preemption weighs every listed site at once, by the work lost).
pub(crate) fn placement(chosen: Candidate, request: &Request) -> Placement {
    Placement {
        site: chosen.site,
        start: chosen.start,
        end: chosen.start + request.duration,
        chosen,
        alternatives: Vec::new(),
        pruned: Vec::new(),
        tier: request
            .spill
            .iter()
            .position(|tier| tier.contains(&chosen.site)),
        passed_over: Vec::new(),
    }
}
