// Every module of the SDK, each capability called once: the test command's type check and
// build of the whole TypeScript SDK, and an end-to-end check that each helper reaches the host.
import { LinliError, Router, json } from "@linli/sdk";
import { Collection } from "@linli/sdk/data";
import * as identity from "@linli/sdk/identity";
import * as base from "@linli/sdk/base";
import * as ledger from "@linli/sdk/ledger";
import * as devices from "@linli/sdk/devices";
import * as tickets from "@linli/sdk/tickets";
import * as notify from "@linli/sdk/notify";
import { onEvent, payload } from "@linli/sdk/events";

const seen = new Collection<{ kind: string; subject: string; attempts: number }>("events");

const router = new Router().get("/check", () => {
  const user = identity.requireUser();
  const counter = new Collection<{ n: number }>("counters").update("checks", (c) => ({ n: c.n + 1 }), () => ({ n: 0 }));
  const account = ledger.account("points", ledger.user(user.id));
  return json(200, {
    user: user.displayName,
    staff: identity.hasRole(user, "community-worker"),
    checks: counter.value.n,
    version: counter.version,
    places: base.places().length,
    residents: base.findResidents({ tenant: undefined, tags: [], minAge: undefined, maxAge: undefined }, undefined, 5).items.length,
    houses: base.houses(undefined, undefined, 5).items.length,
    currencies: ledger.currencies().map((c) => c.code),
    balance: account.balance,
    devices: devices.list().length,
    alarms: devices.alarms("active", 10).length,
    categories: tickets.categories().length > 0,
    created: tickets.created(undefined, 10).length,
    notify: typeof notify.user,
  });
});

// A resident's report with a photo, and her rating once staff resolved it.
router
  .post("/report", (req) => {
    const user = identity.requireUser();
    const { title } = req.json<{ title: string }>();
    const ticket = tickets.report({
      category: "repair",
      title,
      description: "厨房水管漏水",
      tenant: user.community,
      location: "3栋2单元501",
      alarm: undefined,
    });
    return json(201, { id: ticket.id, status: ticket.status });
  })
  .post("/report/:id/photo", (req, params) => json(201, { n: tickets.addPhoto(params.require("id"), req.body) }))
  .post("/report/:id/rate", (req, params) => {
    const { rating, feedback } = req.json<{ rating: number; feedback?: string }>();
    const ticket = tickets.rate(params.require("id"), rating, feedback);
    return json(200, { status: ticket.status, rating: ticket.rating });
  });

router.get("/events", () =>
  json(200, seen.listAll("").map((v) => ({ seq: Number(v.key), ...v.value }))),
);

export const handler = router.handler();
// The first delivery of each event fails on purpose, so the tests see the host retry it.
export const eventHandler = onEvent((event) => {
  const { schedule } = payload<{ schedule?: string }>(event);
  const record = seen.update(String(event.seq), (r) => ({ ...r, attempts: r.attempts + 1 }), () => ({
    kind: event.kind,
    subject: schedule ?? event.subject,
    attempts: 0,
  }));
  if (record.value.attempts === 1) throw new LinliError("unavailable", "the first delivery fails, to be retried");
});
