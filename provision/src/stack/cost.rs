//! What a stack costs while it stands, at on-demand list prices (us-east-1, Linux). At rest the
//! bill is the instance, its root volume and its public IPv4 address; Lambda, S3 and DynamoDB
//! are charged per use and cost next to nothing for a lab. Free tier not applied.

use serde::Serialize;

use super::plan::CpuCredits;

/// USD per hour of the instance types a lab would use.
pub fn instance_hourly_usd(instance_type: &str) -> Option<f64> {
    Some(match instance_type {
        "t3.nano" => 0.0052,
        "t3.micro" => 0.0104,
        "t3.small" => 0.0208,
        "t3.medium" => 0.0416,
        "t3.large" => 0.0832,
        "t2.micro" => 0.0116,
        "t2.small" => 0.023,
        "m5.large" => 0.096,
        "c5.large" => 0.085,
        _ => return None,
    })
}

/// vCPUs of the burstable types above: surplus credits are billed per vCPU-hour.
fn burstable_vcpus(instance_type: &str) -> Option<f64> {
    Some(match instance_type {
        "t3.nano" | "t3.micro" | "t3.small" | "t3.medium" | "t3.large" => 2.0,
        "t2.micro" | "t2.small" => 1.0,
        _ => return None,
    })
}

/// Surplus CPU credits of an `unlimited` T2/T3 Linux instance, per vCPU-hour.
const SURPLUS_CREDIT_VCPU_HOUR_USD: f64 = 0.05;

/// The most surplus credits can add per hour (an `unlimited` instance at 100% CPU), e.g.
/// "$0.100 per hour more (2 vCPUs at $0.05)".
pub fn surplus_text(instance_type: &str) -> String {
    match burstable_vcpus(instance_type) {
        Some(vcpus) => format!(
            "${:.3} per hour more ({vcpus} vCPUs at ${SURPLUS_CREDIT_VCPU_HOUR_USD} per vCPU-hour)",
            vcpus * SURPLUS_CREDIT_VCPU_HOUR_USD
        ),
        None => format!("${SURPLUS_CREDIT_VCPU_HOUR_USD} per vCPU-hour more"),
    }
}

/// gp3 at $0.08 per GB-month, 730 hours a month; Amazon Linux 2023's root volume is 8 GB.
const ROOT_VOLUME_HOURLY_USD: f64 = 8.0 * 0.08 / 730.0;
/// A public IPv4 address, in use or not.
const PUBLIC_IPV4_HOURLY_USD: f64 = 0.005;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CostEstimate {
    pub per_hour_usd: f64,
    pub so_far_usd: f64,
    /// What the figures include.
    pub basis: String,
}

/// The cost of an instance of `instance_type`, launched with `credits` (`None`: a type that
/// takes no credit specification), that has run `running_seconds`. The figures are the list
/// price; for `unlimited` the basis says what surplus credits may add on top.
pub fn estimate(
    instance_type: &str,
    credits: Option<CpuCredits>,
    running_seconds: f64,
) -> CostEstimate {
    let credits_text = match credits {
        Some(CpuCredits::Standard) => ", CPU credits standard (no surplus charges)".to_owned(),
        Some(CpuCredits::Unlimited) => format!(
            ", CPU credits unlimited (bursting can add up to {})",
            surplus_text(instance_type)
        ),
        None => String::new(),
    };
    let (instance, basis) = match instance_hourly_usd(instance_type) {
        Some(price) => (
            price,
            format!(
                "{instance_type} on demand{credits_text}, 8 GB gp3, public IPv4; us-east-1 list prices, no free tier"
            ),
        ),
        None => (
            0.0,
            format!("{instance_type}: price unknown to hybridlab; volume and IPv4 only"),
        ),
    };
    let per_hour = instance + ROOT_VOLUME_HOURLY_USD + PUBLIC_IPV4_HOURLY_USD;
    // EC2 bills Linux instances per second with a one-minute minimum.
    let billed_hours = if running_seconds > 0.0 {
        running_seconds.max(60.0) / 3600.0
    } else {
        0.0
    };
    CostEstimate {
        per_hour_usd: per_hour,
        so_far_usd: per_hour * billed_hours,
        basis,
    }
}

/// What one job of the job-worker variant costs at list prices (us-east-1, no free tier).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobCost {
    pub total_usd: f64,
    /// The worker's instance, its root volume and its public IPv4 address.
    pub instance_usd: f64,
    /// Lambda, the HTTP API, S3 and DynamoDB requests.
    pub requests_usd: f64,
    pub basis: String,
}

