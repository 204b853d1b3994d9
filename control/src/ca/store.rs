//! The CA directory and the issued directories on disk: what `init` and
//! `issue` read and write, with private keys kept to their owner (0600).

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::net::IpAddr;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use dataplane::spiffe::{self, SpiffeId};
use time::OffsetDateTime;

use super::mint::{self, Authority, LeafRequest};
use super::{CaError, CA_CERT, CA_KEY, LEAF_CERT, LEAF_KEY};

/// Mode of the private key files: readable by their owner only.
const KEY_MODE: u32 = 0o600;
/// Mode of the certificates, which are public.
const CERT_MODE: u32 = 0o644;
/// Mode of a directory `ringway ca` creates: it holds a private key.
const DIR_MODE: u32 = 0o700;

/// `ringway ca init`: what to make.
#[derive(Debug)]
pub struct Init<'a> {
    /// The trust domain, bare (`example.org`) or as `spiffe://example.org`.
    pub trust_domain: &'a str,
    /// The CA directory.
    pub dir: &'a Path,
    /// Validity in days.
    pub days: u32,
    /// Replace a CA already in `dir`.
    pub force: bool,
}

/// What `init` made.
#[derive(Debug)]
pub struct Initialized {
    /// The trust domain, bare.
    pub trust_domain: String,
    /// The CA certificate's path.
    pub cert: PathBuf,
    /// The CA key's path.
    pub key: PathBuf,
    /// The end of the CA's validity.
    pub not_after: OffsetDateTime,
}

/// `ringway ca issue`: what to mint, and where.
#[derive(Debug)]
pub struct Issue<'a> {
    /// The SPIFFE ID, as given.
    pub id: &'a str,
    /// The directory the CA is in.
    pub ca_dir: &'a Path,
    /// The directory to write the leaf into.
    pub out: &'a Path,
    /// Validity in days (cut to the CA's).
    pub days: u32,
    /// Extra DNS names.
    pub dns: &'a [String],
    /// Extra IP addresses.
    pub ips: &'a [IpAddr],
}

/// What `issue` wrote.
#[derive(Debug)]
pub struct Issued {
    /// The leaf certificate's path.
    pub cert: PathBuf,
    /// The leaf key's path.
    pub key: PathBuf,
    /// The trust bundle's path (the CA certificate).
    pub ca: PathBuf,
    /// The end of the leaf's validity.
    pub not_after: OffsetDateTime,
    /// Whether the CA's own end cut the validity asked for.
    pub cut_to_ca: bool,
}

/// Makes a CA in `init.dir`, refusing to replace one unless forced.
pub fn init(init: &Init<'_>) -> Result<Initialized, CaError> {
    let trust_domain = spiffe::parse_trust_domain(init.trust_domain).map_err(|source| {
        CaError::InvalidTrustDomain {
            given: init.trust_domain.to_owned(),
            source,
        }
    })?;
    let cert = init.dir.join(CA_CERT);
    let key = init.dir.join(CA_KEY);
    if !init.force {
        for (file, path) in [(CA_CERT, &cert), (CA_KEY, &key)] {
            if path.symlink_metadata().is_ok() {
                return Err(CaError::Exists {
                    dir: init.dir.to_owned(),
                    file,
                });
            }
        }
    }
    let minted = mint::mint_ca(trust_domain, init.days, OffsetDateTime::now_utc())?;
    create_dir(init.dir)?;
    // The key first: a CA certificate never sits beside a key that is not
    // its own for longer than it takes to write the certificate.
    write_file(&key, &minted.key_pem, KEY_MODE)?;
    write_file(&cert, &minted.cert_pem, CERT_MODE)?;
    Ok(Initialized {
        trust_domain: trust_domain.to_owned(),
        cert,
        key,
        not_after: minted.not_after,
    })
}

/// Mints a leaf for `issue.id` with the CA in `issue.ca_dir` and writes it
/// into `issue.out`, replacing what a previous `issue` wrote there (which
/// is how a certificate is rotated).
pub fn issue(issue: &Issue<'_>) -> Result<Issued, CaError> {
    let id = SpiffeId::parse(issue.id).map_err(|source| CaError::InvalidId {
        id: issue.id.to_owned(),
        source,
    })?;
    let now = OffsetDateTime::now_utc();
    let read = |file: &'static str| {
        fs::read_to_string(issue.ca_dir.join(file)).map_err(|source| CaError::NoCa {
            dir: issue.ca_dir.to_owned(),
            file,
            source,
        })
    };
    let (cert_pem, key_pem) = (read(CA_CERT)?, read(CA_KEY)?);
    let ca = Authority::from_pem(
        &cert_pem,
        &key_pem,
        now,
        &format!("{:?}", issue.ca_dir.display().to_string()),
    )?;
    let request = LeafRequest {
        id,
        dns: issue.dns,
        ips: issue.ips,
        days: issue.days,
    };
    let minted = ca.issue(&request, now)?;
    let issued = Issued {
        cert: issue.out.join(LEAF_CERT),
        key: issue.out.join(LEAF_KEY),
        ca: issue.out.join(CA_CERT),
        not_after: minted.not_after,
        cut_to_ca: minted.not_after < now + time::Duration::days(i64::from(issue.days)),
    };
    create_dir(issue.out)?;
    write_file(&issued.ca, ca.cert_pem(), CERT_MODE)?;
    write_file(&issued.key, &minted.key_pem, KEY_MODE)?;
    write_file(&issued.cert, &minted.cert_pem, CERT_MODE)?;
    Ok(issued)
}

