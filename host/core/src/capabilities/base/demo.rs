//! A realistic, reproducible base-data set for a demo county: residents with valid ID
//! numbers and an age structure like a Chinese county town (about a quarter aged 60+),
//! houses and households, places and organisations. It is produced as CSV and goes
//! through the same import as an operator's file.
use super::records::id_check_char;
use crate::tenancy::{TenantKind, TenantTree};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::fmt::Write;

const SURNAMES: &[&str] =
    &["王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭", "何", "林", "罗", "高", "郑", "梁", "谢", "宋", "唐"];
const GIVEN: &[&str] = &[
    "伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "洋", "艳", "勇", "军", "杰", "娟", "涛", "明", "超", "秀英", "桂英", "建国", "建华", "国庆", "志强",
    "玉兰", "淑珍", "子轩", "梓涵", "浩然", "雨桐", "欣怡", "宇航", "诗涵", "文博", "佳怡", "海燕", "红梅", "春生", "秋菊", "德明", "美华",
];
/// 浙江省某县, for the region part of the ID numbers.
const REGION: &str = "330782";

pub struct DemoData {
    /// (tenant where the import is made, CSV text)
    pub residents: Vec<(String, String)>,
    pub places: Vec<(String, String)>,
    pub organisations: Vec<(String, String)>,
}

/// Where people live: the grids, or the communities that have none.
fn living_nodes(tree: &TenantTree, county: &str) -> Vec<(String, String)> {
    let mut nodes = Vec::new();
    let mut streets: Vec<_> = tree.children(county).collect();
    streets.sort_by(|a, b| a.id.cmp(&b.id));
    for street in streets {
        let mut communities: Vec<_> = tree.children(&street.id).filter(|c| c.kind == TenantKind::Community).collect();
        communities.sort_by(|a, b| a.id.cmp(&b.id));
        for community in communities {
            let mut grids: Vec<_> = tree.children(&community.id).map(|g| g.id.clone()).collect();
            grids.sort();
            if grids.is_empty() {
                grids.push(community.id.clone());
            }
            nodes.extend(grids.into_iter().map(|g| (community.id.clone(), g)));
        }
    }
    nodes
}

fn name(rng: &mut StdRng) -> String {
    format!("{}{}", SURNAMES[rng.gen_range(0..SURNAMES.len())], GIVEN[rng.gen_range(0..GIVEN.len())])
}

fn id_number(rng: &mut StdRng, age: u32, male: bool, year_now: i32) -> String {
    let year = year_now - age as i32;
    let month = rng.gen_range(1..=12);
    let day = rng.gen_range(1..=28);
    let sequence = rng.gen_range(0..500) * 2 + u32::from(male);
    let first17 = format!("{REGION}{year:04}{month:02}{day:02}{sequence:03}");
    let check = id_check_char(&first17).unwrap_or('0');
    format!("{first17}{check}")
}

fn age(rng: &mut StdRng) -> u32 {
    match rng.gen_range(0..100) {
        0..=14 => rng.gen_range(1..18),
        15..=74 => rng.gen_range(18..60),
        75..=92 => rng.gen_range(60..80),
        _ => rng.gen_range(80..98),
    }
}

