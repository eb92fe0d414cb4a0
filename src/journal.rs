//! The crash journal of `durable=true`: every entry is copied into a memory-mapped file before
//! `rarch_log` returns, and marked settled once it is delivered, dead-lettered or in the buffer
//! file. The pages of a shared file mapping belong to the kernel's page cache, so what was
//! copied survives a `kill -9` or a crash of the host process (not a power loss: nothing is
//! fsynced). The next process that opens the service's buffer moves the records that were never
//! settled into `buffer.jsonl`, and they are replayed as usual.
//!
//! A journal is a series of segments, `buffer.journal-<pid>-<nonce>-<seq>.bin`, each a
//! preallocated file (so a full disk fails when a segment is made, never as a SIGBUS on a
//! write into the mapping) holding a header and then records:
//!
//! ```text
//! "RARCHJ01" | len: u32 LE | state: u8 | 3 bytes | body (len bytes) | padding to 8 | ...
//! ```
//!
//! `state` is 0 while the body is copied, [`COMMITTED`] once it is, [`SETTLED`] when it no longer
//! needs the journal. A length of zero ends the records. Space is reserved under a mutex that
//! also writes the length, so a record always follows a record with a valid length: a process
//! dies as a whole, and a reservation cut short can only be the last one.
//!
//! The owner holds a POSIX write lock (`fcntl`) on each live segment: those are released when
//! the process dies and are not inherited by a forked child, so a segment whose lock can be taken
//! by another process is an orphan. A segment retired with records that could not be settled
//! (the buffer file failed) is renamed `buffer.journal-left-...` so that any process, this one
//! included, recovers it.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

pub const PREFIX: &str = "buffer.journal-";
const LEFT: &str = "buffer.journal-left-";
const SUFFIX: &str = ".bin";
const MAGIC: &[u8; 8] = b"RARCHJ01";
const HEADER: usize = 8;
const RECORD_HEADER: usize = 8;
/// Size of one segment file.
pub const SEGMENT_BYTES: usize = 4 << 20;
/// The size past which an [`Appender`] starts a new segment: one segment's records (about
/// 2,500 typical entries) are moved into `buffer.jsonl` at a time, in 3–5 ms at the median,
/// and a caller that waits for the spill thread meanwhile waits for at most that.
const APPEND_SEGMENT_BYTES: usize = 1 << 20;

const WRITING: u8 = 0;
const COMMITTED: u8 = 1;
const SETTLED: u8 = 2;

/// A random number fixed for this process (and changed in a forked child by its pid), so that a
/// dead process whose pid was reused is never taken for this one.
fn nonce() -> u64 {
    static NONCE: AtomicU64 = AtomicU64::new(0);
    let n = NONCE.load(Ordering::Relaxed);
    if n != 0 {
        return n;
    }
    let fresh = crate::entry::with_rng(rand::Rng::random::<u64>) | 1;
    match NONCE.compare_exchange(0, fresh, Ordering::AcqRel, Ordering::Relaxed) {
        Ok(_) => fresh,
        Err(existing) => existing,
    }
}

/// The part of a segment name that marks this process's own live segments.
fn own_tag() -> String {
    format!("{PREFIX}{}-{:016x}-", std::process::id(), nonce())
}

/// Whether `name` is a journal segment of this process that is still in use.
fn is_own_live(name: &str) -> bool {
    name.starts_with(&own_tag())
}

/// One mapped segment file.
struct Segment {
    path: Mutex<PathBuf>,
    _file: File,
    base: *mut u8,
    len: usize,
    /// Records handed out and not yet released, plus one while the segment is current.
    live: AtomicUsize,
    /// Records committed and not yet settled.
    unsettled: AtomicUsize,
}

// SAFETY: the mapping is shared memory that lives as long as the segment; writers touch
// disjoint records (reserved under the journal mutex) and the state bytes through atomics.
unsafe impl Send for Segment {}
// SAFETY: as above.
unsafe impl Sync for Segment {}

