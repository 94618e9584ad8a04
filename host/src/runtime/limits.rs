//! Per-call resource limits: defaults, per-connector overrides, enforcement.
//!
//! Every limit has a name (the manifest key under `[limits]`), a host default an
//! operator can change, and a ceiling no manifest may exceed. Memory and table
//! limits count the whole instance — every linear memory and table of every
//! core instance in the component — not one memory.

use std::time::Duration;

use serde::Deserialize;

/// The limits one call runs under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock budget of the call, guest code and host calls together.
    pub deadline: Duration,
    /// Bytes of linear memory, summed over the instance.
    pub memory_bytes: u64,
    /// Table elements, summed over the instance.
    pub table_elements: u64,
    /// Core and component instances one call may create.
    pub instances: u32,
    /// Bytes of the JSON document an operation may return.
    pub output_bytes: usize,
    /// Budget of one outbound HTTP request (also bounded by the deadline).
    pub http_timeout: Duration,
    /// Bytes of an outbound HTTP response body.
    pub http_response_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            deadline: Duration::from_millis(5_000),
            memory_bytes: 64 << 20,
            table_elements: 20_000,
            instances: 32,
            output_bytes: 1 << 20,
            http_timeout: Duration::from_millis(3_000),
            http_response_bytes: 4 << 20,
        }
    }
}

/// The largest value any manifest may ask for; set by the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitCeilings {
    /// Longest deadline.
    pub deadline: Duration,
    /// Most linear memory; also sizes the engine's memory slots.
    pub memory_bytes: u64,
    /// Most table elements.
    pub table_elements: u64,
    /// Most instances.
    pub instances: u32,
    /// Largest output.
    pub output_bytes: usize,
    /// Largest outbound HTTP response body.
    pub http_response_bytes: usize,
}

impl Default for LimitCeilings {
    fn default() -> Self {
        Self {
            deadline: Duration::from_secs(60),
            memory_bytes: 512 << 20,
            table_elements: 1_000_000,
            instances: 64,
            output_bytes: 16 << 20,
            http_response_bytes: 64 << 20,
        }
    }
}

/// The `[limits]` table of a manifest: each field overrides the host default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitOverrides {
    /// Overrides [`Limits::deadline`], in milliseconds.
    pub deadline_ms: Option<u64>,
    /// Overrides [`Limits::memory_bytes`].
    pub memory_bytes: Option<u64>,
    /// Overrides [`Limits::table_elements`].
    pub table_elements: Option<u64>,
    /// Overrides [`Limits::instances`].
    pub instances: Option<u32>,
    /// Overrides [`Limits::output_bytes`].
    pub output_bytes: Option<usize>,
    /// Overrides [`Limits::http_timeout`], in milliseconds.
    pub http_timeout_ms: Option<u64>,
    /// Overrides [`Limits::http_response_bytes`].
    pub http_response_bytes: Option<usize>,
}

/// A manifest asked for a limit outside what the host allows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("limits.{name} = {requested} is outside the allowed range {min}..={max}")]
pub struct LimitOutOfRange {
    /// The manifest key.
    pub name: &'static str,
    /// The value asked for.
    pub requested: u64,
    /// The smallest value accepted.
    pub min: u64,
    /// The largest value accepted.
    pub max: u64,
}

fn within(
    name: &'static str,
    requested: Option<u64>,
    default: u64,
    min: u64,
    max: u64,
) -> Result<u64, LimitOutOfRange> {
    match requested {
        None => Ok(default.min(max)),
        Some(value) if (min..=max).contains(&value) => Ok(value),
        Some(value) => Err(LimitOutOfRange {
            name,
            requested: value,
            min,
            max,
        }),
    }
}

/// Whole milliseconds of `duration`, saturating.
pub fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

