//! What the buffer directory of a service holds, for an operator (`rarch-logging status`):
//! the backlog (entries and bytes in `buffer.jsonl`, the rotated and claimed files less the
//! lines a progress mark settled, and the journal and overflow segments' unsettled records),
//! the oldest backlog entry's `client_log_datetime`, the dead letters, the corrupt lines, and
//! the processes that hold the directory. Read only: nothing is claimed, moved or locked.

use crate::buffer::{self, PROGRESS_BITS};
use crate::journal;
use serde::Serialize;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// One service's buffer directory, as `status --json` prints it.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ServiceState {
    pub service: String,
    /// Entries waiting to be sent.
    pub backlog_entries: u64,
    /// Their bytes, as JSON lines (a newline each).
    pub backlog_bytes: u64,
    /// The earliest `client_log_datetime` of the backlog, as written in the entry.
    pub oldest_entry: Option<String>,
    /// Lines of `buffer.rejected.jsonl`.
    pub dead_letters: u64,
    /// Lines of `buffer.corrupt.jsonl`.
    pub corrupt: u64,
    /// Processes (other than this one) that have a file of the directory open or locked.
    pub live_pids: Vec<u32>,
}

/// The services under `buffer_dir`: its subdirectories that hold a buffer file, sorted.
pub fn services(buffer_dir: &Path) -> io::Result<Vec<String>> {
    let mut out = Vec::new();
    for e in fs::read_dir(buffer_dir)? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        if buffer::check_service_name(&name).is_err() || !e.file_type()?.is_dir() {
            continue;
        }
        let ours = fs::read_dir(e.path())
            .map(|rd| {
                rd.flatten()
                    .any(|f| f.file_name().to_string_lossy().starts_with("buffer."))
            })
            .unwrap_or(false);
        if ours {
            out.push(name);
        }
    }
    out.sort();
    Ok(out)
}

/// The state of `<buffer_dir>/<service>/`.
pub fn inspect(buffer_dir: &Path, service: &str) -> crate::error::Result<ServiceState> {
    buffer::check_service_name(service)?;
    let dir = buffer_dir.join(service);
    let io_err = |e: io::Error| {
        crate::error::Error::new(
            crate::error::ErrorKind::Io,
            format!("{}: {e}", dir.display()),
        )
    };
    let mut st = ServiceState {
        service: service.to_owned(),
        ..Default::default()
    };
    let mut oldest: Option<(OffsetDateTime, String)> = None;
    let mut note = |st: &mut ServiceState, line: &[u8]| {
        st.backlog_entries += 1;
        st.backlog_bytes += line.len() as u64 + 1;
        if let Some((t, text)) = entry_time(line) {
            if oldest.as_ref().is_none_or(|(o, _)| t < *o) {
                oldest = Some((t, text));
            }
        }
    };
    let mut names: Vec<String> = fs::read_dir(&dir)
        .map_err(io_err)?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for name in &names {
        let path = dir.join(name);
        let jsonl = name.ends_with(".jsonl");
        if name == buffer::ACTIVE || (jsonl && name.starts_with(buffer::ROTATED)) {
            for l in lines(&read(&path)) {
                note(&mut st, l);
            }
        } else if jsonl && name.starts_with(buffer::SENDING) {
            let (first, bits) = buffer::read_progress(&buffer::progress_path(&path));
            for (i, l) in lines(&read(&path)).into_iter().enumerate() {
                let j = i.wrapping_sub(first);
                let settled = i < first || (j < PROGRESS_BITS && bits[j / 64] >> (j % 64) & 1 == 1);
                if !settled {
                    note(&mut st, l);
                }
            }
        } else if name.starts_with(journal::PREFIX) && name.ends_with(".bin") {
            for rec in journal::records(&read(&path)) {
                if let Some(body) = crate::record::journal_body(rec, service) {
                    note(&mut st, &body);
                }
            }
        } else if name == buffer::REJECTED {
            st.dead_letters = lines(&read(&path)).len() as u64;
        } else if name == buffer::CORRUPT {
            st.corrupt = lines(&read(&path)).len() as u64;
        }
    }
    st.oldest_entry = oldest.map(|(_, s)| s);
    st.live_pids = holders(&dir);
    Ok(st)
}

/// A file's contents; empty if it went away meanwhile (claimed, recovered).
fn read(path: &Path) -> Vec<u8> {
    fs::read(path).unwrap_or_default()
}

/// The lines of a buffer file as a drain sees them (`Claimed::lines`): blank ones left out.
fn lines(data: &[u8]) -> Vec<&[u8]> {
    data.split(|&b| b == b'\n')
        .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .collect()
}

