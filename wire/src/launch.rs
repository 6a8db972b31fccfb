//! The image server's launch description, carried in the instance's user-data. On AWS the
//! script runs: it fetches the server binary and its environment file from the artifacts
//! bucket, installs a systemd unit and schedules the self-termination. The sandbox's agent
//! reads the same `# hybridlab:` lines and starts the same binary with the same environment
//! file, so both targets run the server from one description.

use std::collections::BTreeMap;

/// Everything needed to start the image server on an instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerLaunch {
    pub artifact_bucket: String,
    /// Key of the `hybridlab-ec2-server` binary.
    pub binary_key: String,
    /// Key of the environment file (`KEY=VALUE` lines) the server runs with.
    pub env_key: String,
    /// CloudWatch Logs group of the server's output.
    pub log_group: String,
    pub region: String,
    pub port: u16,
    /// The instance shuts itself down (and so terminates) after this many seconds.
    pub ttl_seconds: u64,
}

const MARKER: &str = "# hybridlab:";

/// The server's file-descriptor limit (systemd's `LimitNOFILE`): far above its connection cap
/// (1024 by default), so a flood meets the cap, where idle connections give way, and never the
/// 1024-descriptor default, where `accept()` fails for everyone.
pub const SERVER_NOFILE_LIMIT: u64 = 65_536;

impl ServerLaunch {
    /// The user-data script.
    pub fn render(&self) -> String {
        self.script(&format!(
            "aws s3 cp --region {region} s3://{bucket}/{env} /etc/hybridlab/server.env\n",
            region = self.region,
            bucket = self.artifact_bucket,
            env = self.env_key,
        ))
    }

    /// The user-data script with the environment file written inline instead of fetched:
    /// for a CloudFormation stack, which cannot put an object in the bucket it creates.
    pub fn render_with_env(&self, env_file: &str) -> String {
        self.script(&format!(
            "cat > /etc/hybridlab/server.env <<'ENV'\n{env_file}ENV\nchmod 600 /etc/hybridlab/server.env\n"
        ))
    }

    fn script(&self, write_env: &str) -> String {
        let ttl_minutes = self.ttl_seconds.div_ceil(60).max(1);
        format!(
            "#!/bin/bash\n\
             # hybridlab image server bootstrap (Amazon Linux 2023)\n\
             {MARKER}artifact-bucket={bucket}\n\
             {MARKER}binary-key={binary}\n\
             {MARKER}env-key={env}\n\
             {MARKER}log-group={group}\n\
             {MARKER}region={region}\n\
             {MARKER}port={port}\n\
             {MARKER}ttl-seconds={ttl}\n\
             set -euo pipefail\n\
             # Stop billing even if nobody tears the stack down: shutdown terminates this instance.\n\
             shutdown -h +{ttl_minutes} 'hybridlab TTL reached' || true\n\
             install -d /opt/hybridlab /etc/hybridlab\n\
             aws s3 cp --region {region} s3://{bucket}/{binary} /opt/hybridlab/hybridlab-ec2-server\n\
             {write_env}\
             chmod 755 /opt/hybridlab/hybridlab-ec2-server\n\
             cat > /etc/systemd/system/hybridlab.service <<'UNIT'\n\
             [Unit]\n\
             Description=hybridlab image server\n\
             After=network-online.target\n\
             [Service]\n\
             EnvironmentFile=/etc/hybridlab/server.env\n\
             Environment=HYBRIDLAB_LISTEN=0.0.0.0:{port}\n\
             ExecStart=/opt/hybridlab/hybridlab-ec2-server\n\
             StandardOutput=append:/var/log/hybridlab/server.log\n\
             StandardError=append:/var/log/hybridlab/server.log\n\
             Restart=always\n\
             DynamicUser=yes\n\
             LimitNOFILE={nofile}\n\
             [Install]\n\
             WantedBy=multi-user.target\n\
             UNIT\n\
             install -d /var/log/hybridlab\n\
             systemctl daemon-reload\n\
             systemctl enable --now hybridlab.service\n\
             # Ship the server's log to its CloudWatch group; the server runs even if this fails.\n\
             set +e\n\
             dnf install -y -q amazon-cloudwatch-agent\n\
             cat > /opt/aws/amazon-cloudwatch-agent/etc/hybridlab.json <<'AGENT'\n\
             {{\"logs\":{{\"logs_collected\":{{\"files\":{{\"collect_list\":[{{\"file_path\":\"/var/log/hybridlab/server.log\",\"log_group_name\":\"{group}\",\"log_stream_name\":\"{{instance_id}}\"}}]}}}}}}}}\n\
             AGENT\n\
             /opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl -a fetch-config -m ec2 -s \\\n\
               -c file:/opt/aws/amazon-cloudwatch-agent/etc/hybridlab.json\n",
            bucket = self.artifact_bucket,
            binary = self.binary_key,
            env = self.env_key,
            group = self.log_group,
            region = self.region,
            port = self.port,
            ttl = self.ttl_seconds,
            nofile = SERVER_NOFILE_LIMIT,
        )
    }

