//! The built-in Bedrock Runtime client: `converse` and `converse-stream`, signed with SigV4.

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use braintrust_transport::api::path_segment;
use braintrust_transport::http::HttpRequest;
use serde_json::Value;

use crate::bedrock::{
    CONVERSE_SPAN_NAME, CONVERSE_STREAM_SPAN_NAME, ConverseStream, converse_request_fields,
    converse_response_fields,
};
use crate::call::{LlmCallSpan, RecordedStream};
use crate::client::{
    ClientOptions, Decoder, Endpoint, LlmStream, ProviderError, body, env_value, start_call,
    traced_json, traced_stream,
};
use crate::fields::LlmSpanFields;

/// `context.span_origin.instrumentation.name` of spans from this client.
pub const INSTRUMENTATION: &str = "braintrust::providers::bedrock";

/// AWS credentials for signing.
#[derive(Clone)]
pub struct AwsCredentials {
    /// `AWS_ACCESS_KEY_ID`.
    pub access_key_id: String,
    /// `AWS_SECRET_ACCESS_KEY`.
    pub secret_access_key: String,
    /// `AWS_SESSION_TOKEN`, for temporary credentials.
    pub session_token: Option<String>,
}

impl std::fmt::Debug for AwsCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsCredentials")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

impl AwsCredentials {
    /// From `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`.
    pub fn from_env() -> Option<AwsCredentials> {
        Some(AwsCredentials {
            access_key_id: env_value(&["AWS_ACCESS_KEY_ID"])?,
            secret_access_key: env_value(&["AWS_SECRET_ACCESS_KEY"])?,
            session_token: env_value(&["AWS_SESSION_TOKEN"]),
        })
    }
}

/// A raw-JSON Bedrock Runtime client whose calls are `llm` spans. The region comes from
/// [`BedrockClient::new`]'s argument, else `AWS_REGION` / `AWS_DEFAULT_REGION`; the endpoint
/// from the options' base URL, else `https://bedrock-runtime.{region}.amazonaws.com`.
#[derive(Debug, Clone)]
pub struct BedrockClient {
    endpoint: Endpoint,
    region: String,
    credentials: AwsCredentials,
}

impl BedrockClient {
    /// A client signing with `credentials` (else the environment's) in `region` (else the
    /// environment's).
    pub fn new(
        options: ClientOptions,
        region: Option<&str>,
        credentials: Option<AwsCredentials>,
    ) -> Result<BedrockClient, ProviderError> {
        let region = region
            .map(str::to_owned)
            .or_else(|| env_value(&["AWS_REGION", "AWS_DEFAULT_REGION"]))
            .ok_or_else(|| {
                ProviderError::Config("no AWS region: pass one or set AWS_REGION".into())
            })?;
        let credentials = credentials
            .or_else(AwsCredentials::from_env)
            .ok_or_else(|| {
                ProviderError::Config(
                "no AWS credentials: pass them or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
                    .into(),
            )
            })?;
        let default = format!("https://bedrock-runtime.{region}.amazonaws.com");
        let base_url = options.resolved_base_url(&["AWS_ENDPOINT_URL_BEDROCK_RUNTIME"], &default);
        let http = options.background_http()?;
        Ok(BedrockClient {
            endpoint: Endpoint {
                http,
                base_url,
                headers: options.headers,
            },
            region,
            credentials,
        })
    }

    /// A signed `POST /model/{model_id}/{action}` with `request` (without `modelId`) as body.
    fn signed(
        &self,
        model_id: &str,
        action: &str,
        request: &Value,
    ) -> Result<HttpRequest, ProviderError> {
        let mut body_value = request.clone();
        if let Some(map) = body_value.as_object_mut() {
            map.remove("modelId");
        }
        let bytes = body(&body_value);
        let path = format!("/model/{}/{action}", path_segment(model_id));
        let mut http = self
            .endpoint
            .request(&path, bytes.clone(), "application/json");
        let identity: Identity = Credentials::new(
            self.credentials.access_key_id.clone(),
            self.credentials.secret_access_key.clone(),
            self.credentials.session_token.clone(),
            None,
            "braintrust-providers",
        )
        .into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("bedrock")
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| ProviderError::Config(format!("cannot sign the request: {e}")))?
            .into();
        let headers: Vec<(String, String)> = http.headers.clone();
        let signable = SignableRequest::new(
            "POST",
            http.url.clone(),
            headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            SignableBody::Bytes(&bytes),
        )
        .map_err(|e| ProviderError::Config(format!("cannot sign the request: {e}")))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| ProviderError::Config(format!("cannot sign the request: {e}")))?
            .into_parts();
        for (name, value) in instructions.headers() {
            http = http.header(name, value);
        }
        Ok(http)
    }

    /// `POST /model/{model_id}/converse`.
    pub async fn converse(&self, model_id: &str, request: &Value) -> Result<Value, ProviderError> {
        let http = match self.signed(model_id, "converse", request) {
            Ok(http) => http,
            Err(e) => {
                let call = LlmCallSpan::start(
                    CONVERSE_SPAN_NAME,
                    INSTRUMENTATION,
                    converse_request_fields(model_id, request),
                );
                call.fail(LlmSpanFields::default(), &e);
                return Err(e);
            }
        };
        let call = start_call(
            CONVERSE_SPAN_NAME,
            INSTRUMENTATION,
            request,
            &http,
            request_fields(model_id),
        );
        traced_json(&self.endpoint, http, call, converse_response_fields).await
    }

    /// `POST /model/{model_id}/converse-stream`: the events as `{eventType: payload}` values.
    pub async fn converse_stream(
        &self,
        model_id: &str,
        request: &Value,
    ) -> Result<LlmStream, ProviderError> {
        let http = match self.signed(model_id, "converse-stream", request) {
            Ok(http) => http.header("Accept", "application/vnd.amazon.eventstream"),
            Err(e) => {
                let call = LlmCallSpan::start(
                    CONVERSE_STREAM_SPAN_NAME,
                    INSTRUMENTATION,
                    converse_request_fields(model_id, request),
                );
                call.fail(LlmSpanFields::default(), &e);
                return Err(e);
            }
        };
        let call = start_call(
            CONVERSE_STREAM_SPAN_NAME,
            INSTRUMENTATION,
            request,
            &http,
            request_fields(model_id),
        );
        traced_stream(
            &self.endpoint,
            http,
            call,
            Decoder::EventStream(crate::eventstream::Decoder::default()),
            RecordedStream::fields::<ConverseStream>,
        )
        .await
    }
}

/// The request fields of a call to `model_id`, from the request as sent.
fn request_fields(model_id: &str) -> impl FnOnce(&Value) -> LlmSpanFields + Send + 'static {
    let model_id = model_id.to_owned();
    move |request| converse_request_fields(&model_id, request)
}
