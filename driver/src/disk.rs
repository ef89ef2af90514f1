//! The log file: each record is a little-endian u32 length and that many bytes.
//!
//! Appends go to the file at once (the OS may still hold them); `sync` makes them durable with
//! `sync_data`. Recovery reads records back and stops at a torn one (a crash mid-append).
//! Blocking std::fs calls run on the node's task: fine for a log this size, and `tokio::fs`
//! is not available inside madsim.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

pub struct FileLog {
    path: PathBuf,
    file: File,
    /// Byte offset where each record starts, plus the end.
    offsets: Vec<u64>,
}

impl FileLog {
    /// Opens (or creates) the log at `path` and reads back its whole records.
    pub fn open(path: &Path) -> io::Result<(FileLog, Vec<Vec<u8>>)> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let (records, offsets) = parse(&bytes);
        let end = *offsets.last().expect("parse returns the end offset");
        file.set_len(end)?; // drop a torn tail
        file.seek(SeekFrom::Start(end))?;
        Ok((
            FileLog {
                path: path.to_path_buf(),
                file,
                offsets,
            },
            records,
        ))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn len(&self) -> u64 {
        (self.offsets.len() - 1) as u64
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends a record; returns its 1-based sequence number.
    pub fn append(&mut self, record: &[u8]) -> io::Result<u64> {
        let len = u32::try_from(record.len()).map_err(|_| io::Error::other("record over 4 GiB"))?;
        let mut frame = Vec::with_capacity(4 + record.len());
        frame.extend_from_slice(&len.to_le_bytes());
        frame.extend_from_slice(record);
        self.file.write_all(&frame)?;
        let end = self.offsets.last().expect("end offset") + frame.len() as u64;
        self.offsets.push(end);
        Ok(self.len())
    }

    /// Makes every appended record durable.
    pub fn sync(&mut self) -> io::Result<u64> {
        self.file.sync_data()?;
        Ok(self.len())
    }

    /// Cuts the log to its first `len` records, durably.
    pub fn truncate(&mut self, len: u64) -> io::Result<()> {
        let keep = (len as usize).min(self.offsets.len() - 1);
        self.offsets.truncate(keep + 1);
        let end = self.offsets[keep];
        self.file.set_len(end)?;
        self.file.seek(SeekFrom::Start(end))?;
        self.file.sync_data()
    }
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
}
