// 物业费: the office bills every house of its community for a period; each house has an account
// in the ledger's `yuan` currency (fen), charged by its bills and credited by its payments, so
// a negative balance is what the house owes. A resident pays her house's bills through a
// payment gateway and gets a receipt. The gateway is an interface: the demo gateway below
// confirms a payment when the resident presses its button; a real one (a bank's or a wallet's)
// would confirm through its signed callback instead.
import { LinliError, json, type Params, type Request, type Response } from "@linli/sdk";
import * as base from "@linli/sdk/base";
import { Collection } from "@linli/sdk/data";
import * as identity from "@linli/sdk/identity";
import * as ledger from "@linli/sdk/ledger";
import { newId, now, requireOffice, requireResident } from "./common";

const CURRENCY = "yuan";
const PROPERTY_POOL = "property-fees";
/** Where paid money enters the ledger: the gateway's settlement account. */
const GATEWAY_POOL = "payment-gateway";
const PERIOD = /^(\d{4})-(0[1-9]|1[0-2])$/;
const MAX_BILL_FEN = 10_000_000;

export interface Bill {
  id: string;
  community: string;
  house: string;
  address: string;
  period: string;
  /** Fen. */
  amount: number;
  status: "unpaid" | "paid";
  payment: string | null;
  receipt: string | null;
  paidBy: string | null;
  paidAt: number | null;
  createdAt: number;
}

export interface Payment {
  id: string;
  bill: string;
  amount: number;
  payer: string;
  payerName: string;
  gateway: string;
  status: "pending" | "succeeded";
  createdAt: number;
}

/** What Linli asks of a payment gateway. */
interface Gateway {
  readonly name: string;
  /** Start paying `payment`; where the resident goes to pay. */
  start(payment: Payment): { payUrl: string };
}

/** The demo county's gateway: the plugin's own page, whose button confirms the payment. */
const demoGateway: Gateway = {
  name: "demo",
  start: (payment) => ({ payUrl: `#pay-${payment.id}` }),
};

export const bills = new Collection<Bill>("bills");
const payments = new Collection<Payment>("payments");
const counters = new Collection<{ n: number }>("counters");

/** The ledger owner of a house's account (pool names are a-z, 0-9 and `-`). */
function houseOwner(houseId: string): string {
  const name = /^[a-z0-9-]+$/.test(houseId) ? houseId : Array.from(new TextEncoder().encode(houseId), (b) => b.toString(16).padStart(2, "0")).join("");
  return ledger.pool(`house-${name}`);
}

/** The signed-in resident's house, from her base record (asks for her consent first). */
function myHouse(): base.House {
  const record = identity.residentRecord();
  const house = record === undefined ? undefined : base.residentHouse(record);
  if (!house) throw LinliError.notFound("基础数据中没有您的房屋，请联系社区登记 (your house is not in the base data)");
  return house;
}

function yuan(fen: number): string {
  return (fen / 100).toFixed(2);
}

/** Houses billed per request: a community has thousands, a request has a deadline. */
const HOUSES_PER_CALL = 100;

/**
 * Bill one page of the community's houses for `period`; the answer's `next` is the cursor of
 * the next page (`null` when every house is billed). Calling again is harmless: a house
 * already billed for the period is counted as `existing` and charged nothing.
 */
export function issue(req: Request): Response {
  const { community } = requireOffice(req);
  const body = req.json<{ period?: string; amount?: number; cursor?: string | null }>();
  const period = typeof body.period === "string" ? body.period : "";
  if (!PERIOD.test(period)) throw LinliError.invalid("账期格式为 2026-12 (a period like 2026-12)");
  const amount = Number(body.amount);
  if (!Number.isInteger(amount) || amount <= 0 || amount > MAX_BILL_FEN) throw LinliError.invalid("金额以分计，为正整数 (an amount in fen above zero)");
  const property = ledger.account(CURRENCY, ledger.pool(PROPERTY_POOL));
  const page = base.houses(community, typeof body.cursor === "string" ? body.cursor : undefined, HOUSES_PER_CALL);
  let created = 0;
  let existing = 0;
  for (const house of page.items) {
    const id = `${period}:${house.id}`;
    if (bills.get(id)) {
      existing += 1;
      continue;
    }
    const bill: Bill = {
      id,
      community,
      house: house.id,
      address: house.address,
      period,
      amount,
      status: "unpaid",
      payment: null,
      receipt: null,
      paidBy: null,
      paidAt: null,
      createdAt: now(),
    };
    const account = ledger.account(CURRENCY, houseOwner(house.id));
    // The key makes a second run of the same period charge nothing twice.
    ledger.transfer(account.id, property.id, amount, `bill:${id}`, `物业费 ${period} ${house.address}`);
    bills.insert(id, bill);
    created += 1;
  }
  return json(201, { period, community, created, existing, next: page.nextCursor ?? null });
}

