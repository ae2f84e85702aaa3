//! 时间银行 (time bank): residents register as members under their real name (with consent),
//! post needs (an elder needing company, a meal, shopping, a hospital visit …) and offers
//! of service; members find matches by category, community and time; a volunteer accepts;
//! once the recipient confirms the service was done, the volunteer's hours are credited
//! (1 hour of service = 1 credit) through the host's ledger. Members donate hours to one
//! another or to their community's pool, and spend hours on services. Statistics per
//! community feed the dashboards.
use chrono::NaiveDateTime;
use linli_sdk::identity::{ProfileField, User};
use linli_sdk::prelude::*;

pub const CATEGORIES: &[&str] = &["陪伴", "助餐", "代购", "保洁", "就医陪同", "理发", "维修", "学习辅导", "其他"];
const MEMBER_ROLES: &[&str] = &["volunteer", "elder", "family"];
const HOURS: &str = "hours";
/// Credits are hundredths of an hour.
const PER_HOUR: i64 = 100;
/// Hours paid for services come from the county's issuing pool, which may run into credit.
const ISSUER: &str = "pool:issuer";
const ISSUER_FLOOR: i64 = -1_000_000_000_000;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Member {
    pub id: String,
    pub name: String,
    pub community: String,
    pub roles: Vec<String>,
    pub account: String,
    pub joined_at: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// Someone needs a service.
    Need,
    /// A volunteer offers one.
    Offer,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Open,
    Accepted,
    Completed,
    Cancelled,
}

/// Who pays the volunteer's hours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Payment {
    /// The time bank credits the volunteer (public service).
    #[default]
    Bank,
    /// The recipient spends hours they saved.
    Hours,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Task {
    pub id: String,
    pub kind: Kind,
    pub owner: String,
    pub owner_name: String,
    pub community: String,
    pub category: String,
    pub title: String,
    #[serde(default)]
    pub details: String,
    /// Local time, `2026-11-25T09:00`.
    pub starts_at: String,
    pub minutes: u32,
    pub place: String,
    #[serde(default)]
    pub payment: Payment,
    pub status: Status,
    #[serde(default)]
    pub counterpart: Option<String>,
    #[serde(default)]
    pub counterpart_name: Option<String>,
    /// The ledger transfer that paid for it.
    #[serde(default)]
    pub transfer: Option<String>,
    pub created_at: String,
}

impl Task {
    /// Who receives the service: the one who posted a need, or who took up an offer.
    pub fn recipient(&self) -> Option<&str> {
        match self.kind {
            Kind::Need => Some(&self.owner),
            Kind::Offer => self.counterpart.as_deref(),
        }
    }

    pub fn volunteer(&self) -> Option<&str> {
        match self.kind {
            Kind::Need => self.counterpart.as_deref(),
            Kind::Offer => Some(&self.owner),
        }
    }

    /// 1 hour of service = 1 credit (100 hundredths), rounded to the hundredth.
    pub fn credits(&self) -> i64 {
        (i64::from(self.minutes) * PER_HOUR + 30) / 60
    }

    fn starts(&self) -> Option<NaiveDateTime> {
        NaiveDateTime::parse_from_str(&self.starts_at, "%Y-%m-%dT%H:%M").ok()
    }
}

/// Open tasks of the other kind that fit `task`: same category and community, starting
/// within a day of it; nearest in time first.
pub fn matches<'a>(task: &Task, candidates: &'a [Task]) -> Vec<&'a Task> {
    let Some(start) = task.starts() else {
        return vec![];
    };
    let mut found: Vec<(i64, &Task)> = candidates
        .iter()
        .filter(|c| c.kind != task.kind && c.status == Status::Open && c.category == task.category && c.community == task.community && c.owner != task.owner)
        .filter_map(|c| c.starts().map(|s| ((s - start).num_minutes().abs(), c)))
        .filter(|(distance, _)| *distance <= 24 * 60)
        .collect();
    found.sort_by_key(|(distance, c)| (*distance, c.id.clone()));
    found.into_iter().map(|(_, c)| c).collect()
}

fn members() -> Collection<Member> {
    Collection::new("members")
}

fn tasks() -> Collection<Task> {
    Collection::new("tasks")
}

fn counters() -> Collection<u64> {
    Collection::new("counters")
}

/// Now in China Standard Time.
fn now() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or_default();
    chrono::DateTime::from_timestamp(secs + 8 * 3600, 0).unwrap_or_default().naive_utc().format("%Y-%m-%dT%H:%M").to_string()
}

