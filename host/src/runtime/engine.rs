//! The one wasmtime [`Engine`] and its epoch ticker.
//!
//! The engine uses the pooling allocator with a bounded number of instances,
//! so per-call instantiation reuses pre-reserved memory slots instead of
//! mapping fresh memory. A single ticker thread advances the epoch for the
//! whole engine (never one per request); call deadlines are counted in ticks.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// How often the epoch advances; the granularity of deadlines.
pub const EPOCH_TICK: Duration = Duration::from_millis(2);

/// Settings of the engine, chosen by the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineSettings {
    /// Component instances alive at once across all calls; further calls get
    /// `capacity_exhausted` instead of queueing without bound.
    pub max_instances: u32,
    /// Largest linear memory of any instance (the ceiling of `memory_bytes`).
    pub max_memory_bytes: u64,
}

impl Default for EngineSettings {
    fn default() -> Self {
        Self {
            max_instances: 1_000,
            max_memory_bytes: 512 << 20,
        }
    }
}

/// Core instances, memories and tables per component instance: a Rust
/// `wasm32-wasip2` component has a handful (main module, adapter, shims).
const CORE_PER_COMPONENT: u32 = 8;

/// Bytes of each linear memory kept resident (reset in place) when its slot is
/// reused. With the `PAGEMAP_SCAN` ioctl (Linux 6.7+) only the pages a call
/// dirtied are reset, so a generous amount costs nothing for small guests;
/// without it the low bytes are reset with `memset`, so keep that small.
fn linear_memory_keep_resident(pagemap_scan: bool) -> usize {
    if pagemap_scan { 16 << 20 } else { 64 << 10 }
}

/// Builds the engine.
pub fn build_engine(settings: &EngineSettings) -> wasmtime::Result<Engine> {
    let pagemap_scan = PoolingAllocationConfig::is_pagemap_scan_available();
    let mut pool = PoolingAllocationConfig::default();
    let max_memory = usize::try_from(settings.max_memory_bytes).unwrap_or(usize::MAX);
    pool.total_component_instances(settings.max_instances)
        .total_core_instances(settings.max_instances.saturating_mul(CORE_PER_COMPONENT))
        .total_memories(settings.max_instances.saturating_mul(2))
        .total_tables(settings.max_instances.saturating_mul(CORE_PER_COMPONENT))
        .total_stacks(settings.max_instances)
        .max_core_instances_per_component(CORE_PER_COMPONENT * 4)
        .max_memories_per_component(CORE_PER_COMPONENT)
        .max_tables_per_component(CORE_PER_COMPONENT * 2)
        .max_memory_size(max_memory)
        .max_unused_warm_slots(64)
        .pagemap_scan(if pagemap_scan {
            Enabled::Yes
        } else {
            Enabled::No
        })
        .linear_memory_keep_resident(linear_memory_keep_resident(pagemap_scan))
        .table_keep_resident(64 << 10);

    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .epoch_interruption(true)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
        .max_wasm_stack(1 << 20)
        .async_stack_size(2 << 20);
    Engine::new(&config)
}

/// Advances an engine's epoch every [`EPOCH_TICK`] until dropped.
pub struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    /// Starts the ticker thread for `engine`.
    pub fn start(engine: Engine) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("switchboard-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })?;
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
