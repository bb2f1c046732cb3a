//! The control plane's clock. Every time the control plane stores or compares
//! (submission, placement start, lease expiry) is read from one [`Clock`], so a
//! demo network can run faster than the wall clock: at speed 60 a two-hour job
//! passes in two minutes, and the scheduler's waits for cheap power shrink alike.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Network time: the wall clock, or the wall clock accelerated from a start.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    /// Network time at `origin`, unix seconds (fractional).
    origin_unix: f64,
    origin: Instant,
    speed: f64,
}

fn wall() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl Clock {
    /// The wall clock.
    pub fn real() -> Clock {
        Clock {
            origin_unix: wall(),
            origin: Instant::now(),
            speed: 1.0,
        }
    }

    /// A clock that reads `start_unix` now and then runs `speed` times faster than
    /// the wall clock.
    ///
    /// # Panics
    /// If `speed` is not finite and positive.
    pub fn accelerated(start_unix: i64, speed: f64) -> Clock {
        assert!(speed.is_finite() && speed > 0.0, "speed must be positive");
        Clock {
            origin_unix: start_unix as f64,
            origin: Instant::now(),
            speed,
        }
    }

    /// Network time now, unix seconds.
    pub fn now(&self) -> i64 {
        if self.speed == 1.0 {
            return wall() as i64;
        }
        (self.origin_unix + self.origin.elapsed().as_secs_f64() * self.speed) as i64
    }

    /// How much faster than the wall clock it runs.
    pub fn speed(&self) -> f64 {
        self.speed
    }

    /// Network seconds that pass in `real` wall time.
    pub fn network_secs(&self, real: Duration) -> i64 {
        (real.as_secs_f64() * self.speed).ceil() as i64
    }

    /// Wall time in which `secs` network seconds pass.
    pub fn real_duration(&self, secs: i64) -> Duration {
        Duration::from_secs_f64(secs.max(0) as f64 / self.speed)
    }
}

impl Default for Clock {
    fn default() -> Clock {
        Clock::real()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_accelerated_clock_runs_faster() {
        let clock = Clock::accelerated(1_000, 1000.0);
        let first = clock.now();
        assert!((1_000..1_010).contains(&first));
        std::thread::sleep(Duration::from_millis(50));
        let later = clock.now();
        assert!(later - first >= 45, "{first} → {later}");
        assert_eq!(clock.network_secs(Duration::from_secs(2)), 2000);
        assert_eq!(clock.real_duration(500), Duration::from_millis(500));
        let real = Clock::real();
        assert_eq!(real.network_secs(Duration::from_secs(3)), 3);
        assert!((real.now() - wall() as i64).abs() <= 1);
    }
}