/// `per_node` residents in every grid (or grid-less community) of `county`.
pub fn generate(tree: &TenantTree, county: &str, per_node: usize, seed: u64) -> DemoData {
    let mut rng = StdRng::seed_from_u64(seed);
    let year_now = super::records::today().format("%Y").to_string().parse::<i32>().unwrap_or(2026);
    let header = "姓名,身份证号,手机号,网格,楼栋,单元,房号,户,标签\n";
    let mut residents = Vec::new();
    let mut places = Vec::new();
    let mut seen_ids = std::collections::HashSet::new();
    for (community, node) in living_nodes(tree, county) {
        let mut csv = String::from(header);
        let mut made = 0;
        let mut building = 1;
        let mut unit = 1;
        let mut floor = 1;
        let mut door = 1;
        while made < per_node {
            let room = format!("{floor}{door:02}");
            let household = format!("{building}-{unit}-{room}");
            // A lone elder, or a family of one to four.
            let lone_elder = rng.gen_bool(0.08);
            let size = if lone_elder { 1 } else { rng.gen_range(1..=4) };
            let surname_family = SURNAMES[rng.gen_range(0..SURNAMES.len())];
            for member in 0..size {
                let age = if lone_elder { rng.gen_range(65..95) } else { age(&mut rng) };
                let male = rng.gen_bool(0.5);
                let mut id = id_number(&mut rng, age, male, year_now);
                while !seen_ids.insert(id.clone()) {
                    id = id_number(&mut rng, age, male, year_now);
                }
                let real_name =
                    if member == 0 || rng.gen_bool(0.6) { format!("{surname_family}{}", GIVEN[rng.gen_range(0..GIVEN.len())]) } else { name(&mut rng) };
                let phone = format!("1{}{:09}", ["3", "5", "7", "8", "9"][rng.gen_range(0..5)], rng.gen_range(0..1_000_000_000u64));
                let mut tags = Vec::new();
                if lone_elder {
                    tags.push("独居老人");
                } else if age >= 65 && size == 2 && rng.gen_bool(0.3) {
                    tags.push("空巢老人");
                }
                if rng.gen_bool(0.03) {
                    tags.push("低保");
                }
                if rng.gen_bool(0.02) {
                    tags.push("残疾");
                }
                if age >= 40 && male && rng.gen_bool(0.03) {
                    tags.push("退役军人");
                }
                let _ = writeln!(csv, "{real_name},{id},{phone},{node},{building},{unit},{room},{household},{}", tags.join(";"));
                made += 1;
            }
            door += 1;
            if door > 4 {
                door = 1;
                floor += 1;
                if floor > 18 {
                    floor = 1;
                    unit += 1;
                    if unit > 3 {
                        unit = 1;
                        building += 1;
                    }
                }
            }
        }
        residents.push((node.clone(), csv));
        if node.ends_with("-g1") || node == community {
            let community_name = tree.get(&community).map(|c| c.name.clone()).unwrap_or_default();
            let mut p = String::from("名称,类型,网格,地址\n");
            for (kind, suffix, at) in [
                ("服务中心", "党群服务中心", "1号"),
                ("养老", "日间照料中心", "3号"),
                ("医疗", "社区卫生服务站", "5号"),
                ("文体", "老年活动室", "7号"),
                ("停车", "公共停车场", "9号"),
            ] {
                let _ = writeln!(p, "{community_name}{suffix},{kind},{node},{community_name}中心路{at}");
            }
            places.push((node.clone(), p));
        }
    }
    let mut orgs = String::from("名称,类型,网格,联系方式\n");
    let mut communities: Vec<_> = living_nodes(tree, county).into_iter().map(|(c, _)| c).collect();
    communities.dedup();
    for community in &communities {
        let community_name = tree.get(community).map(|c| c.name.clone()).unwrap_or_default();
        for (suffix, kind) in [("居民委员会", "自治组织"), ("业主委员会", "自治组织"), ("物业服务中心", "物业"), ("志愿服务队", "志愿组织")]
        {
            let _ = writeln!(orgs, "{community_name}{suffix},{kind},{community},0571-8{:07}", rng.gen_range(0..10_000_000));
        }
    }
    let county_name = tree.get(county).map(|c| c.name.clone()).unwrap_or_default();
    let _ = writeln!(orgs, "{county_name}法律援助中心,法律服务,{county},12348");
    let _ = writeln!(orgs, "{county_name}明理律师事务所,法律服务,{county},0571-8{:07}", rng.gen_range(0..10_000_000));
    DemoData { residents, places, organisations: vec![(county.to_string(), orgs)] }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capabilities::base::records::parse_id_number;
    use crate::tenancy::TenantNode;

    fn tree() -> TenantTree {
        let node = |id: &str, parent: Option<&str>, kind| TenantNode { id: id.into(), parent_id: parent.map(Into::into), kind, name: id.into() };
        TenantTree::from_nodes([
            node("county", None, TenantKind::County),
            node("street", Some("county"), TenantKind::Street),
            node("c1", Some("street"), TenantKind::Community),
            node("c1-g1", Some("c1"), TenantKind::Grid),
            node("c2", Some("street"), TenantKind::Community),
        ])
    }

    #[test]
    fn demo_residents_have_valid_unique_id_numbers_and_elders() {
        let data = generate(&tree(), "county", 300, 7);
        assert_eq!(data.residents.len(), 2, "one file per grid or grid-less community");
        let mut rows = 0;
        let mut elders = 0;
        let mut lone = 0;
        for (_, csv) in &data.residents {
            for line in csv.lines().skip(1) {
                let fields: Vec<&str> = line.split(',').collect();
                assert_eq!(fields.len(), 9, "{line}");
                let id = parse_id_number(fields[1]).unwrap_or_else(|e| panic!("{line}: {e}"));
                if crate::capabilities::base::records::age_on(id.birth_date, crate::capabilities::base::records::today()) >= 60 {
                    elders += 1;
                }
                lone += usize::from(fields[8].contains("独居老人"));
                rows += 1;
            }
        }
        assert!(rows >= 600);
        assert!(elders * 100 / rows >= 15, "{elders} of {rows} are 60+");
        assert!(lone > 5);
        assert_eq!(generate(&tree(), "county", 300, 7).residents, data.residents, "the same seed gives the same data");
    }
}
