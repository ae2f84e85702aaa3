// 报事报修: a resident's repair request becomes a host work order reported by her (she follows
// it in the app too), with up to four photos; the community's staff dispatch it to the
// community's property company (an organisation of the base data), whose staff resolve it in
// the office pages, and she rates it when it is resolved.
import { LinliError, json, type Params, type Request, type Response } from "@linli/sdk";
import * as base from "@linli/sdk/base";
import { Collection } from "@linli/sdk/data";
import * as identity from "@linli/sdk/identity";
import * as tickets from "@linli/sdk/tickets";
import { isManager, isOffice, now, requireManager, requireOffice, requireResident, required } from "./common";

/** What residents report, and the words of the work order's title. */
export const KINDS: Record<string, string> = {
  water: "水管漏水",
  electric: "电路故障",
  door: "门窗门禁",
  lift: "电梯故障",
  public: "公共设施",
  other: "其他报修",
};

export interface Repair {
  /** The host ticket's id. */
  id: string;
  community: string;
  reporter: string;
  reporterName: string;
  kind: string;
  description: string;
  location: string;
  photos: number;
  createdAt: number;
}

export const repairs = new Collection<Repair>("repairs");

/** Each community's property company, an organisation of the base data, keyed by community. */
interface Company {
  id: string;
  name: string;
}
const companies = new Collection<Company>("companies");

/** The kind the base data gives property companies. */
const PROPERTY_KIND = "物业";

/** The repair with its ticket's current state, as pages show it. */
function view(repair: Repair): Record<string, unknown> {
  const ticket = tickets.get(repair.id);
  return {
    ...repair,
    kindName: KINDS[repair.kind] ?? repair.kind,
    status: ticket.status,
    assignee: ticket.assignee ?? null,
    dueAt: ticket.dueAt,
    rating: ticket.rating ?? null,
  };
}

/** The caller's own repair; another resident's is as good as absent. */
function mine(id: string, user: identity.User): Repair {
  const found = repairs.get(id)?.value;
  if (!found || found.reporter !== user.id) throw LinliError.notFound(`没有这条报修 (no repair \`${id}\`)`);
  return found;
}

/** A repair of the office's community. */
function ofCommunity(id: string, community: string): Repair {
  const found = repairs.get(id)?.value;
  if (!found || found.community !== community) throw LinliError.notFound(`本社区没有这条报修 (no repair \`${id}\` here)`);
  return found;
}

export function report(req: Request): Response {
  const user = requireResident();
  const body = req.json<{ kind?: string; description?: string; location?: string }>();
  const kind = typeof body.kind === "string" && body.kind in KINDS ? body.kind : undefined;
  if (!kind) throw LinliError.invalid(`报修类别须为：${Object.keys(KINDS).join("、")}`);
  const description = required(body.description, "问题描述", 1000);
  const location = required(body.location, "位置", 100);
  const ticket = tickets.report({
    category: "repair",
    title: `${KINDS[kind]}：${location}`,
    description,
    tenant: user.community,
    location,
    alarm: undefined,
  });
  const repair: Repair = {
    id: ticket.id,
    community: user.community,
    reporter: user.id,
    reporterName: user.displayName,
    kind,
    description,
    location,
    photos: 0,
    createdAt: now(),
  };
  repairs.insert(repair.id, repair);
  return json(201, view(repair));
}

/**
 * A photo (JPEG, PNG or WebP; the host checks its bytes): the request's body, or from a page
 * (whose bridge carries text) `{"image": "<base64>"}`.
 */
export function addPhoto(req: Request, params: Params): Response {
  const user = requireResident();
  const repair = mine(params.require("id"), user);
  const image = (req.header("content-type") ?? "").startsWith("application/json") ? fromBase64(req.json<{ image?: unknown }>().image) : req.body;
  if (image.length === 0) throw LinliError.invalid("照片为空 (the photo is empty)");
  const n = tickets.addPhoto(repair.id, image);
  repairs.modify(repair.id, (r) => ({ ...r, photos: Math.max(r.photos, n) }));
  return json(201, { n });
}

