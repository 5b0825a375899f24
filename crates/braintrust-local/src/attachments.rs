//! Attachments: `POST /attachment` (a signed upload URL on this server), the upload target,
//! `POST /attachment/status`, `GET /attachment` (download URL and status) and the download.
//!
//! Metadata and status live in the database; the bytes live in a directory next to the database
//! file (`<db>.attachments/`), or in memory for an in-memory server.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::header;
use axum::response::IntoResponse;
use braintrust_core::attachment::AttachmentStatus;
use braintrust_core::id::new_uuid_v4;
use serde_json::{Map, Value, json};

use crate::app::{ApiResult, AppState, object_body, ok, query_map};
use crate::error::ApiError;
use crate::store::AttachmentRecord;

/// Path prefix (under `/objstore/`) of attachment uploads and downloads.
pub(crate) const OBJECT_PREFIX: &str = "attachments/";

/// Where attachment bytes are kept.
#[derive(Debug)]
pub(crate) enum BlobDir {
    /// Files named by key in a directory.
    Disk(PathBuf),
    /// A map, for in-memory servers.
    Memory(Mutex<HashMap<String, Bytes>>),
}

impl BlobDir {
    /// The directory for a database file: `<db>.attachments` beside it.
    pub(crate) fn beside(db: &std::path::Path) -> BlobDir {
        let mut name = db.file_name().unwrap_or_default().to_os_string();
        name.push(".attachments");
        BlobDir::Disk(db.with_file_name(name))
    }

    fn put(&self, key: &str, data: &Bytes) -> std::io::Result<()> {
        match self {
            BlobDir::Disk(dir) => {
                std::fs::create_dir_all(dir)?;
                // Write beside, then rename: readers never see a partial file.
                let partial = dir.join(format!("{key}.partial-{}", new_uuid_v4()));
                std::fs::write(&partial, data)?;
                std::fs::rename(&partial, dir.join(key))
            }
            BlobDir::Memory(map) => {
                map.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(key.to_owned(), data.clone());
                Ok(())
            }
        }
    }

    fn get(&self, key: &str) -> std::io::Result<Option<Bytes>> {
        match self {
            BlobDir::Disk(dir) => match std::fs::read(dir.join(key)) {
                Ok(data) => Ok(Some(data.into())),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e),
            },
            BlobDir::Memory(map) => Ok(map
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(key)
                .cloned()),
        }
    }
}

fn storage_error(e: std::io::Error) -> ApiError {
    tracing::error!(error = %e, "braintrust-local attachment storage error");
    ApiError {
        status: axum::http::StatusCode::INTERNAL_SERVER_ERROR,
        message: format!("attachment storage failed: {e}"),
    }
}

/// A key usable as a file name: the client-generated UUIDs, or anything of letters, digits,
/// `-` and `_`.
fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 128
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn required_str<'a>(body: &'a Map<String, Value>, field: &str) -> Result<&'a str, ApiError> {
    body.get(field)
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| ApiError::bad_request(format!("`{field}` must be a non-empty string")))
}

fn check_org(state: &AppState, org_id: &str) -> Result<(), ApiError> {
    if org_id == state.settings.org_id {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "unknown organization `{org_id}` (this server's is `{}`)",
            state.settings.org_id
        )))
    }
}

fn checked_key(body: &Map<String, Value>) -> Result<&str, ApiError> {
    let key = required_str(body, "key")?;
    if valid_key(key) {
        Ok(key)
    } else {
        Err(ApiError::bad_request(
            "`key` must be letters, digits, `-` and `_` only (a UUID)",
        ))
    }
}

/// `POST /attachment {key, filename, content_type, org_id}` → `{signedUrl, headers}`.
pub(crate) async fn request_upload(State(state): State<Arc<AppState>>, body: Bytes) -> ApiResult {
    let body = object_body(&body)?;
    let key = checked_key(&body)?;
    let filename = required_str(&body, "filename")?;
    let content_type = required_str(&body, "content_type")?;
    check_org(&state, required_str(&body, "org_id")?)?;
    let record = AttachmentRecord {
        key: key.to_owned(),
        filename: filename.to_owned(),
        content_type: content_type.to_owned(),
        upload_token: new_uuid_v4(),
        download_token: new_uuid_v4(),
        status: None,
    };
    state.store().put_attachment(&record)?;
    ok(json!({
        "signedUrl": format!(
            "{}/objstore/{OBJECT_PREFIX}{key}?token={}",
            state.base_url, record.upload_token
        ),
        "headers": {"Content-Type": content_type},
    }))
}

