//! The node's disk: a log file and, once the component checkpoints, a snapshot file beside it.
//!
//! The log file starts with a header (`MTLOG1`, then the lsn of the checkpoint its first record
//! follows, as a little-endian u64); each record is a little-endian u32 length and that many
//! bytes. Appends go to the file at once (the OS may still hold them); `sync` makes them
//! durable with `sync_data`. Recovery reads records back and stops at a torn one (a crash
//! mid-append).
//!
//! A checkpoint writes `<log>.snap` (`MTSNAP1`, the lsn, the bytes) to a temporary file,
//! syncs and renames it, then rewrites the log with only the records after that lsn the same
//! way. A crash between the two leaves a log that starts before the snapshot: recovery skips
//! the records the snapshot covers. Appends, cuts and checkpoints are std::fs calls on the
//! node's task (`tokio::fs` is not available inside madsim); the sync of appended records,
//! the one that waits for the device, runs on a blocking thread through [`FileLog::sync_handle`]
//! and reports back with [`FileLog::synced`]. A cut or rewrite bumps [`FileLog::generation`],
//! so a sync that raced with one is not taken for what it no longer covers.
//!
//! Under madsim a killed node's files keep everything written to them, synced or not; the
//! [`crash`] module remembers how much of each file was made durable so that a test can cut
//! them back to it, as a power loss would, and a missing sync is seen.

use minitwin_components::Recovered;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

const LOG_MAGIC: &[u8; 8] = b"MTLOG1\0\0";
const SNAP_MAGIC: &[u8; 8] = b"MTSNAP1\0";
const HEADER_LEN: u64 = 16;

pub struct FileLog {
    path: PathBuf,
    file: File,
    /// The lsn of the checkpoint the first record in the file follows.
    base_lsn: u64,
    /// Byte offset where each record starts, plus the end.
    offsets: Vec<u64>,
    /// Bumped by every cut and rewrite of the file.
    generation: u64,
}

/// How much of each log file was made durable, for madsim's kills (see the module's doc).
#[cfg(madsim)]
pub mod crash {
    use std::collections::BTreeMap;
    use std::path::{Path, PathBuf};
    use std::sync::Mutex;

    static DURABLE: Mutex<BTreeMap<PathBuf, u64>> = Mutex::new(BTreeMap::new());

    pub(crate) fn durable(path: &Path, len: u64) {
        DURABLE
            .lock()
            .expect("durable lock")
            .insert(path.to_path_buf(), len);
    }

    /// Cuts every log file under `dir` back to what was made durable (call between madsim's
    /// `kill` and `restart`); returns the bytes lost.
    pub fn lose_unsynced(dir: &Path) -> u64 {
        let durable = DURABLE.lock().expect("durable lock");
        let mut lost = 0;
        for (path, &len) in durable.range(dir.to_path_buf()..) {
            if !path.starts_with(dir) {
                break;
            }
            let Ok(f) = std::fs::OpenOptions::new().write(true).open(path) else {
                continue;
            };
            let now = f.metadata().map_or(0, |m| m.len());
            if now > len && f.set_len(len).is_ok() {
                lost += now - len;
            }
        }
        lost
    }
}

#[cfg(not(madsim))]
mod crash {
    pub(crate) fn durable(_path: &std::path::Path, _len: u64) {}
}

fn bad_data(path: &Path, what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{}: {what}", path.display()),
    )
}

fn snapshot_path(log: &Path) -> PathBuf {
    let mut p = log.as_os_str().to_owned();
    p.push(".snap");
    PathBuf::from(p)
}

/// Writes `bytes` to `path` durably and atomically (temporary file, sync, rename); returns the
/// file, open for reading and writing, positioned at its end. It is opened before the rename
/// (a handle follows its file), so that nothing can fail between the new file taking the
/// path and the caller holding it: a log never goes on appending to the file it replaced.
fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<File> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        // Make the rename itself durable (best effort: not every platform syncs directories).
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(f)
}

fn read_snapshot(path: &Path) -> io::Result<Option<(u64, Vec<u8>)>> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    if bytes.len() < 24 || &bytes[..8] != SNAP_MAGIC {
        return Err(bad_data(path, "not a minitwin snapshot"));
    }
    let word = |i: usize| u64::from_le_bytes(bytes[i..i + 8].try_into().expect("8 bytes"));
    let (lsn, len) = (word(8), word(16) as usize);
    if bytes.len() - 24 != len {
        return Err(bad_data(path, "snapshot length does not match its header"));
    }
    Ok(Some((lsn, bytes[24..].to_vec())))
}

