//! 法律援助 (legal aid): a resident applies and gets a receipt number; reviewers (community
//! workers and admins above them) review within 7 working days — the clock stops while
//! documents are missing —, then approve and assign a lawyer or reject with a reason; the
//! lawyer records progress and closes the case; the resident rates it.
use legal_aid_calendar as calendar;

use calendar::{Calendar, ReviewClock};
use chrono::NaiveDate;
use linli_sdk::identity::{ProfileField, User};
use linli_sdk::prelude::*;

pub const CATEGORIES: &[&str] = &["劳动争议", "婚姻家庭", "赡养抚养", "人身损害", "农民工讨薪", "消费维权", "房屋土地", "其他"];
const REVIEWER_ROLES: &[&str] = &["community-worker", "street-admin", "county-admin"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Waiting for review.
    Submitted,
    /// The reviewer asked for documents; the review clock is stopped.
    AwaitingDocuments,
    /// Approved and assigned to a lawyer.
    Assigned,
    Closed,
    Rejected,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Step {
    pub at: String,
    pub by: String,
    pub action: String,
    #[serde(default)]
    pub note: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Application {
    pub receipt: String,
    pub applicant: String,
    pub applicant_name: String,
    pub id_number: String,
    pub category: String,
    pub facts: String,
    pub documents: Vec<String>,
    pub status: Status,
    pub submitted_on: NaiveDate,
    pub clock: ReviewClock,
    #[serde(default)]
    pub missing_documents: Vec<String>,
    #[serde(default)]
    pub lawyer: Option<String>,
    #[serde(default)]
    pub lawyer_name: Option<String>,
    #[serde(default)]
    pub reject_reason: Option<String>,
    #[serde(default)]
    pub rating: Option<u8>,
    #[serde(default)]
    pub rating_comment: Option<String>,
    pub steps: Vec<Step>,
}

fn applications() -> Collection<Application> {
    Collection::new("applications")
}

fn settings() -> Collection<Calendar> {
    Collection::new("settings")
}

fn counters() -> Collection<u64> {
    Collection::new("counters")
}

fn calendar() -> Result<Calendar, Error> {
    Ok(settings().get("calendar")?.map(|v| v.value).unwrap_or_else(Calendar::china_2026))
}

/// Now in China Standard Time.
fn now() -> chrono::NaiveDateTime {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or_default();
    chrono::DateTime::from_timestamp(secs + 8 * 3600, 0).unwrap_or_default().naive_utc()
}

fn today() -> NaiveDate {
    now().date()
}

fn step(by: &User, action: &str, note: &str) -> Step {
    Step { at: now().format("%Y-%m-%d %H:%M").to_string(), by: by.display_name.clone(), action: action.into(), note: note.into() }
}

fn is_reviewer(user: &User) -> bool {
    REVIEWER_ROLES.iter().any(|r| identity::has_role(user, r))
}

fn require_reviewer() -> Result<User, Error> {
    let user = identity::require_user()?;
    if !is_reviewer(&user) {
        return Err(Error::new(ErrorCode::PermissionDenied, "只有审查人员可以办理 (reviewers only)"));
    }
    Ok(user)
}

/// The next receipt number of the day: `FY20261124-0001`.
fn next_receipt() -> Result<String, Error> {
    let day = today().format("%Y%m%d").to_string();
    let n = counters().update(&format!("receipt-{day}"), |n| *n += 1)?.value;
    Ok(format!("FY{day}-{n:04}"))
}

/// The application, for whoever may see it: the applicant, reviewers, the assigned lawyer.
fn visible(receipt: &str, user: &User) -> Result<linli_sdk::data::Versioned<Application>, Error> {
    let found = applications().get(receipt)?.ok_or_else(|| Error::not_found(format!("没有受理号为 {receipt} 的申请")))?;
    let app = &found.value;
    if app.applicant == user.id || is_reviewer(user) || app.lawyer.as_deref() == Some(user.id.as_str()) {
        Ok(found)
    } else {
        Err(Error::not_found(format!("没有受理号为 {receipt} 的申请")))
    }
}

/// Change an application under compare-and-swap, after `check` accepts its current state.
fn change(
    receipt: &str,
    user: &User,
    check: impl Fn(&Application) -> Result<(), Error>,
    apply: impl Fn(&mut Application, &Calendar),
) -> Result<Response, Error> {
    let calendar = calendar()?;
    for _ in 0..5 {
        let found = visible(receipt, user)?;
        check(&found.value)?;
        let mut app = found.value;
        apply(&mut app, &calendar);
        match applications().replace(receipt, &app, found.version) {
            Ok(_) => return Ok(Response::json(200, &view(&app, &calendar))),
            Err(e) if e.code == ErrorCode::Conflict => continue,
            Err(e) => return Err(e),
        }
    }
    Err(Error::conflict("申请正被他人同时修改，请重试 (changed concurrently; retry)"))
}

fn view(app: &Application, calendar: &Calendar) -> serde_json::Value {
    let mut value = serde_json::to_value(app).unwrap_or_default();
    if let Some(obj) = value.as_object_mut() {
        let reviewing = matches!(app.status, Status::Submitted | Status::AwaitingDocuments);
        obj.insert("review_days_left".into(), if reviewing { json!(app.clock.days_left(calendar, today())) } else { serde_json::Value::Null });
        obj.insert("review_due".into(), json!(app.clock.due));
        obj.insert("clock_paused".into(), json!(app.clock.paused_with.is_some()));
        // The applicant's ID number is shown masked outside the review.
        if let Some(id) = app.id_number.get(..6) {
            obj.insert("id_number_masked".into(), json!(format!("{id}********{}", app.id_number.get(14..).unwrap_or(""))));
        }
        obj.remove("id_number");
    }
    value
}

fn status_is(expected: &'static [Status]) -> impl Fn(&Application) -> Result<(), Error> {
    move |app| {
        if expected.contains(&app.status) {
            Ok(())
        } else {
            Err(Error::conflict(format!("申请当前状态为 {:?}，不能进行此操作 (not allowed in this state)", app.status)))
        }
    }
}

#[derive(Deserialize)]
struct NewApplication {
    category: String,
    facts: String,
    #[serde(default)]
    documents: Vec<String>,
}

fn apply(req: &Request) -> Result<Response, Error> {
    let user = identity::require_user()?;
    let input: NewApplication = req.json()?;
    if !CATEGORIES.contains(&input.category.as_str()) {
        return Err(Error::invalid(format!("案件类别须为：{}", CATEGORIES.join("、"))));
    }
    let facts = input.facts.trim();
    if facts.chars().count() < 10 || facts.chars().count() > 5000 {
        return Err(Error::invalid("请用 10–5000 字说明事实与请求 (describe the facts in 10–5000 characters)"));
    }
    let profile = match identity::profile(&[ProfileField::RealName, ProfileField::IdNumber]) {
        Ok(p) => p,
        Err(e) if e.code == ErrorCode::ConsentRequired => {
            let body = json!({ "error": { "code": "consent-required", "message": e.message, "consent_url": identity::consent_page("legal-aid") } });
            return Ok(Response::json(403, &body));
        }
        Err(e) => return Err(e),
    };
    let value = |f: ProfileField| profile.iter().find(|p| p.field == f).map(|p| p.value.clone()).unwrap_or_default();
    let calendar = calendar()?;
    let receipt = next_receipt()?;
    let submitted_on = today();
    let app = Application {
        receipt: receipt.clone(),
        applicant: user.id.clone(),
        applicant_name: value(ProfileField::RealName),
        id_number: value(ProfileField::IdNumber),
        category: input.category,
        facts: facts.to_string(),
        documents: input.documents.into_iter().map(|d| d.trim().to_string()).filter(|d| !d.is_empty()).collect(),
        status: Status::Submitted,
        submitted_on,
        clock: ReviewClock::start(&calendar, submitted_on),
        missing_documents: vec![],
        lawyer: None,
        lawyer_name: None,
        reject_reason: None,
        rating: None,
        rating_comment: None,
        steps: vec![step(&user, "提交申请", "")],
    };
    applications().insert(&receipt, &app)?;
    log::info(&format!("application {receipt} submitted"));
    Ok(Response::json(201, &view(&app, &calendar)))
}

fn list(field: &str, value: &str, keep: impl Fn(&Application) -> bool) -> Result<Vec<Application>, Error> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = applications().query(field, &value, cursor.as_deref(), 500)?;
        out.extend(page.items.into_iter().map(|v| v.value).filter(|a| keep(a)));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return Ok(out),
        }
    }
}

