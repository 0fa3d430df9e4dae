//! Pseudonymization at ingest: user, account and session ids become HMAC-SHA256 under a
//! per-project secret, so raw ids never reach the WAL, the store or the logs.
//!
//! The same raw id always maps to the same pseudonym within a project and secret version
//! (journeys and joins work), differs across projects, and cannot be reversed without the secret.
//!
//! Rotation: raising a project's `secret_version` starts a new secret. Pseudonyms of version 1
//! are 32 hex digits; from version 2 on they are prefixed `v<N>.`, so pseudonyms of two versions
//! never collide and an analyst can tell them apart. Old data keeps its old pseudonyms (they
//! cannot be translated without keeping the old secret, which is the point of rotating); a
//! user's journey is split at the rotation.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::io::Write;
use std::path::Path;
use valuetrace_model::Event;

#[derive(Clone)]
pub struct Pseudonymizer {
    secret: Vec<u8>,
    version: u32,
}

impl std::fmt::Debug for Pseudonymizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pseudonymizer(v{}, <secret>)", self.version)
    }
}

impl Pseudonymizer {
    pub fn new(secret: Vec<u8>, version: u32) -> Self {
        Pseudonymizer { secret, version }
    }

    pub fn version(&self) -> u32 {
        self.version
    }

    /// 128 bits of HMAC-SHA256(secret, field || 0 || raw) as hex, prefixed `v<N>.` from
    /// version 2 on.
    pub fn pseudonym(&self, field: &str, raw: &str) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.secret)
            .expect("hmac accepts keys of any length");
        mac.update(field.as_bytes());
        mac.update(&[0]);
        mac.update(raw.as_bytes());
        let digest = mac.finalize().into_bytes();
        if self.version <= 1 {
            hex::encode(&digest[..16])
        } else {
            format!("v{}.{}", self.version, hex::encode(&digest[..16]))
        }
    }

    pub fn apply(&self, event: &mut Event) {
        let (user, account, session) = match event {
            Event::ApiCall(call) => (
                &mut call.user_id,
                &mut call.account_id,
                &mut call.session_id,
            ),
            Event::Outcome(outcome) => (
                &mut outcome.user_id,
                &mut outcome.account_id,
                &mut outcome.session_id,
            ),
            // Aggregates carry no ids.
            Event::ApiAggregate(_) => return,
        };
        for (field, value) in [
            ("user_id", user),
            ("account_id", account),
            ("session_id", session),
        ] {
            if let Some(raw) = value.as_deref() {
                *value = Some(self.pseudonym(field, raw));
            }
        }
    }
}

/// The file of a project's secret: `<project>.key` for version 1, `<project>.v<N>.key` after.
pub fn secret_path(data_dir: &Path, project: &str, version: u32) -> std::path::PathBuf {
    let name = if version <= 1 {
        format!("{project}.key")
    } else {
        format!("{project}.v{version}.key")
    };
    data_dir.join("secrets").join(name)
}

/// The project's secret of `version`: from the environment variable when set, else from
/// [`secret_path`], generated (32 random bytes, mode 0600) on first use.
pub fn load_or_create_secret(
    data_dir: &Path,
    project: &str,
    env: Option<&str>,
    version: u32,
) -> std::io::Result<Vec<u8>> {
    if let Some(name) = env
        && let Ok(value) = std::env::var(name)
        && !value.is_empty()
    {
        return Ok(value.into_bytes());
    }
    let path = secret_path(data_dir, project, version);
    std::fs::create_dir_all(data_dir.join("secrets"))?;
    match std::fs::read(&path) {
        Ok(secret) if secret.len() >= 16 => return Ok(secret),
        Ok(_) => {
            return Err(std::io::Error::other(format!(
                "{} is shorter than 16 bytes",
                path.display()
            )));
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(error),
    }
    let mut secret = vec![0u8; 32];
    getrandom::fill(&mut secret).map_err(|error| std::io::Error::other(error.to_string()))?;
    let tmp = path.with_extension("key.tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&tmp)?;
    file.write_all(&secret)?;
    file.sync_all()?;
    std::fs::rename(&tmp, &path)?;
    Ok(secret)
}
