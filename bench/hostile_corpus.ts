/**
 * Hostile message contents for `tests/hostile_events_test.ts` and
 * `bench/soak.ts`: what an allowed operator's client (or a compromised one)
 * might put into the encrypted room. Each case says what the agent must do with
 * it, so a run can check every event, not only that nothing crashed:
 *
 * - `ignore`: not a command; no reply, no audit record.
 * - `refuse`: a command that is refused (an `nc.airlock.deny` record, a reply).
 * - `run`: a harmless command that runs (an `nc.command.execute` record).
 * - `maybe`: runs, is refused or is dropped (the outcome depends on how a
 *   library copes with it); either way it must never run the canary.
 * - `reject`: the homeserver or the sender's SDK refuses to send it.
 *
 * Many cases try to run the canary program (`CANARY`): through `formatted_body`,
 * edits, wrong `msgtype`s, wrong event types, plaintext duplicates, reply
 * fallbacks and shell syntax. None of them may run it.
 * @module
 */

import type { MatrixClient } from "matrix-js-sdk";
import { loadConfig } from "../lib/config/config.ts";
import { classify } from "../lib/matrix/events.ts";
import { replyContent } from "../lib/matrix/reply.ts";
import { loadOrCreateSigningKey, SIGNING_KEY_FILE } from "../lib/audit/signing_key.ts";
import { AUDIT_LOG_FILE, openAuditLog } from "../lib/audit/log.ts";
import { openSeenEvents } from "../lib/airlock/replay.ts";
import { loadPolicy } from "../lib/policy/policy_file.ts";
import { execIdentity } from "../lib/exec/exec_user.ts";
import { createHandler } from "../lib/worker/handler.ts";
import { monitorClient } from "../lib/worker/monitor_client.ts";
import { requestHandler } from "../lib/monitor/requests.ts";
import type { ToMonitor, ToWorker } from "../lib/monitor/protocol.ts";
import type { Replier, ReplyParts } from "../lib/worker/reply_parts.ts";

/** The bin-dir program that must never run. */
export const CANARY = "canary";

/** What the agent must do with a case; see the module documentation. */
export type Expect = "ignore" | "refuse" | "run" | "maybe" | "reject";

/** A message content (any JSON object). */
export type Content = Record<string, unknown>;

/** What a case may refer to when it is sent. */
export interface SendContext {
  /** Event ids of earlier `run` cases, newest last (targets for edits and replies). */
  commands: string[];
  /** The operator's user id. */
  operatorId: string;
}

/** One hostile event. */
export interface HostileCase {
  /** Short name of the trick, for the summary table. */
  kind: string;
  /** What the agent must do with it. */
  expect: Expect;
  /**
   * What it must do end to end, where that differs: a lone surrogate reaches the
   * classifier in-process, but through E2EE the agent's crypto cannot parse it.
   */
  e2e?: Expect;
  /** Event type (default `m.room.message`). */
  type?: string;
  /** Sent without encryption (a raw `PUT /send`), as a plaintext duplicate. */
  plaintext?: boolean;
  /** The content, or a function of what was sent before. */
  content: Content | ((ctx: SendContext) => Content);
  /** An edit sent right after this case, targeting it. */
  followUp?: (eventId: string) => HostileCase;
}

const TEXT = "m.text";
const HTML = "org.matrix.custom.html";

function nest(depth: number, leaf: unknown): unknown {
  let v = leaf;
  for (let i = 0; i < depth; i++) v = i % 2 ? [v] : { d: v };
  return v;
}

function lastCommand(ctx: SendContext): string {
  return ctx.commands.at(-1) ?? "$nonexistent:localhost";
}

