// TIBET token vectors. The expected digests and signatures below were computed
// outside this code base (Python hashlib + pyca/cryptography Ed25519) and are
// re-derived here with node:crypto, so neither side checks itself.
import assert from "node:assert/strict";
import { createHash, createPrivateKey, createPublicKey, sign, verify } from "node:crypto";
import { Buffer } from "node:buffer";
import {
  createToken,
  signingDigest,
  type SigningKey,
  signingText,
  type TibetToken,
  type TokenFields,
  verifyToken,
} from "../lib/audit/token.ts";

// RFC 8032 section 7.1, test 1.
const JWK = {
  kty: "OKP",
  crv: "Ed25519",
  d: "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A",
  x: "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
};
const PUBKEY_HEX = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";

async function fixedKey(): Promise<SigningKey> {
  const privateKey = await crypto.subtle.importKey("jwk", JWK, "Ed25519", false, ["sign"]);
  return { privateKey, publicKeyHex: PUBKEY_HEX };
}

interface Vector {
  name: string;
  fields: TokenFields;
  contentHash: string;
  signature: string;
}

const VECTORS: Vector[] = [
  {
    name: "ASCII, parent_id null, two eraan elements",
    fields: {
      id: "0b7c3c3e-2f6a-4d2b-9a51-6f1f2a3b4c5d",
      timestamp: "2025-01-31T12:00:00.000Z",
      token_type: "nc.command.execute",
      actor: "@alice:example.org",
      erin: "798339512a506f29d1c0b37e9e8cbaec68357873a3b840c9b10379d6632cbae2",
      eraan: ["$event1:example.org", "prev-token"],
      eromheen: '{"hostname":"web1","seq":1}',
      erachter: "operator diagnostics via Matrix",
      parent_id: null,
    },
    contentHash: "a5b683fc855a8717d00ce8094d63d19b380eff42f5a383ec12e0fdd0b67868df",
    signature: "92e1bf782547682992a32be0ed4437e255dafa529386b0025cd4042cd51eb320" +
      "b9182d7cfa89dced7a8395775e9043b0b860b424ff6652f11f8a5d9bcc4bd805",
  },
  {
    name: "non-ASCII, parent_id set, empty eraan",
    fields: {
      id: "5f0e8c1a-9b7d-4e3f-8a2b-1c0d9e8f7a6b",
      timestamp: "2025-01-31T12:00:01.500+01:00",
      token_type: "nc.command.result",
      actor: "@zoë:example.org",
      erin: "ünïcödé output ✓",
      eraan: [],
      eromheen: '{"note":"Grüße","room":"!r:example.org"}',
      erachter: "diagnose ✓ 日本",
      parent_id: "0b7c3c3e-2f6a-4d2b-9a51-6f1f2a3b4c5d",
    },
    contentHash: "5a63fc9a706215c58f6bd498b78e855efe8e41ed81cff1b849c2d9a2d2fedda8",
    signature: "2116ad46f30d4d7d3078302626f6eca5d14d765dd43f13dd6f725870e8e4408a" +
      "b73415b65215b8649ace83ba1935dce51dc7b925d603c4249d4dad67dff1350c",
  },
];

/** The reference concatenation, written out again rather than imported. */
function referenceText(f: TokenFields): string {
  return [f.id, f.timestamp, f.token_type, f.actor, f.erin, ...f.eraan, f.eromheen, f.erachter]
    .join("") + (f.parent_id === null ? "" : f.parent_id);
}

for (const v of VECTORS) {
  Deno.test(`token vector (${v.name}): digest and signature match the reference`, async () => {
    const token = await createToken(v.fields, await fixedKey());
    const digest = createHash("sha256").update(referenceText(v.fields), "utf8").digest();
    assert.equal(digest.toString("hex"), v.contentHash);
    assert.equal(token.content_hash, v.contentHash);
    assert.equal(Buffer.from(await signingDigest(token)).toString("hex"), v.contentHash);
    assert.equal(signingText(token), referenceText(v.fields));
    // Ed25519 is deterministic: the same key and digest give the same signature.
    assert.equal(token.signature, v.signature);
    const nodePriv = createPrivateKey({ key: JWK, format: "jwk" });
    assert.equal(sign(null, digest, nodePriv).toString("hex"), v.signature);
    const nodePub = createPublicKey({
      key: { kty: "OKP", crv: "Ed25519", x: JWK.x },
      format: "jwk",
    });
    assert.ok(verify(null, digest, nodePub, Buffer.from(token.signature, "hex")));
    assert.equal(token.signer_pubkey, PUBKEY_HEX);
    assert.equal(token.state, "Created");
    assert.deepEqual(await verifyToken(token), { ok: true });
  });
}

Deno.test("token: fresh tokens get a UUID v4 id and an RFC 3339 timestamp", async () => {
  const { id: _id, timestamp: _ts, ...fields } = VECTORS[0].fields;
  const token = await createToken(fields, await fixedKey());
  assert.match(token.id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.ok(!Number.isNaN(Date.parse(token.timestamp)));
  assert.match(token.timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  assert.deepEqual(await verifyToken(token), { ok: true });
});

Deno.test("token: every field edit, a flipped signature and a foreign key fail", async () => {
  const token = await createToken(VECTORS[1].fields, await fixedKey());
  const edits: [string, (t: TibetToken) => void][] = [
    ["id", (t) => (t.id = t.id.replace("5f", "5e"))],
    ["timestamp", (t) => (t.timestamp = "2025-01-31T12:00:02.500+01:00")],
    ["token_type", (t) => (t.token_type = "nc.command.execute")],
    ["actor", (t) => (t.actor = "@zoe:example.org")],
    ["erin", (t) => (t.erin += " ")],
    ["eraan", (t) => (t.eraan = ["x"])],
    ["eromheen", (t) => (t.eromheen = '{"note":"Grüsse","room":"!r:example.org"}')],
    ["erachter", (t) => (t.erachter = "diagnose ✓ 日")],
    ["parent_id", (t) => (t.parent_id = null)],
    ["content_hash", (t) => (t.content_hash = "0" + t.content_hash.slice(1))],
    ["signature", (t) => (t.signature = t.signature.slice(0, -1) + "0")],
    ["signature case", (t) => (t.signature = t.signature.toUpperCase())],
    ["signer_pubkey", (t) => (t.signer_pubkey = "3b" + t.signer_pubkey.slice(2))],
  ];
  for (const [name, edit] of edits) {
    const copy = structuredClone(token);
    edit(copy);
    assert.notDeepEqual(copy, token, name);
    const result = await verifyToken(copy);
    assert.equal(result.ok, false, `edit of ${name} was not detected`);
  }
  // A token re-signed by another key is valid only for that key's pubkey.
  const other = await crypto.subtle.generateKey("Ed25519", true, [
    "sign",
    "verify",
  ]) as CryptoKeyPair;
  const otherRaw = Buffer.from(await crypto.subtle.exportKey("raw", other.publicKey));
  const forged = await createToken(VECTORS[1].fields, {
    privateKey: other.privateKey,
    publicKeyHex: otherRaw.toString("hex"),
  });
  assert.deepEqual(await verifyToken(forged), { ok: true });
  assert.equal((await verifyToken({ ...forged, signer_pubkey: PUBKEY_HEX })).ok, false);
  assert.equal((await verifyToken({ ...token, signature: forged.signature })).ok, false);
});

Deno.test("token: malformed input is a verdict, not an exception", async () => {
  for (const bad of [null, 42, "token", [], {}, { ...VECTORS[0].fields, eraan: "x" }]) {
    const result = await verifyToken(bad);
    assert.equal(result.ok, false);
  }
});
