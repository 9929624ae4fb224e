/**
 * The interactive mode: a prompt naming the host, with line editing and
 * history from Node's `readline` (as Deno provides it: no extra dependency,
 * and the editing keys people know from bash), each running reply drawn in
 * place as the agent edits it, Ctrl-C cancelling the running command, Ctrl-D
 * leaving. Without a terminal it reads commands line by line and prints each
 * final answer.
 * @module
 */

import process from "node:process";
import { createInterface, type Interface } from "node:readline";
import { basename, resolve } from "node:path";
import type { Answer } from "./answer.ts";
import type { Tracked } from "./conversation.ts";
import { exists, putLocal, receiveFile, waitForFile } from "./files.ts";
import { liveView, MIN_COLUMNS } from "./live_view.ts";
import { ConnectError } from "./options.ts";
import type { Session } from "./session.ts";
import type { LineReader } from "./stdin_lines.ts";
import { waitFinal } from "./wait.ts";

const HISTORY_LINES = 1000;

/** What one typed line asks for. */
export type Typed =
  | { kind: "empty" }
  | { kind: "get"; remote: string; local: string | null }
  | { kind: "put"; local: string; remoteDir: string }
  | { kind: "command"; text: string };

/** Reads a typed line; `get` and `put` move files, anything else goes to the agent. Pure. */
export function parseTyped(line: string): Typed {
  const text = line.trim().replace(/^\$(\s+|$)/, "").trim();
  if (text === "") return { kind: "empty" };
  const get = /^get\s+(\S+)(?:\s+(\S+))?$/.exec(text);
  if (get) return { kind: "get", remote: get[1], local: get[2] ?? null };
  const put = /^put\s+(\S+)\s+(\S+)$/.exec(text);
  if (put && put[1] !== "--replace") return { kind: "put", local: put[1], remoteDir: put[2] };
  return { kind: "command", text };
}

function loadHistory(path: string): string[] {
  try {
    // readline wants the newest first.
    return Deno.readTextFileSync(path).split("\n").filter(Boolean).slice(-HISTORY_LINES)
      .reverse();
  } catch {
    return [];
  }
}

function saveHistory(path: string, line: string): void {
  try {
    Deno.writeTextFileSync(path, `${line.replace(/\n/g, " ")}\n`, { append: true, mode: 0o600 });
  } catch { /* history is a convenience */ }
}

/** Runs the interactive mode until Ctrl-D (or end of input); returns the exit code. */
export async function interactive(
  s: Session,
  timeoutS: number,
  stdin: LineReader,
): Promise<number> {
  const say = (t: string) => console.log(t);
  say(
    `connected to ${s.host} (${s.pin.agent}, device ${s.pin.device}) in ${s.roomId}. ` +
      "`help` lists what it offers; `get REMOTE [LOCAL]` and `put LOCAL DIR` move files; " +
      "Ctrl-C cancels a running command; Ctrl-D leaves.",
  );
  if (!Deno.stdin.isTerminal()) {
    for (let line = await stdin.next(); line !== null; line = await stdin.next()) {
      if (line.trim() === "") continue;
      say(`${s.host}$ ${line.trim()}`);
      await handle(s, parseTyped(line), timeoutS, null, say);
    }
    return 0;
  }
  return await withReadline(s, timeoutS, say);
}

