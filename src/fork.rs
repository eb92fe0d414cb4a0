//! fork() support: a child must never use the parent's threads, locks or queued entries.
//!
//! An `atfork` child handler bumps a generation counter. Every pipeline remembers the
//! generation it was made in; a logger that finds its pipeline from another generation asks
//! the registry of the new one for a fresh pipeline. The parent's pipeline is left untouched
//! (and leaked) in the child: its queue belongs to the parent, which delivers it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Once;

static GENERATION: AtomicU64 = AtomicU64::new(0);
static INSTALL: Once = Once::new();

extern "C" fn in_child() {
    GENERATION.fetch_add(1, Ordering::AcqRel);
    crate::pipeline::reset_registry_in_child();
    crate::pipeline::reset_sources_in_child();
}

/// Installs the atfork handler (once per process).
pub fn install() {
    INSTALL.call_once(|| {
        // SAFETY: registering a plain extern "C" function with no prepare/parent handler.
        unsafe {
            libc::pthread_atfork(None, None, Some(in_child));
        }
    });
}

/// The current fork generation of this process.
#[inline]
pub fn generation() -> u64 {
    GENERATION.load(Ordering::Acquire)
}

/// The counter behind [`generation`], for a pipeline to keep a pointer to: read through it,
/// the caller's path does not load the counter's address from the GOT (one more cache line
/// for a call after a pause).
pub fn counter() -> &'static AtomicU64 {
    &GENERATION
}