impl FileLog {
    /// Opens (or creates) the log at `path` and reads back its checkpoint and whole records.
    pub fn open(path: &Path) -> io::Result<(FileLog, Recovered)> {
        let snapshot = read_snapshot(&snapshot_path(path))?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        if bytes.is_empty() {
            let base = snapshot.as_ref().map_or(0, |s| s.0);
            file.write_all(&header(base))?;
            file.sync_data()?;
            bytes = header(base).to_vec();
        }
        if bytes.len() < HEADER_LEN as usize || &bytes[..8] != LOG_MAGIC {
            return Err(bad_data(path, "not a minitwin log (bad header)"));
        }
        let file_base = u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes"));
        let (mut records, offsets) = parse(&bytes[HEADER_LEN as usize..]);
        let end = HEADER_LEN + *offsets.last().expect("parse returns the end offset");
        file.set_len(end)?; // drop a torn tail
        file.seek(SeekFrom::Start(end))?;
        let snap_lsn = snapshot.as_ref().map_or(0, |s| s.0);
        if file_base > snap_lsn {
            return Err(bad_data(path, "the log starts after its snapshot ends"));
        }
        // A crash between writing the snapshot and rewriting the log: skip what it covers.
        let covered = ((snap_lsn - file_base) as usize).min(records.len());
        records.drain(..covered);
        crash::durable(path, end);
        let log = FileLog {
            path: path.to_path_buf(),
            file,
            base_lsn: file_base,
            offsets: offsets.into_iter().map(|o| o + HEADER_LEN).collect(),
            generation: 0,
        };
        Ok((log, Recovered { snapshot, records }))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The lsn of the last record in the file.
    pub fn tail_lsn(&self) -> u64 {
        self.base_lsn + (self.offsets.len() - 1) as u64
    }

    /// Appends a record; returns its lsn.
    pub fn append(&mut self, record: &[u8]) -> io::Result<u64> {
        let len = u32::try_from(record.len()).map_err(|_| io::Error::other("record over 4 GiB"))?;
        let mut frame = Vec::with_capacity(4 + record.len());
        frame.extend_from_slice(&len.to_le_bytes());
        frame.extend_from_slice(record);
        self.file.write_all(&frame)?;
        let end = self.offsets.last().expect("end offset") + frame.len() as u64;
        self.offsets.push(end);
        Ok(self.tail_lsn())
    }

    /// Makes every appended record durable; returns the lsn covered.
    pub fn sync(&mut self) -> io::Result<u64> {
        self.file.sync_data()?;
        self.synced(self.end_offset());
        Ok(self.tail_lsn())
    }

    /// Records in the file (after its checkpoint).
    pub fn records(&self) -> u64 {
        (self.offsets.len() - 1) as u64
    }

    /// The file's length: where the next record goes.
    pub fn end_offset(&self) -> u64 {
        *self.offsets.last().expect("end offset")
    }

    /// Bumped by every cut and rewrite: a sync begun in another generation covers an older
    /// file.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// A handle to the same file, for a sync on another thread.
    pub fn sync_handle(&self) -> io::Result<File> {
        self.file.try_clone()
    }

    /// A sync begun when the file was `end` bytes long finished.
    pub fn synced(&mut self, end: u64) {
        crash::durable(&self.path, end);
    }

    /// Cuts the log to its first `lsn` records, durably.
    pub fn truncate(&mut self, lsn: u64) -> io::Result<()> {
        if lsn < self.base_lsn {
            return Err(io::Error::other(format!(
                "cannot cut the log to {lsn}: it was checkpointed at {}",
                self.base_lsn
            )));
        }
        let keep = ((lsn - self.base_lsn) as usize).min(self.offsets.len() - 1);
        let end = self.offsets[keep];
        // The file first: if cutting it fails, the log's view of it stays as it was.
        self.file.set_len(end)?;
        self.file.seek(SeekFrom::Start(end))?;
        self.offsets.truncate(keep + 1);
        self.generation += 1;
        self.file.sync_data()?;
        crash::durable(&self.path, end);
        Ok(())
    }

    /// Writes `<log>.snap`: the magic, `lsn`, the length and the bytes, atomically.
    fn write_snapshot(&self, lsn: u64, snapshot: &[u8]) -> io::Result<()> {
        let mut snap = Vec::with_capacity(24 + snapshot.len());
        snap.extend_from_slice(SNAP_MAGIC);
        snap.extend_from_slice(&lsn.to_le_bytes());
        snap.extend_from_slice(&(snapshot.len() as u64).to_le_bytes());
        snap.extend_from_slice(snapshot);
        write_atomically(&snapshot_path(&self.path), &snap).map(drop)
    }

    /// Replaces everything with `snapshot` as the state at `lsn` (a re-clone): the records
    /// go first (durably), then the snapshot, then the log restarts at `lsn`. A crash between
    /// steps leaves either the old checkpoint with no records, or the new snapshot over an
    /// empty log that starts before it: never an old record after the new state.
    pub fn install(&mut self, lsn: u64, snapshot: &[u8]) -> io::Result<()> {
        self.truncate(self.base_lsn)?;
        self.write_snapshot(lsn, snapshot)?;
        self.file = write_atomically(&self.path, &header(lsn))?;
        self.offsets = vec![HEADER_LEN];
        self.base_lsn = lsn;
        self.generation += 1;
        crash::durable(&self.path, HEADER_LEN);
        Ok(())
    }

    /// Writes `snapshot` as the state at `lsn` and drops the records it covers from the log.
    pub fn checkpoint(&mut self, lsn: u64, snapshot: &[u8]) -> io::Result<()> {
        if lsn < self.base_lsn || lsn > self.tail_lsn() {
            return Err(io::Error::other(format!(
                "a checkpoint at {lsn} is outside the log ({}..={})",
                self.base_lsn,
                self.tail_lsn()
            )));
        }
        self.write_snapshot(lsn, snapshot)?;
        // Rewrite the log with the records after `lsn`.
        let first = (lsn - self.base_lsn) as usize;
        let (from, to) = (self.offsets[first], *self.offsets.last().expect("end"));
        let mut tail = vec![0u8; (to - from) as usize];
        self.file.seek(SeekFrom::Start(from))?;
        self.file.read_exact(&mut tail)?;
        let mut bytes = header(lsn).to_vec();
        bytes.extend_from_slice(&tail);
        self.file = write_atomically(&self.path, &bytes)?;
        self.offsets = self.offsets[first..]
            .iter()
            .map(|o| o - from + HEADER_LEN)
            .collect();
        self.base_lsn = lsn;
        self.generation += 1;
        crash::durable(&self.path, self.end_offset());
        Ok(())
    }
}

fn header(base_lsn: u64) -> [u8; HEADER_LEN as usize] {
    let mut h = [0u8; HEADER_LEN as usize];
    h[..8].copy_from_slice(LOG_MAGIC);
    h[8..].copy_from_slice(&base_lsn.to_le_bytes());
    h
}

/// Whole records and their start offsets (plus the end of the last whole record).
fn parse(bytes: &[u8]) -> (Vec<Vec<u8>>, Vec<u64>) {
    let mut records = Vec::new();
    let mut offsets = vec![0u64];
    let mut at = 0usize;
    while bytes.len() - at >= 4 {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize;
        if bytes.len() - at - 4 < len {
            break; // torn
        }
        records.push(bytes[at + 4..at + 4 + len].to_vec());
        at += 4 + len;
        offsets.push(at as u64);
    }
    (records, offsets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_torn_last_record_is_dropped_on_recovery() {
        let bytes = [3u8, 0, 0, 0, b'a', b'b', b'c', 5, 0, 0, 0, b'x'];
        let (records, offsets) = parse(&bytes);
        assert_eq!(records, vec![b"abc".to_vec()]);
        assert_eq!(offsets, vec![0, 7]);
    }

    #[test]
    fn a_checkpoint_survives_reopening_and_numbering_goes_on() {
        let dir = std::env::temp_dir().join(format!("minitwin-disk-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("n.log");
        let _ = std::fs::remove_file(&path);
        let _ = std::fs::remove_file(snapshot_path(&path));
        let (mut log, r) = FileLog::open(&path).unwrap();
        assert_eq!(r, Recovered::default());
        for b in [b"a", b"b", b"c"] {
            log.append(b).unwrap();
        }
        log.sync().unwrap();
        log.checkpoint(2, b"AB").unwrap();
        assert_eq!(log.append(b"d").unwrap(), 4);
        log.sync().unwrap();
        drop(log);
        let (log, r) = FileLog::open(&path).unwrap();
        assert_eq!(r.snapshot, Some((2, b"AB".to_vec())));
        assert_eq!(r.records, vec![b"c".to_vec(), b"d".to_vec()]);
        assert_eq!(log.tail_lsn(), 4);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_installed_clone_replaces_every_record_and_numbering_goes_on_from_it() {
        let dir = std::env::temp_dir().join(format!("minitwin-clone-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("n.log");
        let (mut log, _) = FileLog::open(&path).unwrap();
        for b in [b"a", b"b", b"x", b"y"] {
            log.append(b).unwrap(); // x and y: errant, the primary never had them
        }
        log.sync().unwrap();
        log.install(3, b"ABC").unwrap();
        assert_eq!(log.tail_lsn(), 3);
        assert_eq!(log.append(b"d").unwrap(), 4);
        log.sync().unwrap();
        drop(log);
        let (log, r) = FileLog::open(&path).unwrap();
        assert_eq!(r.snapshot, Some((3, b"ABC".to_vec())));
        assert_eq!(r.records, vec![b"d".to_vec()]);
        assert_eq!(log.tail_lsn(), 4);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
