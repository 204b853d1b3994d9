//! The command line: `ringway run`, `check`, `reload`, `stats`, `rollout`,
//! `default-config`, `ca`.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use dataplane::rt::{BackendChoice, FeatureMode};

use crate::admin::client;
use crate::ca;
use crate::config::{self, Config};
use crate::run;

/// Where `reload` and `stats` look for the admin API unless told.
pub(crate) const DEFAULT_ADMIN: &str = "127.0.0.1:9901";

/// ringway: a thread-per-core service-mesh data plane on io_uring.
#[derive(Debug, Parser)]
#[command(name = "ringway", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the proxy (on the embedded default config when no file is given).
    Run {
        /// Configuration file (TOML).
        #[arg(short, long)]
        config: Option<PathBuf>,
        /// Which io_uring features to use: everything the kernel offers, or
        /// only the basic single-shot ops (to exercise the fallbacks).
        #[arg(long, value_enum, default_value_t = Features::Best)]
        io_uring: Features,
        /// The reactor: io_uring where the kernel and the security profile
        /// allow it, else epoll (`auto`); or one of them forced. Overrides
        /// `runtime.io_backend`.
        #[arg(long, value_enum)]
        io_backend: Option<Backend>,
    },
    /// Validate a configuration file and print a summary of it.
    Check {
        /// Configuration file (TOML).
        file: PathBuf,
        /// Print the effective configuration (defaults filled in) as TOML.
        #[arg(long)]
        effective: bool,
    },
    /// Reload the running proxy's configuration file (through the admin
    /// API, or with SIGHUP given --pid).
    Reload {
        /// The running proxy's admin address.
        #[arg(long, default_value = DEFAULT_ADMIN)]
        admin: SocketAddr,
        /// Send SIGHUP to this process instead of calling the admin API.
        #[arg(long, value_parser = clap::value_parser!(i32).range(1..))]
        pid: Option<i32>,
    },
    /// Show the running proxy's statistics.
    Stats {
        /// The running proxy's admin address.
        #[arg(long, default_value = DEFAULT_ADMIN)]
        admin: SocketAddr,
        /// Print the JSON of `GET /stats` as it comes.
        #[arg(long)]
        json: bool,
    },
    /// Show or steer the running proxy's progressive rollouts.
    Rollout {
        /// What to do: `status` shows, the others act.
        #[arg(value_enum)]
        action: RolloutCommand,
        /// The rollout's route: `LISTENER/ROUTE`, or `ROUTE` when its name
        /// is unique (`status` without it lists every rollout).
        route: Option<String>,
        /// The running proxy's admin address.
        #[arg(long, default_value = DEFAULT_ADMIN)]
        admin: SocketAddr,
    },
    /// Print the embedded default configuration.
    DefaultConfig,
    /// Print the metrics reference (every `/metrics` family, its type,
    /// labels and help) as markdown.
    MetricsReference,
    /// Work with the running proxy's certificates.
    Tls {
        #[command(subcommand)]
        command: crate::admin::push::TlsCommand,
    },
    /// A development CA: make one for a SPIFFE trust domain, and issue
    /// workload certificates (X509-SVIDs) with it, to try mTLS.
    Ca {
        #[command(subcommand)]
        command: CaCommand,
    },
}

