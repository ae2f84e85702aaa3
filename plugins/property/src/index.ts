// 智慧物业 — property services, a reference plugin in TypeScript: repair requests that become
// work orders (with photos, rated by the resident), property-fee bills paid through a gateway
// into the ledger, visitor passes that reach the gate, notices, complaints and suggestions,
// and the property office's side of each.
import { Router, json } from "@linli/sdk";
import { onEvent } from "@linli/sdk/events";
import * as bills from "./bills";
import * as notices from "./notices";
import * as passes from "./passes";
import * as repairs from "./repairs";
import { stats } from "./stats";

const router = new Router()
  .get("/repairs/kinds", () => json(200, repairs.KINDS))
  .post("/repairs", (req) => repairs.report(req))
  .get("/repairs/mine", () => repairs.listMine())
  .post("/repairs/:id/photos", (req, params) => repairs.addPhoto(req, params))
  .post("/repairs/:id/rate", (req, params) => repairs.rate(req, params))
  .get("/repairs/:id/steps", (req, params) => repairs.steps(req, params))
  .post("/passes", (req) => passes.issue(req))
  .get("/passes/mine", () => passes.listMine())
  .post("/passes/:id/revoke", (req, params) => passes.revoke(req, params))
  .get("/bills/mine", () => bills.mine())
  .post("/bills/:id/pay", (_, params) => bills.pay(params))
  .post("/payments/:id/demo-confirm", (_, params) => bills.confirmDemo(params))
  .get("/notices", (req) => notices.listNotices(req))
  .post("/feedback", (req) => notices.send(req))
  .get("/feedback/mine", () => notices.listMine())
  .get("/office/repairs", (req) => repairs.officeList(req))
  .post("/office/repairs/:id/comment", (req, params) => repairs.officeComment(req, params))
  .post("/office/repairs/:id/resolve", (req, params) => repairs.officeResolve(req, params))
  .post("/office/repairs/:id/dispatch", (req, params) => repairs.officeDispatch(req, params))
  .get("/office/company", (req) => repairs.company(req))
  .put("/office/company", (req) => repairs.setCompany(req))
  .post("/office/bills", (req) => bills.issue(req))
  .get("/office/bills", (req) => bills.officeList(req))
  .get("/office/arrears", (req) => bills.arrears(req))
  .get("/office/passes/check", (req) => passes.check(req))
  .get("/office/passes/unsynced", (req) => passes.unsynced(req))
  .post("/office/passes/:id/retry", (req, params) => passes.retry(req, params))
  .put("/office/gate", (req) => passes.setGate(req))
  .post("/office/notices", (req) => notices.publishNotice(req))
  .delete("/office/notices/:id", (req, params) => notices.withdrawNotice(req, params))
  .get("/office/feedback", (req) => notices.officeList(req))
  .post("/office/feedback/:id/answer", (req, params) => notices.answer(req, params))
  .get("/stats", () => stats());

export const handler = router.handler();
export const eventHandler = onEvent((event) => {
  if (event.kind === "schedule" && event.subject === "sweep") passes.sweep();
});