/// The `client_log_datetime` of a buffer line, parsed and as written.
fn entry_time(line: &[u8]) -> Option<(OffsetDateTime, String)> {
    #[derive(serde::Deserialize)]
    struct T<'a> {
        #[serde(borrow, default)]
        client_log_datetime: Option<std::borrow::Cow<'a, str>>,
    }
    let text = serde_json::from_slice::<T<'_>>(line)
        .ok()?
        .client_log_datetime?;
    let t = OffsetDateTime::parse(&text, &Rfc3339).ok()?;
    Some((t, text.into_owned()))
}

/// The processes other than this one that hold a file of `dir`: a lock on it in `/proc/locks`
/// (a drain's claim, a journal or overflow segment; any user's), or a descriptor open on it
/// (a logger keeps `buffer.lock` open; only the processes this user may inspect).
fn holders(dir: &Path) -> Vec<u32> {
    let me = std::process::id();
    let dir = fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let mut inodes = Vec::new();
    if let Ok(rd) = fs::read_dir(&dir) {
        for e in rd.flatten() {
            if let Ok(m) = e.metadata() {
                let dev = m.dev();
                inodes.push((libc::major(dev), libc::minor(dev), m.ino()));
            }
        }
    }
    let mut pids = Vec::new();
    for line in fs::read_to_string("/proc/locks")
        .unwrap_or_default()
        .lines()
    {
        // "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF" ("1: -> ..." for a waiter).
        let f: Vec<&str> = line.split_whitespace().filter(|t| *t != "->").collect();
        let (Some(pid), Some(id)) = (f.get(4), f.get(5)) else {
            continue;
        };
        let mut p = id.split(':');
        let parsed = (
            p.next().and_then(|x| u32::from_str_radix(x, 16).ok()),
            p.next().and_then(|x| u32::from_str_radix(x, 16).ok()),
            p.next().and_then(|x| x.parse::<u64>().ok()),
        );
        if let (Some(pid), (Some(ma), Some(mi), Some(ino))) = (pid.parse::<u32>().ok(), parsed) {
            if inodes.contains(&(ma, mi, ino)) {
                pids.push(pid);
            }
        }
    }
    if let Ok(procs) = fs::read_dir("/proc") {
        for p in procs.flatten() {
            let Ok(pid) = p.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(fds) = fs::read_dir(p.path().join("fd")) else {
                continue;
            };
            let holds = fds.flatten().any(|fd| {
                fs::read_link(fd.path())
                    .map(|t: PathBuf| t.parent() == Some(dir.as_path()))
                    .unwrap_or(false)
            });
            if holds {
                pids.push(pid);
            }
        }
    }
    pids.retain(|&p| p != me && p != 0);
    pids.sort_unstable();
    pids.dedup();
    pids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_every_kind_of_backlog_file_and_skips_settled_lines() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("svc");
        fs::create_dir(&dir).unwrap();
        let e = |m: &str, t: &str| {
            format!(
                r#"{{"level":"INFO","service":"svc","message":"{m}","client_log_datetime":"{t}"}}"#
            )
        };
        let active = format!(
            "{}\n\n{}\n",
            e("a", "2026-01-02T00:00:00Z"),
            e("b", "2026-01-03T00:00:00Z")
        );
        fs::write(dir.join(buffer::ACTIVE), &active).unwrap();
        let rotated = format!("{}\n", e("c", "2025-12-31T23:00:00+00:00"));
        fs::write(
            dir.join("buffer.rotated-20260101T000000Z-00000000-1.jsonl"),
            &rotated,
        )
        .unwrap();
        // A claimed file whose first line is settled, and the third by the bitmap.
        let claimed = dir.join("buffer.sending-20260101T000000Z-rarch1.jsonl");
        let old = e("d", "2020-01-01T00:00:00Z");
        let kept = e("e", "2026-02-01T00:00:00Z");
        fs::write(&claimed, format!("{old}\n{kept}\n{old}\n")).unwrap();
        let mut mark = format!("{:020}\n", 1);
        mark.push_str(&format!("{:016x}", 2u64));
        mark.push_str(&"0".repeat(PROGRESS_BITS / 4 - 16));
        fs::write(buffer::progress_path(&claimed), mark).unwrap();
        fs::write(dir.join(buffer::REJECTED), "{}\n{}\n").unwrap();
        fs::write(dir.join(buffer::CORRUPT), "x\n").unwrap();
        let st = inspect(root.path(), "svc").unwrap();
        assert_eq!(st.backlog_entries, 4);
        let bytes = active.len() - 1 + rotated.len() + kept.len() + 1;
        assert_eq!(st.backlog_bytes, bytes as u64);
        assert_eq!(
            st.oldest_entry.as_deref(),
            Some("2025-12-31T23:00:00+00:00")
        );
        assert_eq!((st.dead_letters, st.corrupt), (2, 1));
        assert_eq!(services(root.path()).unwrap(), vec!["svc".to_owned()]);
    }
}