#[derive(Debug, Subcommand)]
enum CaCommand {
    /// Make a CA for a trust domain: DIR/ca.pem and DIR/ca-key.pem (0600).
    Init {
        /// The trust domain it signs identities in (`example.org`).
        #[arg(long)]
        trust_domain: String,
        /// The directory to write the CA into.
        #[arg(long, default_value = ca::DEFAULT_DIR)]
        dir: PathBuf,
        /// Days the CA is valid for.
        #[arg(long, default_value_t = 365, value_parser = clap::value_parser!(u32).range(1..=36500))]
        days: u32,
        /// Replace a CA already in DIR (what it issued stops verifying).
        #[arg(long)]
        force: bool,
    },
    /// Issue a workload certificate for a SPIFFE ID: OUT/cert.pem,
    /// OUT/key.pem (0600) and OUT/ca.pem (the CA, to trust peers by).
    Issue {
        /// The workload's SPIFFE ID (spiffe://example.org/ns/default/sa/web).
        id: String,
        /// The directory to write the certificate, key and CA into.
        #[arg(long)]
        out: PathBuf,
        /// The directory of the CA (made by `ringway ca init`).
        #[arg(long, default_value = ca::DEFAULT_DIR)]
        ca_dir: PathBuf,
        /// Days the certificate is valid for (never past the CA's end).
        #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=36500))]
        days: u32,
        /// A DNS name to add, for peers that check a host name (repeatable).
        #[arg(long, value_name = "NAME")]
        dns: Vec<String>,
        /// An IP address to add, for peers that check the address they
        /// connect to (repeatable).
        #[arg(long, value_name = "ADDR")]
        ip: Vec<IpAddr>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Features {
    Best,
    Basic,
}

/// `--io-backend`, spelled as `runtime.io_backend` is.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum Backend {
    Auto,
    #[value(name = "io_uring")]
    IoUring,
    Epoll,
}

impl From<Backend> for BackendChoice {
    fn from(b: Backend) -> Self {
        match b {
            Backend::Auto => BackendChoice::Auto,
            Backend::IoUring => BackendChoice::IoUring,
            Backend::Epoll => BackendChoice::Epoll,
        }
    }
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run {
            config,
            io_uring,
            io_backend,
        } => {
            let (source, origin) = match &config {
                Some(path) => match config::read(path) {
                    Ok(text) => (text, path.display().to_string()),
                    Err(errors) => return report_config_errors(&errors),
                },
                None => (
                    config::DEFAULT_CONFIG.to_owned(),
                    "<embedded default>".to_owned(),
                ),
            };
            let cfg = match config::parse(&source, &origin) {
                Ok(cfg) => cfg,
                Err(errors) => return report_config_errors(&errors),
            };
            let mode = match io_uring {
                Features::Best => FeatureMode::Best,
                Features::Basic => FeatureMode::Basic,
            };
            // The flag wins over the file; the running configuration keeps
            // what the file says, so that a reload of the same file is no
            // change.
            let backend = io_backend.map_or(cfg.runtime.io_backend, BackendChoice::from);
            let start = run::Start {
                config: cfg,
                source,
                path: config,
            };
            match run::run(start, mode, backend) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("ringway: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Check { file, effective } => match config::load(&file) {
            Ok(cfg) => {
                print_check(&cfg, effective);
                ExitCode::SUCCESS
            }
            Err(errors) => report_config_errors(&errors),
        },
        Command::Reload { admin, pid } => reload(admin, pid),
        Command::Stats { admin, json } => stats(admin, json),
        Command::Rollout {
            action,
            route,
            admin,
        } => rollout(action, route.as_deref(), admin),
        Command::DefaultConfig => {
            print!("{}", config::DEFAULT_CONFIG);
            ExitCode::SUCCESS
        }
        Command::MetricsReference => {
            print!("{}", crate::agent::families::reference());
            ExitCode::SUCCESS
        }
        Command::Tls { command } => crate::admin::push::main(command),
        Command::Ca { command } => ca_command(command),
    }
}

fn ca_command(command: CaCommand) -> ExitCode {
    let done = match command {
        CaCommand::Init {
            trust_domain,
            dir,
            days,
            force,
        } => ca::init(&ca::Init {
            trust_domain: &trust_domain,
            dir: &dir,
            days,
            force,
        })
        .map(|made| {
            println!(
                "made a development CA for trust domain {}, valid until {}",
                made.trust_domain,
                ca::rfc3339(made.not_after)
            );
            print_files(&[
                (&made.cert, "the CA certificate (what peers trust)"),
                (&made.key, "its private key (0600; stays here)"),
            ]);
        }),
        CaCommand::Issue {
            id,
            out,
            ca_dir,
            days,
            dns,
            ip,
        } => ca::issue(&ca::Issue {
            id: &id,
            ca_dir: &ca_dir,
            out: &out,
            days,
            dns: &dns,
            ips: &ip,
        })
        .map(|issued| {
            println!("issued {id}, valid until {}", ca::rfc3339(issued.not_after));
            if issued.cut_to_ca {
                println!("(not the {days} days asked: no certificate outlives its CA)");
            }
            print_files(&[
                (&issued.cert, "the certificate (tls cert)"),
                (&issued.key, "its private key (0600; tls key)"),
                (
                    &issued.ca,
                    "the CA (tls client_ca on listeners, ca on clusters)",
                ),
            ]);
        }),
    };
    match done {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ringway: {e}");
            ExitCode::from(if e.is_bad_input() { 2 } else { 1 })
        }
    }
}

/// One line per file: its path, aligned, and what it is.
fn print_files(files: &[(&PathBuf, &str)]) {
    let paths: Vec<String> = files.iter().map(|(p, _)| p.display().to_string()).collect();
    let width = paths.iter().map(String::len).max().unwrap_or(0);
    for (path, (_, what)) in paths.iter().zip(files) {
        println!("  {path:width$}  {what}");
    }
}

