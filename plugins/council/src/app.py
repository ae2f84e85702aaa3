"""社区议事 — the community council, a reference plugin in Python.

Proposals: staff of a community publish one with its quorum and threshold; residents discuss
it and vote, one vote per household of the base data (a second vote from the same household
is refused, whoever casts it); staff close it and the result is published with the count.
Activities: staff publish them, residents sign up, staff mark who came, and each attendee is
awarded the activity's points in the ledger; residents redeem points for rewards from the
community's catalogue while stock lasts. Notices and news of the community. Figures per
community for the dashboards.
"""
import time
import secrets

from linli import LinliError, Router, json_response
from linli import base, identity, ledger
from linli.data import Collection

STAFF_ROLES = ("community-worker", "street-admin", "county-admin")
CURRENCY = "points"
POOL = "council-points"
CHOICES = ("yes", "no", "abstain")

proposals = Collection("proposals")
votes = Collection("votes")
activities = Collection("activities")
signups = Collection("signups")
rewards = Collection("rewards")
redemptions = Collection("redemptions")
news = Collection("news")

router = Router()


def now() -> int:
    return int(time.time() * 1000)


def new_id(prefix: str) -> str:
    return prefix + secrets.token_hex(6)


def text(value, what: str, most: int) -> str:
    value = value.strip() if isinstance(value, str) else ""
    if not value or len(value) > most:
        raise LinliError.invalid(f"{what}须为1–{most}个字 ({what}: 1–{most} characters)")
    return value


