//! The embedded store: organisations' objects (projects, experiments, datasets), rows with their
//! version history, and uploaded blobs, in SQLite (a file, or in memory).

use std::path::Path;
use std::time::{Duration, Instant};

use braintrust_core::merge::{apply_array_deletes, merge_row_into};
use rusqlite::{Connection, OptionalExtension, params};

mod raw_fields;
mod row_texts;
mod rows;

use row_texts::RowTexts;
use rows::{FILL_FROM_2, MIGRATE_FROM_2, MIGRATE_FROM_3, RowIndex, is_control_field};
pub(crate) use rows::{RawFields, RowWrite};
use serde_json::{Map, Value};

/// First transaction id handed out by a fresh store (19 decimal digits, like the service's).
const FIRST_XACT_ID: u64 = 1_000_000_000_000_000_000;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed.
    #[error("database error: {0}")]
    Database(#[from] rusqlite::Error),
    /// The database file was written by an incompatible version of braintrust-local.
    #[error(
        "the database has schema version {0}, this braintrust-local needs {SCHEMA_VERSION}: use a new file (or --memory)"
    )]
    Incompatible(i64),
    /// Stored JSON could not be read back.
    #[error("stored data is corrupt: {0}")]
    Corrupt(#[from] serde_json::Error),
    /// The file of row texts beside the database could not be opened, read or written.
    #[error("row texts file {}: {source}", path.display())]
    RowTexts {
        /// The file.
        path: std::path::PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// A row's place in the row texts does not hold a text.
    #[error("row texts are corrupt: {0}")]
    RowTextsCorrupt(String),
    /// Other connections kept the database file locked for longer than opening waits.
    #[error("the database file stayed locked by other connections for {waited:?} while {doing}")]
    Busy {
        /// What was being done.
        doing: &'static str,
        /// How long it waited.
        waited: Duration,
    },
}

/// The kinds of registered objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ObjectKind {
    Project,
    Experiment,
    Dataset,
}

impl ObjectKind {
    fn as_str(self) -> &'static str {
        match self {
            ObjectKind::Project => "project",
            ObjectKind::Experiment => "experiment",
            ObjectKind::Dataset => "dataset",
        }
    }
}

/// A page of rows read back.
#[derive(Debug)]
pub(crate) struct RowPage {
    pub(crate) rows: Vec<Value>,
    pub(crate) cursor: Option<String>,
}

/// The SQLite-backed store.
#[derive(Debug)]
pub(crate) struct Store {
    conn: Connection,
    /// Row ids to current rows, kept beside the tables (see [`rows`]).
    index: RowIndex,
    /// The text of each row version (see [`row_texts`]).
    texts: RowTexts,
}

/// Bumped whenever `SCHEMA` changes incompatibly.
const SCHEMA_VERSION: i64 = 4;

/// Current rows point (`hid`) at their latest version in `row_history`, which holds every
/// version once: where its text is in the row texts (`data_at`, `data_len`; see [`row_texts`]),
/// or, for versions written before schema 4, the text itself (`data`). Objects with rows are
/// interned as `oid`s. No table is indexed by row id: ids are random, so such an index would
/// rewrite pages all over the file on every write (the store keeps that index in memory
/// instead). Nothing is ever deleted from `row_history`, so SQLite's own rowids (one past the
/// largest) are never reused and `hid` needs no `AUTOINCREMENT`, which updated
/// `sqlite_sequence` at every insert (about 2,500 instructions a row). Files made before keep
/// their `AUTOINCREMENT`; both number versions alike.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS objects (
    kind TEXT NOT NULL, id TEXT PRIMARY KEY, parent_id TEXT NOT NULL, name TEXT NOT NULL,
    data TEXT NOT NULL, UNIQUE (kind, parent_id, name));
CREATE TABLE IF NOT EXISTS row_objects (
    oid INTEGER PRIMARY KEY, object_type TEXT NOT NULL, object_id TEXT NOT NULL,
    UNIQUE (object_type, object_id));
CREATE TABLE IF NOT EXISTS rows (
    oid INTEGER NOT NULL, seq INTEGER NOT NULL, row_id TEXT NOT NULL,
    xact_id INTEGER NOT NULL, hid INTEGER NOT NULL,
    PRIMARY KEY (oid, seq)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS row_history (
    hid INTEGER PRIMARY KEY, oid INTEGER NOT NULL, row_id TEXT NOT NULL,
    xact_id INTEGER NOT NULL, deleted INTEGER NOT NULL, data TEXT,
    data_at INTEGER, data_len INTEGER);
CREATE INDEX IF NOT EXISTS history_by_object ON row_history (oid, hid);
CREATE TABLE IF NOT EXISTS function_versions (
    hid INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL, xact_id INTEGER NOT NULL,
    project_id TEXT NOT NULL, slug TEXT NOT NULL, data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS functions_by_id ON function_versions (id, xact_id);
CREATE INDEX IF NOT EXISTS functions_by_slug ON function_versions (project_id, slug, xact_id);
CREATE TABLE IF NOT EXISTS blobs (
    key TEXT PRIMARY KEY, token TEXT NOT NULL, content_type TEXT, data BLOB);
CREATE TABLE IF NOT EXISTS attachments (
    key TEXT PRIMARY KEY, filename TEXT NOT NULL, content_type TEXT NOT NULL,
    upload_token TEXT NOT NULL, download_token TEXT NOT NULL, status TEXT);
";

/// Prepared statements a store's connection keeps (more than it uses).
const STATEMENT_CACHE: usize = 64;

/// How long opening a store waits for other connections to the file to release their locks.
const LOCK_WAIT: Duration = Duration::from_secs(30);

/// Puts a file in WAL mode, once for good: the mode is kept in the file. Converting needs the
/// file to itself, and SQLite answers "database is locked" at once instead of waiting (its busy
/// handler is not run for this), so while other connections hold it (stores opened together on
/// a new file) this tries again, backing off, until `deadline`.
fn enable_wal(conn: &Connection, deadline: Instant) -> Result<(), StoreError> {
    let started = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        let mode: Result<String, rusqlite::Error> =
            conn.query_row("PRAGMA journal_mode", [], |r| r.get(0));
        let attempt = match mode {
            Ok(mode) if mode.eq_ignore_ascii_case("wal") => return Ok(()),
            Ok(_) => conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0)),
            Err(e) => Err(e),
        };
        match attempt {
            Ok(mode) if mode.eq_ignore_ascii_case("wal") => return Ok(()),
            // Refused without an error: another connection holds the file.
            Ok(_) => {}
            Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy) => {}
            Err(e) => return Err(e.into()),
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(StoreError::Busy {
                doing: "switching it to WAL mode",
                waited: now - started,
            });
        }
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

