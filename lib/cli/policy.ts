/**
 * `tibet-nc policy check`: judges a command exactly as the agent would (parse,
 * resolve in the bin dir, policy), without Matrix and without running anything.
 * For administrators trying a policy file; the check itself is the monitor's,
 * `lib/policy/check.ts`.
 * @module
 */

import { parseArgs, UsageError } from "./args.ts";
import { DEFAULT_STATE_DIR } from "../config/config.ts";
import { checkCommand, DEFAULT_BIN_DIR } from "../policy/check.ts";
import { loadPolicy, type Policy } from "../policy/policy_file.ts";

const USAGE = `usage: tibet-nc policy check [--bin-dir DIR] [--policy FILE] [--as USER] <command>
       tibet-nc policy check [--bin-dir DIR] [--policy FILE] [--as USER] --json - < commands.txt

Judges a command as the agent would (parse, find the program in the bin dir,
apply the policy) and prints the verdict and the deciding rule. Nothing runs.
Give the command as one quoted argument, exactly as typed in the room. A
pipeline ('ps aux | grep nginx') is judged stage by stage; each stage's verdict
is printed after the line's.

options:
  --bin-dir DIR   allowlisted programs (default: $TIBET_NC_BIN_DIR, else ${DEFAULT_BIN_DIR})
  --policy FILE   JSON policy file {"mode": "denylist"|"allowlist", "allow": [...], "deny": [...],
                  "approve": [...], "operators": [{"users": [...], "allow": [...], ...}]}
  --as USER       judge as that operator (@name:server): adds their "operators" rules
  --json -        read commands from stdin, one per line; print one JSON object per
                  line, in order, blank lines included (they are refused)
  -h, --help      this text

exit status: 0 allowed (always 0 with --json), 1 denied, 2 usage or configuration error,
             3 held for another operator's approval`;

interface Options {
  binDir?: string;
  policy?: string;
  json: boolean;
  text: string;
  as?: string;
}

/** Reads `policy check` arguments; options end at the first word of the command. */
function checkOptions(args: string[]): Options | { help: true } {
  const a = parseArgs(args, {
    values: ["--bin-dir", "--policy", "--json", "--as"],
    rest: true,
  });
  if (a.help) return { help: true };
  const json = a.values.get("--json");
  if (json !== undefined && json !== "-") {
    throw new UsageError(`--json reads stdin only: use "--json -"`);
  }
  const opts: Options = {
    binDir: a.values.get("--bin-dir"),
    policy: a.values.get("--policy"),
    json: json !== undefined,
    text: a.positionals.join(" "),
    as: a.values.get("--as"),
  };
  if (opts.as !== undefined && !/^@[^:\s]+:\S+$/.test(opts.as)) {
    throw new UsageError(`--as ${opts.as}: not a Matrix user id (@name:server)`);
  }
  if (opts.json && opts.text !== "") {
    throw new UsageError("give either a command or --json -, not both");
  }
  if (!opts.json && opts.text === "") throw new UsageError("no command given");
  return opts;
}

function fromEnv(name: string): string | undefined {
  try {
    return Deno.env.get(name) || undefined;
  } catch {
    return undefined; // no env permission: the default applies
  }
}

/** The lines of `stream` without their `\n`; a last line without one counts too. */
async function* lines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let rest = "";
  for await (const chunk of stream) {
    const parts = (rest + decoder.decode(chunk, { stream: true })).split("\n");
    rest = parts.pop()!;
    yield* parts;
  }
  rest += decoder.decode();
  if (rest !== "") yield rest;
}

/**
 * Runs `tibet-nc policy <args>` and returns the exit status: 0 allow, 1 deny,
 * 2 usage or configuration error (one line on stderr). With `--json -`, one JSON
 * line `{"command","verdict","rule","reason"}` per stdin line, in order, a
 * blank line included (refused: `deny.parse`), and status 0.
 */
export async function policyCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === undefined || sub === "-h" || sub === "--help" || sub === "help") {
    console.log(USAGE);
    return sub === undefined ? 2 : 0;
  }
  if (sub !== "check") {
    console.error(`tibet-nc policy: unknown subcommand "${sub}" (try "tibet-nc policy --help")`);
    return 2;
  }
  let opts: Options | { help: true };
  try {
    opts = checkOptions(rest);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    console.error(`tibet-nc policy check: ${e.message} (try "tibet-nc policy --help")`);
    return 2;
  }
  if ("help" in opts) {
    console.log(USAGE);
    return 0;
  }

  const binDir = opts.binDir ?? fromEnv("TIBET_NC_BIN_DIR") ?? DEFAULT_BIN_DIR;
  let policy: Policy;
  try {
    const info = await Deno.stat(binDir).catch(() => null);
    if (!info?.isDirectory) {
      throw new Error(
        `bin dir ${binDir} does not exist or is not a directory ` +
          "(set TIBET_NC_BIN_DIR or pass --bin-dir)",
      );
    }
    // As the agent judges: no write into its state dir either.
    const stateDir = fromEnv("TIBET_NC_STATE_DIR") ?? DEFAULT_STATE_DIR;
    policy = { ...await loadPolicy(opts.policy), protect: [stateDir] };
  } catch (e) {
    console.error(`tibet-nc policy check: ${(e as Error).message}`);
    return 2;
  }

  if (!opts.json) {
    const v = await checkCommand(opts.text, binDir, policy, opts.as);
    console.log(`verdict: ${v.verdict}\nrule:    ${v.rule}\nreason:  ${v.reason}`);
    if ((v.stages?.length ?? 0) > 1) {
      for (const [i, s] of v.stages!.entries()) {
        console.log(`stage ${i + 1}: ${s.verdict} ${s.rule}: ${s.argv.join(" ")}`);
      }
    }
    return v.verdict === "allow" ? 0 : v.verdict === "approve" ? 3 : 1;
  }
  // Streamed, one answer per line as it comes, so a coprocess can pair them.
  for await (const line of lines(Deno.stdin.readable)) {
    const command = line.replace(/\r$/, "");
    const v = await checkCommand(command, binDir, policy, opts.as);
    console.log(JSON.stringify({ command, verdict: v.verdict, rule: v.rule, reason: v.reason }));
  }
  return 0;
}
