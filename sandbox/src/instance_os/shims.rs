//! The commands of Amazon Linux 2023 a user-data script calls, as small bash scripts that keep
//! their state where the real ones keep it, under the instance's root (`$HYBRIDLAB_ROOT`):
//! `systemctl` links enabled units into `*.wants` directories and records what was started,
//! `dnf` installs a package by copying its tree from the instance's package repository, the
//! CloudWatch agent's `ctl` puts its configuration where the agent reads it. What they do not
//! model they refuse with a message that says so, so a script that needs more fails visibly.

/// Where the agent reads what was started (one unit name a line) once the user-data is done.
pub(crate) const STARTED_UNITS: &str = "/run/hybridlab/started-units";
/// Written by `systemctl poweroff`, `poweroff` and `shutdown -h`.
pub(crate) const POWEROFF_REQUESTED: &str = "/run/hybridlab/poweroff";
/// The instance's package repository: one directory tree per package, copied into the root.
pub(crate) const PACKAGE_REPOSITORY: &str = "/usr/share/hybridlab/packages";
/// Where `amazon-cloudwatch-agent-ctl -a fetch-config` puts configurations, as the real one.
pub(crate) const CLOUDWATCH_AGENT_CONFIGS: &str =
    "/opt/aws/amazon-cloudwatch-agent/etc/amazon-cloudwatch-agent.d";
/// The CloudWatch agent's unit: the sandbox's agent ships the files it collects.
pub(crate) const CLOUDWATCH_AGENT_UNIT: &str = "amazon-cloudwatch-agent.service";

pub(crate) const SYSTEMCTL: &str = r#"#!/bin/bash
# systemctl in hybridlab's sandbox: unit files live under the instance's root; what is started
# is recorded, and the sandbox's agent starts it once the user-data is done.
set -u
root="${HYBRIDLAB_ROOT:?the sandbox sets HYBRIDLAB_ROOT}"
units="$root/etc/systemd/system"
now=0
verb=""
names=()
for arg in "$@"; do
  case "$arg" in
    --now) now=1 ;;
    -q|--quiet|--no-block|--no-pager|--no-ask-password) ;;
    -*) echo "systemctl: option $arg is not modelled by hybridlab's sandbox" >&2; exit 1 ;;
    *) if [ -z "$verb" ]; then verb="$arg"; else names+=("$arg"); fi ;;
  esac
done
full_name() { case "$1" in *.*) printf '%s' "$1" ;; *) printf '%s.service' "$1" ;; esac; }
record_start() { mkdir -p "$root/run/hybridlab" && echo "$1" >> "$root/run/hybridlab/started-units"; }
case "$verb" in
  daemon-reload) exit 0 ;;
  enable)
    for name in "${names[@]}"; do
      name=$(full_name "$name")
      if [ ! -f "$units/$name" ]; then
        echo "Failed to enable unit: Unit file $name does not exist." >&2
        exit 1
      fi
      wanted=$(sed -n 's/^WantedBy=//p' "$units/$name")
      if [ -z "$wanted" ]; then
        echo "The unit files have no installation config (WantedBy=, RequiredBy=, Also=, Alias= settings in the [Install] section). This means they are not meant to be enabled." >&2
      fi
      for target in $wanted; do
        mkdir -p "$units/$target.wants"
        ln -sfn "/etc/systemd/system/$name" "$units/$target.wants/$name"
        echo "Created symlink /etc/systemd/system/$target.wants/$name → /etc/systemd/system/$name."
      done
      if [ "$now" = 1 ]; then record_start "$name"; fi
    done ;;
  start|restart)
    for name in "${names[@]}"; do
      name=$(full_name "$name")
      if [ ! -f "$units/$name" ]; then
        echo "Failed to start $name: Unit $name not found." >&2
        exit 5
      fi
      record_start "$name"
    done ;;
  poweroff|halt)
    mkdir -p "$root/run/hybridlab" && : > "$root/run/hybridlab/poweroff" ;;
  *)
    echo "systemctl $verb is not modelled by hybridlab's sandbox" >&2
    exit 1 ;;
esac
"#;

pub(crate) const SHUTDOWN: &str = r#"#!/bin/bash
# shutdown in hybridlab's sandbox: powering off now is modelled, a delay or a reboot is not.
set -u
halt=0
when=now
for arg in "$@"; do
  case "$arg" in
    -h|-P|--poweroff|-H|--halt) halt=1 ;;
    now|+0) when=now ;;
    -r|--reboot) echo "shutdown -r is not modelled by hybridlab's sandbox" >&2; exit 1 ;;
    +*|*:*) echo "shutdown $arg: a delayed shutdown is not modelled by hybridlab's sandbox (use a systemd timer)" >&2; exit 1 ;;
    *) echo "shutdown: option $arg is not modelled by hybridlab's sandbox" >&2; exit 1 ;;
  esac
