// The ledger (`ledger` capability): accounts in the currencies linli.toml declares, moved only
// by transfers. Amounts are in minor units (fen, hundredths of an hour) as numbers.
import * as wit from "linli:platform/ledger@0.1.0";
import { call, toNumber } from "./errors";

export interface Currency {
  code: string;
  name: string;
  decimals: number;
  floor: number;
  cap?: number;
}

export interface Account {
  id: string;
  currency: string;
  owner: string;
  balance: number;
  floor: number;
  cap?: number;
}

export interface Receipt {
  transferId: string;
  payerBalance: number;
  payeeBalance: number;
  replayed: boolean;
}

export interface Movement {
  transferId: string;
  amount: number;
  balanceAfter: number;
  counterparty: string;
  memo: string;
  reverses?: string;
  /** Milliseconds since the epoch. */
  at: number;
}

export interface HistoryPage {
  items: Movement[];
  nextCursor?: string;
}

/** The account owner string of a user (their pairwise id from `identity`). */
export function user(pairwiseId: string): string {
  return `user:${pairwiseId}`;
}

/** The account owner string of a pool (a-z, 0-9, `-`), e.g. a community's donations. */
export function pool(name: string): string {
  return `pool:${name}`;
}

const optional = (value: bigint | undefined) => (value === undefined ? undefined : toNumber(value));

function account_(a: wit.Account): Account {
  return { id: a.id, currency: a.currency, owner: a.owner, balance: toNumber(a.balance), floor: toNumber(a.floor), cap: optional(a.cap) };
}

function receipt(r: wit.Receipt): Receipt {
  return { transferId: r.transferId, payerBalance: toNumber(r.payerBalance), payeeBalance: toNumber(r.payeeBalance), replayed: r.replayed };
}

export function currencies(): Currency[] {
  return call(() => wit.currencies()).map((c) => ({ code: c.code, name: c.name, decimals: c.decimals, floor: toNumber(c.floor), cap: optional(c.cap) }));
}

/** The account of `owner` in `currency`, opened on first use. */
export function account(currency: string, owner: string): Account {
  return account_(call(() => wit.openAccount(currency, owner)));
}

export function getAccount(id: string): Account {
  return account_(call(() => wit.getAccount(id)));
}

/** Move `amount` minor units from `payer` to `payee` (account ids); the same `idempotencyKey` never moves it twice. */
export function transfer(payer: string, payee: string, amount: number, idempotencyKey: string, memo: string): Receipt {
  return receipt(call(() => wit.transfer({ payer, payee, amount: BigInt(amount), idempotencyKey, memo })));
}

export function reverse(transferId: string, idempotencyKey: string, memo: string): Receipt {
  return receipt(call(() => wit.reverse(transferId, idempotencyKey, memo)));
}

export function history(account: string, cursor: string | undefined, limit: number): HistoryPage {
  const page = call(() => wit.history(account, cursor, limit));
  return {
    items: page.items.map((m) => ({
      transferId: m.transferId,
      amount: toNumber(m.amount),
      balanceAfter: toNumber(m.balanceAfter),
      counterparty: m.counterparty,
      memo: m.memo,
      reverses: m.reverses,
      at: toNumber(m.at),
    })),
    nextCursor: page.nextCursor,
  };
}

export function setLimits(account: string, floor: number, cap: number | undefined): Account {
  return account_(call(() => wit.setLimits(account, BigInt(floor), cap === undefined ? undefined : BigInt(cap))));
}
