//! fork() support: a child must never use the parent's threads, locks or queued entries.
//!
//! An `atfork` child handler bumps a generation counter. Every pipeline remembers the
//! generation it was made in; a logger that finds its pipeline from another generation asks
//! the registry of the new one for a fresh pipeline. The parent's pipeline is left untouched
//! (and leaked) in the child: its queue belongs to the parent, which delivers it.
//!
//! A leaf module: what a child must forget (the pipeline's registries) is given to
//! [`install`] as a function, so this module names no other.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Once;

static GENERATION: AtomicU64 = AtomicU64::new(0);
static INSTALL: Once = Once::new();
/// The `fn()` given to [`install`], as an address (0: none), called in the child.
static IN_CHILD: AtomicUsize = AtomicUsize::new(0);

extern "C" fn in_child() {
    GENERATION.fetch_add(1, Ordering::AcqRel);
    let f = IN_CHILD.load(Ordering::Acquire);
    if f != 0 {
        // SAFETY: the only value stored is a `fn()` (install), never another.
        let f: fn() = unsafe { std::mem::transmute::<usize, fn()>(f) };
        f();
    }
}

/// Installs the atfork handler (once per process); `reset` runs in every forked child, after
/// the generation moved on. It must only forget state (no lock, no allocation): the child of a
/// multi-threaded process may run only async-signal-safe code until it execs.
pub fn install(reset: fn()) {
    INSTALL.call_once(|| {
        IN_CHILD.store(reset as usize, Ordering::Release);
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