/** Cases that are never commands: most of the corpus. `i` makes each unique. */
function silent(i: number): HostileCase[] {
  const c = CANARY;
  return [
    // Wrong types for body.
    { kind: "body:number", expect: "ignore", content: { msgtype: TEXT, body: i } },
    { kind: "body:null", expect: "ignore", content: { msgtype: TEXT, body: null, n: i } },
    { kind: "body:array", expect: "ignore", content: { msgtype: TEXT, body: [`$ ${c}`, i] } },
    {
      kind: "body:object",
      expect: "ignore",
      content: { msgtype: TEXT, body: { toString: `$ ${c}`, i } },
    },
    { kind: "body:bool", expect: "ignore", content: { msgtype: TEXT, body: true, n: i } },
    { kind: "body:missing", expect: "ignore", content: { msgtype: TEXT, n: i } },
    // Wrong or unknown msgtypes carrying the canary.
    { kind: "msgtype:notice", expect: "ignore", content: { msgtype: "m.notice", body: `$ ${c}` } },
    { kind: "msgtype:emote", expect: "ignore", content: { msgtype: "m.emote", body: `$ ${c}` } },
    {
      kind: "msgtype:unknown",
      expect: "ignore",
      content: { msgtype: `org.example.exec.${i}`, body: `$ ${c}` },
    },
    { kind: "msgtype:case", expect: "ignore", content: { msgtype: "M.TEXT", body: `$ ${c}` } },
    { kind: "msgtype:space", expect: "ignore", content: { msgtype: "m.text ", body: `$ ${c}` } },
    { kind: "msgtype:nul", expect: "ignore", content: { msgtype: "m.text\0", body: `$ ${c}` } },
    { kind: "msgtype:number", expect: "ignore", content: { msgtype: 1, body: `$ ${c}`, n: i } },
    { kind: "msgtype:null", expect: "ignore", content: { msgtype: null, body: `$ ${c}`, n: i } },
    { kind: "msgtype:array", expect: "ignore", content: { msgtype: [TEXT], body: `$ ${c}` } },
    { kind: "msgtype:missing", expect: "ignore", content: { body: `$ ${c}`, n: i } },
    // formatted_body that disagrees with body.
    {
      kind: "html:only",
      expect: "ignore",
      content: { msgtype: TEXT, format: HTML, formatted_body: `$ ${c}`, n: i },
    },
    {
      kind: "html:empty-body",
      expect: "ignore",
      content: { msgtype: TEXT, body: "", format: HTML, formatted_body: `$ ${c}` },
    },
    {
      kind: "html:chat",
      expect: "ignore",
      content: {
        msgtype: TEXT,
        body: `hello ${i}`,
        format: HTML,
        formatted_body: `<code>$ ${c}</code>`,
      },
    },
    // Edits: an edit never runs, whatever it says.
    {
      kind: "edit:new_content",
      expect: "ignore",
      content: (ctx) => ({
        msgtype: TEXT,
        body: `* $ ${c}`,
        "m.new_content": { msgtype: TEXT, body: `$ ${c}` },
        "m.relates_to": { rel_type: "m.replace", event_id: lastCommand(ctx) },
      }),
    },
    {
      kind: "edit:bare-body",
      expect: "ignore",
      content: (ctx) => ({
        msgtype: TEXT,
        body: `$ ${c}`,
        "m.relates_to": { rel_type: "m.replace", event_id: lastCommand(ctx) },
      }),
    },
    {
      kind: "edit:no-relation",
      expect: "ignore",
      content: { msgtype: TEXT, body: `$ echo nc-${i}`, "m.new_content": { body: `$ ${c}` } },
    },
    {
      kind: "edit:null-new-content",
      expect: "ignore",
      content: { msgtype: TEXT, body: `$ ${c}`, "m.new_content": null },
    },
    {
      // Synapse refuses relations to unknown events; if one got through, it is an edit.
      kind: "edit:unknown-target",
      expect: "reject",
      content: {
        msgtype: TEXT,
        body: `$ ${c}`,
        "m.new_content": { msgtype: TEXT, body: `$ ${c}` },
        "m.relates_to": { rel_type: "m.replace", event_id: `$nope${i}:localhost` },
      },
    },
    // Reply fallbacks that only quote the canary.
    { kind: "fallback:quote-only", expect: "ignore", content: { msgtype: TEXT, body: `> $ ${c}` } },
    {
      kind: "fallback:quotes",
      expect: "ignore",
      content: (ctx) => ({
        msgtype: TEXT,
        body: `> <${ctx.operatorId}> x ${i}\n> $ ${c}\n`,
        "m.relates_to": { "m.in_reply_to": { event_id: lastCommand(ctx) } },
      }),
    },
    { kind: "fallback:no-space", expect: "ignore", content: { msgtype: TEXT, body: `>$ ${c}` } },
    // Prefix games.
    { kind: "prefix:none", expect: "ignore", content: { msgtype: TEXT, body: `${c} ${i}` } },
    { kind: "prefix:no-space", expect: "ignore", content: { msgtype: TEXT, body: `$${c}` } },
    { kind: "prefix:double", expect: "ignore", content: { msgtype: TEXT, body: `$$ ${c}` } },
    { kind: "prefix:tab", expect: "ignore", content: { msgtype: TEXT, body: `$\t${c}` } },
    { kind: "prefix:nbsp", expect: "ignore", content: { msgtype: TEXT, body: `$\u00a0${c}` } },
    { kind: "prefix:empty", expect: "ignore", content: { msgtype: TEXT, body: "$ ", n: i } },
    { kind: "prefix:nul-first", expect: "ignore", content: { msgtype: TEXT, body: `\0$ ${c}` } },
    { kind: "prefix:nul-mid", expect: "ignore", content: { msgtype: TEXT, body: `$\0 ${c}` } },
    {
      kind: "prefix:rlo-first",
      expect: "ignore",
      content: { msgtype: TEXT, body: `\u202e$ ${c}` },
    },
    {
      kind: "prefix:zwsp-first",
      expect: "ignore",
      content: { msgtype: TEXT, body: `\u200b$ ${c}` },
    },
    // Lone surrogates where they cannot form a command.
    {
      kind: "surrogate:first",
      expect: "ignore",
      e2e: "refuse",
      content: { msgtype: TEXT, body: `\ud83d$ ${c} ${i}` },
    },
    {
      kind: "surrogate:only",
      expect: "ignore",
      e2e: "refuse",
      content: { msgtype: TEXT, body: `\udfff${i}` },
    },
    // Deep nesting around a non-command.
    {
      kind: "deep:body",
      expect: "ignore",
      content: { msgtype: TEXT, body: nest(60, `$ ${c}`), n: i },
    },
    {
      kind: "deep:relates_to",
      expect: "ignore",
      content: { msgtype: TEXT, body: `hi ${i}`, "m.relates_to": nest(60, `$ ${c}`) },
    },
    // Files: a command only through the caption of `$ put`, never the canary.
    {
      kind: "file:caption-canary",
      expect: "refuse",
      content: { msgtype: "m.file", body: `$ ${c}`, filename: `f${i}`, url: "mxc://x/y" },
    },
    {
      kind: "file:put-in-clear",
      expect: "refuse",
      content: { msgtype: "m.file", body: "$ put /tmp", filename: `f${i}`, url: "mxc://x/y" },
    },
    {
      kind: "file:bad-key",
      expect: "refuse",
      content: {
        msgtype: "m.file",
        body: "$ put /tmp",
        filename: `f${i}`,
        file: { url: "mxc://x/y", v: "v2", key: { k: i }, iv: "", hashes: null },
      },
    },
    {
      kind: "file:no-caption",
      expect: "ignore",
      content: { msgtype: "m.file", body: `f${i}`, filename: `f${i}`, url: "mxc://x/y" },
    },
    {
      kind: "file:filename-number",
      expect: "ignore",
      content: { msgtype: "m.image", body: `$ put /tmp`, filename: i, url: "mxc://x/y" },
    },
    // Other event types, encrypted, carrying the canary.
    {
      kind: "type:unknown",
      expect: "ignore",
      type: "org.example.command",
      content: { msgtype: TEXT, body: `$ ${c}` },
    },
    {
      kind: "type:case",
      expect: "ignore",
      type: "M.ROOM.MESSAGE",
      content: { msgtype: TEXT, body: `$ ${c}` },
    },
    {
      kind: "type:sticker",
      expect: "ignore",
      type: "m.sticker",
      content: { msgtype: TEXT, body: `$ ${c}`, url: "mxc://x/y" },
    },
    {
      kind: "type:reaction",
      expect: "ignore",
      type: "m.reaction",
      content: (ctx) => ({
        "m.relates_to": {
          rel_type: "m.annotation",
          event_id: lastCommand(ctx),
          key: `$ ${c} ${i}`,
        },
      }),
    },
    // Plaintext duplicates of a command in the encrypted room.
    {
      kind: "plaintext:dup",
      expect: "ignore",
      plaintext: true,
      content: { msgtype: TEXT, body: `$ ${c}`, n: i },
    },
  ];
}

