/**
 * The escape table (tests/support/gtfobins_table.ts) three ways: each form gets
 * its rule from the policy; each form marked proven really escapes when run
 * without the policy (so the table cannot claim an escape that is none); and
 * through the real agent, over Matrix, every refused form is refused and leaves
 * no canary file, and every everyday form runs.
 */
import assert from "node:assert/strict";
import { checkCommand } from "../lib/policy/check.ts";
import { DEFAULT_POLICY } from "../lib/policy/policy_file.ts";
import { parseCommand } from "../lib/exec/parse.ts";
import { makeBinDir, startWorld } from "./support/fixture.ts";
import { type Row, ROWS } from "./support/gtfobins_table.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
/** Every program a form names, each stage of a pipeline included. */
const PROGRAMS = [
  ...new Set(ROWS.flatMap((r) => {
    const parsed = parseCommand(r[2]);
    return [r[0], ...(parsed.ok ? parsed.stages.map((s) => s[0]) : [])];
  })),
];

interface Dirs {
  canary: string;
  data: string;
  state: string;
}

const fill = (form: string, d: Dirs) =>
  form.replaceAll("@C@", d.canary).replaceAll("@D@", d.data).replaceAll("@S@", d.state);

/** The data dir the forms name: text, an archive, a zip, a script or two. */
async function makeDirs(state?: string): Promise<Dirs> {
  const canary = await Deno.makeTempDir({ prefix: "tibet-nc-canary-" });
  const data = await Deno.makeTempDir({ prefix: "tibet-nc-data-" });
  await Deno.writeTextFile(`${data}/seed`, "alpha 1\nbeta 2\ngamma 3\n");
  await Deno.writeTextFile(`${data}/prog.awk`, `BEGIN { system("touch ${canary}/prog") }\n`);
  await Deno.writeTextFile(`${data}/script.sed`, `1w ${canary}/script\n`);
  await Deno.writeTextFile(`${data}/batch`, "netns exec foo sh\n");
  await Deno.writeTextFile(`${data}/curlrc`, "output = /etc/x\n");
  await Deno.writeTextFile(`${data}/pipe.sh`, 'touch "$1"\n');
  for (
    const [cmd, args] of [["tar", ["-cf", "a.tar", "seed"]], ["zip", [
      "-q",
      "z.zip",
      "seed",
    ]]] as const
  ) {
    await new Deno.Command(cmd, { args: [...args], cwd: data, stdout: "null", stderr: "null" })
      .output().catch(() => {});
  }
  await new Deno.Command("sh", { args: ["-c", "gzip -c seed > seed.gz"], cwd: data }).output();
  return { canary, data, state: state ?? await Deno.makeTempDir({ prefix: "tibet-nc-state-" }) };
}

const marker = (form: string) => form.match(/@C@\/([\w.-]+)/)?.[1];
const listing = (dir: string) => [...Deno.readDirSync(dir)].map((e) => e.name).sort();

Deno.test("escape table: at least 150 rows, every function named, every program of the brief", () => {
  assert.ok(ROWS.length >= 150, `${ROWS.length} rows`);
  for (
    const p of [
      "awk",
      "gawk",
      "mawk",
      "sed",
      "sort",
      "tee",
      "cp",
      "mv",
      "dd",
      "tar",
      "zip",
      "unzip",
      "gzip",
      "find",
      "git",
      "journalctl",
      "systemctl",
      "ip",
      "ss",
      "ps",
      "du",
      "ls",
      "cat",
      "head",
      "tail",
      "curl",
      "wget",
      "openssl",
      "base64",
      "diff",
      "cut",
      "tr",
      "jq",
      "rsync",
    ]
  ) assert.ok(PROGRAMS.includes(p), p);
  for (const r of ROWS.filter((r) => r[4])) {
    assert.ok(marker(r[2]), `${r[2]}: proven needs a canary`);
  }
});

