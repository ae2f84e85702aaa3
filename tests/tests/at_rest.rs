//! What a county holds, as someone who copied the database would find it: the raw SQLite
//! file (with its write-ahead log) and a PostgreSQL dump after the demo county's import hold
//! no ID number, no phone number, no unkeyed hash of one, no real name or birth date, and no
//! private key — while staff still find, log in, de-duplicate and audit by those values.
//! Both databases.
use linli_tests::*;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::HashSet;

const PASSWORD: &str = "linli-test-2026";

/// Every run of ASCII digits (an `X` may close one) in `bytes`: the candidates a thief
/// would grep a copied file for.
fn digit_runs(bytes: &[u8]) -> HashSet<String> {
    let mut runs = HashSet::new();
    let mut current = String::new();
    for &b in bytes {
        if b.is_ascii_digit() || (b == b'X' && current.len() == 17) {
            current.push(b as char);
        } else {
            if current.len() >= 11 {
                runs.insert(current.clone());
            }
            current.clear();
        }
    }
    if current.len() >= 11 {
        runs.insert(current);
    }
    runs
}

/// The database as a thief who copied it has it.
async fn stolen_copy(host: &TestHost) -> anyhow::Result<Vec<u8>> {
    if host.database_url.starts_with("sqlite") {
        let mut bytes = Vec::new();
        for name in ["linli.db", "linli.db-wal"] {
            let path = host.data_dir.join(name);
            if path.exists() {
                bytes.extend(std::fs::read(path)?);
            }
        }
        anyhow::ensure!(bytes.len() > 100_000, "the SQLite file holds the import ({} bytes)", bytes.len());
        return Ok(bytes);
    }
    let (base, schema) =
        linli_host::store::split_scratch_postgres_url(&host.database_url).ok_or_else(|| anyhow::anyhow!("no schema in {}", host.database_url))?;
    let dump = std::process::Command::new("pg_dump").args(["--no-owner", "--schema", schema, base]).output()?;
    anyhow::ensure!(dump.status.success(), "pg_dump: {}", String::from_utf8_lossy(&dump.stderr));
    anyhow::ensure!(String::from_utf8_lossy(&dump.stdout).contains("base_residents"), "the dump holds the residents");
    Ok(dump.stdout)
}

