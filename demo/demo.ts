/**
 * `deno task demo`: a local Synapse, an operator and an agent account, an
 * encrypted room, the agent running, and an operator console on this terminal.
 * Type `uptime`; Ctrl-D, Ctrl-C, SIGTERM or a closed terminal ends it and stops
 * and removes everything it started. Stdin may also be a pipe
 * (`echo uptime | deno task demo`). `--verbose` shows the SDK's and the agent's logs.
 * Files: `get PATH` saves what the agent sends (and every `output.txt`) into
 * `TIBET_NC_DEMO_DOWNLOADS` (default `./tibet-nc-downloads`); `put LOCAL [TARGET]`
 * sends a local file with the caption `$ put TARGET` (default: the demo's file dir).
 * @module
 */

import { basename, resolve } from "node:path";
import { startWorld } from "../tests/support/fixture.ts";
import { onExit } from "../tests/support/cleanup.ts";
import { receiveFile, sendFile } from "../tests/support/operator_files.ts";
import type { World } from "../tests/support/fixture.ts";

/** Programs the demo's bin dir offers: the read-only diagnostics of the original's README. */
const DEMO_PROGRAMS = [
  "uptime",
  "df",
  "free",
  "date",
  "whoami",
  "hostname",
  "uname",
  "echo",
  "ls",
  "cat",
  "ps",
  "id",
  "tty",
  "sleep",
  "env",
];

/** How long the console waits for one answer (the agent's longest timeout is 10 min). */
const ANSWER_TIMEOUT_MS = 11 * 60_000;

const say = (s: string) => console.log(s);

async function* lines(): AsyncGenerator<string> {
  const dec = new TextDecoder();
  let buf = "";
  for await (const chunk of Deno.stdin.readable) {
    buf += dec.decode(chunk, { stream: true });
    let i;
    while ((i = buf.indexOf("\n")) >= 0) {
      yield buf.slice(0, i);
      buf = buf.slice(i + 1);
    }
  }
  if (buf.trim()) yield buf;
}

async function main(args: string[]): Promise<number> {
  const verbose = args.includes("--verbose") || args.includes("-v");
  if (args.some((a) => a !== "--verbose" && a !== "-v")) {
    console.error("usage: deno task demo [--verbose]");
    return 2;
  }
  if (verbose) Deno.env.set("TIBET_NC_TEST_VERBOSE", "1"); // the agent's log on stderr
  onExit(() => say("\nstopping the agent and Synapse, removing their files ..."));
  say("tibet-nc demo: starting a local Synapse (127.0.0.1), an agent and an operator ...");
  const fileDir = await Deno.makeTempDir({ prefix: "tibet-nc-demo-files-" });
  const removeFiles = () => Deno.remove(fileDir, { recursive: true }).catch(() => {});
  onExit(removeFiles);
  await Deno.writeTextFile(`${fileDir}/hello.txt`, "hello from the agent's file dir\n");
  const downloads = resolve(Deno.env.get("TIBET_NC_DEMO_DOWNLOADS") ?? "tibet-nc-downloads");
  const w = await startWorld({ TIBET_NC_FILE_DIRS: fileDir }, DEMO_PROGRAMS, undefined, {
    progress: (msg) => say(`  ${msg}`),
    sdkLog: verbose ? "warnings" : "silent",
  });
  try {
    const agentId = w.agentUser.userId;
    const room = await w.operator.createRoom([agentId]);
    await w.operator.waitForJoin(room, agentId);
    say(`homeserver ${w.synapse.url}`);
    say(`operator   ${w.operatorUser.userId} (cross-signed device ${w.operatorUser.deviceId})`);
    say(`agent      ${agentId} (device ${w.agentUser.deviceId})`);
    say(`room       ${room} (end-to-end encrypted)`);
    say(`commands   ${DEMO_PROGRAMS.join(" ")}; built-ins help status chain jobs cancel`);
    say(`files      state ${w.stateDir}, bin ${w.binDir}, Synapse ${w.synapse.dir}`);
    say(`file dir   ${fileDir}: try \`get ${fileDir}/hello.txt\` or \`put ./some-file\``);
    say(`downloads  ${downloads} (TIBET_NC_DEMO_DOWNLOADS)`);
    say("Type a command such as `uptime` (the `$ ` is added for you). Ctrl-D ends.\n");
    const interactive = Deno.stdin.isTerminal();
    if (interactive) await Deno.stdout.write(new TextEncoder().encode("$ "));
    for await (const line of lines()) {
      const text = line.trim();
      if (text) {
        if (!interactive) say(`$ ${text}`);
        try {
          const id = await send(w, room, text.replace(/^\$ /, ""), fileDir);
          const reply = await w.operator.waitForReply(room, id, 60_000);
          const e2ee = reply.getWireType() === "m.room.encrypted" ? "decrypted" : "PLAINTEXT";
          // Every kind of answer ends: results, refusals, built-ins ("running" is edited).
          const body = await w.operator.waitForAnswer(room, id, ANSWER_TIMEOUT_MS);
          say(`${body}\n(${e2ee} reply from ${reply.getSender()})`);
          for (const ev of w.operator.fileReplies(room, id)) {
            const file = await receiveFile(w.operator.client, ev);
            await Deno.mkdir(downloads, { recursive: true });
            const path = `${downloads}/${basename(file.name)}`;
            await Deno.writeFile(path, file.bytes);
            say(`(saved ${file.name}, ${file.bytes.length} bytes, decrypted, to ${path})`);
          }
        } catch (e) {
          say(`no reply: ${(e as Error).message}`);
        }
      }
      if (interactive) await Deno.stdout.write(new TextEncoder().encode("$ "));
    }
  } finally {
    say("\nstopping the agent and Synapse, removing their files ...");
    await w.close();
    await removeFiles();
  }
  return 0;
}

/**
 * Sends one console line: `put LOCAL [TARGET]` uploads the local file with the
 * caption `$ put TARGET`; anything else is a `$ ` command. Returns the event id.
 */
async function send(w: World, room: string, text: string, fileDir: string): Promise<string> {
  const put = /^put\s+(\S+)(?:\s+(\S+))?\s*$/.exec(text);
  if (!put || put[1] === "--replace") return await w.operator.send(room, `$ ${text}`);
  const bytes = await Deno.readFile(put[1]).catch((e) => {
    throw new Error(`cannot read ${put[1]} here: ${(e as Error).message}`);
  });
  const caption = `$ put ${put[2] ?? fileDir}`;
  say(`(sending ${put[1]}, ${bytes.length} bytes, encrypted, with the caption "${caption}")`);
  return await sendFile(w.operator.client, room, bytes, basename(put[1]), caption);
}

Deno.exit(await main(Deno.args));
