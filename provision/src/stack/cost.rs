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

#[cfg(test)]
mod tests {
    use super::*;

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