export function mine(): Response {
  requireResident();
  const house = myHouse();
  const list = bills.queryAll("house", house.id).map((v) => v.value);
  list.sort((a, b) => b.period.localeCompare(a.period));
  const account = ledger.account(CURRENCY, houseOwner(house.id));
  const history = ledger.history(account.id, undefined, 20);
  return json(200, { address: house.address, balance: account.balance, bills: list, movements: history.items });
}

export function pay(params: Params): Response {
  const user = requireResident();
  const house = myHouse();
  const id = params.require("id");
  const bill = bills.get(id)?.value;
  if (!bill || bill.house !== house.id) throw LinliError.notFound(`没有这张账单 (no bill \`${id}\`)`);
  if (bill.status === "paid") throw LinliError.conflict(`这张账单已于收据 ${bill.receipt} 付清 (already paid)`);
  const payment: Payment = {
    id: newId("p"),
    bill: bill.id,
    amount: bill.amount,
    payer: user.id,
    payerName: user.displayName,
    gateway: demoGateway.name,
    status: "pending",
    createdAt: now(),
  };
  payments.insert(payment.id, payment);
  return json(201, { payment: payment.id, amount: payment.amount, gateway: payment.gateway, ...demoGateway.start(payment) });
}

/** The demo gateway's confirmation, by the resident who started the payment. */
export function confirmDemo(params: Params): Response {
  const user = requireResident();
  const id = params.require("id");
  const payment = payments.get(id)?.value;
  if (!payment || payment.payer !== user.id || payment.gateway !== demoGateway.name) throw LinliError.notFound(`没有这笔支付 (no payment \`${id}\`)`);
  return json(200, settle(payment));
}

/** Credit the house's account and mark the bill paid: once, however often it is called. */
function settle(payment: Payment): Record<string, unknown> {
  const bill = bills.get(payment.bill)?.value;
  if (!bill) throw LinliError.notFound(`no bill \`${payment.bill}\``);
  if (bill.status === "paid" && bill.payment !== payment.id) {
    throw LinliError.conflict(`这张账单已由另一笔支付付清，本笔将退回 (already paid by another payment)`);
  }
  const gateway = ledger.account(CURRENCY, ledger.pool(GATEWAY_POOL));
  const account = ledger.account(CURRENCY, houseOwner(bill.house));
  const moved = ledger.transfer(gateway.id, account.id, payment.amount, `pay:${payment.id}`, `缴物业费 ${bill.period}（${payment.payerName}）`);
  payments.modify(payment.id, (p) => ({ ...p, status: "succeeded" as const }));
  const marked = bills.modify(bill.id, (b) => (b.status === "paid" ? b : { ...b, status: "paid" as const, payment: payment.id, paidBy: payment.payerName, paidAt: now() })).value;
  if (marked.payment !== payment.id) {
    // Another payment paid it between the check above and now: this one's money stays on the
    // house's account as credit towards its next bill.
    throw LinliError.conflict(`这张账单已由另一笔支付付清，本笔款项记入房屋余额 (already paid by another payment; this one is credit on the house's account)`);
  }
  // The receipt number is taken outside `modify` (whose change may run again on a conflict)
  // and only by the payment that paid the bill, so numbers follow one another.
  let paid = marked;
  if (marked.receipt === null) {
    const n = counters.update("receipt", (c) => ({ n: c.n + 1 }), () => ({ n: 0 })).value.n;
    const receipt = `WY${marked.period.replace("-", "")}${String(n).padStart(6, "0")}`;
    paid = bills.modify(bill.id, (b) => (b.receipt !== null ? b : { ...b, receipt })).value;
  }
  return {
    receipt: paid.receipt,
    bill: paid.id,
    address: paid.address,
    period: paid.period,
    amount: paid.amount,
    amountText: `${yuan(paid.amount)} 元`,
    paidBy: paid.paidBy,
    paidAt: paid.paidAt,
    balance: moved.payeeBalance,
  };
}

export function officeList(req: Request): Response {
  const { community } = requireOffice(req);
  const period = req.queryParam("period");
  const list = bills
    .queryAll("community", community)
    .map((v) => v.value)
    .filter((b) => period === undefined || b.period === period);
  list.sort((a, b) => (a.status === b.status ? a.address.localeCompare(b.address) : a.status === "unpaid" ? -1 : 1));
  return json(200, list);
}

/** Houses that owe: unpaid bills, summed per house. */
export function arrears(req: Request): Response {
  const { community } = requireOffice(req);
  const owed = new Map<string, { house: string; address: string; bills: number; amount: number }>();
  for (const { value } of bills.queryAll("community", community)) {
    if (value.status !== "unpaid") continue;
    const row = owed.get(value.house) ?? { house: value.house, address: value.address, bills: 0, amount: 0 };
    row.bills += 1;
    row.amount += value.amount;
    owed.set(value.house, row);
  }
  return json(200, [...owed.values()].sort((a, b) => b.amount - a.amount || a.address.localeCompare(b.address)));
}
