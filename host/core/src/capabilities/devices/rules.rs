//! Alarm rules and the alarm state machine (ThingsBoard's model): a rule raises an alarm
//! when its condition has held for its duration, the alarm is acknowledged by a person,
//! and cleared when the clear condition holds. Re-raising an open alarm updates it instead
//! of duplicating it; after a clear, the same rule and device stay quiet for the rule's
//! suppression window.
//!
//! This file is pure logic over message timestamps (device time), so an accelerated
//! clock in the simulator plays out hours of telemetry in seconds. Persistence is in
//! `alarms.rs`.
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum Op {
    #[serde(rename = ">")]
    Gt,
    #[serde(rename = ">=")]
    Ge,
    #[serde(rename = "<")]
    Lt,
    #[serde(rename = "<=")]
    Le,
    #[serde(rename = "==")]
    Eq,
    #[serde(rename = "!=")]
    Ne,
}

impl Op {
    pub fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Op::Gt => value > threshold,
            Op::Ge => value >= threshold,
            Op::Lt => value < threshold,
            Op::Le => value <= threshold,
            Op::Eq => value == threshold,
            Op::Ne => value != threshold,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Eq => "==",
            Op::Ne => "!=",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            ">" => Op::Gt,
            ">=" => Op::Ge,
            "<" => Op::Lt,
            "<=" => Op::Le,
            "==" => Op::Eq,
            "!=" => Op::Ne,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Major,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Major => "major",
            Severity::Critical => "critical",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "info" => Severity::Info,
            "warning" => Severity::Warning,
            "major" => Severity::Major,
            "critical" => Severity::Critical,
            _ => return None,
        })
    }
}

/// A rule as operators write it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// Stable id: `[a-z0-9-]`, 2–64.
    pub id: String,
    pub name: String,
    /// The rule applies to devices in this node's subtree.
    pub tenant_id: String,
    /// Devices of this type …
    #[serde(default)]
    pub device_type: Option<String>,
    /// … or this one device (overrides a type rule with the same metric for it).
    #[serde(default)]
    pub device_id: Option<String>,
    /// The telemetry field compared, e.g. `flow` (litres per minute) or `smoke`.
    pub metric: String,
    pub op: Op,
    pub threshold: f64,
    /// How long the condition must hold before the alarm is raised (0: at once).
    #[serde(default)]
    pub duration_seconds: u64,
    pub clear_op: Op,
    pub clear_threshold: f64,
    pub severity: Severity,
    /// After a clear, the same rule and device raise nothing for this long.
    #[serde(default)]
    pub suppress_seconds: u64,
    /// Open a ticket of this category with every alarm (in the same transaction).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket_category: Option<String>,
}

impl RuleSpec {
    pub fn validate(&self) -> Result<(), String> {
        if !(2..=64).contains(&self.id.len()) || !self.id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') {
            return Err(format!("rule id `{}` must be 2–64 of a-z, 0-9 and -", self.id));
        }
        if self.name.trim().is_empty() {
            return Err("a rule needs a name".into());
        }
        if self.device_type.is_none() == self.device_id.is_none() {
            return Err("a rule names either a device_type or a device_id".into());
        }
        if self.metric.trim().is_empty() {
            return Err("a rule needs a metric".into());
        }
        if !self.threshold.is_finite() || !self.clear_threshold.is_finite() {
            return Err("thresholds must be finite numbers".into());
        }
        if self.op.holds(self.threshold, self.threshold) && self.clear_op.holds(self.threshold, self.clear_threshold) {
            return Err("the raise and clear conditions overlap at the threshold: a value could raise and clear at once".into());
        }
        Ok(())
    }

    pub fn applies_to(&self, device_id: &str, device_type: &str) -> bool {
        match (&self.device_id, &self.device_type) {
            (Some(id), _) => id == device_id,
            (None, Some(kind)) => kind == device_type,
            (None, None) => false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AlarmStatus {
    Active,
    Acknowledged,
    Cleared,
}

impl AlarmStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AlarmStatus::Active => "active",
            AlarmStatus::Acknowledged => "acknowledged",
            AlarmStatus::Cleared => "cleared",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "active" => AlarmStatus::Active,
            "acknowledged" => AlarmStatus::Acknowledged,
            "cleared" => AlarmStatus::Cleared,
            _ => return None,
        })
    }
}

/// What evaluating one reading against one rule asks the caller to do.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Decision {
    Nothing,
    /// Raise a new alarm with this value; the condition began at `since`.
    Raise {
        value: f64,
        since: i64,
    },
    /// The open alarm saw the condition again.
    Repeat {
        value: f64,
    },
    /// Clear the open alarm.
    Clear {
        value: f64,
    },
    /// The condition held long enough but the rule is within its suppression window.
    Suppressed,
}

/// What the engine remembers per (rule, device).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tracker {
    /// When the raise condition began to hold continuously (device time).
    pub since: Option<i64>,
    /// The open (active or acknowledged) alarm, if any.
    pub open_alarm: Option<String>,
    /// When the last alarm of this rule and device was cleared.
    pub last_cleared: Option<i64>,
}

