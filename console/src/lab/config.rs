//! Where the target and the defaults come from: the command line's flags, then the
//! environment (`HYBRIDLAB_TARGET`, `HYBRIDLAB_ENDPOINT`, `AWS_ENDPOINT_URL`, `AWS_PROFILE`,
//! `AWS_REGION`, ...), then the config file (`$XDG_CONFIG_HOME/hybridlab/config.toml`), then the
//! defaults: the same order as the AWS CLI's. [`resolve`] is plain logic over those three inputs, so the precedence is
//! tested without a file or a process environment; the binary reads them ([`load_file`]).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The environment variable that chooses the target (`aws` or `sandbox`).
pub const TARGET_ENV: &str = "HYBRIDLAB_TARGET";
/// The environment variable that names an AWS-compatible endpoint as the local target.
pub const ENDPOINT_ENV: &str = "HYBRIDLAB_ENDPOINT";
/// `AWS_ENDPOINT_URL` sends every AWS call to another endpoint (LocalStack's and moto's users
/// set it). With no target chosen it makes that endpoint the local target; with AWS chosen,
/// AWS's calls go there, as the AWS CLI's do, and the header says so.
/// `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true` turns it off, for hybridlab as for the SDKs.
pub use hybridlab_provision::stack::target::{
    ENDPOINT_URL_ENV as AWS_ENDPOINT_ENV, IGNORE_ENDPOINTS_ENV,
};
/// The environment variable with the image URL the console invokes with.
pub const IMAGE_URL_ENV: &str = "HYBRIDLAB_IMAGE_URL";
/// The environment variable with the console's theme.
pub const THEME_ENV: &str = "HYBRIDLAB_THEME";

/// The config file as the user writes it. Every key is optional; an unknown one is an error,
/// so a typo is not silently ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// `aws` or `sandbox`.
    pub target: Option<String>,
    /// The AWS profile (from `~/.aws/config`) for the AWS target.
    pub profile: Option<String>,
    /// The AWS region for the AWS target.
    pub region: Option<String>,
    /// The image URL the console invokes with.
    pub image_url: Option<String>,
    /// The console's colours: `dark` (the default) or `light`, for a white background.
    pub theme: Option<String>,
}

/// The config file that could not be used, and why.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the config file {path}: {reason}")]
    Unreadable { path: PathBuf, reason: String },
    #[error("the config file {path} is not valid: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error("{source_name} is `{value}`: the target is `aws` or `sandbox`")]
    UnknownTarget { source_name: String, value: String },
    #[error("{0}")]
    Contradiction(String),
}

/// Which kind of target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetKind {
    Aws,
    Sandbox,
}

impl TargetKind {
    fn parse(value: &str, source_name: &str) -> Result<Self, ConfigError> {
        match value.trim().to_ascii_lowercase().as_str() {
            "aws" => Ok(Self::Aws),
            "sandbox" | "local" => Ok(Self::Sandbox),
            _ => Err(ConfigError::UnknownTarget {
                source_name: source_name.to_owned(),
                value: value.to_owned(),
            }),
        }
    }
}

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "name", rename_all = "lowercase")]
pub enum Source {
    /// A command-line flag (`--aws`, `--region`, ...).
    Flag(String),
    /// An environment variable.
    Env(String),
    /// The config file.
    File(PathBuf),
    /// Nothing chose it.
    Default,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Flag(flag) => write!(f, "the flag {flag}"),
            Self::Env(name) => write!(f, "the environment variable {name}"),
            Self::File(path) => write!(f, "the config file {}", path.display()),
            Self::Default => write!(f, "the default"),
        }
    }
}

/// A value and where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Sourced<T> {
    pub value: T,
    pub source: Source,
}

fn sourced<T>(value: T, source: Source) -> Sourced<T> {
    Sourced { value, source }
}

/// What the command line says about the target.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetFlags {
    pub aws: bool,
    pub sandbox: bool,
    pub endpoint: Option<String>,
    pub profile: Option<String>,
    pub region: Option<String>,
}