impl Segment {
    fn create(dir: &Path, seq: u64) -> io::Result<Segment> {
        let path = dir.join(format!("{}{seq:08}{SUFFIX}", own_tag()));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)?;
        let fail = |e: io::Error| {
            let _ = fs::remove_file(&path);
            e
        };
        lock_posix(&file).map_err(fail)?;
        // SAFETY: a descriptor we own; posix_fallocate returns the error number.
        let r = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, SEGMENT_BYTES as libc::off_t) };
        if r != 0 {
            return Err(fail(io::Error::from_raw_os_error(r)));
        }
        // SAFETY: mapping a file we own, at least SEGMENT_BYTES long, shared and writable.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                SEGMENT_BYTES,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                file.as_raw_fd(),
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(fail(io::Error::last_os_error()));
        }
        let base = base as *mut u8;
        // Dirty every page now, so that no caller takes a write fault later.
        for page in (0..SEGMENT_BYTES).step_by(4096) {
            // SAFETY: inside the mapping; the file is zeroed, so this changes nothing.
            unsafe { std::ptr::write_volatile(base.add(page), 0) };
        }
        // SAFETY: the first HEADER bytes of the mapping.
        unsafe { std::ptr::copy_nonoverlapping(MAGIC.as_ptr(), base, HEADER) };
        Ok(Segment {
            path: Mutex::new(path),
            _file: file,
            base,
            len: SEGMENT_BYTES,
            live: AtomicUsize::new(1),
            unsettled: AtomicUsize::new(0),
        })
    }

    fn state(&self, off: usize) -> &AtomicU8 {
        // SAFETY: `off` is the start of a record reserved in this mapping; its state byte is
        // only accessed atomically.
        unsafe { AtomicU8::from_ptr(self.base.add(off + 4)) }
    }

    /// Drops one reference; the last one ends the segment: deleted when every record was
    /// settled, otherwise renamed for recovery.
    fn release(&self) {
        if self.live.fetch_sub(1, Ordering::AcqRel) != 1 {
            return;
        }
        let path = self.path.lock().unwrap_or_else(|p| p.into_inner());
        if self.unsettled.load(Ordering::Acquire) == 0 {
            let _ = fs::remove_file(&*path);
        } else if let Some(name) = path.file_name().and_then(|n| n.to_str()) {
            let left = name.replacen(PREFIX, LEFT, 1);
            let _ = fs::rename(&*path, path.with_file_name(left));
        }
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        // SAFETY: unmapping our own mapping; no record of it is referenced any more.
        unsafe {
            libc::munmap(self.base as *mut libc::c_void, self.len);
        }
    }
}

/// A journaled entry. [`Ticket::settle`] once it is delivered or otherwise safe; a ticket
/// dropped unsettled leaves the entry to be recovered from the journal.
pub struct Ticket {
    seg: Arc<Segment>,
    off: usize,
}

impl Ticket {
    pub fn settle(self) {
        if self.seg.state(self.off).swap(SETTLED, Ordering::AcqRel) == COMMITTED {
            self.seg.unsettled.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.seg.release();
    }
}

struct Current {
    seg: Option<Arc<Segment>>,
    off: usize,
}

/// The journal of one service directory in this process.
pub struct Journal {
    dir: PathBuf,
    cur: Mutex<Current>,
    /// The next segment, made ahead of time by a background thread ([`Journal::prepare`]),
    /// so that a caller rarely pays for making one (a few milliseconds).
    spare: Mutex<Option<Segment>>,
    spare_wanted: AtomicBool,
    seq: AtomicU64,
}

impl Journal {
    pub fn new(dir: &Path) -> Journal {
        Journal {
            dir: dir.to_owned(),
            cur: Mutex::new(Current { seg: None, off: 0 }),
            spare: Mutex::new(None),
            spare_wanted: AtomicBool::new(true),
            seq: AtomicU64::new(0),
        }
    }

    fn make_segment(&self) -> io::Result<Segment> {
        Segment::create(&self.dir, self.seq.fetch_add(1, Ordering::Relaxed))
    }

