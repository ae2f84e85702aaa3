//! 共享停车 (shared parking): owners publish the hours their space stands empty; residents
//! and visitors search those windows and book. A booking puts the plate on the gate
//! controller's whitelist for its hours (a device command) and takes it off afterwards;
//! the fee follows a tiered tariff and is settled through the ledger, the property
//! company's share to its pool. Parking sensors tell whether a space is occupied, which is
//! how an overstay is noticed.
//!
//! Money: the ledger records what each booker owes (their `cny` account may go down to
//! the tariff's credit limit) and what owners and the property company earn; paying the
//! balance happens outside the platform (monthly with the property fee).
//!
//! Every step that talks to a device or the ledger is repeatable: the gate state is kept
//! per booking and retried by the `sweep` schedule, transfers carry the booking's keys.
use chrono::{FixedOffset, NaiveDateTime, TimeZone};
use linli_sdk::identity::User;
use linli_sdk::prelude::*;

const CURRENCY: &str = "cny";
const PROPERTY_POOL: &str = "property";
const STAFF_ROLES: &[&str] = &["community-worker", "street-admin", "county-admin"];
const MINUTE_MS: u64 = 60_000;
const MAX_WINDOW_MS: u64 = 31 * 24 * 60 * MINUTE_MS;
const GATE_TIMEOUT_MS: u32 = 2_000;
/// Gate steps are retried by the sweep; after this many the booking shows the failure.
const GATE_ATTEMPTS: u32 = 20;

/// A fee step: stays up to `up_to_minutes` cost `fee` (fen). A stay longer than the last
/// step pays the last step per started period of its length.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tier {
    pub up_to_minutes: u64,
    pub fee: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tariff {
    /// Ascending `up_to_minutes`, non-decreasing fees.
    pub tiers: Vec<Tier>,
    /// The property company's share of each fee, in percent.
    pub property_share_percent: u8,
    /// Cancelling at least this long before the start is free.
    pub free_cancel_minutes: u64,
    /// What a later cancellation costs (fen), paid to the owner.
    pub late_cancel_fee: i64,
    /// A car still on the space this long after the end is an overstay.
    pub overstay_grace_minutes: u64,
    /// How far (fen) a booker's balance may go below zero before they must pay.
    pub credit_limit: i64,
}

impl Default for Tariff {
    fn default() -> Self {
        Self {
            tiers: vec![Tier { up_to_minutes: 8 * 60, fee: 500 }, Tier { up_to_minutes: 24 * 60, fee: 1000 }],
            property_share_percent: 10,
            free_cancel_minutes: 30,
            late_cancel_fee: 200,
            overstay_grace_minutes: 15,
            credit_limit: 20_000,
        }
    }
}

impl Tariff {
    pub fn validate(&self) -> Result<(), Error> {
        if self.tiers.is_empty() {
            return Err(Error::invalid("收费标准至少需要一档 (the tariff needs at least one tier)"));
        }
        for pair in self.tiers.windows(2) {
            if pair[1].up_to_minutes <= pair[0].up_to_minutes || pair[1].fee < pair[0].fee {
                return Err(Error::invalid("各档时长须递增、收费不减 (tiers must be longer and not cheaper one after another)"));
            }
        }
        if self.tiers.iter().any(|t| t.up_to_minutes == 0 || t.fee < 0) || self.late_cancel_fee < 0 || self.credit_limit < 0 {
            return Err(Error::invalid("时长须大于0，金额不能为负 (durations above zero, no negative amounts)"));
        }
        if self.property_share_percent > 100 {
            return Err(Error::invalid("物业分成比例为0–100 (the property share is 0–100 percent)"));
        }
        Ok(())
    }

    /// The fee (fen) for a stay of `minutes`.
    pub fn fee(&self, minutes: u64) -> i64 {
        let Some(last) = self.tiers.last() else { return 0 };
        if minutes == 0 {
            return 0;
        }
        let full_periods = (minutes - 1) / last.up_to_minutes;
        let rest = minutes - full_periods * last.up_to_minutes;
        let rest_fee = self.tiers.iter().find(|t| rest <= t.up_to_minutes).map_or(last.fee, |t| t.fee);
        full_periods as i64 * last.fee + rest_fee
    }

