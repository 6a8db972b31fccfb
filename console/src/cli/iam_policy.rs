//! `hybridlab iam-policy`: the IAM identity policy a student's own IAM user needs to run the lab
//! on AWS, as `hybridlab_provision::stack::operator_policy` makes it. The document is the whole
//! of standard output, so `hybridlab iam-policy > policy.json` saves it; how to use it goes to
//! standard error.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use hybridlab_provision::stack::operator_policy::jobs_operator_policy;
use hybridlab_provision::stack::{OperatorScope, operator_policy};

use super::StackPart;
use crate::lab::target::configured_region;

#[derive(Debug, Args)]
pub struct IamPolicyArgs {
    /// Also allow what a stack with these parts needs, as `up --with` takes them (`pipeline`:
    /// `up --with pipeline` and `upload`).
    #[arg(long = "with", value_enum, value_delimiter = ',')]
    pub with: Vec<StackPart>,

    /// The region the policy allows (default: AWS_REGION, the config file's, the profile's, as
    /// for --aws). Nothing is asked of AWS.
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,

    /// Print the second document instead: what the job-worker variant needs (`up --with
    /// jobs`, `job`, `bench --jobs`), attached beside the first (IAM's size limit keeps them
    /// apart).
    #[arg(long, conflicts_with = "with")]
    pub jobs_document: bool,

    /// One line of JSON instead of the indented document, and no advice on standard error.
    #[arg(long)]
    pub json: bool,
}

/// The document for `region`, as it is printed.
pub fn policy_text(args: &IamPolicyArgs, region: &str) -> anyhow::Result<String> {
    if args.with.contains(&StackPart::Jobs) {
        anyhow::bail!(
            "the jobs variant's grants are a second document (one would pass IAM's size limit): print it with `hybridlab iam-policy --jobs-document`, and attach it beside this one"
        );
    }
    let scope = OperatorScope::new(region, args.with.contains(&StackPart::Pipeline))?;
    let document = if args.jobs_document {
        jobs_operator_policy(&scope)
    } else {
        operator_policy(&scope)
    };
    Ok(if args.json {
        serde_json::to_string(&document)?
    } else {
        serde_json::to_string_pretty(&document)?
    })
}

