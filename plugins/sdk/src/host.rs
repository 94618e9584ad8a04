//! The host imports, in the SDK's own types. Inside a component they are the
//! WIT imports; built natively (for `cargo test`) they are answered by the
//! [`TestHost`](crate::testing::TestHost) running the call.

#[cfg(not(target_arch = "wasm32"))]
pub(crate) use crate::testing::imports::*;
#[cfg(target_arch = "wasm32")]
pub(crate) use component::*;

#[cfg(target_arch = "wasm32")]
mod component {
    use crate::bindings::switchboard::connector::{config, events, http, kv, log};
    use crate::{Error, log::Level};

    pub(crate) fn http_send(request: crate::http::Request) -> Result<crate::http::Response, Error> {
        Ok(http::send(&request.into())?.into())
    }

    pub(crate) fn kv_get(key: &str) -> Result<Option<Vec<u8>>, Error> {
        Ok(kv::get(key)?)
    }

    pub(crate) fn kv_set(key: &str, value: &[u8], ttl_ms: Option<u64>) -> Result<(), Error> {
        Ok(kv::set(key, value, ttl_ms)?)
    }

    pub(crate) fn kv_set_if_absent(
        key: &str,
        value: &[u8],
        ttl_ms: Option<u64>,
    ) -> Result<bool, Error> {
        Ok(kv::set_if_absent(key, value, ttl_ms)?)
    }

    pub(crate) fn kv_delete(key: &str) -> Result<(), Error> {
        Ok(kv::delete(key)?)
    }

    pub(crate) fn config_get(key: &str) -> Option<String> {
        config::get(key)
    }

    pub(crate) fn config_secret(name: &str) -> Option<String> {
        config::secret(name)
    }

    pub(crate) fn log(level: Level, message: &str) {
        let level = match level {
            Level::Trace => log::Level::Trace,
            Level::Debug => log::Level::Debug,
            Level::Info => log::Level::Info,
            Level::Warn => log::Level::Warn,
            Level::Error => log::Level::Error,
        };
        log::log(level, message);
    }

    pub(crate) fn events_emit(
        kind: &str,
        subject: Option<&str>,
        data: &str,
    ) -> Result<String, Error> {
        Ok(events::emit(kind, subject, data)?)
    }
}