    /// The property company's part of `fee`, rounded down to the fen.
    pub fn property_share(&self, fee: i64) -> i64 {
        fee * i64::from(self.property_share_percent) / 100
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Window {
    pub id: String,
    pub from: u64,
    pub to: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Space {
    pub id: String,
    /// The community (tenant) it is in.
    pub community: String,
    /// E.g. `B2-017`.
    pub label: String,
    pub owner: String,
    pub owner_name: String,
    /// The gate controller that lets booked cars in.
    pub gate: String,
    /// The parking sensor on the space, if it has one.
    pub sensor: Option<String>,
    pub windows: Vec<Window>,
    /// Hours taken by bookings that are not cancelled: the booking id and its hours.
    /// Kept on the space so that two bookings of the same hours conflict on its version.
    pub taken: Vec<Window>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Booked,
    Completed,
    Cancelled,
}

/// Where the plate stands with the gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GateState {
    /// The whitelist entry is still to be sent.
    Pending,
    Whitelisted,
    /// Taken off again (or never needed).
    Removed,
    /// Gave up after [`GATE_ATTEMPTS`]: staff must see to the gate.
    Failed,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Booking {
    pub id: String,
    pub space: String,
    pub space_label: String,
    pub community: String,
    pub gate: String,
    pub user: String,
    pub user_name: String,
    pub owner: String,
    pub plate: String,
    pub from: u64,
    pub to: u64,
    pub status: Status,
    /// The fee quoted at booking, and what was charged in the end (fen).
    pub quoted_fee: i64,
    pub charged: Option<i64>,
    /// A fee the ledger refused because the booker was over the credit limit: the
    /// property office collects it.
    #[serde(default)]
    pub unpaid: Option<i64>,
    pub gate_state: GateState,
    pub gate_attempts: u32,
    pub gate_error: Option<String>,
    pub overstay_notified: bool,
    pub created_at: u64,
    pub history: Vec<String>,
}

fn spaces() -> Collection<Space> {
    Collection::new("spaces")
}
fn bookings() -> Collection<Booking> {
    Collection::new("bookings")
}
fn tariff() -> Result<Tariff, Error> {
    Ok(Collection::<Tariff>::new("settings").get("tariff")?.map(|v| v.value).unwrap_or_default())
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or_default()
}

fn china() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).expect("UTC+8 is a valid offset")
}

/// `2026-11-28T09:30` in China Standard Time → Unix milliseconds.
pub fn parse_time(text: &str) -> Result<u64, Error> {
    let naive = NaiveDateTime::parse_from_str(text.trim(), "%Y-%m-%dT%H:%M")
        .map_err(|_| Error::invalid(format!("时间格式应为 2026-11-28T09:30 (expected YYYY-MM-DDTHH:MM, got `{text}`)")))?;
    let local = china().from_local_datetime(&naive).single().ok_or_else(|| Error::invalid(format!("no such time `{text}`")))?;
    u64::try_from(local.timestamp_millis()).map_err(|_| Error::invalid(format!("`{text}` is before 1970")))
}

/// Unix milliseconds → `2026-11-28T09:30` in China Standard Time.
pub fn format_time(ms: u64) -> String {
    china().timestamp_millis_opt(ms as i64).single().map(|t| t.format("%Y-%m-%dT%H:%M").to_string()).unwrap_or_default()
}

const PROVINCES: &str = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼";

/// A mainland plate, normalised: `浙A·12345` → `浙A12345`; new-energy plates have six
/// characters after the letter.
pub fn normalise_plate(text: &str) -> Result<String, Error> {
    let plate: String = text.chars().filter(|c| !c.is_whitespace() && *c != '·' && *c != '-').flat_map(char::to_uppercase).collect();
    let mut chars = plate.chars();
    let ok = chars.next().is_some_and(|c| PROVINCES.contains(c)) && chars.next().is_some_and(|c| c.is_ascii_uppercase()) && {
        let rest: Vec<char> = chars.collect();
        (5..=6).contains(&rest.len()) && rest.iter().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
    };
    if ok {
        Ok(plate)
    } else {
        Err(Error::invalid(format!("车牌号格式不正确，例如 浙A12345 (not a plate number: `{text}`)")))
    }
}

fn overlaps(a_from: u64, a_to: u64, b_from: u64, b_to: u64) -> bool {
    a_from < b_to && b_from < a_to
}

/// Whether `[from, to)` lies inside one of the space's windows and clear of its bookings.
pub fn is_free(space: &Space, from: u64, to: u64) -> bool {
    space.windows.iter().any(|w| w.from <= from && to <= w.to) && !space.taken.iter().any(|t| overlaps(t.from, t.to, from, to))
}

fn minutes(from: u64, to: u64) -> u64 {
    to.saturating_sub(from).div_ceil(MINUTE_MS)
}

fn is_staff(user: &User) -> bool {
    STAFF_ROLES.iter().any(|r| identity::has_role(user, r))
}

fn space(id: &str) -> Result<Versioned<Space>, Error> {
    spaces().get(id)?.ok_or_else(|| Error::not_found(format!("没有这个车位 (no space `{id}`)")))
}

fn booking(id: &str) -> Result<Booking, Error> {
    bookings().get(id)?.map(|v| v.value).ok_or_else(|| Error::not_found(format!("没有这个预约 (no booking `{id}`)")))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewSpace {
    label: String,
    gate: String,
    #[serde(default)]
    sensor: Option<String>,
}

fn register_space(user: &User, body: &NewSpace, tenant: &str) -> Result<Space, Error> {
    let label = body.label.trim();
    if label.is_empty() || label.chars().count() > 20 {
        return Err(Error::invalid("车位编号为1–20个字符，例如 B2-017 (a label of 1–20 characters)"));
    }
    let gate = devices::get(&body.gate).map_err(|e| Error::new(e.code, format!("道闸 `{}`：{}", body.gate, e.message)))?;
    if gate.device_type != "gate-controller" {
        return Err(Error::invalid(format!("`{}` 不是道闸 (is a {}, not a gate-controller)", gate.id, gate.device_type)));
    }
    if let Some(sensor) = &body.sensor {
        let device = devices::get(sensor)?;
        if device.device_type != "parking-sensor" {
            return Err(Error::invalid(format!("`{sensor}` 不是车位传感器 (is a {}, not a parking-sensor)", device.device_type)));
        }
    }
    let community = user.community.clone().unwrap_or_else(|| tenant.to_string());
    let id = format!("{community}:{label}");
    if let Some(existing) = spaces().get(&id)? {
        if existing.value.owner == user.id {
            return Ok(existing.value);
        }
        return Err(Error::conflict(format!("车位 {label} 已由他人登记 (already registered by someone else)")));
    }
    let space = Space {
        id: id.clone(),
        community,
        label: label.to_string(),
        owner: user.id.clone(),
        owner_name: user.display_name.clone(),
        gate: gate.id,
        sensor: body.sensor.clone(),
        windows: Vec::new(),
        taken: Vec::new(),
    };
    spaces().insert(&id, &space)?;
    Ok(space)
}

fn publish_window(user: &User, space_id: &str, from: u64, to: u64) -> Result<Space, Error> {
    if to <= from || to - from > MAX_WINDOW_MS {
        return Err(Error::invalid("结束须晚于开始，且一次最多31天 (the end must follow the start, at most 31 days)"));
    }
    if to <= now_ms() {
        return Err(Error::invalid("不能发布已经过去的时段 (that time is over)"));
    }
    let current = space(space_id)?.value;
    if current.owner != user.id {
        return Err(Error::new(ErrorCode::PermissionDenied, "只有车位业主可以发布空闲时段 (only the owner publishes windows)"));
    }
    if current.windows.iter().any(|w| overlaps(w.from, w.to, from, to)) {
        return Err(Error::conflict("与已发布的时段重叠 (overlaps a window already published)"));
    }
    let window = Window { id: format!("w{from}"), from, to };
    Ok(spaces()
        .modify(space_id, |s: &mut Space| {
            if !s.windows.iter().any(|w| overlaps(w.from, w.to, from, to)) {
                s.windows.push(window.clone());
                s.windows.sort_by_key(|w| w.from);
            }
        })?
        .value)
}

fn withdraw_window(user: &User, space_id: &str, window_id: &str) -> Result<Space, Error> {
    let current = space(space_id)?.value;
    if current.owner != user.id {
        return Err(Error::new(ErrorCode::PermissionDenied, "只有车位业主可以撤回时段 (only the owner withdraws windows)"));
    }
    let window = current.windows.iter().find(|w| w.id == window_id).cloned().ok_or_else(|| Error::not_found(format!("no window `{window_id}`")))?;
    if current.taken.iter().any(|t| overlaps(t.from, t.to, window.from, window.to)) {
        return Err(Error::conflict("该时段已有预约，请先联系预约人取消 (there are bookings in this window)"));
    }
    Ok(spaces().modify(space_id, |s: &mut Space| s.windows.retain(|w| w.id != window_id))?.value)
}

#[derive(Serialize)]
struct Offer {
    space: String,
    label: String,
    community: String,
    fee: i64,
    occupied_now: Option<bool>,
}

/// Whether a parking sensor's latest message says a car stands on the space.
pub fn reading_says_occupied(reading: &serde_json::Value) -> Option<bool> {
    match reading.get("occupied")? {
        serde_json::Value::Bool(b) => Some(*b),
        serde_json::Value::Number(n) => n.as_f64().map(|v| v >= 0.5),
        _ => None,
    }
}

fn occupied(space: &Space) -> Option<bool> {
    let sensor = space.sensor.as_deref()?;
    devices::latest(sensor).ok().flatten().and_then(|reading| reading_says_occupied(&reading))
}

fn search(community: Option<&str>, from: u64, to: u64) -> Result<Vec<Offer>, Error> {
    if to <= from {
        return Err(Error::invalid("结束须晚于开始 (the end must follow the start)"));
    }
    let tariff = tariff()?;
    let fee = tariff.fee(minutes(from, to));
    let candidates = match community {
        Some(c) => spaces().query_all("community", &c)?,
        None => spaces().list_all("")?,
    };
    let mut offers: Vec<Offer> = candidates
        .into_iter()
        .map(|v| v.value)
        .filter(|s| is_free(s, from, to))
        .map(|s| Offer { occupied_now: occupied(&s), space: s.id, label: s.label, community: s.community, fee })
        .collect();
    offers.sort_by(|a, b| a.label.cmp(&b.label));
    Ok(offers)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewBooking {
    space: String,
    from: String,
    to: String,
    plate: String,
}

fn book(user: &User, body: &NewBooking) -> Result<Booking, Error> {
    let plate = normalise_plate(&body.plate)?;
    let (from, to) = (parse_time(&body.from)?, parse_time(&body.to)?);
    let now = now_ms();
    if to <= from {
        return Err(Error::invalid("结束须晚于开始 (the end must follow the start)"));
    }
    if to <= now {
        return Err(Error::invalid("不能预约已经过去的时段 (that time is over)"));
    }
    let current = space(&body.space)?;
    if current.value.owner == user.id {
        return Err(Error::invalid("不能预约自己的车位 (that is your own space)"));
    }
    let tariff = tariff()?;
    let quoted_fee = tariff.fee(minutes(from, to));
    // The booker may owe up to the credit limit; the account opens with it.
    let account = ledger::account(CURRENCY, &ledger::user(&user.id))?;
    if account.floor > -tariff.credit_limit {
        ledger::set_limits(&account.id, -tariff.credit_limit, None)?;
    }
    if account.balance - quoted_fee < -tariff.credit_limit {
        return Err(Error::new(ErrorCode::LimitExceeded, "停车费欠费已达上限，请先缴清 (your unpaid parking fees reached the credit limit)"));
    }
    let id = format!("b{now:013}-{}", user.id.chars().take(8).collect::<String>());
    // Take the hours on the space first: the version check makes the second of two
    // bookings for the same hours fail here, before anything else is written.
    let mut doc = current;
    loop {
        if !is_free(&doc.value, from, to) {
            return Err(Error::conflict("该时段已被预约或不在开放时段内 (those hours are taken or not offered)"));
        }
        let mut taken = doc.value.clone();
        taken.taken.push(Window { id: id.clone(), from, to });
        match spaces().replace(&doc.key, &taken, doc.version) {
            Ok(_) => break,
            Err(e) if e.code == ErrorCode::Conflict => doc = space(&body.space)?,
            Err(e) => return Err(e),
        }
    }
    let space = doc.value;
    let mut booking = Booking {
        id: id.clone(),
        space: space.id.clone(),
        space_label: space.label.clone(),
        community: space.community.clone(),
        gate: space.gate.clone(),
        user: user.id.clone(),
        user_name: user.display_name.clone(),
        owner: space.owner.clone(),
        plate,
        from,
        to,
        status: Status::Booked,
        quoted_fee,
        charged: None,
        unpaid: None,
        gate_state: GateState::Pending,
        gate_attempts: 0,
        gate_error: None,
        overstay_notified: false,
        created_at: now,
        history: vec![format!("{} 预约 {}–{}", format_time(now), format_time(from), format_time(to))],
    };
    if let Err(e) = bookings().insert(&id, &booking) {
        release(&space.id, &id)?;
        return Err(e);
    }
    sync_gate(&mut booking, now)?;
    // The booking stands whether or not the owner's message goes out.
    let text = format!("{} {}–{}，车牌 {}", space.label, format_time(from), format_time(to), booking.plate);
    if let Err(e) = notify::user(&space.owner, "您的车位有新预约", &text, Some(&format!("/t/{}/p/parking/ui/index.html#booking-{id}", space.community)))
    {
        log::warn(&format!("booking {id}: the owner was not notified: {}", e.message));
    }
    Ok(booking)
}

fn release(space_id: &str, booking_id: &str) -> Result<(), Error> {
    spaces().modify(space_id, |s: &mut Space| s.taken.retain(|t| t.id != booking_id))?;
    Ok(())
}

/// Bring the gate in line with the booking: whitelisted while it is booked, removed once
/// it is over. A device that does not answer is tried again by the next sweep.
fn sync_gate(booking: &mut Booking, now: u64) -> Result<(), Error> {
    let want_whitelisted = booking.status == Status::Booked;
    let command = match (want_whitelisted, booking.gate_state) {
        (true, GateState::Pending) => {
            json!({ "command": "whitelist-add", "plate": booking.plate, "from": booking.from, "to": booking.to, "booking": booking.id })
        }
        (false, GateState::Whitelisted) => json!({ "command": "whitelist-remove", "plate": booking.plate, "booking": booking.id }),
        (false, GateState::Pending) => {
            booking.gate_state = GateState::Removed;
            return save(booking);
        }
        _ => return Ok(()),
    };
    booking.gate_attempts += 1;
    match devices::command(&booking.gate, &command, GATE_TIMEOUT_MS) {
        Ok(ack) if ack.get("ok").and_then(|v| v.as_bool()) != Some(false) => {
            booking.gate_state = if want_whitelisted { GateState::Whitelisted } else { GateState::Removed };
            booking.gate_attempts = 0;
            booking.gate_error = None;
            booking.history.push(format!("{} 道闸{}", format_time(now), if want_whitelisted { "已登记车牌" } else { "已移除车牌" }));
        }
        Ok(ack) => booking.gate_error = Some(format!("道闸拒绝：{ack}")),
        Err(e) => booking.gate_error = Some(format!("道闸未响应：{}", e.message)),
    }
    if booking.gate_error.is_some() && booking.gate_attempts >= GATE_ATTEMPTS {
        booking.gate_state = GateState::Failed;
        booking.history.push(format!("{} 道闸多次未响应，请物业人工处理", format_time(now)));
    }
    save(booking)
}

fn save(booking: &Booking) -> Result<(), Error> {
    bookings().put(&booking.id, booking)?;
    Ok(())
}

/// Charge `amount` for the booking: the owner gets the fee less the property's share.
/// The keys make a retry (or a second sweep) pay once.
fn settle(booking: &Booking, amount: i64, what: &str) -> Result<(), Error> {
    if amount <= 0 {
        return Ok(());
    }
    let tariff = tariff()?;
    let payer = ledger::account(CURRENCY, &ledger::user(&booking.user))?;
    let owner = ledger::account(CURRENCY, &ledger::user(&booking.owner))?;
    let property = ledger::account(CURRENCY, &ledger::pool(PROPERTY_POOL))?;
    let share = tariff.property_share(amount);
    let memo = format!("{what} {} {}", booking.space_label, booking.plate);
    ledger::transfer(&payer.id, &owner.id, amount - share, &format!("{}:owner", booking.id), &memo).map_err(explain_credit)?;
    if share > 0 {
        ledger::transfer(&payer.id, &property.id, share, &format!("{}:property", booking.id), &format!("物业分成 {memo}")).map_err(explain_credit)?;
    }
    Ok(())
}

fn explain_credit(e: Error) -> Error {
    if e.code == ErrorCode::LimitExceeded {
        Error::new(ErrorCode::LimitExceeded, "停车费欠费已达上限，请先缴清 (your unpaid parking fees reached the credit limit)")
    } else {
        e
    }
}

/// End a booking: charge for `[from, until)` (at least the first tier when it started),
/// free the hours after `until`, take the plate off the gate.
fn finish(mut booking: Booking, until: u64, now: u64) -> Result<Booking, Error> {
    let fee = tariff()?.fee(minutes(booking.from, until.max(booking.from + 1)));
    booking.status = Status::Completed;
    match settle(&booking, fee, "停车费") {
        Ok(()) => {
            booking.charged = Some(fee);
            booking.history.push(format!("{} 结束，收费 {}", format_time(now), yuan(fee)));
        }
        // The car has left either way: the fee is recorded for the property office.
        Err(e) if e.code == ErrorCode::LimitExceeded => {
            booking.unpaid = Some(fee);
            booking.history.push(format!("{} 结束，欠费超出额度，{} 未能结算，请联系物业", format_time(now), yuan(fee)));
        }
        Err(e) => return Err(e),
    }
    if until < booking.to {
        let (space_id, id) = (booking.space.clone(), booking.id.clone());
        spaces().modify(&space_id, |s: &mut Space| {
            for t in s.taken.iter_mut().filter(|t| t.id == id) {
                t.to = until.max(t.from);
            }
        })?;
    }
    save(&booking)?;
    sync_gate(&mut booking, now)?;
    Ok(booking)
}

fn cancel(user: &User, id: &str) -> Result<Booking, Error> {
    let mut current = booking(id)?;
    if current.user != user.id && !is_staff(user) {
        return Err(Error::new(ErrorCode::PermissionDenied, "只能取消自己的预约 (not your booking)"));
    }
    if current.status != Status::Booked {
        return Err(Error::conflict("该预约已结束或已取消 (the booking is over)"));
    }
    let now = now_ms();
    if now >= current.from {
        return Err(Error::conflict("预约已开始，请使用“结束停车” (it has started: check out instead)"));
    }
    let tariff = tariff()?;
    let fee = if current.from - now >= tariff.free_cancel_minutes * MINUTE_MS { 0 } else { tariff.late_cancel_fee.min(current.quoted_fee) };
    settle(&current, fee, "逾时取消费")?;
    release(&current.space, &current.id)?;
    current.status = Status::Cancelled;
    current.charged = Some(fee);
    current.history.push(format!("{} 取消{}", format_time(now), if fee > 0 { format!("，收取逾时取消费 {}", yuan(fee)) } else { "（免费）".into() }));
    save(&current)?;
    sync_gate(&mut current, now)?;
    Ok(current)
}

fn checkout(user: &User, id: &str) -> Result<Booking, Error> {
    let current = booking(id)?;
    if current.user != user.id && !is_staff(user) {
        return Err(Error::new(ErrorCode::PermissionDenied, "只能结束自己的预约 (not your booking)"));
    }
    if current.status != Status::Booked {
        return Err(Error::conflict("该预约已结束或已取消 (the booking is over)"));
    }
    let now = now_ms();
    if now < current.from {
        return Err(Error::conflict("预约尚未开始，可以取消 (it has not started: cancel it instead)"));
    }
    let until = now.min(current.to);
    finish(current, until, now)
}

fn yuan(fen: i64) -> String {
    format!("{}.{:02} 元", fen / 100, fen % 100)
}

/// The schedule's round: pending gate steps, bookings whose time is up, overstays.
fn sweep(now: u64) -> Result<(), Error> {
    // One booking's trouble (logged) must not hold up the others; it is tried again on
    // the next round.
    let report = |id: &str, result: Result<(), Error>| {
        if let Err(e) = result {
            log::warn(&format!("booking {id}: {}", e.message));
        }
    };
    for doc in bookings().query_all("status", &Status::Booked)? {
        let mut booking = doc.value;
        if booking.to <= now {
            let end = booking.to;
            report(&doc.key, finish(booking, end, now).map(|_| ()));
        } else if booking.gate_state == GateState::Pending {
            report(&doc.key, sync_gate(&mut booking, now));
        }
    }
    let tariff = tariff()?;
    let grace = tariff.overstay_grace_minutes * MINUTE_MS;
    for doc in bookings().query_all("status", &Status::Completed)? {
        let mut booking = doc.value;
        if booking.gate_state == GateState::Whitelisted {
            report(&doc.key, sync_gate(&mut booking, now));
        }
        // Overstays are looked for during the day after the end.
        if booking.overstay_notified || now < booking.to + grace || now > booking.to + 24 * 60 * MINUTE_MS {
            continue;
        }
        let Some(space) = spaces().get(&booking.space)?.map(|v| v.value) else { continue };
        if occupied(&space) == Some(true) {
            let text = format!("{} 车位预约已于 {} 结束，车辆 {} 仍在位，请尽快驶离。", space.label, format_time(booking.to), booking.plate);
            let link = format!("/t/{}/p/parking/ui/index.html#booking-{}", booking.community, booking.id);
            let told = notify::user(&booking.user, "停车已超时", &text, Some(&link))
                .and_then(|()| notify::user(&booking.owner, "您的车位有车辆超时停放", &text, None));
            report(
                &doc.key,
                told.and_then(|()| {
                    booking.overstay_notified = true;
                    booking.history.push(format!("{} 超时停车，已提醒", format_time(now)));
                    save(&booking)
                }),
            );
        }
    }
    Ok(())
}

#[derive(Default, Serialize)]
struct CommunityFigures {
    community: String,
    spaces: u64,
    bookings: u64,
    active: u64,
    occupied: u64,
    published_hours: f64,
    booked_hours: f64,
    income: f64,
    property_income: f64,
}

/// Figures per community for the dashboards: only sums, no one's data.
fn stats() -> Result<Vec<CommunityFigures>, Error> {
    let tariff = tariff()?;
    let now = now_ms();
    let mut by: std::collections::BTreeMap<String, CommunityFigures> = Default::default();
    let hours = |ms: u64| ms as f64 / 3_600_000.0;
    for space in spaces().list_all("")?.into_iter().map(|v| v.value) {
        let row = by.entry(space.community.clone()).or_insert_with(|| CommunityFigures { community: space.community.clone(), ..Default::default() });
        row.spaces += 1;
        row.published_hours += space.windows.iter().map(|w| hours(w.to - w.from)).sum::<f64>();
        if occupied(&space) == Some(true) {
            row.occupied += 1;
        }
    }
    for booking in bookings().list_all("")?.into_iter().map(|v| v.value) {
        let row = by.entry(booking.community.clone()).or_insert_with(|| CommunityFigures { community: booking.community.clone(), ..Default::default() });
        row.bookings += 1;
        if booking.status != Status::Cancelled {
            row.booked_hours += hours(booking.to - booking.from);
        }
        if booking.status == Status::Booked && booking.from <= now {
            row.active += 1;
        }
        let charged = booking.charged.unwrap_or(0);
        row.income += charged as f64 / 100.0;
        row.property_income += tariff.property_share(charged) as f64 / 100.0;
    }
    let round = |v: f64| (v * 100.0).round() / 100.0;
    Ok(by
        .into_values()
        .map(|mut r| {
            r.published_hours = round(r.published_hours);
            r.booked_hours = round(r.booked_hours);
            r.income = round(r.income);
            r.property_income = round(r.property_income);
            r
        })
        .collect())
}

fn booking_view(b: &Booking) -> serde_json::Value {
    json!({
        "id": b.id, "space": b.space, "space_label": b.space_label, "community": b.community, "plate": b.plate,
        "from": format_time(b.from), "to": format_time(b.to), "from_ms": b.from, "to_ms": b.to,
        "status": b.status, "quoted_fee": b.quoted_fee, "charged": b.charged, "gate_state": b.gate_state,
        "gate_error": b.gate_error, "overstay_notified": b.overstay_notified, "history": b.history, "user_name": b.user_name, "unpaid": b.unpaid,
    })
}

fn space_view(s: &Space) -> serde_json::Value {
    let windows: Vec<_> = s.windows.iter().map(|w| json!({ "id": w.id, "from": format_time(w.from), "to": format_time(w.to) })).collect();
    let taken: Vec<_> = s.taken.iter().map(|w| json!({ "from": format_time(w.from), "to": format_time(w.to) })).collect();
    // No owner names: every resident may list the spaces.
    json!({ "id": s.id, "label": s.label, "community": s.community, "gate": s.gate, "sensor": s.sensor,
            "windows": windows, "taken": taken, "occupied_now": occupied(s) })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WindowRequest {
    from: String,
    to: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DemoSeed {
    label: String,
    gate: String,
    #[serde(default)]
    sensor: Option<String>,
    /// Publish the space from today 00:00 for this many days.
    days: u64,
}

struct Parking;

impl Plugin for Parking {
    fn router() -> Router {
        Router::new()
            .get("/spaces", |req, _| {
                identity::require_user()?;
                let community = req.query_param("community");
                let list = match &community {
                    Some(c) => spaces().query_all("community", c)?,
                    None => spaces().list_all("")?,
                };
                Ok(Response::json(200, &list.iter().map(|v| space_view(&v.value)).collect::<Vec<_>>()))
            })
            .get("/spaces/mine", |_, _| {
                let user = identity::require_user()?;
                let list = spaces().query_all("owner", &user.id)?;
                Ok(Response::json(200, &list.iter().map(|v| space_view(&v.value)).collect::<Vec<_>>()))
            })
            .post("/spaces", |req, _| {
                let user = identity::require_user()?;
                let space = register_space(&user, &req.json()?, req.tenant())?;
                Ok(Response::json(201, &space_view(&space)))
            })
            .post("/spaces/:id/windows", |req, params| {
                let user = identity::require_user()?;
                let body: WindowRequest = req.json()?;
                let space = publish_window(&user, params.require("id")?, parse_time(&body.from)?, parse_time(&body.to)?)?;
                Ok(Response::json(201, &space_view(&space)))
            })
            .delete("/spaces/:id/windows/:window", |_, params| {
                let user = identity::require_user()?;
                let space = withdraw_window(&user, params.require("id")?, params.require("window")?)?;
                Ok(Response::json(200, &space_view(&space)))
            })
            .get("/search", |req, _| {
                identity::require_user()?;
                let from = parse_time(&req.query_param("from").ok_or_else(|| Error::invalid("需要开始时间 from"))?)?;
                let to = parse_time(&req.query_param("to").ok_or_else(|| Error::invalid("需要结束时间 to"))?)?;
                Ok(Response::json(200, &search(req.query_param("community").as_deref(), from, to)?))
            })
            .get("/quote", |req, _| {
                let from = parse_time(&req.query_param("from").ok_or_else(|| Error::invalid("需要开始时间 from"))?)?;
                let to = parse_time(&req.query_param("to").ok_or_else(|| Error::invalid("需要结束时间 to"))?)?;
                Ok(Response::json(200, &json!({ "fee": tariff()?.fee(minutes(from, to)), "minutes": minutes(from, to) })))
            })
            .post("/bookings", |req, _| {
                let user = identity::require_user()?;
                Ok(Response::json(201, &booking_view(&book(&user, &req.json()?)?)))
            })
            .get("/bookings/mine", |_, _| {
                let user = identity::require_user()?;
                let mut list: Vec<Booking> = bookings().query_all("user", &user.id)?.into_iter().map(|v| v.value).collect();
                list.sort_by_key(|booking| std::cmp::Reverse(booking.from));
                Ok(Response::json(200, &list.iter().map(booking_view).collect::<Vec<_>>()))
            })
            .get("/bookings/of-my-spaces", |_, _| {
                let user = identity::require_user()?;
                let mut list: Vec<Booking> = Vec::new();
                for space in spaces().query_all("owner", &user.id)? {
                    list.extend(bookings().query_all("space", &space.key)?.into_iter().map(|v| v.value));
                }
                list.sort_by_key(|booking| std::cmp::Reverse(booking.from));
                Ok(Response::json(200, &list.iter().map(booking_view).collect::<Vec<_>>()))
            })
            .get("/bookings", |_, _| {
                let user = identity::require_user()?;
                if !is_staff(&user) {
                    return Err(Error::new(ErrorCode::PermissionDenied, "仅限社区工作人员 (staff only)"));
                }
                let mut list: Vec<Booking> = bookings().list_all("")?.into_iter().map(|v| v.value).collect();
                list.sort_by_key(|booking| std::cmp::Reverse(booking.from));
                Ok(Response::json(200, &list.iter().map(booking_view).collect::<Vec<_>>()))
            })
            .get("/bookings/:id", |_, params| {
                let user = identity::require_user()?;
                let b = booking(params.require("id")?)?;
                if b.user != user.id && b.owner != user.id && !is_staff(&user) {
                    return Err(Error::not_found("没有这个预约 (no such booking)"));
                }
                Ok(Response::json(200, &booking_view(&b)))
            })
            .post("/bookings/:id/cancel", |_, params| {
                let user = identity::require_user()?;
                Ok(Response::json(200, &booking_view(&cancel(&user, params.require("id")?)?)))
            })
            .post("/bookings/:id/checkout", |_, params| {
                let user = identity::require_user()?;
                Ok(Response::json(200, &booking_view(&checkout(&user, params.require("id")?)?)))
            })
            .get("/account", |_, _| {
                let user = identity::require_user()?;
                let account = ledger::account(CURRENCY, &ledger::user(&user.id))?;
                Ok(Response::json(200, &json!({ "balance": account.balance, "floor": account.floor })))
            })
            .get("/tariff", |_, _| Ok(Response::json(200, &tariff()?)))
            .put("/tariff", |req, _| {
                let user = identity::require_user()?;
                if !is_staff(&user) {
                    return Err(Error::new(ErrorCode::PermissionDenied, "收费标准由社区工作人员设置 (staff set the tariff)"));
                }
                let new: Tariff = req.json()?;
                new.validate()?;
                Collection::<Tariff>::new("settings").put("tariff", &new)?;
                Ok(Response::json(200, &new))
            })
            .get("/stats", |_, _| Ok(Response::json(200, &stats()?)))
            .post("/demo/seed", |req, _| {
                let user = identity::require_user()?;
                let seed: DemoSeed = req.json()?;
                let space = register_space(&user, &NewSpace { label: seed.label, gate: seed.gate, sensor: seed.sensor }, req.tenant())?;
                let day = 24 * 60 * MINUTE_MS;
                let midnight = (now_ms() + 8 * 60 * MINUTE_MS) / day * day - 8 * 60 * MINUTE_MS;
                let to = midnight + seed.days.clamp(1, 31) * day;
                // Idempotent: only the days not yet published are added.
                let start = space.windows.iter().map(|w| w.to).max().unwrap_or(midnight).max(midnight);
                let space = if start + day <= to { publish_window(&user, &space.id, start, to)? } else { space };
                Ok(Response::json(200, &space_view(&space)))
            })
    }

    fn on_event(event: events::Event) -> Result<(), Error> {
        match event.kind.as_str() {
            "schedule" => sweep(event.at),
            _ => Ok(()),
        }
    }
}

linli_sdk::export!(Parking);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_tariff_charges_5_yuan_up_to_8_hours_and_10_up_to_24() {
        let t = Tariff::default();
        assert_eq!(t.fee(0), 0);
        assert_eq!(t.fee(1), 500);
        assert_eq!(t.fee(8 * 60), 500);
        assert_eq!(t.fee(8 * 60 + 1), 1000);
        assert_eq!(t.fee(24 * 60), 1000);
        // A day and a bit: one full day plus the first tier.
        assert_eq!(t.fee(24 * 60 + 30), 1500);
        assert_eq!(t.fee(48 * 60), 2000);
        assert_eq!(t.property_share(1000), 100);
        assert_eq!(t.property_share(55), 5);
    }

    #[test]
    fn tariffs_that_make_no_sense_are_refused() {
        let mut t = Tariff::default();
        t.tiers.reverse();
        assert!(t.validate().is_err());
        let t = Tariff { tiers: vec![], ..Tariff::default() };
        assert!(t.validate().is_err());
        let t = Tariff { property_share_percent: 101, ..Tariff::default() };
        assert!(t.validate().is_err());
        assert!(Tariff::default().validate().is_ok());
    }

    #[test]
    fn plates_are_normalised_and_checked() {
        assert_eq!(normalise_plate("浙a·12345").unwrap(), "浙A12345");
        assert_eq!(normalise_plate("粤B D12345").unwrap(), "粤BD12345");
        assert!(normalise_plate("AB12345").is_err());
        assert!(normalise_plate("浙A123").is_err());
        assert!(normalise_plate("浙A1234567").is_err());
    }

    #[test]
    fn times_are_china_standard_time() {
        let ms = parse_time("2026-11-28T09:30").unwrap();
        assert_eq!(ms, 1_795_829_400_000);
        assert_eq!(format_time(ms), "2026-11-28T09:30");
        assert!(parse_time("28/11/2026").is_err());
    }

    #[test]
    fn a_space_is_free_inside_a_window_and_clear_of_bookings() {
        let space = Space {
            id: "s".into(),
            community: "c".into(),
            label: "B1".into(),
            owner: "o".into(),
            owner_name: String::new(),
            gate: "g".into(),
            sensor: None,
            windows: vec![Window { id: "w".into(), from: 100, to: 1000 }],
            taken: vec![Window { id: "b".into(), from: 300, to: 500 }],
        };
        assert!(is_free(&space, 100, 300));
        assert!(is_free(&space, 500, 1000));
        assert!(!is_free(&space, 250, 350));
        assert!(!is_free(&space, 900, 1100));
        assert!(!is_free(&space, 50, 150));
    }

    #[test]
    fn sensors_report_occupancy_as_a_flag_or_a_number() {
        assert_eq!(reading_says_occupied(&json!({ "occupied": true })), Some(true));
        assert_eq!(reading_says_occupied(&json!({ "occupied": 0 })), Some(false));
        assert_eq!(reading_says_occupied(&json!({ "battery": 90 })), None);
    }
}
