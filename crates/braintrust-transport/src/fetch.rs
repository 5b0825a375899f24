//! Reading an experiment's or dataset's rows back: `POST /v1/{type}/{id}/fetch`, page by page
//! with the server's cursor, optionally pinned to a version.

use std::collections::VecDeque;

use braintrust_core::attachment::ReadonlyAttachment;
use serde_json::{Map, Value, json};

use crate::api::{ApiClient, ApiError, Host, block_on};

/// Rows per page.
pub const FETCH_PAGE_SIZE: usize = 1000;

/// A safety cap on the number of pages.
const MAX_PAGES: usize = 10_000;

/// The pages of rows of one object. Iterate synchronously (each page is fetched when the
/// previous one is used up) or call [`RowPages::next_page`] from async code.
#[derive(Debug)]
pub struct RowPages {
    api: ApiClient,
    path: String,
    version: Option<String>,
    page_size: usize,
    cursor: Option<String>,
    pages: usize,
    done: bool,
    buffer: VecDeque<Map<String, Value>>,
}

impl RowPages {
    /// The rows of `object_type` (`experiment`, `dataset` or `project_logs`) `id`, at
    /// `version` when given.
    pub fn new(api: ApiClient, object_type: &str, id: &str, version: Option<String>) -> RowPages {
        let id = crate::api::path_segment(id);
        RowPages {
            api,
            path: format!("/v1/{object_type}/{id}/fetch"),
            version,
            page_size: FETCH_PAGE_SIZE,
            cursor: None,
            pages: 0,
            done: false,
            buffer: VecDeque::new(),
        }
    }

    /// Read-only handles on the attachments referenced anywhere in a fetched `row`; their bytes
    /// are downloaded on first use.
    pub fn attachments(&self, row: &Map<String, Value>) -> Vec<ReadonlyAttachment> {
        row.values()
            .flat_map(|value| self.api.attachments_in(value))
            .collect()
    }

    /// Rows per request (default 1,000).
    pub fn page_size(mut self, size: usize) -> RowPages {
        self.page_size = size.max(1);
        self
    }

    /// The next page of rows; `None` after the last one.
    pub async fn next_page(&mut self) -> Result<Option<Vec<Map<String, Value>>>, ApiError> {
        if self.done {
            return Ok(None);
        }
        let mut body = json!({"limit": self.page_size});
        if let Some(cursor) = &self.cursor {
            body["cursor"] = Value::String(cursor.clone());
        }
        if let Some(version) = &self.version {
            body["version"] = Value::String(version.clone());
        }
        let answer = self
            .api
            .post_json(Host::Api, &self.path, &body, &[])
            .await?;
        let invalid = |message: &str| ApiError::InvalidResponse {
            url: self.path.clone(),
            message: message.to_owned(),
        };
        let events = answer
            .get("events")
            .and_then(Value::as_array)
            .ok_or_else(|| invalid("the answer has no `events` array"))?;
        let rows = events
            .iter()
            .filter_map(|e| e.as_object().cloned())
            .collect();
        self.pages += 1;
        self.cursor = answer
            .get("cursor")
            .and_then(Value::as_str)
            .filter(|c| !c.is_empty())
            .map(str::to_owned);
        if self.cursor.is_none() || self.pages >= MAX_PAGES {
            self.done = true;
        }
        Ok(Some(rows))
    }

    /// Every remaining row.
    pub async fn collect_all(mut self) -> Result<Vec<Map<String, Value>>, ApiError> {
        let mut rows: Vec<_> = self.buffer.drain(..).collect();
        while let Some(page) = self.next_page().await? {
            rows.extend(page);
        }
        Ok(rows)
    }
}

impl Iterator for RowPages {
    type Item = Result<Map<String, Value>, ApiError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(row) = self.buffer.pop_front() {
                return Some(Ok(row));
            }
            match block_on(self.next_page()) {
                Ok(Some(page)) => self.buffer.extend(page),
                Ok(None) => return None,
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
    }
}
