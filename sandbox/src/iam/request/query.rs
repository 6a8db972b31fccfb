//! The query-protocol services, whose operation is the `Action` parameter of a form body (or
//! query string): EC2, IAM and STS.

use std::collections::BTreeMap;

use super::{
    Classified, HttpRequestParts, Outcome, Scope, pass_role, request_tags, role_from_arn_or_name,
    role_resource,
};
use crate::iam::context::{RequestContext, Resource};

/// The parameters of the query string and, for a form body, of the body.
pub(super) fn params(request: &HttpRequestParts<'_>) -> BTreeMap<String, String> {
    let mut params: BTreeMap<String, String> =
        url::form_urlencoded::parse(request.query.as_bytes())
            .map(|(name, value)| (name.into_owned(), value.into_owned()))
            .collect();
    let form = request
        .header("content-type")
        .is_some_and(|value| value.starts_with("application/x-www-form-urlencoded"));
    if form {
        params.extend(
            url::form_urlencoded::parse(request.body)
                .map(|(name, value)| (name.into_owned(), value.into_owned())),
        );
    }
    params
}

/// The values of a numbered list parameter: `InstanceId.1`, `InstanceId.2`, ... (`prefix` is
/// `InstanceId.`), in order.
fn list(params: &BTreeMap<String, String>, prefix: &str) -> Vec<String> {
    let mut numbered: Vec<(u32, String)> = params
        .iter()
        .filter_map(|(name, value)| {
            let index = name.strip_prefix(prefix)?.parse::<u32>().ok()?;
            Some((index, value.clone()))
        })
        .collect();
    numbered.sort();
    numbered.into_iter().map(|(_, value)| value).collect()
}

/// Tags of `Tag.N.Key`/`Tag.N.Value` under `prefix` (`TagSpecification.1.`, `Tags.member.`).
fn tags_under(
    params: &BTreeMap<String, String>,
    prefix: &str,
    member: &str,
) -> Vec<(String, String)> {
    let mut numbered: Vec<(u32, String, String)> = params
        .iter()
        .filter_map(|(name, key)| {
            let rest = name.strip_prefix(prefix)?.strip_prefix(member)?;
            let index = rest.strip_suffix(".Key")?.parse::<u32>().ok()?;
            let value = params
                .get(&format!("{prefix}{member}{index}.Value"))
                .cloned()
                .unwrap_or_default();
            Some((index, key.clone(), value))
        })
        .collect();
    numbered.sort();
    numbered
        .into_iter()
        .map(|(_, key, value)| (key, value))
        .collect()
}

/// The EC2 resource type of an id, by its prefix, and whether its ARN has no account (AMIs and
/// snapshots are regional, not an account's).
fn ec2_type(id: &str) -> Option<(&'static str, bool)> {
    let (prefix, _) = id.split_once('-')?;
    Some(match prefix {
        "i" => ("instance", false),
        "vol" => ("volume", false),
        "sg" => ("security-group", false),
        "sgr" => ("security-group-rule", false),
        "subnet" => ("subnet", false),
        "vpc" => ("vpc", false),
        "eni" => ("network-interface", false),
        "ami" => ("image", true),
        "snap" => ("snapshot", true),
        "igw" => ("internet-gateway", false),
        "rtb" => ("route-table", false),
        "acl" => ("network-acl", false),
        "lt" => ("launch-template", false),
        "eipalloc" => ("elastic-ip", false),
        "key" => ("key-pair", false),
        "dopt" => ("dhcp-options", false),
        "vpce" => ("vpc-endpoint", false),
        "nat" => ("natgateway", false),
        "pl" => ("prefix-list", false),
        _ => return None,
    })
}

