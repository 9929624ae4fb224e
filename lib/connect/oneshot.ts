/**
 * `tibet-nc connect HOST -- COMMAND`: one command for a script. Its output on
 * stdout (the whole of it, from `output.txt` when the message holds only the
 * end), the summary, refusal or error on stderr, and its exit code as the
 * process's. Returns as soon as the final answer is there. `-- get REMOTE`
 * writes the file to stdout (or to LOCAL), `-- put LOCAL REMOTE_DIR` sends one.
 * @module
 */

import { type Answer, exitCodeOf, jsonFields, splitAnswer } from "./answer.ts";
import type { Tracked } from "./conversation.ts";
import { exists, putLocal, receiveFile, waitForFile } from "./files.ts";
import { parseTyped } from "./interactive.ts";
import { ConnectError, EXIT } from "./options.ts";
import type { Session } from "./session.ts";
import { waitFinal } from "./wait.ts";
import { mark } from "./timing.ts";

/**
 * Runs `words` on the session's host; returns the exit code. The words are
 * joined with spaces, as ssh joins them, so `-- 'df -h | tail -1'` and
 * `-- df -h` mean what they mean to ssh (the agent's own quoting rules apply).
 */
export async function oneShot(
  s: Session,
  words: string[],
  opts: { json: boolean; timeoutS: number; verbose: boolean },
): Promise<number> {
  const { json, timeoutS } = opts;
  const line = words.join(" ");
  const enc = new TextEncoder();
  const typed = parseTyped(line);
  const answerer = { user: s.pin.agent, curve25519: s.pin.curve25519 };
  let tracked: Tracked;
  try {
    if (typed.kind === "put") {
      const id = await putLocal(s.cc.client, s.roomId, s.host, typed.local, typed.remoteDir);
      tracked = s.talk.track(id, answerer);
    } else {
      if (typed.kind === "get" && typed.local !== null && exists(typed.local)) {
        throw new ConnectError(`${typed.local} exists here; nothing was sent`, EXIT.usage);
      }
      // LOCAL is this side's: the agent is asked for the remote path alone.
      const text = typed.kind === "get" ? `get ${typed.remote}` : line;
      tracked = await s.talk.send(`@${s.host} $ ${text}`, answerer);
    }
  } catch (e) {
    if (e instanceof ConnectError) throw e;
    throw new ConnectError(
      `cannot send to ${s.roomId}: ${(e as Error).message}; nothing was sent`,
      EXIT.connection,
    );
  }
  const onSigint = () => {
    // Ctrl-C: stop it on the host too, then leave.
    s.talk.send(`@${s.host} $ cancel`, null).catch(() => {}).finally(() => {
      console.error("tibet-nc connect: interrupted; cancel sent");
      Deno.exit(EXIT.interrupted);
    });
  };
  Deno.addSignalListener("SIGINT", onSigint);
  // A held command waits for another operator: say so once, and how it is decided.
  let toldHeld = false;
  tracked.onChange(() => {
    if (tracked.answer?.facts?.status !== "held" || toldHeld) return;
    toldHeld = true;
    console.error(`${s.host}: ${tracked.answer.text}`);
  });
  let answer: Answer;
  try {
    answer = await waitFinal(s, tracked, timeoutS);
  } finally {
    Deno.removeSignalListener("SIGINT", onSigint);
  }
  mark("answered");
  const code = exitCodeOf(answer);
  const { head, output, tail } = splitAnswer(answer.text);
  const whole = tracked.files.find((ev) => ev.getContent().filename === "output.txt");
  if (json) {
    console.log(JSON.stringify(jsonFields(answer, {
      host: s.host,
      agent: s.pin.agent,
      room: s.roomId,
      event_id: tracked.commandId,
    })));
    return code;
  }
  if (typed.kind === "get" && answer.facts?.status === "done") {
    const ev = await waitForFile(tracked);
    if (!ev) throw new ConnectError(`${s.host} sent no file with its answer`, EXIT.failed);
    const file = await receiveFile(s.cc.client, ev);
    if (typed.local === null) await Deno.stdout.write(file.bytes);
    else await Deno.writeFile(typed.local, file.bytes, { createNew: true, mode: 0o600 });
    console.error(`${s.host}: ${head}`);
  } else if (answer.facts?.status === "exited" || (!answer.facts && tail)) {
    if (whole) {
      const file = await receiveFile(s.cc.client, whole);
      // The terminal's bytes: a script reads lines, as over ssh without -t.
      await Deno.stdout.write(
        enc.encode(new TextDecoder().decode(file.bytes).replace(/\r\n/g, "\n")),
      );
    } else if (output !== "") {
      await Deno.stdout.write(enc.encode(output.endsWith("\n") ? output : `${output}\n`));
    }
    if (code !== 0) console.error(`${s.host}: ${head}`);
  } else if (code === 0) {
    // A built-in, a file moved: the answer is the output.
    await Deno.stdout.write(enc.encode(`${[head, output].filter(Boolean).join("\n")}\n`));
  } else {
    console.error(`${s.host}: ${[head, output].filter(Boolean).join("\n")}`);
  }
  // The provenance of a failure belongs in the script's log; of a success only when asked.
  if (tail && (code !== 0 || opts.verbose)) console.error(tail);
  return code;
}
