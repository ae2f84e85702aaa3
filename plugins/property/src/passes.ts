// 访客通行证: a resident issues a time-limited pass for a visitor — a plate the community's gate
// lets in, or a person who shows its code at the gate. The plate goes to the gate controller
// the office named for the community; the `sweep` schedule retries a gate that did not answer
// and takes a plate off once its pass expired or was revoked.
import { LinliError, json, type Params, type Request, type Response } from "@linli/sdk";
import { Collection } from "@linli/sdk/data";
import * as devices from "@linli/sdk/devices";
import * as identity from "@linli/sdk/identity";
import * as log from "@linli/sdk/log";
import { formatTime, isOffice, newId, now, parseTime, requireOffice, requireResident, required } from "./common";

const HOUR_MS = 3600 * 1000;
const MAX_HOURS = 72;
const GATE_TIMEOUT_MS = 2000;
/** Then the pass shows the failure and staff see to the gate. */
const GATE_ATTEMPTS = 10;
const PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼";

/** `none`: a person's pass, or no gate configured; the others follow the plate at the gate. */
type GateState = "none" | "pending" | "listed" | "removed" | "failed";

export interface Pass {
  id: string;
  community: string;
  issuer: string;
  issuerName: string;
  visitor: string;
  plate: string | null;
  /** The code a visitor on foot shows at the gate. */
  code: string;
  from: number;
  to: number;
  revoked: boolean;
  /** `yes` while the pass is in force or its plate still at the gate (an index for the sweep). */
  active: "yes" | "no";
  gate: string | null;
  gateState: GateState;
  gateAttempts: number;
  gateError: string | null;
  createdAt: number;
}

export const passes = new Collection<Pass>("passes");
/** Per community: the gate controller visitor plates go to. */
const gates = new Collection<{ gate: string }>("gates");

/** A mainland plate, normalised: `浙A·12345` → `浙A12345`. */
export function normalisePlate(text: string): string {
  const plate = [...text.toUpperCase()].filter((c) => !/\s/.test(c) && c !== "·" && c !== "-").join("");
  const chars = [...plate];
  const ok = chars.length >= 7 && chars.length <= 8 && PROVINCES.includes(chars[0]) && /^[A-Z]$/.test(chars[1]) && /^[A-Z0-9]+$/.test(chars.slice(2).join(""));
  if (!ok) throw LinliError.invalid(`车牌号格式不正确，例如 浙A12345 (not a plate number: \`${text}\`)`);
  return plate;
}

function code(): string {
  const bytes = new Uint32Array(1);
  crypto.getRandomValues(bytes);
  return String(bytes[0] % 1_000_000).padStart(6, "0");
}

function view(pass: Pass, at: number): Record<string, unknown> {
  const state = pass.revoked ? "revoked" : at < pass.from ? "upcoming" : at < pass.to ? "valid" : "expired";
  return { ...pass, state, fromText: formatTime(pass.from), toText: formatTime(pass.to) };
}

/** Bring the gate in line with the pass: the plate listed while in force, removed after. */
function syncGate(pass: Pass, at: number): Pass {
  const inForce = !pass.revoked && at < pass.to;
  let command: Record<string, unknown> | undefined;
  if (pass.gate && pass.plate) {
    if (inForce && pass.gateState === "pending") command = { command: "whitelist-add", plate: pass.plate, from: pass.from, to: pass.to, pass: pass.id };
    if (!inForce && pass.gateState === "listed") command = { command: "whitelist-remove", plate: pass.plate, pass: pass.id };
    if (!inForce && pass.gateState === "pending") pass = { ...pass, gateState: "removed" };
  }
  if (command && pass.gate) {
    try {
      const ack = devices.command(pass.gate, command, GATE_TIMEOUT_MS) as { ok?: boolean } | null;
      if (ack && ack.ok === false) throw LinliError.invalid(`道闸拒绝：${JSON.stringify(ack)}`);
      pass = { ...pass, gateState: inForce ? "listed" : "removed", gateAttempts: 0, gateError: null };
    } catch (e) {
      const attempts = pass.gateAttempts + 1;
      const message = e instanceof Error ? e.message : String(e);
      pass = { ...pass, gateAttempts: attempts, gateError: message, gateState: attempts >= GATE_ATTEMPTS ? "failed" : pass.gateState };
      log.warn(`pass ${pass.id}: the gate ${pass.gate} did not take the command: ${message}`);
    }
  }
  const settled = pass.gateState !== "pending" && pass.gateState !== "listed";
  return { ...pass, active: inForce || !settled ? "yes" : "no" };
}

