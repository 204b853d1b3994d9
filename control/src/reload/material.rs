//! A certificate and key handed to ringway itself (`PUT /tls/...`): checked
//! before anything is written, then written over the configured files so
//! that no reader ever sees half of them; and the SPIFFE IDs of the
//! certificates in service, which a replacement must keep.
//!
//! The checks are those the configuration's own (on reload) makes of a
//! certificate file, plus one a reload cannot make, not knowing what a file
//! held before: a certificate that proved a workload identity is replaced
//! only by one proving the same.

use std::fs::{self, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use dataplane::identity::{check_svid, spiffe_id_of};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;

/// Mode of a key file ringway writes: its owner alone reads it.
const KEY_MODE: u32 = 0o600;
/// Mode of a certificate file ringway writes where none was before: public
/// material.
const CERT_MODE: u32 = 0o644;

/// A certificate chain and its key that passed [`check`].
#[derive(Debug)]
pub struct Material {
    /// The chain, as PEM text (leaf first).
    pub cert: Vec<u8>,
    /// The private key, as PEM text.
    pub key: Vec<u8>,
    /// The leaf's notAfter, in seconds since the epoch.
    pub not_after: i64,
    /// The leaf's SPIFFE ID, if it has one.
    pub identity: Option<String>,
}

impl Material {
    /// The chain then the key, for a file that holds both.
    fn combined(&self) -> Vec<u8> {
        let mut both = self.cert.clone();
        if !both.ends_with(b"\n") {
            both.push(b'\n');
        }
        both.extend_from_slice(&self.key);
        both
    }
}

/// Why a certificate and key were refused.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// The chain is not PEM certificates, or holds none.
    #[error("the certificate does not parse: {0}")]
    Chain(String),
    /// The key is not a PEM private key.
    #[error("the key does not parse: {0}")]
    Key(String),
    /// The leaf is expired or not valid yet.
    #[error("the certificate is not valid now: valid from {not_before} to {not_after}")]
    NotValidNow {
        /// Its notBefore.
        not_before: String,
        /// Its notAfter.
        not_after: String,
    },
    /// The key is not the leaf's.
    #[error("the key does not go with the certificate: {0}")]
    KeyMismatch(String),
    /// The certificate replaced proved a workload identity this one does
    /// not.
    #[error(
        "wrong identity for its use: the certificate in service proves {expected}, this one {}",
        found.as_deref().map_or("carries no SPIFFE ID".to_owned(), |id| format!("proves {id}"))
    )]
    WrongIdentity {
        /// The SPIFFE ID of the certificate in service.
        expected: String,
        /// This one's, if any.
        found: Option<String>,
    },
    /// The certificate replaced was an X509-SVID, and this one breaks the
    /// rules.
    #[error("wrong identity for its use: the certificate in service is an X509-SVID, and this one is not ({0})")]
    NotSvid(String),
}

/// Checks `cert` (a PEM chain, leaf first) and `key` (a PEM private key):
/// both parse, the leaf is valid now, the key is the leaf's, and, when the
/// certificate it replaces proves a SPIFFE ID (`replaces`), it is an
/// X509-SVID proving the same.
pub fn check(cert: &str, key: &str, replaces: Option<&str>) -> Result<Material, Refusal> {
    let chain = CertificateDer::pem_slice_iter(cert.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Refusal::Chain(e.to_string()))?;
    let Some(leaf) = chain.first() else {
        return Err(Refusal::Chain("no PEM certificate in it".to_owned()));
    };
    let private =
        PrivateKeyDer::from_pem_slice(key.as_bytes()).map_err(|e| Refusal::Key(e.to_string()))?;
    let (_, parsed) = x509_parser::parse_x509_certificate(leaf)
        .map_err(|e| Refusal::Chain(format!("the first certificate: {e}")))?;
    let validity = parsed.validity();
    if !validity.is_valid() {
        return Err(Refusal::NotValidNow {
            not_before: validity.not_before.to_string(),
            not_after: validity.not_after.to_string(),
        });
    }
    let not_after = validity.not_after.timestamp();
    let identity = spiffe_id_of(leaf);
    let leaf = leaf.clone();
    CertifiedKey::from_der(chain, private, &provider())
        .map_err(|e| Refusal::KeyMismatch(e.to_string()))?;
    if let Some(expected) = replaces {
        if identity.as_deref() != Some(expected) {
            return Err(Refusal::WrongIdentity {
                expected: expected.to_owned(),
                found: identity,
            });
        }
        check_svid(&leaf).map_err(|e| Refusal::NotSvid(e.to_string()))?;
    }
    Ok(Material {
        cert: cert.as_bytes().to_vec(),
        key: key.as_bytes().to_vec(),
        not_after,
        identity,
    })
}