fn require_member() -> Result<(User, Member), Error> {
    let user = identity::require_user()?;
    let member =
        members().get(&user.id)?.map(|m| m.value).ok_or_else(|| Error::new(ErrorCode::PermissionDenied, "请先加入时间银行 (join the time bank first)"))?;
    Ok((user, member))
}

fn issuer() -> Result<ledger::Account, Error> {
    let issuer = ledger::account(HOURS, ISSUER)?;
    if issuer.floor > ISSUER_FLOOR {
        return ledger::set_limits(&issuer.id, ISSUER_FLOOR, None);
    }
    Ok(issuer)
}

fn all_tasks(field: Option<(&str, &str)>) -> Result<Vec<Task>, Error> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = match field {
            Some((name, value)) => tasks().query(name, &value, cursor.as_deref(), 500)?,
            None => tasks().list("", cursor.as_deref(), 500)?,
        };
        out.extend(page.items.into_iter().map(|v| v.value));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return Ok(out),
        }
    }
}

fn all_members() -> Result<Vec<Member>, Error> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = members().list("", cursor.as_deref(), 500)?;
        out.extend(page.items.into_iter().map(|v| v.value));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return Ok(out),
        }
    }
}

#[derive(Deserialize)]
struct Join {
    roles: Vec<String>,
}

fn join(req: &Request) -> Result<Response, Error> {
    let user = identity::require_user()?;
    let input: Join = req.json()?;
    if input.roles.is_empty() || input.roles.iter().any(|r| !MEMBER_ROLES.contains(&r.as_str())) {
        return Err(Error::invalid("身份须为 volunteer（志愿者）、elder（老人）或 family（家属）之一或多个"));
    }
    if let Some(existing) = members().get(&user.id)? {
        return Ok(Response::json(200, &existing.value));
    }
    let name = match identity::profile_field(ProfileField::RealName) {
        Ok(name) => name,
        Err(e) if e.code == ErrorCode::ConsentRequired => {
            let body = json!({ "error": { "code": "consent-required", "message": e.message, "consent_url": identity::consent_page("time-bank") } });
            return Ok(Response::json(403, &body));
        }
        Err(e) => return Err(e),
    };
    let community = user.community.clone().unwrap_or_else(|| req.tenant().to_string());
    let account = ledger::account(HOURS, &ledger::user(&user.id))?;
    let member = Member { id: user.id.clone(), name, community, roles: input.roles, account: account.id, joined_at: now() };
    match members().insert(&user.id, &member) {
        Ok(_) => Ok(Response::json(201, &member)),
        // Joined concurrently (a double click): the first one stands.
        Err(e) if e.code == ErrorCode::Conflict => Ok(Response::json(200, &members().get(&user.id)?.map(|m| m.value))),
        Err(e) => Err(e),
    }
}

#[derive(Deserialize)]
struct NewTask {
    kind: Kind,
    category: String,
    title: String,
    #[serde(default)]
    details: String,
    starts_at: String,
    minutes: u32,
    place: String,
    #[serde(default)]
    payment: Payment,
}

fn post_task(req: &Request) -> Result<Response, Error> {
    let (_, member) = require_member()?;
    let input: NewTask = req.json()?;
    if !CATEGORIES.contains(&input.category.as_str()) {
        return Err(Error::invalid(format!("类别须为：{}", CATEGORIES.join("、"))));
    }
    if input.title.trim().is_empty() || input.title.chars().count() > 60 {
        return Err(Error::invalid("请填写 1–60 字的标题 (a title of 1–60 characters)"));
    }
    if NaiveDateTime::parse_from_str(&input.starts_at, "%Y-%m-%dT%H:%M").is_err() {
        return Err(Error::invalid("时间格式须为 2026-11-25T09:00 (starts_at as 2026-11-25T09:00)"));
    }
    if !(15..=480).contains(&input.minutes) || !input.minutes.is_multiple_of(15) {
        return Err(Error::invalid("时长须为 15 分钟的整数倍，最长 8 小时 (minutes: a multiple of 15, at most 480)"));
    }
    if input.place.trim().is_empty() {
        return Err(Error::invalid("请填写地点 (place is required)"));
    }
    if input.kind == Kind::Offer && !member.roles.iter().any(|r| r == "volunteer") {
        return Err(Error::new(ErrorCode::PermissionDenied, "只有志愿者可以发布服务 (only volunteers offer services)"));
    }
    if input.kind == Kind::Offer && input.payment == Payment::Hours {
        return Err(Error::invalid("用时间币支付只适用于需求 (paying with hours applies to needs)"));
    }
    let n = counters().update("task", |n| *n += 1)?.value;
    let task = Task {
        id: format!("T{n:06}"),
        kind: input.kind,
        owner: member.id.clone(),
        owner_name: member.name.clone(),
        community: member.community.clone(),
        category: input.category,
        title: input.title.trim().to_string(),
        details: input.details.trim().to_string(),
        starts_at: input.starts_at,
        minutes: input.minutes,
        place: input.place.trim().to_string(),
        payment: input.payment,
        status: Status::Open,
        counterpart: None,
        counterpart_name: None,
        transfer: None,
        created_at: now(),
    };
    if task.payment == Payment::Hours {
        let balance = ledger::get_account(&member.account)?.balance;
        if balance < task.credits() {
            return Err(Error::new(
                ErrorCode::LimitExceeded,
                format!("时间币不足：需要 {:.2}，现有 {:.2} (not enough hours)", task.credits() as f64 / 100.0, balance as f64 / 100.0),
            ));
        }
    }
    tasks().insert(&task.id, &task)?;
    Ok(Response::json(201, &task))
}

