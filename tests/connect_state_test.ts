// What `tibet-nc connect` keeps and reads: pins (known_hosts), its state dir,
// session and lock, and stdin lines for secrets.
import assert from "node:assert/strict";
import {
  type AgentKeys,
  describePin,
  findPin,
  type Pin,
  pinProblem,
  readPins,
  savePin,
} from "../lib/connect/known_hosts.ts";
import { ConnectError } from "../lib/connect/options.ts";
import {
  lockStateDir,
  prepareStateDir,
  readSession,
  type SavedSession,
  statePaths,
  writeSession,
} from "../lib/connect/state.ts";
import { lineReader } from "../lib/connect/stdin_lines.ts";

const PIN: Pin = {
  room: "!room:example.org",
  host: "web-1",
  agent: "@bot:example.org",
  device: "AGENTDEV",
  ed25519: "ED25519KEYaaaaaaaaaa",
  curve25519: "CURVEKEYbbbbbbbbbbbb",
  master: "MASTERKEYcccccccccccc",
  pinnedAt: "2025-01-01T00:00:00.000Z",
};

const keysOf = (
  master: string | null,
  devices: Record<string, { ed25519: string; curve25519: string }>,
): AgentKeys => ({ master, devices: new Map(Object.entries(devices)) });

const same = { ed25519: PIN.ed25519, curve25519: PIN.curve25519 };