/// The settings in force, each with its source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Resolved {
    pub target: Sourced<TargetKind>,
    /// The local target's endpoint, when one is given (otherwise the sandbox is started).
    pub endpoint: Option<Sourced<String>>,
    /// For the AWS target, the endpoint `AWS_ENDPOINT_URL` sends its calls to instead of AWS's
    /// (the SDK follows it; the profile's `endpoint_url` and the services' own variables are
    /// seen when connecting).
    pub aws_endpoint_override: Option<Sourced<String>>,
    /// The AWS profile; none: the SDK's default.
    pub profile: Option<Sourced<String>>,
    /// The AWS region; none: the profile's in `~/.aws/config`, looked up when connecting.
    pub region: Option<Sourced<String>>,
    pub image_url: Option<Sourced<String>>,
    /// The console's theme, by name (the console checks it).
    pub theme: Option<Sourced<String>>,
}

/// The first of `candidates` that has a value.
fn first(candidates: Vec<(Option<String>, Source)>) -> Option<Sourced<String>> {
    candidates
        .into_iter()
        .find_map(|(value, source)| value.filter(|v| !v.is_empty()).map(|v| sourced(v, source)))
}

/// The settings `flags`, the environment (`env`) and the config file (`file`, with its path)
/// give, in that order of precedence. Within one level, two settings that contradict each
/// other are an error; a higher level simply wins over a lower one. `--profile` and
/// `--region` choose AWS, as they do for the AWS CLI.
pub fn resolve(
    flags: &TargetFlags,
    env: &dyn Fn(&str) -> Option<String>,
    file: Option<(&Path, &ConfigFile)>,
) -> Result<Resolved, ConfigError> {
    let file_source = || file.map(|(path, _)| Source::File(path.to_owned()));
    let env_value = |name: &str| env(name).filter(|value| !value.is_empty());
    let endpoints_ignored =
        env_value(IGNORE_ENDPOINTS_ENV).is_some_and(|value| value.eq_ignore_ascii_case("true"));
    let aws_endpoint = env_value(AWS_ENDPOINT_ENV).filter(|_| !endpoints_ignored);

    let aws_flag = if flags.aws {
        Some("--aws")
    } else if flags.profile.is_some() {
        Some("--profile")
    } else if flags.region.is_some() {
        Some("--region")
    } else {
        None
    };
    let local_flag = if flags.sandbox {
        Some("--sandbox")
    } else if flags.endpoint.is_some() {
        Some("--endpoint")
    } else {
        None
    };
    let target = match (aws_flag, local_flag) {
        (Some(aws), Some(local)) => {
            return Err(ConfigError::Contradiction(format!(
                "{aws} chooses AWS and {local} the local target: give one"
            )));
        }
        (Some(flag), None) => sourced(TargetKind::Aws, Source::Flag(flag.into())),
        (None, Some(flag)) => sourced(TargetKind::Sandbox, Source::Flag(flag.into())),
        (None, None) => {
            let from_env = env_value(TARGET_ENV)
                .map(|value| TargetKind::parse(&value, TARGET_ENV))
                .transpose()?;
            match (from_env, env_value(ENDPOINT_ENV)) {
                (Some(TargetKind::Aws), Some(_)) => {
                    return Err(ConfigError::Contradiction(format!(
                        "{TARGET_ENV}=aws and {ENDPOINT_ENV} (a local target) are both set: unset one"
                    )));
                }
                (Some(kind), _) => sourced(kind, Source::Env(TARGET_ENV.into())),
                (None, Some(_)) => sourced(TargetKind::Sandbox, Source::Env(ENDPOINT_ENV.into())),
                (None, None) => match file
                    .and_then(|(path, config)| config.target.as_deref().map(|value| (path, value)))
                {
                    Some((path, value)) => sourced(
                        TargetKind::parse(value, &format!("`target` in {}", path.display()))?,
                        Source::File(path.to_owned()),
                    ),
                    // AWS_ENDPOINT_URL redirects rather than chooses, so it chooses the local
                    // target only where nothing, the file included, chose one.
                    None if aws_endpoint.is_some() => {
                        sourced(TargetKind::Sandbox, Source::Env(AWS_ENDPOINT_ENV.into()))
                    }
                    None => sourced(TargetKind::Sandbox, Source::Default),
                },
            }
        }
    };
    let endpoint = match target.value {
        TargetKind::Aws => None,
        TargetKind::Sandbox => first(vec![
            (flags.endpoint.clone(), Source::Flag("--endpoint".into())),
            (env_value(ENDPOINT_ENV), Source::Env(ENDPOINT_ENV.into())),
            (aws_endpoint.clone(), Source::Env(AWS_ENDPOINT_ENV.into())),
        ]),
    };
    let aws_endpoint_override = match target.value {
        TargetKind::Aws => {
            aws_endpoint.map(|url| sourced(url, Source::Env(AWS_ENDPOINT_ENV.into())))
        }
        TargetKind::Sandbox => None,
    };
    let from_file = |pick: fn(&ConfigFile) -> Option<String>| {
        (
            file.and_then(|(_, config)| pick(config)),
            file_source().unwrap_or(Source::Default),
        )
    };
    let profile = first(vec![
        (flags.profile.clone(), Source::Flag("--profile".into())),
        (env_value("AWS_PROFILE"), Source::Env("AWS_PROFILE".into())),
        from_file(|c| c.profile.clone()),
    ]);
    let region = first(vec![
        (flags.region.clone(), Source::Flag("--region".into())),
        (env_value("AWS_REGION"), Source::Env("AWS_REGION".into())),
        (
            env_value("AWS_DEFAULT_REGION"),
            Source::Env("AWS_DEFAULT_REGION".into()),
        ),
        from_file(|c| c.region.clone()),
    ]);
    let image_url = first(vec![
        (env_value(IMAGE_URL_ENV), Source::Env(IMAGE_URL_ENV.into())),
        from_file(|c| c.image_url.clone()),
    ]);
    let theme = first(vec![
        (env_value(THEME_ENV), Source::Env(THEME_ENV.into())),
        from_file(|c| c.theme.clone()),
    ]);
    Ok(Resolved {
        target,
        endpoint,
        aws_endpoint_override,
        profile,
        region,
        image_url,
        theme,
    })
}