fn print_check(cfg: &Config, effective: bool) {
    if effective {
        print!("{}", cfg.to_toml());
    } else {
        println!("configuration is valid");
        print!("{}", cfg.summary());
    }
}

fn report_config_errors(errors: &config::ConfigErrors) -> ExitCode {
    for e in &errors.errors {
        eprintln!("error: {e}");
    }
    eprintln!(
        "ringway: configuration rejected ({} error{})",
        errors.errors.len(),
        if errors.errors.len() == 1 { "" } else { "s" }
    );
    ExitCode::from(2)
}

fn reload(admin: SocketAddr, pid: Option<i32>) -> ExitCode {
    if let Some(pid) = pid {
        use nix::sys::signal::{kill, Signal};
        return match kill(nix::unistd::Pid::from_raw(pid), Signal::SIGHUP) {
            Ok(()) => {
                println!("sent SIGHUP to {pid}; its stderr says how the reload went");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("ringway: cannot signal process {pid}: {e}");
                ExitCode::FAILURE
            }
        };
    }
    match client::request(admin, "POST", "/reload", Some("")) {
        Ok(reply) => {
            print!("{}", reply.body);
            match reply.status {
                200 | 202 => ExitCode::SUCCESS,
                400 => ExitCode::from(2),
                _ => ExitCode::FAILURE,
            }
        }
        Err(e) => unreachable_admin(admin, &e),
    }
}

fn stats(admin: SocketAddr, json: bool) -> ExitCode {
    let reply = match client::request(admin, "GET", "/stats", None) {
        Ok(reply) if reply.status == 200 => reply,
        Ok(reply) => {
            eprintln!(
                "ringway: {admin} answered {}: {}",
                reply.status,
                reply.body.trim()
            );
            return ExitCode::FAILURE;
        }
        Err(e) => return unreachable_admin(admin, &e),
    };
    if json {
        print!("{}", reply.body);
        return ExitCode::SUCCESS;
    }
    match serde_json::from_str::<serde_json::Value>(&reply.body) {
        Ok(v) => {
            print!("{}", crate::stats_table::render(&v));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ringway: {admin} sent statistics that are not JSON: {e}");
            ExitCode::FAILURE
        }
    }
}

/// What `ringway rollout` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum RolloutCommand {
    /// Show where the rollout stands and its decisions.
    Status,
    /// Hold it at its current weights.
    Pause,
    /// Let a paused rollout go on.
    Resume,
    /// Give the canary every request now.
    Promote,
    /// Give the canary no request from now on.
    Abort,
}

fn rollout(command: RolloutCommand, route: Option<&str>, admin: SocketAddr) -> ExitCode {
    let (method, path) = match (command, route) {
        (RolloutCommand::Status, None) => ("GET", "/rollouts".to_owned()),
        (RolloutCommand::Status, Some(r)) => ("GET", format!("/rollouts/{r}")),
        (_, None) => {
            eprintln!("ringway: name the rollout's route: LISTENER/ROUTE, or ROUTE when unique");
            return ExitCode::from(2);
        }
        (action, Some(r)) => {
            let name = match action {
                RolloutCommand::Pause => "pause",
                RolloutCommand::Resume => "resume",
                RolloutCommand::Promote => "promote",
                _ => "abort",
            };
            ("POST", format!("/rollouts/{r}/{name}"))
        }
    };
    let body = (method == "POST").then_some("");
    let reply = match client::request(admin, method, &path, body) {
        Ok(reply) => reply,
        Err(e) => return unreachable_admin(admin, &e),
    };
    if !matches!(reply.status, 200 | 202) {
        eprint!("ringway: {}", reply.body);
        return match reply.status {
            404 | 409 => ExitCode::from(2),
            _ => ExitCode::FAILURE,
        };
    }
    let value: serde_json::Value = match serde_json::from_str(&reply.body) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("ringway: {admin} sent a rollout that is not JSON: {e}");
            return ExitCode::FAILURE;
        }
    };
    match value.as_array() {
        Some(all) if all.is_empty() => println!("no rollouts in the running configuration"),
        Some(all) => {
            for r in all {
                println!("{}", crate::rollout::text::line(r));
            }
        }
        None => {
            if let Some(g) = value["generation"].as_u64() {
                println!("published generation {g}");
            }
            print!("{}", crate::rollout::text::status(&value));
        }
    }
    ExitCode::SUCCESS
}

fn unreachable_admin(admin: SocketAddr, e: &std::io::Error) -> ExitCode {
    eprintln!(
        "ringway: cannot reach the admin API at {admin}: {e} (is ringway running? is --admin its [admin] address?)"
    );
    ExitCode::FAILURE
}