    /// Whether a spare segment should be made ([`Journal::prepare`]).
    pub fn spare_wanted(&self) -> bool {
        self.spare_wanted.load(Ordering::Acquire)
    }

    /// Makes the spare segment if there is none (from a background thread).
    pub fn prepare(&self) -> io::Result<()> {
        self.spare_wanted.store(false, Ordering::Release);
        if self
            .spare
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
        {
            return Ok(());
        }
        let seg = self.make_segment()?;
        let mut spare = self.spare.lock().unwrap_or_else(|p| p.into_inner());
        if spare.is_none() {
            *spare = Some(seg);
        } else {
            seg.release();
        }
        Ok(())
    }

    /// Whether a body of `len` bytes goes through the journal (larger ones are written to the
    /// buffer file directly).
    pub fn fits(len: usize) -> bool {
        RECORD_HEADER + len <= SEGMENT_BYTES / 4
    }

    /// Copies `body` into the journal. Errors when a new segment cannot be made. The second
    /// value is true when a spare segment should now be made ([`Journal::prepare`]).
    pub fn write(&self, body: &[u8]) -> io::Result<(Ticket, bool)> {
        self.write_with(body.len(), |out| out.copy_from_slice(body))
    }

    /// [`Journal::write`] of a record of `len` bytes that `fill` writes in place.
    pub fn write_with(
        &self,
        len: usize,
        fill: impl FnOnce(&mut [u8]),
    ) -> io::Result<(Ticket, bool)> {
        let need = (RECORD_HEADER + len + 7) & !7;
        let mut want_spare = false;
        let (seg, off) = {
            let mut cur = self.cur.lock().unwrap_or_else(|p| p.into_inner());
            let full = cur.seg.as_ref().is_none_or(|s| cur.off + need > s.len);
            if full {
                let spare = self.spare.lock().unwrap_or_else(|p| p.into_inner()).take();
                let fresh = Arc::new(match spare {
                    Some(s) => s,
                    None => self.make_segment()?,
                });
                want_spare = !self.spare_wanted.swap(true, Ordering::AcqRel);
                if let Some(old) = cur.seg.replace(fresh) {
                    old.release();
                }
                cur.off = HEADER;
            }
            let off = cur.off;
            cur.off += need;
            let seg = match &cur.seg {
                Some(s) => s.clone(),
                None => return Err(io::Error::other("no journal segment")),
            };
            // SAFETY: [off, off + need) is inside the mapping and reserved for us alone.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    (len as u32).to_le_bytes().as_ptr(),
                    seg.base.add(off),
                    4,
                );
            }
            seg.state(off).store(WRITING, Ordering::Relaxed);
            seg.live.fetch_add(1, Ordering::AcqRel);
            seg.unsettled.fetch_add(1, Ordering::AcqRel);
            (seg, off)
        };
        // SAFETY: as above: the record's bytes are ours alone until it is committed.
        fill(unsafe { std::slice::from_raw_parts_mut(seg.base.add(off + RECORD_HEADER), len) });
        seg.state(off).store(COMMITTED, Ordering::Release);
        Ok((Ticket { seg, off }, want_spare))
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        let mut cur = self.cur.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = cur.seg.take() {
            s.release();
        }
        if let Some(s) = self.spare.lock().unwrap_or_else(|p| p.into_inner()).take() {
            s.release();
        }
    }
}

/// Segments in the journal's format written with `write(2)`, not through a mapping: the
/// spill thread's raw overflow (`Shared::spill_lanes`). Records are gathered in memory and
/// written a step at a time, so a record costs a copy and a step one system call. Through a
/// preallocated mapping (as [`Journal`]) each 4 KiB page is read in when the mapping is
/// populated and takes a write fault when first dirtied: in a traced burst of 100,000 entries
/// the spill thread used 62 ms of CPU that way, 38 ms with `write(2)`.
///
/// Each segment is a live journal segment of this process while it is written (its name, its
/// POSIX lock): a process that dies leaves it to the next one's recovery, as a journal. Sealed,
/// it is renamed `buffer.journal-left-...`, which any process recovers.
pub struct Appender {
    dir: PathBuf,
    tag: &'static str,
    seq: u64,
    cur: Option<(File, PathBuf, usize)>,
    buf: Vec<u8>,
    /// Records in `buf`.
    count: usize,
}

