//! Login against braintrust-local: org selection, URL precedence and error messages.

use braintrust_core::env_file::EnvLookup;
use braintrust_local::LocalServer;
use braintrust_transport::config::{Config, TEST_API_KEY};
use braintrust_transport::http::{HttpOptions, HyperClient};
use braintrust_transport::login::{LoginError, login};

fn config(server: &LocalServer, key: Option<&str>) -> Config {
    let mut c = Config::from_lookup(&EnvLookup::from_pairs::<&str, &str>([])).unwrap();
    c.app_url = server.url().to_owned();
    c.api_key = key.map(str::to_owned);
    c
}

fn run<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

#[test]
fn logs_in_and_selects_the_organisation() {
    let server = LocalServer::builder()
        .api_key("sk-good-key-42")
        .org_name("acme")
        .start()
        .unwrap();
    let http = HyperClient::new(HttpOptions::default()).unwrap();
    let org = run(login(&http, &config(&server, Some("sk-good-key-42")))).unwrap();
    assert_eq!(org.org_name, "acme");
    assert_eq!(org.org_id, server.org_id());
    assert_eq!(org.api_url, server.url());
    assert_eq!(org.proxy_url, server.url());
    assert!(org.git_metadata.is_some());

    let mut explicit = config(&server, Some("sk-good-key-42"));
    explicit.org_name = Some("acme".into());
    explicit.api_url = Some("http://api.example".into());
    let org = run(login(&http, &explicit)).unwrap();
    assert_eq!(
        org.api_url, "http://api.example",
        "BRAINTRUST_API_URL wins over login"
    );

    explicit.org_name = Some("other".into());
    let err = run(login(&http, &explicit)).unwrap_err();
    assert!(matches!(err, LoginError::OrgNotFound { .. }));
    assert_eq!(
        err.to_string(),
        "Organization other not found. Must be one of acme"
    );
}

#[test]
fn errors_never_show_the_whole_key() {
    let server = LocalServer::builder()
        .api_key("sk-good-key-42")
        .start()
        .unwrap();
    let http = HyperClient::new(HttpOptions::default()).unwrap();
    let err = run(login(&http, &config(&server, Some("sk-wrong-key-99")))).unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, LoginError::InvalidApiKey { status: 401, .. }),
        "{err:?}"
    );
    assert!(
        text.starts_with("Invalid API key sk**...**99: [401]"),
        "{text}"
    );
    assert!(!text.contains("wrong-key"));

    let err = run(login(&http, &config(&server, None))).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("BRAINTRUST_API_KEY") && text.contains(".env.braintrust"),
        "{text}"
    );
}

#[test]
fn the_test_key_skips_the_network() {
    let server = LocalServer::start().unwrap();
    let http = HyperClient::new(HttpOptions::default()).unwrap();
    let mut c = config(&server, Some(TEST_API_KEY));
    c.app_url = "http://127.0.0.1:9".into(); // nothing listens there
    let org = run(login(&http, &c)).unwrap();
    assert_eq!(
        (org.org_id.as_str(), org.org_name.as_str()),
        ("test-org-id", "test-org-name")
    );
}

#[test]
fn debug_output_never_shows_the_key() {
    use braintrust_transport::http::{HttpRequest, Method};
    use braintrust_transport::logger::LoggerOptions;
    use braintrust_transport::login::LoginOptions;

    let key = "sk-very-secret-key-99";
    let shown = [
        format!("{:?}", LoggerOptions::new().api_key(key)),
        format!(
            "{:?}",
            LoginOptions {
                api_key: Some(key.into()),
                ..LoginOptions::default()
            }
        ),
        format!(
            "{:?}",
            HttpRequest::new(Method::Post, "http://x/logs3")
                .header("Authorization", format!("Bearer {key}"))
        ),
    ];
    for text in shown {
        assert!(!text.contains("very-secret"), "{text}");
        assert!(text.contains("sk**...**99"), "{text}");
    }
}
