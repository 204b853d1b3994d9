//! `ringway tls push`: the client side of `PUT /tls/listeners/{name}` and
//! `PUT /tls/clusters/{name}` ([`super::tls`]), reading the certificate and
//! key from files.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{ArgGroup, Args, Subcommand};

use super::client;

/// `ringway tls ...`.
#[derive(Debug, Subcommand)]
pub enum TlsCommand {
    /// Replace a listener's default certificate or a cluster's client
    /// certificate in the running proxy: checked, written over the files
    /// its configuration names, then applied.
    Push(PushArgs),
}

/// `ringway tls push`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("owner").required(true).args(["listener", "cluster"])))]
pub struct PushArgs {
    /// The listener whose default certificate is replaced.
    #[arg(long, value_name = "NAME")]
    listener: Option<String>,
    /// The cluster whose client certificate is replaced.
    #[arg(long, value_name = "NAME")]
    cluster: Option<String>,
    /// The new certificate chain (PEM, leaf first).
    #[arg(long, value_name = "FILE")]
    cert: PathBuf,
    /// Its private key (PEM).
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// The running proxy's admin address.
    #[arg(long, default_value = crate::cli::DEFAULT_ADMIN)]
    admin: SocketAddr,
}

/// Runs `ringway tls ...`: 0 once applied, 2 when refused (or a file
/// cannot be read), 1 when the proxy cannot be reached or fails.
pub fn main(command: TlsCommand) -> ExitCode {
    match command {
        TlsCommand::Push(args) => push(&args),
    }
}

fn push(args: &PushArgs) -> ExitCode {
    let path = match (&args.listener, &args.cluster) {
        (Some(name), _) => format!("/tls/listeners/{name}"),
        (None, Some(name)) => format!("/tls/clusters/{name}"),
        // clap requires one of the two.
        (None, None) => return ExitCode::from(2),
    };
    let (cert, key) = match (read(&args.cert), read(&args.key)) {
        (Ok(cert), Ok(key)) => (cert, key),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("ringway: {e}");
            return ExitCode::from(2);
        }
    };
    let body = serde_json::json!({ "cert": cert, "key": key }).to_string();
    match client::request(args.admin, "PUT", &path, Some(&body)) {
        Ok(reply) => {
            print!("{}", reply.body);
            match reply.status {
                200 | 202 => ExitCode::SUCCESS,
                400 | 404 | 409 | 422 => ExitCode::from(2),
                _ => ExitCode::FAILURE,
            }
        }
        Err(e) => {
            eprintln!(
                "ringway: cannot reach the admin API at {}: {e} (is ringway running? is --admin its [admin] address?)",
                args.admin
            );
            ExitCode::FAILURE
        }
    }
}

/// The PEM text of the file at `path`.
fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}
