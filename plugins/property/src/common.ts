// What every part of the property plugin shares: who the property office is, the caller's
// community, ids and China Standard Time.
import { LinliError, type Request } from "@linli/sdk";
import * as identity from "@linli/sdk/identity";

/**
 * Staff who oversee the community's property services: its workers (居委会) and the admins
 * above them. They choose the community's property company and dispatch repairs to it.
 */
const MANAGER_ROLES = ["community-worker", "street-admin", "county-admin"];

/** Staff of the property office: the managers and the property company's own staff (物业人员). */
const OFFICE_ROLES = [...MANAGER_ROLES, "property-staff"];

export function isOffice(user: identity.User): boolean {
  return OFFICE_ROLES.some((role) => identity.hasRole(user, role));
}

export function isManager(user: identity.User): boolean {
  return MANAGER_ROLES.some((role) => identity.hasRole(user, role));
}

/** A manager of the community in the request's URL (see `requireOffice`). */
export function requireManager(req: Request): { user: identity.User; community: string } {
  const user = identity.requireUser();
  if (!isManager(user)) {
    throw LinliError.permissionDenied("仅限社区工作人员 (community staff only)");
  }
  return { user, community: req.tenant() };
}

/**
 * The property office of the community in the request's URL (`/t/{community}/p/property/…`):
 * the host passes only the roles that reach that community, so a worker of another community
 * is not its office. Office routes work on that community's records only.
 */
export function requireOffice(req: Request): { user: identity.User; community: string } {
  const user = identity.requireUser();
  if (!isOffice(user)) throw LinliError.permissionDenied("仅限物业办公室工作人员 (property office staff only)");
  return { user, community: req.tenant() };
}

/** A signed-in resident, with her community. */
export function requireResident(): identity.User & { community: string } {
  const user = identity.requireUser();
  if (user.kind !== "resident" || !user.community) {
    throw LinliError.permissionDenied("仅限本小区居民 (residents only)");
  }
  return user as identity.User & { community: string };
}

/** The community a request is about: the resident's own, else the one in the URL. */
export function communityOf(user: identity.User | undefined, req: Request): string {
  return user?.community ?? req.tenant();
}

/** Milliseconds since the epoch. */
export function now(): number {
  return Date.now();
}

const CST_MS = 8 * 3600 * 1000;

/** `2026-12-08T09:30` in China Standard Time → milliseconds since the epoch. */
export function parseTime(text: string): number {
  const match = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})$/.exec(text.trim());
  if (!match) throw LinliError.invalid(`时间格式应为 2026-12-08T09:30 (expected YYYY-MM-DDTHH:MM, got \`${text}\`)`);
  const [, y, mo, d, h, mi] = match.map(Number);
  const ms = Date.UTC(y, mo - 1, d, h, mi) - CST_MS;
  const back = new Date(ms + CST_MS);
  if (back.getUTCMonth() !== mo - 1 || back.getUTCDate() !== d || h > 23 || mi > 59) {
    throw LinliError.invalid(`没有这个时间 (no such time: \`${text}\`)`);
  }
  return ms;
}

/** Milliseconds since the epoch → `2026-12-08T09:30` in China Standard Time. */
export function formatTime(ms: number): string {
  return new Date(ms + CST_MS).toISOString().slice(0, 16);
}

/** A random id: `prefix` and 12 hexadecimal digits. */
export function newId(prefix: string): string {
  const bytes = new Uint8Array(6);
  crypto.getRandomValues(bytes);
  return prefix + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** `text` trimmed, 1–`max` characters, else `invalid-argument` naming `what`. */
export function required(text: unknown, what: string, max: number): string {
  const value = typeof text === "string" ? text.trim() : "";
  const length = [...value].length;
  if (length === 0 || length > max) throw LinliError.invalid(`${what}须为1–${max}个字 (${what}: 1–${max} characters)`);
  return value;
}
