//! The disk buffer of one service: `<buffer_dir>/<service>/buffer.jsonl`, one JSON entry per
//! line, exactly the body that will be posted (the Python client's format, which it can replay
//! and whose files we replay).
//!
//! Files in the directory (created 0700, files 0600, never through a symlink):
//! - `buffer.jsonl`: where undelivered entries are appended;
//! - `buffer.rotated-<UTC time>.jsonl`: `buffer.jsonl` renamed when it passed the rotation size;
//! - `buffer.sending-<UTC time>-rarch<pid>.jsonl`: a file claimed by a drain (atomic rename);
//!   a drain holds an `flock` on it, so one left by a dead process is picked up again;
//! - `buffer.sending-....jsonl.progress`: how far the drain of that file got (the index of
//!   the first line not yet settled, in decimal, then in hex a bitmap of the settled lines of
//!   the 4,096 after it), so that a drain that adopts it sends only the others;
//! - `buffer.rejected.jsonl`: entries the server refused (4xx), with status and reason;
//! - `buffer.corrupt.jsonl`: lines that did not parse;
//! - `buffer.journal-<pid>-<nonce>-<seq>.bin`: the crash journal of `durable=true` (see
//!   [`crate::journal`]); `buffer.journal-left-...` is one left for recovery;
//! - `buffer.journal-<pid>-<nonce>-o<seq>.bin`: the overflow's raw records in the journal's
//!   format ([`journal::Appender`]), written by the spill thread in a burst and, once sealed,
//!   sent by the replay as they are (in an outage or at the close, moved into `buffer.jsonl`;
//!   by the next process, if this one died);
//! - `buffer.journal-<pid>-<nonce>-t<seq>.bin`: a segment taken by the replay
//!   ([`journal::Taken`]);
//! - `buffer.lock`: the lock file that makes appends, rotation and claims exclusive between
//!   processes.

use crate::error::{Error, ErrorKind, Result};
use crate::journal::{self, Journal};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

pub const ACTIVE: &str = "buffer.jsonl";
pub const REJECTED: &str = "buffer.rejected.jsonl";
pub const CORRUPT: &str = "buffer.corrupt.jsonl";
const LOCK: &str = "buffer.lock";
/// Lines after the first unsettled one whose state a progress mark records.
pub(crate) const PROGRESS_BITS: usize = 4096;
pub const ROTATED: &str = "buffer.rotated-";
pub const SENDING: &str = "buffer.sending-";
/// Dead letters on their way back into the backlog ([`DiskBuffer::requeue_dead_letters`]):
/// the entries, and the dead letters that stay. Which of the two exists tells how far a
/// requeue that stopped in the middle got.
pub const REQUEUE_PENDING: &str = "buffer.requeue.pending";
const REQUEUE_KEPT: &str = "buffer.rejected.jsonl.requeue";
/// A claimed file of another client (the Python one takes no lock) is only adopted once it has
/// not changed for this long.
const FOREIGN_CLAIM_AGE: Duration = Duration::from_secs(120);

/// Checks that a service name is one safe path component. Names are refused, never mapped, so
/// two services can never share a directory by accident.
pub fn check_service_name(service: &str) -> Result<()> {
    let bad = |why: &str| {
        Err(Error::new(
            ErrorKind::InvalidArgument,
            format!("service name {service:?} {why}: it names the buffer directory"),
        ))
    };
    if service.is_empty() {
        return bad("is empty");
    }
    if service.len() > 200 {
        return bad("is longer than 200 bytes");
    }
    if service.starts_with('.') {
        return bad("starts with '.'");
    }
    if service.contains(['/', '\\']) {
        return bad("contains a path separator");
    }
    if service.chars().any(char::is_control) {
        return bad("contains a control character (NUL, newline, ...)");
    }
    Ok(())
}

/// Outcome of an append, for the stats.
#[derive(Debug, Default)]
pub struct Appended {
    /// Lines written: all of them, unless `error` says why the rest were not.
    pub lines: u64,
    /// Lines deleted from the oldest segments to stay under the total cap.
    pub dropped_for_cap: u64,
    /// Why the lines after the first `lines` were not written (nothing of them is on disk).
    pub error: Option<io::Error>,
}

struct Active {
    lock: File,
    file: Option<File>,
}

pub struct DiskBuffer {
    dir: PathBuf,
    /// The service whose entries these are (the last part of `dir`).
    service: Box<str>,
    max_file: u64,
    max_total: u64,
    durable: bool,
    journal: Option<Journal>,
    /// A journal for the copies of requests in flight that a FATAL entry writes (see
    /// `Pipeline::persist_memory`), made on first use.
    fatal_journal: std::sync::OnceLock<Journal>,
    /// The overflow's raw records (see `Shared::spill_lanes`): segments in the journal's
    /// format, replayed as they are once sealed ([`DiskBuffer::take_segment`]), or moved into
    /// `buffer.jsonl` ([`DiskBuffer::settle_raw`]) while they cannot be.
    overflow: Mutex<journal::Appender>,
    active: Mutex<Option<Active>>,
    maybe_backlog: AtomicBool,
    /// Raw records were written to `overflow` since no segment was last found waiting (moved
    /// into `buffer.jsonl`, or taken by the replay): a backlog too.
    raw_pending: AtomicBool,
    /// Segments taken by the replay and not yet finished: a backlog too.
    taken: AtomicUsize,
}

/// A file claimed by this process for replay; the flock is held until it is dropped.
pub struct Claimed {
    pub path: PathBuf,
    file: File,
    /// The name the file had before the claim (`None` for an adopted claimed file).
    origin: Option<PathBuf>,
}

