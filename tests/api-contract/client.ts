// A client of the host's HTTP API generated from its OpenAPI document (openapi-typescript
// types, openapi-fetch calls). scripts/check-api type-checks this file: the calls a vendor or
// a county's own tooling would write must compile, and the mistakes below must not.
import createClient from "openapi-fetch";
import type { components, paths } from "./generated/linli";

type Alarm = components["schemas"]["Alarm"];

const linli = createClient<paths>({ baseUrl: "http://127.0.0.1:8080" });

/** The signed-in person: kind and the masked phone, never an account id. */
export async function me(session: string): Promise<string> {
  const { data, error } = await linli.GET("/api/me", { headers: { authorization: `Bearer ${session}` } });
  if (error) {
    return `${error.error.code}: ${error.error.message}`;
  }
  const kind: "resident" | "staff" = data.kind;
  return `${data.display_name} (${kind}, ${data.phone})`;
}

/** The active alarms of one community, as the console lists them. */
export async function activeAlarms(token: string, tenant: string): Promise<Alarm[]> {
  const { data, error } = await linli.GET("/admin/alarms", {
    params: { query: { status: "active", tenant, limit: 50 } },
    headers: { authorization: `Bearer ${token}` },
  });
  if (error) {
    throw new Error(error.error.message);
  }
  return data.alarms.filter((alarm) => alarm.acknowledged_at == null);
}

// Mistakes the generated types must refuse.
export async function mistakes(): Promise<void> {
  // @ts-expect-error `status` is a query parameter, not a path parameter.
  await linli.GET("/admin/alarms", { params: { path: { status: "active" } } });
  // @ts-expect-error `limit` is a number.
  await linli.GET("/admin/alarms", { params: { query: { limit: "many" } } });
  // @ts-expect-error there is no such operation.
  await linli.GET("/admin/alarm");
  const { data } = await linli.GET("/api/me");
  // @ts-expect-error `/api/me` shows no account id.
  data?.id;
}
