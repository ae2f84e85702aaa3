//! One telemetry message from a device (MQTT or HTTP): a JSON object whose numeric and
//! boolean fields are readings, `ts` the device's clock. Anything else is refused with the
//! reason the host counts.
/// One message from a device, checked and parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    pub device_id: String,
    /// Device time: the message's `ts` (unix ms), else when it arrived.
    pub at: i64,
    pub received_at: i64,
    /// The JSON object as received.
    pub payload: String,
    /// Numeric and boolean fields (true = 1, false = 0), which rules compare.
    pub values: Vec<(String, f64)>,
}

/// Why a message was refused; each is counted in `linli_device_messages_total`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejected {
    #[error("the message is {size} bytes; the limit is {limit}")]
    Oversized { size: usize, limit: usize },
    #[error("the message is not a JSON object with numeric or boolean fields: {0}")]
    Malformed(String),
    #[error("no device `{0}` is registered")]
    UnknownDevice(String),
    #[error("topic `{0}` is not <prefix>/devices/<id>/telemetry or …/ack")]
    BadTopic(String),
}

impl Rejected {
    pub fn label(&self) -> &'static str {
        match self {
            Rejected::Oversized { .. } => "oversized",
            Rejected::Malformed(_) => "malformed",
            Rejected::UnknownDevice(_) => "unknown-device",
            Rejected::BadTopic(_) => "bad-topic",
        }
    }
}

/// Check and parse one telemetry message.
pub fn parse_reading(device_id: &str, payload: &[u8], received_at: i64, limit: usize) -> Result<Reading, Rejected> {
    if payload.len() > limit {
        return Err(Rejected::Oversized { size: payload.len(), limit });
    }
    let object: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(payload).map_err(|e| Rejected::Malformed(e.to_string()))?;
    let at = match object.get("ts") {
        None => received_at,
        Some(ts) => ts.as_i64().filter(|t| *t > 0).ok_or_else(|| Rejected::Malformed("`ts` must be a positive integer (unix milliseconds)".into()))?,
    };
    let values = object
        .iter()
        .filter(|(k, _)| k.as_str() != "ts")
        .filter_map(|(k, v)| match v {
            serde_json::Value::Number(n) => n.as_f64().map(|f| (k.clone(), f)),
            serde_json::Value::Bool(b) => Some((k.clone(), f64::from(u8::from(*b)))),
            _ => None,
        })
        .collect::<Vec<_>>();
    if values.is_empty() {
        return Err(Rejected::Malformed("no numeric or boolean field".into()));
    }
    Ok(Reading { device_id: device_id.to_string(), at, received_at, payload: String::from_utf8_lossy(payload).into_owned(), values })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readings_are_checked() {
        let ok = parse_reading("wm-1", br#"{"ts": 1700000000000, "flow": 0.0, "valve": true, "note": "x"}"#, 5, 1024).unwrap();
        assert_eq!(ok.at, 1_700_000_000_000);
        assert_eq!(ok.values, vec![("flow".to_string(), 0.0), ("valve".to_string(), 1.0)]);
        assert_eq!(parse_reading("wm-1", br#"{"flow": 2}"#, 5, 1024).unwrap().at, 5, "no ts: arrival time");
        assert!(matches!(parse_reading("wm-1", b"not json", 5, 1024), Err(Rejected::Malformed(_))));
        assert!(matches!(parse_reading("wm-1", b"[1, 2]", 5, 1024), Err(Rejected::Malformed(_))));
        assert!(matches!(parse_reading("wm-1", br#"{"ts": -4, "flow": 1}"#, 5, 1024), Err(Rejected::Malformed(_))));
        assert!(matches!(parse_reading("wm-1", br#"{"name": "only text"}"#, 5, 1024), Err(Rejected::Malformed(_))));
        assert_eq!(parse_reading("wm-1", &[b' '; 2000], 5, 1024), Err(Rejected::Oversized { size: 2000, limit: 1024 }));
    }
}