/// EC2: RunInstances on `instance/*`, `volume/*`, `network-interface/*` and the image, subnet,
/// security groups and key pair it uses (the default subnet and security group when none are
/// named, as unknown parts), `ec2:CreateTags` for tags on create, `iam:PassRole` on the
/// instance profile's role; per-instance actions on `instance/ID`; Describe* on `*`
/// (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/ExamplePolicies_EC2.html).
pub(super) fn ec2(request: &HttpRequestParts<'_>, scope: &Scope<'_>) -> Outcome {
    let params = params(request);
    let operation = params
        .get("Action")
        .cloned()
        .ok_or("EC2 request without an Action")?;
    let action = format!("ec2:{operation}");
    let arn = |kind: &str, id: &str, regional: bool| {
        let account = if regional { "" } else { scope.account };
        format!("arn:aws:ec2:{}:{account}:{kind}/{id}", scope.region)
    };
    let by_id = |id: &str| -> Result<Resource, String> {
        let (kind, regional) = ec2_type(id)
            .ok_or_else(|| format!("EC2 {operation}: unknown kind of resource {id}"))?;
        Ok(Resource::arn(arn(kind, id, regional)))
    };
    let checks = if operation.starts_with("Describe") {
        vec![RequestContext::new(action, Resource::any())]
    } else {
        match operation.as_str() {
            "RunInstances" => run_instances(&params, scope, &arn)?,
            "StartInstances"
            | "StopInstances"
            | "TerminateInstances"
            | "RebootInstances"
            | "MonitorInstances"
            | "UnmonitorInstances"
            | "GetConsoleOutput"
            | "GetConsoleScreenshot"
            | "ModifyInstanceAttribute"
            | "DisassociateIamInstanceProfile"
            | "AssociateIamInstanceProfile" => {
                let mut ids = list(&params, "InstanceId.");
                if let Some(id) = params.get("InstanceId") {
                    ids.push(id.clone());
                }
                if ids.is_empty() {
                    // Disassociate names an association, not an instance.
                    vec![RequestContext::new(
                        action.clone(),
                        Resource::arn(arn("instance", "*", false)),
                    )]
                } else {
                    let mut checks: Vec<RequestContext> = ids
                        .iter()
                        .map(|id| {
                            RequestContext::new(
                                action.clone(),
                                Resource::arn(arn("instance", id, false)),
                            )
                        })
                        .collect();
                    if operation == "AssociateIamInstanceProfile" {
                        checks.extend(instance_profile_pass_role(
                            &params,
                            scope,
                            &arn("instance", &ids[0], false),
                        ));
                    }
                    checks
                }
            }
            "ReplaceIamInstanceProfileAssociation" => {
                let mut checks = vec![RequestContext::new(
                    action.clone(),
                    Resource::arn(arn("instance", "*", false)),
                )];
                checks.extend(instance_profile_pass_role(
                    &params,
                    scope,
                    &arn("instance", "*", false),
                ));
                checks
            }
            "CreateTags" | "DeleteTags" => {
                let ids = list(&params, "ResourceId.");
                if ids.is_empty() {
                    return Err(format!("EC2 {operation} without ResourceId.N"));
                }
                let tags = tags_under(&params, "", "Tag.");
                ids.iter()
                    .map(|id| {
                        let mut check = RequestContext::new(action.clone(), by_id(id)?);
                        request_tags(&mut check, &tags);
                        Ok(check)
                    })
                    .collect::<Result<_, String>>()?
            }
            "CreateSecurityGroup" => {
                let vpc = match params.get("VpcId") {
                    Some(vpc) => Resource::arn(arn("vpc", vpc, false)),
                    None => Resource::unknown_runs(&[&arn("vpc", "", false), ""]),
                };
                let mut group = RequestContext::new(
                    action.clone(),
                    Resource::arn(arn("security-group", "*", false)),
                );
                request_tags(
                    &mut group,
                    &tags_under(&params, "TagSpecification.1.", "Tag."),
                );
                vec![group, RequestContext::new(action, vpc)]
            }
            "DeleteSecurityGroup"
            | "AuthorizeSecurityGroupIngress"
            | "AuthorizeSecurityGroupEgress"
            | "RevokeSecurityGroupIngress"
            | "RevokeSecurityGroupEgress"
            | "ModifySecurityGroupRules" => {
                let resource = match params.get("GroupId") {
                    Some(id) => Resource::arn(arn("security-group", id, false)),
                    None => Resource::unknown_runs(&[&arn("security-group", "", false), ""]),
                };
                vec![RequestContext::new(action, resource)]
            }
            "CreateKeyPair" | "ImportKeyPair" | "DeleteKeyPair" => {
                let name = params
                    .get("KeyName")
                    .ok_or_else(|| format!("EC2 {operation} without a KeyName"))?;
                vec![RequestContext::new(
                    action,
                    Resource::arn(arn("key-pair", name, false)),
                )]
            }
            other => {
                return Err(format!(
                    "EC2 operation {other} is not one the sandbox knows"
                ));
            }
        }
    };
    Ok(Classified::new(operation, checks))
}