/** Commands that are refused (or, for `maybe`, run harmlessly): every twelfth case. */
function answered(i: number): HostileCase[] {
  const c = CANARY;
  return [
    // Harmless commands in hostile wrappers: they run, and only they run.
    {
      kind: "html:disagrees",
      expect: "run",
      content: { msgtype: TEXT, body: `$ echo safe-${i}`, format: HTML, formatted_body: `$ ${c}` },
      followUp: (id) => ({
        kind: "edit:right-after",
        expect: "ignore",
        content: {
          msgtype: TEXT,
          body: `* $ ${c}`,
          "m.new_content": { msgtype: TEXT, body: `$ ${c}` },
          "m.relates_to": { rel_type: "m.replace", event_id: id },
        },
      }),
    },
    {
      kind: "fallback:real-reply",
      expect: "run",
      content: (ctx) => ({
        msgtype: TEXT,
        body: `> <${ctx.operatorId}> $ ${c}\n\n$ echo rf-${i}`,
        "m.relates_to": { "m.in_reply_to": { event_id: lastCommand(ctx) } },
      }),
    },
    // The policy refuses bidi controls in any word (deny.unicode).
    {
      kind: "rlo:arg",
      expect: "refuse",
      content: { msgtype: TEXT, body: `$ echo \u202e${i}yranac` },
    },
    {
      kind: "bom:first",
      expect: "run",
      content: { msgtype: TEXT, body: `\ufeff$ echo bom-${i}` },
    },
    {
      kind: "relates_to:string",
      expect: "run",
      content: { msgtype: TEXT, body: `$ echo rs-${i}`, "m.relates_to": "m.replace" },
    },
    {
      kind: "relates_to:number",
      expect: "run",
      content: { msgtype: TEXT, body: `$ echo rn-${i}`, "m.relates_to": 5 },
    },
    {
      kind: "relates_to:array",
      expect: "run",
      content: { msgtype: TEXT, body: `$ echo ra-${i}`, "m.relates_to": [{ rel_type: "x" }] },
    },
    {
      kind: "relates_to:bad-fields",
      expect: "run",
      content: {
        msgtype: TEXT,
        body: `$ echo rb-${i}`,
        "m.relates_to": { rel_type: 7, key: { x: 1 }, "m.in_reply_to": "nope" },
      },
    },
    {
      kind: "relates_to:thread",
      expect: "run",
      content: (ctx) => ({
        msgtype: TEXT,
        body: `$ echo rt-${i}`,
        "m.relates_to": { rel_type: "m.thread", event_id: lastCommand(ctx) },
      }),
    },
    {
      kind: "deep:sibling",
      expect: "run",
      content: { msgtype: TEXT, body: `$ echo deep-${i}`, extra: nest(100, i) },
    },
    // Lone surrogates: the receiving rust crypto cannot parse the decrypted JSON
    // ("unexpected end of hex escape"), so end to end they are refused as
    // unreadable; handed to the classifier directly they are commands that the
    // policy judges.
    {
      kind: "surrogate:arg",
      expect: "maybe",
      e2e: "refuse",
      content: { msgtype: TEXT, body: `$ echo \ud800-${i}` },
    },
    // Refused: shell syntax, control characters, look-alike names.
    {
      kind: "shell:semicolon",
      expect: "refuse",
      content: { msgtype: TEXT, body: `$ echo a; ${c}` },
    },
    { kind: "shell:subst", expect: "refuse", content: { msgtype: TEXT, body: `$ echo $(${c})` } },
    {
      kind: "shell:backtick",
      expect: "refuse",
      content: { msgtype: TEXT, body: `$ echo \`${c}\`` },
    },
    { kind: "shell:and", expect: "refuse", content: { msgtype: TEXT, body: `$ echo a && ${c}` } },
    // A pipeline runs its stages, so the canary is reached only through a refused stage.
    {
      kind: "shell:pipe",
      expect: "refuse",
      content: { msgtype: TEXT, body: `$ echo a | sh -c ${c}` },
    },
    {
      kind: "shell:pipe-xargs",
      expect: "refuse",
      content: { msgtype: TEXT, body: `$ echo ${c} | xargs` },
    },
    {
      kind: "shell:pipe-stderr",
      expect: "refuse",
      content: { msgtype: TEXT, body: `$ echo a |& ${c}` },
    },
    { kind: "shell:newline", expect: "refuse", content: { msgtype: TEXT, body: `$ echo a\n${c}` } },
    {
      kind: "fallback:after-command",
      expect: "refuse",
      content: { msgtype: TEXT, body: `$ echo rf-${i}\n> $ ${c}` },
    },
    { kind: "nul:after", expect: "refuse", content: { msgtype: TEXT, body: `$ ${c}\0` } },
    { kind: "nul:arg", expect: "refuse", content: { msgtype: TEXT, body: `$ echo a\0b ${i}` } },
    { kind: "rlo:program", expect: "refuse", content: { msgtype: TEXT, body: `$ \u202e${c}` } },
    { kind: "zwsp:program", expect: "refuse", content: { msgtype: TEXT, body: `$ can\u200bary` } },
    {
      kind: "homoglyph:program",
      expect: "refuse",
      content: { msgtype: TEXT, body: `$ c\u0430nary ${i}` },
    },
    {
      kind: "surrogate:program",
      expect: "maybe",
      e2e: "refuse",
      content: { msgtype: TEXT, body: `$ ${c}\udc00` },
    },
    {
      kind: "timeout:huge",
      expect: "refuse",
      content: { msgtype: TEXT, body: `$ timeout=999999 ${c}` },
    },
  ];
}

