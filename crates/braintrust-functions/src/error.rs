//! Errors of prompt loading and building ([`PromptError`]) and of invoking functions
//! ([`InvokeError`]).

use braintrust_transport::api::ApiError;

use crate::mustache::TemplateError;

/// Why a prompt could not be loaded or built.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PromptError {
    /// The arguments name no prompt (no slug, no project, …).
    #[error("invalid prompt arguments: {0}")]
    InvalidArguments(String),
    /// The server has no such prompt.
    #[error("Prompt not found: {0}")]
    NotFound(String),
    /// The lookup matched more than one prompt.
    #[error("Multiple prompts found: {0}")]
    Ambiguous(String),
    /// The request failed and no cached copy could stand in.
    #[error("cannot load the prompt: {0}")]
    Api(#[from] ApiError),
    /// The server's answer is not a prompt row.
    #[error("invalid prompt row: {0}")]
    InvalidRow(String),
    /// Neither the prompt nor the defaults name a model.
    #[error("No model specified")]
    NoModel,
    /// The prompt block is malformed (unknown type, tools that are not JSON, …).
    #[error("invalid prompt: {0}")]
    InvalidPrompt(String),
    /// The variables are not a JSON object.
    #[error("invalid prompt variables: {0}")]
    InvalidVariables(String),
    /// A template could not be rendered.
    #[error("cannot render {field}: {source}")]
    Template {
        /// Which part of the prompt (`prompt.messages[1].content`, `prompt.tools`, …).
        field: String,
        /// Why.
        source: TemplateError,
    },
    /// The prompt uses a template language other than mustache (or `none`).
    #[error("unsupported template format {0:?}: only mustache prompts can be built in Rust")]
    UnsupportedTemplateFormat(String),
}

/// Why a function could not be invoked.
#[derive(Debug, Clone, thiserror::Error)]
pub enum InvokeError {
    /// The arguments name no function.
    #[error("invalid invoke arguments: {0}")]
    InvalidArguments(String),
    /// The input, messages or metadata could not be serialized.
    #[error("cannot serialize the {what}: {message}")]
    Serialize {
        /// Which argument.
        what: &'static str,
        /// Why.
        message: String,
    },
    /// The request failed (including error statuses, with the server's body).
    #[error(transparent)]
    Api(#[from] ApiError),
    /// The function reported an error (an `error` event of a stream).
    #[error("the function failed: {0}")]
    Function(String),
    /// The stream broke the server-sent-events or invoke protocol.
    #[error("invalid invoke stream: {0}")]
    Protocol(String),
}