function fromBase64(text: unknown): Uint8Array {
  if (typeof text !== "string") throw LinliError.invalid("image 须为 base64 文本 (image must be base64 text)");
  let binary: string;
  try {
    binary = atob(text.replace(/^data:[^,]*,/, ""));
  } catch {
    throw LinliError.invalid("image 不是有效的 base64 (image is not valid base64)");
  }
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

export function listMine(): Response {
  const user = identity.requireUser();
  const list = repairs.queryAll("reporter", user.id).map((v) => v.value);
  list.sort((a, b) => b.createdAt - a.createdAt);
  return json(200, list.map(view));
}

export function rate(req: Request, params: Params): Response {
  const user = requireResident();
  const repair = mine(params.require("id"), user);
  const body = req.json<{ rating?: number; feedback?: string }>();
  const rating = Number(body.rating);
  if (!Number.isInteger(rating) || rating < 1 || rating > 5) throw LinliError.invalid("评分为1–5星 (a rating of 1 to 5)");
  const feedback = typeof body.feedback === "string" && body.feedback.trim() !== "" ? body.feedback.trim() : undefined;
  tickets.rate(repair.id, rating, feedback);
  return json(200, view(repair));
}

/** The office's list: its community's repairs (all of them for the county's admins), open ones first. */
export function officeList(req: Request): Response {
  const { community } = requireOffice(req);
  const list = repairs.queryAll("community", community).map((v) => view(v.value));
  const closed = (r: Record<string, unknown>) => (r.status === "closed" ? 1 : 0);
  list.sort((a, b) => closed(a) - closed(b) || Number(b.createdAt) - Number(a.createdAt));
  return json(200, list);
}

export function officeComment(req: Request, params: Params): Response {
  const repair = ofCommunity(params.require("id"), requireOffice(req).community);
  const note = required(req.json<{ note?: string }>().note, "备注", 2000);
  tickets.comment(repair.id, note);
  return json(200, view(repair));
}

export function officeResolve(req: Request, params: Params): Response {
  const { user, community } = requireOffice(req);
  const repair = ofCommunity(params.require("id"), community);
  const note = required(req.json<{ note?: string }>().note, "处理结果", 2000);
  // The company's staff resolve what was dispatched to their company; the community's
  // staff may resolve any of its repairs themselves.
  if (!isManager(user)) {
    const ticket = tickets.get(repair.id);
    const company = companyOf(community);
    if (ticket.status !== "dispatched" && ticket.status !== "accepted") {
      throw LinliError.conflict("这条报修尚未派给物业公司 (the repair has not been dispatched to the property company)");
    }
    if (!company || ticket.assignee !== company.name) {
      throw LinliError.permissionDenied("这条报修派给了其他单位 (the repair was dispatched elsewhere)");
    }
  }
  // The host records the plugin as the actor: the note names who did the work.
  tickets.resolve(repair.id, `${user.displayName}：${note}`);
  return json(200, view(repair));
}

/** Property companies of the base data: those registered at the community, else all the plugin sees. */
function propertyCompanies(community: string): base.Organisation[] {
  const property = base.organisations().filter((o) => o.kind.includes(PROPERTY_KIND));
  const here = property.filter((o) => o.tenant === community);
  return here.length > 0 ? here : property;
}

/**
 * The community's property company: the one its staff chose, else the only property company
 * the base data registers at the community.
 */
function companyOf(community: string): Company | undefined {
  const chosen = companies.get(community)?.value;
  if (chosen) return chosen;
  const here = propertyCompanies(community).filter((o) => o.tenant === community);
  return here.length === 1 ? { id: here[0].id, name: here[0].name } : undefined;
}

/**
 * The community's property company and the organisations to choose it from (the host
 * refuses, at dispatch, one that does not serve the community).
 */
export function company(req: Request): Response {
  const { user, community } = requireOffice(req);
  const choices = propertyCompanies(community).map((o) => ({ id: o.id, name: o.name, contact: o.contact }));
  return json(200, { company: companyOf(community) ?? null, chosen: companies.get(community) !== undefined, choices, manager: isManager(user) });
}

export function setCompany(req: Request): Response {
  const { community } = requireManager(req);
  const id = required(req.json<{ organisation?: string }>().organisation, "物业公司", 64);
  const organisation = base.organisations().find((o) => o.id === id);
  if (!organisation) throw LinliError.notFound(`基础数据中没有这个组织 (no organisation \`${id}\`)`);
  const chosen: Company = { id: organisation.id, name: organisation.name };
  companies.put(community, chosen);
  return json(200, { community, company: chosen });
}

/** Send a repair's work order to the community's property company. */
export function officeDispatch(req: Request, params: Params): Response {
  const { community } = requireManager(req);
  const repair = ofCommunity(params.require("id"), community);
  const chosen = companyOf(community);
  if (!chosen) throw LinliError.conflict("请先设置本社区的物业公司 (choose the community's property company first)");
  tickets.dispatchToOrganisation(repair.id, chosen.id);
  return json(200, view(repair));
}

/** The work order's trace, for the resident who reported it or her community's office. */
export function steps(req: Request, params: Params): Response {
  const user = identity.requireUser();
  const id = params.require("id");
  const repair = isOffice(user) ? ofCommunity(id, req.tenant()) : mine(id, user);
  return json(200, tickets.steps(repair.id));
}
