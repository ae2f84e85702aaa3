// Notifications (`notify` capability): the app's inbox and SMS.
import * as wit from "linli:platform/notify@0.1.0";
import { call } from "./errors";

/** A message to one user's inbox (their pairwise id). */
export function user(userId: string, title: string, body: string, link?: string): void {
  call(() => wit.toUser(userId, { title, body, link }));
}

/** A message to the staff with `role` at `tenant`; how many got it. */
export function staff(role: string, tenant: string, title: string, body: string, link?: string): number {
  return call(() => wit.toStaff(role, tenant, { title, body, link }));
}

export function sms(phone: string, text: string): void {
  call(() => wit.sms(phone, text));
}
