//! Where the master key ring comes from, and rotating it.

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::{KEY_BYTES, Sealer, random_key};

/// Where the master key ring comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MasterKeySource {
    /// A key-ring file: one base64 key per line, the sealing key first.
    /// Created with one random key (mode 0600) when absent; rotation rewrites it.
    File(PathBuf),
    /// A base64 key from the environment, with older keys that still open
    /// (values sealed under them are re-sealed at start).
    Env {
        /// The sealing key.
        current: String,
        /// Keys being rotated away from.
        previous: Vec<String>,
    },
}

/// Why a rotation could not be made.
#[derive(Debug, thiserror::Error)]
pub enum RotateError {
    /// The key comes from the environment, which the host cannot rewrite.
    #[error(
        "the master key comes from SWITCHBOARD_MASTER_KEY; set it to a new key, put the old one in SWITCHBOARD_MASTER_KEY_PREVIOUS and restart: secrets are re-sealed at start"
    )]
    FromEnvironment,
    /// Re-sealing the stored secrets failed; the old key still opens them.
    #[error("re-sealing the secrets failed: {0}")]
    Store(crate::store::StoreError),
    /// The key-ring file could not be written.
    #[error("cannot write the master key file {path}: {reason}")]
    Write {
        /// The file.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
}

impl MasterKeySource {
    /// Reads (or, for an absent file, creates) the ring.
    pub fn load(&self) -> anyhow::Result<Sealer> {
        let keys = match self {
            Self::File(path) => {
                if !path.exists() {
                    write_ring(path, &[random_key()])?;
                }
                read_ring(path)?
            }
            Self::Env { current, previous } => std::iter::once(current)
                .chain(previous)
                .map(|text| decode_key(text).map_err(|err| anyhow::anyhow!("{err}")))
                .collect::<anyhow::Result<Vec<_>>>()
                .map_err(|err| err.context("reading SWITCHBOARD_MASTER_KEY"))?,
        };
        let (current, older) = keys
            .split_first()
            .ok_or_else(|| anyhow::anyhow!("the master key ring is empty"))?;
        Ok(Sealer::new(current, older))
    }

    /// Starts a rotation: a new key seals from now on, and the file lists it
    /// first with the keys before it, so a restart mid-way still opens everything.
    pub fn begin_rotation(&self, sealer: &Sealer) -> Result<[u8; KEY_BYTES], RotateError> {
        let Self::File(path) = self else {
            return Err(RotateError::FromEnvironment);
        };
        let written = |err: anyhow::Error| RotateError::Write {
            path: path.clone(),
            reason: format!("{err:#}"),
        };
        let mut ring = read_ring(path).map_err(written)?;
        let next = random_key();
        ring.insert(0, next);
        write_ring(path, &ring).map_err(written)?;
        sealer.rotate_to(&next);
        Ok(next)
    }

    /// Ends a rotation once every value is sealed under `current`: the file
    /// and the ring keep only it.
    pub fn finish_rotation(
        &self,
        sealer: &Sealer,
        current: &[u8; KEY_BYTES],
    ) -> Result<(), RotateError> {
        let Self::File(path) = self else {
            return Err(RotateError::FromEnvironment);
        };
        write_ring(path, &[*current]).map_err(|err| RotateError::Write {
            path: path.clone(),
            reason: format!("{err:#}"),
        })?;
        sealer.retire_older();
        Ok(())
    }
}

fn decode_key(text: &str) -> Result<[u8; KEY_BYTES], String> {
    let bytes = STANDARD
        .decode(text.trim())
        .map_err(|err| format!("a master key is not base64: {err}"))?;
    bytes.try_into().map_err(|bytes: Vec<u8>| {
        format!(
            "a master key must be {KEY_BYTES} bytes, not {}",
            bytes.len()
        )
    })
}

fn read_ring(path: &Path) -> anyhow::Result<Vec<[u8; KEY_BYTES]>> {
    let text = std::fs::read_to_string(path).map_err(|err| {
        anyhow::anyhow!("cannot read the master key file {}: {err}", path.display())
    })?;
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .enumerate()
        .map(|(index, line)| {
            decode_key(line)
                .map_err(|err| anyhow::anyhow!("{} line {}: {err}", path.display(), index + 1))
        })
        .collect()
}

/// Writes the ring to a temporary file (mode 0600), syncs it and renames it into place.
fn write_ring(path: &Path, keys: &[[u8; KEY_BYTES]]) -> anyhow::Result<()> {
    let mut text = String::new();
    for key in keys {
        text.push_str(&STANDARD.encode(key));
        text.push('\n');
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let temporary = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&temporary)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_absent_file_is_created_private_and_read_back_the_same() {
        let dir = tempfile::tempdir().expect("dir");
        let source = MasterKeySource::File(dir.path().join("master.key"));
        let sealed = source.load().expect("load").seal(b"v", b"");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("master.key"))
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(
            source.load().expect("again").open(&sealed, b"").as_deref(),
            Ok(&b"v"[..])
        );
    }

    #[test]
    fn a_rotation_keeps_both_keys_on_file_until_it_finishes() {
        let dir = tempfile::tempdir().expect("dir");
        let source = MasterKeySource::File(dir.path().join("master.key"));
        let sealer = source.load().expect("load");
        let old = sealer.seal(b"v", b"");
        let next = source.begin_rotation(&sealer).expect("begin");
        assert_eq!(
            source.load().expect("mid-way").open(&old, b"").as_deref(),
            Ok(&b"v"[..])
        );
        source.finish_rotation(&sealer, &next).expect("finish");
        assert!(source.load().expect("after").open(&old, b"").is_err());
        assert!(sealer.open(&old, b"").is_err());
    }

    #[test]
    fn keys_from_the_environment_are_checked_and_not_rotated() {
        let key = STANDARD.encode([7u8; KEY_BYTES]);
        let source = MasterKeySource::Env {
            current: key.clone(),
            previous: vec![],
        };
        let sealer = source.load().expect("load");
        assert!(matches!(
            source.begin_rotation(&sealer),
            Err(RotateError::FromEnvironment)
        ));
        let short = MasterKeySource::Env {
            current: STANDARD.encode([7u8; 16]),
            previous: vec![],
        };
        let err = short.load().expect_err("too short").to_string();
        assert!(err.contains("SWITCHBOARD_MASTER_KEY"), "{err}");
    }
}