    /// Reads the description back from a user-data script; `None` if it is not one of ours.
    pub fn parse(user_data: &str) -> Option<Self> {
        let fields: BTreeMap<&str, &str> = user_data
            .lines()
            .filter_map(|line| line.strip_prefix(MARKER))
            .filter_map(|line| line.split_once('='))
            .collect();
        Some(Self {
            artifact_bucket: fields.get("artifact-bucket")?.to_string(),
            binary_key: fields.get("binary-key")?.to_string(),
            env_key: fields.get("env-key")?.to_string(),
            log_group: fields.get("log-group")?.to_string(),
            region: fields.get("region")?.to_string(),
            port: fields.get("port")?.parse().ok()?,
            ttl_seconds: fields.get("ttl-seconds")?.parse().ok()?,
        })
    }
}

/// Parses an environment file: `KEY=VALUE` lines, `#` comments and blank lines ignored.
pub fn parse_env_file(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter_map(|line| line.split_once('='))
        .map(|(key, value)| (key.trim().to_owned(), value.trim().to_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_launch_description_survives_the_user_data_script() {
        let launch = ServerLaunch {
            artifact_bucket: "hybridlab-artifacts-ab12".into(),
            binary_key: "server/hybridlab-ec2-server".into(),
            env_key: "server/server.env".into(),
            log_group: "/hybridlab/ab12/ec2-server".into(),
            region: "eu-west-1".into(),
            port: 8080,
            ttl_seconds: 7200,
        };
        let script = launch.render();
        assert!(script.starts_with("#!/bin/bash\n"));
        assert!(script.contains("shutdown -h +120"));
        assert!(script.contains("systemctl enable --now hybridlab.service"));
        assert!(script.contains(&format!("\nLimitNOFILE={SERVER_NOFILE_LIMIT}\n")));
        // The CloudWatch agent's configuration is JSON naming the server's log group.
        let agent = script
            .split("<<'AGENT'\n")
            .nth(1)
            .and_then(|rest| rest.split("\nAGENT\n").next())
            .expect("an agent configuration");
        let agent: serde_json::Value = serde_json::from_str(agent).expect("JSON");
        assert_eq!(
            agent["logs"]["logs_collected"]["files"]["collect_list"][0]["log_group_name"],
            "/hybridlab/ab12/ec2-server"
        );
        assert_eq!(ServerLaunch::parse(&script), Some(launch));
        assert_eq!(ServerLaunch::parse("#!/bin/bash\necho hi\n"), None);
    }

    #[test]
    fn env_files_skip_comments_and_blanks() {
        assert_eq!(
            parse_env_file("# comment\nA=1\n\nB = two=2\n"),
            vec![("A".into(), "1".into()), ("B".into(), "two=2".into())]
        );
    }
}