impl Store {
    /// Opens (creating if needed) a store in a file, with its row texts in `<path>-rows`.
    pub(crate) fn open(path: &Path) -> Result<Store, StoreError> {
        let conn = Connection::open(path)?;
        // Several processes (nextest runs one per test) may share a file: wait for locks.
        conn.busy_timeout(LOCK_WAIT)?;
        enable_wal(&conn, Instant::now() + LOCK_WAIT)?;
        conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA cache_size = -16384;")?;
        Store::init(conn, RowTexts::beside(path)?)
    }

    /// A store that lives in memory only.
    pub(crate) fn in_memory() -> Result<Store, StoreError> {
        Store::init(Connection::open_in_memory()?, RowTexts::Memory(Vec::new()))
    }

    fn init(mut conn: Connection, texts: RowTexts) -> Result<Store, StoreError> {
        // Room for every statement the store caches (rusqlite keeps 16), so that reads
        // between writes do not push the write path's statements out to be compiled again.
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        // Under the write lock, so that of several processes opening one file only the first
        // creates or migrates the tables; a failed migration changes nothing.
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        let tables: i64 = tx.query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'",
            [],
            |r| r.get(0),
        )?;
        match version {
            _ if tables == 0 || version == SCHEMA_VERSION => tx.execute_batch(SCHEMA)?,
            // Moves the rows into this schema's tables.
            2 => tx.execute_batch(&format!("{MIGRATE_FROM_2} {SCHEMA} {FILL_FROM_2}"))?,
            // Versions written before keep their texts in `data`.
            3 => tx.execute_batch(&format!("{MIGRATE_FROM_3} {SCHEMA}"))?,
            _ => return Err(StoreError::Incompatible(version)),
        }
        tx.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION};"))?;
        tx.commit()?;
        Ok(Store {
            conn,
            index: RowIndex::default(),
            texts,
        })
    }

    /// A persistent setting, created with `init` on first use.
    pub(crate) fn meta_or_init(
        &self,
        key: &str,
        init: impl FnOnce() -> String,
    ) -> Result<String, StoreError> {
        let found: Option<String> = self
            .conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()?;
        if let Some(value) = found {
            return Ok(value);
        }
        let value = init();
        self.conn.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2)",
            params![key, value],
        )?;
        Ok(value)
    }

    /// The version of an object pinned to an environment, if any.
    pub(crate) fn environment_version(
        &self,
        object_type: &str,
        id: &str,
        environment: &str,
    ) -> Result<Option<String>, StoreError> {
        let key = environment_key(object_type, id, environment);
        Ok(self
            .conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()?)
    }

    /// Pins an object's version to an environment.
    pub(crate) fn set_environment_version(
        &self,
        object_type: &str,
        id: &str,
        environment: &str,
        version: &str,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            params![environment_key(object_type, id, environment), version],
        )?;
        Ok(())
    }

    // === objects ===

    pub(crate) fn object_by_id(
        &self,
        kind: ObjectKind,
        id: &str,
    ) -> Result<Option<Value>, StoreError> {
        let data: Option<String> = self
            .conn
            .query_row(
                "SELECT data FROM objects WHERE kind = ?1 AND id = ?2",
                params![kind.as_str(), id],
                |r| r.get(0),
            )
            .optional()?;
        Ok(data.map(|d| serde_json::from_str(&d)).transpose()?)
    }

    pub(crate) fn object_by_name(
        &self,
        kind: ObjectKind,
        parent_id: &str,
        name: &str,
    ) -> Result<Option<Value>, StoreError> {
        let data: Option<String> = self
            .conn
            .query_row(
                "SELECT data FROM objects WHERE kind = ?1 AND parent_id = ?2 AND name = ?3",
                params![kind.as_str(), parent_id, name],
                |r| r.get(0),
            )
            .optional()?;
        Ok(data.map(|d| serde_json::from_str(&d)).transpose()?)
    }

    pub(crate) fn objects_of(
        &self,
        kind: ObjectKind,
        parent_id: &str,
    ) -> Result<Vec<Value>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT data FROM objects WHERE kind = ?1 AND parent_id = ?2 ORDER BY rowid",
        )?;
        let rows = stmt.query_map(params![kind.as_str(), parent_id], |r| r.get::<_, String>(0))?;
        let mut out = Vec::new();
        for data in rows {
            out.push(serde_json::from_str(&data?)?);
        }
        Ok(out)
    }

    pub(crate) fn insert_object(
        &self,
        kind: ObjectKind,
        id: &str,
        parent_id: &str,
        name: &str,
        data: &Value,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO objects (kind, id, parent_id, name, data) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![kind.as_str(), id, parent_id, name, data.to_string()],
        )?;
        Ok(())
    }

    // === rows ===

    // === prompts and functions ===

    /// Stores a new version of a function (or prompt) row: `_xact_id` is set to a fresh
    /// transaction id; the id is kept when `(project_id, slug)` already exists. Returns the
    /// stored row.
    pub(crate) fn put_function_version(
        &mut self,
        mut row: Map<String, Value>,
    ) -> Result<Value, StoreError> {
        let project_id = row
            .get("project_id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let slug = row
            .get("slug")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let tx = self.conn.transaction()?;
        let existing: Option<String> = tx
            .query_row(
                "SELECT data FROM function_versions WHERE project_id = ?1 AND slug = ?2
                 ORDER BY xact_id DESC LIMIT 1",
                params![project_id, slug],
                |r| r.get(0),
            )
            .optional()?;
        let existing: Option<Map<String, Value>> =
            existing.map(|d| serde_json::from_str(&d)).transpose()?;
        if let Some(existing) = &existing {
            for key in ["id", "created"] {
                if let Some(value) = existing.get(key) {
                    row.insert(key.into(), value.clone());
                }
            }
        }
        let xact = next_xact_id(&tx)?;
        row.insert("_xact_id".into(), Value::String(xact.to_string()));
        let id = row
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let value = Value::Object(row);
        tx.execute(
            "INSERT INTO function_versions (id, xact_id, project_id, slug, data)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![id, xact as i64, project_id, slug, value.to_string()],
        )?;
        tx.commit()?;
        Ok(value)
    }

    /// A function by id: the latest version, or the latest at or before `version`.
    pub(crate) fn function_by_id(
        &self,
        id: &str,
        version: Option<u64>,
    ) -> Result<Option<Value>, StoreError> {
        let data: Option<String> = self
            .conn
            .query_row(
                "SELECT data FROM function_versions WHERE id = ?1 AND xact_id <= ?2
                 ORDER BY xact_id DESC LIMIT 1",
                params![id, version.map_or(i64::MAX, |v| v as i64)],
                |r| r.get(0),
            )
            .optional()?;
        Ok(data.map(|d| serde_json::from_str(&d)).transpose()?)
    }

    /// The latest version (at or before `version`) of every function of a project, optionally
    /// only the one with `slug`.
    pub(crate) fn functions_of_project(
        &self,
        project_id: &str,
        slug: Option<&str>,
        version: Option<u64>,
    ) -> Result<Vec<Value>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT data FROM function_versions f WHERE project_id = ?1
               AND (?2 IS NULL OR slug = ?2) AND xact_id <= ?3
               AND xact_id = (SELECT MAX(xact_id) FROM function_versions g
                              WHERE g.id = f.id AND g.xact_id <= ?3)
             ORDER BY hid",
        )?;
        let rows = stmt.query_map(
            params![project_id, slug, version.map_or(i64::MAX, |v| v as i64)],
            |r| r.get::<_, String>(0),
        )?;
        let mut out = Vec::new();
        for data in rows {
            out.push(serde_json::from_str(&data?)?);
        }
        Ok(out)
    }

    /// Every version of a function, oldest first.
    pub(crate) fn function_versions(&self, id: &str) -> Result<Vec<Value>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT data FROM function_versions WHERE id = ?1 ORDER BY xact_id")?;
        let rows = stmt.query_map(params![id], |r| r.get::<_, String>(0))?;
        let mut out = Vec::new();
        for data in rows {
            out.push(serde_json::from_str(&data?)?);
        }
        Ok(out)
    }

    // === blobs ===

    /// Registers an upload slot guarded by `token`.
    pub(crate) fn create_blob_slot(
        &self,
        key: &str,
        token: &str,
        content_type: Option<&str>,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT OR REPLACE INTO blobs (key, token, content_type, data) VALUES (?1, ?2, ?3, NULL)",
            params![key, token, content_type],
        )?;
        Ok(())
    }

    /// Stores an upload. Returns false when the key is unknown or the token does not match.
    pub(crate) fn put_blob(&self, key: &str, token: &str, data: &[u8]) -> Result<bool, StoreError> {
        let changed = self.conn.execute(
            "UPDATE blobs SET data = ?3 WHERE key = ?1 AND token = ?2",
            params![key, token, data],
        )?;
        Ok(changed == 1)
    }

    /// An uploaded blob's bytes (None when missing or not uploaded yet).
    pub(crate) fn blob(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let data: Option<Option<Vec<u8>>> = self
            .conn
            .query_row("SELECT data FROM blobs WHERE key = ?1", [key], |r| r.get(0))
            .optional()?;
        Ok(data.flatten())
    }
}

