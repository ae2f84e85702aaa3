// Devices of the area (`devices` capability): state, alarms and commands.
import * as wit from "linli:platform/devices@0.1.0";
import { LinliError, call, toNumber } from "./errors";

export type Location = wit.Location;

export interface Device extends Omit<wit.Device, "lastSeen"> {
  /** Milliseconds since the epoch. */
  lastSeen?: number;
}

export interface Alarm extends Omit<wit.Alarm, "raisedAt" | "clearedAt"> {
  raisedAt: number;
  clearedAt?: number;
}

function device(d: wit.Device): Device {
  return { ...d, lastSeen: d.lastSeen === undefined ? undefined : toNumber(d.lastSeen) };
}

function alarm_(a: wit.Alarm): Alarm {
  return { ...a, raisedAt: toNumber(a.raisedAt), clearedAt: a.clearedAt === undefined ? undefined : toNumber(a.clearedAt) };
}

function parse(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw LinliError.internal(`${what} is not JSON`);
  }
}

export function list(deviceType?: string): Device[] {
  return call(() => wit.listDevices(deviceType)).map(device);
}

export function get(id: string): Device {
  return device(call(() => wit.getDevice(id)));
}

/** The latest message of a device, parsed. */
export function latest(deviceId: string): unknown {
  const text = call(() => wit.latestTelemetry(deviceId));
  return text === undefined ? undefined : parse(text, "the telemetry");
}

/** Alarms of the area, newest first: `status` is `active`, `acknowledged` or `cleared`. */
export function alarms(status: string | undefined, limit: number): Alarm[] {
  return call(() => wit.listAlarms(status, limit)).map(alarm_);
}

export function alarm(id: string): Alarm {
  return alarm_(call(() => wit.getAlarm(id)));
}

export function acknowledge(id: string): Alarm {
  return alarm_(call(() => wit.acknowledgeAlarm(id)));
}

/** Send a command (JSON) and wait up to `timeoutMs` for the device's answer. */
export function command(deviceId: string, body: unknown, timeoutMs: number): unknown {
  return parse(call(() => wit.sendCommand(deviceId, JSON.stringify(body), timeoutMs)), "the device's answer");
}