/// `PUT /objstore/attachments/{key}?token=…`: stores the bytes (no API key; the token is the
/// signature).
pub(crate) fn upload(state: &AppState, key: &str, token: &str, data: &Bytes) -> ApiResult {
    let record = state.store().attachment(key)?;
    match record {
        Some(r) if r.upload_token == token => {}
        _ => {
            return Err(ApiError::forbidden(
                "invalid or expired upload signature for this attachment",
            ));
        }
    }
    state.attachments.put(key, data).map_err(storage_error)?;
    ok(json!({}))
}

/// `POST /attachment/status {key, org_id, status: {upload_status, error_message?}}`.
pub(crate) async fn set_status(State(state): State<Arc<AppState>>, body: Bytes) -> ApiResult {
    let body = object_body(&body)?;
    let key = checked_key(&body)?;
    check_org(&state, required_str(&body, "org_id")?)?;
    let status: AttachmentStatus =
        serde_json::from_value(body.get("status").cloned().unwrap_or_default()).map_err(|e| {
            ApiError::bad_request(format!(
                "`status` must be {{\"upload_status\": \"uploading\"|\"done\"|\"error\", \"error_message\"?}}: {e}"
            ))
        })?;
    if !state.store().set_attachment_status(key, &status)? {
        return Err(ApiError::not_found(format!(
            "no attachment with key `{key}` (request an upload with POST /attachment first)"
        )));
    }
    ok(json!({}))
}

/// `GET /attachment?filename&content_type&org_id&key` (or `&url=` for an external attachment)
/// → `{downloadUrl, status}`.
pub(crate) async fn describe(State(state): State<Arc<AppState>>, query: RawQuery) -> ApiResult {
    let query = query_map(&query);
    check_org(&state, required_str(&query, "org_id")?)?;
    if let Some(url) = query.get("url").and_then(Value::as_str) {
        // External attachments are served from where they live.
        return ok(json!({"downloadUrl": url, "status": AttachmentStatus::done()}));
    }
    let key = checked_key(&query)?;
    let Some(record) = state.store().attachment(key)? else {
        return Err(ApiError::not_found(format!(
            "no attachment with key `{key}`"
        )));
    };
    let status = record.status.unwrap_or(AttachmentStatus {
        upload_status: braintrust_core::attachment::UploadStatus::Uploading,
        error_message: None,
    });
    ok(json!({
        "downloadUrl": format!(
            "{}/objstore/{OBJECT_PREFIX}{key}?download={}",
            state.base_url, record.download_token
        ),
        "status": status,
    }))
}

/// `GET /objstore/attachments/{key}?download=…`: the bytes, with their content type and file
/// name.
pub(crate) fn download(state: &AppState, key: &str, token: &str) -> ApiResult {
    let record = state.store().attachment(key)?;
    let record = match record {
        Some(r) if r.download_token == token => r,
        _ => {
            return Err(ApiError::forbidden(
                "invalid download signature for this attachment",
            ));
        }
    };
    let Some(data) = state.attachments.get(key).map_err(storage_error)? else {
        return Err(ApiError::not_found(format!(
            "attachment `{key}` has not been uploaded"
        )));
    };
    let disposition = format!(
        "attachment; filename=\"{}\"",
        record.filename.replace(['"', '\\', '\r', '\n'], "_")
    );
    Ok((
        [
            (header::CONTENT_TYPE, record.content_type),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        data,
    )
        .into_response())
}

/// `GET /objstore/{*key}`: attachment downloads.
pub(crate) async fn get_object(
    State(state): State<Arc<AppState>>,
    Path(key): Path<String>,
    query: RawQuery,
) -> ApiResult {
    let query = query_map(&query);
    let Some(key) = key.strip_prefix(OBJECT_PREFIX).filter(|k| valid_key(k)) else {
        return Err(ApiError::not_found("no such object"));
    };
    let token = query
        .get("download")
        .and_then(Value::as_str)
        .unwrap_or_default();
    download(&state, key, token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_must_be_file_name_safe() {
        assert!(valid_key("fb8845f9-70a6-4ded-9414-0c42d7104211"));
        for bad in ["", "../x", "a/b", "a.b", ".hidden", &"x".repeat(200)] {
            assert!(!valid_key(bad), "{bad}");
        }
    }

    #[test]
    fn blob_dirs_sit_beside_the_database() {
        let BlobDir::Disk(dir) = BlobDir::beside(std::path::Path::new("/tmp/x/evals.db")) else {
            panic!("disk");
        };
        assert_eq!(dir, std::path::Path::new("/tmp/x/evals.db.attachments"));
    }
}
