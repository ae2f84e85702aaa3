// 物业通知 and 投诉建议: the office posts notices to a community; residents send complaints and
// suggestions, which the office answers (the resident is told in the app's inbox).
import { LinliError, json, type Params, type Request, type Response } from "@linli/sdk";
import { Collection } from "@linli/sdk/data";
import * as identity from "@linli/sdk/identity";
import * as log from "@linli/sdk/log";
import * as notify from "@linli/sdk/notify";
import { communityOf, newId, now, requireOffice, requireResident, required } from "./common";

export interface Notice {
  id: string;
  community: string;
  title: string;
  body: string;
  author: string;
  publishedAt: number;
}

export interface Feedback {
  id: string;
  community: string;
  kind: "complaint" | "suggestion";
  text: string;
  author: string;
  authorName: string;
  status: "open" | "answered";
  answer: string | null;
  answeredBy: string | null;
  createdAt: number;
}

export const notices = new Collection<Notice>("notices");
export const feedback = new Collection<Feedback>("feedback");

export function listNotices(req: Request): Response {
  const community = communityOf(identity.currentUser(), req);
  const list = notices.queryAll("community", community).map((v) => v.value);
  list.sort((a, b) => b.publishedAt - a.publishedAt);
  return json(200, list);
}

export function publishNotice(req: Request): Response {
  const { user, community } = requireOffice(req);
  const body = req.json<{ title?: string; body?: string }>();
  const notice: Notice = {
    id: newId("n"),
    community,
    title: required(body.title, "标题", 60),
    body: required(body.body, "正文", 4000),
    author: user.displayName,
    publishedAt: now(),
  };
  notices.insert(notice.id, notice);
  return json(201, notice);
}

export function withdrawNotice(req: Request, params: Params): Response {
  const { community } = requireOffice(req);
  const id = params.require("id");
  if (notices.get(id)?.value.community !== community || !notices.delete(id)) {
    throw LinliError.notFound(`本社区没有这条通知 (no notice \`${id}\` here)`);
  }
  return json(200, { removed: id });
}

export function send(req: Request): Response {
  const user = requireResident();
  const body = req.json<{ kind?: string; text?: string }>();
  if (body.kind !== "complaint" && body.kind !== "suggestion") throw LinliError.invalid("类型须为 complaint（投诉）或 suggestion（建议）");
  const item: Feedback = {
    id: newId("f"),
    community: user.community,
    kind: body.kind,
    text: required(body.text, "内容", 2000),
    author: user.id,
    authorName: user.displayName,
    status: "open",
    answer: null,
    answeredBy: null,
    createdAt: now(),
  };
  feedback.insert(item.id, item);
  return json(201, item);
}

export function listMine(): Response {
  const user = identity.requireUser();
  const list = feedback.queryAll("author", user.id).map((v) => v.value);
  list.sort((a, b) => b.createdAt - a.createdAt);
  return json(200, list);
}

export function officeList(req: Request): Response {
  const { community } = requireOffice(req);
  const list = feedback.queryAll("community", community).map((v) => v.value);
  list.sort((a, b) => (a.status === b.status ? b.createdAt - a.createdAt : a.status === "open" ? -1 : 1));
  return json(200, list);
}

export function answer(req: Request, params: Params): Response {
  const { user, community } = requireOffice(req);
  const id = params.require("id");
  const text = required(req.json<{ answer?: string }>().answer, "答复", 2000);
  if (feedback.get(id)?.value.community !== community) throw LinliError.notFound(`本社区没有这条投诉建议 (no such item \`${id}\` here)`);
  const answered = feedback.modify(id, (f) => ({ ...f, status: "answered" as const, answer: text, answeredBy: user.displayName })).value;
  try {
    notify.user(answered.author, "物业已答复您的意见", text, `/t/${answered.community}/p/property/ui/index.html#feedback`);
  } catch (e) {
    // The answer stands whether or not the inbox message goes out.
    log.warn(`feedback ${id}: the resident was not told: ${e instanceof Error ? e.message : e}`);
  }
  return json(200, answered);
}