export function issue(req: Request): Response {
  const user = requireResident();
  const body = req.json<{ visitor?: string; plate?: string; from?: string; hours?: number }>();
  const visitor = required(body.visitor, "访客称呼", 20);
  const plate = typeof body.plate === "string" && body.plate.trim() !== "" ? normalisePlate(body.plate) : null;
  const at = now();
  const from = body.from ? parseTime(body.from) : at;
  const hours = Number(body.hours ?? 4);
  if (!Number.isInteger(hours) || hours < 1 || hours > MAX_HOURS) throw LinliError.invalid(`有效期为1–${MAX_HOURS}小时 (1–${MAX_HOURS} hours)`);
  const to = from + hours * HOUR_MS;
  if (to <= at) throw LinliError.invalid("通行证的时间已经过去 (that time is over)");
  const gate = plate ? (gates.get(user.community)?.value.gate ?? null) : null;
  let pass: Pass = {
    id: newId("v"),
    community: user.community,
    issuer: user.id,
    issuerName: user.displayName,
    visitor,
    plate,
    code: code(),
    from,
    to,
    revoked: false,
    active: "yes",
    gate,
    gateState: gate ? "pending" : "none",
    gateAttempts: 0,
    gateError: null,
    createdAt: at,
  };
  passes.insert(pass.id, pass);
  pass = syncGate(pass, at);
  passes.put(pass.id, pass);
  return json(201, view(pass, at));
}

export function listMine(): Response {
  const user = identity.requireUser();
  const at = now();
  const list = passes.queryAll("issuer", user.id).map((v) => v.value);
  list.sort((a, b) => b.createdAt - a.createdAt);
  return json(200, list.map((p) => view(p, at)));
}

/** By the resident who issued it, or by her community's office. */
export function revoke(req: Request, params: Params): Response {
  const user = identity.requireUser();
  const id = params.require("id");
  const current = passes.get(id)?.value;
  const office = isOffice(user) && current?.community === req.tenant();
  if (!current || (current.issuer !== user.id && !office)) throw LinliError.notFound(`没有这张通行证 (no pass \`${id}\`)`);
  const at = now();
  const revoked = passes.modify(id, (p) => ({ ...p, revoked: true })).value;
  const synced = syncGate(revoked, at);
  passes.put(id, synced);
  return json(200, view(synced, at));
}

/**
 * Passes whose plate the gate has not taken or given back: the gate refused or did not answer
 * (the sweep keeps retrying up to ten times, then the pass shows `failed`). A plate that was
 * not taken off stays let in: the office sees to the gate and retries.
 */
export function unsynced(req: Request): Response {
  const { community } = requireOffice(req);
  const at = now();
  const list = passes
    .queryAll("community", community)
    .map((v) => v.value)
    .filter((p) => p.gateState === "failed" || (p.gateError !== null && (p.gateState === "pending" || p.gateState === "listed")));
  list.sort((a, b) => b.createdAt - a.createdAt);
  return json(200, list.map((p) => view(p, at)));
}

/** The office tries the gate again now: the plate on while the pass is in force, else off. */
export function retry(req: Request, params: Params): Response {
  const { community } = requireOffice(req);
  const id = params.require("id");
  const current = passes.get(id)?.value;
  if (!current || current.community !== community) throw LinliError.notFound(`本社区没有这张通行证 (no pass \`${id}\` here)`);
  if (!current.gate || !current.plate) throw LinliError.invalid("这张通行证不经过道闸 (the pass has no plate at a gate)");
  const at = now();
  const inForce = !current.revoked && at < current.to;
  // A failed pass no longer says which way it was going: the pass's time decides.
  const again: Pass = current.gateState === "failed" ? { ...current, gateState: inForce ? "pending" : "listed", gateAttempts: 0 } : { ...current, gateAttempts: 0 };
  const synced = syncGate(again, at);
  passes.put(id, synced);
  return json(200, view(synced, at));
}

/** The gate guard's check: a code or a plate, valid now or not. */
export function check(req: Request): Response {
  const { community } = requireOffice(req);
  const codeOrPlate = required(req.queryParam("q"), "通行码或车牌", 10).toUpperCase();
  const at = now();
  const found = passes
    .queryAll("community", community)
    .map((v) => v.value)
    .filter((p) => p.code === codeOrPlate || p.plate === codeOrPlate)
    .map((p) => view(p, at));
  return json(200, found);
}

export function setGate(req: Request): Response {
  const { community } = requireOffice(req);
  const body = req.json<{ gate?: string }>();
  const gateId = required(body.gate, "道闸设备编号", 64);
  const device = devices.get(gateId);
  if (device.deviceType !== "gate-controller") {
    throw LinliError.invalid(`\`${gateId}\` 不是道闸 (is a ${device.deviceType}, not a gate-controller)`);
  }
  gates.put(community, { gate: gateId });
  return json(200, { community, gate: gateId });
}

/** The schedule's tick: retry gates that did not answer, take expired plates off. */
export function sweep(): void {
  const at = now();
  for (const { key, value } of passes.queryAll("active", "yes")) {
    const synced = syncGate(value, at);
    if (JSON.stringify(synced) !== JSON.stringify(value)) passes.put(key, synced);
  }
}
