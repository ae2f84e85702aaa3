//! The legal-aid plugin end to end: apply (with consent to the ID number), receipt, review
//! queue with the 7-working-day clock stopped while documents are missing, approval and a
//! lawyer's case, progress, closing and rating; rejection with a reason the resident sees.
use linli_tests::*;
use serde_json::{json, Value};

const PASSWORD: &str = "linli-test-2026";

fn account(kind: &str, phone: &str, name: &str, extra: Value) -> Value {
    let mut a = json!({ "kind": kind, "phone": phone, "display_name": name, "password": PASSWORD });
    if let (Some(a), Some(extra)) = (a.as_object_mut(), extra.as_object()) {
        a.extend(extra.clone());
    }
    a
}

async fn a_case_from_application_to_rating(host: TestHost) -> anyhow::Result<()> {
    let vendor = Vendor::new("linli")?;
    host.trust(&vendor).await?;
    host.publish(&vendor, "legal-aid", &["data", "identity", "identity:real-name", "identity:id-number"], &["demo-county"]).await?;
    let record = format!("姓名,身份证号,手机号,网格\n王秀英,{},13800000001,xingfu-g1\n", id_number("33078219560312002"));
    assert_eq!(host.import_csv("residents", "xingfu", &record).await?["status"], "done");
    let applicant = host.person(account("resident", "13800000001", "王阿姨", json!({ "tenant_id": "xingfu" }))).await?;
    let neighbour = host.person(account("resident", "13800000009", "邻居", json!({ "tenant_id": "xingfu" }))).await?;
    let reviewer = host.person(account("staff", "13900000001", "赵审查员", json!({ "roles": [{ "role": "community-worker", "tenant": "xingfu" }] }))).await?;
    let lawyer = host.person(account("staff", "13900000002", "陈律师", json!({ "roles": [{ "role": "lawyer", "tenant": "demo-county" }] }))).await?;
    let base = "/t/xingfu/p/legal-aid";
    let form = json!({ "category": "劳动争议", "facts": "公司拖欠三个月工资共计一万二千元，多次催要未果。", "documents": ["劳动合同", "工资条"] });

    // Bad input is refused before anything else.
    let bad = applicant.post(&format!("{base}/applications"), json!({ "category": "打官司", "facts": "短" })).await?;
    assert_eq!(bad.status, 400);
    // The ID number needs consent; the plugin sends the resident to the consent page.
    let ask = applicant.post(&format!("{base}/applications"), form.clone()).await?;
    assert_eq!((ask.status, ask.error_code().as_str()), (403, "consent-required"), "{}", ask.text);
    assert_eq!(ask.json()["error"]["consent_url"], "/app/#/consent/legal-aid");
    applicant.post("/api/consents/legal-aid", json!({ "fields": ["real-name", "id-number"] })).await?.expect_status(204)?;
    let app = applicant.post(&format!("{base}/applications"), form.clone()).await?.expect_status(201)?.json();
    let receipt = app["receipt"].as_str().unwrap_or_default().to_string();
    assert!(receipt.starts_with("FY") && receipt.ends_with("-0001"), "{receipt}");
    assert_eq!((app["applicant_name"].as_str(), app["review_days_left"].as_i64()), (Some("王秀英"), Some(7)));
    assert_eq!(app["id_number_masked"], "330782********0020");
    assert!(app.get("id_number").is_none(), "the full ID number stays in the plugin");

    // Nobody else sees it; the resident cannot review.
    assert_eq!(neighbour.get(&format!("{base}/applications/{receipt}")).await?.status, 404);
    assert_eq!(applicant.get(&format!("{base}/queue")).await?.status, 403);

    // Review: missing documents stop the clock; the resident adds them and it runs again.
    let queue = reviewer.get(&format!("{base}/queue")).await?.expect_status(200)?.json();
    assert_eq!(queue[0]["receipt"], receipt.as_str());
    let paused = reviewer
        .post(&format!("{base}/applications/{receipt}/request-documents"), json!({ "missing": ["欠薪证明"], "note": "请补充" }))
        .await?
        .expect_status(200)?
        .json();
    assert_eq!((paused["status"].as_str(), paused["clock_paused"].as_bool()), (Some("awaiting-documents"), Some(true)));
    let lawyers = reviewer.get(&format!("{base}/lawyers")).await?.expect_status(200)?.json();
    let lawyer_id = lawyers[0]["id"].as_str().unwrap_or_default().to_string();
    assert_eq!(lawyers[0]["name"], "陈律师");
    let too_early = reviewer.post(&format!("{base}/applications/{receipt}/approve"), json!({ "lawyer": lawyer_id })).await?;
    assert_eq!(too_early.status, 409, "documents first");
    let resumed = applicant.post(&format!("{base}/applications/{receipt}/documents"), json!({ "documents": ["欠薪证明"] })).await?.expect_status(200)?.json();
    assert_eq!((resumed["status"].as_str(), resumed["clock_paused"].as_bool()), (Some("submitted"), Some(false)));

    // Approve and assign; the lawyer works the case; the resident rates it once.
    let not_a_lawyer = reviewer.post(&format!("{base}/applications/{receipt}/approve"), json!({ "lawyer": "someone" })).await?;
    assert_eq!(not_a_lawyer.status, 400);
    let assigned = reviewer.post(&format!("{base}/applications/{receipt}/approve"), json!({ "lawyer": lawyer_id })).await?.expect_status(200)?.json();
    assert_eq!((assigned["status"].as_str(), assigned["lawyer_name"].as_str()), (Some("assigned"), Some("陈律师")));
    let cases = lawyer.get(&format!("{base}/cases")).await?.expect_status(200)?.json();
    assert_eq!(cases[0]["receipt"], receipt.as_str());
    assert_eq!(applicant.post(&format!("{base}/applications/{receipt}/progress"), json!({ "note": "x" })).await?.status, 403);
    lawyer.post(&format!("{base}/applications/{receipt}/progress"), json!({ "note": "已向劳动仲裁委提交仲裁申请" })).await?.expect_status(200)?;
    assert_eq!(applicant.post(&format!("{base}/applications/{receipt}/rate"), json!({ "rating": 5 })).await?.status, 409, "not closed yet");
    lawyer.post(&format!("{base}/applications/{receipt}/close"), json!({ "note": "调解成功，工资已追回" })).await?.expect_status(200)?;
    let rated = applicant.post(&format!("{base}/applications/{receipt}/rate"), json!({ "rating": 5, "comment": "感谢" })).await?.expect_status(200)?.json();
    assert_eq!((rated["status"].as_str(), rated["rating"].as_u64()), (Some("closed"), Some(5)));
    let steps: Vec<&str> = rated["steps"].as_array().map(|s| s.iter().filter_map(|x| x["action"].as_str()).collect()).unwrap_or_default();
    assert_eq!(steps, ["提交申请", "要求补充材料（审查时限暂停）", "补充材料（审查时限恢复）", "审查通过，指派律师", "办理进度", "结案", "申请人评价"]);
    assert_eq!(applicant.post(&format!("{base}/applications/{receipt}/rate"), json!({ "rating": 1 })).await?.status, 409);

    // A second application is rejected with a reason the resident reads.
    let second = applicant.post(&format!("{base}/applications"), form).await?.expect_status(201)?.json();
    let receipt2 = second["receipt"].as_str().unwrap_or_default().to_string();
    assert!(receipt2.ends_with("-0002"));
    assert_eq!(reviewer.post(&format!("{base}/applications/{receipt2}/reject"), json!({ "reason": "" })).await?.status, 400);
    reviewer.post(&format!("{base}/applications/{receipt2}/reject"), json!({ "reason": "同一事项已在办理中" })).await?.expect_status(200)?;
    let mine = applicant.get(&format!("{base}/applications/mine")).await?.expect_status(200)?.json();
    assert_eq!((mine[0]["status"].as_str(), mine[0]["reject_reason"].as_str()), (Some("rejected"), Some("同一事项已在办理中")));
    assert_eq!(mine.as_array().map(Vec::len), Some(2));
    host.stop().await;
    Ok(())
}
on_both_databases!(legal_aid_case, a_case_from_application_to_rating);