done
[ "$halt" = 1 ] || [ "$#" -le 1 ] || { echo "shutdown: only powering off is modelled" >&2; exit 1; }
exec systemctl poweroff
"#;

pub(crate) const POWEROFF: &str = "#!/bin/bash\nexec systemctl poweroff\n";

pub(crate) const DNF: &str = r#"#!/bin/bash
# dnf in hybridlab's sandbox: installs the packages of the instance's repository by copying
# their trees into its root.
set -u
root="${HYBRIDLAB_ROOT:?the sandbox sets HYBRIDLAB_ROOT}"
repository="$root/usr/share/hybridlab/packages"
quiet=0
verb=""
packages=()
for arg in "$@"; do
  case "$arg" in
    -y|--assumeyes) ;;
    -q|--quiet) quiet=1 ;;
    -*) echo "dnf: option $arg is not modelled by hybridlab's sandbox" >&2; exit 1 ;;
    *) if [ -z "$verb" ]; then verb="$arg"; else packages+=("$arg"); fi ;;
  esac
done
if [ "$verb" != install ]; then
  echo "dnf $verb is not modelled by hybridlab's sandbox" >&2
  exit 1
fi
for package in "${packages[@]}"; do
  if [ ! -d "$repository/$package" ]; then
    echo "Error: Unable to find a match: $package (hybridlab's sandbox has: $(ls "$repository" | tr '\n' ' '))" >&2
    exit 1
  fi
done
for package in "${packages[@]}"; do
  cp -a "$repository/$package/." "$root/"
  [ "$quiet" = 1 ] || echo "Installed: $package"
done
"#;

pub(crate) const CLOUDWATCH_AGENT_CTL: &str = r#"#!/bin/bash
# amazon-cloudwatch-agent-ctl in hybridlab's sandbox: fetch-config from a file, and start; the
# sandbox's agent ships the files the configuration collects.
set -u
root="${HYBRIDLAB_ROOT:?the sandbox sets HYBRIDLAB_ROOT}"
action=""
config=""
start=0
while [ "$#" -gt 0 ]; do
  case "$1" in
    -a) action="$2"; shift 2 ;;
    -m) shift 2 ;;
    -c) config="$2"; shift 2 ;;
    -s) start=1; shift ;;
    *) echo "amazon-cloudwatch-agent-ctl: option $1 is not modelled by hybridlab's sandbox" >&2; exit 1 ;;
  esac
done
if [ "$action" != fetch-config ]; then
  echo "amazon-cloudwatch-agent-ctl -a $action is not modelled by hybridlab's sandbox" >&2
  exit 1
fi
case "$config" in
  file:*) path="${config#file:}" ;;
  *) echo "amazon-cloudwatch-agent-ctl: only file: configurations are modelled by hybridlab's sandbox" >&2; exit 1 ;;
esac
if [ ! -f "$path" ]; then
  echo "Cannot access $path: No such file or directory" >&2
  exit 1
fi
configs="$root/opt/aws/amazon-cloudwatch-agent/etc/amazon-cloudwatch-agent.d"
mkdir -p "$configs"
cp "$path" "$configs/file_$(basename "$path")"
echo "Successfully fetched the config and saved in $configs/file_$(basename "$path").tmp"
if [ "$start" = 1 ]; then
  systemctl enable --now amazon-cloudwatch-agent.service
fi
"#;

/// The package's unit, installed by `dnf` where the real package puts it.
pub(crate) const CLOUDWATCH_AGENT_SERVICE: &str = "[Unit]\n\
Description=Amazon CloudWatch Agent\n\
After=network.target\n\
[Service]\n\
Type=simple\n\
ExecStart=/opt/aws/amazon-cloudwatch-agent/bin/start-amazon-cloudwatch-agent\n\
Restart=on-failure\n\
[Install]\n\
WantedBy=multi-user.target\n";

/// The `aws` command: the real AWS CLI, pointed at the sandbox's edge (the instance's network
/// reaches AWS there) and at the instance's metadata service, where it finds its credentials.
pub(crate) fn aws(cli: &std::path::Path, edge: &str, metadata: Option<&str>) -> String {
    let metadata = match metadata {
        Some(endpoint) => format!("export AWS_EC2_METADATA_SERVICE_ENDPOINT='{endpoint}'\n"),
        None => "export AWS_EC2_METADATA_DISABLED=true\n".to_owned(),
    };
    format!(
        "#!/bin/bash\n\
         # The AWS CLI; on this instance's network AWS is the sandbox's edge.\n\
         export AWS_ENDPOINT_URL='{edge}'\n\
         {metadata}\
         exec '{cli}' \"$@\"\n",
        cli = cli.display(),
    )
}