/// An attachment's metadata: names, the tokens of its signed URLs, and its reported status.
#[derive(Debug, Clone)]
pub(crate) struct AttachmentRecord {
    pub(crate) key: String,
    pub(crate) filename: String,
    pub(crate) content_type: String,
    pub(crate) upload_token: String,
    pub(crate) download_token: String,
    pub(crate) status: Option<braintrust_core::attachment::AttachmentStatus>,
}

impl Store {
    /// Records (or replaces) an attachment's metadata; its status starts unreported.
    pub(crate) fn put_attachment(&self, record: &AttachmentRecord) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT OR REPLACE INTO attachments
             (key, filename, content_type, upload_token, download_token, status)
             VALUES (?1, ?2, ?3, ?4, ?5, NULL)",
            params![
                record.key,
                record.filename,
                record.content_type,
                record.upload_token,
                record.download_token
            ],
        )?;
        Ok(())
    }

    /// An attachment's metadata.
    pub(crate) fn attachment(&self, key: &str) -> Result<Option<AttachmentRecord>, StoreError> {
        let found = self
            .conn
            .query_row(
                "SELECT key, filename, content_type, upload_token, download_token, status
                 FROM attachments WHERE key = ?1",
                [key],
                |r| {
                    Ok((
                        AttachmentRecord {
                            key: r.get(0)?,
                            filename: r.get(1)?,
                            content_type: r.get(2)?,
                            upload_token: r.get(3)?,
                            download_token: r.get(4)?,
                            status: None,
                        },
                        r.get::<_, Option<String>>(5)?,
                    ))
                },
            )
            .optional()?;
        let Some((mut record, status)) = found else {
            return Ok(None);
        };
        if let Some(status) = status {
            record.status = Some(serde_json::from_str(&status)?);
        }
        Ok(Some(record))
    }

    /// Records an attachment's upload status. False when the key is unknown.
    pub(crate) fn set_attachment_status(
        &self,
        key: &str,
        status: &braintrust_core::attachment::AttachmentStatus,
    ) -> Result<bool, StoreError> {
        let changed = self.conn.execute(
            "UPDATE attachments SET status = ?2 WHERE key = ?1",
            params![key, serde_json::to_string(status)?],
        )?;
        Ok(changed == 1)
    }
}

