//! The stored text of each row version, kept outside SQLite in an append-only file beside the
//! database (`<database>-rows`), or in memory for an in-memory store.
//!
//! SQLite keeps where each text is (`data_at`, `data_len` in `row_history`). Rows are a few
//! kilobytes each and written far more than read: in SQLite's pages every commit rewrote the
//! partly filled last pages of the history table and copied them again at each checkpoint, about
//! 11 KB written per 2.5 KB row. Here a transaction's texts are one write at the end of the file.
//!
//! Texts are appended only while the SQLite write lock is held (inside an `IMMEDIATE`
//! transaction, before its commit), at the file's current end, so processes sharing a database
//! append one after the other and a text is in the file before any reader can see its row. A
//! transaction that fails after appending leaves unreferenced bytes behind, which nothing reads.
//! The file is not synced at each commit, like SQLite's WAL with `synchronous = NORMAL`: after a
//! power loss the newest texts may be missing, and reads skip those versions with a warning.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use super::StoreError;

/// Where row texts live.
#[derive(Debug)]
pub(super) enum RowTexts {
    /// An append-only file beside the database.
    File { file: File, path: PathBuf },
    /// Memory, for a store that lives in memory only.
    Memory(Vec<u8>),
}

/// The texts a transaction appends, written in one go before it commits.
#[derive(Debug)]
pub(super) struct PendingTexts {
    /// Where the file ended when the transaction began: the first text's position.
    start: u64,
    texts: Vec<u8>,
}

impl PendingTexts {
    /// Adds a text; returns its position and length as stored in `row_history`.
    pub(super) fn push(&mut self, text: &str) -> (i64, i64) {
        let at = self.start + self.texts.len() as u64;
        self.texts.extend_from_slice(text.as_bytes());
        (at as i64, text.len() as i64)
    }

    /// Adds a text that `write` appends to the buffer it is given (which must then hold valid
    /// UTF-8); returns its position and length as [`PendingTexts::push`] does. When `write`
    /// fails, nothing is added.
    pub(super) fn push_with<E>(
        &mut self,
        write: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
    ) -> Result<(i64, i64), E> {
        let before = self.texts.len();
        if let Err(e) = write(&mut self.texts) {
            self.texts.truncate(before);
            return Err(e);
        }
        let at = self.start + before as u64;
        Ok((at as i64, (self.texts.len() - before) as i64))
    }
}

impl RowTexts {
    /// The texts file of the database at `database` (`<database>-rows`), created when missing.
    pub(super) fn beside(database: &Path) -> Result<RowTexts, StoreError> {
        let mut name = database.as_os_str().to_owned();
        name.push("-rows");
        let path = PathBuf::from(name);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(failed(&path))?;
        Ok(RowTexts::File { file, path })
    }

    /// Starts a transaction's appends, with room for `bytes` of texts. Call with SQLite's write
    /// lock held.
    pub(super) fn begin(&self, bytes: usize) -> Result<PendingTexts, StoreError> {
        let start = match self {
            RowTexts::File { file, path } => file.metadata().map_err(failed(path))?.len(),
            RowTexts::Memory(texts) => texts.len() as u64,
        };
        Ok(PendingTexts {
            start,
            texts: Vec::with_capacity(bytes),
        })
    }

    /// Writes a transaction's texts at the end of the file. Call before committing.
    pub(super) fn write(&mut self, pending: PendingTexts) -> Result<(), StoreError> {
        match self {
            RowTexts::File { file, path } => {
                write_all_at(file, &pending.texts, pending.start).map_err(failed(path))
            }
            RowTexts::Memory(texts) => {
                texts.extend_from_slice(&pending.texts);
                Ok(())
            }
        }
    }

    /// The text at `at` of `len` bytes, looking in `pending` first for texts of the current
    /// transaction. `None` when the file ends before it (lost in a crash before it reached the
    /// disk).
    pub(super) fn read(
        &self,
        pending: Option<&PendingTexts>,
        at: i64,
        len: i64,
    ) -> Result<Option<String>, StoreError> {
        let corrupt = |what: &str| StoreError::RowTextsCorrupt(format!("{what} at {at}"));
        // Positions come from the database file: check them before using them.
        let (Ok(at), Ok(len)) = (u64::try_from(at), usize::try_from(len)) else {
            return Err(corrupt(&format!("a row text of length {len}")));
        };
        // Both are below 2^63, so this cannot overflow.
        let end = at + len as u64;
        let bytes = match pending {
            Some(p) if at >= p.start => p
                .texts
                .get((at - p.start) as usize..(end - p.start) as usize)
                .ok_or_else(|| corrupt("a row text beyond the transaction's"))?
                .to_vec(),
            _ => match self {
                RowTexts::File { file, path } => {
                    let file_len = file.metadata().map_err(failed(path))?.len();
                    if end > file_len {
                        tracing::warn!(
                            file = %path.display(),
                            at,
                            len,
                            file_len,
                            "a row version's text is missing from the end of the file \
                             (lost in a crash?); the version is skipped"
                        );
                        return Ok(None);
                    }
                    let mut bytes = vec![0; len];
                    read_exact_at(file, &mut bytes, at).map_err(failed(path))?;
                    bytes
                }
                RowTexts::Memory(texts) => texts
                    .get(at as usize..end as usize)
                    .ok_or_else(|| corrupt("a row text beyond the store's"))?
                    .to_vec(),
            },
        };
        String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| corrupt("a row text that is not UTF-8"))
    }
}

