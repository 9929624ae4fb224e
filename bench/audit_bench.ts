/**
 * Audit log benchmark: writes 100,000 records (commands and their results),
 * verifies the whole log, and compares that with `sha256sum` of the same file,
 * the floor for anything that reads every byte. Also measures fsync'd appends,
 * the latency a command pays before it runs. Prints a table; asserts nothing.
 *
 * Run: `./deno run -A bench/audit_bench.ts [records]`
 * @module
 */

import { openAuditLog } from "../lib/audit/log.ts";
import { loadOrCreateSigningKey } from "../lib/audit/signing_key.ts";
import { verifyLogFile } from "../lib/audit/verify.ts";

/** Options of {@linkcode runAuditBench}. */
export interface AuditBenchOptions {
  /** Records to write and verify (default 100,000). */
  records?: number;
  /** fsync'd appends to time (default 200). */
  syncedAppends?: number;
}

/**
 * Runs the benchmark in a temporary directory (removed afterwards) and returns
 * its measurements: times in seconds or milliseconds as the key names say.
 */
export async function runAuditBench(
  options: AuditBenchOptions = {},
): Promise<Record<string, number>> {
  const records = options.records ?? 100_000;
  const syncedAppends = options.syncedAppends ?? 200;
  const dir = await Deno.makeTempDir({ prefix: "tibet-nc-audit-bench-" });
  try {
    const key = await loadOrCreateSigningKey(`${dir}/signing_key.jwk`);
    const path = `${dir}/audit.jsonl`;

    // Bulk path: the real append code, minus the per-record fsync.
    const log = await openAuditLog(path, key, { sync: false });
    let t = performance.now();
    for (let i = 0; log.head().seq < records; i++) {
      const cmd = await log.append({
        token_type: "nc.command.execute",
        actor: "@operator:example.org",
        erin: `journalctl -u nginx -n ${i}`,
        eraan: [`$event${i}:example.org`],
        eromheen: { hostname: "web1", room: "!ops:example.org", device: "OPSDEVICE" },
        erachter: "operator diagnostics via Matrix",
      });
      if (log.head().seq < records) {
        await log.appendResult(cmd, { exit_code: 0, duration_ms: 12, output: `output ${i}` });
      }
    }
    await log.close();
    const writeS = (performance.now() - t) / 1000;
    const fileBytes = (await Deno.stat(path)).size;

    t = performance.now();
    const verdict = await verifyLogFile(path, { pubkeyHex: key.publicKeyHex });
    const verifyS = (performance.now() - t) / 1000;
    if (!verdict.ok || verdict.count !== records) {
      throw new Error(`benchmark log failed verification: ${JSON.stringify(verdict)}`);
    }

    t = performance.now();
    const sum = await new Deno.Command("sha256sum", { args: [path], stdout: "null" }).output();
    const shaS = (performance.now() - t) / 1000;
    if (!sum.success) throw new Error("sha256sum failed");

    const synced = await openAuditLog(`${dir}/synced.jsonl`, key);
    const latencies: number[] = [];
    for (let i = 0; i < syncedAppends; i++) {
      const start = performance.now();
      await synced.append({
        token_type: "nc.command.execute",
        actor: "@o:x",
        erin: "uptime",
        erachter: "b",
      });
      latencies.push(performance.now() - start);
    }
    latencies.sort((a, b) => a - b);

    return {
      records,
      file_mb: fileBytes / 1e6,
      write_s: writeS,
      write_us_per_record: (writeS * 1e6) / records,
      verify_s: verifyS,
      verify_records_per_s: records / verifyS,
      sha256sum_s: shaS,
      verify_vs_sha256sum: verifyS / shaS,
      append_fsync_p50_ms: latencies[Math.floor(latencies.length / 2)] ?? 0,
      append_fsync_p99_ms: latencies[Math.floor(latencies.length * 0.99)] ?? 0,
    };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) {
  const records = Deno.args[0] ? Number(Deno.args[0]) : undefined;
  const result = await runAuditBench({ records });
  const rows = Object.entries(result).map(([k, v]) => [
    k,
    Number.isInteger(v) ? String(v) : v.toFixed(v < 10 ? 3 : 1),
  ]);
  const width = Math.max(...rows.map(([k]) => k.length));
  console.log(`${"metric".padEnd(width)}  value`);
  for (const [k, v] of rows) console.log(`${k.padEnd(width)}  ${v}`);
}
