//! Braintrust prompts and functions.
//!
//! * [`load_prompt`] / [`LoadPrompt`]: fetch a prompt version (by project and slug, or by id;
//!   latest, a version, or an environment's), with in-memory and on-disk caches as the fallback
//!   when the server is unreachable;
//! * [`Prompt::build`]: render it (mustache, see [`mustache`]) into the arguments of an LLM call,
//!   in the official SDKs' exact shape;
//! * [`invoke()`] / [`invoke_stream`] / [`Invoke`]: run a function on the server, the result as
//!   JSON or as a stream of [`InvokeChunk`]s;
//! * [`init_function`]: a [`Function`] handle, usable directly, as an eval task or as a scorer;
//! * [`get_function`], [`find_function`], [`get_prompt_versions`]: lookups.
//!
//! Every call is `async` and runs its I/O on the SDK's own background runtime, so it works
//! from any executor; `*_blocking` variants serve synchronous code.

pub mod error;
pub mod function;
pub mod invoke;
pub mod load;
pub mod mustache;
pub mod prompt;

pub use error::{InvokeError, PromptError};
pub use function::{
    Function, FunctionInfo, ScorerInput, find_function, get_function, get_prompt_versions,
    init_function,
};
pub use invoke::{Invoke, InvokeChunk, InvokeMode, InvokeStream, invoke, invoke_stream};
pub use load::{LoadPrompt, PromptCache, load_prompt};
pub use prompt::{BuiltPrompt, Message, Prompt, PromptBody};