impl Appender {
    pub fn new(dir: &Path, tag: &'static str) -> Appender {
        Appender {
            dir: dir.to_owned(),
            tag,
            seq: 0,
            cur: None,
            buf: Vec::new(),
            count: 0,
        }
    }

    /// Adds a committed record of `len` bytes, written by `fill`, to the next write.
    pub fn push(&mut self, len: usize, fill: impl FnOnce(&mut [u8])) {
        let need = (RECORD_HEADER + len + 7) & !7;
        let at = self.buf.len();
        self.buf.resize(at + need, 0);
        self.buf[at..at + 4].copy_from_slice(&(len as u32).to_le_bytes());
        self.buf[at + 4] = COMMITTED;
        fill(&mut self.buf[at + RECORD_HEADER..at + RECORD_HEADER + len]);
        self.count += 1;
    }

    /// Records pushed since the last write.
    pub fn count(&self) -> usize {
        self.count
    }

    /// The records pushed since the last write, as they are (for a caller whose write failed).
    pub fn pending(&self) -> Vec<&[u8]> {
        committed(&self.buf, 0)
    }

    /// Writes what was pushed to the current segment (sealing it first when it would pass
    /// [`APPEND_SEGMENT_BYTES`], making one when there is none). On an error nothing of it stays in
    /// the file, and the records are still pending (the caller takes them, then [`clear`]s).
    ///
    /// [`clear`]: Appender::clear
    pub fn write_out(&mut self) -> io::Result<()> {
        use std::io::Write;
        if self.buf.is_empty() {
            return Ok(());
        }
        if self
            .cur
            .as_ref()
            .is_some_and(|c| c.2 > HEADER && c.2 + self.buf.len() > APPEND_SEGMENT_BYTES)
        {
            self.seal();
        }
        if self.cur.is_none() {
            self.cur = Some(self.create()?);
        }
        let Some((f, _, size)) = self.cur.as_mut() else {
            return Err(io::Error::other("no segment"));
        };
        if let Err(e) = f.write_all(&self.buf) {
            let _ = f.set_len(*size as u64);
            return Err(e);
        }
        *size += self.buf.len();
        self.clear();
        Ok(())
    }

    /// Forgets the records pushed since the last write.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.count = 0;
    }

    fn create(&mut self) -> io::Result<(File, PathBuf, usize)> {
        use std::io::Write;
        let path = self
            .dir
            .join(format!("{}{}{:08}{SUFFIX}", own_tag(), self.tag, self.seq));
        self.seq += 1;
        // O_APPEND: after a failed write is cut back (`set_len`), the next one starts where
        // the records end, not at the offset the failed one reached (a hole of zeros would
        // end the records there for the recovery).
        let mut file = OpenOptions::new()
            .append(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)?;
        let made = lock_posix(&file).and_then(|()| file.write_all(MAGIC));
        if let Err(e) = made {
            let _ = fs::remove_file(&path);
            return Err(e);
        }
        Ok((file, path, HEADER))
    }

    /// Ends the current segment: renamed for recovery (`buffer.journal-left-...`) if it has
    /// records, deleted otherwise. Whether there was one with records.
    pub fn seal(&mut self) -> bool {
        let Some((file, path, size)) = self.cur.take() else {
            return false;
        };
        if size <= HEADER {
            let _ = fs::remove_file(&path);
            return false;
        }
        if let Some(name) = path.file_name().and_then(|n| n.to_str()) {
            let left = name.replacen(PREFIX, LEFT, 1);
            let _ = fs::rename(&path, path.with_file_name(left));
        }
        drop(file);
        true
    }
}

impl Drop for Appender {
    fn drop(&mut self) {
        let _ = self.write_out();
        self.seal();
    }
}