/// Where the config file is: `$XDG_CONFIG_HOME/hybridlab/config.toml`, else
/// `~/.config/hybridlab/config.toml`; `None` without either variable.
pub fn config_path(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let base = env("XDG_CONFIG_HOME")
        .filter(|dir| Path::new(dir).is_absolute())
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|home| Path::new(&home).join(".config")))?;
    Some(base.join("hybridlab").join("config.toml"))
}

/// The config file's settings, parsed from `text` read at `path`.
pub fn parse_file(path: &Path, text: &str) -> Result<ConfigFile, ConfigError> {
    toml::from_str(text).map_err(|err| ConfigError::Invalid {
        path: path.to_owned(),
        reason: err.message().to_owned(),
    })
}

/// The config file at `path`, if there is one.
pub fn load_file(path: &Path) -> Result<Option<ConfigFile>, ConfigError> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse_file(path, &text).map(Some),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(ConfigError::Unreadable {
            path: path.to_owned(),
            reason: err.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    fn file(text: &str) -> ConfigFile {
        parse_file(Path::new("/home/s/.config/hybridlab/config.toml"), text).expect("valid")
    }

    const PATH: &str = "/home/s/.config/hybridlab/config.toml";

    fn resolved(flags: TargetFlags, env: &[(&str, &str)], config: Option<&str>) -> Resolved {
        let config = config.map(file);
        resolve(
            &flags,
            &env_of(env),
            config.as_ref().map(|c| (Path::new(PATH), c)),
        )
        .expect("resolves")
    }

    #[test]
    fn nothing_said_is_the_local_sandbox() {
        let r = resolved(TargetFlags::default(), &[], None);
        assert_eq!(r.target, sourced(TargetKind::Sandbox, Source::Default));
        assert_eq!((r.endpoint, r.profile, r.region), (None, None, None));
    }

    #[test]
    fn the_file_makes_the_target_stick_and_the_environment_and_flags_override_it() {
        let config = Some("target = \"aws\"\nprofile = \"lab\"\nregion = \"eu-west-1\"\n");
        let from_file = resolved(TargetFlags::default(), &[], config);
        assert_eq!(from_file.target.value, TargetKind::Aws);
        assert_eq!(from_file.target.source, Source::File(PATH.into()));
        assert_eq!(from_file.profile.expect("a profile").value, "lab");
        assert_eq!(from_file.region.expect("a region").value, "eu-west-1");

        let from_env = resolved(
            TargetFlags::default(),
            &[(TARGET_ENV, "sandbox"), ("AWS_REGION", "us-west-2")],
            config,
        );
        assert_eq!(
            from_env.target,
            sourced(TargetKind::Sandbox, Source::Env(TARGET_ENV.into()))
        );
        assert_eq!(
            from_env.region.expect("a region"),
            sourced("us-west-2".to_owned(), Source::Env("AWS_REGION".into()))
        );

        let from_flag = resolved(
            TargetFlags {
                sandbox: true,
                ..TargetFlags::default()
            },
            &[(TARGET_ENV, "aws")],
            config,
        );
        assert_eq!(
            from_flag.target,
            sourced(TargetKind::Sandbox, Source::Flag("--sandbox".into()))
        );
    }

    #[test]
    fn profile_and_region_flags_choose_aws_as_the_aws_cli_does() {
        let r = resolved(
            TargetFlags {
                profile: Some("course".into()),
                ..TargetFlags::default()
            },
            &[(TARGET_ENV, "sandbox"), ("AWS_PROFILE", "other")],
            Some("profile = \"lab\""),
        );
        assert_eq!(
            r.target,
            sourced(TargetKind::Aws, Source::Flag("--profile".into()))
        );
        assert_eq!(
            r.profile.expect("a profile"),
            sourced("course".to_owned(), Source::Flag("--profile".into()))
        );
        let r = resolved(
            TargetFlags {
                region: Some("ap-south-1".into()),
                ..TargetFlags::default()
            },
            &[("AWS_DEFAULT_REGION", "eu-west-1")],
            None,
        );
        assert_eq!(r.target.source, Source::Flag("--region".into()));
        assert_eq!(r.region.expect("a region").value, "ap-south-1");
        // AWS_PROFILE before the file's profile; AWS_REGION before AWS_DEFAULT_REGION.
        let r = resolved(
            TargetFlags::default(),
            &[
                ("AWS_PROFILE", "other"),
                ("AWS_DEFAULT_REGION", "eu-west-1"),
                ("AWS_REGION", "eu-north-1"),
            ],
            Some("target = \"aws\"\nprofile = \"lab\""),
        );
        assert_eq!(r.profile.expect("a profile").value, "other");
        assert_eq!(r.region.expect("a region").value, "eu-north-1");
    }

    #[test]
    fn an_endpoint_is_a_local_target_at_its_level() {
        let r = resolved(
            TargetFlags::default(),
            &[(ENDPOINT_ENV, "http://127.0.0.1:4566")],
            Some("target = \"aws\""),
        );
        assert_eq!(
            r.target,
            sourced(TargetKind::Sandbox, Source::Env(ENDPOINT_ENV.into()))
        );
        assert_eq!(
            r.endpoint.expect("an endpoint").value,
            "http://127.0.0.1:4566"
        );
        // --aws wins over an endpoint in the environment, which is then not used.
        let r = resolved(
            TargetFlags {
                aws: true,
                ..TargetFlags::default()
            },
            &[(ENDPOINT_ENV, "http://127.0.0.1:4566")],
            None,
        );
        assert_eq!(r.target.value, TargetKind::Aws);
        assert_eq!(r.endpoint, None);
    }

    #[test]
    fn aws_endpoint_url_is_the_local_target_unless_aws_is_chosen_which_it_then_redirects() {
        const LOCALSTACK: &str = "http://localhost:4566";
        let r = resolved(
            TargetFlags::default(),
            &[(AWS_ENDPOINT_ENV, LOCALSTACK)],
            None,
        );
        assert_eq!(
            r.target,
            sourced(TargetKind::Sandbox, Source::Env(AWS_ENDPOINT_ENV.into()))
        );
        assert_eq!(r.endpoint.expect("an endpoint").value, LOCALSTACK);
        assert_eq!(r.aws_endpoint_override, None);
        // HYBRIDLAB_ENDPOINT is hybridlab's own, and says more.
        let r = resolved(
            TargetFlags::default(),
            &[
                (AWS_ENDPOINT_ENV, LOCALSTACK),
                (ENDPOINT_ENV, "http://127.0.0.1:4777"),
            ],
            None,
        );
        assert_eq!(
            r.endpoint.expect("an endpoint").value,
            "http://127.0.0.1:4777"
        );
        // AWS chosen by a flag, the environment or the file: AWS, redirected, and said.
        for (flags, env, config) in [
            (
                TargetFlags {
                    aws: true,
                    ..TargetFlags::default()
                },
                vec![],
                None,
            ),
            (TargetFlags::default(), vec![(TARGET_ENV, "aws")], None),
            (TargetFlags::default(), vec![], Some("target = \"aws\"")),
        ] {
            let mut env = env;
            env.push((AWS_ENDPOINT_ENV, LOCALSTACK));
            let r = resolved(flags, &env, config);
            assert_eq!(r.target.value, TargetKind::Aws);
            assert_eq!(r.endpoint, None);
            assert_eq!(
                r.aws_endpoint_override,
                Some(sourced(
                    LOCALSTACK.to_owned(),
                    Source::Env(AWS_ENDPOINT_ENV.into())
                ))
            );
        }
        // AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true turns it off, as it does for the SDKs.
        let r = resolved(
            TargetFlags::default(),
            &[
                (AWS_ENDPOINT_ENV, LOCALSTACK),
                (IGNORE_ENDPOINTS_ENV, "true"),
            ],
            None,
        );
        assert_eq!(r.target, sourced(TargetKind::Sandbox, Source::Default));
        assert_eq!(r.endpoint, None);
    }

    #[test]
    fn contradictions_and_unknown_values_are_refused_with_their_sources() {
        let both = resolve(
            &TargetFlags {
                region: Some("eu-west-1".into()),
                endpoint: Some("http://127.0.0.1:4566".into()),
                ..TargetFlags::default()
            },
            &env_of(&[]),
            None,
        )
        .expect_err("--region and --endpoint contradict");
        assert!(
            both.to_string()
                .contains("--region chooses AWS and --endpoint"),
            "{both}"
        );
        let env = resolve(
            &TargetFlags::default(),
            &env_of(&[(TARGET_ENV, "aws"), (ENDPOINT_ENV, "http://x")]),
            None,
        )
        .expect_err("the two variables contradict");
        assert!(env.to_string().contains("unset one"), "{env}");
        let unknown = resolve(
            &TargetFlags::default(),
            &env_of(&[(TARGET_ENV, "azure")]),
            None,
        )
        .expect_err("not a target");
        assert_eq!(
            unknown.to_string(),
            "HYBRIDLAB_TARGET is `azure`: the target is `aws` or `sandbox`"
        );
        let config = file("target = \"gcp\"");
        let in_file = resolve(
            &TargetFlags::default(),
            &env_of(&[]),
            Some((Path::new(PATH), &config)),
        )
        .expect_err("not a target");
        assert!(in_file.to_string().contains(PATH), "{in_file}");
    }

    #[test]
    fn a_file_with_an_unknown_key_or_bad_toml_says_which_and_where() {
        let typo = parse_file(Path::new(PATH), "regoin = \"eu-west-1\"\n").expect_err("a typo");
        let said = typo.to_string();
        assert!(said.contains(PATH) && said.contains("regoin"), "{said}");
        let broken = parse_file(Path::new(PATH), "target = aws\n").expect_err("not TOML");
        assert!(broken.to_string().contains("is not valid"), "{broken}");
    }

    #[test]
    fn the_file_is_under_xdg_config_home_or_the_home_directory() {
        assert_eq!(
            config_path(&env_of(&[("XDG_CONFIG_HOME", "/x"), ("HOME", "/h")])),
            Some(PathBuf::from("/x/hybridlab/config.toml"))
        );
        // A relative XDG_CONFIG_HOME is ignored, as the specification says.
        assert_eq!(
            config_path(&env_of(&[("XDG_CONFIG_HOME", "rel"), ("HOME", "/h")])),
            Some(PathBuf::from("/h/.config/hybridlab/config.toml"))
        );
        assert_eq!(config_path(&env_of(&[])), None);
    }
}
