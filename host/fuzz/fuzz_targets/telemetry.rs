//! Any MQTT payload: decoding never panics, and an accepted reading has a positive device
//! time and at least one numeric value, none of them the timestamp.
#![no_main]
use libfuzzer_sys::fuzz_target;
use linli_formats::telemetry::{parse_reading, Rejected};

const LIMIT: usize = 4096;

fuzz_target!(|data: &[u8]| {
    match parse_reading("wm-fuzz", data, 1_700_000_000_000, LIMIT) {
        Ok(reading) => {
            assert!(data.len() <= LIMIT);
            assert!(reading.at > 0);
            assert!(!reading.values.is_empty());
            assert!(reading.values.iter().all(|(key, value)| key != "ts" && value.is_finite()));
        }
        Err(Rejected::Oversized { size, .. }) => assert!(size > LIMIT),
        Err(_) => {}
    }
});
