//! CPUs: how many are online. Secondary CPUs are not started yet (PSCI CPU_ON is there in
//! [`super::psci`]; bringing them up is the next step, docs/arch.md).

/// CPUs running the scheduler.
pub fn online_count() -> usize {
    super::percpu::online_cpus().count()
}
