//! Process-wide switches.

use std::sync::atomic::{AtomicU8, Ordering};

const UNSET: u8 = 0;
const OFF: u8 = 1;
const ON: u8 = 2;

static RUN_EAGERLY: AtomicU8 = AtomicU8::new(UNSET);

/// Runs every traced function's body as plain eager code (for debugging: breakpoints and
/// `println!` work, results and variable updates are the same). Overrides the
/// `TENSORJIT_RUN_EAGERLY` environment variable.
pub fn run_functions_eagerly(on: bool) {
    RUN_EAGERLY.store(if on { ON } else { OFF }, Ordering::SeqCst);
}

/// Whether traced functions currently run eagerly: the last `run_functions_eagerly`
/// call, else `TENSORJIT_RUN_EAGERLY=1` in the environment.
pub fn functions_run_eagerly() -> bool {
    match RUN_EAGERLY.load(Ordering::Relaxed) {
        ON => true,
        OFF => false,
        _ => {
            let on = std::env::var("TENSORJIT_RUN_EAGERLY").is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"));
            // Cache the environment's answer unless someone set the switch meanwhile.
            let _ = RUN_EAGERLY.compare_exchange(UNSET, if on { ON } else { OFF }, Ordering::SeqCst, Ordering::SeqCst);
            on
        }
    }
}