/// Lambda: per request and per GB-second (x86).
const LAMBDA_REQUEST_USD: f64 = 0.20 / 1e6;
const LAMBDA_GB_SECOND_USD: f64 = 0.000_016_666_7;
/// API Gateway HTTP APIs, per request (the first 300 million a month).
const HTTP_API_REQUEST_USD: f64 = 1.00 / 1e6;
/// S3 Standard: PUT and GET requests.
const S3_PUT_USD: f64 = 0.005 / 1000.0;
const S3_GET_USD: f64 = 0.0004 / 1000.0;
/// DynamoDB on demand: per write and per read request unit.
const DYNAMODB_WRITE_USD: f64 = 0.625 / 1e6;
const DYNAMODB_READ_USD: f64 = 0.125 / 1e6;

/// One job whose worker, a `instance_type`, lived `instance_seconds` (from RunInstances'
/// answer until it stopped being billed) and beat `heartbeats` times, with `outputs` objects
/// written. The requests counted: one `POST /jobs` (one submit invocation, one row written,
/// the input's PUT), two launcher invocations (the insert and the job's end; each at most a
/// second at 256 MB, an upper bound, and a scan and two writes), the worker's reads (its
/// binary, the input, its row) and writes (RUNNING, each beat, the end, every output).
pub fn job_cost(
    instance_type: &str,
    instance_seconds: f64,
    heartbeats: u64,
    outputs: u64,
) -> JobCost {
    let at_rest = estimate(instance_type, None, instance_seconds);
    let lambda = 3.0 * LAMBDA_REQUEST_USD
        + 2.0 * 0.25 * 1.0 * LAMBDA_GB_SECOND_USD
        + 1.0 * 0.125 * 0.2 * LAMBDA_GB_SECOND_USD;
    let api = HTTP_API_REQUEST_USD;
    let s3 = (1 + outputs) as f64 * S3_PUT_USD + 2.0 * S3_GET_USD;
    let writes = 1 + 2 + 2 + heartbeats;
    let dynamodb = writes as f64 * DYNAMODB_WRITE_USD + 4.0 * DYNAMODB_READ_USD;
    let requests = lambda + api + s3 + dynamodb;
    JobCost {
        total_usd: at_rest.so_far_usd + requests,
        instance_usd: at_rest.so_far_usd,
        requests_usd: requests,
        basis: format!(
            "{} for the worker's life (EC2 per second, 60 s minimum); Lambda (3 invocations, launcher time bounded at 1 s), the HTTP API, S3 and DynamoDB requests at list prices",
            at_rest.basis
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_job_pays_the_instances_first_minute_and_little_else() {
        let cost = job_cost("t3.micro", 20.0, 1, 1);
        let minute = estimate("t3.micro", None, 60.0).so_far_usd;
        assert!((cost.instance_usd - minute).abs() < 1e-12, "{cost:?}");
        assert!(cost.requests_usd < cost.instance_usd / 5.0, "{cost:?}");
        assert!((cost.total_usd - cost.instance_usd - cost.requests_usd).abs() < 1e-15);
        let longer = job_cost("t3.micro", 600.0, 40, 1);
        assert!(longer.instance_usd > 9.0 * cost.instance_usd, "{longer:?}");
    }

    #[test]
    fn a_micro_instance_costs_about_a_cent_and_a_half_an_hour() {
        let cost = estimate("t3.micro", Some(CpuCredits::Standard), 7200.0);
        assert!((cost.per_hour_usd - 0.016_28).abs() < 0.000_1, "{cost:?}");
        assert!((cost.so_far_usd - 2.0 * cost.per_hour_usd).abs() < 1e-9);
    }

    #[test]
    fn the_first_minute_is_billed_whole_and_nothing_before_launch() {
        assert_eq!(estimate("t3.micro", None, 0.0).so_far_usd, 0.0);
        let ten_seconds = estimate("t3.micro", None, 10.0);
        assert!((ten_seconds.so_far_usd - ten_seconds.per_hour_usd / 60.0).abs() < 1e-12);
    }

    #[test]
    fn the_basis_says_how_cpu_credits_are_paid() {
        let standard = estimate("t3.micro", Some(CpuCredits::Standard), 3600.0);
        assert!(
            standard
                .basis
                .contains("CPU credits standard (no surplus charges)"),
            "{}",
            standard.basis
        );
        let unlimited = estimate("t3.micro", Some(CpuCredits::Unlimited), 3600.0);
        assert!(
            unlimited
                .basis
                .contains("up to $0.100 per hour more (2 vCPUs at $0.05 per vCPU-hour)"),
            "{}",
            unlimited.basis
        );
        assert!(!estimate("m5.large", None, 3600.0).basis.contains("credits"));
    }

    #[test]
    fn unknown_types_say_so() {
        let cost = estimate("x9.huge", None, 3600.0);
        assert!(cost.basis.contains("unknown"));
        assert!(cost.per_hour_usd > 0.0);
    }
}
