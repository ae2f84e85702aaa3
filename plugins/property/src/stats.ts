// The dashboard's figures, per community: sums only, so the host can add them up the tree.
import { json, type Response } from "@linli/sdk";
import { now } from "./common";
import * as tickets from "@linli/sdk/tickets";
import { bills } from "./bills";
import { feedback } from "./notices";
import { passes } from "./passes";
import { repairs } from "./repairs";

type Figures = Record<string, number>;

/** A ticket still someone's work: past its due time, it is overdue. */
const PENDING = ["open", "dispatched", "accepted"];

export function stats(): Response {
  const at = now();
  const byCommunity = new Map<string, Figures>();
  const bump = (community: string, key: string, by = 1) => {
    const figures = byCommunity.get(community) ?? {};
    figures[key] = (figures[key] ?? 0) + by;
    byCommunity.set(community, figures);
  };
  for (const { value } of repairs.listAll("")) {
    bump(value.community, "repairs");
    const ticket = tickets.get(value.id);
    if (ticket.status !== "closed") bump(value.community, "repairs_open");
    if (PENDING.includes(ticket.status) && ticket.dueAt < at) bump(value.community, "repairs_overdue");
    if (ticket.rating !== undefined) {
      bump(value.community, "repairs_rated");
      bump(value.community, "rating_points", ticket.rating);
    }
  }
  for (const { value } of bills.listAll("")) {
    bump(value.community, "fees_billed", value.amount / 100);
    if (value.status === "paid") bump(value.community, "fees_paid", value.amount / 100);
  }
  for (const { value } of passes.listAll("")) bump(value.community, "visitor_passes");
  for (const { value } of feedback.listAll("")) if (value.status === "open") bump(value.community, "feedback_open");
  const keys = ["repairs", "repairs_open", "repairs_overdue", "repairs_rated", "rating_points", "fees_billed", "fees_paid", "visitor_passes", "feedback_open"];
  const rows = [...byCommunity.entries()].sort(([a], [b]) => a.localeCompare(b));
  return json(
    200,
    rows.map(([community, figures]) => ({ community, ...Object.fromEntries(keys.map((k) => [k, figures[k] ?? 0])) })),
  );
}
