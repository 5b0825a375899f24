//! The `braintrust-local` binary: serves the Braintrust API on a local address with a SQLite
//! store, printing its URL on the first line of stdout.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use braintrust_local::{
    DEFAULT_API_KEY, DEFAULT_ORG_NAME, DEFAULT_PAYLOAD_LIMIT, FunctionsFile, LocalServer,
};
use clap::Parser;

/// A local Braintrust-API-compatible server.
#[derive(Debug, Parser)]
#[command(name = "braintrust-local", version)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8787")]
    addr: SocketAddr,
    /// SQLite database file (created if missing), with the rows' texts in `<db>-rows`; data
    /// survives restarts.
    #[arg(long, default_value = "braintrust-local.db", conflicts_with = "memory")]
    db: PathBuf,
    /// Keep everything in memory instead of a database file.
    #[arg(long)]
    memory: bool,
    /// The only API key accepted.
    #[arg(long, env = "BRAINTRUST_LOCAL_API_KEY", default_value = DEFAULT_API_KEY, hide_env_values = true)]
    api_key: String,
    /// The organisation's name.
    #[arg(long, default_value = DEFAULT_ORG_NAME)]
    org_name: String,
    /// The `/logs3` payload limit advertised by `/version` (0 omits it: no overflow).
    #[arg(long, default_value_t = DEFAULT_PAYLOAD_LIMIT)]
    payload_limit: u64,
    /// A JSON file of prompts to store at start and functions to serve on `/function/invoke`
    /// (see `FunctionsFile` in the crate docs); may be repeated.
    #[arg(long)]
    functions: Vec<PathBuf>,
    /// An OpenAI-compatible base URL (e.g. `https://api.openai.com/v1`) that prompt functions
    /// without a handler are sent to; without it they return their rendered request.
    #[arg(long)]
    llm_url: Option<String>,
    /// The key for `--llm-url`.
    #[arg(long, env = "OPENAI_API_KEY", hide_env_values = true)]
    llm_api_key: Option<String>,
    /// Threads that serve requests.
    #[arg(long, default_value_t = 2)]
    workers: usize,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mut builder = LocalServer::builder()
        .addr(args.addr)
        .api_key(args.api_key)
        .org_name(args.org_name)
        .payload_limit((args.payload_limit > 0).then_some(args.payload_limit))
        .worker_threads(args.workers);
    for path in &args.functions {
        match FunctionsFile::read(path) {
            Ok(file) => builder = builder.functions_file(file),
            Err(e) => {
                eprintln!("braintrust-local: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    if let Some(url) = args.llm_url {
        builder = builder.llm_endpoint(url, args.llm_api_key);
    }
    builder = if args.memory {
        builder.in_memory()
    } else {
        builder.db_path(&args.db)
    };
    let server = match builder.start() {
        Ok(server) => server,
        Err(e) => {
            eprintln!("braintrust-local: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("{}", server.url());
    let store = if args.memory {
        "in memory".to_owned()
    } else {
        args.db.display().to_string()
    };
    eprintln!(
        "braintrust-local: serving org `{}` from {store}; set BRAINTRUST_APP_URL and BRAINTRUST_API_URL to {} (Ctrl-C stops)",
        server.org_name(),
        server.url()
    );
    let signal = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map(|rt| rt.block_on(tokio::signal::ctrl_c()));
    if let Err(e) = signal {
        eprintln!("braintrust-local: cannot wait for Ctrl-C ({e}); serving until killed");
        server.wait();
        return ExitCode::SUCCESS;
    }
    server.shutdown();
    ExitCode::SUCCESS
}