/// Maps an I/O error on the texts file at `path` to a store error.
fn failed(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::RowTexts {
        path: path.to_owned(),
        source,
    }
}

/// Writes all of `bytes` at `at` in `file`.
#[cfg(unix)]
fn write_all_at(file: &File, bytes: &[u8], at: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, bytes, at)
}

/// Fills `bytes` from `at` in `file` (`UnexpectedEof` when the file ends first).
#[cfg(unix)]
fn read_exact_at(file: &File, bytes: &mut [u8], at: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, bytes, at)
}

/// Writes all of `bytes` at `at` in `file`. A store is used by one thread at a time (SQLite's
/// connection is not shared), so moving the file's cursor is safe.
#[cfg(not(unix))]
fn write_all_at(mut file: &File, bytes: &[u8], at: u64) -> std::io::Result<()> {
    use std::io::{Seek, SeekFrom, Write};
    file.seek(SeekFrom::Start(at))?;
    file.write_all(bytes)
}

/// Fills `bytes` from `at` in `file` (`UnexpectedEof` when the file ends first).
#[cfg(not(unix))]
fn read_exact_at(mut file: &File, bytes: &mut [u8], at: u64) -> std::io::Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    file.seek(SeekFrom::Start(at))?;
    file.read_exact(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_read_back_from_pending_and_written_transactions() {
        for mut texts in [
            RowTexts::Memory(Vec::new()),
            RowTexts::beside(&std::env::temp_dir().join(format!(
                "bt-row-texts-{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            )))
            .unwrap(),
        ] {
            if let RowTexts::File { file, .. } = &texts {
                file.set_len(0).unwrap();
            }
            let mut first = texts.begin(0).unwrap();
            let a = first.push("{\"a\":1}");
            let b = first.push("{\"b\":\"é\"}");
            assert_eq!(
                texts.read(Some(&first), b.0, b.1).unwrap().as_deref(),
                Some("{\"b\":\"é\"}")
            );
            texts.write(first).unwrap();
            let mut second = texts.begin(0).unwrap();
            let c = second.push("{}");
            assert_eq!(
                c.0,
                a.1 + b.1,
                "the next transaction appends after the first"
            );
            assert_eq!(
                texts.read(Some(&second), a.0, a.1).unwrap().as_deref(),
                Some("{\"a\":1}")
            );
            assert_eq!(
                texts.read(None, b.0, b.1).unwrap().as_deref(),
                Some("{\"b\":\"é\"}")
            );
            // Not yet written: a reader outside the transaction does not find it.
            match &texts {
                RowTexts::File { path, .. } => {
                    assert_eq!(texts.read(None, c.0, c.1).unwrap(), None);
                    std::fs::remove_file(path).unwrap();
                }
                RowTexts::Memory(_) => assert!(texts.read(None, c.0, c.1).is_err()),
            }
        }
    }

    #[test]
    fn a_text_written_in_place_is_undone_when_writing_it_fails() {
        let mut texts = RowTexts::Memory(b"{}".to_vec());
        let mut pending = texts.begin(64).unwrap();
        let a = pending
            .push_with(|out| {
                out.extend_from_slice(b"{\"a\":1}");
                Ok::<_, ()>(())
            })
            .unwrap();
        assert_eq!(a, (2, 7));
        let failed = pending.push_with(|out| {
            out.extend_from_slice(b"{\"half");
            Err("failed")
        });
        assert_eq!(failed, Err("failed"));
        let b = pending.push("{}");
        assert_eq!(b, (9, 2), "the next text takes the failed one's place");
        texts.write(pending).unwrap();
        assert_eq!(
            texts.read(None, a.0, a.1).unwrap().as_deref(),
            Some("{\"a\":1}")
        );
        assert_eq!(texts.read(None, b.0, b.1).unwrap().as_deref(), Some("{}"));
    }

    #[test]
    fn positions_from_a_damaged_database_are_errors_or_lost_texts_not_panics() {
        let path = std::env::temp_dir().join(format!("bt-row-texts-bad-{}", std::process::id()));
        let mut file = RowTexts::beside(&path).unwrap();
        let mut pending = file.begin(0).unwrap();
        let (at, len) = pending.push("{}");
        file.write(pending).unwrap();
        let memory = RowTexts::Memory(b"{}".to_vec());
        for texts in [&file, &memory] {
            assert!(texts.read(None, at, -1).is_err(), "a negative length");
            assert!(texts.read(None, -1, len).is_err(), "a negative position");
        }
        // Past the file's end is a lost text (nothing is allocated for it); memory loses none.
        assert_eq!(file.read(None, at, i64::MAX).unwrap(), None);
        assert_eq!(file.read(None, i64::MAX, len).unwrap(), None);
        assert!(memory.read(None, at, i64::MAX).is_err());
        assert!(memory.read(None, i64::MAX, len).is_err());
        std::fs::remove_file(format!("{}-rows", path.display())).unwrap();
    }
}