/// Change a task under compare-and-swap after `check` accepts it.
fn change_task(id: &str, check: impl Fn(&Task) -> Result<(), Error>, apply: impl Fn(&mut Task)) -> Result<Task, Error> {
    for _ in 0..5 {
        let found = tasks().get(id)?.ok_or_else(|| Error::not_found(format!("没有编号为 {id} 的需求或服务")))?;
        check(&found.value)?;
        let mut task = found.value;
        apply(&mut task);
        match tasks().replace(id, &task, found.version) {
            Ok(_) => return Ok(task),
            Err(e) if e.code == ErrorCode::Conflict => continue,
            Err(e) => return Err(e),
        }
    }
    Err(Error::conflict("正被他人同时修改，请重试 (changed concurrently; retry)"))
}

fn accept(id: &str) -> Result<Response, Error> {
    let (_, member) = require_member()?;
    let task = change_task(
        id,
        |task| {
            if task.status != Status::Open {
                return Err(Error::conflict("已被他人接单或已结束 (no longer open)"));
            }
            if task.owner == member.id {
                return Err(Error::invalid("不能接自己发布的 (that is your own)"));
            }
            if task.kind == Kind::Need && !member.roles.iter().any(|r| r == "volunteer") {
                return Err(Error::new(ErrorCode::PermissionDenied, "只有志愿者可以接单 (only volunteers take on needs)"));
            }
            Ok(())
        },
        |task| {
            task.status = Status::Accepted;
            task.counterpart = Some(member.id.clone());
            task.counterpart_name = Some(member.name.clone());
        },
    )?;
    Ok(Response::json(200, &task))
}

/// The recipient confirms the service was given: the volunteer's hours are credited. The
/// transfer's key is the task's, so a retried confirmation never pays twice.
fn confirm(id: &str) -> Result<Response, Error> {
    let (user, _) = require_member()?;
    let task = tasks().get(id)?.map(|t| t.value).ok_or_else(|| Error::not_found(format!("没有编号为 {id} 的需求或服务")))?;
    if task.recipient() != Some(user.id.as_str()) {
        return Err(Error::new(ErrorCode::PermissionDenied, "只有接受服务的一方可以确认完成 (only the recipient confirms)"));
    }
    if task.status == Status::Completed {
        return Ok(Response::json(200, &task));
    }
    if task.status != Status::Accepted {
        return Err(Error::conflict("尚未有人接单，或已取消 (not accepted, or cancelled)"));
    }
    let volunteer = task.volunteer().ok_or_else(|| Error::internal("accepted task without a volunteer"))?;
    let volunteer = members().get(volunteer)?.map(|m| m.value).ok_or_else(|| Error::internal("the volunteer is no longer a member"))?;
    let payer = match task.payment {
        Payment::Bank => issuer()?.id,
        Payment::Hours => members().get(&user.id)?.map(|m| m.value.account).ok_or_else(|| Error::internal("member without an account"))?,
    };
    let memo = format!("{} {}（{}）", task.category, task.title, task.id);
    let receipt = ledger::transfer(&payer, &volunteer.account, task.credits(), &format!("task-{}", task.id), &memo)?;
    let task = change_task(
        id,
        |task| {
            if matches!(task.status, Status::Accepted | Status::Completed) {
                Ok(())
            } else {
                Err(Error::conflict("状态已变化 (changed meanwhile)"))
            }
        },
        |task| {
            task.status = Status::Completed;
            task.transfer = Some(receipt.transfer_id.clone());
        },
    )?;
    Ok(Response::json(200, &task))
}

