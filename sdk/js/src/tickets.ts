// Work orders (`tickets` capability): open them in the host's dispatch and follow them.
import * as wit from "linli:platform/tickets@0.1.0";
import { call, toNumber } from "./errors";

export type Category = wit.Category;
export type NewTicket = wit.NewTicket;

export interface Ticket extends Omit<wit.Ticket, "dueAt" | "createdAt"> {
  dueAt: number;
  createdAt: number;
}

export interface Step extends Omit<wit.Step, "at"> {
  at: number;
}

function ticket(t: wit.Ticket): Ticket {
  return { ...t, dueAt: toNumber(t.dueAt), createdAt: toNumber(t.createdAt) };
}

export function categories(): Category[] {
  return call(() => wit.categories());
}

export function create(newTicket: NewTicket): Ticket {
  return ticket(call(() => wit.create(newTicket)));
}

export function get(id: string): Ticket {
  return ticket(call(() => wit.get(id)));
}

export function steps(id: string): Step[] {
  return call(() => wit.steps(id)).map((s) => ({ ...s, at: toNumber(s.at) }));
}

/** Tickets this plugin opened, newest first. */
export function created(status: string | undefined, limit: number): Ticket[] {
  return call(() => wit.listCreated(status, limit)).map(ticket);
}

export function comment(id: string, note: string): Ticket {
  return ticket(call(() => wit.comment(id, note)));
}

export function resolve(id: string, note: string): Ticket {
  return ticket(call(() => wit.resolve(id, note)));
}

/** Open a ticket reported by the signed-in resident: she follows it in the app and rates it. */
export function report(newTicket: NewTicket): Ticket {
  return ticket(call(() => wit.report(newTicket)));
}

/** Add a photo (JPEG, PNG or WebP, at most 2 MiB, 4 per ticket) to a ticket this plugin opened; its number. */
export function addPhoto(id: string, image: Uint8Array): number {
  return call(() => wit.addPhoto(id, image));
}

/** Close a resolved ticket this plugin opened with its reporter's rating (1–5), as that signed-in resident. */
export function rate(id: string, rating: number, feedback: string | undefined): Ticket {
  return ticket(call(() => wit.rate(id, rating, feedback)));
}

/** Dispatch a pending ticket this plugin opened to an organisation of the base data (e.g. the community's property company) that serves the ticket's place. */
export function dispatchToOrganisation(id: string, organisation: string): Ticket {
  return ticket(call(() => wit.dispatchToOrganisation(id, organisation)));
}
