//! Rows of logs, experiments and datasets: every version in `row_history` (append-only, its text
//! in the row texts beside the database), the current version of each row in `rows` (in write
//! order), and an in-memory index from row id to current row, so writing a row never updates an
//! index keyed by its random id.

use std::borrow::Cow;
use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;
use std::time::SystemTime;

use braintrust_core::object::{ObjectIds, ObjectType};
use braintrust_core::row::format_created;
use rusqlite::{OptionalExtension, ToSql, Transaction, TransactionBehavior, params};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::row_texts::{PendingTexts, RowTexts};
use super::{RowPage, Store, StoreError, merge_stored, next_xact_id};

pub(crate) use super::raw_fields::RawFields;

/// A row write after validation: which object and row it targets, plus its fields.
#[derive(Debug)]
pub(crate) struct RowWrite<'a> {
    pub(crate) object: ObjectIds,
    pub(crate) row_id: String,
    pub(crate) fields: RawFields<'a>,
}

impl RowWrite<'static> {
    /// A write of fields held as values (rows the server makes itself).
    pub(crate) fn from_map(
        object: ObjectIds,
        row_id: String,
        fields: Map<String, Value>,
    ) -> Result<RowWrite<'static>, StoreError> {
        let fields = fields
            .into_iter()
            .map(|(key, value)| {
                Ok((
                    Cow::Owned(key),
                    Cow::Owned(serde_json::value::to_raw_value(&value)?),
                ))
            })
            .collect::<Result<_, serde_json::Error>>()?;
        Ok(RowWrite {
            object,
            row_id,
            fields,
        })
    }
}

/// Where the current version of a row is.
#[derive(Debug, Clone, Copy)]
struct CurrentRow {
    /// Its place in write order (the `hid` of its first version), the key in `rows`.
    seq: i64,
    /// Its current version in `row_history`.
    hid: i64,
}

/// An object's current rows by row id (looked up once per row written).
type RowsById = HashMap<String, CurrentRow, foldhash::fast::RandomState>;

/// What the store knows without asking SQLite: interned object ids and, per object written to,
/// its current rows by id. Valid only while no other connection has written to the file, which
/// `PRAGMA data_version` tells at the start of each write.
#[derive(Debug, Default)]
pub(super) struct RowIndex {
    oids: HashMap<ObjectIds, i64, foldhash::fast::RandomState>,
    rows: HashMap<i64, RowsById, foldhash::fast::RandomState>,
    data_version: Option<i64>,
}

impl RowIndex {
    /// The interned id of `object`, interned now when new.
    fn oid(&mut self, tx: &Transaction<'_>, object: &ObjectIds) -> Result<i64, StoreError> {
        if let Some(oid) = self.oids.get(object) {
            return Ok(*oid);
        }
        let object_type = object.object_type().as_str();
        tx.prepare_cached(
            "INSERT INTO row_objects (object_type, object_id) VALUES (?1, ?2)
             ON CONFLICT (object_type, object_id) DO NOTHING",
        )?
        .execute(params![object_type, object.id()])?;
        let oid = oid_of(tx, object)?.ok_or(rusqlite::Error::QueryReturnedNoRows)?;
        self.oids.insert(object.clone(), oid);
        Ok(oid)
    }

    /// The current rows of the object `oid`, loaded on first use.
    fn rows_of(&mut self, tx: &Transaction<'_>, oid: i64) -> Result<&mut RowsById, StoreError> {
        match self.rows.entry(oid) {
            Entry::Occupied(rows) => Ok(rows.into_mut()),
            Entry::Vacant(slot) => {
                let mut stmt =
                    tx.prepare_cached("SELECT row_id, seq, hid FROM rows WHERE oid = ?1")?;
                let loaded = stmt
                    .query_map([oid], |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            CurrentRow {
                                seq: r.get(1)?,
                                hid: r.get(2)?,
                            },
                        ))
                    })?
                    .collect::<Result<RowsById, _>>()?;
                Ok(slot.insert(loaded))
            }
        }
    }
}