fn run_instances(
    params: &BTreeMap<String, String>,
    scope: &Scope<'_>,
    arn: &dyn Fn(&str, &str, bool) -> String,
) -> Result<Vec<RequestContext>, String> {
    let action = "ec2:RunInstances";
    let instances = arn("instance", "*", false);
    let mut checks = Vec::new();
    let mut instance = RequestContext::new(action, Resource::arn(instances.clone()));
    if let Some(kind) = params.get("InstanceType") {
        instance.set_key("ec2:InstanceType", [kind.as_str()]);
    }
    if let Some(profile) = params.get("IamInstanceProfile.Arn") {
        instance.set_key("ec2:InstanceProfile", [profile.as_str()]);
    }
    checks.push(instance);
    checks.push(RequestContext::new(
        action,
        Resource::arn(arn("volume", "*", false)),
    ));
    checks.push(RequestContext::new(
        action,
        Resource::arn(arn("network-interface", "*", false)),
    ));
    if let Some(image) = params.get("ImageId") {
        checks.push(RequestContext::new(
            action,
            Resource::arn(arn("image", image, true)),
        ));
    }
    let subnet = params
        .get("SubnetId")
        .or_else(|| params.get("NetworkInterface.1.SubnetId"))
        .map(|id| Resource::arn(arn("subnet", id, false)))
        .unwrap_or_else(|| Resource::unknown_runs(&[&arn("subnet", "", false), ""]));
    checks.push(RequestContext::new(action, subnet));
    let groups = list(params, "SecurityGroupId.");
    if groups.is_empty() {
        checks.push(RequestContext::new(
            action,
            Resource::unknown_runs(&[&arn("security-group", "", false), ""]),
        ));
    }
    for group in groups {
        checks.push(RequestContext::new(
            action,
            Resource::arn(arn("security-group", &group, false)),
        ));
    }
    if let Some(key) = params.get("KeyName") {
        checks.push(RequestContext::new(
            action,
            Resource::arn(arn("key-pair", key, false)),
        ));
    }
    // Tags on create also need ec2:CreateTags on each tagged kind, with ec2:CreateAction
    // (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/supported-iam-actions-tagging.html).
    for n in 1.. {
        let prefix = format!("TagSpecification.{n}.");
        let Some(kind) = params.get(&format!("{prefix}ResourceType")) else {
            break;
        };
        let tags = tags_under(params, &prefix, "Tag.");
        let mut create_tags =
            RequestContext::new("ec2:CreateTags", Resource::arn(arn(kind, "*", false)))
                .with_key("ec2:CreateAction", ["RunInstances"]);
        request_tags(&mut create_tags, &tags);
        if kind == "instance" {
            request_tags(&mut checks[0], &tags);
        }
        checks.push(create_tags);
    }
    checks.extend(instance_profile_pass_role(params, scope, &instances));
    Ok(checks)
}

/// `iam:PassRole` on the role of the instance profile an EC2 call names.
fn instance_profile_pass_role(
    params: &BTreeMap<String, String>,
    scope: &Scope<'_>,
    instance: &str,
) -> Option<RequestContext> {
    let profile = params
        .get("IamInstanceProfile.Arn")
        .or_else(|| params.get("IamInstanceProfile.Name"))?;
    let role = match scope.lookups.instance_profile_role(profile) {
        Some(role) => Resource::arn(role),
        // Some role of the account: the profile's role is not known here.
        None => Resource::unknown_runs(&[&format!("arn:aws:iam::{}:role/", scope.account), ""]),
    };
    Some(pass_role(role, "ec2.amazonaws.com", instance))
}