impl Claimed {
    /// Whether this file was `buffer.jsonl` before the claim.
    pub fn from_active(&self) -> bool {
        self.origin
            .as_ref()
            .is_some_and(|p| p.file_name().is_some_and(|n| n == ACTIVE))
    }

    fn progress_path(&self) -> PathBuf {
        progress_path(&self.path)
    }

    /// The progress mark: every line (in [`Claimed::lines`]) before the first number was
    /// settled by an earlier drain, and so was line `first + j` for each bit j set in the
    /// bitmap. (0, nothing) when there is none, or it does not parse.
    pub fn progress(&self) -> (usize, [u64; PROGRESS_BITS / 64]) {
        read_progress(&self.progress_path())
    }

    /// Records that every line before `first` is settled, and the lines after it whose bits are
    /// set. Always the same length, written in place at offset 0, not synced: after a power
    /// loss the mark may be older, which only means more lines are sent again.
    pub fn set_progress(&self, first: usize, bits: &[u64; PROGRESS_BITS / 64]) {
        let mut text = format!("{first:020}\n");
        for w in bits {
            text.push_str(&format!("{w:016x}"));
        }
        text.push('\n');
        let r = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(self.progress_path())
            .and_then(|f| std::os::unix::fs::FileExt::write_all_at(&f, text.as_bytes(), 0));
        // A mark that cannot be written only means more lines are sent again after a crash.
        let _ = r;
    }

    /// The file's lines (the last one may be torn) a window at a time
    /// ([`Windows::next_window`]): the same lines, in the same order, as [`Lines::new`] of the
    /// whole file, each window about `bytes` long (whole lines; a longer line is a window alone).
    pub fn windows(&self, bytes: usize) -> io::Result<Windows> {
        Ok(Windows {
            file: self.file.try_clone()?,
            bytes: bytes.max(1),
            carry: Vec::new(),
            eof: false,
        })
    }
}

/// A claimed file read a window of whole lines at a time (see [`Claimed::windows`]).
pub struct Windows {
    /// The claimed file's descriptor, duplicated (the claim keeps its own, and its lock).
    file: File,
    bytes: usize,
    /// Read past the last window's end: the start of its next line.
    carry: Vec<u8>,
    eof: bool,
}

impl Windows {
    /// The next window's lines; `None` once the file has been read to its end.
    pub fn next_window(&mut self) -> io::Result<Option<Lines>> {
        loop {
            if self.eof {
                if self.carry.is_empty() {
                    return Ok(None);
                }
                // The file's last line, torn or without its line end.
                return Ok(Some(Lines::new(std::mem::take(&mut self.carry))));
            }
            let mut data = std::mem::take(&mut self.carry);
            let have = data.len();
            let want = self.bytes.saturating_sub(have).max(4096);
            data.reserve_exact(want);
            let n = (&self.file).take(want as u64).read_to_end(&mut data)?;
            if n == 0 {
                self.eof = true;
            }
            // Whole lines go now; what follows the last line end waits for the next read.
            match memchr::memrchr(b'\n', &data[have..]) {
                Some(i) => {
                    self.carry = data.split_off(have + i + 1);
                    return Ok(Some(Lines::new(data)));
                }
                None => self.carry = data,
            }
        }
    }
}

/// The non-blank lines of a file's contents (without `\n`, nor a `\r` before it), each a span
/// of the one buffer they were read into: a file being replayed is held once, not again as a
/// copy of each line (up to `buffer_max_file_bytes` more, and an allocation a line).
pub struct Lines {
    data: Vec<u8>,
    spans: Vec<(usize, usize)>,
}

impl Lines {
    /// Lines given as spans of `data` (each non-blank, without a line end).
    pub fn from_spans(data: Vec<u8>, spans: Vec<(usize, usize)>) -> Lines {
        Lines { data, spans }
    }

    /// The buffer the lines were in, for another use.
    pub fn into_data(self) -> Vec<u8> {
        self.data
    }

    pub fn new(data: Vec<u8>) -> Lines {
        let mut spans = Vec::new();
        let mut start = 0;
        let ends = memchr::memchr_iter(b'\n', &data).chain(std::iter::once(data.len()));
        for end in ends {
            let l = &data[start..end];
            if !l.iter().all(u8::is_ascii_whitespace) {
                spans.push((start, if l.ends_with(b"\r") { end - 1 } else { end }));
            }
            start = end + 1;
        }
        Lines { data, spans }
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }
}

impl std::ops::Index<usize> for Lines {
    type Output = [u8];
    fn index(&self, i: usize) -> &[u8] {
        let (start, end) = self.spans[i];
        &self.data[start..end]
    }
}

/// The progress mark beside the claimed file whose mark is at `mark` (see [`Claimed::progress`]).
pub fn read_progress(mark: &Path) -> (usize, [u64; PROGRESS_BITS / 64]) {
    let mut bits = [0u64; PROGRESS_BITS / 64];
    let Ok(f) = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(mark)
    else {
        return (0, bits);
    };
    let mut s = String::new();
    if (&f).take(4096).read_to_string(&mut s).is_err() {
        return (0, bits);
    }
    let mut parts = s.split('\n');
    let Some(first) = parts.next().and_then(|l| l.trim().parse().ok()) else {
        return (0, bits);
    };
    let hex = parts.next().unwrap_or("").trim();
    if hex.len() == PROGRESS_BITS / 4 {
        for (w, chunk) in bits.iter_mut().zip(hex.as_bytes().chunks(16)) {
            match std::str::from_utf8(chunk)
                .ok()
                .and_then(|c| u64::from_str_radix(c, 16).ok())
            {
                Some(v) => *w = v,
                // A torn mark: only the first number is trusted.
                None => return (first, [0; PROGRESS_BITS / 64]),
            }
        }
    }
    (first, bits)
}