impl Tracker {
    /// Evaluate one reading taken at `at` (ms). The caller applies the decision and, once
    /// it is stored, records it with `raised` / `cleared`.
    pub fn evaluate(&mut self, rule: &RuleSpec, value: f64, at: i64) -> Decision {
        let raise = rule.op.holds(value, rule.threshold);
        if self.open_alarm.is_some() {
            if rule.clear_op.holds(value, rule.clear_threshold) {
                self.since = None;
                return Decision::Clear { value };
            }
            return if raise { Decision::Repeat { value } } else { Decision::Nothing };
        }
        if !raise {
            self.since = None;
            return Decision::Nothing;
        }
        let since = *self.since.get_or_insert(at);
        let duration_ms = i64::try_from(rule.duration_seconds.saturating_mul(1000)).unwrap_or(i64::MAX);
        if at.saturating_sub(since) < duration_ms {
            return Decision::Nothing;
        }
        let suppress_ms = i64::try_from(rule.suppress_seconds.saturating_mul(1000)).unwrap_or(i64::MAX);
        if self.last_cleared.is_some_and(|cleared| at.saturating_sub(cleared) < suppress_ms) {
            return Decision::Suppressed;
        }
        Decision::Raise { value, since }
    }

    pub fn raised(&mut self, alarm_id: String) {
        self.open_alarm = Some(alarm_id);
    }

    pub fn cleared(&mut self, at: i64) {
        self.open_alarm = None;
        self.since = None;
        self.last_cleared = Some(at);
    }
}

/// A smoke detector's rule: raised at once by `smoke >= 1`, cleared by `< 1` (for tests).
#[cfg(test)]
pub(crate) fn smoke_rule() -> RuleSpec {
    RuleSpec {
        id: "smoke".into(),
        name: "烟雾报警".into(),
        tenant_id: "county".into(),
        device_type: Some("smoke-detector".into()),
        device_id: None,
        metric: "smoke".into(),
        op: Op::Ge,
        threshold: 1.0,
        duration_seconds: 0,
        clear_op: Op::Lt,
        clear_threshold: 1.0,
        severity: Severity::Critical,
        suppress_seconds: 0,
        ticket_category: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3_600_000;

    fn idle_water_meter() -> RuleSpec {
        RuleSpec {
            id: "water-idle".into(),
            name: "用水异常：长时间无用水".into(),
            tenant_id: "county".into(),
            device_type: Some("water-meter".into()),
            device_id: None,
            metric: "flow".into(),
            op: Op::Le,
            threshold: 0.0,
            duration_seconds: 12 * 3600,
            clear_op: Op::Gt,
            clear_threshold: 0.0,
            severity: Severity::Major,
            suppress_seconds: 3600,
            ticket_category: None,
        }
    }

    #[test]
    fn raises_only_after_the_condition_held_for_the_duration() {
        let rule = idle_water_meter();
        let mut t = Tracker::default();
        assert_eq!(t.evaluate(&rule, 0.0, 0), Decision::Nothing);
        assert_eq!(t.evaluate(&rule, 0.0, 11 * HOUR), Decision::Nothing);
        assert_eq!(t.evaluate(&rule, 0.0, 12 * HOUR), Decision::Raise { value: 0.0, since: 0 });
    }

    #[test]
    fn any_use_restarts_the_window() {
        let rule = idle_water_meter();
        let mut t = Tracker::default();
        t.evaluate(&rule, 0.0, 0);
        assert_eq!(t.evaluate(&rule, 3.5, 6 * HOUR), Decision::Nothing);
        assert_eq!(t.evaluate(&rule, 0.0, 7 * HOUR), Decision::Nothing);
        assert_eq!(t.evaluate(&rule, 0.0, 18 * HOUR), Decision::Nothing);
        assert_eq!(t.evaluate(&rule, 0.0, 19 * HOUR), Decision::Raise { value: 0.0, since: 7 * HOUR });
    }

    #[test]
    fn an_open_alarm_repeats_then_clears_and_is_suppressed_for_a_while() {
        let rule = idle_water_meter();
        let mut t = Tracker::default();
        t.evaluate(&rule, 0.0, 0);
        assert!(matches!(t.evaluate(&rule, 0.0, 12 * HOUR), Decision::Raise { .. }));
        t.raised("a1".into());
        assert_eq!(t.evaluate(&rule, 0.0, 13 * HOUR), Decision::Repeat { value: 0.0 });
        assert_eq!(t.evaluate(&rule, 1.0, 14 * HOUR), Decision::Clear { value: 1.0 });
        t.cleared(14 * HOUR);
        // Idle again at once: the window starts over, and the raise lands within the
        // suppression hour only if the window were shorter than it.
        let quick = RuleSpec { duration_seconds: 0, ..rule.clone() };
        assert_eq!(t.evaluate(&quick, 0.0, 14 * HOUR + 1), Decision::Suppressed);
        assert!(matches!(t.evaluate(&quick, 0.0, 15 * HOUR + 1), Decision::Raise { .. }));
    }

    #[test]
    fn an_instant_rule_raises_on_the_first_reading() {
        let smoke = smoke_rule();
        let mut t = Tracker::default();
        assert_eq!(t.evaluate(&smoke, 0.0, 5), Decision::Nothing);
        assert_eq!(t.evaluate(&smoke, 1.0, 6), Decision::Raise { value: 1.0, since: 6 });
    }

    #[test]
    fn rules_are_checked() {
        let mut rule = idle_water_meter();
        assert!(rule.validate().is_ok());
        rule.device_id = Some("wm-1".into());
        assert!(rule.validate().unwrap_err().contains("either"));
        let overlapping = RuleSpec { clear_op: Op::Le, ..idle_water_meter() };
        assert!(overlapping.validate().unwrap_err().contains("overlap"));
        let bad_id = RuleSpec { id: "Water Idle".into(), ..idle_water_meter() };
        assert!(bad_id.validate().is_err());
    }
}