/// IAM: the role, user, instance profile or policy a call names. A role or user named without
/// its path is matched under any path (`role/NAME` and `role/PATH/NAME`) unless the lookups
/// know its ARN. Refusals name them as IAM does (`role NAME`).
pub(super) fn iam(request: &HttpRequestParts<'_>, scope: &Scope<'_>) -> Outcome {
    let params = params(request);
    let operation = params
        .get("Action")
        .cloned()
        .ok_or("IAM request without an Action")?;
    let action = format!("iam:{operation}");
    let account = scope.account;
    let path = params.get("Path").map(String::as_str);
    // A named entity: its given path on creation, else the lookups or an unknown path.
    let named = |kind: &str, name: &str| -> Resource {
        let resource = match (path, kind) {
            // Created here: at the path given, `/` by default.
            (path, _) if operation.starts_with("Create") => Resource::arn(format!(
                "arn:aws:iam::{account}:{kind}{}{name}",
                path.unwrap_or("/")
            )),
            (_, "role") => role_resource(scope, name),
            _ => Resource::unknown_path(&format!("arn:aws:iam::{account}:{kind}"), name),
        };
        resource.named(format!("{kind} {name}"))
    };
    let tags = tags_under(&params, "Tags.", "member.");
    let mut checks = Vec::new();
    let resource = if let Some(name) = params.get("InstanceProfileName") {
        if let Some(role) = params.get("RoleName")
            && operation == "AddRoleToInstanceProfile"
        {
            let profile = named("instance-profile", name);
            let profile_arn = profile.as_str().to_owned();
            checks.push(RequestContext::new(action.clone(), profile));
            // Adding a role to a profile passes it (to whoever launches with the profile).
            checks.push(
                RequestContext::new("iam:PassRole", role_resource(scope, role))
                    .with_key("iam:AssociatedResourceArn", [profile_arn]),
            );
            return Ok(Classified::new(operation, checks));
        }
        named("instance-profile", name)
    } else if let Some(name) = params.get("RoleName") {
        named("role", name)
    } else if let Some(name) = params.get("UserName") {
        named("user", name)
    } else if let Some(name) = params.get("GroupName") {
        named("group", name)
    } else if let Some(arn) = params.get("PolicyArn") {
        Resource::arn(arn.as_str()).named(format!("policy {arn}"))
    } else if let Some(name) = params
        .get("PolicyName")
        .filter(|_| operation == "CreatePolicy")
    {
        named("policy", name)
    } else if operation.starts_with("List") || operation.starts_with("Get") {
        Resource::any()
    } else {
        return Err(format!(
            "IAM operation {operation} names nothing the sandbox knows"
        ));
    };
    let mut check = RequestContext::new(action, resource);
    // Attaching a managed policy is authorised on the role, with the policy as a key.
    if let (Some(policy), true) = (
        params.get("PolicyArn"),
        params.contains_key("RoleName") || params.contains_key("UserName"),
    ) {
        check.set_key("iam:PolicyARN", [policy.as_str()]);
    }
    request_tags(&mut check, &tags);
    checks.push(check);
    Ok(Classified::new(operation, checks))
}

/// STS: AssumeRole on the role's ARN; GetCallerIdentity needs no permission.
pub(super) fn sts(request: &HttpRequestParts<'_>, scope: &Scope<'_>) -> Outcome {
    let params = params(request);
    let operation = params
        .get("Action")
        .cloned()
        .ok_or("STS request without an Action")?;
    let action = format!("sts:{operation}");
    let checks = match operation.as_str() {
        // "No permissions are required to perform this operation."
        "GetCallerIdentity" | "AssumeRoleWithWebIdentity" | "AssumeRoleWithSAML" => Vec::new(),
        "AssumeRole" => {
            let role = params
                .get("RoleArn")
                .ok_or("STS AssumeRole without a RoleArn")?;
            let role = role_from_arn_or_name(scope, role);
            let mut check = RequestContext::new(action, role.clone());
            if let Some(session) = params.get("RoleSessionName") {
                check.set_key("sts:RoleSessionName", [session.as_str()]);
            }
            if let Some(external) = params.get("ExternalId") {
                check.set_key("sts:ExternalId", [external.as_str()]);
            }
            let tags = tags_under(&params, "Tags.", "member.");
            request_tags(&mut check, &tags);
            let mut checks = vec![check];
            // Session tags also need sts:TagSession on the role
            // (https://docs.aws.amazon.com/IAM/latest/UserGuide/id_session-tags.html).
            if !tags.is_empty() {
                let mut tag_session = RequestContext::new("sts:TagSession", role);
                request_tags(&mut tag_session, &tags);
                checks.push(tag_session);
            }
            checks
        }
        "GetSessionToken" | "GetAccessKeyInfo" | "DecodeAuthorizationMessage" => {
            vec![RequestContext::new(action, Resource::any())]
        }
        "GetFederationToken" => {
            let name = params
                .get("Name")
                .ok_or("STS GetFederationToken without a Name")?;
            vec![RequestContext::new(
                action,
                Resource::arn(format!(
                    "arn:aws:sts::{}:federated-user/{name}",
                    scope.account
                )),
            )]
        }
        other => {
            return Err(format!(
                "STS operation {other} is not one the sandbox knows"
            ));
        }
    };
    Ok(Classified::new(operation, checks))
}