/// The interned id of `object`, if it has ever had rows.
fn oid_of(conn: &rusqlite::Connection, object: &ObjectIds) -> Result<Option<i64>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT oid FROM row_objects WHERE object_type = ?1 AND object_id = ?2")?
        .query_row(params![object.object_type().as_str(), object.id()], |r| {
            r.get(0)
        })
        .optional()?)
}

/// Control fields a client sends that are never stored.
pub(super) fn is_control_field(key: &str) -> bool {
    key.starts_with('_')
}

/// Whether a raw field is the JSON literal `true`.
fn is_true(value: Option<&Cow<'_, RawValue>>) -> bool {
    value.is_some_and(|v| v.get() == "true")
}

/// Roughly the size of a row's stored text: its fields and what the server adds.
fn text_size(fields: &RawFields<'_>) -> usize {
    fields
        .iter()
        .map(|(k, v)| k.len() + v.get().len() + 4)
        .sum::<usize>()
        + 80
}

/// What the server adds to a new row's stored text, as JSON text: `created` (used when the
/// row has none) and `_xact_id`. The same for every row of a transaction.
struct AddedMembers {
    created: String,
    xact_id: String,
}

impl AddedMembers {
    fn new(now: &str, xact: u64) -> Result<AddedMembers, StoreError> {
        Ok(AddedMembers {
            created: serde_json::to_string(now)?,
            xact_id: format!("\"{xact}\""),
        })
    }
}

/// Appends the stored text of a row that has no current version to `out`: its fields without
/// control fields, `created` when missing, and `_xact_id` — exactly what merging into nothing
/// gives, without parsing the values.
fn write_new_row(
    out: &mut Vec<u8>,
    fields: &RawFields<'_>,
    added: &AddedMembers,
) -> Result<(), StoreError> {
    out.push(b'{');
    let mut first = true;
    let mut has_created = false;
    for (key, value) in fields.iter().filter(|(k, _)| !is_control_field(k)) {
        has_created |= key == "created";
        match key {
            // Borrowed from a request body, where it had no escapes (the parser copies those
            // that do): it is JSON string text as it is.
            Cow::Borrowed(key) => push_plain_member(out, &mut first, key, value.get()),
            Cow::Owned(key) => push_member(out, &mut first, key, value.get())?,
        }
    }
    if !has_created {
        push_plain_member(out, &mut first, "created", &added.created);
    }
    push_plain_member(out, &mut first, "_xact_id", &added.xact_id);
    out.push(b'}');
    Ok(())
}

/// Appends `"key":value` (after a comma unless it is the `first` member) to an object being
/// written.
fn push_member(
    out: &mut Vec<u8>,
    first: &mut bool,
    key: &str,
    value: &str,
) -> Result<(), StoreError> {
    // What JSON requires escaping in a string: quotes, backslashes and U+0000–U+001F.
    if key.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
        if !std::mem::take(first) {
            out.push(b',');
        }
        out.extend_from_slice(serde_json::to_string(key)?.as_bytes());
        out.push(b':');
        out.extend_from_slice(value.as_bytes());
    } else {
        push_plain_member(out, first, key, value);
    }
    Ok(())
}

/// [`push_member`] for a key that needs no escaping.
fn push_plain_member(out: &mut Vec<u8>, first: &mut bool, key: &str, value: &str) {
    if !std::mem::take(first) {
        out.push(b',');
    }
    out.push(b'"');
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(b"\":");
    out.extend_from_slice(value.as_bytes());
}

/// A version's text as `row_history` holds it: `data` (written before schema 4), `data_at` and
/// `data_len` (in the row texts), or neither (a deletion).
type StoredText = (Option<String>, Option<i64>, Option<i64>);