/** Rare, expensive cases: near the 64 KiB event limit and beyond. */
function rare(i: number): HostileCase[] {
  const c = CANARY;
  return [
    {
      kind: "huge:command-body",
      expect: "ignore",
      content: { msgtype: TEXT, body: `$ echo ${"A".repeat(44_000 + (i % 1000))}` },
    },
    {
      kind: "huge:html",
      expect: "ignore",
      content: {
        msgtype: TEXT,
        body: "x".repeat(40_000),
        format: HTML,
        formatted_body: `$ ${c}`,
      },
    },
    {
      kind: "huge:padding",
      expect: "run",
      content: { msgtype: TEXT, body: `$ echo big-${i}`, pad: "B".repeat(44_000) },
    },
    {
      kind: "huge:limit-4096",
      expect: "run",
      content: { msgtype: TEXT, body: `$ echo ${"z".repeat(4096 - 7)}` },
    },
    {
      kind: "huge:limit-4097",
      expect: "ignore",
      content: { msgtype: TEXT, body: `$ echo ${"z".repeat(4096 - 6)}` },
    },
    {
      kind: "huge:over-limit",
      expect: "reject",
      content: { msgtype: TEXT, body: `$ ${c} ${"C".repeat(70_000)}` },
    },
    {
      // Encrypted, Synapse cannot see the depth; the agent's crypto refuses to parse it.
      kind: "deep:too-deep",
      expect: "reject",
      e2e: "refuse",
      content: { msgtype: TEXT, body: `deep ${i}`, extra: nest(1000, i) },
    },
  ];
}

