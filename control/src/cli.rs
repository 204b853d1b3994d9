//! The command line: `ringway run`, `ringway check`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use dataplane::rt::FeatureMode;

use crate::config::{self, Config};
use crate::run;

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
    },
    /// Validate a configuration file and print a summary of it.
    Check {
        /// Configuration file (TOML).
        file: PathBuf,
        /// Print the effective configuration (defaults filled in) as TOML.
        #[arg(long)]
        effective: bool,
    },
    /// Print the embedded default configuration.
    DefaultConfig,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Features {
    Best,
    Basic,
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run { config, io_uring } => {
            let loaded = match &config {
                Some(path) => config::load(path),
                None => config::parse(config::DEFAULT_CONFIG, "<embedded default>"),
            };
            let cfg = match loaded {
                Ok(cfg) => cfg,
                Err(errors) => return report_config_errors(&errors),
            };
            let mode = match io_uring {
                Features::Best => FeatureMode::Best,
                Features::Basic => FeatureMode::Basic,
            };
            match run::run(cfg, mode) {
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
        Command::DefaultConfig => {
            print!("{}", config::DEFAULT_CONFIG);
            ExitCode::SUCCESS
        }
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
