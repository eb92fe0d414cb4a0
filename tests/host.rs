//! The library inside someone else's process: C host programs (tests/c/host) that exit
//! without freeing their logger, abort right after a FATAL entry, run a 50 µs interval timer,
//! or hold most of a pids cgroup's tasks, each against the local receiver. In every case the
//! host's stdout and stderr must stay empty: the library prints nothing.

mod common;

use common::{lines_on_disk, repo, wait_until, Receiver};
use std::collections::HashSet;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

const RUN_LIMIT: Duration = Duration::from_secs(120);
/// The library's default `close_timeout_ms`: what an exit may take, with 2.5 s of slack.
const CLOSE_TIMEOUT: Duration = Duration::from_millis(5000);
const EXIT_SLACK: Duration = Duration::from_millis(2500);

fn lib_dir() -> PathBuf {
    let so = std::env::var("RARCH_LOGGING_LIB")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo().join("target/release/librarch_logging.so"));
    assert!(so.exists(), "{} is missing: run `make lib`", so.display());
    so.parent().unwrap().to_path_buf()
}

/// Compiles tests/c/host/<name>.c against the shared library (once per test process).
fn build(name: &str) -> PathBuf {
    static BUILT: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("host");
    std::fs::create_dir_all(&out).unwrap();
    let exe = out.join(name);
    if built.iter().any(|b| b == name) {
        return exe;
    }
    let lib = lib_dir();
    let o = Command::new("gcc")
        .args([
            "-std=c11",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-pedantic",
            "-O1",
        ])
        .arg("-I")
        .arg(repo().join("include"))
        .arg(repo().join(format!("tests/c/host/{name}.c")))
        .arg("-pthread")
        .arg("-L")
        .arg(&lib)
        .arg("-lrarch_logging")
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .arg("-o")
        .arg(&exe)
        .output()
        .expect("run gcc");
    assert!(
        o.status.success(),
        "compiling {name}.c:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    built.push(name.to_owned());
    exe
}

struct Run {
    status: ExitStatus,
    stdout: String,
    stderr: String,
    took: Duration,
}

/// Runs `cmd` in `dir` against the receiver, with a deadline; stdout and stderr captured.
fn run(mut cmd: Command, dir: &Path, rx: &Receiver, tag: &str) -> Run {
    let (out_p, err_p) = (
        dir.join(format!("{tag}.out")),
        dir.join(format!("{tag}.err")),
    );
    cmd.current_dir(dir)
        .env("RARCH_LOGGING_URL", rx.url())
        .env("RARCH_LOGGING_API_KEY", &rx.key)
        .env_remove("RARCH_LOGGING_DEFAULT_LEVEL")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_p).unwrap())
        .stderr(std::fs::File::create(&err_p).unwrap());
    let t0 = Instant::now();
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("start {cmd:?}: {e}"));
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if t0.elapsed() > RUN_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{tag} did not finish within {RUN_LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Run {
        status,
        took: t0.elapsed(),
        stdout: std::fs::read_to_string(&out_p).unwrap_or_default(),
        stderr: std::fs::read_to_string(&err_p).unwrap_or_default(),
    }
}

fn program(name: &str, args: &[&str]) -> Command {
    let mut c = Command::new(build(name));
    c.args(args);
    c
}

/// The host printed nothing, and (unless `signal`) exited 0.
fn quiet_and_ok(r: &Run, what: &str) {
    assert!(
        r.stdout.is_empty() && r.stderr.is_empty(),
        "{what}: the host's output is not empty\n--- stdout\n{}\n--- stderr\n{}",
        r.stdout,
        r.stderr
    );
    assert!(r.status.success(), "{what}: exited {:?}", r.status);
}

/// The messages the receiver accepted with `prefix`, and how many duplicates (by request id)
/// it counted.
fn received(rx: &Receiver, prefix: &str) -> (HashSet<String>, u64) {
    let msgs = rx
        .entries()
        .iter()
        .filter_map(|e| e["message"].as_str().map(str::to_owned))
        .filter(|m| m.starts_with(prefix))
        .collect();
    (msgs, rx.stat("duplicates"))
}