/**
 * Cases making `n` events: eleven in twelve from the silent pool, one in twelve
 * from the answered pool, one in fifty from the rare pool. A case's follow-up
 * edit counts as an event.
 */
export function hostileCorpus(n: number): HostileCase[] {
  const out: HostileCase[] = [];
  let events = 0;
  for (let i = 0; events < n; i++) {
    let c: HostileCase;
    if (i % 50 === 25) {
      const pool = rare(i);
      c = pool[Math.floor(i / 50) % pool.length];
    } else if (i % 12 === 0) {
      const pool = answered(i);
      c = pool[Math.floor(i / 12) % pool.length];
    } else {
      const pool = silent(i);
      c = pool[i % pool.length];
    }
    if (c.followUp && events + 2 > n) continue;
    out.push(c);
    events += c.followUp ? 2 : 1;
  }
  return out;
}

/** The outcome of sending one event. */
export interface Sent {
  case: HostileCase;
  /** The event id, or null when sending failed. */
  eventId: string | null;
  /** Why sending failed. */
  error?: string;
}

/** What {@linkcode sendCorpus} needs. */
export interface SendTarget {
  client: MatrixClient;
  roomId: string;
  homeserver: string;
  /** The operator's access token, for the plaintext duplicates. */
  accessToken: string;
  operatorId: string;
}

