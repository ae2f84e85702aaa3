// Who is calling (`identity` capability): the signed-in user as this plugin may know them.
import * as wit from "linli:platform/identity@0.1.0";
import { LinliError, call } from "./errors";

export type User = wit.User;
export type RoleGrant = wit.RoleGrant;
export type AccountKind = wit.AccountKind;
export type ProfileField = wit.ProfileField;
export type ProfileEntry = wit.ProfileEntry;

/** The signed-in user (their id is pairwise: stable for this plugin only), or undefined for a visitor. */
export function currentUser(): User | undefined {
  return call(() => wit.currentUser());
}

/** The signed-in user, or `permission-denied` for a visitor. */
export function requireUser(): User {
  const user = currentUser();
  if (!user) throw LinliError.permissionDenied("请先登录 (sign in first)");
  return user;
}

export function hasRole(user: User, role: string): boolean {
  return user.roles.some((grant) => grant.role === role);
}

/** Fields of the caller's own profile; each needs the resident's consent (`consent-required` until given). */
export function profile(fields: ProfileField[]): ProfileEntry[] {
  return call(() => wit.profile(fields));
}

export function profileField(field: ProfileField): string {
  const entry = profile([field])[0];
  if (!entry) throw LinliError.internal("the host returned no value");
  return entry.value;
}

/** The caller's resident record id in the base data, with their consent. */
export function residentRecord(): string | undefined {
  return call(() => wit.residentRecord());
}

/** Where the app asks the resident for consent to this plugin. */
export function consentPage(pluginId: string): string {
  return `/app/#/consent/${pluginId}`;
}

/** Staff of the installation's area with `role`. */
export function staffWithRole(role: string): User[] {
  return call(() => wit.listStaff(role));
}