/// The committed, unsettled bodies of a segment file's contents.
pub fn records(data: &[u8]) -> Vec<&[u8]> {
    if data.len() < HEADER || &data[..HEADER] != MAGIC {
        return Vec::new();
    }
    committed(data, HEADER)
}

/// The committed records of `data` from `off` on, up to a zero length or a torn record.
fn committed(data: &[u8], off: usize) -> Vec<&[u8]> {
    committed_at(data, off)
        .into_iter()
        .map(|(_, r)| r)
        .collect()
}

/// The committed records of `data` from `off` on, as (offset of the record's header, body).
fn committed_at(data: &[u8], mut off: usize) -> Vec<(usize, &[u8])> {
    let mut out = Vec::new();
    while off + RECORD_HEADER <= data.len() {
        let len =
            u32::from_le_bytes([data[off], data[off + 1], data[off + 2], data[off + 3]]) as usize;
        let end = off + RECORD_HEADER + len;
        if len == 0 || end > data.len() {
            break;
        }
        if data[off + 4] == COMMITTED {
            out.push((off, &data[off + RECORD_HEADER..end]));
        }
        off = (end + 7) & !7;
    }
    out
}

/// An orphaned segment taken by this process to be replayed as it is, rather than moved into
/// `buffer.jsonl` first (which writes and reads every entry once more). It is renamed as a
/// live segment of this process, so that neither this process's recovery nor another's takes
/// it while its POSIX lock is held, and mapped, so that each record is marked settled in the
/// file when its entry is: a process that dies meanwhile leaves only the others to the next
/// recovery. Dropped, it is deleted when every record is settled, else renamed for recovery
/// (`buffer.journal-left-...`).
pub struct Taken {
    path: PathBuf,
    _file: File,
    base: *mut u8,
    len: usize,
    ended: bool,
}

// SAFETY: the mapping lives as long as the value; its bytes are only read, except the state
// bytes, which are written through atomics.
unsafe impl Send for Taken {}
// SAFETY: as above.
unsafe impl Sync for Taken {}

impl Taken {
    /// The segment file's bytes.
    fn data(&self) -> &[u8] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: a mapping of `len` bytes that lives as long as `self`; nobody truncates a
        // segment while it is locked.
        unsafe { std::slice::from_raw_parts(self.base, self.len) }
    }

    /// Its committed, unsettled records: (offset for [`Taken::settle`], body).
    pub fn records(&self) -> Vec<(usize, &[u8])> {
        let data = self.data();
        if data.len() < HEADER || &data[..HEADER] != MAGIC {
            return Vec::new();
        }
        committed_at(data, HEADER)
    }

    /// The segment's size in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Marks the record at `off` (an offset [`Taken::records`] gave) settled, in the file.
    pub fn settle(&self, off: usize) {
        if off + RECORD_HEADER <= self.len {
            // SAFETY: the state byte of a record inside the mapping, only accessed atomically
            // while the segment is taken.
            unsafe { AtomicU8::from_ptr(self.base.add(off + 4)) }.store(SETTLED, Ordering::Release);
        }
    }

    /// Ends the replay of the segment: deleted when every record is settled, else renamed for
    /// recovery. Whether records were left in it.
    pub fn finish(mut self) -> bool {
        self.end()
    }

    fn end(&mut self) -> bool {
        if self.ended {
            return false;
        }
        self.ended = true;
        let left = !self.records().is_empty();
        if !left {
            let _ = fs::remove_file(&self.path);
        } else if let Some(name) = self.path.file_name().and_then(|n| n.to_str()) {
            let left_name = name.replacen(PREFIX, LEFT, 1);
            let _ = fs::rename(&self.path, self.path.with_file_name(left_name));
        }
        left
    }
}

impl Drop for Taken {
    fn drop(&mut self) {
        self.end();
        if self.len > 0 {
            // SAFETY: unmapping our own mapping; nothing borrowed from it outlives `self`.
            unsafe {
                libc::munmap(self.base as *mut libc::c_void, self.len);
            }
        }
    }
}