fn cancel(id: &str) -> Result<Response, Error> {
    let (_, member) = require_member()?;
    let task = change_task(
        id,
        |task| {
            if task.owner != member.id {
                return Err(Error::new(ErrorCode::PermissionDenied, "只有发布者可以取消 (only who posted it cancels)"));
            }
            if !matches!(task.status, Status::Open | Status::Accepted) {
                return Err(Error::conflict("已完成或已取消 (already done or cancelled)"));
            }
            Ok(())
        },
        |task| task.status = Status::Cancelled,
    )?;
    Ok(Response::json(200, &task))
}

#[derive(Deserialize)]
struct Donation {
    /// A member id, or `pool` for the community's pool.
    to: String,
    /// Hundredths of an hour.
    amount: i64,
    /// Chosen by the app per donation, so a retry never donates twice.
    key: String,
    #[serde(default)]
    memo: String,
}

fn donate(req: &Request) -> Result<Response, Error> {
    let (_, member) = require_member()?;
    let input: Donation = req.json()?;
    if input.key.trim().is_empty() {
        return Err(Error::invalid("key is required (one per donation)"));
    }
    let payee = if input.to == "pool" {
        ledger::account(HOURS, &ledger::pool(&format!("donations-{}", member.community)))?.id
    } else {
        members().get(&input.to)?.map(|m| m.value.account).ok_or_else(|| Error::not_found("没有这位会员 (no such member)"))?
    };
    let memo = if input.memo.trim().is_empty() { "捐赠时间币".to_string() } else { input.memo.trim().to_string() };
    let receipt = ledger::transfer(&member.account, &payee, input.amount, &format!("donate-{}-{}", member.id, input.key), &memo)?;
    Ok(Response::json(200, &json!({ "transfer_id": receipt.transfer_id, "balance": receipt.payer_balance, "replayed": receipt.replayed })))
}

fn me() -> Result<Response, Error> {
    let user = identity::require_user()?;
    let Some(member) = members().get(&user.id)?.map(|m| m.value) else {
        return Ok(Response::json(200, &json!({ "member": null })));
    };
    let account = ledger::get_account(&member.account)?;
    let history = ledger::history(&member.account, None, 20)?;
    let movements: Vec<_> = history.items.iter().map(|m| json!({ "amount": m.amount, "balance_after": m.balance_after, "memo": m.memo, "at": m.at })).collect();
    Ok(Response::json(200, &json!({ "member": member, "balance": account.balance, "movements": movements })))
}

/// Per community: members, needs posted, needs matched (accepted or done), services
/// completed and hours credited.
fn stats() -> Result<Response, Error> {
    let mut by_community: std::collections::BTreeMap<String, serde_json::Map<String, serde_json::Value>> = Default::default();
    let mut bump = |community: &str, key: &str, by: i64| {
        let entry = by_community.entry(community.to_string()).or_default();
        let now = entry.get(key).and_then(|v| v.as_i64()).unwrap_or(0);
        entry.insert(key.to_string(), json!(now + by));
    };
    for member in all_members()? {
        bump(&member.community, "members", 1);
    }
    for task in all_tasks(None)? {
        if task.kind == Kind::Need {
            bump(&task.community, "needs", 1);
            if matches!(task.status, Status::Accepted | Status::Completed) {
                bump(&task.community, "matched", 1);
            }
        } else {
            bump(&task.community, "offers", 1);
        }
        if task.status == Status::Completed {
            bump(&task.community, "completed", 1);
            bump(&task.community, "hours_credited", task.credits());
        }
    }
    let rows: Vec<_> = by_community
        .into_iter()
        .map(|(community, figures)| {
            let get = |k: &str| figures.get(k).and_then(|v| v.as_i64()).unwrap_or(0);
            json!({ "community": community, "members": get("members"), "needs": get("needs"), "offers": get("offers"), "matched": get("matched"),
                    "completed": get("completed"), "hours_credited": get("hours_credited") as f64 / 100.0 })
        })
        .collect();
    Ok(Response::json(200, &rows))
}

#[derive(Deserialize)]
struct DemoSeed {
    community: String,
    members: u32,
    /// The first day of the demo's needs and offers, `2026-11-25`; tomorrow if left out.
    #[serde(default)]
    first_day: Option<String>,
}