async function sendOne(t: SendTarget, c: HostileCase, ctx: SendContext): Promise<Sent> {
  const content = typeof c.content === "function" ? c.content(ctx) : c.content;
  const type = c.type ?? "m.room.message";
  try {
    let eventId: string;
    if (c.plaintext) {
      const url = `${t.homeserver}/_matrix/client/v3/rooms/${encodeURIComponent(t.roomId)}` +
        `/send/${encodeURIComponent(type)}/${crypto.randomUUID()}`;
      const r = await fetch(url, {
        method: "PUT",
        headers: { authorization: `Bearer ${t.accessToken}`, "content-type": "application/json" },
        body: JSON.stringify(content),
      });
      const body = await r.json();
      if (!r.ok) throw new Error(`HTTP ${r.status} ${body.errcode ?? ""}`);
      eventId = body.event_id;
    } else {
      // The SDK types event contents per type; these are deliberately malformed.
      const send = t.client.sendEvent.bind(t.client) as unknown as (
        roomId: string,
        type: string,
        content: Content,
      ) => Promise<{ event_id: string }>;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error("the send did not complete in 60 s")), 60_000);
      });
      try {
        eventId = (await Promise.race([send(t.roomId, type, content), late])).event_id;
      } finally {
        clearTimeout(timer);
      }
    }
    if (c.expect === "run") ctx.commands.push(eventId);
    return { case: c, eventId };
  } catch (e) {
    return { case: c, eventId: null, error: (e as Error).message };
  }
}

/**
 * Sends the cases with at most `concurrency` requests in flight; a case's
 * follow-up is sent as soon as the case itself is. Returns one entry per event.
 */
