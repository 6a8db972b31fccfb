//! DynamoDB-stream event source mappings, run by the agent as Lambda runs them (moto's own,
//! without Docker, empties the stream's shard: see FIELD-NOTES). The edge hands this module
//! every event source mapping call whose source is a DynamoDB stream (they never reach moto);
//! each enabled mapping has a poller that reads the stream's shards on moto about four times
//! a second from its checkpoint, keeps the records its filters pass, and delivers them in
//! batches to the function through the Lambda host, synchronously, with the retries of
//! [`delivery`]; what is given up goes to the mapping's on-failure SQS queue.
//!
//! [`filter`] (Lambda's event filtering), [`delivery`] (a batch's retries) and [`api`] (the
//! API's settings and answers) are plain logic; the polling and the calls are here.

pub mod api;
pub mod delivery;
pub mod filter;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::watch;

use super::authorizer::Authorizer;
use super::iam::{RequestContext, Resource};
use super::lambda_host::{InvocationType, InvokeOutcome, InvokeRequest, LambdaHost};
use api::{Invalid, Settings};
use delivery::{Answer, Discarded, deliver};

/// How often a poller reads an idle shard: Lambda polls DynamoDB streams four times a second.
const POLL_EVERY: Duration = Duration::from_millis(250);

/// An answer to an event source mapping call: its status and JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiAnswer {
    pub status: u16,
    pub body: Value,
}

impl ApiAnswer {
    fn error(status: u16, kind: &str, message: &str) -> Self {
        Self {
            status,
            body: json!({"Type": "User", "__type": kind, "message": message, "Message": message}),
        }
    }

    fn invalid(invalid: &Invalid) -> Self {
        Self::error(400, "InvalidParameterValueException", &invalid.0)
    }

    fn not_found(uuid: &str) -> Self {
        Self::error(
            404,
            "ResourceNotFoundException",
            &format!(
                "The resource you requested does not exist. (Service: Lambda, Status Code: 404, Request ID: {uuid})"
            ),
        )
    }
}

/// One mapping and its poller.
struct Mapping {
    settings: Settings,
    state: &'static str,
    last_modified: f64,
    status: Arc<Mutex<PollerStatus>>,
    /// Sends the current settings to the poller; dropped to stop it.
    settings_tx: watch::Sender<Option<Settings>>,
}

#[derive(Debug, Clone)]
struct PollerStatus {
    last_processing_result: String,
    /// The last sequence number delivered or given up, per shard.
    checkpoints: HashMap<String, String>,
}

/// What the mappings need from the rest of the agent.
#[derive(Clone)]
pub struct Services {
    pub moto_endpoint: String,
    pub http: reqwest::Client,
    pub lambda: Arc<LambdaHost>,
    pub lambda_control: aws_sdk_lambda::Client,
    pub authorizer: Arc<Authorizer>,
    /// Where each mapping's tags are kept (the authorizer reads them too).
    pub tags: Arc<crate::resource_tags::ResourceTags>,
    pub region: String,
    pub account: String,
}

/// Every DynamoDB-stream mapping of the sandbox.
pub struct StreamMappings {
    services: Services,
    mappings: Mutex<HashMap<String, Mapping>>,
}

fn now_epoch() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| (d.as_millis() as f64) / 1000.0)
        .unwrap_or_default()
}

