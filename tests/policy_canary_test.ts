/**
 * Canary: every program in the bin dir is a script that leaves a marker file
 * when it runs. Each denied case of the policy table goes through the agent's
 * check, and whatever is allowed is really executed (without a shell). If a
 * deny rule is removed or weakened, its case runs, a marker appears and the
 * test fails.
 */
import assert from "node:assert/strict";
import { DEFAULT_POLICY, parsePolicy, type Policy } from "../lib/policy/policy_file.ts";
import { checkCommand } from "../lib/policy/check.ts";
import { ALIASES, CASES, makeBinDir, PROGRAMS, withBin } from "./policy_test.ts";

const DENIED = CASES.filter(([, expected]) => expected !== "allow");

/**
 * Runs an allowed command the way the agent does: the argv and bin-dir path
 * that checkCommand judged, no shell, a clean environment.
 */
async function execute(text: string, bin: string, canary: string): Promise<void> {
  const checked = await checkCommand(text, bin, DEFAULT_POLICY);
  await run(checked.stages, canary);
}

/** Runs every stage (each on its own: a stub reads no input). */
async function run(stages: { path?: string; argv: string[] }[] | undefined, canary: string) {
  if (stages === undefined) throw new Error("nothing resolved to run");
  for (const { path, argv } of stages) {
    if (path === undefined) throw new Error(`${argv[0]} did not resolve`);
    await new Deno.Command(path, {
      args: argv.slice(1),
      env: { CANARY_DIR: canary, PATH: path.slice(0, path.lastIndexOf("/")) },
      clearEnv: true,
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).output();
  }
}

async function markers(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) names.push(e.name);
  return names.sort();
}

/** Checks every denied case under `policy`; runs what is allowed; reports both. */
async function runDenied(
  policy: Policy,
): Promise<{ ran: string[]; escaped: string[]; wrongRule: string[] }> {
  const { root, bin } = await makeBinDir(true);
  const canary = `${root}/canary`;
  await Deno.mkdir(canary);
  try {
    const escaped: string[] = [];
    const wrongRule: string[] = [];
    for (const [raw, expected] of DENIED) {
      const text = withBin(raw, bin);
      const v = await checkCommand(text, bin, policy);
      if (v.verdict === "allow") {
        escaped.push(`${JSON.stringify(raw.slice(0, 60))} (want ${expected})`);
        await run(v.stages, canary);
      } else if (!v.rule.startsWith(expected)) {
        wrongRule.push(`${JSON.stringify(raw.slice(0, 60))}: want ${expected}, got ${v.rule}`);
      }
    }
    return { ran: await markers(canary), escaped, wrongRule };
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

Deno.test("canary: stubs leave a marker when run, so an empty canary dir is evidence", async () => {
  const { root, bin } = await makeBinDir(true);
  const canary = `${root}/canary`;
  await Deno.mkdir(canary);
  try {
    await execute("uptime", bin, canary);
    await execute("innocent -c id", bin, canary); // an alias leaves its own name
    assert.deepEqual(await markers(canary), ["innocent-ran", "uptime-ran"]);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("canary: no denied case of the table runs; each is denied by its own rule", async () => {
  assert.ok(DENIED.length >= 100, `only ${DENIED.length} denied cases`);
  const { ran, escaped, wrongRule } = await runDenied(DEFAULT_POLICY);
  assert.deepEqual(ran, [], "programs ran although their commands must be denied");
  assert.deepEqual(escaped, [], "denied cases were allowed");
  assert.deepEqual(wrongRule, [], "denied by another rule than the expected one");
});

Deno.test("canary: allow patterns for every program cannot override built-in denials", async () => {
  const names = [...PROGRAMS, ...Object.keys(ALIASES)].filter((n) => !n.includes("."));
  const everything = parsePolicy(
    { mode: "allowlist", allow: names.map((n) => `${n} **`) },
    "canary-policy.json",
  );
  const { ran, escaped } = await runDenied(everything);
  assert.deepEqual(ran, []);
  assert.deepEqual(escaped, []);
});