/// The provider the configuration loads keys with (see
/// `config::compile::tls`: ring, the design's choice; its deprecation is
/// about post-quantum key exchange, which loading a key does not involve),
/// so that a key accepted here loads there.
#[allow(deprecated)]
fn provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
}

/// What the files held before [`install`] replaced them, to put back.
#[derive(Debug)]
#[must_use = "the old files are lost unless restored or dropped on purpose"]
pub struct Previous {
    /// Each file written (where its path led), with its former content and
    /// mode; `None` where there was no file.
    files: Vec<(PathBuf, Option<Former>)>,
}

/// A file's content and mode before it was replaced.
type Former = (Vec<u8>, u32);

/// Writes `material` over the files at `cert` and `key`, each atomically (a
/// file of its own in the same directory, renamed over the old one), the
/// key with mode 0600, the certificate keeping its mode. A path that is a
/// symlink is written where it leads. The same path for both gets the chain
/// then the key. Returns what was there before; on error, what was there
/// before is there still.
pub fn install(cert: &Path, key: &Path, material: &Material) -> io::Result<Previous> {
    let cert = resolved(cert);
    let key = resolved(key);
    let mut writes: Vec<(PathBuf, Vec<u8>, u32)> = Vec::new();
    if cert == key {
        writes.push((cert, material.combined(), KEY_MODE));
    } else {
        let mode = mode_of(&cert).unwrap_or(CERT_MODE);
        writes.push((cert, material.cert.clone(), mode));
        writes.push((key, material.key.clone(), KEY_MODE));
    }
    let previous = Previous {
        files: writes
            .iter()
            .map(|(path, _, _)| {
                let before = fs::read(path)
                    .ok()
                    .map(|bytes| (bytes, mode_of(path).unwrap_or(CERT_MODE)));
                (path.clone(), before)
            })
            .collect(),
    };
    // Every new file is complete on disk before the first rename.
    let mut staged = Vec::new();
    for (path, bytes, mode) in &writes {
        match stage(path, bytes, *mode) {
            Ok(tmp) => staged.push(tmp),
            Err(e) => {
                discard(&staged);
                return Err(e);
            }
        }
    }
    for (i, (tmp, (path, _, _))) in staged.iter().zip(&writes).enumerate() {
        if let Err(e) = fs::rename(tmp, path) {
            discard(&staged[i..]);
            let done = Previous {
                files: previous.files[..i].to_vec(),
            };
            // Best effort: the error that matters is the rename's.
            let _ = done.restore();
            return Err(named(path, e));
        }
    }
    for (path, _, _) in &writes {
        sync_dir(path);
    }
    Ok(previous)
}

impl Previous {
    /// Puts back what the files held (atomically, as they were written),
    /// and removes those that did not exist.
    pub fn restore(&self) -> io::Result<()> {
        for (path, before) in &self.files {
            match before {
                Some((bytes, mode)) => {
                    let tmp = stage(path, bytes, *mode)?;
                    fs::rename(&tmp, path).map_err(|e| {
                        discard(&[tmp]);
                        named(path, e)
                    })?;
                }
                None => fs::remove_file(path).map_err(|e| named(path, e))?,
            }
            sync_dir(path);
        }
        Ok(())
    }
}

/// Writes `bytes` to a new file beside `path` with `mode`, flushed to
/// disk; returns its path.
fn stage(path: &Path, bytes: &[u8], mode: u32) -> io::Result<PathBuf> {
    let dir = parent(path);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut attempt = 0u32;
    let (tmp, mut file) = loop {
        let tmp = dir.join(format!(".{name}.ringway-{}-{attempt}", std::process::id()));
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)
        {
            Ok(file) => break (tmp, file),
            // Left over by an earlier ringway of the same pid, or a
            // concurrent write: take the next name.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < 100 => attempt += 1,
            Err(e) => return Err(named(&tmp, e)),
        }
    };
    // The umask may have taken bits away; set exactly what is meant.
    let written = file
        .set_permissions(Permissions::from_mode(mode))
        .and_then(|()| file.write_all(bytes))
        .and_then(|()| file.sync_all());
    match written {
        Ok(()) => Ok(tmp),
        Err(e) => {
            discard(std::slice::from_ref(&tmp));
            Err(named(&tmp, e))
        }
    }
}

