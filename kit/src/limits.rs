//! The open-file limit: tests and benches hold thousands of connections,
//! and the proxies they start inherit the limit.

use nix::sys::resource::{getrlimit, setrlimit, Resource};

/// Raises this process's soft limit on open files to its hard limit;
/// children (the proxy, the origin) inherit it. Panics if it cannot.
pub fn raise_fd_limit() {
    try_raise_fd_limit().unwrap_or_else(|e| panic!("cannot raise RLIMIT_NOFILE: {e}"));
}

/// Like [`raise_fd_limit`], returning the new soft limit or the error.
pub fn try_raise_fd_limit() -> nix::Result<u64> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
    }
    Ok(hard)
}

/// The hard limit on open files of this process; panics if unreadable.
pub fn fd_hard_limit() -> u64 {
    getrlimit(Resource::RLIMIT_NOFILE)
        .unwrap_or_else(|e| panic!("cannot read RLIMIT_NOFILE: {e}"))
        .1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_reaches_the_hard_one() {
        let hard = fd_hard_limit();
        assert_eq!(
            try_raise_fd_limit().expect("raising to the hard limit"),
            hard
        );
        raise_fd_limit();
        let (soft, _) = getrlimit(Resource::RLIMIT_NOFILE).expect("readable");
        assert_eq!(soft, hard);
    }
}