async fn a_copied_database_gives_nothing_away(host: TestHost) -> anyhow::Result<()> {
    // The demo county's residents (600 a grid: 3,000 in all), imported as the demo does.
    let (ids, phones): (Vec<String>, Vec<String>) = host.import_demo_residents(600, 7).await?.into_iter().unzip();
    assert!(ids.len() >= 3000, "{} residents", ids.len());
    let county_admin = host.person(json!({ "kind": "staff", "phone": "13900000004", "display_name": "县管理员", "password": PASSWORD, "roles": [{ "role": "county-admin", "tenant": DEMO_COUNTY }] })).await?;

    // Everything still works by the values that are sealed.
    let again = host.import_csv("residents", "xingfu", &format!("姓名,身份证号,手机号,网格\n又一个,{},{},xingfu-g1\n", ids[0], phones[0])).await?;
    assert_eq!(again["status"], "rejected", "the same ID number again is a duplicate: {again}");
    assert!(again["problems"].to_string().contains("already"), "{again}");
    let login = host.client.post(format!("{}/api/auth/login", host.url)).json(&json!({ "phone": "13900000004", "password": PASSWORD })).send().await?;
    Reply::from(login).await?.expect_status(200)?;
    let list = county_admin.get("/api/base/residents?limit=5").await?.expect_status(200)?.json();
    let first = list["items"][0].clone();
    // The grid's worker opens the full record (admins see it masked).
    let grid = first["tenant_id"].as_str().unwrap_or("").to_string();
    let grid_worker = host.person(json!({ "kind": "staff", "phone": "13900000002", "display_name": "网格员", "password": PASSWORD, "roles": [{ "role": "grid-worker", "tenant": grid }] })).await?;
    let detail = grid_worker.get(&format!("/api/base/residents/{}", first["id"].as_str().unwrap_or(""))).await?.expect_status(200)?.json();
    let clear_id = detail["id_number"].as_str().unwrap_or("").to_string();
    assert!(ids.contains(&clear_id), "staff read the clear ID number: {detail}");
    assert!(phones.contains(&detail["phone"].as_str().unwrap_or("").to_string()), "{detail}");
    // Found by the whole name (a blind index), and by age (the birth year, then the date).
    let name = detail["real_name"].as_str().unwrap_or("?");
    let by_name = grid_worker.get(&format!("/api/base/residents?name={}", name)).await?.expect_status(200)?.json();
    assert!(by_name["items"].as_array().is_some_and(|items| items.iter().any(|r| r["id"] == first["id"])), "{by_name}");
    let part = name.chars().take(1).collect::<String>();
    let by_part = grid_worker.get(&format!("/api/base/residents?name={}", part)).await?.expect_status(200)?.json();
    assert!(
        by_part["items"].as_array().is_some_and(|items| items.iter().all(|r| r["real_name"] == part.as_str())),
        "a part of a name finds only that whole name: {by_part}"
    );
    let age = detail["age"].as_u64().unwrap_or(0);
    let same_age = grid_worker.get(&format!("/api/base/residents?min_age={age}&max_age={age}&limit=500")).await?.expect_status(200)?.json();
    let items = same_age["items"].as_array().cloned().unwrap_or_default();
    assert!(items.iter().any(|r| r["id"] == first["id"]) && items.iter().all(|r| r["age"] == age), "ages filter on the opened dates: {same_age}");
    let audit: Value = county_admin.get("/api/audit?field=id-number").await?.expect_status(200)?.json();
    assert!(audit.to_string().contains(first["id"].as_str().unwrap_or("?")), "the read is audited: {audit}");

    // A smoke detector in that resident's home raises an alarm: the device's location, the
    // alarm, its event and the reading all name the home, and are sealed like the rest.
    // Located by grid and address, as the residents' CSV gives it: the room is found by its
    // blind index.
    let address = detail["address"].as_str().unwrap_or("?").to_string();
    let (building, rest) = address.split_once('栋').unwrap_or(("?", "?"));
    let (unit, room) = rest.split_once("单元").unwrap_or(("?", "?"));
    let house = format!("{grid}/{building}-{unit}-{room}");
    host.admin("POST", "/alarm-rules", Some(linli_tests::lab::instant_rule("smoke-at-rest", "烟雾报警", "smoke-detector", "smoke")))
        .await?
        .expect_status(200)?;
    let registered = host
        .admin("POST", "/devices", Some(json!({ "id": "smoke-at-rest", "device_type": "smoke-detector", "location": format!("house:{house}") })))
        .await?
        .expect_status(201)?
        .json();
    assert_eq!(registered["device"]["location"]["label"], address.as_str(), "{registered}");
    let secret = registered["secret"].as_str().unwrap_or("?");
    let reading = json!({ "smoke": 1, "battery": 87.654321 }).to_string();
    let sent = host.client.post(format!("{}/api/devices/smoke-at-rest/telemetry", host.url)).bearer_auth(secret).body(reading).send().await?;
    assert_eq!(sent.status(), 202);
    linli_tests::lab::wait_until("the smoke raises an alarm at the home", || async {
        Ok(host.alarms("active").await?.iter().any(|a| a["device_id"] == "smoke-at-rest" && a["location"]["label"] == address.as_str()))
    })
    .await?;
    // The reading is stored by the batch writer, which may come after the alarm: it opens.
    linli_tests::lab::wait_until("the reading is stored and opens", || async {
        Ok(host.admin("GET", "/devices/smoke-at-rest", None).await?.expect_status(200)?.json()["latest"]["battery"] == 87.654321)
    })
    .await?;

    // A resident whose account phone is in the base data gets their record through it
    // (the account and the record meet by blind index).
    let phone = &phones[0];
    host.admin("POST", "/accounts", Some(json!({ "kind": "resident", "phone": phone, "display_name": "居民", "password": PASSWORD, "tenant_id": "xingfu" })))
        .await?
        .expect_status(201)?;
    let duplicate = host
        .admin("POST", "/accounts", Some(json!({ "kind": "resident", "phone": phone, "display_name": "又一个", "password": PASSWORD, "tenant_id": "xingfu" })))
        .await?;
    assert_eq!(duplicate.status, 409, "phones stay unique through the blind index");

    // Now the thief's view.
    let copy = stolen_copy(&host).await?;
    let runs = digit_runs(&copy);
    let leaked_ids: Vec<&String> = ids.iter().filter(|id| runs.contains(*id)).collect();
    let leaked_phones: Vec<&String> = phones.iter().filter(|p| runs.contains(*p)).take(5).collect();
    assert!(leaked_ids.is_empty(), "{} ID numbers in clear, e.g. {:?}", leaked_ids.len(), leaked_ids.first());
    assert!(leaked_phones.is_empty(), "phone numbers in clear: {leaked_phones:?}");
    let text = String::from_utf8_lossy(&copy);
    // The copy is the real thing: the grid's name (not sealed) is in it, and the search
    // finds a number where one stands in clear.
    assert!(text.contains("第一网格"), "the copy holds the tenants' rows");
    for resident in list["items"].as_array().into_iter().flatten() {
        let name = resident["real_name"].as_str().unwrap_or("?");
        assert!(!text.contains(name), "a real name in clear: {name}");
    }
    let birth_date = detail["birth_date"].as_str().unwrap_or("?");
    assert!(birth_date.len() == 10 && !text.contains(birth_date), "a birth date in clear: {birth_date}");
    assert!(digit_runs(format!("x{}y,{}", phones[0], ids[0]).as_bytes()).is_superset(&HashSet::from([phones[0].clone(), ids[0].clone()])));
    assert!(!text.contains("13900000004"), "a staff phone in clear");
    assert!(!text.contains("PRIVATE KEY"), "a signing key's PEM in clear");
    // Homes: no resident's address (nor the room part of it), no reading, no alarm location.
    for resident in list["items"].as_array().into_iter().flatten() {
        let home = resident["address"].as_str().unwrap_or("?");
        assert!(!text.contains(home), "a home's address in clear: {home}");
    }
    assert!(!text.contains(&address), "the alarmed home's address in clear: {address}");
    assert!(!text.contains("87.654321"), "a reading in clear");
    // An unkeyed hash of a phone (what a naive blind index would store) is not there either.
    let naive = hex::encode(Sha256::digest(phones[0].as_bytes()));
    assert!(!text.contains(&naive[..32]), "an unkeyed hash of a phone");
    // Nor the master key.
    let master = std::fs::read_to_string(host.data_dir.join("master.key"))?;
    assert!(!text.contains(master.trim()), "the master key");
    assert!(text.contains("enc1:"), "sealed values are there, sealed");
    host.stop().await;
    Ok(())
}
on_both_databases!(a_copied_database, a_copied_database_gives_nothing_away);
