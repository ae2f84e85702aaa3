//! Records every platform event it is given, in the order given, so tests can check
//! delivery (at least once, in order, nothing lost); `POST /refuse` makes it answer
//! errors until `POST /accept`, and events about a device on the poison list
//! (`POST /poison/{device}`, until `POST /cure`) are refused. Also exposes the devices
//! capability over HTTP.
use linli_sdk::prelude::*;

struct Listener;

/// What was received, in one document so that its order is the order of delivery.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Log {
    /// seq, kind, subject, payload of each first delivery.
    events: Vec<serde_json::Value>,
    /// Deliveries of a seq already recorded (at-least-once redeliveries).
    redeliveries: u64,
    /// Calls refused on purpose.
    refused: u64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Switches {
    refuse: bool,
    poison: Vec<String>,
}

fn switches() -> Result<Switches, Error> {
    Ok(Collection::<Switches>::new("switches").get("switches")?.map(|v| v.value).unwrap_or_default())
}

fn set_switches(change: impl Fn(&mut Switches)) -> Result<Switches, Error> {
    Ok(Collection::<Switches>::new("switches").update("switches", change)?.value)
}

fn logs() -> Collection<Log> {
    Collection::new("log")
}

fn log() -> Result<Log, Error> {
    Ok(logs().get("log")?.map(|v| v.value).unwrap_or_default())
}

fn alarm_json(a: &devices::Alarm) -> serde_json::Value {
    json!({ "id": a.id, "rule": a.rule, "device": a.device, "status": a.status, "severity": a.severity, "value": a.value, "location": a.location.label, "tenant": a.location.tenant })
}

impl Plugin for Listener {
    fn router() -> Router {
        Router::new()
            .get("/log", |_, _| Ok(Response::json(200, &log()?)))
            .post("/refuse", |_, _| Ok(Response::json(200, &set_switches(|s| s.refuse = true)?)))
            .post("/accept", |_, _| Ok(Response::json(200, &set_switches(|s| s.refuse = false)?)))
            .post("/poison/:device", |_, params| {
                let device = params.require("device")?.to_string();
                Ok(Response::json(200, &set_switches(|s| s.poison.push(device.clone()))?))
            })
            .post("/cure", |_, _| Ok(Response::json(200, &set_switches(|s| s.poison.clear())?)))
            .get("/devices", |_, _| {
                let list = devices::list(None)?;
                Ok(Response::json(
                    200,
                    &list.iter().map(|d| json!({ "id": d.id, "type": d.device_type, "online": d.online, "location": d.location.label })).collect::<Vec<_>>(),
                ))
            })
            .get("/devices/:id/latest", |_, params| Ok(Response::json(200, &devices::latest(params.require("id")?)?)))
            .get("/alarms", |req, _| {
                let status = req.query_param("status");
                Ok(Response::json(200, &devices::alarms(status.as_deref(), 100)?.iter().map(alarm_json).collect::<Vec<_>>()))
            })
            .post("/alarms/:id/acknowledge", |_, params| Ok(Response::json(200, &alarm_json(&devices::acknowledge(params.require("id")?)?))))
            .post("/devices/:id/command", |req, params| {
                let command: serde_json::Value = req.json()?;
                Ok(Response::json(200, &devices::command(params.require("id")?, &command, 3000)?))
            })
    }

    fn on_event(event: events::Event) -> Result<(), Error> {
        let switches = switches()?;
        let payload: serde_json::Value = serde_json::from_str(&event.payload)?;
        let device = payload.get("device_id").and_then(|d| d.as_str()).unwrap_or_default();
        if switches.refuse || switches.poison.iter().any(|p| p == device) {
            logs().update("log", |log| log.refused += 1)?;
            return Err(Error::new(ErrorCode::Unavailable, format!("refusing event {} on purpose", event.seq)));
        }
        let entry = json!({ "seq": event.seq, "kind": event.kind, "subject": event.subject, "tenant": event.tenant, "payload": payload });
        logs().update("log", |log| {
            if log.events.iter().any(|e| e.get("seq").and_then(|s| s.as_u64()) == Some(event.seq)) {
                log.redeliveries += 1;
            } else {
                log.events.push(entry.clone());
            }
        })?;
        Ok(())
    }
}

linli_sdk::export!(Listener);