/// Creates `dir` (and its parents) owner-only when it does not exist.
fn create_dir(dir: &Path) -> Result<(), CaError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)
        .map_err(|source| CaError::Io {
            action: "create the directory",
            path: dir.to_owned(),
            source,
        })
}

/// Writes `text` to `path` with `mode`, atomically: a temporary file in
/// the same directory, renamed over the old one, so a file watcher (a
/// running ringway rotating its certificate) never reads half a file and
/// a key is never readable by others, not even for a moment.
fn write_file(path: &Path, text: &str, mode: u32) -> Result<(), CaError> {
    let io_err = |action, path: &Path| {
        let path = path.to_owned();
        move |source| CaError::Io {
            action,
            path,
            source,
        }
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    // A temporary file left by a crash of this same process id.
    let _ = fs::remove_file(&temp);
    let written = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&temp)
        .and_then(|mut file| {
            file.write_all(text.as_bytes())?;
            file.sync_all()
        });
    if let Err(e) = written {
        let _ = fs::remove_file(&temp);
        return Err(io_err("write", &temp)(e));
    }
    fs::rename(&temp, path).map_err(|e: io::Error| {
        let _ = fs::remove_file(&temp);
        io_err("write", path)(e)
    })
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).expect("exists").permissions().mode() & 0o777
    }

    fn init_in(dir: &Path, force: bool) -> Result<Initialized, CaError> {
        init(&Init {
            trust_domain: "example.org",
            dir,
            days: 365,
            force,
        })
    }

    fn issue_for<'a>(id: &'a str, ca_dir: &'a Path, out: &'a Path) -> Issue<'a> {
        Issue {
            id,
            ca_dir,
            out,
            days: 30,
            dns: &[],
            ips: &[],
        }
    }

    #[test]
    fn init_writes_the_ca_with_a_private_key_and_refuses_to_replace_it() {
        let temp = tempfile::tempdir().expect("a temp dir");
        let dir = temp.path().join("ca");
        let made = init_in(&dir, false).expect("a CA");
        assert_eq!(made.trust_domain, "example.org");
        assert_eq!(mode(&made.key), 0o600);
        assert_eq!(mode(&dir), 0o700);
        let first = fs::read(&made.cert).expect("the CA");
        let e = init_in(&dir, false).expect_err("refused");
        assert!(matches!(e, CaError::Exists { .. }), "{e}");
        assert!(e.to_string().contains("--force"), "{e}");
        assert_eq!(fs::read(&made.cert).expect("the CA"), first, "replaced");
        let again = init_in(&dir, true).expect("forced");
        assert_ne!(fs::read(&again.cert).expect("the CA"), first);
        assert_eq!(mode(&again.key), 0o600);
        // Nothing but the two files is left behind.
        let mut names: Vec<_> = fs::read_dir(&dir)
            .expect("listed")
            .map(|e| e.expect("an entry").file_name())
            .collect();
        names.sort();
        assert_eq!(names, ["ca-key.pem", "ca.pem"]);
    }

    #[test]
    fn init_refuses_an_invalid_trust_domain_and_writes_nothing() {
        let temp = tempfile::tempdir().expect("a temp dir");
        let dir = temp.path().join("ca");
        let e = init(&Init {
            trust_domain: "Example.org",
            dir: &dir,
            days: 1,
            force: false,
        })
        .expect_err("refused");
        assert!(e.is_bad_input());
        assert!(e.to_string().contains("lowercase"), "{e}");
        assert!(!dir.exists());
    }

    #[test]
    fn issue_writes_the_leaf_its_key_and_the_bundle_and_replaces_them() {
        let temp = tempfile::tempdir().expect("a temp dir");
        let ca_dir = temp.path().join("ca");
        let out = temp.path().join("web");
        init_in(&ca_dir, false).expect("a CA");
        let id = "spiffe://example.org/ns/default/sa/web";
        let issued = issue(&issue_for(id, &ca_dir, &out)).expect("issued");
        assert!(!issued.cut_to_ca);
        assert_eq!(mode(&issued.key), 0o600);
        assert_eq!(
            fs::read(&issued.ca).expect("bundle"),
            fs::read(ca_dir.join(CA_CERT)).expect("CA")
        );
        let first = fs::read(&issued.cert).expect("leaf");
        let again = issue(&issue_for(id, &ca_dir, &out)).expect("issued again");
        assert_ne!(fs::read(&again.cert).expect("leaf"), first);
        assert_eq!(mode(&again.key), 0o600);
        // Longer than the CA lives: cut, and said so.
        let long = Issue {
            days: 1000,
            ..issue_for(id, &ca_dir, &out)
        };
        assert!(issue(&long).expect("issued").cut_to_ca);
    }

    #[test]
    fn issue_refuses_bad_ids_and_a_missing_ca_and_writes_nothing() {
        let temp = tempfile::tempdir().expect("a temp dir");
        let ca_dir = temp.path().join("ca");
        let out = temp.path().join("out");
        let e = issue(&issue_for("spiffe://example.org/a", &ca_dir, &out)).expect_err("no CA");
        assert!(matches!(e, CaError::NoCa { .. }), "{e}");
        assert!(e.to_string().contains("ringway ca init"), "{e}");
        init_in(&ca_dir, false).expect("a CA");
        let e =
            issue(&issue_for("spiffe://example.org/a/../b", &ca_dir, &out)).expect_err("malformed");
        assert!(e.is_bad_input());
        assert!(e.to_string().contains("'..'"), "{e}");
        let e = issue(&issue_for("spiffe://other.org/a", &ca_dir, &out)).expect_err("outside");
        assert!(e.is_bad_input());
        assert!(!out.exists());
    }
}
