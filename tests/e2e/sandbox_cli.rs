//! The real AWS CLI (v1, installed by the test support into hybridlab's virtualenv) works
//! against the sandbox's edge port for every service the lab uses, `lambda invoke --log-type
//! Tail` included.

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hybridlab_tests::aws::unique_name;
use hybridlab_tests::sandbox::{bootstrap_zip, sandbox};
use hybridlab_tools::ensure_aws_cli;
use serde_json::Value;

struct AwsCli {
    aws: PathBuf,
    endpoint: String,
}

impl AwsCli {
    /// Runs `aws <args> --endpoint-url <edge>` and returns its standard output.
    fn run(&self, args: &[&str]) -> String {
        let output = Command::new(&self.aws)
            .args(args)
            .args(["--endpoint-url", &self.endpoint, "--output", "json"])
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env_remove("AWS_PROFILE")
            .output()
            .expect("the AWS CLI runs");
        assert!(
            output.status.success(),
            "aws {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    fn json(&self, args: &[&str]) -> Value {
        let text = self.run(args);
        serde_json::from_str(&text)
            .unwrap_or_else(|err| panic!("aws {}: {err}: {text}", args.join(" ")))
    }
}

fn write_temp(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(unique_name("hybridlab-cli"));
    std::fs::create_dir_all(&dir).expect("a temp dir");
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("written");
    path
}

fn file_arg(prefix: &str, path: &Path) -> String {
    format!("{prefix}{}", path.display())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_aws_cli_works_against_the_edge_port() {
    let endpoint = sandbox().await.endpoint().to_owned();
    let zip = tokio::task::spawn_blocking(|| bootstrap_zip("hybridlab-tests", "lab-test-function"))
        .await
        .expect("zips");
    tokio::task::spawn_blocking(move || {
        let aws = ensure_aws_cli(&mut |message| eprintln!("{message}")).expect("the AWS CLI installs");
        let cli = AwsCli { aws, endpoint };

        let bucket = unique_name("cli");
        cli.run(&["s3api", "create-bucket", "--bucket", &bucket]);
        let file = write_temp("hello.txt", b"hello sandbox");
        cli.run(&["s3", "cp", &file.display().to_string(), &format!("s3://{bucket}/hello.txt")]);
        assert!(cli.run(&["s3", "ls", &format!("s3://{bucket}/")]).contains("hello.txt"));

        let table = unique_name("cli");
        cli.run(&[
            "dynamodb", "create-table", "--table-name", &table,
            "--attribute-definitions", "AttributeName=image_id,AttributeType=S",
            "--key-schema", "AttributeName=image_id,KeyType=HASH",
            "--billing-mode", "PAY_PER_REQUEST",
        ]);
        let tables = cli.json(&["dynamodb", "list-tables"]);
        assert!(tables["TableNames"].as_array().expect("names").iter().any(|t| t == table.as_str()));

        let group = format!("/hybridlab/{}", unique_name("cli"));
        cli.run(&["logs", "create-log-group", "--log-group-name", &group]);
        let groups = cli.json(&["logs", "describe-log-groups", "--log-group-name-prefix", &group]);
        assert_eq!(groups["logGroups"][0]["logGroupName"], group.as_str());

        let vpcs = cli.json(&["ec2", "describe-vpcs"]);
        assert!(
            vpcs["Vpcs"].as_array().expect("vpcs").iter().any(|v| v["IsDefault"] == true),
            "moto's default VPC: {vpcs}"
        );

        let role_name = unique_name("cli-role");
        let role = cli.json(&[
            "iam", "create-role", "--role-name", &role_name,
            "--assume-role-policy-document",
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#,
        ]);
        let role_arn = role["Role"]["Arn"].as_str().expect("an ARN").to_owned();

        let function = unique_name("cli-fn");
        let zip_path = write_temp("bootstrap.zip", &zip);
        cli.run(&[
            "lambda", "create-function", "--function-name", &function,
            "--runtime", "provided.al2023", "--handler", "bootstrap",
            "--role", &role_arn, "--zip-file", &file_arg("fileb://", &zip_path),
        ]);
        let out = zip_path.with_file_name("out.json");
        let invoked = cli.json(&[
            "lambda", "invoke", "--function-name", &function, "--log-type", "Tail",
            "--payload", r#"{"print": "hello from the CLI"}"#,
            &out.display().to_string(),
        ]);
        assert_eq!(invoked["StatusCode"], 200, "{invoked}");
        let log = String::from_utf8(
            STANDARD
                .decode(invoked["LogResult"].as_str().expect("a LogResult"))
                .expect("base64"),
        )
        .expect("UTF-8");
        assert!(log.contains("hello from the CLI"), "{log}");
        assert!(log.contains("REPORT RequestId:"), "{log}");
        let payload: Value =
            serde_json::from_slice(&std::fs::read(&out).expect("the payload file")).expect("JSON");
        assert_eq!(payload["echo"]["print"], "hello from the CLI");
    })
    .await
    .expect("the CLI checks pass");
}