/// Takes the first orphaned segment of `dir` (see [`orphans`]) for a replay of its records as
/// they are ([`Taken`]). Call with the buffer lock held.
pub fn take_orphan(dir: &Path) -> io::Result<Option<Taken>> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    for path in orphan_candidates(dir)? {
        let Some(o) = open_locked(&path) else {
            continue;
        };
        let len = o.metadata()?.len() as usize;
        let taken = dir.join(format!(
            "{}t{:08}{SUFFIX}",
            own_tag(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        fs::rename(&path, &taken)?;
        let base = if len == 0 {
            std::ptr::null_mut()
        } else {
            // SAFETY: mapping `len` bytes of a file we hold open and locked, shared, so that
            // the state bytes written reach the file; populated at once (every record is read),
            // rather than a fault a page.
            let m = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_SHARED | libc::MAP_POPULATE,
                    o.as_raw_fd(),
                    0,
                )
            };
            if m == libc::MAP_FAILED {
                let e = io::Error::last_os_error();
                // Back where any recovery finds it.
                let _ = fs::rename(&taken, &path);
                return Err(e);
            }
            // Writable at once too (MADV_POPULATE_WRITE, Linux 5.14; not in the libc crate):
            // a record marked settled then takes no write fault, a page each. Older kernels
            // refuse it, and take the faults.
            const MADV_POPULATE_WRITE: libc::c_int = 23;
            // SAFETY: advice on the mapping just made.
            let _ = unsafe { libc::madvise(m, len, MADV_POPULATE_WRITE) };
            m as *mut u8
        };
        return Ok(Some(Taken {
            path: taken,
            _file: o,
            base,
            len,
            ended: false,
        }));
    }
    Ok(None)
}

/// A segment left by a dead process (or retired with unsettled records), opened and locked.
pub struct Orphan {
    pub path: PathBuf,
    pub data: Vec<u8>,
    _file: File,
}

/// The orphaned segments of `dir`. Call with the buffer lock held, so that two processes never
/// recover the same segment; delete each one after its records are safe.
pub fn orphans(dir: &Path) -> io::Result<Vec<Orphan>> {
    let mut out = Vec::new();
    for path in orphan_candidates(dir)? {
        out.extend(open_orphan(path)?);
    }
    Ok(out)
}

/// The first orphaned segment of `dir` (see [`orphans`]), read: one segment in memory at a
/// time, however many a burst or a dead process left.
pub fn next_orphan(dir: &Path) -> io::Result<Option<Orphan>> {
    for path in orphan_candidates(dir)? {
        if let Some(o) = open_orphan(path)? {
            return Ok(Some(o));
        }
    }
    Ok(None)
}

/// Whether `dir` holds orphaned segments (see [`orphans`]). Call with the buffer lock held.
pub fn has_orphans(dir: &Path) -> io::Result<bool> {
    Ok(orphan_candidates(dir)?
        .iter()
        .any(|p| open_locked(p).is_some()))
}

/// The segments of `dir` that are not this process's live ones.
fn orphan_candidates(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir)? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with(PREFIX) && name.ends_with(SUFFIX) && !is_own_live(&name) {
            out.push(e.path());
        }
    }
    out.sort();
    Ok(out)
}

/// The segment at `path`, opened and locked; None when its owner is alive or it is gone.
fn open_locked(path: &Path) -> Option<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .ok()?;
    // Its owner is alive?
    lock_posix(&file).ok()?;
    // Deleted or replaced since we listed it (recovered by another process)?
    let same = match (file.metadata(), fs::symlink_metadata(path)) {
        (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev() && a.nlink() > 0,
        _ => false,
    };
    same.then_some(file)
}

/// The segment at `path`, opened, locked and read; None when its owner is alive or it is gone.
fn open_orphan(path: PathBuf) -> io::Result<Option<Orphan>> {
    let Some(mut file) = open_locked(&path) else {
        return Ok(None);
    };
    let mut data = Vec::new();
    file.read_to_end(&mut data)?;
    Ok(Some(Orphan {
        path,
        data,
        _file: file,
    }))
}