/// Prints the policy; the region is `--region`, else the settings' (`hybridlab config`), else
/// their profile's.
pub async fn run(
    args: IamPolicyArgs,
    settings: &crate::lab::config::Resolved,
) -> anyhow::Result<ExitCode> {
    let profile = settings.profile.as_ref().map(|p| p.value.as_str());
    let region = match args
        .region
        .clone()
        .or_else(|| settings.region.as_ref().map(|r| r.value.clone()))
    {
        Some(region) => region,
        None => configured_region(profile).await.context(
            "no region: name the one the lab will run in with --region (e.g. --region eu-west-1), \
             or set AWS_REGION",
        )?,
    };
    println!("{}", policy_text(&args, &region)?);
    if args.jobs_document && !args.json {
        eprintln!(
            "This adds the job-worker variant in {region} to the first document. To give it to an IAM user:\n  \
             hybridlab iam-policy --jobs-document --region {region} > jobs-policy.json\n  \
             aws iam create-policy --policy-name hybridlab-operator-jobs --policy-document file://jobs-policy.json\n  \
             aws iam attach-user-policy --user-name USER --policy-arn arn:aws:iam::ACCOUNT:policy/hybridlab-operator-jobs"
        );
    } else if !args.json {
        eprintln!(
            "This allows `hybridlab --aws` in {region}{}. To give it to an IAM user:\n  \
             hybridlab iam-policy{} --region {region} > policy.json\n  \
             aws iam create-policy --policy-name hybridlab-operator --policy-document file://policy.json\n  \
             aws iam attach-user-policy --user-name USER --policy-arn arn:aws:iam::ACCOUNT:policy/hybridlab-operator",
            if args.with.is_empty() {
                " (without the pipeline: add --with pipeline for it)"
            } else {
                ", with the pipeline"
            },
            if args.with.is_empty() {
                ""
            } else {
                " --with pipeline"
            },
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser as _;
    use serde_json::Value;

    fn args(line: &[&str]) -> Result<IamPolicyArgs, clap::Error> {
        let cli = Cli::try_parse_from(line)?;
        match cli.command {
            Some(Command::IamPolicy(args)) => Ok(args),
            other => panic!("not `iam-policy`: {other:?}"),
        }
    }

    /// Every string in `value`, however deep.
    fn strings(value: &Value, into: &mut Vec<String>) {
        match value {
            Value::String(text) => into.push(text.clone()),
            Value::Array(items) => items.iter().for_each(|item| strings(item, into)),
            Value::Object(map) => map.values().for_each(|item| strings(item, into)),
            _ => {}
        }
    }

    #[test]
    fn with_pipeline_in_eu_west_1_prints_a_policy_whose_arns_name_eu_west_1() {
        let args = args(&[
            "hybridlab",
            "iam-policy",
            "--with",
            "pipeline",
            "--region",
            "eu-west-1",
        ])
        .expect("parses without --aws");
        assert_eq!(args.region.as_deref(), Some("eu-west-1"));
        let text = policy_text(&args, "eu-west-1").expect("a policy");
        let document: Value = serde_json::from_str(&text).expect("the output is the JSON document");
        assert_eq!(document["Version"], "2012-10-17");
        let mut all = Vec::new();
        strings(&document["Statement"], &mut all);
        let regional: Vec<&String> = all
            .iter()
            .filter(|s| s.starts_with("arn:aws:") && !s.split(':').nth(3).unwrap_or("").is_empty())
            .collect();
        assert!(regional.len() > 10, "{regional:?}");
        for arn in regional {
            assert_eq!(arn.split(':').nth(3), Some("eu-west-1"), "{arn}");
        }
        assert!(
            all.iter().any(|s| s.contains("hybridlab-resizer-")),
            "the pipeline's function"
        );
        assert!(all.iter().any(|s| s == "s3:PutBucketNotification"));
    }

    #[test]
    fn the_jobs_variant_is_refused_rather_than_left_out_silently() {
        let jobs = args(&["hybridlab", "iam-policy", "--with", "pipeline,jobs"]).expect("parses");
        let refused = policy_text(&jobs, "eu-west-1").expect_err("refused");
        assert!(refused.to_string().contains("--jobs-document"), "{refused}");
        let second =
            args(&["hybridlab", "iam-policy", "--jobs-document", "--json"]).expect("parses");
        let text = policy_text(&second, "eu-west-1").expect("the jobs document");
        assert!(!text.contains('\n'), "one line");
        assert!(text.contains("hybridlab-launcher-") && text.contains("apigateway:POST"));
        assert!(
            !text.contains("hybridlab-proxy-"),
            "the first document's own grants"
        );
    }

    #[test]
    fn without_pipeline_the_policy_has_none_of_it_and_json_is_one_line() {
        let plain = args(&["hybridlab", "iam-policy", "--json"]).expect("parses");
        assert!(plain.with.is_empty() && plain.region.is_none());
        let text = policy_text(&plain, "us-east-1").expect("a policy");
        assert_eq!(text.lines().count(), 1);
        assert!(!text.contains("resizer") && !text.contains("uploads"));
        assert!(text.contains(":us-east-1:"));
        let pretty = args(&["hybridlab", "iam-policy"]).expect("parses");
        assert!(
            policy_text(&pretty, "us-east-1")
                .expect("a policy")
                .lines()
                .count()
                > 10
        );
    }

    #[test]
    fn a_region_that_is_no_region_is_refused() {
        let args = args(&["hybridlab", "iam-policy", "--region", "*"]).expect("parses");
        let err = policy_text(&args, "*").expect_err("refused");
        assert!(format!("{err:#}").contains("not an AWS region"), "{err:#}");
    }

    #[test]
    fn a_region_alone_chooses_aws_for_the_other_commands() {
        let cli = Cli::try_parse_from(["hybridlab", "status", "--region", "eu-west-1"])
            .expect("--region needs no --aws");
        let settings =
            crate::lab::config::resolve(&cli.target.flags(), &|_| None, None).expect("resolves");
        assert_eq!(settings.target.value, crate::lab::config::TargetKind::Aws);
        assert!(
            Cli::try_parse_from(["hybridlab", "status", "--aws", "--sandbox"]).is_err(),
            "--aws and --sandbox contradict"
        );
        assert!(Cli::try_parse_from(["hybridlab", "iam-policy", "--with", "nothing"]).is_err());
    }
}