impl StreamMappings {
    pub fn new(services: Services) -> Self {
        Self {
            services,
            mappings: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Mapping>> {
        self.mappings.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn answer_of(uuid: &str, mapping: &Mapping, state: &str) -> Value {
        let result = mapping
            .status
            .lock()
            .map(|status| status.last_processing_result.clone())
            .unwrap_or_default();
        api::configuration(
            uuid,
            &mapping.settings,
            state,
            &result,
            mapping.last_modified,
        )
    }

    /// Whether `uuid` is one of these mappings.
    pub fn owns(&self, uuid: &str) -> bool {
        self.lock().contains_key(uuid)
    }

    /// The mappings `ListEventSourceMappings` lists for these filters.
    pub fn list(&self, function: Option<&str>, source: Option<&str>) -> Vec<Value> {
        let function = function.map(|name| {
            super::iam::lambda_function_arn(name, &self.services.region, &self.services.account)
        });
        let mappings = self.lock();
        let mut listed: Vec<(&String, &Mapping)> = mappings
            .iter()
            .filter(|(_, m)| {
                function
                    .as_ref()
                    .is_none_or(|f| &m.settings.function_arn == f)
            })
            .filter(|(_, m)| source.is_none_or(|s| m.settings.stream_arn == s))
            .collect();
        listed.sort_by(|a, b| a.1.last_modified.total_cmp(&b.1.last_modified));
        listed
            .into_iter()
            .map(|(uuid, mapping)| Self::answer_of(uuid, mapping, mapping.state))
            .collect()
    }

    pub fn get(&self, uuid: &str) -> ApiAnswer {
        match self.lock().get(uuid) {
            Some(mapping) => ApiAnswer {
                status: 200,
                body: Self::answer_of(uuid, mapping, mapping.state),
            },
            None => ApiAnswer::not_found(uuid),
        }
    }

    /// `CreateEventSourceMapping` for a DynamoDB stream: checked as Lambda checks it (the
    /// function exists; its role may read the stream and send to the failure queue).
    pub async fn create(self: &Arc<Self>, body: &Value) -> ApiAnswer {
        let services = &self.services;
        let settings = match Settings::create(body, &services.region, &services.account) {
            Ok(settings) => settings,
            Err(invalid) => return ApiAnswer::invalid(&invalid),
        };
        let tags = match api::tags(body) {
            Ok(tags) => tags,
            Err(invalid) => return ApiAnswer::invalid(&invalid),
        };
        if let Err(answer) = self.check(&settings).await {
            return answer;
        }
        let uuid = uuid::Uuid::new_v4().to_string();
        services
            .tags
            .keep(&api::mapping_arn(&settings.function_arn, &uuid), tags);
        let status = Arc::new(Mutex::new(PollerStatus {
            last_processing_result: "No records processed".into(),
            checkpoints: HashMap::new(),
        }));
        let (settings_tx, settings_rx) = watch::channel(Some(settings.clone()));
        tokio::spawn(poll(
            self.clone(),
            uuid.clone(),
            settings_rx,
            status.clone(),
        ));
        let mapping = Mapping {
            settings,
            state: if body["Enabled"].as_bool().unwrap_or(true) {
                "Enabled"
            } else {
                "Disabled"
            },
            last_modified: now_epoch(),
            status,
            settings_tx,
        };
        let answer = Self::answer_of(&uuid, &mapping, "Creating");
        self.lock().insert(uuid, mapping);
        ApiAnswer {
            status: 202,
            body: answer,
        }
    }

    pub async fn update(&self, uuid: &str, body: &Value) -> ApiAnswer {
        let Some(mut settings) = self.lock().get(uuid).map(|m| m.settings.clone()) else {
            return ApiAnswer::not_found(uuid);
        };
        if let Err(invalid) = settings.apply(body, &self.services.region, &self.services.account) {
            return ApiAnswer::invalid(&invalid);
        }
        if let Err(answer) = self.check(&settings).await {
            return answer;
        }
        let mut mappings = self.lock();
        let Some(mapping) = mappings.get_mut(uuid) else {
            return ApiAnswer::not_found(uuid);
        };
        mapping.state = if settings.enabled {
            "Enabled"
        } else {
            "Disabled"
        };
        mapping.settings = settings.clone();
        mapping.last_modified = now_epoch();
        let _ = mapping.settings_tx.send(Some(settings));
        ApiAnswer {
            status: 202,
            body: Self::answer_of(uuid, mapping, "Updating"),
        }
    }

    pub fn delete(&self, uuid: &str) -> ApiAnswer {
        match self.lock().remove(uuid) {
            Some(mapping) => {
                let _ = mapping.settings_tx.send(None);
                self.services
                    .tags
                    .forget(&api::mapping_arn(&mapping.settings.function_arn, uuid));
                ApiAnswer {
                    status: 202,
                    body: Self::answer_of(uuid, &mapping, "Deleting"),
                }
            }
            None => ApiAnswer::not_found(uuid),
        }
    }

    /// Lambda's tagging API (`ListTags`, `TagResource`, `UntagResource`) on the mapping
    /// whose ARN is `arn`; `None` when `arn` is no event source mapping's. `body` is a
    /// TagResource's, `untag` an UntagResource's `tagKeys`.
    pub fn tags_call(
        &self,
        method: &http::Method,
        arn: &str,
        body: &Value,
        untag: &[String],
    ) -> Option<ApiAnswer> {
        let uuid = api::uuid_of_mapping_arn(arn)?;
        let owned = self
            .lock()
            .get(uuid)
            .is_some_and(|m| api::mapping_arn(&m.settings.function_arn, uuid) == arn);
        if !owned {
            return Some(ApiAnswer::not_found(uuid));
        }
        let store = &self.services.tags;
        let done = ApiAnswer {
            status: 204,
            body: Value::Null,
        };
        Some(match *method {
            http::Method::GET => ApiAnswer {
                status: 200,
                body: json!({"Tags": store.of(arn).unwrap_or_default()}),
            },
            http::Method::POST => match api::tags(body) {
                Ok(tags) if tags.is_empty() => {
                    ApiAnswer::error(400, "InvalidParameterValueException", "Tags is required")
                }
                Ok(tags) => {
                    store.add(arn, tags);
                    done
                }
                Err(invalid) => ApiAnswer::invalid(&invalid),
            },
            http::Method::DELETE => {
                store.remove_keys(arn, untag);
                done
            }
            _ => return None,
        })
    }

    /// What Lambda checks of a mapping's settings: its function exists, and the function's
    /// execution role may read the stream and send to the on-failure queue.
    async fn check(&self, settings: &Settings) -> Result<(), ApiAnswer> {
        let configuration = self
            .services
            .lambda_control
            .get_function_configuration()
            .function_name(&settings.function_arn)
            .send()
            .await
            .map_err(|_| {
                ApiAnswer::error(
                    404,
                    "ResourceNotFoundException",
                    &format!("Function not found: {}", settings.function_arn),
                )
            })?;
        let role = configuration
            .role()
            .and_then(|arn| arn.rsplit('/').next())
            .unwrap_or_default()
            .to_owned();
        for action in [
            "dynamodb:DescribeStream",
            "dynamodb:GetRecords",
            "dynamodb:GetShardIterator",
            "dynamodb:ListStreams",
        ] {
            let resource = if action == "dynamodb:ListStreams" {
                Resource::any()
            } else {
                Resource::arn(&settings.stream_arn)
            };
            if !self
                .services
                .authorizer
                .role_allows(&role, &RequestContext::new(action, resource))
                .await
            {
                return Err(ApiAnswer::invalid(&Invalid(format!(
                    "Cannot access stream {}. Please ensure the role can perform the GetRecords, GetShardIterator, DescribeStream, and ListStreams Actions on your stream in IAM.",
                    settings.stream_arn
                ))));
            }
        }
        if let Some(queue) = &settings.on_failure
            && !self
                .services
                .authorizer
                .role_allows(
                    &role,
                    &RequestContext::new("sqs:SendMessage", Resource::arn(queue)),
                )
                .await
        {
            return Err(ApiAnswer::invalid(&Invalid(format!(
                "The provided execution role does not have permissions to call SendMessage on SQS ({queue})"
            ))));
        }
        Ok(())
    }

    /// A JSON call to DynamoDB Streams on moto.
    async fn streams(&self, operation: &str, body: Value) -> Result<Value, String> {
        let region = &self.services.region;
        let response = self
            .services
            .http
            .post(&self.services.moto_endpoint)
            .header(
                "x-amz-target",
                format!("DynamoDBStreams_20120810.{operation}"),
            )
            .header("content-type", "application/x-amz-json-1.0")
            .header(
                "authorization",
                super::moto::scope_authorization("dynamodb", region),
            )
            .body(body.to_string())
            .send()
            .await
            .map_err(|err| err.to_string())?;
        let status = response.status();
        let text = response.text().await.map_err(|err| err.to_string())?;
        if !status.is_success() {
            return Err(format!("{operation}: HTTP {status}: {text}"));
        }
        serde_json::from_str(&text).map_err(|err| format!("{operation}: {err}"))
    }

    /// Sends what was given up to the on-failure queue, in AWS's record shape.
    async fn send_to_queue(
        &self,
        queue_arn: &str,
        settings: &Settings,
        shard: &str,
        discarded: &Discarded,
    ) {
        let first = discarded.records.first();
        let last = discarded.records.last();
        let arrival = |record: Option<&Value>| {
            record
                .and_then(delivery::created)
                .map(|at| {
                    time::OffsetDateTime::from(at)
                        .format(&time::format_description::well_known::Rfc3339)
                        .unwrap_or_default()
                })
                .unwrap_or_default()
        };
        let message = json!({
            "requestContext": {
                "requestId": uuid::Uuid::new_v4().to_string(),
                "functionArn": settings.function_arn,
                "condition": discarded.reason.condition(),
                "approximateInvokeCount": discarded.invocations,
            },
            "responseContext": {
                "statusCode": 200,
                "executedVersion": "$LATEST",
                "functionError": discarded.error,
            },
            "version": "1.0",
            "timestamp": hybridlab_wire::now_rfc3339(),
            "DDBStreamBatchInfo": {
                "shardId": shard,
                "startSequenceNumber": first.and_then(delivery::sequence_number),
                "endSequenceNumber": last.and_then(delivery::sequence_number),
                "approximateArrivalOfFirstRecord": arrival(first),
                "approximateArrivalOfLastRecord": arrival(last),
                "batchSize": discarded.records.len(),
                "streamArn": settings.stream_arn,
            }
        });
        let mut parts = queue_arn.split(':');
        let (Some(region), Some(account), Some(name)) = (parts.nth(3), parts.next(), parts.next())
        else {
            return;
        };
        let queue_url = format!("{}/{account}/{name}", self.services.moto_endpoint);
        let form = [
            ("Action", "SendMessage"),
            ("Version", "2012-11-05"),
            ("QueueUrl", queue_url.as_str()),
            ("MessageBody", &message.to_string()),
        ]
        .iter()
        .map(|(k, v)| {
            format!(
                "{k}={}",
                url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>()
            )
        })
        .collect::<Vec<_>>()
        .join("&");
        let sent = self
            .services
            .http
            .post(&queue_url)
            .header("content-type", "application/x-www-form-urlencoded")
            .header(
                "authorization",
                super::moto::scope_authorization("sqs", region),
            )
            .body(form)
            .send()
            .await;
        match sent {
            Ok(response) if response.status().is_success() => {}
            Ok(response) => {
                tracing::warn!(queue = %queue_arn, status = %response.status(), "the on-failure queue refused a record")
            }
            Err(err) => {
                tracing::warn!(queue = %queue_arn, error = %err, "cannot reach the on-failure queue")
            }
        }
    }
}

/// The poller of mapping `uuid`: until its settings become `None` (deleted).
async fn poll(
    mappings: Arc<StreamMappings>,
    uuid: String,
    mut settings_rx: watch::Receiver<Option<Settings>>,
    status: Arc<Mutex<PollerStatus>>,
) {
    // Each shard's iterator, renewed from the checkpoint when it is lost.
    let mut iterators: HashMap<String, String> = HashMap::new();
    loop {
        let Some(settings) = settings_rx.borrow_and_update().clone() else {
            return;
        };
        if settings.enabled {
            // A change of settings (or the deletion) ends a delivery under way, retries and
            // all: its records, not checkpointed, go again with the new settings.
            tokio::select! {
                polled = poll_once(&mappings, &settings, &status, &mut iterators) => {
                    if let Err(err) = polled {
                        tracing::warn!(mapping = %uuid, error = %err, "the stream mapping could not read its stream");
                    }
                }
                changed = settings_rx.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    iterators.clear();
                    continue;
                }
            }
        }
        tokio::select! {
            changed = settings_rx.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            _ = tokio::time::sleep(POLL_EVERY) => {}
        }
    }
}

/// Reads every shard once (waiting up to the batching window for a full batch) and
/// delivers what its filters pass.
async fn poll_once(
    mappings: &StreamMappings,
    settings: &Settings,
    status: &Mutex<PollerStatus>,
    iterators: &mut HashMap<String, String>,
) -> Result<(), String> {
    let described = mappings
        .streams("DescribeStream", json!({"StreamArn": settings.stream_arn}))
        .await?;
    let shards: Vec<String> = described["StreamDescription"]["Shards"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|shard| shard["ShardId"].as_str().map(str::to_owned))
        .collect();
    for shard in shards {
        let checkpoint = status
            .lock()
            .ok()
            .and_then(|s| s.checkpoints.get(&shard).cloned());
        let iterator = match iterators.get(&shard) {
            Some(iterator) => iterator.clone(),
            None => {
                let mut request = json!({"StreamArn": settings.stream_arn, "ShardId": shard});
                match &checkpoint {
                    Some(sequence) => {
                        request["ShardIteratorType"] = json!("AFTER_SEQUENCE_NUMBER");
                        request["SequenceNumber"] = json!(sequence);
                    }
                    None => {
                        request["ShardIteratorType"] = json!(settings.starting_position.as_str());
                    }
                }
                let answer = mappings.streams("GetShardIterator", request).await?;
                answer["ShardIterator"]
                    .as_str()
                    .ok_or("GetShardIterator answered no iterator")?
                    .to_owned()
            }
        };
        // A batch: up to BatchSize records, or what arrived within the batching window.
        let started = Instant::now();
        let mut records: Vec<Value> = Vec::new();
        let mut next = iterator;
        loop {
            let answer = mappings
                .streams(
                    "GetRecords",
                    // GetRecords returns at most 1,000 records a call.
                    json!({"ShardIterator": next, "Limit": (settings.batch_size as usize - records.len()).min(1000)}),
                )
                .await;
            let answer = match answer {
                Ok(answer) => answer,
                Err(err) => {
                    // An iterator moto no longer takes: start again from the checkpoint.
                    iterators.remove(&shard);
                    return Err(err);
                }
            };
            records.extend(answer["Records"].as_array().cloned().unwrap_or_default());
            if let Some(iterator) = answer["NextShardIterator"].as_str() {
                next = iterator.to_owned();
            }
            if records.len() >= settings.batch_size as usize
                || started.elapsed() >= settings.batching_window
            {
                break;
            }
            tokio::time::sleep(POLL_EVERY.min(settings.batching_window)).await;
        }
        iterators.insert(shard.clone(), next);
        let Some(last) = records
            .last()
            .and_then(delivery::sequence_number)
            .map(str::to_owned)
        else {
            continue;
        };
        // The records as Lambda's event has them.
        let patterns = settings.patterns();
        let passed: Vec<Value> = records
            .into_iter()
            .map(|mut record| {
                record["eventSourceARN"] = json!(settings.stream_arn);
                record["eventVersion"] = json!("1.1");
                record
            })
            .filter(|record| filter::passes(&patterns, record))
            .collect();
        if !passed.is_empty() {
            let delivered = deliver(
                passed,
                &settings.retry,
                SystemTime::now,
                |batch| invoke(&mappings.services.lambda, &settings.function_arn, batch),
                |retry| tokio::time::sleep(Duration::from_millis(200 * u64::from(retry.min(10)))),
            )
            .await;
            for discarded in &delivered.discarded {
                tracing::warn!(function = %settings.function_arn, records = discarded.records.len(), reason = discarded.reason.condition(), "stream records given up");
                if let Some(queue) = &settings.on_failure {
                    mappings
                        .send_to_queue(queue, settings, &shard, discarded)
                        .await;
                }
            }
            if let Ok(mut status) = status.lock() {
                status.last_processing_result = delivered.last_processing_result().to_owned();
            }
        }
        if let Ok(mut status) = status.lock() {
            status.checkpoints.insert(shard, last);
        }
    }
    Ok(())
}

/// One synchronous invocation with Lambda's DynamoDB event.
async fn invoke(lambda: &Arc<LambdaHost>, function_arn: &str, records: Vec<Value>) -> Answer {
    // The host reads the function's name from its ARN.
    let request = InvokeRequest {
        function: function_arn.to_owned(),
        payload: Bytes::from(json!({"Records": records}).to_string()),
        invocation_type: InvocationType::RequestResponse,
        log_tail: false,
    };
    match lambda.invoke(request).await {
        Ok(InvokeOutcome::Completed {
            payload,
            function_error: None,
            ..
        }) => Answer::Returned(serde_json::from_slice(&payload).unwrap_or(Value::Null)),
        Ok(InvokeOutcome::Completed {
            payload,
            function_error: Some(kind),
            ..
        }) => Answer::Failed(format!("{kind}: {}", String::from_utf8_lossy(&payload))),
        Ok(other) => Answer::Failed(format!("unexpected answer: {other:?}")),
        Err(err) => Answer::Failed(err.to_string()),
    }
}
