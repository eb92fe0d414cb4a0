//! Starting the library's threads inside someone else's process.
//!
//! - Every thread the library starts blocks the asynchronously delivered signals (as
//!   librdkafka does): the kernel then delivers a process-directed signal (an interval timer's
//!   SIGALRM, a SIGCHLD, a SIGIO) to one of the host's own threads, whose handler expects to
//!   interrupt them. The mask is set on the starting thread around the spawn, so that the new
//!   thread has it from its first instruction (a thread inherits its creator's mask); the
//!   starting thread's own mask is put back at once, and a signal that arrives in that window
//!   stays pending for it. Faults (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS) are never
//!   blocked: blocking a synchronous fault is undefined. No signal disposition is changed.
//! - A thread that cannot be started (EAGAIN at a pids or RLIMIT_NPROC limit) is an error the
//!   caller handles, never a panic (`std::thread::spawn` and `Scope::spawn` panic on it).
//! - A panic inside a thread is caught, counted ([`panics`]) and kept as [`last_panic`]; with
//!   the C ABI's hook ([`quiet_panics`]) it prints nothing.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, Once};
use std::thread::{Builder, JoinHandle, Scope, ScopedJoinHandle};

/// The signals a library thread leaves unblocked: synchronous faults.
const FAULTS: [libc::c_int; 6] = [
    libc::SIGSEGV,
    libc::SIGBUS,
    libc::SIGFPE,
    libc::SIGILL,
    libc::SIGTRAP,
    libc::SIGSYS,
];

/// Runs `f` with every asynchronous signal blocked on this thread, then puts the mask back.
fn with_signals_blocked<T>(f: impl FnOnce() -> T) -> T {
    // SAFETY: sigset_t is plain data, filled by sigfillset before use; pthread_sigmask gets
    // valid pointers and only changes this thread's mask.
    let old = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut set);
        for s in FAULTS {
            libc::sigdelset(&mut set, s);
        }
        let mut old: libc::sigset_t = std::mem::zeroed();
        if libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old) != 0 {
            None
        } else {
            Some(old)
        }
    };
    let r = f();
    if let Some(old) = old {
        // SAFETY: `old` is the mask pthread_sigmask returned above.
        unsafe {
            libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        }
    }
    r
}

/// Starts a named library thread with the asynchronous signals blocked; an error (with the
/// thread's name and the system's reason) when it cannot be started.
pub fn spawn<F>(name: &str, f: F) -> io::Result<JoinHandle<()>>
where
    F: FnOnce() + Send + 'static,
{
    with_signals_blocked(|| {
        Builder::new()
            .name(name.to_owned())
            .spawn(move || guarded(f))
    })
    .map_err(|e| cannot_start(name, e))
}

/// [`spawn`] for a scoped thread.
pub fn spawn_scoped<'scope, 'env, F>(
    scope: &'scope Scope<'scope, 'env>,
    name: &str,
    f: F,
) -> io::Result<ScopedJoinHandle<'scope, ()>>
where
    F: FnOnce() + Send + 'scope,
{
    with_signals_blocked(|| {
        Builder::new()
            .name(name.to_owned())
            .spawn_scoped(scope, move || guarded(f))
    })
    .map_err(|e| cannot_start(name, e))
}

fn cannot_start(name: &str, e: io::Error) -> io::Error {
    io::Error::new(
        e.kind(),
        format!("cannot start the library's thread {name}: {e}"),
    )
}

/// Runs a thread's body; a panic ends the thread, counted and kept.
fn guarded(f: impl FnOnce()) {
    if let Err(p) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        caught(p.as_ref());
    }
}

static PANICS: AtomicU64 = AtomicU64::new(0);
static LAST_PANIC: Mutex<String> = Mutex::new(String::new());
static HOOKED: AtomicBool = AtomicBool::new(false);

/// Counts a caught panic and returns its message: the hook's (with its place) when
/// [`quiet_panics`] is installed, the payload's otherwise.
pub fn caught(p: &(dyn std::any::Any + Send)) -> String {
    PANICS.fetch_add(1, Ordering::Relaxed);
    if HOOKED.load(Ordering::Acquire) {
        return last_panic();
    }
    let what = payload_text(p);
    set_last_panic(&what);
    what
}

/// The text of a panic's payload.
pub fn payload_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown".into())
}

fn set_last_panic(what: &str) {
    let mut l = LAST_PANIC.lock().unwrap_or_else(|p| p.into_inner());
    l.clear();
    l.push_str(what);
}

/// Panics caught anywhere in the library since the process started (in its threads and at
/// the C ABI's boundary).
pub fn panics() -> u64 {
    PANICS.load(Ordering::Relaxed)
}

/// The last panic's message and place ("" if none).
pub fn last_panic() -> String {
    LAST_PANIC.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

/// Installs this library's panic hook (once): a panic's message and place are kept as
/// [`last_panic`] instead of printed on the host's stderr. Called by the C ABI only: in the
/// shared or static library the hook belongs to the library's own copy of std, so it changes
/// nothing for a Rust host, and a Rust program using the crate directly keeps its own hook.
pub fn quiet_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            let what = payload_text(info.payload());
            let at = info
                .location()
                .map(|l| format!(" at {}:{}", l.file(), l.line()))
                .unwrap_or_default();
            set_last_panic(&format!("{what}{at}"));
        }));
        HOOKED.store(true, Ordering::Release);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocked(sig: libc::c_int) -> bool {
        // SAFETY: reads this thread's mask into a zeroed sigset_t.
        unsafe {
            let mut cur: libc::sigset_t = std::mem::zeroed();
            libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut cur);
            libc::sigismember(&cur, sig) == 1
        }
    }

    #[test]
    fn a_library_thread_blocks_async_signals_but_not_faults_and_the_caller_keeps_its_mask() {
        let (tx, rx) = std::sync::mpsc::channel();
        let before = blocked(libc::SIGALRM);
        spawn("rarch-test", move || {
            let _ = tx.send((
                blocked(libc::SIGALRM),
                blocked(libc::SIGINT),
                blocked(libc::SIGCHLD),
                blocked(libc::SIGSEGV),
            ));
        })
        .unwrap()
        .join()
        .unwrap();
        assert_eq!(rx.recv().unwrap(), (true, true, true, false));
        assert_eq!(blocked(libc::SIGALRM), before);
    }

    #[test]
    fn a_panic_in_a_library_thread_is_counted_and_kept() {
        let before = panics();
        spawn("rarch-test", || panic!("boom in a thread"))
            .unwrap()
            .join()
            .unwrap();
        assert!(panics() > before);
        assert!(
            last_panic().contains("boom in a thread"),
            "{}",
            last_panic()
        );
    }
}