def whole(value, what: str, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise LinliError.invalid(f"{what}须为 {low}–{high} 的整数 ({what}: a whole number {low}–{high})")
    return value


def staff_of(req):
    """Staff whose role reaches the community in the URL (the host passes only those)."""
    user = identity.require_user()
    if not any(identity.has_role(user, role) for role in STAFF_ROLES):
        raise LinliError.permission_denied("仅限社区工作人员 (community staff only)")
    return user, req.tenant()


def community_of(req) -> str:
    """The reader's own community, else (staff, visitors) the one in the URL."""
    user = identity.current_user()
    return (user.community if user else None) or req.tenant()


def resident():
    user = identity.require_user()
    if user.kind != identity.AccountKind.RESIDENT or not user.community:
        raise LinliError.permission_denied("仅限本社区居民 (residents only)")
    return user


def household_of_caller() -> str:
    """The caller's household in the base data; the app asks her consent first."""
    record = identity.resident_record()
    found = base.resident(record) if record is not None else None
    if found is None or not found.household:
        raise LinliError.not_found("基础数据中没有您的户，请联系社区登记 (your household is not in the base data)")
    return found.household


def households(community: str) -> int:
    """Households of the community with at least one resident: the quorum's base."""
    query = base.ResidentQuery(community, [], None, None)
    return len({r.household for r in base.all_residents(query) if r.household})


def proposal(proposal_id: str, community: str | None = None) -> dict:
    """The proposal; with `community`, only one of that community (staff act on their own)."""
    found = proposals.get(proposal_id)
    if found is None or (community is not None and found.value["community"] != community):
        raise LinliError.not_found(f"没有这个提案 (no proposal `{proposal_id}`)")
    return found.value


def tally(p: dict) -> dict:
    counts = {choice: 0 for choice in CHOICES}
    for v in votes.query_all("proposal", p["id"]):
        counts[v.value["choice"]] += 1
    cast = sum(counts.values())
    quorum_met = cast * 100 >= p["quorum_percent"] * p["eligible"] and cast > 0
    decided = counts["yes"] + counts["no"]
    passed = quorum_met and decided > 0 and counts["yes"] * 100 >= p["threshold_percent"] * decided
    return {**counts, "cast": cast, "eligible": p["eligible"], "quorum_met": quorum_met, "passed": passed}


def view(p: dict) -> dict:
    shown = dict(p)
    if p["status"] == "closed":
        shown["result"] = p["result"]
    else:
        shown["cast"] = tally(p)["cast"]
    return shown


@router.get("/viewer")
def viewer(req, params):
    """What the page shows this person: the staff part only to staff whose role reaches the community."""
    user = identity.current_user()
    staff = user is not None and any(identity.has_role(user, role) for role in STAFF_ROLES)
    return json_response(200, {"staff": staff, "name": user.display_name if user else None})


@router.post("/proposals")
def publish_proposal(req, params):
    user, community = staff_of(req)
    return json_response(201, view(new_proposal(new_id("p"), community, user.display_name, req.json())))


def new_proposal(proposal_id: str, community: str, by: str, body: dict) -> dict:
    p = {
        "id": proposal_id,
        "community": community,
        "title": text(body.get("title"), "标题", 60),
        "body": text(body.get("body"), "内容", 4000),
        "quorum_percent": whole(body.get("quorum_percent", 50), "法定人数比例", 1, 100),
        "threshold_percent": whole(body.get("threshold_percent", 50), "通过比例", 1, 100),
        # Counted when published, so later imports do not move the quorum of an open vote.
        "eligible": households(community),
        "status": "open",
        "by": by,
        "comments": [],
        "result": None,
        "created_at": now(),
    }
    if p["eligible"] == 0:
        raise LinliError.invalid("基础数据中本社区还没有户，无法计票 (no households in the base data)")
    proposals.insert(p["id"], p)
    return p


@router.get("/proposals")
def list_proposals(req, params):
    found = [v.value for v in proposals.query_all("community", community_of(req))]
    found.sort(key=lambda p: (p["status"] != "open", -p["created_at"]))
    return json_response(200, [view(p) for p in found])


@router.get("/proposals/:id")
def show_proposal(req, params):
    return json_response(200, view(proposal(params.require("id"))))


@router.post("/proposals/:id/comments")
def comment(req, params):
    """By the community's residents, and its staff (whose role reaches it: the URL's community)."""
    user = identity.require_user()
    p = proposal(params.require("id"))
    staff = any(identity.has_role(user, role) for role in STAFF_ROLES) and req.tenant() == p["community"]
    if user.community != p["community"] and not staff:
        raise LinliError.permission_denied("只有本社区的居民和工作人员可以发言 (only this community speaks here)")
    if p["status"] != "open":
        raise LinliError.conflict("提案已结束讨论 (the proposal is closed)")
    entry = {"by": user.display_name, "text": text(req.json().get("text"), "发言", 1000), "at": now()}
    updated = proposals.modify(p["id"], lambda q: dict(q, comments=q["comments"] + [entry]))
    return json_response(201, view(updated.value))


@router.post("/proposals/:id/vote")
def vote(req, params):
    user = resident()
    p = proposal(params.require("id"))
    if p["status"] != "open":
        raise LinliError.conflict("投票已结束 (voting is closed)")
    if p["community"] != user.community:
        raise LinliError.permission_denied("只有本社区的居民可以投票 (only this community's residents vote)")
    choice = req.json().get("choice")
    if choice not in CHOICES:
        raise LinliError.invalid("选项须为 yes（赞成）、no（反对）或 abstain（弃权）")
    household = household_of_caller()
    ballot = {"proposal": p["id"], "household": household, "choice": choice, "by": user.display_name, "at": now()}
    try:
        votes.insert(f"{p['id']}:{household}", ballot)
    except LinliError as e:
        if e.code == "conflict":
            raise LinliError.conflict("您家已经投过票，每户一票 (your household has voted: one vote per household)") from None
        raise
    return json_response(201, {"proposal": p["id"], "choice": choice, "cast": tally(p)["cast"]})


@router.post("/proposals/:id/close")
def close(req, params):
    user, community = staff_of(req)
    p = proposal(params.require("id"), community)
    if p["status"] == "closed":
        return json_response(200, view(p))
    result = tally(p)
    closed = proposals.modify(p["id"], lambda q: dict(q, status="closed", result=result, closed_by=user.display_name, closed_at=now()))
    return json_response(200, view(closed.value))


@router.get("/proposals/:id/audit")
def audit(req, params):
    """For staff: who voted (household and name, not the choice), and the eligible count."""
    _, community = staff_of(req)
    p = proposal(params.require("id"), community)
    ballots = sorted((v.value for v in votes.query_all("proposal", p["id"])), key=lambda b: b["at"])
    return json_response(200, {"eligible": p["eligible"], "voted": [{"household": b["household"], "by": b["by"], "at": b["at"]} for b in ballots]})


@router.post("/activities")
def publish_activity(req, params):
    _, community = staff_of(req)
    return json_response(201, new_activity(new_id("a"), community, req.json()))


def new_activity(activity_id: str, community: str, body: dict) -> dict:
    a = {
        "id": activity_id,
        "community": community,
        "title": text(body.get("title"), "活动名称", 60),
        "when": text(body.get("when"), "时间", 40),
        "place": text(body.get("place"), "地点", 60),
        "capacity": whole(body.get("capacity", 30), "人数上限", 1, 1000),
        "points": whole(body.get("points", 10), "积分", 0, 1000),
        "created_at": now(),
    }
    activities.insert(a["id"], a)
    return a


def activity(activity_id: str, community: str | None = None) -> dict:
    """The activity; with `community`, only one of that community (staff act on their own)."""
    found = activities.get(activity_id)
    if found is None or (community is not None and found.value["community"] != community):
        raise LinliError.not_found(f"没有这个活动 (no activity `{activity_id}`)")
    return found.value


@router.get("/activities")
def list_activities(req, params):
    user = identity.current_user()
    community = (user.community if user else None) or req.tenant()
    mine = {s.value["activity"]: s.value for s in signups.query_all("user", user.id)} if user else {}
    shown = []
    for a in sorted((v.value for v in activities.query_all("community", community)), key=lambda a: -a["created_at"]):
        taken = len(signups.query_all("activity", a["id"]))
        shown.append(dict(a, signed_up=taken, mine=mine.get(a["id"])))
    return json_response(200, shown)


@router.post("/activities/:id/signup")
def sign_up(req, params):
    user = resident()
    a = activity(params.require("id"))
    if a["community"] != user.community:
        raise LinliError.permission_denied("只能报名本社区的活动 (only your community's activities)")
    if len(signups.query_all("activity", a["id"])) >= a["capacity"]:
        raise LinliError("limit-exceeded", "名额已满 (the activity is full)")
    entry = {"activity": a["id"], "user": user.id, "name": user.display_name, "present": False, "at": now()}
    try:
        signups.insert(f"{a['id']}:{user.id}", entry)
    except LinliError as e:
        if e.code != "conflict":
            raise
    return json_response(201, signups.get(f"{a['id']}:{user.id}").value)


@router.get("/activities/:id/signups")
def list_signups(req, params):
    _, community = staff_of(req)
    a = activity(params.require("id"), community)
    return json_response(200, [s.value for s in signups.query_all("activity", a["id"])])


@router.post("/activities/:id/attendance")
def attendance(req, params):
    """Staff mark who came; each is awarded the activity's points once, however often marked."""
    _, community = staff_of(req)
    a = activity(params.require("id"), community)
    present = req.json().get("present")
    if not isinstance(present, list) or not all(isinstance(u, str) for u in present):
        raise LinliError.invalid("present 须为报名者 id 的列表 (present: a list of sign-up user ids)")
    pool = issuing_pool()
    awarded = []
    for user_id in present:
        key = f"{a['id']}:{user_id}"
        if signups.get(key) is None:
            raise LinliError.invalid(f"`{user_id}` 没有报名这个活动 (did not sign up)")
        signups.modify(key, lambda s: dict(s, present=True))
        if a["points"] > 0:
            account = ledger.account(CURRENCY, ledger.user(user_id))
            ledger.transfer(pool["id"], account.id, a["points"], f"attend:{key}", f"参加活动：{a['title']}")
        awarded.append(user_id)
    return json_response(200, {"activity": a["id"], "awarded": awarded, "points": a["points"]})


def issuing_pool() -> dict:
    """The community's points come from this pool, which may go below zero."""
    pool = ledger.account(CURRENCY, ledger.pool(POOL))
    if pool.floor > -1_000_000_000:
        pool = ledger.set_limits(pool.id, -1_000_000_000, None)
    return {"id": pool.id}


@router.post("/rewards")
def add_reward(req, params):
    _, community = staff_of(req)
    return json_response(201, new_reward(new_id("r"), community, req.json()))


def new_reward(reward_id: str, community: str, body: dict) -> dict:
    r = {
        "id": reward_id,
        "community": community,
        "name": text(body.get("name"), "名称", 40),
        "points": whole(body.get("points"), "所需积分", 1, 100000),
        "stock": whole(body.get("stock"), "库存", 0, 100000),
    }
    rewards.insert(r["id"], r)
    return r


@router.get("/rewards")
def list_rewards(req, params):
    return json_response(200, [v.value for v in rewards.query_all("community", community_of(req))])


@router.get("/points")
def my_points(req, params):
    user = identity.require_user()
    account = ledger.account(CURRENCY, ledger.user(user.id))
    history = ledger.history(account.id, None, 20)
    return json_response(200, {"balance": account.balance, "movements": [{"amount": m.amount, "memo": m.memo, "at": m.at} for m in history.items]})


@router.post("/rewards/:id/redeem")
def redeem(req, params):
    user = resident()
    reward_id = params.require("id")
    found = rewards.get(reward_id)
    if found is None or found.value["community"] != user.community:
        raise LinliError.not_found(f"没有这个兑换项 (no reward `{reward_id}`)")

    def take(r):
        if r["stock"] <= 0:
            raise LinliError("limit-exceeded", "已兑完 (out of stock)")
        return dict(r, stock=r["stock"] - 1)

    reward = found.value
    account = ledger.account(CURRENCY, ledger.user(user.id))
    if account.balance < reward["points"]:
        raise LinliError("limit-exceeded", f"积分不足：需要 {reward['points']}，现有 {account.balance} (not enough points)")
    rewards.modify(reward_id, take)
    redemption = {"id": new_id("d"), "reward": reward_id, "name": reward["name"], "points": reward["points"], "user": user.id, "community": user.community, "at": now()}
    try:
        moved = ledger.transfer(account.id, issuing_pool()["id"], reward["points"], f"redeem:{redemption['id']}", f"兑换：{reward['name']}")
    except LinliError:
        # The points did not move (another redemption spent them meanwhile): the stock goes back.
        rewards.modify(reward_id, lambda r: dict(r, stock=r["stock"] + 1))
        raise
    redemptions.insert(redemption["id"], redemption)
    return json_response(201, dict(redemption, balance=moved.payer_balance))


@router.post("/news")
def publish_news(req, params):
    user, community = staff_of(req)
    return json_response(201, new_news(new_id("n"), community, user.display_name, req.json()))


def new_news(news_id: str, community: str, by: str, body: dict) -> dict:
    item = {"id": news_id, "community": community, "title": text(body.get("title"), "标题", 60), "body": text(body.get("body"), "正文", 4000), "by": by, "at": now()}
    news.insert(item["id"], item)
    return item


@router.get("/news")
def list_news(req, params):
    items = [v.value for v in news.query_all("community", community_of(req))]
    return json_response(200, sorted(items, key=lambda n: -n["at"]))


@router.get("/stats")
def stats(req, params):
    figures: dict[str, dict[str, int]] = {}

    def bump(community, key, by=1):
        figures.setdefault(community, {}).setdefault(key, 0)
        figures[community][key] += by

    for v in proposals.list_all(""):
        p = v.value
        bump(p["community"], "proposals")
        bump(p["community"], "eligible", p["eligible"])
        bump(p["community"], "votes", p["result"]["cast"] if p["result"] else tally(p)["cast"])
    for v in signups.list_all(""):
        if v.value["present"]:
            attended = activity(v.value["activity"])
            bump(attended["community"], "points_issued", attended["points"])
    for v in redemptions.list_all(""):
        bump(v.value["community"], "points_redeemed", v.value["points"])
    keys = ("proposals", "votes", "eligible", "points_issued", "points_redeemed")
    return json_response(200, [dict({"community": c}, **{k: f.get(k, 0) for k in keys}) for c, f in sorted(figures.items())])


# The demo county's council, per community: two open proposals, an activity, a catalogue and
# a piece of news. Records have fixed ids, so loading again (every start of the demo) adds
# nothing.
DEMO = {
    "proposals": [
        ("lift", {"title": "关于为3栋加装电梯的提案", "body": "3栋为六层老楼，住户中老人多，提议申请老旧小区改造补贴加装电梯，费用按楼层分摊。请各户发表意见并投票。",
                  "quorum_percent": 50, "threshold_percent": 67}),
        ("park", {"title": "小区东侧空地改建口袋公园", "body": "东侧空地长期堆放杂物，提议清理后改建为口袋公园，设座椅和健身器材，费用由社区公益金承担。",
                  "quorum_percent": 30, "threshold_percent": 50}),
    ],
    "activity": {"title": "周六清洁家园志愿活动", "when": "本周六 09:00–11:00", "place": "社区广场", "capacity": 40, "points": 20},
    "rewards": [
        ("bag", {"name": "环保购物袋", "points": 20, "stock": 50}),
        ("haircut", {"name": "社区理发券", "points": 40, "stock": 20}),
    ],
    "news": {"title": "社区议事厅上线", "body": "社区的大事小情，大家一起商量：在这里查看提案、发表意见、每户投一票；参加社区活动还能获得积分，兑换礼品。"},
}


@router.post("/demo/seed")
def demo_seed(req, params):
    """For a community (`/t/{community}/p/council/demo/seed`), by a county admin."""
    user = identity.require_user()
    if not identity.has_role(user, "county-admin"):
        raise LinliError.permission_denied("demo data is loaded by a county admin")
    # The community in the URL: the host passes the admin's role only if it reaches it.
    community = req.tenant()
    added = []

    def once(collection, record_id, create):
        if collection.get(record_id) is None:
            create(record_id)
            added.append(record_id)

    for key, body in DEMO["proposals"]:
        once(proposals, f"demo-{community}-{key}", lambda i, body=body: new_proposal(i, community, user.display_name, body))
    once(activities, f"demo-{community}-activity", lambda i: new_activity(i, community, DEMO["activity"]))
    for key, body in DEMO["rewards"]:
        once(rewards, f"demo-{community}-{key}", lambda i, body=body: new_reward(i, community, body))
    once(news, f"demo-{community}-news", lambda i: new_news(i, community, user.display_name, DEMO["news"]))
    return json_response(200, {"community": community, "added": added})


# componentize-py calls the `Handler` class of this module for every request.
Handler = router.handler()