impl LimitOverrides {
    /// Applies these overrides to `defaults`, refusing any beyond `ceilings`.
    pub fn resolve(
        &self,
        defaults: &Limits,
        ceilings: &LimitCeilings,
    ) -> Result<Limits, LimitOutOfRange> {
        let deadline_ms = within(
            "deadline_ms",
            self.deadline_ms,
            millis(defaults.deadline),
            1,
            millis(ceilings.deadline),
        )?;
        let http_timeout_ms = within(
            "http_timeout_ms",
            self.http_timeout_ms,
            millis(defaults.http_timeout),
            1,
            millis(ceilings.deadline),
        )?;
        let as_u64 = |v: usize| u64::try_from(v).unwrap_or(u64::MAX);
        let as_usize = |v: u64| usize::try_from(v).unwrap_or(usize::MAX);
        Ok(Limits {
            deadline: Duration::from_millis(deadline_ms),
            memory_bytes: within(
                "memory_bytes",
                self.memory_bytes,
                defaults.memory_bytes,
                1 << 20,
                ceilings.memory_bytes,
            )?,
            table_elements: within(
                "table_elements",
                self.table_elements,
                defaults.table_elements,
                1,
                ceilings.table_elements,
            )?,
            instances: u32::try_from(within(
                "instances",
                self.instances.map(u64::from),
                u64::from(defaults.instances),
                1,
                u64::from(ceilings.instances),
            )?)
            .unwrap_or(u32::MAX),
            output_bytes: as_usize(within(
                "output_bytes",
                self.output_bytes.map(as_u64),
                as_u64(defaults.output_bytes),
                1,
                as_u64(ceilings.output_bytes),
            )?),
            http_timeout: Duration::from_millis(http_timeout_ms),
            http_response_bytes: as_usize(within(
                "http_response_bytes",
                self.http_response_bytes.map(as_u64),
                as_u64(defaults.http_response_bytes),
                1,
                as_u64(ceilings.http_response_bytes),
            )?),
        })
    }
}

impl Limits {
    /// Checks operator defaults by the same rules and ceilings as a manifest.
    pub fn check(&self, ceilings: &LimitCeilings) -> Result<(), LimitOutOfRange> {
        let as_overrides = LimitOverrides {
            deadline_ms: Some(millis(self.deadline)),
            memory_bytes: Some(self.memory_bytes),
            table_elements: Some(self.table_elements),
            instances: Some(self.instances),
            output_bytes: Some(self.output_bytes),
            http_timeout_ms: Some(millis(self.http_timeout)),
            http_response_bytes: Some(self.http_response_bytes),
        };
        as_overrides.resolve(self, ceilings).map(|_| ())
    }
}

/// Raised inside a call when the instance asks for more than its limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LimitExceeded {
    /// Linear memory would exceed `limit` bytes.
    #[error("the connector tried to use more than {limit} bytes of memory")]
    Memory {
        /// The limit in bytes.
        limit: u64,
    },
    /// Tables would exceed `limit` elements.
    #[error("the connector tried to use more than {limit} table elements")]
    TableElements {
        /// The limit in elements.
        limit: u64,
    },
    /// The component needs more instances, memories or tables than `limit` allows.
    #[error("the connector needs more than {limit} instances (or their memories and tables)")]
    Instances {
        /// The limit in instances.
        limit: u32,
    },
}

/// The prefix of wasmtime's error when a store's instance, memory or table
/// count passes [`wasmtime::ResourceLimiter::instances`] and friends; wasmtime
/// raises it as a plain message, not a type. A test pins it.
pub const INSTANCE_COUNT_EXCEEDED: &str = "resource limit exceeded:";

/// Enforces [`Limits`] over one store; installed with `Store::limiter`.
#[derive(Debug)]
pub struct CallLimiter {
    memory_limit: u64,
    memory_used: u64,
    table_limit: u64,
    table_used: u64,
    instances: usize,
}

impl CallLimiter {
    /// A limiter for one call under `limits`.
    pub fn new(limits: &Limits) -> Self {
        Self {
            memory_limit: limits.memory_bytes,
            memory_used: 0,
            table_limit: limits.table_elements,
            table_used: 0,
            instances: usize::try_from(limits.instances).unwrap_or(usize::MAX),
        }
    }
}

fn grow(used: &mut u64, current: usize, desired: usize, limit: u64) -> bool {
    let extra = u64::try_from(desired.saturating_sub(current)).unwrap_or(u64::MAX);
    let total = used.saturating_add(extra);
    if total > limit {
        return false;
    }
    *used = total;
    true
}

