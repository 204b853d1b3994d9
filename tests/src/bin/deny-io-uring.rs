//! Runs a command under a seccomp filter that refuses the io_uring system
//! calls with a chosen errno, the way the default profiles of Docker 25+ and
//! containerd 2.0 do. Used to test ringway's start-up diagnosis.
//!
//! Usage: `deny-io-uring EPERM|ENOSYS COMMAND [ARGS...]`
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitCode};

use seccompiler::{BpfProgram, SeccompAction, SeccompFilter, TargetArch};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (errno, command) = match args.split_first() {
        Some((errno, command)) if !command.is_empty() => (errno.as_str(), command),
        _ => {
            eprintln!("usage: deny-io-uring EPERM|ENOSYS COMMAND [ARGS...]");
            return ExitCode::from(64);
        }
    };
    let errno = match errno {
        "EPERM" => libc::EPERM,
        "ENOSYS" => libc::ENOSYS,
        other => {
            eprintln!("deny-io-uring: unknown errno {other}");
            return ExitCode::from(64);
        }
    };
    if let Err(e) = install(errno as u32) {
        eprintln!("deny-io-uring: cannot install the filter: {e}");
        return ExitCode::from(70);
    }
    let err = Command::new(&command[0]).args(&command[1..]).exec();
    eprintln!("deny-io-uring: cannot run {}: {err}", command[0]);
    ExitCode::from(71)
}

fn install(errno: u32) -> Result<(), Box<dyn std::error::Error>> {
    let rules: BTreeMap<i64, Vec<seccompiler::SeccompRule>> = [
        libc::SYS_io_uring_setup,
        libc::SYS_io_uring_enter,
        libc::SYS_io_uring_register,
    ]
    .into_iter()
    .map(|nr| (nr, Vec::new()))
    .collect();
    let arch = TargetArch::try_from(std::env::consts::ARCH)?;
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(errno),
        arch,
    )?;
    let program: BpfProgram = filter.try_into()?;
    seccompiler::apply_filter(&program)?;
    Ok(())
}