/// Demo members of one community with open needs and offers and some saved hours (one
/// call per community keeps each within the request deadline). County admins only; a
/// second call for the same community changes nothing.
fn seed_demo(req: &Request) -> Result<Response, Error> {
    let user = identity::require_user()?;
    if !identity::has_role(&user, "county-admin") {
        return Err(Error::new(ErrorCode::PermissionDenied, "only a county admin loads demo data"));
    }
    let input: DemoSeed = req.json()?;
    let first_day = match &input.first_day {
        Some(day) => chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").map_err(|_| Error::invalid("first_day as 2026-11-25"))?,
        None => NaiveDateTime::parse_from_str(&now(), "%Y-%m-%dT%H:%M").map(|t| t.date()).unwrap_or_default() + chrono::Days::new(1),
    };
    if !(1..=200).contains(&input.members) || input.community.trim().is_empty() {
        return Err(Error::invalid("a community and 1–200 members"));
    }
    let marker = format!("demo-seeded-{}", input.community);
    if counters().get(&marker)?.is_some() {
        return Ok(Response::json(200, &json!({ "seeded": false, "reason": "already seeded" })));
    }
    const SURNAMES: &[&str] = &["王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭"];
    const GIVEN: &[&str] = &["秀英", "建国", "桂兰", "志强", "丽华", "海燕", "国平", "玉梅", "晓东", "春生", "淑珍", "明辉", "佳怡", "子涵", "文静", "浩然"];
    const TITLES: &[(&str, &str)] = &[
        ("陪伴", "下午陪老人聊天散步"),
        ("助餐", "帮忙从食堂送午饭"),
        ("代购", "帮忙买菜和日用品"),
        ("保洁", "打扫卫生、擦窗户"),
        ("就医陪同", "陪同去医院复查"),
        ("理发", "上门理发"),
        ("维修", "修理水龙头和灯"),
        ("学习辅导", "辅导孩子功课"),
    ];
    let issuer = issuer()?;
    let mut state: u64 = input.community.bytes().fold(0x2026_1124_u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b))) | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let (mut made, mut posted) = (0, 0);
    let community = &input.community;
    for n in 0..input.members {
        let id = format!("demo-{community}-{n:03}");
        let roll = next() % 10;
        let roles: Vec<String> = match roll {
            0..=3 => vec!["volunteer".into()],
            4..=7 => vec!["elder".into()],
            _ => vec!["family".into(), "volunteer".into()],
        };
        let name = format!("{}{}", SURNAMES[(next() % SURNAMES.len() as u64) as usize], GIVEN[(next() % GIVEN.len() as u64) as usize]);
        let account = ledger::account(HOURS, &ledger::user(&id))?;
        let member =
            Member { id: id.clone(), name: name.clone(), community: community.clone(), roles: roles.clone(), account: account.id.clone(), joined_at: now() };
        members().put(&id, &member)?;
        made += 1;
        let volunteer = roles.iter().any(|r| r == "volunteer");
        if volunteer {
            let saved = (next() % 20 + 1) as i64 * PER_HOUR;
            ledger::transfer(&issuer.id, &account.id, saved, &format!("demo-saved-{id}"), "历史服务时长（演示数据）")?;
        }
        // Every other member has something open: elders a need, volunteers an offer.
        if next() % 2 == 0 {
            let (category, title) = TITLES[(next() % TITLES.len() as u64) as usize];
            let day = first_day + chrono::Days::new(next() % 7);
            let hour = 8 + next() % 10;
            let n = counters().update("task", |n| *n += 1)?.value;
            let task = Task {
                id: format!("T{n:06}"),
                kind: if volunteer { Kind::Offer } else { Kind::Need },
                owner: id.clone(),
                owner_name: name.clone(),
                community: community.clone(),
                category: category.into(),
                title: if volunteer { format!("可提供：{title}") } else { title.to_string() },
                details: String::new(),
                starts_at: format!("{}T{hour:02}:00", day.format("%Y-%m-%d")),
                minutes: 60 + (next() % 4) as u32 * 30,
                place: format!("{community} 社区"),
                payment: Payment::Bank,
                status: Status::Open,
                counterpart: None,
                counterpart_name: None,
                transfer: None,
                created_at: now(),
            };
            tasks().put(&task.id, &task)?;
            posted += 1;
        }
    }
    counters().put(&marker, &1)?;
    Ok(Response::json(200, &json!({ "seeded": true, "members": made, "tasks": posted })))
}

struct TimeBank;