export async function sendCorpus(
  t: SendTarget,
  cases: HostileCase[],
  concurrency: number,
  progress: (done: number) => void = () => {},
): Promise<Sent[]> {
  const ctx: SendContext = { commands: [], operatorId: t.operatorId };
  const results: Sent[] = [];
  let next = 0;
  let reported = 0;
  const worker = async () => {
    while (next < cases.length) {
      const c = cases[next++];
      const sent = await sendOne(t, c, ctx);
      results.push(sent);
      if (c.followUp && sent.eventId) results.push(await sendOne(t, c.followUp(sent.eventId), ctx));
      if (results.length >= reported + 250) progress(reported = results.length);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return results;
}

/** Per-kind counts of one run, and the events whose outcome was wrong. */
export interface Outcome {
  /** kind -> counts of sent, send failures, executed, refused. */
  byKind: Map<
    string,
    { expect: Expect; sent: number; failed: number; ran: number; refused: number }
  >;
  /** Events whose outcome contradicts their case's `expect`. */
  wrong: string[];
}

/**
 * Compares what happened to each event (its audit records) with its case's
 * `expect` (its `e2e` when `endToEnd`). `tokens` are the audit log's tokens; a
 * `reject` case that was sent after all must be ignored.
 */
export function judgeOutcome(
  sent: Sent[],
  tokens: { token_type: string; eraan: string[] }[],
  endToEnd: boolean,
): Outcome {
  const ran = new Set<string>();
  const refused = new Set<string>();
  for (const t of tokens) {
    const set = t.token_type === "nc.command.execute"
      ? ran
      : t.token_type === "nc.airlock.deny"
      ? refused
      : null;
    for (const id of t.eraan) set?.add(id);
  }
  const byKind: Outcome["byKind"] = new Map();
  const wrong: string[] = [];
  for (const s of sent) {
    const expected = (endToEnd ? s.case.e2e : undefined) ?? s.case.expect;
    const k = byKind.get(s.case.kind) ??
      { expect: expected, sent: 0, failed: 0, ran: 0, refused: 0 };
    byKind.set(s.case.kind, k);
    if (s.eventId === null) {
      k.failed++;
      if (expected !== "reject") wrong.push(`${s.case.kind}: not sent: ${s.error}`);
      continue;
    }
    k.sent++;
    const r = ran.has(s.eventId), d = refused.has(s.eventId);
    if (r) k.ran++;
    if (d) k.refused++;
    const expect = expected === "reject" ? "ignore" : expected;
    const ok = expect === "ignore"
      ? !r && !d
      : expect === "run"
      ? r && !d
      : expect === "refuse"
      ? d && !r
      : !(r && d);
    if (!ok) {
      wrong.push(`${s.case.kind} ${s.eventId}: expected ${expect}, ran ${r}, refused ${d}`);
    }
  }
  return { byKind, wrong };
}

/** What {@linkcode handleInProcess} saw. */
export interface InProcessResult {
  /** One entry per event, with a made-up event id. */
  sent: Sent[];
  /** The tokens of the in-process audit log. */
  tokens: { token_type: string; eraan: string[] }[];
  /** Events the classifier passed to the handler as commands. */
  commands: number;
  /** Replies and edits the handler sent. */
  replies: number;
  /** Largest reply content, in bytes of JSON. */
  largestReplyBytes: number;
  /** Handler failures (the agent would log them as `error handling`). */
  errors: string[];
}

/**
 * The fast path for the whole corpus: each case's content goes through a JSON
 * round trip (as on the wire; lone surrogates survive it), the agent's pure
 * classifier (`lib/matrix/events.ts`) and, when it is a command, the agent's real
 * handler (airlock, policy, audit log, PTY execution) with a Replier that only
 * records. What it skips is Matrix itself: the homeserver, encryption and the SDK.
 */
export async function handleInProcess(
  cases: HostileCase[],
  opts: { binDir: string; operatorId: string; agentId: string; concurrency?: number },
): Promise<InProcessResult> {
  const stateDir = await Deno.makeTempDir({ prefix: "tibet-nc-hostile-inproc-" });
  const roomId = "!hostile:localhost";
  try {
    const config = loadConfig({
      MATRIX_HOMESERVER: "http://127.0.0.1:9",
      TIBET_NC_USER_ID: opts.agentId,
      TIBET_NC_ACCESS_TOKEN: "unused",
      TIBET_NC_ALLOWED_USERS: opts.operatorId,
      TIBET_NC_STATE_DIR: stateDir,
      TIBET_NC_BIN_DIR: opts.binDir,
      TIBET_NC_EXEC_AS_SELF: "yes",
      TIBET_NC_HOSTNAME: "in-process",
      TIBET_NC_RATE_LIMIT: "100000",
      TIBET_NC_MAX_CONCURRENT: "1000",
      TIBET_NC_TIMEBOX: "600",
    });
    const key = await loadOrCreateSigningKey(`${stateDir}/${SIGNING_KEY_FILE}`);
    const audit = await openAuditLog(`${stateDir}/${AUDIT_LOG_FILE}`, key);
    const seen = openSeenEvents(`${stateDir}/seen-events`, 86_400_000);
    const exec = await execIdentity(config.execUser, true);
    const errors: string[] = [];
    // The worker's handler and the monitor, wired as in `tibet-nc run` but without
    // the Worker: each message is cloned and delivered asynchronously, as postMessage does.
    let toMonitor: (m: ToMonitor) => void = () => {};
    const workerSide = monitorClient(
      (m) => toMonitor(m),
      { head: audit.head(), pubkeyHex: audit.pubkeyHex },
    );
    const monitor = requestHandler(
      { config, policy: await loadPolicy(), exec, audit, log: () => {}, realFileDirs: [] },
      (m: ToWorker) => queueMicrotask(() => workerSide.receive(structuredClone(m))),
    );
    toMonitor = (m) =>
      queueMicrotask(() =>
        monitor.handle(structuredClone(m)).catch((e) => errors.push(`monitor error: ${e}`))
      );
    const handler = createHandler({
      config,
      seen,
      monitor: workerSide.monitor,
      execAs: exec.name,
      log: () => {},
    });
    const result: InProcessResult = {
      sent: [],
      tokens: [],
      commands: 0,
      replies: 0,
      largestReplyBytes: 0,
      errors,
    };
    const ctx: SendContext = { commands: [], operatorId: opts.operatorId };
    let n = 0;
    const one = async (c: HostileCase): Promise<string> => {
      const eventId = `$inproc${++n}:localhost`;
      const content = typeof c.content === "function" ? c.content(ctx) : c.content;
      const wire = JSON.parse(JSON.stringify(content)) as Content;
      result.sent.push({ case: c, eventId });
      if (c.expect === "run") ctx.commands.push(eventId);
      const k = classify(
        {
          sender: opts.operatorId,
          encrypted: !c.plaintext,
          type: c.type ?? "m.room.message",
          content: wire,
          roomId,
        },
        opts.agentId,
        null,
      );
      if (k.kind !== "command") return eventId;
      result.commands++;
      const note = (parts: ReplyParts) => {
        result.replies++;
        const bytes = new TextEncoder().encode(JSON.stringify(replyContent(eventId, parts)));
        result.largestReplyBytes = Math.max(result.largestReplyBytes, bytes.length);
      };
      const replier: Replier = {
        send: (parts) => {
          note(parts);
          return Promise.resolve(`$reply${n}:localhost`);
        },
        edit: (_id, parts) => {
          note(parts);
          return Promise.resolve();
        },
        sendFile: (name) => {
          result.replies++;
          return Promise.resolve(`$file-${name}-${n}:localhost`);
        },
      };
      const cmd = {
        text: k.text,
        sender: opts.operatorId,
        roomId,
        eventId,
        originTs: Date.now(),
        attachment: k.attachment,
        // No homeserver here: an attachment that got this far cannot be fetched.
        fetchAttachment: () => Promise.reject(new Error("no media repository in-process")),
      };
      await handler(cmd, replier).catch((e) =>
        result.errors.push(`${c.kind}: ${(e as Error).stack ?? e}`)
      );
      return eventId;
    };
    let next = 0;
    const worker = async () => {
      while (next < cases.length) {
        const c = cases[next++];
        const id = await one(c);
        if (c.followUp) await one(c.followUp(id));
      }
    };
    await Promise.all(Array.from({ length: opts.concurrency ?? 8 }, worker));
    await audit.close();
    seen.close();
    const text = await Deno.readTextFile(`${stateDir}/${AUDIT_LOG_FILE}`).catch(() => "");
    result.tokens = text.split("\n").filter(Boolean).map((l) => JSON.parse(l).token);
    return result;
  } finally {
    await Deno.remove(stateDir, { recursive: true });
  }
}
