//! Compiled components on disk, keyed by content hash and engine.
//!
//! A restart deserializes instead of recompiling. The key combines the
//! component's SHA-256 with a fingerprint of the engine's compilation settings,
//! so new bytes under an old file name, or a new host build, never reuse stale
//! code. Each artifact is written atomically with a SHA-256 sidecar that is
//! checked before the bytes are trusted.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Whether a component came from the cache or was compiled now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Loaded from a cached artifact.
    Hit,
    /// Compiled (and now cached).
    Compiled,
}

/// A directory of compiled components.
#[derive(Debug, Clone)]
pub struct CompileCache {
    dir: PathBuf,
    engine_fingerprint: String,
}

/// Hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl CompileCache {
    /// A cache in `dir` (created if missing) for components of `engine`.
    pub fn new(dir: &Path, engine: &Engine) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Ok(Self {
            dir: dir.to_owned(),
            engine_fingerprint: format!("{:016x}", hasher.finish()),
        })
    }

    fn artifact_path(&self, package_hash: &str) -> PathBuf {
        self.dir
            .join(format!("{package_hash}-{}.cwasm", self.engine_fingerprint))
    }

    /// The compiled form of `wasm` (whose hash is `package_hash`), from the
    /// cache when a valid artifact exists, else compiled and cached.
    pub fn load_or_compile(
        &self,
        engine: &Engine,
        wasm: &[u8],
        package_hash: &str,
    ) -> wasmtime::Result<(Component, CacheOutcome)> {
        let path = self.artifact_path(package_hash);
        if let Some(component) = self.load(engine, &path) {
            return Ok((component, CacheOutcome::Hit));
        }
        let component = Component::new(engine, wasm)?;
        if let Err(err) = self.store(&path, &component) {
            tracing::warn!(path = %path.display(), error = %err, "could not cache compiled component");
        }
        Ok((component, CacheOutcome::Compiled))
    }

    fn load(&self, engine: &Engine, path: &Path) -> Option<Component> {
        let bytes = std::fs::read(path).ok()?;
        let expected = std::fs::read_to_string(sidecar(path)).ok()?;
        if expected.trim() != sha256_hex(&bytes) {
            tracing::warn!(path = %path.display(), "cached component failed its checksum; recompiling");
            return None;
        }
        // SAFETY: the bytes were produced by `Component::serialize` on an engine
        // with the same compatibility fingerprint (it is in the file name), were
        // written by this process's code into the host's own data directory,
        // and match the checksum recorded when they were written.
        #[allow(unsafe_code)]
        let component = unsafe { Component::deserialize(engine, &bytes) };
        match component {
            Ok(component) => Some(component),
            Err(err) => {
                tracing::warn!(path = %path.display(), error = %err, "cached component is unusable; recompiling");
                None
            }
        }
    }

    fn store(&self, path: &Path, component: &Component) -> wasmtime::Result<()> {
        let bytes = component.serialize()?;
        write_atomically(&sidecar(path), sha256_hex(&bytes).as_bytes())?;
        write_atomically(path, &bytes)?;
        Ok(())
    }
}

fn sidecar(path: &Path) -> PathBuf {
    path.with_extension("cwasm.sha256")
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let temp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&temp, bytes)?;
    std::fs::rename(&temp, path)
}