impl Plugin for TimeBank {
    fn router() -> Router {
        Router::new()
            .get("/categories", |_, _| Ok(Response::json(200, &CATEGORIES)))
            .get("/me", |_, _| me())
            .post("/members", |req, _| join(req))
            .post("/tasks", |req, _| post_task(req))
            .get("/tasks", |req, _| {
                let (_, member) = require_member()?;
                let status = req.query_param("status").unwrap_or_else(|| "open".into());
                let kind = req.query_param("kind");
                let category = req.query_param("category");
                // The member's own community unless another (or `all`) is asked for.
                let community = req.query_param("community").unwrap_or_else(|| member.community.clone());
                let mut found: Vec<Task> = all_tasks(Some(("status", &status)))?
                    .into_iter()
                    .filter(|t| kind.as_deref().is_none_or(|k| serde_json::to_value(t.kind).ok().and_then(|v| v.as_str().map(|s| s == k)).unwrap_or(false)))
                    .filter(|t| category.as_deref().is_none_or(|c| t.category == c))
                    .filter(|t| community == "all" || t.community == community)
                    .collect();
                found.sort_by(|a, b| a.starts_at.cmp(&b.starts_at).then(a.id.cmp(&b.id)));
                Ok(Response::json(200, &found))
            })
            .get("/tasks/mine", |_, _| {
                let (_, member) = require_member()?;
                let mut mine = all_tasks(Some(("owner", &member.id)))?;
                mine.extend(all_tasks(Some(("counterpart", &member.id)))?);
                mine.sort_by(|a, b| b.id.cmp(&a.id));
                Ok(Response::json(200, &mine))
            })
            .get("/tasks/:id/matches", |_, params| {
                require_member()?;
                let id = params.require("id")?;
                let task = tasks().get(id)?.map(|t| t.value).ok_or_else(|| Error::not_found(format!("没有编号为 {id} 的需求或服务")))?;
                let open = all_tasks(Some(("status", "open")))?;
                Ok(Response::json(200, &matches(&task, &open)))
            })
            .post("/tasks/:id/accept", |_, params| accept(params.require("id")?))
            .post("/tasks/:id/confirm", |_, params| confirm(params.require("id")?))
            .post("/tasks/:id/cancel", |_, params| cancel(params.require("id")?))
            .post("/donations", |req, _| donate(req))
            .get("/stats", |_, _| stats())
            .post("/demo/seed", |req, _| seed_demo(req))
    }
}

linli_sdk::export!(TimeBank);

#[cfg(test)]
mod tests {
    use super::*;

    fn task(id: &str, kind: Kind, category: &str, community: &str, starts_at: &str) -> Task {
        Task {
            id: id.into(),
            kind,
            owner: format!("owner-{id}"),
            owner_name: String::new(),
            community: community.into(),
            category: category.into(),
            title: "t".into(),
            details: String::new(),
            starts_at: starts_at.into(),
            minutes: 90,
            place: "p".into(),
            payment: Payment::Bank,
            status: Status::Open,
            counterpart: None,
            counterpart_name: None,
            transfer: None,
            created_at: String::new(),
        }
    }

    #[test]
    fn matches_are_the_other_kind_in_the_same_category_community_and_day_nearest_first() {
        let need = task("N", Kind::Need, "陪伴", "xingfu", "2026-11-25T09:00");
        let offers = vec![
            task("A", Kind::Offer, "陪伴", "xingfu", "2026-11-25T15:00"),
            task("B", Kind::Offer, "陪伴", "xingfu", "2026-11-25T10:00"),
            task("C", Kind::Offer, "助餐", "xingfu", "2026-11-25T09:00"),
            task("D", Kind::Offer, "陪伴", "heping", "2026-11-25T09:00"),
            task("E", Kind::Offer, "陪伴", "xingfu", "2026-11-27T09:00"),
            task("F", Kind::Need, "陪伴", "xingfu", "2026-11-25T09:00"),
        ];
        let found: Vec<&str> = matches(&need, &offers).iter().map(|t| t.id.as_str()).collect();
        assert_eq!(found, vec!["B", "A"]);
    }

    #[test]
    fn an_hour_of_service_is_one_credit() {
        let mut t = task("N", Kind::Need, "陪伴", "xingfu", "2026-11-25T09:00");
        assert_eq!(t.credits(), 150);
        t.minutes = 45;
        assert_eq!(t.credits(), 75);
        t.minutes = 20;
        assert_eq!(t.credits(), 33);
    }
}