async function withReadline(
  s: Session,
  timeoutS: number,
  say: (t: string) => void,
): Promise<number> {
  const historyPath = s.historyPath;
  const rl: Interface = createInterface({
    input: process.stdin,
    output: process.stdout,
    terminal: true,
    prompt: `${s.host}$ `,
    history: loadHistory(historyPath),
    historySize: HISTORY_LINES,
    removeHistoryDuplicates: true,
  });
  const columns = process.stdout.columns ?? 80;
  if (columns < MIN_COLUMNS) {
    say(
      `(the terminal is ${columns} columns wide: replies are shown when complete, ` +
        `not as they run)`,
    );
  }
  let running: { tracked: Tracked | null; cancelled: boolean } | null = null;
  rl.on("SIGINT", () => {
    if (running) {
      if (running.cancelled) return;
      running.cancelled = true;
      const job = /^running #(\d+)/.exec(running.tracked?.answer?.text ?? "")?.[1];
      // Nothing is written: the running reply is drawn in place, and its final says "cancelled".
      s.talk.send(`@${s.host} $ cancel${job ? ` ${job}` : ""}`, null).catch((e) =>
        say(`(cancel not sent: ${(e as Error).message})`)
      );
      return;
    }
    // Like a shell: drop the line being typed.
    process.stdout.write("^C\n");
    rl.write(null, { ctrl: true, name: "u" });
    rl.prompt();
  });
  const closed = new Promise<void>((r) => rl.once("close", r));
  rl.on("line", async (line: string) => {
    if (running) {
      say("(a command is running: wait for it, or Ctrl-C to cancel it)");
      return;
    }
    const typed = parseTyped(line);
    if (typed.kind === "empty") return rl.prompt();
    saveHistory(historyPath, line.trim());
    running = { tracked: null, cancelled: false };
    const run = running;
    await handle(s, typed, timeoutS, (t) => run.tracked = t, say);
    running = null;
    rl.prompt();
  });
  rl.prompt();
  await closed;
  process.stdout.write("\n");
  if (running) say(`(left while a command runs on ${s.host}; it goes on there)`);
  return 0;
}

/** Does one typed line: a command, or a file moved; prints its answer. Never throws. */
async function handle(
  s: Session,
  typed: Typed,
  timeoutS: number,
  onTracked: ((t: Tracked) => void) | null,
  say: (t: string) => void,
): Promise<void> {
  const answerer = { user: s.pin.agent, curve25519: s.pin.curve25519 };
  try {
    let tracked: Tracked;
    let saveTo: string | null = null;
    if (typed.kind === "put") {
      say(`(sending ${typed.local}, encrypted)`);
      const id = await putLocal(s.cc.client, s.roomId, s.host, typed.local, typed.remoteDir);
      tracked = s.talk.track(id, answerer);
    } else if (typed.kind === "get") {
      saveTo = resolve(typed.local ?? basename(typed.remote));
      if (exists(saveTo)) {
        return say(`${saveTo} exists here; give another local name (get REMOTE LOCAL)`);
      }
      tracked = await s.talk.send(`@${s.host} $ get ${typed.remote}`, answerer);
    } else if (typed.kind === "command") {
      tracked = await s.talk.send(`@${s.host} $ ${typed.text}`, answerer);
    } else return;
    onTracked?.(tracked);
    const interactive = Deno.stdout.isTerminal();
    const view = interactive
      ? liveView((t) => process.stdout.write(t), () => ({
        columns: process.stdout.columns ?? 80,
        rows: process.stdout.rows ?? 24,
      }))
      : null;
    tracked.onChange(() => {
      if (tracked.answer && !tracked.answer.final) view?.update(tracked.answer.text);
    });
    const answer: Answer = await waitFinal(s, tracked, timeoutS);
    if (view) view.finish(answer.text);
    else say(answer.text);
    if (saveTo !== null && answer.facts?.status === "done") await waitForFile(tracked);
    await saveFiles(s, tracked, saveTo, say);
  } catch (e) {
    say(e instanceof ConnectError ? e.message : `error: ${(e as Error).message}`);
  }
}

/** Saves a `get`'s file to `saveTo`, and an `output.txt` beside nothing: it is only named. */
async function saveFiles(
  s: Session,
  tracked: Tracked,
  saveTo: string | null,
  say: (t: string) => void,
): Promise<void> {
  for (const ev of tracked.files) {
    const name = String(ev.getContent().filename ?? "");
    if (saveTo === null || name === "output.txt") {
      say(`(the whole output came as ${name}; \`connect ${s.host} -- …\` prints it whole)`);
      continue;
    }
    const file = await receiveFile(s.cc.client, ev);
    // createNew: a file that appeared meanwhile is not overwritten.
    await Deno.writeFile(saveTo, file.bytes, { createNew: true, mode: 0o600 });
    say(`(saved ${file.bytes.length} bytes, decrypted and checked, to ${saveTo})`);
  }
}