/// Removes staged files that will not be renamed.
fn discard(staged: &[PathBuf]) {
    for tmp in staged {
        let _ = fs::remove_file(tmp);
    }
}

/// Flushes the directory holding `path`, so that a rename survives a
/// crash; best effort (not every file system lets a directory be synced).
fn sync_dir(path: &Path) {
    if let Ok(dir) = fs::File::open(parent(path)) {
        let _ = dir.sync_all();
    }
}

/// Where `path` leads, symlinks followed; `path` itself when it does not
/// resolve.
fn resolved(path: &Path) -> PathBuf {
    fs::canonicalize(path).unwrap_or_else(|_| path.to_owned())
}

fn mode_of(path: &Path) -> Option<u32> {
    fs::metadata(path)
        .ok()
        .map(|m| m.permissions().mode() & 0o7777)
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

fn named(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    fn material(cert: &str, key: &str) -> Material {
        Material {
            cert: cert.as_bytes().to_vec(),
            key: key.as_bytes().to_vec(),
            not_after: 0,
            identity: None,
        }
    }

    fn mode(path: &Path) -> u32 {
        mode_of(path).expect("a file")
    }

    #[test]
    fn install_writes_both_files_where_they_lead_and_restore_puts_them_back() {
        let dir = std::env::temp_dir().join(format!("ringway-install-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir(&dir).expect("mkdir");
        let (cert, key, real) = (
            dir.join("cert.pem"),
            dir.join("key.pem"),
            dir.join("v1.pem"),
        );
        fs::write(&real, "old cert").expect("write");
        fs::set_permissions(&real, Permissions::from_mode(0o640)).expect("chmod");
        symlink("v1.pem", &cert).expect("symlink");
        fs::write(&key, "old key").expect("write");
        fs::set_permissions(&key, Permissions::from_mode(0o644)).expect("chmod");

        let previous = install(&cert, &key, &material("new cert", "new key")).expect("installed");
        assert_eq!(fs::read_to_string(&cert).expect("read"), "new cert");
        assert!(fs::symlink_metadata(&cert).expect("stat").is_symlink());
        assert_eq!(mode(&real), 0o640, "the certificate keeps its mode");
        assert_eq!(fs::read_to_string(&key).expect("read"), "new key");
        assert_eq!(mode(&key), KEY_MODE);
        let left: Vec<_> = fs::read_dir(&dir)
            .expect("ls")
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains(".ringway-"))
            .collect();
        assert!(left.is_empty(), "staged files left: {left:?}");

        previous.restore().expect("restored");
        assert_eq!(fs::read_to_string(&cert).expect("read"), "old cert");
        assert_eq!(fs::read_to_string(&key).expect("read"), "old key");
        assert_eq!(mode(&key), 0o644);

        let both = dir.join("both.pem");
        fs::write(&both, "old").expect("write");
        let m = material("chain", "key\n");
        let _ = install(&both, &both, &m).expect("installed");
        assert_eq!(fs::read_to_string(&both).expect("read"), "chain\nkey\n");
        assert_eq!(mode(&both), KEY_MODE);

        let missing = dir.join("nowhere/cert.pem");
        assert!(install(&missing, &key, &m).is_err());
        assert_eq!(
            fs::read_to_string(&key).expect("read"),
            "old key",
            "nothing changed"
        );
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn garbage_is_refused_before_anything_else() {
        assert!(matches!(
            check("junk", "junk", None),
            Err(Refusal::Chain(_))
        ));
        let text = Refusal::WrongIdentity {
            expected: "spiffe://a/x".into(),
            found: None,
        }
        .to_string();
        assert_eq!(
            text,
            "wrong identity for its use: the certificate in service proves spiffe://a/x, this one carries no SPIFFE ID"
        );
    }
}