/// The next start of `service` in `dir`: replays its disk buffer (the server healthy) and
/// frees its logger.
fn next_start(dir: &Path, rx: &Receiver, service: &str) {
    let r = run(
        program("exit_without_free", &["0", "60000", service]),
        dir,
        rx,
        &format!("{service}-next"),
    );
    quiet_and_ok(&r, "the next start");
}

fn all_arrived(rx: &Receiver, prefix: &str, n: usize, extra: &[&str]) -> u64 {
    let want = n + extra.len();
    let (msgs, dups) = wait_until(Duration::from_secs(30), "every entry", || {
        let (m, d) = received(rx, prefix);
        (m.len() >= n).then_some((m, d))
    });
    let (more, _) = received(rx, extra.first().copied().unwrap_or("\u{1}"));
    for i in 0..n {
        assert!(
            msgs.contains(&format!("{prefix}{i}")),
            "{prefix}{i} is lost"
        );
    }
    for e in extra {
        assert!(more.contains(*e), "{e:?} is lost");
    }
    assert!(
        dups <= (want / 100) as u64,
        "{dups} duplicates of {want} entries: more than 1%"
    );
    dups
}

fn exit_without_free(fault: Option<&str>) {
    let rx = Receiver::start("host-exit-key");
    if let Some(f) = fault {
        rx.fault(f);
    }
    let dir = tempfile::tempdir().unwrap();
    let n = 20_000;
    let r = run(
        program("exit_without_free", &[&n.to_string()]),
        dir.path(),
        &rx,
        "exit",
    );
    quiet_and_ok(&r, "exit(0) without rarch_logger_free");
    assert!(
        r.took <= CLOSE_TIMEOUT + EXIT_SLACK,
        "the exit took {:?}",
        r.took
    );
    let delivered = rx.stat("accepted") as usize;
    let on_disk = lines_on_disk(&dir.path().join("var/log/host-exit"));
    eprintln!(
        "exit(0) after {n} entries: {:?}, {delivered} delivered, {on_disk} on disk",
        r.took
    );
    assert!(
        delivered + on_disk >= n,
        "{delivered} delivered and {on_disk} on disk of {n}: entries were lost at the exit"
    );
    if fault.is_some() {
        rx.fault(r#"{"mode":"none"}"#);
    }
    next_start(dir.path(), &rx, "host-exit");
    let dups = all_arrived(&rx, "exit-", n, &[]);
    eprintln!("after the next start: all {n} arrived, {dups} duplicates");
}

#[test]
fn exit_without_free_delivers_or_keeps_every_entry() {
    exit_without_free(None);
}

#[test]
fn exit_without_free_with_the_server_answering_503_keeps_every_entry_on_disk() {
    exit_without_free(Some(r#"{"mode":"status","status":503,"rate":1.0}"#));
}

#[test]
fn a_fatal_entry_and_all_before_it_survive_an_abort() {
    let rx = Receiver::start("host-fatal-key");
    let dir = tempfile::tempdir().unwrap();
    let n = 5_000;
    let took_file = dir.path().join("fatal-us");
    let r = run(
        program(
            "fatal_abort",
            &[&n.to_string(), took_file.to_str().unwrap()],
        ),
        dir.path(),
        &rx,
        "fatal",
    );
    assert_eq!(
        r.status.signal(),
        Some(libc::SIGABRT),
        "the host should have aborted: {:?}\n{}",
        r.status,
        r.stderr
    );
    assert!(
        r.stdout.is_empty() && r.stderr.is_empty(),
        "the host's output is not empty\n--- stdout\n{}\n--- stderr\n{}",
        r.stdout,
        r.stderr
    );
    let us = std::fs::read_to_string(&took_file).unwrap_or_default();
    eprintln!(
        "FATAL call: {} µs; {} delivered before the abort",
        us.trim(),
        rx.stat("accepted")
    );
    next_start(dir.path(), &rx, "host-fatal");
    let dups = all_arrived(&rx, "pre-", n, &["last words"]);
    eprintln!(
        "after the next start: all {} arrived, {dups} duplicates",
        n + 1
    );
}

#[test]
fn the_hosts_signals_never_run_on_a_library_thread() {
    let rx = Receiver::start("host-signals-key");
    let dir = tempfile::tempdir().unwrap();
    let n = 20_000;
    let counts = dir.path().join("counts");
    let r = run(
        program("signals", &[&n.to_string(), counts.to_str().unwrap()]),
        dir.path(),
        &rx,
        "signals",
    );
    let counts = std::fs::read_to_string(&counts).unwrap_or_default();
    eprintln!("SIGALRM on main / elsewhere: {}", counts.trim());
    let nums: Vec<u64> = counts
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    assert_eq!(nums.len(), 2, "no counts written: {:?}", r.status);
    assert!(nums[0] > 100, "the timer hardly ran: {counts}");
    assert_eq!(nums[1], 0, "signals ran on a library thread: {counts}");
    quiet_and_ok(&r, "the host with an interval timer");
    all_arrived(&rx, "sig-", n, &[]);
}

/// A pids cgroup allowing `max` tasks, for this test only (removed on drop); None where the
/// machine has no pids controller this process may use.
struct PidsCgroup {
    dir: PathBuf,
}

impl PidsCgroup {
    fn make(max: u32) -> Result<PidsCgroup, String> {
        static SEQ: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("rarch-host-test-{}-{seq}", std::process::id());
        let candidates = [
            PathBuf::from("/sys/fs/cgroup/pids"),
            PathBuf::from("/sys/fs/cgroup"),
        ];
        let mut why = Vec::new();
        for base in candidates {
            if !base.join("cgroup.procs").exists() {
                why.push(format!("{}: not a cgroup", base.display()));
                continue;
            }
            let dir = base.join(&name);
            if let Err(e) = std::fs::create_dir(&dir) {
                why.push(format!("{}: {e}", dir.display()));
                continue;
            }
            match std::fs::write(dir.join("pids.max"), max.to_string()) {
                Ok(()) => return Ok(PidsCgroup { dir }),
                Err(e) => {
                    why.push(format!("{}/pids.max: {e}", dir.display()));
                    let _ = std::fs::remove_dir(&dir);
                }
            }
        }
        Err(why.join("; "))
    }

    /// `cmd`, run inside the cgroup (a shell puts itself in, then becomes the program).
    fn wrap(&self, exe: &Path, args: &[&str]) -> Command {
        let mut c = Command::new("sh");
        c.arg("-c")
            .arg("echo $$ > \"$0\" && exec \"$@\"")
            .arg(self.dir.join("cgroup.procs"))
            .arg(exe)
            .args(args);
        c
    }
}

impl Drop for PidsCgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// A host holding 9 tasks of a pids cgroup of 12 logs 20,000 entries and flushes, the server
/// `latency_ms` away: everything arrives, once, and the host prints nothing.
fn at_a_thread_limit(latency_ms: u64, what: &str) {
    let host_tasks = 9;
    let cg = match PidsCgroup::make(host_tasks + 3) {
        Ok(c) => c,
        Err(why) => {
            eprintln!("SKIPPED: no pids cgroup can be made here ({why})");
            return;
        }
    };
    let rx = Receiver::start("host-limit-key");
    if latency_ms > 0 {
        rx.fault(&format!(r#"{{"mode":"none","latency_ms":{latency_ms}}}"#));
    }
    let dir = tempfile::tempdir().unwrap();
    let n = 20_000;
    let cmd = cg.wrap(
        &build("thread_limit"),
        &[&n.to_string(), &host_tasks.to_string()],
    );
    let r = run(cmd, dir.path(), &rx, "limit");
    quiet_and_ok(&r, what);
    eprintln!(
        "{n} entries at a limit of {} tasks, the server {latency_ms} ms away: {:?}",
        host_tasks + 3,
        r.took
    );
    let dups = all_arrived(&rx, "lim-", n, &[]);
    eprintln!("all {n} arrived, {dups} duplicates");
}

#[test]
fn a_thread_limit_leaves_the_library_three_tasks_and_it_delivers_all() {
    at_a_thread_limit(0, "the host at its thread limit");
}

/// The same limit with a server 20 ms away: every request in flight used to hold a thread, so
/// three tasks meant one request at a time (50 entries a second); the event loop keeps the
/// concurrency limit's requests in flight on the sender thread.
#[test]
fn a_thread_limit_with_a_distant_server_still_delivers_all() {
    at_a_thread_limit(20, "the host at its thread limit, the server 20 ms away");
}
