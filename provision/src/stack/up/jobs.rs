//! `up --with jobs`: the jobs table (with its stream) and bucket, the submit and launcher
//! functions with their roles and log groups, the workers' role and profile, the worker
//! binary, the launcher's stream mapping and the HTTP API in front of the submit function.

use std::time::Duration;

use aws_sdk_apigatewayv2::types::{IntegrationType, ProtocolType};
use aws_sdk_lambda::types::{EventSourcePosition, Filter as EventFilter, FilterCriteria};

use super::{FunctionSpec, Outcome, Run};
use crate::stack::artifacts::JobPrograms;
use crate::stack::describe::{EnvValue, Function, launcher_function, submit_function};
use crate::stack::error::{StackError, code_of, is_not_found, sdk_error};
use crate::stack::plan::{
    JOBS_API_PERMISSION_ID, JOBS_ROUTES, LAUNCHER_BATCH_SIZE, LAUNCHER_FILTERS, LAUNCHER_RETRIES,
    WORKER_BINARY_KEY,
};
use crate::stack::policy::{ArnContext, launcher_policy, submit_policy, worker_policy};
use crate::stack::progress::Step;
use hybridlab_wire::job::JOB_KEY_ATTRIBUTE;
use hybridlab_wire::tags::STACK_TAG;

/// What the first wave makes for the jobs, which the later steps need.
pub(super) struct JobsBase {
    pub stream_arn: String,
    pub submit_role_arn: String,
    pub launcher_role_arn: String,
    pub worker_profile_arn: String,
}

/// A variable of a function's description that `up` has no value for: a description
/// changed without `up`.
fn unresolved(function: &Function, key: &str) -> StackError {
    StackError::Invalid(format!(
        "{} needs {key}, which `up` does not set: the stack description and `up` disagree",
        function.name
    ))
}

