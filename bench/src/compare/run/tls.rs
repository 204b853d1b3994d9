//! The TLS parts of a run: how the halves of a pair scenario speak, and
//! the admission checks of each system's TLS listeners.

use super::{Ctx, Entry};
use crate::compare::admission;
use crate::compare::configs::Mode;
use crate::compare::results::{PairSetup, Results};
use crate::compare::scenario::Scenario;
use crate::compare::system::Running;

/// How the pairs of a pair scenario speak between their halves.
pub(super) fn pair_setup(s: &Scenario, entries: &[Entry]) -> PairSetup {
    let names = |keep: fn(&Entry) -> bool| -> Vec<String> {
        entries
            .iter()
            .filter(|e| e.inbound.is_some() && keep(e))
            .map(|e| e.name.clone())
            .collect()
    };
    PairSetup {
        dir: s.tls.then(|| "tls/".to_owned()),
        tls: names(|e| e.tls),
        client_auth: names(|e| e.client_auth),
        plaintext: names(|e| !e.tls),
    }
}

/// The admission check of `system`'s TLS listeners (see [`admission`]):
/// the one the clients use, and a pair's inbound half's. Each is recorded,
/// and one that let in whom it should not, or refused whom it should not,
/// is a problem of the run. Returns the requests they carried to the
/// origin.
pub(super) fn admissions(
    ctx: &Ctx<'_>,
    entry: &Entry,
    system: &Running,
    results: &mut Results,
) -> u64 {
    let own = system.tls().map(|t| ("listener", system.target(), t));
    let inbound = system
        .inbound()
        .and_then(|(addr, tls)| Some(("inbound", addr, tls?)));
    let request: &[u8] = match ctx.mode {
        Mode::Http => &ctx.request,
        // The sink origin reads and drops it.
        Mode::Tcp => b"ringway-bench admission check\n",
    };
    let mut reached = 0;
    for (listener, addr, tls) in own.into_iter().chain(inbound) {
        match admission::check(&entry.name, listener, addr, tls, ctx.mode, request) {
            Ok(a) => {
                if !a.as_configured() {
                    results.problems.push(format!(
                        "{}: its TLS {listener} {} client certificates, yet with the \
                         generator's certificate it was {} and without one {}",
                        entry.name,
                        if a.requires {
                            "requires"
                        } else {
                            "does not require"
                        },
                        a.with_certificate.describe(),
                        a.without_certificate.describe()
                    ));
                }
                reached += a.reached_origin();
                results.admissions.push(a);
            }
            Err(e) => results.problems.push(format!(
                "{}: cannot check its TLS {listener}: {e}",
                entry.name
            )),
        }
    }
    reached
}