/// Reads the `StoredText` columns starting at `first`.
fn stored_text(row: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<StoredText> {
    Ok((row.get(first)?, row.get(first + 1)?, row.get(first + 2)?))
}

/// A version's text; `None` for a deletion or a text lost in a crash (see [`RowTexts::read`]).
fn text_of(
    texts: &RowTexts,
    pending: Option<&PendingTexts>,
    stored: StoredText,
) -> Result<Option<String>, StoreError> {
    match stored {
        (Some(text), _, _) => Ok(Some(text)),
        (None, Some(at), Some(len)) => texts.read(pending, at, len),
        _ => Ok(None),
    }
}

/// A stored version's text as a value; `None`, with a warning, for a text that does not parse.
/// Rows are stored as they came once their fields' kinds are checked, and a number out of
/// `f64`'s range (`1e400`) inside an object passes that check but not parsing. Checking every
/// number of every row cost 3% of `log_throughput`'s instructions with chat text that has no
/// digits, more with digits; such a version is left out of reads instead of failing every read
/// of its object, and a merge into it starts from nothing. `row` names it in the warning.
fn readable<T: serde::de::DeserializeOwned>(text: &str, row: &dyn std::fmt::Display) -> Option<T> {
    match serde_json::from_str(text) {
        Ok(value) => Some(value),
        Err(e) => {
            tracing::warn!(
                %row,
                "a stored row version cannot be read back ({e}); it is skipped"
            );
            None
        }
    }
}

/// Parses raw fields into values (for merging).
fn parse_fields(fields: RawFields<'_>) -> Result<Map<String, Value>, StoreError> {
    fields
        .into_iter()
        .map(|(key, value)| Ok((key.into_owned(), serde_json::from_str(value.get())?)))
        .collect()
}

/// New rows' versions inserted this many to a statement.
const ROWS_PER_INSERT: usize = 32;

/// A row with no current version, written in this transaction.
struct NewRow {
    hid: i64,
    oid: i64,
    row_id: String,
    at: i64,
    len: i64,
}

/// New rows waiting to be inserted into `row_history` and `rows`, [`ROWS_PER_INSERT`] to a
/// statement: one statement per row cost more than the b-tree work of inserting it.
#[derive(Default)]
struct NewRows(Vec<NewRow>);

impl NewRows {
    /// Adds a row, inserting a full statement's worth.
    fn push(&mut self, tx: &Transaction<'_>, row: NewRow, xact: u64) -> Result<(), StoreError> {
        self.0.push(row);
        if self.0.len() == ROWS_PER_INSERT {
            self.insert_all(tx, xact)?;
        }
        Ok(())
    }

    /// Inserts every waiting row (a full statement's worth at once, the rest one by one).
    fn insert_all(&mut self, tx: &Transaction<'_>, xact: u64) -> Result<(), StoreError> {
        let xact = xact as i64;
        if self.0.len() == ROWS_PER_INSERT {
            static HISTORY: LazyLock<String> = LazyLock::new(|| {
                values_insert(
                    "row_history (hid, oid, row_id, xact_id, deleted, data_at, data_len)",
                    "(?, ?, ?, ?, 0, ?, ?)",
                )
            });
            static CURRENT: LazyLock<String> = LazyLock::new(|| {
                values_insert("rows (oid, seq, row_id, xact_id, hid)", "(?, ?, ?, ?, ?)")
            });
            let mut history = tx.prepare_cached(&HISTORY)?;
            let mut current = tx.prepare_cached(&CURRENT)?;
            let (mut h, mut c) = (0, 0);
            for row in &self.0 {
                let NewRow {
                    hid,
                    oid,
                    row_id,
                    at,
                    len,
                } = row;
                bind_next(&mut history, &mut h, &[hid, oid, row_id, &xact, at, len])?;
                bind_next(&mut current, &mut c, &[oid, hid, row_id, &xact, hid])?;
            }
            history.raw_execute()?;
            current.raw_execute()?;
        } else {
            let mut history = tx.prepare_cached(
                "INSERT INTO row_history (hid, oid, row_id, xact_id, deleted, data_at, data_len)
                 VALUES (?1, ?2, ?3, ?4, 0, ?5, ?6)",
            )?;
            for row in &self.0 {
                history.execute(params![row.hid, row.oid, row.row_id, xact, row.at, row.len])?;
                insert_current(tx, row.oid, row.hid, &row.row_id, xact)?;
            }
        }
        self.0.clear();
        Ok(())
    }
}

/// Binds `values` to the parameters after the `bound` ones so far.
fn bind_next(
    statement: &mut rusqlite::Statement<'_>,
    bound: &mut usize,
    values: &[&dyn ToSql],
) -> Result<(), StoreError> {
    for value in values {
        *bound += 1;
        statement.raw_bind_parameter(*bound, value)?;
    }
    Ok(())
}

/// Inserts the current row of a row written first in this transaction (its `seq` is its first
/// version's `hid`).
fn insert_current(
    tx: &Transaction<'_>,
    oid: i64,
    hid: i64,
    row_id: &str,
    xact: i64,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO rows (oid, seq, row_id, xact_id, hid) VALUES (?1, ?2, ?3, ?4, ?2)",
    )?
    .execute(params![oid, hid, row_id, xact])?;
    Ok(())
}

