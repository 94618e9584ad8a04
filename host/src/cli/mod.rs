//! The `switchboard` command's subcommands other than `serve` and `sandbox`:
//! writing connectors (`new`, `build`, `validate`), driving a running host
//! (`install`, `invoke`, `ctl`).

pub mod client;
pub mod ctl;
mod explain;
pub mod package;
pub mod scaffold;
