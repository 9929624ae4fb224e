/**
 * `deno task demo`: a local Synapse, an operator and an agent account, an
 * encrypted room, the agent running, and an operator console on this terminal.
 * Type `uptime`; Ctrl-D or Ctrl-C ends it and stops everything it started.
 * Stdin may also be a pipe (`echo uptime | deno task demo`).
 * @module
 */

import { startWorld } from "../tests/support/fixture.ts";

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

async function main(): Promise<number> {
  say("tibet-nc demo: starting a local Synapse (127.0.0.1), an agent and an operator ...");
  const w = await startWorld({}, DEMO_PROGRAMS);
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    say("\nstopping the agent and Synapse ...");
    await w.close();
  };
  Deno.addSignalListener("SIGINT", () => stop().then(() => Deno.exit(130)));
  try {
    const agentId = w.agentUser.userId;
    const room = await w.operator.createRoom([agentId]);
    await w.operator.waitForJoin(room, agentId);
    say(`homeserver ${w.synapse.url}`);
    say(`operator   ${w.operatorUser.userId} (cross-signed device ${w.operatorUser.deviceId})`);
    say(`agent      ${agentId} (device ${w.agentUser.deviceId})`);
    say(`room       ${room} (end-to-end encrypted)`);
    say(`commands   ${DEMO_PROGRAMS.join(" ")} (bin dir ${w.binDir})`);
    say("Type a command such as `uptime` (the `$ ` is added for you). Ctrl-D ends.\n");
    const interactive = Deno.stdin.isTerminal();
    if (interactive) await Deno.stdout.write(new TextEncoder().encode("$ "));
    for await (const line of lines()) {
      const text = line.trim();
      if (text) {
        if (!interactive) say(`$ ${text}`);
        const id = await w.operator.send(room, text.startsWith("$ ") ? text : `$ ${text}`);
        try {
          const reply = await w.operator.waitForReply(room, id, 60_000);
          const e2ee = reply.getWireType() === "m.room.encrypted" ? "decrypted" : "PLAINTEXT";
          // A long command's first reply says "running"; its edits end in the result.
          const body = await w.operator.waitForFinal(room, id, 600_000);
          say(`${body}\n(${e2ee} reply from ${reply.getSender()})`);
        } catch (e) {
          say(`no reply: ${(e as Error).message}`);
        }
      }
      if (interactive) await Deno.stdout.write(new TextEncoder().encode("$ "));
    }
  } finally {
    await stop();
  }
  return 0;
}

Deno.exit(await main());
