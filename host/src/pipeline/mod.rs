//! The call pipeline: what every invoke goes through around the connector
//! call itself — rate limits, load shedding, idempotency, cache, circuit
//! breaker with fallback, and retries within the call's one deadline.