pub fn progress_path(claimed: &Path) -> PathBuf {
    let mut p = claimed.as_os_str().to_owned();
    p.push(".progress");
    PathBuf::from(p)
}

fn utc_stamp() -> String {
    let mut v = Vec::with_capacity(32);
    crate::entry::now(&mut v, SystemTime::now());
    // 2026-11-23T22:30:00.123456Z -> 20261123T223000.123456Z (no ':' in file names)
    String::from_utf8_lossy(&v).replace(['-', ':'], "")
}

/// A unique name for a rotated segment that sorts by time.
fn rotated_name() -> String {
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    format!(
        "{ROTATED}{}-{n:08}-{}.jsonl",
        utc_stamp(),
        std::process::id()
    )
}

/// Splits whole lines into runs of at most `max` bytes (a longer line is a run of its own).
fn chunks(data: &[u8], max: usize) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut end = 0;
    for (i, b) in data.iter().enumerate() {
        if *b != b'\n' {
            continue;
        }
        let line_end = i + 1;
        if line_end - start > max && end > start {
            out.push(&data[start..end]);
            start = end;
        }
        end = line_end;
    }
    if end < data.len() {
        end = data.len();
    }
    if end > start {
        out.push(&data[start..end]);
    }
    out
}

fn flock(f: &File, op: libc::c_int) -> io::Result<()> {
    loop {
        // SAFETY: flock on a descriptor we own.
        if unsafe { libc::flock(f.as_raw_fd(), op) } == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Makes the service directory (0700), refusing a symlink or a non-directory in its place.
fn make_dir(dir: &Path) -> io::Result<()> {
    match fs::symlink_metadata(dir) {
        Ok(m) if m.file_type().is_symlink() => Err(io::Error::other("is a symlink: refused")),
        Ok(m) if !m.is_dir() => Err(io::Error::other("exists and is not a directory")),
        Ok(_) => Ok(()),
        Err(_) => fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir),
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

/// Lines in a file, read in small pieces (a segment is megabytes; the cap is hit under load).
fn count_lines(path: &Path) -> u64 {
    let Ok(mut f) = File::open(path) else {
        return 0;
    };
    let mut buf = [0u8; 16 * 1024];
    let mut n = 0u64;
    loop {
        match f.read(&mut buf) {
            Ok(0) => return n,
            Ok(k) => n += buf[..k].iter().filter(|&&c| c == b'\n').count() as u64,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return n,
        }
    }
}

impl DiskBuffer {
    /// The buffer of `service` under `buffer_dir`. Creates the directory (0700) if needed and
    /// refuses a symlink in its place.
    pub fn open(
        buffer_dir: &Path,
        service: &str,
        max_file: u64,
        max_total: u64,
        durable: bool,
    ) -> Result<DiskBuffer> {
        check_service_name(service)?;
        let dir = buffer_dir.join(service);
        let io_err = |e: io::Error| {
            Error::new(
                ErrorKind::Io,
                format!("buffer directory {}: {e}", dir.display()),
            )
        };
        make_dir(&dir).map_err(io_err)?;
        let b = DiskBuffer {
            journal: durable.then(|| Journal::new(&dir)),
            fatal_journal: std::sync::OnceLock::new(),
            overflow: Mutex::new(journal::Appender::new(&dir, "o")),
            dir,
            service: service.into(),
            max_file,
            max_total,
            durable,
            active: Mutex::new(None),
            maybe_backlog: AtomicBool::new(true),
            raw_pending: AtomicBool::new(false),
            taken: AtomicUsize::new(0),
        };
        Ok(b)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The service whose entries these are.
    pub fn service(&self) -> &str {
        &self.service
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Runs `f` holding the in-process mutex and the cross-process flock.
    fn locked<T>(&self, f: impl FnOnce(&mut Active) -> io::Result<T>) -> io::Result<T> {
        let mut guard = self.active.lock().unwrap_or_else(|p| p.into_inner());
        // The directory may have been deleted (or replaced) while we run: make it again, as
        // at start, and drop descriptors that point into the old one.
        let dir_ok = fs::symlink_metadata(&self.dir).is_ok_and(|m| m.is_dir());
        let lock_gone = guard
            .as_ref()
            .is_some_and(|a| a.lock.metadata().map(|m| m.nlink() == 0).unwrap_or(true));
        if !dir_ok || lock_gone {
            *guard = None;
            if !dir_ok {
                make_dir(&self.dir)?;
            }
        }
        if guard.is_none() {
            let lock = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(self.path(LOCK))?;
            *guard = Some(Active { lock, file: None });
        }
        let active = guard.as_mut().ok_or_else(|| io::Error::other("no lock"))?;
        flock(&active.lock, libc::LOCK_EX)?;
        let r = f(active);
        let _ = flock(&active.lock, libc::LOCK_UN);
        r
    }

    /// Appends whole lines (each must end with `\n`), in writes of at most the rotation size
    /// (a longer single line is written alone), rotating and enforcing the total cap first.
    /// The cap applies per segment: the oldest segments go, never part of one.
    pub fn append(&self, data: &[u8], lines: u64) -> io::Result<Appended> {
        if data.is_empty() {
            return Ok(Appended::default());
        }
        let r = self.locked(|a| self.append_locked(a, data, lines));
        debug_assert!(r
            .as_ref()
            .map_or(true, |a| a.error.is_some() || a.lines == lines));
        r
    }

    /// [`DiskBuffer::append`] with the lock held; `lines` is the number of lines in `data`.
    fn append_locked(&self, a: &mut Active, data: &[u8], lines: u64) -> io::Result<Appended> {
        let active_path = self.path(ACTIVE);
        // Another process may have claimed (renamed) the file we hold: reopen if so.
        let current = fs::symlink_metadata(&active_path).ok();
        let stale = match (&a.file, &current) {
            (Some(f), Some(m)) => {
                let fm = f.metadata()?;
                fm.ino() != m.ino() || fm.dev() != m.dev()
            }
            _ => true,
        };
        if stale {
            a.file = None;
        }
        let mut size = current.as_ref().map(|m| m.len()).unwrap_or(0);
        if size > 0 {
            // A writer killed in the middle of a line (this library or the Python client) left
            // it torn: end it, so that it is set aside alone as corrupt and does not swallow
            // the first line written now.
            if a.file.is_none() {
                a.file = Some(open_append(&active_path)?);
            }
            if let Some(f) = a.file.as_mut() {
                let mut last = [0u8; 1];
                std::os::unix::fs::FileExt::read_exact_at(f, &mut last, size - 1)?;
                if last[0] != b'\n' {
                    f.write_all(b"\n")?;
                    size += 1;
                }
            }
        }
        let mut out = Appended::default();
        // The usual write (a spill step) fits in one file: one write of `lines` lines, with no
        // pass over the bytes (splitting at line ends byte by byte took a third of the spill
        // thread's CPU in a burst).
        let runs = if data.len() as u64 <= self.max_file {
            vec![data]
        } else {
            chunks(data, self.max_file as usize)
        };
        let one = runs.len() == 1;
        for chunk in runs {
            let chunk_lines = if one {
                lines
            } else {
                chunk.iter().filter(|&&b| b == b'\n').count() as u64
            };
            if let Err(e) = self.write_chunk(a, chunk, &mut size, &mut out) {
                out.error = Some(e);
                return Ok(out);
            }
            out.lines += chunk_lines;
            // Set under the lock, as `claim` clears it under the lock: a claim that found
            // nothing can never clear the flag after these lines were written.
            self.maybe_backlog.store(true, Ordering::Release);
        }
        Ok(out)
    }

    /// The journal of a FATAL entry's copies of requests in flight (made on first use).
    pub fn fatal_journal(&self) -> &Journal {
        self.fatal_journal.get_or_init(|| Journal::new(&self.dir))
    }

    /// The journal of durable mode, if this buffer has one.
    pub fn journal(&self) -> Option<&Journal> {
        self.journal.as_ref()
    }

    /// Moves the unsettled records of orphaned journal segments (left by a process that died,
    /// this service's only) into `buffer.jsonl`, then deletes the segments. Returns what was
    /// appended, summed.
    pub fn recover_journals(&self) -> io::Result<Appended> {
        self.recover_journals_while(|| true).map(|(a, _)| a)
    }

    /// [`DiskBuffer::recover_journals`] one segment at a time (each under the lock, and alone
    /// in memory), asking `go` before each after the first. The second value: whether any may
    /// be left (stopped by `go`, or by an error, which is in the first).
    pub fn recover_journals_while(
        &self,
        mut go: impl FnMut() -> bool,
    ) -> io::Result<(Appended, bool)> {
        let mut total = Appended::default();
        loop {
            let step = self.locked(|a| {
                let Some(o) = journal::next_orphan(&self.dir)? else {
                    return Ok(None);
                };
                let mut data = Vec::with_capacity(o.data.len() / 2 * 3);
                let mut lines = 0;
                let mut maker = crate::record::BodyMaker::default();
                for rec in journal::records(&o.data) {
                    // A body, or a durable entry's raw fields to build one from; anything else
                    // is not ours and is left out.
                    if let Some(body) = maker.body(rec, &self.service) {
                        data.extend_from_slice(body);
                        data.push(b'\n');
                        lines += 1;
                    }
                }
                let got = self.append_locked(a, &data, lines)?;
                if got.error.is_none() {
                    fs::remove_file(&o.path)?;
                }
                Ok(Some(got))
            })?;
            let Some(got) = step else {
                return Ok((total, false));
            };
            total.lines += got.lines;
            total.dropped_for_cap += got.dropped_for_cap;
            if got.error.is_some() {
                total.error = got.error;
                return Ok((total, true));
            }
            if !go() {
                return Ok((total, true));
            }
        }
    }

    /// Writes one chunk of whole lines, rotating and capping first. On failure nothing of the
    /// chunk stays in the file (a short write is cut back), so no line is torn or doubled.
    fn write_chunk(
        &self,
        a: &mut Active,
        chunk: &[u8],
        size: &mut u64,
        out: &mut Appended,
    ) -> io::Result<()> {
        let active_path = self.path(ACTIVE);
        let n = chunk.len() as u64;
        if *size > 0 && *size + n > self.max_file {
            a.file = None;
            fs::rename(&active_path, self.path(&rotated_name()))?;
            *size = 0;
        }
        if *size + n > self.max_file || *size == 0 {
            out.dropped_for_cap += self.enforce_cap(n)?;
        }
        if a.file.is_none() {
            a.file = Some(open_append(&active_path)?);
        }
        let f = a.file.as_mut().ok_or_else(|| io::Error::other("no file"))?;
        let before = f.metadata()?.len();
        if let Err(e) = f.write_all(chunk) {
            let _ = f.set_len(before);
            a.file = None;
            return Err(e);
        }
        *size = before + n;
        Ok(())
    }

    /// Segments of the backlog, oldest first: (name, size, mtime).
    fn segments(&self) -> io::Result<Vec<(String, u64, SystemTime)>> {
        let mut v = Vec::new();
        for e in fs::read_dir(&self.dir)? {
            let e = e?;
            let name = e.file_name().to_string_lossy().into_owned();
            if (name.starts_with(ROTATED) || name.starts_with(SENDING)) && name.ends_with(".jsonl")
            {
                if let Ok(m) = e.metadata() {
                    v.push((
                        name,
                        m.len(),
                        m.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                    ));
                }
            }
        }
        // Claimed files first (their lines are the oldest), then rotated segments; the UTC
        // stamp in the name orders each kind by time.
        v.sort_by(|a, b| {
            (!a.0.starts_with(SENDING), stamp_of(&a.0))
                .cmp(&(!b.0.starts_with(SENDING), stamp_of(&b.0)))
        });
        Ok(v)
    }

    /// Deletes the oldest segments (claimed files no live drain holds, then rotated ones) until
    /// `incoming` more bytes fit under the cap. Returns the number of lines deleted. Called
    /// with the lock held.
    fn enforce_cap(&self, incoming: u64) -> io::Result<u64> {
        let segs = self.segments()?;
        let active = fs::metadata(self.path(ACTIVE))
            .map(|m| m.len())
            .unwrap_or(0);
        let mut total: u64 = segs.iter().map(|s| s.1).sum::<u64>() + active;
        let mut dropped = 0;
        for (name, size, _) in &segs {
            if total + incoming <= self.max_total {
                break;
            }
            let p = self.path(name);
            if name.starts_with(SENDING) {
                let free = OpenOptions::new()
                    .read(true)
                    .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                    .open(&p)
                    .map(|f| flock(&f, libc::LOCK_EX | libc::LOCK_NB).is_ok())
                    .unwrap_or(false);
                if !free {
                    continue; // a drain is sending it right now
                }
            }
            dropped += count_lines(&p);
            fs::remove_file(&p)?;
            let _ = fs::remove_file(progress_path(&p));
            total -= size;
        }
        Ok(dropped)
    }

    /// Whether there may be lines to replay. Cheap: a flag set by appends, cleared by a claim
    /// that found nothing.
    pub fn maybe_backlog(&self) -> bool {
        self.maybe_backlog.load(Ordering::Acquire)
            || self.raw_pending.load(Ordering::Acquire)
            || self.taken.load(Ordering::Acquire) > 0
    }

    /// The journal the spill thread writes the overflow's raw records to.
    pub fn overflow(&self) -> std::sync::MutexGuard<'_, journal::Appender> {
        self.overflow.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Raw records went into [`DiskBuffer::overflow`] (before they count as on disk).
    pub fn mark_raw(&self) {
        self.raw_pending.store(true, Ordering::Release);
    }

    /// Whether raw records are waiting to be moved into `buffer.jsonl`.
    pub fn raw_pending(&self) -> bool {
        self.raw_pending.load(Ordering::Acquire)
    }

    /// Seals the overflow's segment and moves the orphaned segments (ours among them) into
    /// `buffer.jsonl`, one at a time while `go()`. Called only by the thread that writes the
    /// overflow, so nothing is written to it meanwhile; the raw records stay pending until
    /// every segment is moved.
    pub fn settle_raw(&self, go: impl FnMut() -> bool) -> io::Result<Appended> {
        self.overflow().seal();
        let (a, more) = self.recover_journals_while(go)?;
        if !more {
            self.raw_pending.store(false, Ordering::Release);
        }
        Ok(a)
    }

    /// Seals the overflow's segment, leaving the segments to the replay
    /// ([`DiskBuffer::take_segment`]); the raw records stop being pending once none is left
    /// waiting. Called only by the thread that writes the overflow (as
    /// [`DiskBuffer::settle_raw`]).
    pub fn seal_raw(&self) -> io::Result<()> {
        self.overflow().seal();
        let waiting = self.locked(|_| journal::has_orphans(&self.dir))?;
        if !waiting {
            self.raw_pending.store(false, Ordering::Release);
        }
        Ok(())
    }

    /// Takes the next orphaned segment (a sealed overflow segment, a dead process's journal)
    /// to be replayed as it is; give it back with [`DiskBuffer::finish_segment`].
    pub fn take_segment(&self) -> io::Result<Option<journal::Taken>> {
        self.locked(|_| {
            let t = journal::take_orphan(&self.dir)?;
            if t.is_some() {
                self.taken.fetch_add(1, Ordering::AcqRel);
            }
            Ok(t)
        })
    }

    /// Ends the replay of a taken segment: deleted when all of it was settled, else left for
    /// recovery, and pending again.
    pub fn finish_segment(&self, t: journal::Taken) {
        if t.finish() {
            self.raw_pending.store(true, Ordering::Release);
        }
        self.taken.fetch_sub(1, Ordering::AcqRel);
    }

    /// Marks the buffer as possibly holding lines (at start, or after a failed replay).
    pub fn mark_backlog(&self) {
        self.maybe_backlog.store(true, Ordering::Release);
    }

    /// Claims the oldest file to replay: an orphaned claimed file, then the oldest rotated
    /// segment, then `buffer.jsonl`. `None` when there is nothing to replay.
    pub fn claim(&self) -> io::Result<Option<Claimed>> {
        self.locked(|a| {
            let now = SystemTime::now();
            for (name, size, mtime) in self.segments()? {
                let p = self.path(&name);
                if name.starts_with(SENDING) {
                    let ours = name.contains("-rarch");
                    let old = now.duration_since(mtime).unwrap_or_default() > FOREIGN_CLAIM_AGE;
                    if !(ours || old) {
                        continue;
                    }
                    let f = match OpenOptions::new()
                        .read(true)
                        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                        .open(&p)
                    {
                        Ok(f) => f,
                        Err(_) => continue,
                    };
                    if flock(&f, libc::LOCK_EX | libc::LOCK_NB).is_err() {
                        continue; // a live drain has it
                    }
                    if size == 0 {
                        let _ = fs::remove_file(&p);
                        continue;
                    }
                    return Ok(Some(Claimed {
                        path: p,
                        file: f,
                        origin: None,
                    }));
                }
                return self.claim_by_rename(&p).map(Some);
            }
            let active = self.path(ACTIVE);
            match fs::symlink_metadata(&active) {
                Ok(m) if m.len() > 0 && m.is_file() => {
                    a.file = None;
                    self.claim_by_rename(&active).map(Some)
                }
                _ => {
                    self.maybe_backlog.store(false, Ordering::Release);
                    Ok(None)
                }
            }
        })
    }

    fn claim_by_rename(&self, from: &Path) -> io::Result<Claimed> {
        let to = self.path(&format!(
            "{SENDING}{}-rarch{}.jsonl",
            utc_stamp(),
            std::process::id()
        ));
        fs::rename(from, &to)?;
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&to)?;
        flock(&file, libc::LOCK_EX)?;
        Ok(Claimed {
            path: to,
            file,
            origin: Some(from.to_path_buf()),
        })
    }

    /// Ends a replay. All lines sent: the file goes. Otherwise the unsent lines go back where
    /// they came from, ahead of anything appended since: a failed attempt (such as an outage
    /// probe) leaves the buffer as it was, in the files the Python client reads too. An adopted
    /// claimed file keeps only its unsent lines. All of it happens under the buffer lock, so no
    /// other drain can claim these lines half-way.
    pub fn release(&self, claimed: Claimed, unsent: &[Vec<u8>]) -> io::Result<()> {
        let mark = claimed.progress_path();
        if unsent.is_empty() {
            fs::remove_file(&claimed.path)?;
            let _ = fs::remove_file(&mark);
            return Ok(());
        }
        let mut data = Vec::with_capacity(unsent.iter().map(|l| l.len() + 1).sum());
        for l in unsent {
            data.extend_from_slice(l);
            data.push(b'\n');
        }
        let active = self.path(ACTIVE);
        self.locked(|a| {
            let target = claimed
                .origin
                .clone()
                .unwrap_or_else(|| claimed.path.clone());
            if target == active {
                // Lines appended since the claim go after the unsent ones.
                if let Ok(newer) = fs::read(&active) {
                    data.extend_from_slice(&newer);
                }
                a.file = None;
            }
            let tmp = claimed.path.with_extension("jsonl.tmp");
            let _ = fs::remove_file(&tmp);
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(&tmp)?;
            if let Err(e) =
                f.write_all(&data)
                    .and_then(|_| if self.durable { f.sync_data() } else { Ok(()) })
            {
                // The claimed file and its mark stay as they are: a later drain adopts them.
                let _ = fs::remove_file(&tmp);
                return Err(e);
            }
            if target == claimed.path {
                // The file is rewritten with only its unsent lines: its progress mark goes
                // first (a stale mark beside the new content would skip unsent lines; a crash
                // in between only sends lines again).
                match fs::remove_file(&mark) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                    _ => {}
                }
            }
            fs::rename(&tmp, &target)?;
            if target != claimed.path {
                fs::remove_file(&claimed.path)?;
                let _ = fs::remove_file(&mark);
            }
            Ok(())
        })?;
        drop(claimed);
        Ok(())
    }

    /// Appends one record to a side file (dead letters, corrupt lines), under the buffer lock:
    /// [`DiskBuffer::requeue_dead_letters`] rewrites the dead letters under it.
    pub fn side(&self, name: &str, line: &[u8]) -> io::Result<()> {
        let mut data = Vec::with_capacity(line.len() + 1);
        data.extend_from_slice(line);
        data.push(b'\n');
        self.locked(|_| open_append(&self.path(name))?.write_all(&data))
    }

    /// Moves the dead letters that `pick` chooses (given each record of
    /// `buffer.rejected.jsonl`) back into the backlog, their strikes (`retry_count`) reset,
    /// and removes them from the dead letters. Returns how many were moved.
    ///
    /// Under the buffer lock, in steps a crash can stop anywhere without losing or doubling
    /// an entry: the dead letters that stay are written to `buffer.rejected.jsonl.requeue`,
    /// then the entries to [`REQUEUE_PENDING`], both synced; renaming the first over
    /// `buffer.rejected.jsonl` is the commit; then the second becomes a rotated segment.
    /// [`DiskBuffer::finish_requeue`] (run first) undoes a requeue stopped before its commit
    /// and completes one stopped after it.
    pub fn requeue_dead_letters(
        &self,
        mut pick: impl FnMut(&serde_json::Value) -> bool,
    ) -> io::Result<usize> {
        self.locked(|_| {
            self.finish_requeue_locked()?;
            let all = match fs::read(self.path(REJECTED)) {
                Ok(d) => d,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
                Err(e) => return Err(e),
            };
            let (mut back, mut keep, mut n) = (Vec::new(), Vec::new(), 0);
            for line in all.split(|&b| b == b'\n') {
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                let chosen = serde_json::from_slice::<serde_json::Value>(line)
                    .ok()
                    .filter(|r| pick(r))
                    .and_then(|_| dead_letter_entry(line));
                match chosen {
                    Some(entry) => {
                        back.extend_from_slice(&entry);
                        back.push(b'\n');
                        n += 1;
                    }
                    None => {
                        keep.extend_from_slice(line);
                        keep.push(b'\n');
                    }
                }
            }
            if n == 0 {
                return Ok(0);
            }
            write_synced(&self.path(REQUEUE_KEPT), &keep)?;
            write_synced(&self.path(REQUEUE_PENDING), &back)?;
            fs::rename(self.path(REQUEUE_KEPT), self.path(REJECTED))?;
            self.finish_requeue_locked()?;
            Ok(n)
        })
    }

    /// Ends a requeue that stopped half-way (see [`DiskBuffer::requeue_dead_letters`]).
    pub fn finish_requeue(&self) -> io::Result<()> {
        self.locked(|_| self.finish_requeue_locked())
    }

    fn finish_requeue_locked(&self) -> io::Result<()> {
        let pending = self.path(REQUEUE_PENDING);
        let kept = self.path(REQUEUE_KEPT);
        if fs::symlink_metadata(&kept).is_ok() {
            // Stopped before the commit: the dead letters are as they were.
            match fs::remove_file(&pending) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
            return fs::remove_file(&kept);
        }
        if fs::symlink_metadata(&pending).is_ok() {
            fs::rename(&pending, self.path(&rotated_name()))?;
            File::open(&self.dir)?.sync_all()?;
            self.maybe_backlog.store(true, Ordering::Release);
        }
        Ok(())
    }
}

/// The `entry` of a dead-letter record, one line, without its strikes (`retry_count`).
fn dead_letter_entry(record: &[u8]) -> Option<Vec<u8>> {
    #[derive(serde::Deserialize)]
    struct Rec<'a> {
        #[serde(borrow)]
        entry: &'a serde_json::value::RawValue,
    }
    let raw = serde_json::from_slice::<Rec<'_>>(record).ok()?.entry.get();
    let mut m: serde_json::Map<String, serde_json::Value> = serde_json::from_str(raw).ok()?;
    if m.remove("retry_count").is_none() {
        return Some(raw.as_bytes().to_vec());
    }
    serde_json::to_vec(&m).ok()
}

/// Writes a new file (0600) with `data` and syncs it.
fn write_synced(path: &Path, data: &[u8]) -> io::Result<()> {
    let _ = fs::remove_file(path);
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)?;
    f.write_all(data)?;
    f.sync_all()
}

fn stamp_of(name: &str) -> &str {
    name.strip_prefix(ROTATED)
        .or_else(|| name.strip_prefix(SENDING))
        .unwrap_or(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_skip_blank_ones_and_drop_line_ends() {
        let l = Lines::new(b"{\"a\":1}\r\n\n  \r\n{\"b\":2}\n\t\n{\"c\"".to_vec());
        let got: Vec<&[u8]> = (0..l.len()).map(|i| &l[i]).collect();
        assert_eq!(got, vec![&b"{\"a\":1}"[..], b"{\"b\":2}", b"{\"c\""]);
        let l = Lines::new(b"x\n".to_vec());
        assert_eq!((l.len(), &l[0]), (1, &b"x"[..]));
        assert!(Lines::new(Vec::new()).is_empty());
        assert!(Lines::new(b"\n\r\n".to_vec()).is_empty());
    }

    #[test]
    fn windows_give_the_lines_of_the_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut text = Vec::new();
        for i in 0..300 {
            let line = match i % 7 {
                0 => String::new(),
                1 => format!("{{\"n\":{i}}}\r"),
                2 => format!("{{\"long\":\"{}\"}}", "x".repeat(9000 + i)),
                _ => format!("{{\"n\":{i},\"pad\":\"{}\"}}", "y".repeat(i)),
            };
            text.extend_from_slice(line.as_bytes());
            text.push(b'\n');
        }
        for end in [&b""[..], b"{\"torn\":", b"  \n\n", b"{\"last\":1}\n"] {
            let mut data = text.clone();
            data.extend_from_slice(end);
            let path = dir.path().join("claimed.jsonl");
            fs::write(&path, &data).unwrap();
            let whole = Lines::new(data.clone());
            let want: Vec<&[u8]> = (0..whole.len()).map(|i| &whole[i]).collect();
            for bytes in [1, 100, 4096, 10_000, 1 << 20] {
                let claimed = Claimed {
                    path: path.clone(),
                    file: File::open(&path).unwrap(),
                    origin: None,
                };
                let mut windows = claimed.windows(bytes).unwrap();
                let mut got = Vec::new();
                while let Some(w) = windows.next_window().unwrap() {
                    got.extend((0..w.len()).map(|i| w[i].to_vec()));
                }
                assert_eq!(got, want, "windows of {bytes} bytes, ending {end:?}");
            }
        }
    }

    #[test]
    fn chunks_keep_lines_whole() {
        let data = b"aaaa\nbb\ncccccccc\nd\n";
        let c = chunks(data, 8);
        assert_eq!(c, vec![&b"aaaa\nbb\n"[..], b"cccccccc\n", b"d\n"]);
        assert_eq!(c.concat(), data);
        assert_eq!(chunks(b"x\n", 100), vec![&b"x\n"[..]]);
    }

    #[test]
    fn raw_segments_are_moved_one_at_a_time_and_stay_pending_until_all_are() {
        let dir = tempfile::tempdir().unwrap();
        let b = DiskBuffer::open(dir.path(), "svc", 1 << 20, 1 << 30, false).unwrap();
        // Three sealed segments of bodies (the journal's records may be bodies as they are),
        // and a fourth still being written.
        for i in 0..4 {
            let body = format!("{{\"n\":{i}}}").into_bytes();
            b.mark_raw();
            let mut ov = b.overflow();
            ov.push(body.len(), |out| out.copy_from_slice(&body));
            ov.write_out().unwrap();
            if i < 3 {
                ov.seal();
            }
        }
        let lines = || {
            fs::read(b.path(ACTIVE))
                .map(|d| d.iter().filter(|&&c| c == b'\n').count())
                .unwrap_or(0)
        };
        // Stopped after the first segment: the rest stay pending.
        let a = b.settle_raw(|| false).unwrap();
        assert_eq!((a.lines, lines()), (1, 1));
        assert!(b.raw_pending() && b.maybe_backlog());
        // Then every segment, the one being written sealed first.
        let a = b.settle_raw(|| true).unwrap();
        assert_eq!((a.lines, lines()), (3, 4));
        assert!(!b.raw_pending());
        let left: Vec<String> = fs::read_dir(dir.path().join("svc"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(journal::PREFIX))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    fn an_append_ends_a_torn_last_line_first() {
        let dir = tempfile::tempdir().unwrap();
        let b = DiskBuffer::open(dir.path(), "svc", 1 << 20, 1 << 30, false).unwrap();
        fs::write(b.path(ACTIVE), b"{\"torn\":").unwrap();
        b.append(b"{\"a\":1}\n", 1).unwrap();
        b.append(b"{\"b\":2}\n", 1).unwrap();
        assert_eq!(
            fs::read(b.path(ACTIVE)).unwrap(),
            b"{\"torn\":\n{\"a\":1}\n{\"b\":2}\n"
        );
    }

    #[test]
    fn an_append_counts_its_lines_in_one_file_or_across_rotations() {
        let dir = tempfile::tempdir().unwrap();
        let b = DiskBuffer::open(dir.path(), "svc", 32, 1 << 30, false).unwrap();
        // Fits in one file: written whole, the count as given.
        let a = b.append(b"{\"a\":1}\n{\"b\":2}\n", 2).unwrap();
        assert_eq!((a.lines, a.error.is_none()), (2, true));
        // Longer than a file: split at line ends over rotations, each run's lines counted.
        let long: Vec<u8> = (0..10)
            .flat_map(|i| format!("{{\"n\":{i}}}\n").into_bytes())
            .collect();
        let a = b.append(&long, 10).unwrap();
        assert_eq!(a.lines, 10);
        let mut all = Vec::new();
        for (name, _, _) in b.segments().unwrap() {
            all.extend(fs::read(b.dir().join(name)).unwrap());
        }
        all.extend(fs::read(b.path(ACTIVE)).unwrap());
        assert_eq!(all.iter().filter(|&&c| c == b'\n').count(), 12);
        assert!(b.segments().unwrap().len() >= 2);
    }

    #[test]
    fn a_requeue_moves_the_chosen_dead_letters_once_even_when_stopped_half_way() {
        let dir = tempfile::tempdir().unwrap();
        let b = DiskBuffer::open(dir.path(), "svc", 1 << 20, 1 << 30, false).unwrap();
        let rec = |status: u16, m: &str| {
            format!(
                r#"{{"status":{status},"reason":"r","attempts":3,"entry":{{"message":"{m}","retry_count":9}}}}"#
            )
        };
        let dead = format!("{}\n{}\n{}\n", rec(400, "a"), rec(422, "b"), rec(400, "c"));
        fs::write(b.path(REJECTED), &dead).unwrap();
        let backlog = || -> Vec<String> {
            let mut v = Vec::new();
            for (name, _, _) in b.segments().unwrap() {
                v.extend(
                    fs::read_to_string(b.path(&name))
                        .unwrap()
                        .lines()
                        .map(String::from),
                );
            }
            v
        };
        let status_400 = |r: &serde_json::Value| r["status"] == 400;
        // Stopped before the commit: undone, the dead letters as they were.
        fs::write(b.path(REQUEUE_KEPT), "x\n").unwrap();
        fs::write(b.path(REQUEUE_PENDING), "y\n").unwrap();
        b.finish_requeue().unwrap();
        assert!(backlog().is_empty());
        assert_eq!(fs::read_to_string(b.path(REJECTED)).unwrap(), dead);
        assert!(!b.path(REQUEUE_PENDING).exists() && !b.path(REQUEUE_KEPT).exists());
        // The whole requeue: the chosen ones in the backlog, strikes reset, the rest stay.
        assert_eq!(b.requeue_dead_letters(status_400).unwrap(), 2);
        assert_eq!(backlog(), vec![r#"{"message":"a"}"#, r#"{"message":"c"}"#]);
        assert_eq!(
            fs::read_to_string(b.path(REJECTED)).unwrap(),
            format!("{}\n", rec(422, "b"))
        );
        assert_eq!(b.requeue_dead_letters(status_400).unwrap(), 0);
        // Stopped after the commit: the next requeue completes it first.
        fs::write(b.path(REQUEUE_PENDING), "{\"message\":\"d\"}\n").unwrap();
        assert_eq!(b.requeue_dead_letters(|_| false).unwrap(), 0);
        assert_eq!(backlog().len(), 3);
        assert!(!b.path(REQUEUE_PENDING).exists());
    }

    #[test]
    fn service_names() {
        for bad in ["", ".", "..", ".hidden", "a/b", "a\\b", "a\0b", "a\nb"] {
            assert!(check_service_name(bad).is_err(), "{bad:?}");
        }
        for good in ["billing-service", "a.b", "ünï", "a..b"] {
            check_service_name(good).unwrap();
        }
    }
}