/// `INSERT INTO {table} VALUES {row}, {row}, …` for [`ROWS_PER_INSERT`] rows.
fn values_insert(table: &str, row: &str) -> String {
    let rows = vec![row; ROWS_PER_INSERT].join(", ");
    format!("INSERT INTO {table} VALUES {rows}")
}

impl Store {
    /// Applies a batch of row writes in one transaction with one new transaction id, with the
    /// server-side merge semantics. Returns the transaction id.
    pub(crate) fn apply_rows(&mut self, writes: Vec<RowWrite<'_>>) -> Result<u64, StoreError> {
        let result = self.try_apply_rows(writes);
        if result.is_err() {
            // The transaction was rolled back; what the index learnt in it may be wrong.
            self.index = RowIndex::default();
        }
        result
    }

    fn try_apply_rows(&mut self, writes: Vec<RowWrite<'_>>) -> Result<u64, StoreError> {
        let Store { conn, index, texts } = self;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Another process sharing the file may have written since our last write.
        let version: i64 = tx
            .prepare_cached("PRAGMA data_version")?
            .query_row([], |r| r.get(0))?;
        if index.data_version != Some(version) {
            *index = RowIndex {
                data_version: Some(version),
                ..RowIndex::default()
            };
        }
        let xact = next_xact_id(&tx)?;
        let now = format_created(SystemTime::now());
        let added = AddedMembers::new(&now, xact)?;
        let size = writes.iter().map(|w| text_size(&w.fields)).sum();
        let mut pending = texts.begin(size)?;
        // Versions are numbered here, in write order, as SQLite would number them (one past the
        // largest): new rows' versions are then inserted several to a statement.
        let mut next_hid: i64 = tx
            .prepare_cached("SELECT coalesce(max(hid), 0) + 1 FROM row_history")?
            .query_row([], |r| r.get(0))?;
        let mut new_rows = NewRows::default();
        {
            let mut version_text = tx
                .prepare_cached("SELECT data, data_at, data_len FROM row_history WHERE hid = ?1")?;
            let mut history = tx.prepare_cached(
                "INSERT INTO row_history (hid, oid, row_id, xact_id, deleted, data_at, data_len)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            let mut update_current = tx.prepare_cached(
                "UPDATE rows SET xact_id = ?3, hid = ?4 WHERE oid = ?1 AND seq = ?2",
            )?;
            let mut delete_current =
                tx.prepare_cached("DELETE FROM rows WHERE oid = ?1 AND seq = ?2")?;
            for RowWrite {
                object,
                row_id,
                fields,
            } in writes
            {
                let oid = index.oid(&tx, &object)?;
                let rows = index.rows_of(&tx, oid)?;
                let current = rows.get(&row_id).copied();
                let hid = next_hid;
                next_hid += 1;
                let deletes = is_true(fields.get("_object_delete"));
                if current.is_none() && !deletes && !fields.contains_key("_array_delete") {
                    let (at, len) = pending.push_with(|out| write_new_row(out, &fields, &added))?;
                    rows.insert(row_id.clone(), CurrentRow { seq: hid, hid });
                    new_rows.push(
                        &tx,
                        NewRow {
                            hid,
                            oid,
                            row_id,
                            at,
                            len,
                        },
                        xact,
                    )?;
                    continue;
                }
                // What follows reads and changes rows written before: those come first.
                new_rows.insert_all(&tx, xact)?;
                if deletes {
                    if let Some(current) = current {
                        delete_current.execute(params![oid, current.seq])?;
                        rows.remove(&row_id);
                    }
                    history.execute(params![
                        hid,
                        oid,
                        row_id,
                        xact as i64,
                        1,
                        Option::<i64>::None,
                        Option::<i64>::None
                    ])?;
                    continue;
                }
                let existing = match current {
                    Some(c) => {
                        let stored = version_text.query_row([c.hid], |r| stored_text(r, 0))?;
                        text_of(texts, Some(&pending), stored)?.and_then(|t| readable(&t, &row_id))
                    }
                    None => None,
                };
                let mut merged = merge_stored(existing, parse_fields(fields)?, &now);
                merged.insert("_xact_id".into(), Value::String(xact.to_string()));
                let (at, len) = pending.push(&Value::Object(merged).to_string());
                history.execute(params![hid, oid, row_id, xact as i64, 0, at, len])?;
                match current {
                    Some(current) => {
                        update_current.execute(params![oid, current.seq, xact as i64, hid])?;
                        rows.insert(row_id, CurrentRow { hid, ..current });
                    }
                    None => {
                        insert_current(&tx, oid, hid, &row_id, xact as i64)?;
                        rows.insert(row_id, CurrentRow { seq: hid, hid });
                    }
                }
            }
            new_rows.insert_all(&tx, xact)?;
        }
        // The texts are in the file before the rows that point at them are committed.
        texts.write(pending)?;
        tx.commit()?;
        Ok(xact)
    }

