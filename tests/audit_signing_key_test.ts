import assert from "node:assert/strict";
import { SigningKeyError } from "../lib/audit/errors.ts";
import { loadOrCreateSigningKey } from "../lib/audit/signing_key.ts";
import { createToken, verifyToken } from "../lib/audit/token.ts";

function b64urlToHex(text: string): string {
  const bin = atob(text.replaceAll("-", "+").replaceAll("_", "/"));
  return Array.from(bin, (c) => c.charCodeAt(0).toString(16).padStart(2, "0")).join("");
}

const FIELDS = {
  token_type: "t",
  actor: "a",
  erin: "e",
  eraan: [],
  eromheen: "{}",
  erachter: "r",
  parent_id: null,
};

Deno.test("signing key: created 0600 as a JWK, then loaded again unchanged", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/signing_key.jwk`;
    const key = await loadOrCreateSigningKey(path);
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
    const jwk = JSON.parse(await Deno.readTextFile(path));
    assert.equal(jwk.kty, "OKP");
    assert.equal(jwk.crv, "Ed25519");
    assert.equal(b64urlToHex(jwk.x), key.publicKeyHex);
    assert.equal(key.privateKey.extractable, false);
    const again = await loadOrCreateSigningKey(path);
    assert.equal(again.publicKeyHex, key.publicKeyHex);
    const token = await createToken(FIELDS, again);
    assert.equal(token.signer_pubkey, key.publicKeyHex);
    assert.deepEqual(await verifyToken(token), { ok: true });
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["signing_key.jwk"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("signing key: a key file open to group or others is refused with the fix", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/signing_key.jwk`;
    await loadOrCreateSigningKey(path);
    for (const mode of [0o644, 0o640, 0o604, 0o620, 0o601]) {
      await Deno.chmod(path, mode);
      await assert.rejects(loadOrCreateSigningKey(path), (e: Error) => {
        assert.ok(e instanceof SigningKeyError);
        assert.ok(e.message.includes(path), e.message);
        assert.ok(e.message.includes(`chmod 600 ${path}`), e.message);
        return true;
      });
    }
    await Deno.chmod(path, 0o600);
    await loadOrCreateSigningKey(path);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("signing key: corrupt or mismatched key files are refused", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/k.jwk`;
    const other = `${dir}/other.jwk`;
    await loadOrCreateSigningKey(path);
    await loadOrCreateSigningKey(other);
    const jwk = JSON.parse(await Deno.readTextFile(path));
    const otherX = JSON.parse(await Deno.readTextFile(other)).x;
    const cases: [string, RegExp][] = [
      ["{not json", /not JSON/],
      [JSON.stringify({ ...jwk, crv: "Ed448" }), /not an Ed25519 JWK/],
      [JSON.stringify({ ...jwk, d: "AAAA" }), /not an Ed25519 JWK/],
      [JSON.stringify({ ...jwk, x: otherX }), /does not match/],
    ];
    for (const [text, message] of cases) {
      await Deno.writeTextFile(path, text, { mode: 0o600 });
      await assert.rejects(loadOrCreateSigningKey(path), message);
    }
    await assert.rejects(
      loadOrCreateSigningKey(`${dir}/missing/k.jwk`),
      (e: Error) => e instanceof SigningKeyError && /create the directory/.test(e.message),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
