// Platform events (`events` capability): `export const eventHandler = onEvent((event) => …)`.
import type { Event as WitEvent } from "linli:platform/event-handler@0.1.0";
import { LinliError, toLinliError, toNumber } from "./errors";

export interface Event {
  seq: number;
  kind: string;
  tenant: string;
  subject: string;
  payload: string;
  /** Milliseconds since the epoch. */
  at: number;
}

/** The event's payload, parsed. */
export function payload<T = unknown>(event: Event): T {
  try {
    return JSON.parse(event.payload) as T;
  } catch (e) {
    throw LinliError.invalid(`event ${event.seq} (${event.kind}) has an unexpected payload: ${e instanceof Error ? e.message : e}`);
  }
}

/** The `linli:platform/event-handler` export. A thrown error fails the delivery, which is retried. */
export function onEvent(handle: (event: Event) => void): { onEvent(event: WitEvent): void } {
  return {
    onEvent(raw) {
      try {
        handle({ ...raw, seq: toNumber(raw.seq), at: toNumber(raw.at) });
      } catch (e) {
        // The bindings turn a thrown `payload` into the WIT result's error.
        const error = toLinliError(e);
        throw Object.assign(new Error(error.message), { payload: error.toRecord() });
      }
    },
  };
}