    /// A page of an object's rows in write order, optionally as of transaction `version`.
    /// `cursor` comes from the previous page; `filter` drops rows without using up the page.
    pub(crate) fn read_rows(
        &self,
        object: &ObjectIds,
        version: Option<u64>,
        cursor: Option<&str>,
        limit: usize,
        filter: &dyn Fn(&Value) -> bool,
    ) -> Result<RowPage, StoreError> {
        let after: i64 = cursor.and_then(|c| c.parse().ok()).unwrap_or(0);
        let mut page = RowPage {
            rows: Vec::new(),
            cursor: None,
        };
        let Some(oid) = oid_of(&self.conn, object)? else {
            return Ok(page);
        };
        // As of a version: the latest version of each row at or before it, unless deleted.
        let pinned: Option<HashSet<i64>> = match version {
            None => None,
            Some(pin) => {
                let mut latest: HashMap<String, (i64, bool)> = HashMap::new();
                let mut stmt = self.conn.prepare_cached(
                    "SELECT hid, row_id, deleted FROM row_history
                     WHERE oid = ?1 AND xact_id <= ?2 ORDER BY hid",
                )?;
                let mut iter = stmt.query(params![oid, pin as i64])?;
                while let Some(r) = iter.next()? {
                    latest.insert(r.get(1)?, (r.get(0)?, r.get::<_, i64>(2)? != 0));
                }
                Some(
                    latest
                        .into_values()
                        .filter(|(_, deleted)| !deleted)
                        .map(|(hid, _)| hid)
                        .collect(),
                )
            }
        };
        let sql = if pinned.is_some() {
            "SELECT hid, data, data_at, data_len FROM row_history
             WHERE oid = ?1 AND hid > ?2 AND deleted = 0 ORDER BY hid"
        } else {
            "SELECT r.seq, h.data, h.data_at, h.data_len FROM rows r
             JOIN row_history h ON h.hid = r.hid
             WHERE r.oid = ?1 AND r.seq > ?2 ORDER BY r.seq"
        };
        let mut stmt = self.conn.prepare_cached(sql)?;
        let mut iter = stmt.query(params![oid, after])?;
        let mut last_seq = after;
        while let Some(r) = iter.next()? {
            let seq: i64 = r.get(0)?;
            if pinned.as_ref().is_some_and(|p| !p.contains(&seq)) {
                continue;
            }
            let Some(data) = text_of(&self.texts, None, stored_text(r, 1)?)? else {
                continue;
            };
            let Some(value) = readable::<Value>(&data, &seq) else {
                continue;
            };
            if !filter(&value) {
                continue;
            }
            if page.rows.len() == limit {
                page.cursor = Some(last_seq.to_string());
                break;
            }
            last_seq = seq;
            page.rows.push(value);
        }
        Ok(page)
    }

