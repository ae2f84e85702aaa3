// Structured logging into the host's log, tagged with the plugin, tenant and request.
import { log } from "linli:platform/log@0.1.0";

export function trace(message: string): void {
  log("trace", message);
}
export function debug(message: string): void {
  log("debug", message);
}
export function info(message: string): void {
  log("info", message);
}
export function warn(message: string): void {
  log("warn", message);
}
export function error(message: string): void {
  log("error", message);
}