/// Allocates the next transaction id inside `tx`.
fn next_xact_id(tx: &rusqlite::Transaction<'_>) -> Result<u64, StoreError> {
    // Cached: compiling the two statements cost more than running them, once per write.
    let last: Option<String> = tx
        .prepare_cached("SELECT value FROM meta WHERE key = 'last_xact_id'")?
        .query_row([], |r| r.get(0))
        .optional()?;
    let xact = last
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(FIRST_XACT_ID, |v| v + 1);
    tx.prepare_cached(
        "INSERT INTO meta (key, value) VALUES ('last_xact_id', ?1)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )?
    .execute([xact.to_string()])?;
    Ok(xact)
}

fn environment_key(object_type: &str, id: &str, environment: &str) -> String {
    format!("environment\u{1f}{object_type}\u{1f}{id}\u{1f}{environment}")
}

/// Server-side merge of one incoming row (not a delete) into what is stored.
fn merge_stored(
    existing: Option<Map<String, Value>>,
    mut incoming: Map<String, Value>,
    now: &str,
) -> Map<String, Value> {
    let is_merge = incoming.get("_is_merge").and_then(Value::as_bool) == Some(true);
    let array_deletes = incoming.remove("_array_delete");
    let mut merged = match existing {
        Some(mut stored) if is_merge => {
            // `merge_row_into` treats the stored row as a full row: ids and `created` are kept,
            // objects deep-merge, tags union, `_merge_paths` replace.
            incoming.retain(|k, _| !is_control_field(k) || k == "_merge_paths");
            merge_row_into(&mut stored, incoming);
            stored
        }
        existing => {
            incoming.retain(|k, _| !is_control_field(k));
            // A full row replaces, but `created` stays that of the first full row.
            if let Some(created) = existing.and_then(|mut e| e.remove("created")) {
                incoming.insert("created".into(), created);
            }
            incoming
        }
    };
    if let Some(deletes) = array_deletes {
        apply_array_deletes(&mut merged, &deletes);
    }
    merged.retain(|k, _| !is_control_field(k));
    if !merged.contains_key("created") {
        merged.insert("created".into(), Value::String(now.to_owned()));
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;
    use braintrust_core::object::ObjectIds;
    use serde_json::json;
    use serde_json::value::RawValue;

    fn write(object: &ObjectIds, v: Value) -> RowWrite<'static> {
        let fields = v.as_object().unwrap().clone();
        let row_id = fields["id"].as_str().unwrap().to_owned();
        RowWrite::from_map(object.clone(), row_id, fields).unwrap()
    }

    #[test]
    fn files_of_another_schema_version_are_refused_and_ours_reopen() {
        let path = std::env::temp_dir().join(format!(
            "bt-schema-{}.sqlite",
            braintrust_core::id::new_uuid_v4()
        ));
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch("CREATE TABLE rows (x TEXT); PRAGMA user_version = 1;")
                .unwrap();
        }
        let err = Store::open(&path).unwrap_err();
        assert!(matches!(err, StoreError::Incompatible(1)), "{err}");
        assert!(err.to_string().contains("new file"), "{err}");
        std::fs::remove_file(&path).unwrap();

        let store = Store::open(&path).unwrap();
        drop(store);
        assert!(Store::open(&path).is_ok(), "a file of this version reopens");
        remove_db(&path);
    }

    fn temp_db(name: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!(
            "bt-{name}-{}.sqlite",
            braintrust_core::id::new_uuid_v4()
        ))
    }

    fn remove_db(path: &Path) {
        for suffix in ["", "-wal", "-shm", "-rows"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }

    #[test]
    fn schema_2_files_are_migrated_with_their_history() {
        let path = temp_db("schema2");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(
                "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
                 CREATE TABLE rows (
                     object_type TEXT NOT NULL, object_id TEXT NOT NULL, row_id TEXT NOT NULL,
                     seq INTEGER NOT NULL, xact_id INTEGER NOT NULL, hid INTEGER NOT NULL,
                     PRIMARY KEY (object_type, object_id, row_id));
                 CREATE INDEX rows_by_seq ON rows (object_type, object_id, seq);
                 CREATE TABLE row_history (
                     hid INTEGER PRIMARY KEY AUTOINCREMENT, object_type TEXT NOT NULL,
                     object_id TEXT NOT NULL, row_id TEXT NOT NULL, xact_id INTEGER NOT NULL,
                     deleted INTEGER NOT NULL, data TEXT);
                 CREATE INDEX history_by_key
                     ON row_history (object_type, object_id, row_id, xact_id);
                 INSERT INTO meta VALUES ('last_xact_id', '11');
                 INSERT INTO row_history VALUES
                     (1, 'dataset', 'd', 'a', 10, 0, '{\"id\":\"a\",\"input\":1,\"_xact_id\":\"10\"}'),
                     (2, 'experiment', 'e', 'b', 10, 0, '{\"id\":\"b\",\"_xact_id\":\"10\"}'),
                     (3, 'dataset', 'd', 'a', 11, 0, '{\"id\":\"a\",\"input\":2,\"_xact_id\":\"11\"}');
                 INSERT INTO rows VALUES ('dataset', 'd', 'a', 1, 11, 3), ('experiment', 'e', 'b', 2, 10, 2);
                 PRAGMA user_version = 2;",
            )
            .unwrap();
        }
        let dataset = ObjectIds::dataset("d");
        {
            let mut store = Store::open(&path).unwrap();
            assert_eq!(all(&store, &dataset)[0]["input"], 2);
            let pinned = store
                .read_rows(&dataset, Some(10), None, 10, &|_| true)
                .unwrap();
            assert_eq!(pinned.rows[0]["input"], 1, "history survives the migration");
            assert_eq!(store.row_count(&ObjectIds::experiment("e")).unwrap(), 1);
            let xact = store
                .apply_rows(vec![write(
                    &dataset,
                    json!({"id": "a", "_is_merge": true, "output": 3}),
                )])
                .unwrap();
            assert_eq!(xact, 12, "transaction ids continue");
        }
        let store = Store::open(&path).unwrap();
        let rows = all(&store, &dataset);
        assert_eq!(rows.len(), 1);
        assert_eq!(
            (&rows[0]["input"], &rows[0]["output"]),
            (&json!(2), &json!(3))
        );
        drop(store);
        remove_db(&path);
    }

    #[test]
    fn schema_3_files_keep_their_texts_in_the_database_and_new_ones_go_beside_it() {
        let path = temp_db("schema3");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(
                "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
                 CREATE TABLE row_objects (
                     oid INTEGER PRIMARY KEY, object_type TEXT NOT NULL, object_id TEXT NOT NULL,
                     UNIQUE (object_type, object_id));
                 CREATE TABLE rows (
                     oid INTEGER NOT NULL, seq INTEGER NOT NULL, row_id TEXT NOT NULL,
                     xact_id INTEGER NOT NULL, hid INTEGER NOT NULL,
                     PRIMARY KEY (oid, seq)) WITHOUT ROWID;
                 CREATE TABLE row_history (
                     hid INTEGER PRIMARY KEY AUTOINCREMENT, oid INTEGER NOT NULL,
                     row_id TEXT NOT NULL, xact_id INTEGER NOT NULL, deleted INTEGER NOT NULL,
                     data TEXT);
                 CREATE INDEX history_by_object ON row_history (oid, hid);
                 INSERT INTO meta VALUES ('last_xact_id', '10');
                 INSERT INTO row_objects VALUES (1, 'dataset', 'd');
                 INSERT INTO row_history VALUES
                     (1, 1, 'a', 10, 0, '{\"id\":\"a\",\"input\":1,\"_xact_id\":\"10\"}');
                 INSERT INTO rows VALUES (1, 1, 'a', 10, 1);
                 PRAGMA user_version = 3;",
            )
            .unwrap();
        }
        let dataset = ObjectIds::dataset("d");
        {
            let mut store = Store::open(&path).unwrap();
            assert_eq!(all(&store, &dataset)[0]["input"], 1);
            store
                .apply_rows(vec![
                    write(&dataset, json!({"id": "a", "_is_merge": true, "output": 2})),
                    write(&dataset, json!({"id": "b", "input": 3})),
                ])
                .unwrap();
        }
        let texts = std::fs::read_to_string(format!("{}-rows", path.display())).unwrap();
        assert!(
            texts.contains("\"output\":2") && texts.contains("\"input\":3"),
            "new versions are in the row texts: {texts}"
        );
        let store = Store::open(&path).unwrap();
        let rows = all(&store, &dataset);
        assert_eq!(rows.len(), 2);
        assert_eq!(
            (&rows[0]["input"], &rows[0]["output"], &rows[1]["input"]),
            (&json!(1), &json!(2), &json!(3))
        );
        let pinned = store
            .read_rows(&dataset, Some(10), None, 10, &|_| true)
            .unwrap();
        assert_eq!(pinned.rows.len(), 1, "history survives the migration");
        assert_eq!(pinned.rows[0].get("output"), None);
        drop(store);
        remove_db(&path);
    }

    #[test]
    fn versions_are_numbered_in_write_order_without_a_sequence_table_entry() {
        let path = temp_db("hids");
        let obj = ObjectIds::project_logs("p");
        for (round, id) in ["a", "b", "a"].into_iter().enumerate() {
            let mut store = Store::open(&path).unwrap();
            store
                .apply_rows(vec![write(&obj, json!({"id": id, "input": round}))])
                .unwrap();
        }
        let conn = Connection::open(&path).unwrap();
        let hids: Vec<(i64, String)> = conn
            .prepare("SELECT hid, row_id FROM row_history ORDER BY hid")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            hids,
            [
                (1, "a".to_owned()),
                (2, "b".to_owned()),
                (3, "a".to_owned())
            ]
        );
        let sequenced: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_sequence WHERE name = 'row_history'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(
            sequenced, 0,
            "history inserts do not update sqlite_sequence"
        );
        drop(conn);
        let store = Store::open(&path).unwrap();
        let rows = all(&store, &obj);
        assert_eq!(
            rows.iter()
                .map(|r| (&r["id"], &r["input"]))
                .collect::<Vec<_>>(),
            [(&json!("a"), &json!(2)), (&json!("b"), &json!(1))]
        );
        drop(store);
        remove_db(&path);
    }

    #[test]
    fn keys_that_need_escaping_are_stored_as_valid_json() {
        let mut store = Store::in_memory().unwrap();
        let obj = ObjectIds::project_logs("p");
        let keys = [
            "say \"hi\"",
            "back\\slash",
            "tab\there",
            "nul\u{0}",
            "del\u{7f}",
            "é\u{85}",
        ];
        let mut row = Map::new();
        row.insert("id".into(), json!("a"));
        for (i, key) in keys.iter().enumerate() {
            row.insert((*key).into(), json!(i));
        }
        store
            .apply_rows(vec![write(&obj, Value::Object(row))])
            .unwrap();
        let stored = all(&store, &obj);
        for (i, key) in keys.iter().enumerate() {
            assert_eq!(stored[0][*key], json!(i), "{key:?} in {}", stored[0]);
        }
    }

    #[test]
    fn versions_whose_texts_were_lost_are_skipped_and_the_rest_read() {
        let path = temp_db("lost");
        let obj = ObjectIds::project_logs("p");
        let mut store = Store::open(&path).unwrap();
        store
            .apply_rows(vec![
                write(&obj, json!({"id": "a", "input": 1})),
                write(&obj, json!({"id": "b", "input": 2})),
            ])
            .unwrap();
        let texts_path = format!("{}-rows", path.display());
        let kept = std::fs::metadata(&texts_path).unwrap().len();
        store
            .apply_rows(vec![
                write(&obj, json!({"id": "b", "_is_merge": true, "output": 3})),
                write(&obj, json!({"id": "c", "input": 4})),
            ])
            .unwrap();
        // As if the machine lost power before the last texts reached the disk.
        std::fs::OpenOptions::new()
            .write(true)
            .open(&texts_path)
            .unwrap()
            .set_len(kept)
            .unwrap();
        let ids: Vec<Value> = all(&store, &obj).iter().map(|r| r["id"].clone()).collect();
        assert_eq!(ids, [json!("a")]);
        drop(store);
        remove_db(&path);
    }

    #[test]
    fn switching_a_locked_file_to_wal_gives_up_at_the_deadline_with_a_clear_error() {
        let path = temp_db("wal-locked");
        let holder = Connection::open(&path).unwrap();
        // A read transaction in the default rollback mode keeps the file shared.
        holder
            .execute_batch("CREATE TABLE t (x); BEGIN; SELECT * FROM t;")
            .unwrap();
        let conn = Connection::open(&path).unwrap();
        conn.busy_timeout(Duration::ZERO).unwrap();
        let err = enable_wal(&conn, Instant::now()).unwrap_err();
        assert!(matches!(err, StoreError::Busy { .. }), "{err:?}");
        assert!(
            err.to_string().contains("locked by other connections"),
            "{err}"
        );
        holder.execute_batch("COMMIT").unwrap();
        enable_wal(&conn, Instant::now()).unwrap();
        drop((holder, conn));
        // The mode is the file's now.
        let mode: String = Connection::open(&path)
            .unwrap()
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        remove_db(&path);
    }

    #[test]
    fn stores_opened_together_on_one_new_file_share_it() {
        let path = temp_db("together");
        let obj = ObjectIds::project_logs("p");
        std::thread::scope(|scope| {
            for i in 0..4 {
                let (path, obj) = (&path, &obj);
                scope.spawn(move || {
                    let mut store = Store::open(path).unwrap();
                    for j in 0..5 {
                        store
                            .apply_rows(vec![write(obj, json!({"id": format!("{i}-{j}"), "n": j}))])
                            .unwrap();
                    }
                });
            }
        });
        let store = Store::open(&path).unwrap();
        let rows = all(&store, &obj);
        assert_eq!(rows.len(), 20);
        for row in &rows {
            let id = row["id"].as_str().unwrap();
            assert_eq!(id[2..], row["n"].to_string(), "{row}");
        }
        drop(store);
        remove_db(&path);
    }

    #[test]
    fn stores_sharing_a_file_see_each_others_writes() {
        let path = temp_db("shared");
        let obj = ObjectIds::project_logs("p");
        let mut a = Store::open(&path).unwrap();
        let mut b = Store::open(&path).unwrap();
        a.apply_rows(vec![write(&obj, json!({"id": "r", "input": 1}))])
            .unwrap();
        b.apply_rows(vec![write(
            &obj,
            json!({"id": "r", "_is_merge": true, "output": 2}),
        )])
        .unwrap();
        a.apply_rows(vec![write(
            &obj,
            json!({"id": "r", "_is_merge": true, "tags": ["t"]}),
        )])
        .unwrap();
        let rows = all(&b, &obj);
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!(
            (&rows[0]["input"], &rows[0]["output"], &rows[0]["tags"]),
            (&json!(1), &json!(2), &json!(["t"]))
        );
        b.apply_rows(vec![write(
            &obj,
            json!({"id": "r", "_object_delete": true}),
        )])
        .unwrap();
        a.apply_rows(vec![write(&obj, json!({"id": "r", "input": 4}))])
            .unwrap();
        assert_eq!(all(&b, &obj), all(&a, &obj));
        assert_eq!(a.row_count(&obj).unwrap(), 1);
        drop((a, b));
        remove_db(&path);
    }

    #[test]
    fn new_rows_are_stored_as_merging_into_nothing_would_store_them() {
        let mut store = Store::in_memory().unwrap();
        let obj = ObjectIds::experiment("e");
        // Written without parsing: control fields go, `created` is added, keys are escaped.
        let text =
            r#"{"id":"n","_is_merge":true,"input":{"a":[1,2.5e3]},"k\"q":"v","_merge_paths":[]}"#;
        let fields: RawFields<'_> =
            serde_json::from_str::<indexmap::IndexMap<String, &RawValue>>(text)
                .unwrap()
                .into_iter()
                .map(|(k, v)| (k.into(), std::borrow::Cow::Borrowed(v)))
                .collect();
        store
            .apply_rows(vec![RowWrite {
                object: obj.clone(),
                row_id: "n".into(),
                fields,
            }])
            .unwrap();
        let row = &all(&store, &obj)[0];
        let keys: Vec<&str> = row
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, ["id", "input", "k\"q", "created", "_xact_id"]);
        assert_eq!(row["input"], json!({"a": [1, 2500.0]}));
    }

    fn all(store: &Store, object: &ObjectIds) -> Vec<Value> {
        store
            .read_rows(object, None, None, 1000, &|_| true)
            .unwrap()
            .rows
    }

    /// New rows are inserted several to a statement; rows that read or change earlier ones in
    /// the same write (a merge, a delete, an array delete) see them, and versions keep their
    /// write order, in the file and after reopening it.
    #[test]
    fn many_new_rows_in_one_write_mix_with_merges_and_deletes() {
        let path = temp_db("many");
        let obj = ObjectIds::project_logs("p");
        let other = ObjectIds::experiment("e");
        let mut writes = Vec::new();
        for i in 0..75 {
            let object = if i % 10 == 9 { &other } else { &obj };
            writes.push(write(object, json!({"id": format!("r{i}"), "input": i})));
            if i == 40 {
                // Merges into a row of this write not inserted yet, then deletes another.
                writes.push(write(
                    &obj,
                    json!({"id": "r35", "_is_merge": true, "output": "o"}),
                ));
                writes.push(write(&obj, json!({"id": "r36", "_object_delete": true})));
            }
            if i == 70 {
                writes.push(write(
                    &obj,
                    json!({"id": "new-with-array-delete", "tags": ["t"], "_array_delete": []}),
                ));
            }
        }
        let count = writes.len() as i64;
        {
            let mut store = Store::open(&path).unwrap();
            store.apply_rows(writes).unwrap();
            // A second write continues the numbering and merges into the first's rows.
            store
                .apply_rows(vec![
                    write(&obj, json!({"id": "r70", "_is_merge": true, "output": 70})),
                    write(&obj, json!({"id": "late", "input": "l"})),
                ])
                .unwrap();
        }
        let conn = Connection::open(&path).unwrap();
        let hids: Vec<i64> = conn
            .prepare("SELECT hid FROM row_history ORDER BY hid")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(hids, (1..=count + 2).collect::<Vec<_>>());
        drop(conn);
        for reopened in [false, true] {
            let store = Store::open(&path).unwrap();
            let rows = all(&store, &obj);
            let ids: Vec<&str> = rows.iter().map(|r| r["id"].as_str().unwrap()).collect();
            let mut expected: Vec<String> = (0..75)
                .filter(|i| i % 10 != 9 && *i != 36)
                .map(|i| format!("r{i}"))
                .collect();
            expected.insert(
                expected.iter().position(|id| id == "r71").unwrap(),
                "new-with-array-delete".into(),
            );
            expected.push("late".into());
            assert_eq!(ids, expected, "reopened: {reopened}");
            let by_id = |id: &str| rows.iter().find(|r| r["id"] == id).unwrap();
            assert_eq!(
                (&by_id("r35")["input"], &by_id("r35")["output"]),
                (&json!(35), &json!("o"))
            );
            assert_eq!(by_id("r70")["output"], 70);
            assert_eq!(by_id("new-with-array-delete")["tags"], json!(["t"]));
            assert_eq!(all(&store, &other).len(), 7);
            assert_eq!(store.row_count(&obj).unwrap(), expected.len() as u64);
        }
        let mut store = Store::open(&path).unwrap();
        store
            .apply_rows(vec![write(
                &obj,
                json!({"id": "r0", "_is_merge": true, "output": 0}),
            )])
            .unwrap();
        assert_eq!(
            all(&store, &obj)[0]["output"],
            0,
            "the reloaded index finds old rows"
        );
        drop(store);
        remove_db(&path);
    }

    #[test]
    fn merge_semantics_and_xact_ids() {
        let mut store = Store::in_memory().unwrap();
        let obj = ObjectIds::project_logs("p");
        let x1 = store
            .apply_rows(vec![write(
                &obj,
                json!({"id": "a", "created": "c1", "metadata": {"m": {"x": 1}}, "tags": ["t1"]}),
            )])
            .unwrap();
        let x2 = store
            .apply_rows(vec![write(
                &obj,
                json!({"id": "a", "_is_merge": true, "created": "c2",
                "metadata": {"m": {"y": 2}}, "tags": ["t2", "t1"], "_audit_source": "external"}),
            )])
            .unwrap();
        assert!(x2 > x1);
        let rows = all(&store, &obj);
        assert_eq!(
            rows,
            vec![
                json!({"id": "a", "created": "c1", "metadata": {"m": {"x": 1, "y": 2}},
                        "tags": ["t1", "t2"], "_xact_id": x2.to_string()})
            ]
        );
        // A full row (no `_is_merge`) replaces but keeps the first `created`.
        store
            .apply_rows(vec![write(
                &obj,
                json!({"id": "a", "created": "c3", "output": 1}),
            )])
            .unwrap();
        let rows = all(&store, &obj);
        assert_eq!(rows[0]["created"], "c1");
        assert_eq!(rows[0].get("metadata"), None);
        // Delete, then the version before it is still readable.
        let x4 = store
            .apply_rows(vec![write(
                &obj,
                json!({"id": "a", "_object_delete": true}),
            )])
            .unwrap();
        assert!(all(&store, &obj).is_empty());
        let pinned = store
            .read_rows(&obj, Some(x2), None, 10, &|_| true)
            .unwrap()
            .rows;
        assert_eq!(pinned[0]["tags"], json!(["t1", "t2"]));
        assert!(
            store
                .read_rows(&obj, Some(x4), None, 10, &|_| true)
                .unwrap()
                .rows
                .is_empty()
        );
    }

    #[test]
    fn merge_paths_and_array_deletes() {
        let mut store = Store::in_memory().unwrap();
        let obj = ObjectIds::dataset("d");
        store
            .apply_rows(vec![write(
                &obj,
                json!({"id": "a", "input": {"a": {"b": 1}, "c": 2}, "tags": ["x", "y"]}),
            )])
            .unwrap();
        store
            .apply_rows(vec![write(&obj, json!({"id": "a", "_is_merge": true, "input": {"a": {"z": 3}},
                "_merge_paths": [["input", "a"]], "_array_delete": [{"path": ["tags"], "delete": ["x"]}]}))])
            .unwrap();
        let row = &all(&store, &obj)[0];
        assert_eq!(row["input"], json!({"a": {"z": 3}, "c": 2}));
        assert_eq!(row["tags"], json!(["y"]));
        assert!(row.get("_merge_paths").is_none());
    }

    #[test]
    fn paging_follows_cursors() {
        let mut store = Store::in_memory().unwrap();
        let obj = ObjectIds::experiment("e");
        let writes = (0..5)
            .map(|i| write(&obj, json!({"id": format!("r{i}"), "input": i})))
            .collect();
        store.apply_rows(writes).unwrap();
        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let page = store
                .read_rows(&obj, None, cursor.as_deref(), 2, &|_| true)
                .unwrap();
            seen.extend(page.rows.iter().map(|r| r["input"].as_i64().unwrap()));
            match page.cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        assert_eq!(seen, vec![0, 1, 2, 3, 4]);
    }

    mod flush_boundaries {
        use super::*;
        use braintrust_core::merge::merge_row_batch;
        use braintrust_core::row::Row;
        use proptest::prelude::*;

        fn value() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                (-3i64..3).prop_map(Value::from),
                "[xy]{0,1}".prop_map(Value::String),
            ];
            leaf.prop_recursive(3, 16, 3, |inner| {
                prop_oneof![
                    proptest::collection::vec(inner.clone(), 0..2).prop_map(Value::Array),
                    proptest::collection::btree_map("[ab]", inner, 0..3)
                        .prop_map(|m| Value::Object(m.into_iter().collect())),
                ]
            })
        }

        /// A span's rows: a full row, then merge rows (some with `_merge_paths`), one key.
        fn rows() -> impl Strategy<Value = Vec<Value>> {
            let fields = (
                proptest::option::of(value()),
                proptest::option::of(value()),
                proptest::option::of(proptest::collection::btree_set("[pq]", 0..3)),
                proptest::option::of(Just(json!([["input"]]))),
            );
            proptest::collection::vec(fields, 1..6).prop_map(|all| {
                all.into_iter()
                    .enumerate()
                    .map(|(i, (input, output, tags, paths))| {
                        let mut row = json!({"id": "r", "project_id": "p", "log_id": "g",
                                             "_is_merge": i > 0, "created": format!("t{i}")});
                        let m = row.as_object_mut().unwrap();
                        if let Some(v) = input {
                            m.insert("input".into(), v);
                        }
                        if let Some(v) = output {
                            m.insert("output".into(), v);
                        }
                        if let Some(t) = tags {
                            m.insert("tags".into(), json!(t));
                        }
                        if let (Some(p), true) = (paths, i > 0) {
                            m.insert("_merge_paths".into(), p);
                        }
                        row
                    })
                    .collect()
            })
        }

        fn apply(store: &mut Store, rows: Vec<Value>) {
            let obj = ObjectIds::project_logs("p");
            store
                .apply_rows(rows.into_iter().map(|r| write(&obj, r)).collect())
                .unwrap();
        }

        fn stored(store: &Store) -> Value {
            let mut rows = all(store, &ObjectIds::project_logs("p"));
            let mut row = rows.pop().unwrap();
            row.as_object_mut().unwrap().remove("_xact_id");
            row
        }

        proptest! {
            /// Client-side merging within flushes, then the server's merge, stores what applying
            /// every row on its own would.
            #[test]
            fn client_merge_then_server_merge_equals_row_by_row(rows in rows(), split in 0usize..6) {
                let mut one_by_one = Store::in_memory().unwrap();
                for row in rows.clone() {
                    apply(&mut one_by_one, vec![row]);
                }
                let split = split.min(rows.len());
                let mut batched = Store::in_memory().unwrap();
                for part in [&rows[..split], &rows[split..]] {
                    let merged = merge_row_batch(part.iter().map(|r| Row::from_map(r.as_object().unwrap().clone())));
                    apply(&mut batched, merged.into_iter().map(Value::from).collect());
                }
                prop_assert_eq!(stored(&batched), stored(&one_by_one));
            }
        }
    }
}