/// Takes a POSIX write lock on the whole file without waiting.
fn lock_posix(f: &File) -> io::Result<()> {
    // SAFETY: a zeroed flock struct is valid; the fields are set below.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = libc::F_WRLCK as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    // SAFETY: fcntl on a descriptor we own with a valid flock struct.
    if unsafe { libc::fcntl(f.as_raw_fd(), libc::F_SETLK, &fl) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_taken_segment_keeps_what_was_not_settled_and_goes_once_all_is() {
        let dir = tempfile::tempdir().unwrap();
        let rec = |i: u32| format!("{{\"n\":{i}}}").into_bytes();
        let mut a = Appender::new(dir.path(), "o");
        for i in 0..4 {
            let r = rec(i);
            a.push(r.len(), |out| out.copy_from_slice(&r));
        }
        a.write_out().unwrap();
        // Live: not taken.
        assert!(take_orphan(dir.path()).unwrap().is_none());
        assert!(a.seal());
        assert!(has_orphans(dir.path()).unwrap());
        let t = take_orphan(dir.path())
            .unwrap()
            .expect("the sealed segment");
        // Taken: a live segment of this process, which no recovery takes.
        let held = names(dir.path());
        assert!(held.len() == 1 && is_own_live(&held[0]), "{held:?}");
        assert!(!has_orphans(dir.path()).unwrap());
        assert!(orphans(dir.path()).unwrap().is_empty());
        assert!(take_orphan(dir.path()).unwrap().is_none());
        let recs = t.records();
        assert_eq!(
            recs.iter().map(|r| r.1.to_vec()).collect::<Vec<_>>(),
            (0..4).map(rec).collect::<Vec<_>>()
        );
        // Two settled: the file says so, and the others are left for recovery.
        t.settle(recs[0].0);
        t.settle(recs[2].0);
        assert!(t.finish());
        let left = names(dir.path());
        assert!(left.len() == 1 && left[0].starts_with(LEFT), "{left:?}");
        let o = orphans(dir.path()).unwrap();
        let got: Vec<Vec<u8>> = records(&o[0].data)
            .into_iter()
            .map(<[u8]>::to_vec)
            .collect();
        assert_eq!(got, vec![rec(1), rec(3)]);
        drop(o);
        // Taken again, the rest settled: deleted.
        let t = take_orphan(dir.path()).unwrap().expect("the segment left");
        for (off, _) in t.records() {
            t.settle(off);
        }
        assert!(!t.finish());
        assert!(names(dir.path()).is_empty());
        // Dropped without a finish (a panic): left for recovery, not lost.
        let r = rec(9);
        a.push(r.len(), |out| out.copy_from_slice(&r));
        a.write_out().unwrap();
        a.seal();
        drop(take_orphan(dir.path()).unwrap());
        let o = orphans(dir.path()).unwrap();
        assert_eq!(records(&o[0].data), vec![&rec(9)[..]]);
    }

    #[test]
    fn appended_segments_are_live_until_sealed_then_recovered_whole() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = Appender::new(dir.path(), "o");
        let rec = |i: u32| format!("{{\"n\":{i}}}").into_bytes();
        for i in 0..3 {
            let r = rec(i);
            a.push(r.len(), |out| out.copy_from_slice(&r));
        }
        assert_eq!(a.count(), 3);
        assert_eq!(a.pending(), vec![rec(0), rec(1), rec(2)]);
        a.write_out().unwrap();
        assert_eq!(a.count(), 0);
        for i in 3..5 {
            let r = rec(i);
            a.push(r.len(), |out| out.copy_from_slice(&r));
        }
        a.write_out().unwrap();
        // Live: this process's own segment, which recovery leaves alone.
        let live = names(dir.path());
        assert_eq!(live.len(), 1);
        assert!(
            is_own_live(&live[0]) && live[0].contains("-o00000000"),
            "{live:?}"
        );
        assert!(orphans(dir.path()).unwrap().is_empty());
        // Sealed: renamed for recovery, and every record is there, in order.
        assert!(a.seal());
        let left = names(dir.path());
        assert!(left[0].starts_with(LEFT), "{left:?}");
        let o = orphans(dir.path()).unwrap();
        assert_eq!(o.len(), 1);
        let got: Vec<Vec<u8>> = records(&o[0].data)
            .into_iter()
            .map(<[u8]>::to_vec)
            .collect();
        assert_eq!(got, (0..5).map(rec).collect::<Vec<_>>());
        // Nothing pushed: nothing to seal, and no empty segment is made.
        drop(o);
        fs::remove_file(dir.path().join(&left[0])).unwrap();
        a.write_out().unwrap();
        assert!(!a.seal());
        drop(a);
        assert!(names(dir.path()).is_empty());
    }

    #[test]
    fn an_appender_rolls_its_segment_at_its_size_and_drop_seals() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = Appender::new(dir.path(), "o");
        let big = vec![b'x'; APPEND_SEGMENT_BYTES / 3];
        for _ in 0..4 {
            a.push(big.len(), |out| out.copy_from_slice(&big));
            a.write_out().unwrap();
        }
        drop(a);
        let n = names(dir.path());
        assert_eq!(n.len(), 2, "{n:?}");
        let total: usize = orphans(dir.path())
            .unwrap()
            .iter()
            .map(|o| {
                assert!(o.data.len() <= APPEND_SEGMENT_BYTES);
                records(&o.data).len()
            })
            .sum();
        assert_eq!(total, 4);
    }

    #[test]
    fn records_round_trip_and_settle() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::new(dir.path());
        let a = j.write(b"{\"a\":1}").unwrap().0;
        let b = j.write(b"{\"b\":22}").unwrap().0;
        let c = j.write(b"{\"c\":333}").unwrap().0;
        b.settle();
        let name = fs::read_dir(dir.path())
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let data = fs::read(&name).unwrap();
        assert_eq!(records(&data), vec![&b"{\"a\":1}"[..], &b"{\"c\":333}"[..]]);
        // Our own live segment is never an orphan.
        assert!(orphans(dir.path()).unwrap().is_empty());
        a.settle();
        drop(c);
        drop(j);
        // One record was never settled: the segment is left for recovery.
        let left: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(left.len(), 1);
        assert!(left[0].starts_with(LEFT), "{left:?}");
        let o = orphans(dir.path()).unwrap();
        assert_eq!(o.len(), 1);
        assert_eq!(records(&o[0].data), vec![&b"{\"c\":333}"[..]]);
    }

    #[test]
    fn settled_segments_are_deleted_and_full_ones_roll() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::new(dir.path());
        let body = vec![b'x'; 100_000];
        let tickets: Vec<_> = (0..100).map(|_| j.write(&body).unwrap().0).collect();
        let n = fs::read_dir(dir.path()).unwrap().count();
        assert!(n >= 3, "{n} segments");
        for t in tickets {
            t.settle();
        }
        drop(j);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn torn_and_garbage_segments_stop_cleanly() {
        assert!(records(b"").is_empty());
        assert!(records(b"not a journal at all").is_empty());
        let mut d = MAGIC.to_vec();
        d.extend_from_slice(&5u32.to_le_bytes());
        d.extend_from_slice(&[COMMITTED, 0, 0, 0]);
        d.extend_from_slice(b"abc"); // torn: 3 of 5 bytes
        assert!(records(&d).is_empty());
        let mut d = MAGIC.to_vec();
        d.extend_from_slice(&u32::MAX.to_le_bytes());
        d.extend_from_slice(&[COMMITTED, 0, 0, 0]);
        assert!(records(&d).is_empty());
        let mut d = MAGIC.to_vec();
        d.extend_from_slice(&3u32.to_le_bytes());
        d.extend_from_slice(&[WRITING, 0, 0, 0]);
        d.extend_from_slice(b"abc\0\0\0\0\0");
        assert!(records(&d).is_empty());
    }
}
