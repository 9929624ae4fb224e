// L4 chain and canonical JSON, checked against hashes computed with node:crypto
// over text written out by hand.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { canonicalJson } from "../lib/audit/canonical_json.ts";
import { genesisL4, nextL4, originalL4Step, recordHash, recordL4 } from "../lib/audit/chain.ts";

const sha = (text: string) => createHash("sha256").update(text, "utf8").digest("hex");

Deno.test("chain: genesis is SHA-256 of genesis_tibet_nc_ + chain id", async () => {
  const id = "9b2f6c1e-0d4a-4c3b-8e7f-1a2b3c4d5e6f";
  assert.equal(await genesisL4(id), sha(`genesis_tibet_nc_${id}`));
});

Deno.test("chain: the original per-command step", async () => {
  const l4 = sha("genesis_tibet_nc_session-1");
  const got = await originalL4Step(l4, "uptime", "2025-01-31T12:00:00Z", "@zoë:example.org");
  assert.equal(got, sha(`${l4}:${sha("uptime")}:2025-01-31T12:00:00Z:@zoë:example.org`));
});

Deno.test("chain: record l4 covers the canonical JSON of the record without l4", async () => {
  const record = {
    seq: 2,
    l4: "ignored",
    l4_prev: "aa",
    token: { b: "ü ✓", a: [1, "x", null, true], "é": {}, A: 0 },
  };
  const canonical =
    '{"l4_prev":"aa","seq":2,"token":{"A":0,"a":[1,"x",null,true],"b":"ü ✓","é":{}}}';
  assert.equal(await recordHash(record), sha(canonical));
  assert.equal(await recordL4(record), sha(`aa:${sha(canonical)}`));
  assert.equal(await nextL4("aa", sha(canonical)), sha(`aa:${sha(canonical)}`));
  // The l4 member itself is not hashed, every other member is.
  assert.equal(await recordL4({ ...record, l4: "other" }), await recordL4(record));
  assert.notEqual(await recordL4({ ...record, seq: 3 }), await recordL4(record));
});

Deno.test("canonical JSON: sorted keys (UTF-16 order), no whitespace, no undefined", () => {
  assert.equal(
    canonicalJson({ z: 1, a: { y: [3, { b: 1, a: 2 }], x: '\u001f"' }, "€": 1, "𝄞": 2, "ﬀ": 3 }),
    '{"a":{"x":"\\u001f\\"","y":[3,{"a":2,"b":1}]},"z":1,"€":1,"𝄞":2,"ﬀ":3}',
  );
  assert.equal(canonicalJson({ a: undefined, b: null }), '{"b":null}');
  assert.throws(() => canonicalJson({ n: NaN }), /cannot hold/);
  assert.throws(() => canonicalJson([Infinity]), /cannot hold/);
});