#[derive(Deserialize)]
struct Note {
    #[serde(default)]
    note: String,
}

struct LegalAid;

impl Plugin for LegalAid {
    fn router() -> Router {
        Router::new()
            .get("/categories", |_, _| Ok(Response::json(200, &CATEGORIES)))
            .get("/whoami", |_, _| {
                let user = identity::current_user()?;
                let roles = user.as_ref().map(|u| {
                    json!({
                        "name": u.display_name,
                        "reviewer": is_reviewer(u),
                        "lawyer": identity::has_role(u, "lawyer"),
                    })
                });
                Ok(Response::json(200, &roles))
            })
            .post("/applications", |req, _| apply(req))
            .get("/applications/mine", |_, _| {
                let user = identity::require_user()?;
                let calendar = calendar()?;
                let mine = list("applicant", &user.id, |_| true)?;
                Ok(Response::json(200, &mine.iter().rev().map(|a| view(a, &calendar)).collect::<Vec<_>>()))
            })
            .get("/applications/:id", |_, params| {
                let user = identity::require_user()?;
                let found = visible(params.require("id")?, &user)?;
                Ok(Response::json(200, &view(&found.value, &calendar()?)))
            })
            .get("/queue", |_, _| {
                require_reviewer()?;
                let calendar = calendar()?;
                let mut open = list("status", "submitted", |_| true)?;
                open.extend(list("status", "awaiting-documents", |_| true)?);
                // Most urgent first; a stopped clock waits for the resident.
                open.sort_by_key(|a| (a.clock.paused_with.is_some(), a.clock.days_left(&calendar, today())));
                Ok(Response::json(200, &open.iter().map(|a| view(a, &calendar)).collect::<Vec<_>>()))
            })
            .get("/lawyers", |_, _| {
                require_reviewer()?;
                let lawyers = identity::staff_with_role("lawyer")?;
                Ok(Response::json(200, &lawyers.iter().map(|l| json!({ "id": l.id, "name": l.display_name })).collect::<Vec<_>>()))
            })
            .post("/applications/:id/request-documents", |req, params| {
                let user = require_reviewer()?;
                #[derive(Deserialize)]
                struct Missing {
                    missing: Vec<String>,
                    #[serde(default)]
                    note: String,
                }
                let input: Missing = req.json()?;
                if input.missing.iter().all(|m| m.trim().is_empty()) {
                    return Err(Error::invalid("请列出缺少的材料 (list the missing documents)"));
                }
                change(params.require("id")?, &user, status_is(&[Status::Submitted, Status::AwaitingDocuments]), |app, cal| {
                    app.clock.pause(cal, today());
                    app.status = Status::AwaitingDocuments;
                    app.missing_documents = input.missing.clone();
                    app.steps.push(step(&user, "要求补充材料（审查时限暂停）", &format!("{}；{}", input.missing.join("、"), input.note)));
                })
            })
            .post("/applications/:id/documents", |req, params| {
                let user = identity::require_user()?;
                #[derive(Deserialize)]
                struct More {
                    documents: Vec<String>,
                }
                let input: More = req.json()?;
                let receipt = params.require("id")?;
                let own = visible(receipt, &user)?.value.applicant == user.id;
                if !own {
                    return Err(Error::new(ErrorCode::PermissionDenied, "只有申请人可以补充材料 (only the applicant adds documents)"));
                }
                change(receipt, &user, status_is(&[Status::AwaitingDocuments]), |app, cal| {
                    app.documents.extend(input.documents.iter().cloned());
                    app.missing_documents.clear();
                    app.clock.resume(cal, today());
                    app.status = Status::Submitted;
                    app.steps.push(step(&user, "补充材料（审查时限恢复）", &input.documents.join("、")));
                })
            })
            .post("/applications/:id/approve", |req, params| {
                let user = require_reviewer()?;
                #[derive(Deserialize)]
                struct Assign {
                    lawyer: String,
                }
                let input: Assign = req.json()?;
                let lawyer = identity::staff_with_role("lawyer")?
                    .into_iter()
                    .find(|l| l.id == input.lawyer)
                    .ok_or_else(|| Error::invalid("请选择本辖区的律师 (choose a lawyer of this area)"))?;
                change(params.require("id")?, &user, status_is(&[Status::Submitted]), |app, _| {
                    app.status = Status::Assigned;
                    app.lawyer = Some(lawyer.id.clone());
                    app.lawyer_name = Some(lawyer.display_name.clone());
                    app.steps.push(step(&user, "审查通过，指派律师", &lawyer.display_name));
                })
            })
            .post("/applications/:id/reject", |req, params| {
                let user = require_reviewer()?;
                #[derive(Deserialize)]
                struct Reason {
                    reason: String,
                }
                let input: Reason = req.json()?;
                if input.reason.trim().chars().count() < 4 {
                    return Err(Error::invalid("请写明不予援助的理由，申请人会看到 (give the reason; the applicant sees it)"));
                }
                change(params.require("id")?, &user, status_is(&[Status::Submitted, Status::AwaitingDocuments]), |app, _| {
                    app.status = Status::Rejected;
                    app.reject_reason = Some(input.reason.trim().to_string());
                    app.steps.push(step(&user, "不予援助", input.reason.trim()));
                })
            })
            .get("/cases", |_, _| {
                let user = identity::require_user()?;
                let calendar = calendar()?;
                let cases = list("lawyer", &user.id, |_| true)?;
                Ok(Response::json(200, &cases.iter().map(|a| view(a, &calendar)).collect::<Vec<_>>()))
            })
            .post("/applications/:id/progress", |req, params| {
                let user = identity::require_user()?;
                let input: Note = req.json()?;
                if input.note.trim().is_empty() {
                    return Err(Error::invalid("请填写办理进度 (write the progress)"));
                }
                change(params.require("id")?, &user, assigned_to(&user), |app, _| app.steps.push(step(&user, "办理进度", input.note.trim())))
            })
            .post("/applications/:id/close", |req, params| {
                let user = identity::require_user()?;
                let input: Note = req.json()?;
                change(params.require("id")?, &user, assigned_to(&user), |app, _| {
                    app.status = Status::Closed;
                    app.steps.push(step(&user, "结案", input.note.trim()));
                })
            })
            .post("/applications/:id/rate", |req, params| {
                let user = identity::require_user()?;
                #[derive(Deserialize)]
                struct Rating {
                    rating: u8,
                    #[serde(default)]
                    comment: String,
                }
                let input: Rating = req.json()?;
                if !(1..=5).contains(&input.rating) {
                    return Err(Error::invalid("评分为 1–5 (rating is 1–5)"));
                }
                let applicant = user.id.clone();
                change(
                    params.require("id")?,
                    &user,
                    move |app| {
                        if app.applicant != applicant {
                            return Err(Error::new(ErrorCode::PermissionDenied, "只有申请人可以评价 (only the applicant rates)"));
                        }
                        if app.rating.is_some() {
                            return Err(Error::conflict("已经评价过了 (already rated)"));
                        }
                        status_is(&[Status::Closed])(app)
                    },
                    |app, _| {
                        app.rating = Some(input.rating);
                        app.rating_comment = Some(input.comment.clone());
                        app.steps.push(step(&user, "申请人评价", &format!("{} 星 {}", input.rating, input.comment)));
                    },
                )
            })
            .get("/calendar", |_, _| Ok(Response::json(200, &calendar()?)))
            .put("/calendar", |req, _| {
                let user = identity::require_user()?;
                if !identity::has_role(&user, "county-admin") && !identity::has_role(&user, "street-admin") {
                    return Err(Error::new(ErrorCode::PermissionDenied, "工作日历由县、镇街管理员维护 (county or street admins only)"));
                }
                let cal: Calendar = req.json()?;
                settings().put("calendar", &cal)?;
                Ok(Response::json(200, &cal))
            })
    }
}

fn assigned_to(user: &User) -> impl Fn(&Application) -> Result<(), Error> {
    let id = user.id.clone();
    move |app| {
        if app.lawyer.as_deref() != Some(id.as_str()) {
            return Err(Error::new(ErrorCode::PermissionDenied, "只有承办律师可以操作 (only the assigned lawyer)"));
        }
        status_is(&[Status::Assigned])(app)
    }
}

linli_sdk::export!(LegalAid);