function withDir(fn: (dir: string) => void | Promise<void>) {
  return async () => {
    const dir = Deno.makeTempDirSync({ prefix: "connect_state_" });
    try {
      await fn(dir);
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  };
}

function codeOf(f: () => unknown): number {
  try {
    f();
  } catch (e) {
    assert.ok(e instanceof ConnectError, `expected a ConnectError, got ${e}`);
    return e.code;
  }
  assert.fail("expected a ConnectError");
}

const mode = (path: string) => Deno.statSync(path).mode! & 0o777;

Deno.test("pinProblem: the same keys agree; a change of any is named", () => {
  assert.equal(pinProblem(PIN, keysOf(PIN.master, { AGENTDEV: same, OTHER: same })), null);
  const master = pinProblem(PIN, keysOf("NEWMASTERdddd", { AGENTDEV: same }));
  assert.match(master!, /master key of @bot:example.org changed from MAST ERKE .* to NEWM ASTE/);
  const gone = pinProblem(PIN, keysOf(PIN.master, { NEWDEV: same }));
  assert.match(gone!, /pinned device AGENTDEV of @bot:example.org is gone \(.*NEWDEV\)/);
  assert.match(pinProblem(PIN, keysOf(PIN.master, {}))!, /AGENTDEV .* is gone$/);
  for (
    const d of [{ ...same, ed25519: "OTHERED" }, { ...same, curve25519: "OTHERCURVE" }]
  ) {
    assert.match(pinProblem(PIN, keysOf(PIN.master, { AGENTDEV: d }))!, /keys of device AGENTDEV/);
  }
  assert.match(pinProblem(PIN, keysOf(null, { AGENTDEV: same }))!, /no cross-signing identity/);
  assert.deepEqual(describePin(PIN).map((l) => l.trim()), [
    "agent:              @bot:example.org",
    "device:             AGENTDEV",
    "device fingerprint: ED25 519K EYaa aaaa aaaa",
    "master key:         MAST ERKE Yccc cccc cccc c",
  ]);
});

Deno.test(
  "savePin/readPins: a round trip, 0600, the room and host's pin replaced",
  withDir((dir) => {
    const path = `${dir}/known_hosts.json`;
    assert.deepEqual(readPins(path), []);
    const other = { ...PIN, room: "!other:example.org" };
    savePin(path, readPins(path), PIN);
    savePin(path, readPins(path), other);
    savePin(path, readPins(path), { ...PIN, host: "db-2" });
    assert.equal(mode(path), 0o600);
    assert.equal(readPins(path).length, 3);
    const changed = { ...PIN, device: "NEWDEV", pinnedAt: "2025-02-02T00:00:00.000Z" };
    savePin(path, readPins(path), changed);
    const pins = readPins(path);
    assert.equal(pins.length, 3);
    assert.deepEqual(findPin(pins, PIN.room, "web-1"), changed);
    assert.deepEqual(findPin(pins, PIN.room, "WEB-1"), changed);
    assert.deepEqual(findPin(pins, other.room, "web-1"), other);
    assert.equal(findPin(pins, "!nowhere", "web-1"), undefined);
    assert.equal(mode(path), 0o600);
    assert.throws(() => Deno.statSync(`${path}.tmp`), Deno.errors.NotFound);
    Deno.writeTextFileSync(path, "{not json");
    assert.equal(codeOf(() => readPins(path)), 254);
    Deno.writeTextFileSync(path, '{"a": 1}');
    assert.equal(codeOf(() => readPins(path)), 254);
  }),
);

// BUG (known_hosts.ts): findPin matches the host case-insensitively but savePin
// replaces only an exact match, so `connect --accept-new-identity WEB-1` after
// `connect web-1` keeps the old pin first, and findPin keeps returning it.
Deno.test({
  name: "known hosts: savePin replaces the pin findPin finds, whatever the host's case",

  fn: withDir((dir) => {
    const path = `${dir}/known_hosts.json`;
    savePin(path, [], PIN);
    const accepted = { ...PIN, host: "WEB-1", device: "NEWDEV" };
    savePin(path, readPins(path), accepted);
    assert.equal(findPin(readPins(path), PIN.room, "WEB-1")?.device, "NEWDEV");
  }),
});

const SESSION: SavedSession = {
  homeserver: "https://matrix.example.org",
  userId: "@alice:example.org",
  deviceId: "CLIENTDEV",
  accessToken: "syt_secret",
};

Deno.test(
  "state dir: 0700, session round trip 0600, a damaged session is exit code 255",
  withDir((root) => {
    const dir = `${root}/state/tibet-nc`;
    prepareStateDir(dir);
    assert.equal(mode(dir), 0o700);
    Deno.chmodSync(dir, 0o755);
    prepareStateDir(dir);
    assert.equal(mode(dir), 0o700);
    assert.equal(readSession(dir), null);
    writeSession(dir, SESSION);
    assert.deepEqual(readSession(dir), SESSION);
    assert.equal(mode(statePaths(dir).session), 0o600);
    writeSession(dir, { ...SESSION, accessToken: "syt_new" });
    assert.equal(readSession(dir)?.accessToken, "syt_new");
    for (
      const bad of ["{", "null", '"x"', "[]", JSON.stringify({ ...SESSION, deviceId: "" })]
    ) {
      Deno.writeTextFileSync(statePaths(dir).session, bad);
      assert.equal(codeOf(() => readSession(dir)), 255, bad);
    }
    const { accessToken: _, ...noToken } = SESSION;
    Deno.writeTextFileSync(statePaths(dir).session, JSON.stringify(noToken));
    assert.equal(codeOf(() => readSession(dir)), 255);
  }),
);

Deno.test(
  "lockStateDir: refused while a live process holds it, taken over from a dead one",
  withDir(async (dir) => {
    const lock = statePaths(dir).lock;
    const sleeper = new Deno.Command("sleep", { args: ["5"] }).spawn();
    try {
      Deno.writeTextFileSync(lock, `${sleeper.pid}\n`);
      assert.equal(codeOf(() => lockStateDir(dir)), 255);
      assert.equal(Deno.readTextFileSync(lock).trim(), String(sleeper.pid));
    } finally {
      sleeper.kill("SIGKILL");
      await sleeper.status;
    }
    // The same pid, now dead (reaped): its lock is taken over.
    let release = lockStateDir(dir);
    assert.equal(Deno.readTextFileSync(lock).trim(), String(Deno.pid));
    assert.equal(mode(lock), 0o600);
    release();
    assert.throws(() => Deno.statSync(lock), Deno.errors.NotFound);
    release(); // twice is harmless
    // A garbled lock is no one's.
    Deno.writeTextFileSync(lock, "garbage");
    release = lockStateDir(dir);
    assert.equal(Deno.readTextFileSync(lock).trim(), String(Deno.pid));
    // A release does not remove a lock another process has taken since.
    Deno.writeTextFileSync(lock, "999999999\n");
    release();
    assert.equal(Deno.readTextFileSync(lock), "999999999\n");
  }),
);

function stream(chunks: (string | Uint8Array)[]): ReadableStream<Uint8Array> {
  const enc = new TextEncoder();
  return new ReadableStream({
    start(c) {
      for (const ch of chunks) c.enqueue(typeof ch === "string" ? enc.encode(ch) : ch);
      c.close();
    },
  });
}

async function linesOf(chunks: (string | Uint8Array)[]): Promise<(string | null)[]> {
  const s = stream(chunks);
  const r = lineReader(() => s);
  const out: (string | null)[] = [];
  for (let i = 0; i < 8; i++) {
    const line = await r.next();
    out.push(line);
    if (line === null) break;
  }
  return out;
}

Deno.test("lineReader: lines across chunks, CRLF, a last line without newline, then null", async () => {
  assert.deepEqual(await linesOf(["pw\nkey\n"]), ["pw", "key", null]);
  assert.deepEqual(await linesOf(["pa", "ss", "word\nre", "covery\n"]), [
    "password",
    "recovery",
    null,
  ]);
  assert.deepEqual(await linesOf(["a\r\nb\r", "\n"]), ["a", "b", null]);
  assert.deepEqual(await linesOf(["first\nlast"]), ["first", "last", null]);
  assert.deepEqual(await linesOf(["\n\nx\n"]), ["", "", "x", null]);
  assert.deepEqual(await linesOf([]), [null]);
  // A character split between chunks.
  const e = new TextEncoder().encode("é\n");
  assert.deepEqual(await linesOf([e.slice(0, 1), e.slice(1)]), ["é", null]);
  // Once drained it stays null, and the stream is free for others between lines.
  const s = stream(["one\n"]);
  const r = lineReader(() => s);
  assert.equal(await r.next(), "one");
  assert.equal(s.locked, false);
  assert.equal(await r.next(), null);
  assert.equal(await r.next(), null);
});