    /// Every current (merged) row of an object, in write order.
    pub(crate) fn all_rows(&self, object: &ObjectIds) -> Result<Vec<Value>, StoreError> {
        let mut out = Vec::new();
        let mut cursor = None;
        loop {
            let page = self.read_rows(object, None, cursor.as_deref(), 10_000, &|_| true)?;
            out.extend(page.rows);
            match page.cursor {
                Some(c) => cursor = Some(c),
                None => return Ok(out),
            }
        }
    }

    /// How many current rows an object has.
    pub(crate) fn row_count(&self, object: &ObjectIds) -> Result<u64, StoreError> {
        let Some(oid) = oid_of(&self.conn, object)? else {
            return Ok(0);
        };
        let n: i64 =
            self.conn
                .query_row("SELECT COUNT(*) FROM rows WHERE oid = ?1", [oid], |r| {
                    r.get(0)
                })?;
        Ok(n as u64)
    }

    /// The object types and ids that hold rows (for listing by tests and tools).
    pub(crate) fn row_objects(&self) -> Result<Vec<ObjectIds>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT object_type, object_id FROM row_objects o
             WHERE EXISTS (SELECT 1 FROM rows r WHERE r.oid = o.oid) ORDER BY 1, 2",
        )?;
        let pairs = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        let mut out = Vec::new();
        for pair in pairs {
            let (t, id) = pair?;
            if let Some(t) = ObjectType::from_name(&t) {
                out.push(ObjectIds::new(t, id));
            }
        }
        Ok(out)
    }
}

/// Adds where a version's text is in the row texts to a schema-3 file's history (after which
/// `SCHEMA` changes nothing).
pub(super) const MIGRATE_FROM_3: &str = "
ALTER TABLE row_history ADD COLUMN data_at INTEGER;
ALTER TABLE row_history ADD COLUMN data_len INTEGER;
";

/// Moves the rows of a schema-2 file (text object keys on every row and index) into this
/// schema's tables, inside the caller's transaction.
pub(super) const MIGRATE_FROM_2: &str = "
ALTER TABLE rows RENAME TO rows_v2;
ALTER TABLE row_history RENAME TO row_history_v2;
DROP INDEX IF EXISTS rows_by_seq;
DROP INDEX IF EXISTS history_by_key;
";

/// Fills the new tables from the renamed ones and drops those (after `SCHEMA` created them).
pub(super) const FILL_FROM_2: &str = "
INSERT INTO row_objects (object_type, object_id)
    SELECT DISTINCT object_type, object_id FROM row_history_v2 ORDER BY 1, 2;
INSERT INTO row_history (hid, oid, row_id, xact_id, deleted, data)
    SELECT h.hid, o.oid, h.row_id, h.xact_id, h.deleted, h.data
    FROM row_history_v2 h JOIN row_objects o
      ON o.object_type = h.object_type AND o.object_id = h.object_id
    ORDER BY h.hid;
INSERT INTO rows (oid, seq, row_id, xact_id, hid)
    SELECT o.oid, r.seq, r.row_id, r.xact_id, r.hid
    FROM rows_v2 r JOIN row_objects o
      ON o.object_type = r.object_type AND o.object_id = r.object_id;
DROP TABLE rows_v2;
DROP TABLE row_history_v2;
";