Deno.test("escape table: each form gets its rule, each everyday form is allowed", async () => {
  const bin = await makeBinDir(PROGRAMS);
  const d = await makeDirs();
  try {
    const installed = new Set(listing(bin));
    const wrong: string[] = [];
    const skipped = new Set<string>();
    for (const [program, fn, form, want] of ROWS) {
      if (!installed.has(program) && want === "allow") {
        skipped.add(program);
        continue;
      }
      const v = await checkCommand(fill(form, d), bin, { ...DEFAULT_POLICY, protect: [d.state] });
      const ok = want === "allow" ? v.verdict === "allow" : v.verdict === "deny" &&
        (v.rule.startsWith(want) || (!installed.has(program) && v.rule === "deny.resolve"));
      if (!ok) wrong.push(`${program} ${fn} ${JSON.stringify(form)}: want ${want}, got ${v.rule}`);
    }
    if (skipped.size) console.log(`not installed here, everyday rows skipped: ${[...skipped]}`);
    assert.deepEqual(wrong, []);
  } finally {
    for (const dir of [bin, d.canary, d.data, d.state]) await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("escape table: the proven forms really escape when nothing refuses them", async () => {
  const d = await makeDirs();
  try {
    const failed: string[] = [];
    let ran = 0;
    for (const [program, , form] of ROWS.filter((r: Row) => r[4])) {
      const parsed = parseCommand(fill(form, d));
      assert.ok(parsed.ok, form);
      const found = await new Deno.Command("sh", { args: ["-c", `command -v ${program}`] })
        .output();
      if (!found.success) continue; // not installed here
      ran++;
      // A pipeline is proven through a shell: the one thing the agent never uses.
      const [argv] = parsed.stages.length > 1 ? [["sh", "-c", fill(form, d)]] : parsed.stages;
      await new Deno.Command(argv[0], {
        args: argv.slice(1),
        cwd: d.data,
        stdin: "null",
        stdout: "null",
        stderr: "null",
        signal: AbortSignal.timeout(10_000),
      }).output().catch(() => {});
      const name = marker(form)!;
      if (!listing(d.canary).includes(name)) failed.push(`${form} left no ${name}`);
    }
    assert.ok(ran > 20, `only ${ran} proven forms could be tried`);
    assert.deepEqual(failed, []);
  } finally {
    for (const dir of [d.canary, d.data, d.state]) await Deno.remove(dir, { recursive: true });
  }
});

Deno.test(
  "escape table through the agent: every refused form is refused and runs nothing, every everyday form runs",
  opts,
  async () => {
    const w = await startWorld({ TIBET_NC_RATE_LIMIT: "100000" }, PROGRAMS);
    const d = await makeDirs(w.stateDir);
    try {
      const room = await w.operator.createRoom([w.agentUser.userId]);
      await w.operator.waitForJoin(room, w.agentUser.userId);
      const installed = new Set(listing(w.binDir));
      const wrong: string[] = [];
      const one = async ([program, fn, form, want]: Row) => {
        // Everyday forms may read the terminal (tee, tr): a short timeout ends them.
        const text = want === "allow" ? `$ timeout=5 ${fill(form, d)}` : `$ ${fill(form, d)}`;
        const id = await w.operator.send(room, text);
        const body = await w.operator.waitForAnswer(room, id, 120_000);
        const rule = body.match(/^refused \(([^)]+)\)/)?.[1];
        const ok = want === "allow"
          ? rule === undefined
          : rule !== undefined && (rule.startsWith(want) || rule === "deny.resolve");
        if (!ok) {
          wrong.push(
            `${program} ${fn} ${JSON.stringify(form)}: want ${want}, got ${body.split("\n")[0]}`,
          );
        }
      };
      const rows = ROWS.filter(([program, , , want]) => want !== "allow" || installed.has(program));
      // A few at a time, under the agent's concurrency limit of 4 running commands.
      for (let i = 0; i < rows.length; i += 4) await Promise.all(rows.slice(i, i + 4).map(one));
      assert.deepEqual(wrong, []);
      assert.deepEqual(listing(d.canary), [], "a refused form ran");
    } finally {
      await w.close();
      for (const dir of [d.canary, d.data]) await Deno.remove(dir, { recursive: true });
    }
  },
);