impl Run<'_> {
    /// The first wave's jobs steps, run only for a stack with the jobs variant.
    pub(super) async fn jobs_wave(&self) -> Result<Option<JobsBase>, StackError> {
        if !self.settings.jobs {
            return Ok(None);
        }
        let names = &self.names;
        let id = self.id.as_str();
        let (bucket, table, submit_logs, launcher_logs, submit_role, launcher_role, worker) = tokio::join!(
            self.step(
                Step::JobsBucket,
                &names.jobs_bucket,
                self.bucket(Step::JobsBucket, &names.jobs_bucket, false)
            ),
            self.step(
                Step::JobsTable,
                &names.jobs_table,
                self.table(&names.jobs_table, JOB_KEY_ATTRIBUTE, true)
            ),
            self.step(
                Step::SubmitLogGroup,
                &names.submit_log_group,
                self.log_group(&names.submit_log_group)
            ),
            self.step(
                Step::LauncherLogGroup,
                &names.launcher_log_group,
                self.log_group(&names.launcher_log_group)
            ),
            self.step(
                Step::SubmitRole,
                &names.submit_role,
                self.function_role(&names.submit_role, |arns| submit_policy(names, arns))
            ),
            self.step(
                Step::LauncherRole,
                &names.launcher_role,
                self.function_role(&names.launcher_role, |arns| {
                    launcher_policy(names, arns, id)
                })
            ),
            self.step(
                Step::WorkerRole,
                &names.worker_role,
                self.instance_role(&names.worker_role, &names.worker_profile, |arns| {
                    worker_policy(names, arns)
                })
            ),
        );
        bucket?;
        submit_logs?;
        launcher_logs?;
        let stream_arn = table?.ok_or_else(|| {
            StackError::Invalid(format!("table {} answered no stream", names.jobs_table))
        })?;
        Ok(Some(JobsBase {
            stream_arn,
            submit_role_arn: submit_role?,
            launcher_role_arn: launcher_role?,
            worker_profile_arn: worker?,
        }))
    }

    /// The jobs steps after the first wave; returns the HTTP API's endpoint.
    pub(super) async fn jobs_side(
        &self,
        base: &JobsBase,
        programs: &JobPrograms,
        image: &str,
        token: &str,
    ) -> Result<String, StackError> {
        let names = &self.names;
        self.step(Step::WorkerArtifacts, &names.artifacts_bucket, async {
            Ok((
                match self
                    .upload_binary(&programs.worker, WORKER_BINARY_KEY)
                    .await?
                {
                    Some(size) => Outcome::Done(format!("uploaded the worker ({size})")),
                    None => Outcome::Skipped("the worker is up to date".into()),
                },
                (),
            ))
        })
        .await?;
        let (submit, launcher) = tokio::join!(
            self.step(
                Step::Submit,
                &names.submit,
                self.submit(&base.submit_role_arn, &programs.submit, token)
            ),
            self.step(
                Step::Launcher,
                &names.launcher,
                self.launcher(base, &programs.launcher, image)
            ),
        );
        let (submit, launcher) = (submit?, launcher?);
        let (mapping, api) = tokio::join!(
            self.step(
                Step::LauncherMapping,
                &names.launcher,
                self.launcher_mapping(&base.stream_arn, &launcher)
            ),
            self.step(
                Step::JobsApi,
                &names.jobs_api,
                self.jobs_api(&base.submit_role_arn, &submit)
            ),
        );
        mapping?;
        api
    }

    async fn submit(
        &self,
        role_arn: &str,
        binary: &std::path::Path,
        token: &str,
    ) -> Result<(Outcome, String), StackError> {
        let function = submit_function(&self.names, self.id.as_str());
        let variables = function
            .variables(|value| match value {
                EnvValue::Token => Some(token.to_owned()),
                _ => None,
            })
            .map_err(|key| unresolved(&function, key))?;
        self.deploy_function(role_arn, &FunctionSpec::of(&function, binary, variables))
            .await
    }

    async fn launcher(
        &self,
        base: &JobsBase,
        binary: &std::path::Path,
        image: &str,
    ) -> Result<(Outcome, String), StackError> {
        let function = launcher_function(&self.names, self.id.as_str(), &self.settings);
        let variables = function
            .variables(|value| match value {
                EnvValue::WorkerBucket => Some(self.names.artifacts_bucket.clone()),
                EnvValue::WorkerKey => Some(WORKER_BINARY_KEY.to_owned()),
                EnvValue::WorkerProfileArn => Some(base.worker_profile_arn.clone()),
                EnvValue::WorkerImage => Some(image.to_owned()),
                EnvValue::InstanceType => Some(self.settings.instance_type.clone()),
                _ => None,
            })
            .map_err(|key| unresolved(&function, key))?;
        self.deploy_function(
            &base.launcher_role_arn,
            &FunctionSpec::of(&function, binary, variables),
        )
        .await
    }

    /// Points the jobs table's stream at the launcher, filtered to inserts and to jobs that
    /// ended. Lambda checks the function's role when the mapping is made, so a role IAM has
    /// not propagated yet is waited for.
    async fn launcher_mapping(
        &self,
        stream_arn: &str,
        launcher_arn: &str,
    ) -> Result<(Outcome, ()), StackError> {
        let lambda = &self.clients.lambda;
        let existing = lambda
            .list_event_source_mappings()
            .function_name(launcher_arn)
            .event_source_arn(stream_arn)
            .send()
            .await
            .map_err(|err| sdk_error("lambda:ListEventSourceMappings", err))?;
        if let Some(found) = existing.event_source_mappings().first() {
            return Ok((
                Outcome::Skipped(format!(
                    "exists ({}, {})",
                    found.uuid().unwrap_or_default(),
                    found.state().unwrap_or("state unknown")
                )),
                (),
            ));
        }
        let mut filters = FilterCriteria::builder();
        for pattern in LAUNCHER_FILTERS {
            filters = filters.filters(EventFilter::builder().pattern(pattern).build());
        }
        let filters = filters.build();
        let created = self
            .while_settling(
                (Step::LauncherMapping, &self.names.launcher),
                "the launcher's role may not read the stream yet",
                self.clients.patience(Duration::from_secs(120)),
                |err| {
                    code_of(err) == Some("InvalidParameterValueException")
                        && format!("{}", aws_sdk_lambda::error::DisplayErrorContext(err))
                            .contains("Cannot access stream")
                },
                || {
                    lambda
                        .create_event_source_mapping()
                        .function_name(launcher_arn)
                        .event_source_arn(stream_arn)
                        .starting_position(EventSourcePosition::TrimHorizon)
                        .batch_size(LAUNCHER_BATCH_SIZE)
                        .maximum_retry_attempts(LAUNCHER_RETRIES)
                        .bisect_batch_on_function_error(true)
                        .filter_criteria(filters.clone())
                        .tags(STACK_TAG, self.id.as_str())
                        .send()
                },
            )
            .await
            .map_err(|err| sdk_error("lambda:CreateEventSourceMapping", err))?;
        Ok((
            Outcome::Done(format!(
                "created {}: inserts and ended jobs run the launcher",
                created.uuid().unwrap_or_default()
            )),
            (),
        ))
    }

    /// The HTTP API: found by name or created, its proxy integration to the submit function,
    /// the three routes, the auto-deployed `$default` stage, and API Gateway's permission to
    /// invoke the function from this API only. Returns the API's endpoint.
    async fn jobs_api(
        &self,
        role_arn: &str,
        submit_arn: &str,
    ) -> Result<(Outcome, String), StackError> {
        let api = &self.clients.apigateway;
        let name = &self.names.jobs_api;
        let mut changed = Vec::new();
        let (api_id, endpoint) = match self.find_api().await? {
            Some(found) => found,
            None => {
                let created = api
                    .create_api()
                    .name(name)
                    .protocol_type(ProtocolType::Http)
                    .description(format!("hybridlab stack {}: jobs", self.id))
                    .tags(STACK_TAG, self.id.as_str())
                    .send()
                    .await
                    .map_err(|err| sdk_error("apigateway:CreateApi", err))?;
                changed.push("API");
                (
                    created.api_id().unwrap_or_default().to_owned(),
                    created.api_endpoint().unwrap_or_default().to_owned(),
                )
            }
        };
        let integrations = api
            .get_integrations()
            .api_id(&api_id)
            .send()
            .await
            .map_err(|err| sdk_error("apigateway:GetIntegrations", err))?;
        let integration = match integrations
            .items()
            .iter()
            .find(|i| i.integration_uri() == Some(submit_arn))
            .and_then(|i| i.integration_id())
        {
            Some(id) => id.to_owned(),
            None => {
                changed.push("integration");
                api.create_integration()
                    .api_id(&api_id)
                    .integration_type(IntegrationType::AwsProxy)
                    .integration_uri(submit_arn)
                    .payload_format_version("2.0")
                    .send()
                    .await
                    .map_err(|err| sdk_error("apigateway:CreateIntegration", err))?
                    .integration_id()
                    .unwrap_or_default()
                    .to_owned()
            }
        };
        let target = format!("integrations/{integration}");
        let routes = api
            .get_routes()
            .api_id(&api_id)
            .send()
            .await
            .map_err(|err| sdk_error("apigateway:GetRoutes", err))?;
        for key in JOBS_ROUTES {
            let existing = routes.items().iter().find(|r| r.route_key() == Some(key));
            match existing {
                Some(route) if route.target() == Some(target.as_str()) => {}
                Some(route) => {
                    api.update_route()
                        .api_id(&api_id)
                        .route_id(route.route_id().unwrap_or_default())
                        .target(&target)
                        .send()
                        .await
                        .map_err(|err| sdk_error("apigateway:UpdateRoute", err))?;
                    changed.push("route");
                }
                None => {
                    api.create_route()
                        .api_id(&api_id)
                        .route_key(key)
                        .target(&target)
                        .send()
                        .await
                        .map_err(|err| sdk_error("apigateway:CreateRoute", err))?;
                    changed.push("route");
                }
            }
        }
        let stages = api
            .get_stages()
            .api_id(&api_id)
            .send()
            .await
            .map_err(|err| sdk_error("apigateway:GetStages", err))?;
        if !stages
            .items()
            .iter()
            .any(|s| s.stage_name() == Some("$default"))
        {
            api.create_stage()
                .api_id(&api_id)
                .stage_name("$default")
                .auto_deploy(true)
                .tags(STACK_TAG, self.id.as_str())
                .send()
                .await
                .map_err(|err| sdk_error("apigateway:CreateStage", err))?;
            changed.push("stage");
        }
        let context =
            ArnContext::from_role_arn(role_arn, &self.settings.region).ok_or_else(|| {
                StackError::Invalid(format!("IAM answered an unexpected role ARN `{role_arn}`"))
            })?;
        if !self
            .has_permission(&self.names.submit, JOBS_API_PERMISSION_ID)
            .await?
        {
            let source = format!(
                "arn:{}:execute-api:{}:{}:{api_id}/*/*",
                context.partition, context.region, context.account
            );
            match self
                .clients
                .lambda
                .add_permission()
                .function_name(&self.names.submit)
                .statement_id(JOBS_API_PERMISSION_ID)
                .action("lambda:InvokeFunction")
                .principal("apigateway.amazonaws.com")
                .source_arn(source)
                .send()
                .await
            {
                Ok(_) => changed.push("invoke permission"),
                Err(err) if code_of(&err) == Some("ResourceConflictException") => {}
                Err(err) => return Err(sdk_error("lambda:AddPermission", err)),
            }
        }
        self.output(|state| state.outputs.jobs_api_endpoint = Some(endpoint.clone()))?;
        let what = format!("{endpoint} ({})", JOBS_ROUTES.join(", "));
        Ok((
            if changed.is_empty() {
                Outcome::Skipped(format!("in place: {what}"))
            } else {
                Outcome::Done(format!("{} set: {what}", changed.join(", ")))
            },
            endpoint,
        ))
    }

    /// The stack's HTTP API, by name: its id and endpoint.
    async fn find_api(&self) -> Result<Option<(String, String)>, StackError> {
        Ok(crate::stack::down::list_apis(self.clients)
            .await?
            .iter()
            .find(|api| api.name() == Some(self.names.jobs_api.as_str()))
            .map(|api| {
                (
                    api.api_id().unwrap_or_default().to_owned(),
                    api.api_endpoint().unwrap_or_default().to_owned(),
                )
            }))
    }

    /// Whether function `name`'s resource policy has the statement `sid` (moto, unlike
    /// Lambda, accepts the same statement id twice, so adding blindly is no test).
    pub(super) async fn has_permission(&self, name: &str, sid: &str) -> Result<bool, StackError> {
        match self
            .clients
            .lambda
            .get_policy()
            .function_name(name)
            .send()
            .await
        {
            Ok(policy) => Ok(policy
                .policy()
                .and_then(|text| serde_json::from_str::<serde_json::Value>(text).ok())
                .and_then(|policy| {
                    policy["Statement"]
                        .as_array()
                        .map(|statements| statements.iter().any(|s| s["Sid"] == sid))
                })
                .unwrap_or(false)),
            Err(err) if is_not_found(&err) => Ok(false),
            Err(err) => Err(sdk_error("lambda:GetPolicy", err)),
        }
    }
}