impl wasmtime::ResourceLimiter for CallLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if grow(&mut self.memory_used, current, desired, self.memory_limit) {
            Ok(true)
        } else {
            Err(LimitExceeded::Memory {
                limit: self.memory_limit,
            }
            .into())
        }
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if grow(&mut self.table_used, current, desired, self.table_limit) {
            Ok(true)
        } else {
            Err(LimitExceeded::TableElements {
                limit: self.table_limit,
            }
            .into())
        }
    }

    fn instances(&self) -> usize {
        self.instances
    }

    fn tables(&self) -> usize {
        self.instances.saturating_mul(4)
    }

    fn memories(&self) -> usize {
        self.instances
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime::ResourceLimiter;

    fn limiter(memory: u64, tables: u64) -> CallLimiter {
        CallLimiter::new(&Limits {
            memory_bytes: memory,
            table_elements: tables,
            ..Limits::default()
        })
    }

    fn is_exceeded(result: wasmtime::Result<bool>, expected: LimitExceeded) -> bool {
        matches!(result, Err(err) if err.downcast_ref::<LimitExceeded>() == Some(&expected))
    }

    #[test]
    fn memory_up_to_the_limit_is_granted_and_one_byte_more_is_refused() {
        let mut at_limit = limiter(1000, 10);
        assert!(at_limit.memory_growing(0, 1000, None).expect("inside"));
        let mut over = limiter(1000, 10);
        assert!(is_exceeded(
            over.memory_growing(0, 1001, None),
            LimitExceeded::Memory { limit: 1000 }
        ));
    }

    #[test]
    fn memory_is_counted_across_every_memory_of_the_instance() {
        let mut limiter = limiter(1000, 10);
        assert!(limiter.memory_growing(0, 600, None).expect("first memory"));
        assert!(is_exceeded(
            limiter.memory_growing(0, 401, None),
            LimitExceeded::Memory { limit: 1000 }
        ));
        assert!(
            limiter
                .memory_growing(0, 400, None)
                .expect("second memory fits")
        );
    }

    #[test]
    fn table_elements_up_to_the_limit_are_granted_and_one_more_is_refused() {
        let mut limiter = limiter(1000, 10);
        assert!(limiter.table_growing(0, 10, None).expect("inside"));
        assert!(is_exceeded(
            limiter.table_growing(10, 11, None),
            LimitExceeded::TableElements { limit: 10 }
        ));
    }

    #[test]
    fn overrides_replace_defaults_within_the_ceilings() {
        let overrides = LimitOverrides {
            deadline_ms: Some(250),
            memory_bytes: Some(2 << 20),
            ..Default::default()
        };
        let limits = overrides
            .resolve(&Limits::default(), &LimitCeilings::default())
            .expect("valid");
        assert_eq!(limits.deadline, Duration::from_millis(250));
        assert_eq!(limits.memory_bytes, 2 << 20);
        assert_eq!(limits.output_bytes, Limits::default().output_bytes);
    }

    #[test]
    fn an_override_at_the_ceiling_is_accepted_and_one_past_it_is_refused() {
        let ceilings = LimitCeilings::default();
        let at = LimitOverrides {
            memory_bytes: Some(ceilings.memory_bytes),
            ..Default::default()
        };
        assert!(at.resolve(&Limits::default(), &ceilings).is_ok());
        let past = LimitOverrides {
            memory_bytes: Some(ceilings.memory_bytes + 1),
            ..Default::default()
        };
        let err = past
            .resolve(&Limits::default(), &ceilings)
            .expect_err("past the ceiling");
        assert_eq!(err.name, "memory_bytes");
        assert_eq!(
            err.to_string(),
            format!(
                "limits.memory_bytes = {} is outside the allowed range 1048576..={}",
                ceilings.memory_bytes + 1,
                ceilings.memory_bytes
            )
        );
    }

    #[test]
    fn operator_defaults_are_checked_like_a_manifest() {
        assert!(Limits::default().check(&LimitCeilings::default()).is_ok());
        let zero = Limits {
            deadline: Duration::ZERO,
            ..Limits::default()
        };
        assert_eq!(
            zero.check(&LimitCeilings::default())
                .expect_err("zero")
                .name,
            "deadline_ms"
        );
    }

    #[test]
    fn a_zero_deadline_is_refused() {
        let zero = LimitOverrides {
            deadline_ms: Some(0),
            ..Default::default()
        };
        assert!(
            zero.resolve(&Limits::default(), &LimitCeilings::default())
                .is_err()
        );
    }
}
