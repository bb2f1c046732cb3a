//! The verification probe (`suanwang agent --probe`): a short benchmark on the
//! units the agent offers, so that the control plane can show measured
//! performance beside each class's nominal figure (规格 vs 实测).
//!
//! - CPU: single-precision (f32) matrix products, one thread per core offered,
//!   for a fixed time; the figure is floating-point operations per second over
//!   all threads (2·n³ per product).
//! - Accelerators: a GPU matrix product needs a vendor compute library (CUDA
//!   with cuBLAS, CANN for Ascend), which this agent does not link; a class
//!   present on the host is reported as `not-run` with that reason, never with a
//!   made-up figure.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use suanwang_api::{Probe, ProbeStatus};
use suanwang_model::ResourceClass;

/// Side of the square matrices the CPU probe multiplies: 3 × 256 KiB of f32,
/// about what a core's L2 cache holds, so that the figure is the cores' and not
/// the memory bus's.
pub const CPU_MATRIX: usize = 256;

/// One product `c += a · b` of `n × n` row-major matrices, in the i-k-j order
/// that lets the compiler vectorise the inner loop.
fn matmul(n: usize, a: &[f32], b: &[f32], c: &mut [f32]) {
    for i in 0..n {
        let row = &mut c[i * n..(i + 1) * n];
        for k in 0..n {
            let aik = a[i * n + k];
            let b_row = &b[k * n..(k + 1) * n];
            for (cij, bkj) in row.iter_mut().zip(b_row) {
                *cij += aik * bkj;
            }
        }
    }
}

/// Runs f32 matrix products on `threads` threads for about `budget`; returns
/// the products done and the time they took.
fn run_cpu(threads: usize, budget: Duration) -> (u64, Duration) {
    let n = CPU_MATRIX;
    let started = Instant::now();
    let products: u64 = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || {
                    let a: Vec<f32> = (0..n * n).map(|i| ((i + t) % 7) as f32 * 0.25).collect();
                    let b: Vec<f32> = (0..n * n).map(|i| ((i * 3) % 5) as f32 * 0.5).collect();
                    let mut c = vec![0.0f32; n * n];
                    let mut done = 0u64;
                    while done == 0 || started.elapsed() < budget {
                        matmul(n, &a, &b, &mut c);
                        done += 1;
                    }
                    // Keep the result observable so that the work is not elided.
                    std::hint::black_box(&c);
                    done
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap_or(0)).sum()
    });
    (products, started.elapsed())
}

/// The CPU probe on `cores` cores for about `budget`, stamped `now` (unix
/// seconds).
pub fn cpu(cores: u64, budget: Duration, now: i64) -> Probe {
    let threads = cores.clamp(1, 1024) as usize;
    let (products, took) = run_cpu(threads, budget);
    let n = CPU_MATRIX as f64;
    let flops = products as f64 * 2.0 * n * n * n;
    Probe {
        class: ResourceClass::Cpu.name().to_string(),
        status: ProbeStatus::Ran,
        units: threads as u64,
        gflops: Some(flops / took.as_secs_f64() / 1e9),
        method: format!(
            "f32 matmul {CPU_MATRIX}×{CPU_MATRIX}, {threads} thread(s), {products} products in {} ms",
            took.as_millis()
        ),
        note: None,
        at: now,
    }
}

/// The accelerator classes in `capacity`, each reported as not run: this build
/// links no GPU compute library.
pub fn accelerators(capacity: &BTreeMap<String, u64>, now: i64) -> Vec<Probe> {
    capacity
        .iter()
        .filter(|(name, units)| {
            **units > 0 && ResourceClass::parse(name).is_some_and(|c| c.is_accelerator())
        })
        .map(|(name, units)| Probe {
            class: name.clone(),
            status: ProbeStatus::NotRun,
            units: *units,
            gflops: None,
            method: "matmul on the device".to_string(),
            note: Some(
                "not run: this agent links no GPU compute library (CUDA/cuBLAS, CANN), so it cannot multiply matrices on the device"
                    .to_string(),
            ),
            at: now,
        })
        .collect()
}

/// Every probe for an agent offering `capacity`: the CPU one on its `cpu`
/// cores (when it offers any), then the accelerators'.
pub fn run(capacity: &BTreeMap<String, u64>, budget: Duration, now: i64) -> Vec<Probe> {
    let mut out = Vec::new();
    if let Some(&cores) = capacity.get(ResourceClass::Cpu.name())
        && cores > 0
    {
        out.push(cpu(cores, budget, now));
    }
    out.extend(accelerators(capacity, now));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matmul_multiplies() {
        // [[1,2],[3,4]] · [[5,6],[7,8]] = [[19,22],[43,50]]
        let mut c = vec![0.0; 4];
        matmul(2, &[1.0, 2.0, 3.0, 4.0], &[5.0, 6.0, 7.0, 8.0], &mut c);
        assert_eq!(c, [19.0, 22.0, 43.0, 50.0]);
    }

    #[test]
    fn the_cpu_probe_measures_and_accelerators_are_not_faked() {
        let capacity: BTreeMap<String, u64> =
            [("cpu".to_string(), 1), ("h20".to_string(), 2)].into();
        let probes = run(&capacity, Duration::from_millis(50), 7);
        assert_eq!(probes.len(), 2);
        let cpu = &probes[0];
        assert_eq!(
            (cpu.class.as_str(), cpu.status, cpu.units),
            ("cpu", ProbeStatus::Ran, 1)
        );
        // Any real core does well over 0.1 GFLOPS of f32 products.
        assert!(cpu.gflops.is_some_and(|g| g > 0.1), "{cpu:?}");
        let gpu = &probes[1];
        assert_eq!((gpu.status, gpu.gflops), (ProbeStatus::NotRun, None));
        assert!(
            gpu.note
                .as_deref()
                .is_some_and(|n| n.starts_with("not run"))
        );
    }
}
