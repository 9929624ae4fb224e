/**
 * A real Synapse for tests and the demo: a pinned `matrix-synapse` from PyPI in a
 * cached virtualenv, SQLite, a fresh data dir, a free 127.0.0.1 port, rate limits
 * raised, users registered through the shared-secret admin API.
 * @module
 */

import { createHmac } from "node:crypto";
import { onExit, shuttingDown } from "./cleanup.ts";

/** The pinned Synapse release. */
export const SYNAPSE_VERSION = "1.163.2";

const ROOT = new URL("../../", import.meta.url).pathname;
const VENV = `${ROOT}.cache/synapse-venv-${SYNAPSE_VERSION}`;
const RUNNER = new URL("./synapse_run.py", import.meta.url).pathname;

/** A running Synapse. */
export interface Synapse {
  /** Base URL, e.g. `http://127.0.0.1:38123`. */
  url: string;
  /** The server name: `localhost`, or `127.0.0.1:<federation port>` when federating. */
  serverName: string;
  /** Data dir (config, SQLite, log). */
  dir: string;
  /** Registers a user; returns its id and an access token for a new device. */
  register(localpart: string, password: string, admin?: boolean): Promise<Registered>;
  /** Logs an existing user in again: a new device with its own token. */
  login(userId: string, password: string): Promise<Registered>;
  /** Stops the server (SIGTERM, then SIGKILL) and removes the data dir. */
  stop(): Promise<void>;
  /** Kills the server with SIGKILL and starts it again on the same port and data. */
  restart(): Promise<void>;
  /** Kills the server with SIGKILL, keeping its port and data for {@linkcode Synapse.up}. */
  down(): Promise<void>;
  /** Starts a server that is {@linkcode Synapse.down} again; resolves once it answers. */
  up(): Promise<void>;
}

/** A freshly registered user. */
export interface Registered {
  userId: string;
  accessToken: string;
  deviceId: string;
  password: string;
}

async function run(cmd: string, args: string[], what: string): Promise<void> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  if (!out.success) {
    const text = new TextDecoder().decode(out.stderr) + new TextDecoder().decode(out.stdout);
    throw new Error(`${what} failed (exit ${out.code}):\n${text.slice(-4000)}`);
  }
}

/**
 * Installs Synapse into the cached virtualenv unless it is there already. Test
 * files run in parallel: the first one installs, holding a lock, the others wait.
 */
export async function ensureSynapse(log: (msg: string) => void = console.error): Promise<string> {
  const python = `${VENV}/bin/python`;
  const installed = () => Deno.stat(`${VENV}/.complete`).then(() => true, () => false);
  if (await installed()) return python;
  await Deno.mkdir(`${VENV}/..`, { recursive: true });
  const lock = await Deno.open(`${VENV}.lock`, { create: true, write: true });
  try {
    await lock.lock(true);
    if (await installed()) return python; // another test file installed it meanwhile
    await install(python, log);
    return python;
  } finally {
    lock.close(); // releases the lock
  }
}

async function install(python: string, log: (msg: string) => void): Promise<void> {
  log(`installing matrix-synapse ${SYNAPSE_VERSION} into .cache/ (first run only, about a minute)`);
  await Deno.remove(VENV, { recursive: true }).catch(() => {});
  await run("python3", ["-m", "venv", VENV], "creating the Synapse virtualenv");
  await run(
    python,
    [
      "-m",
      "pip",
      "install",
      "--quiet",
      "--disable-pip-version-check",
      `matrix-synapse==${SYNAPSE_VERSION}`,
    ],
    `pip install matrix-synapse==${SYNAPSE_VERSION}`,
  );
  await Deno.writeTextFile(`${VENV}/.complete`, SYNAPSE_VERSION);
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** How a Synapse is started: by default alone, with no federation at all. */
export interface SynapseOptions {
  /**
   * Federates: the server name is `127.0.0.1:<port>` (an explicit port, so
   * other servers connect straight there, no .well-known, SRV or DNS), with a
   * TLS federation listener on that port and a fresh self-signed certificate.
   * Test-only relaxations: outbound certificates are not verified and
   * 127.0.0.1 is allowed as a federation destination.
   */
  federation?: boolean;
}

/** The federation listener: TLS, on the port the server name carries. */
function federationListener(port: number): string {
  return `
  - port: ${port}
    bind_addresses: ["127.0.0.1"]
    type: http
    tls: true
    x_forwarded: false
    resources:
      - names: [federation]
        compress: false`;
}

/** Synapse's \`DEFAULT_IP_RANGE_BLOCKLIST\` without loopback, which the peers are on. */
const ALLOWED_LOOPBACK_BLOCKLIST = [
  "10.0.0.0/8",
  "172.16.0.0/12",
  "192.168.0.0/16",
  "100.64.0.0/10",
  "192.0.0.0/24",
  "169.254.0.0/16",
  "192.88.99.0/24",
  "198.18.0.0/15",
  "192.0.2.0/24",
  "198.51.100.0/24",
  "203.0.113.0/24",
  "224.0.0.0/4",
  "fe80::/10",
  "fc00::/7",
  "2001:db8::/32",
  "ff00::/8",
  "fec0::/10",
].map((r) => `"${r}"`).join(", ");

/** The federation settings: the certificate and the test-only relaxations. */
function federationSettings(dir: string): string {
  return `
tls_certificate_path: "${dir}/tls.crt"
tls_private_key_path: "${dir}/tls.key"
# The peers' certificates are self-signed: not checked, in this test config only.
federation_verify_certificates: false
# Synapse's default blocklist less 127.0.0.0/8 (an allowlist would not do: server
# names that are IP literals are checked against the blocklist alone).
ip_range_blacklist: [${ALLOWED_LOOPBACK_BLOCKLIST}]
rc_federation:
  window_size: 1000
  sleep_limit: 1000
  sleep_delay: 1
  reject_limit: 10000
  concurrent: 100`;
}

function config(
  dir: string,
  port: number,
  secret: string,
  serverName = "localhost",
  federationPort?: number,
): string {
  const many = "{per_second: 1000, burst_count: 1000}";
  const fed = federationPort !== undefined;
  return `
server_name: "${serverName}"
pid_file: "${dir}/homeserver.pid"
public_baseurl: "http://127.0.0.1:${port}/"
listeners:
  - port: ${port}
    bind_addresses: ["127.0.0.1"]
    type: http
    tls: false
    x_forwarded: false
    resources:
      - names: [client]
        compress: false${fed ? federationListener(federationPort) : ""}${
    fed ? federationSettings(dir) : ""
  }
database:
  name: sqlite3
  args:
    database: "${dir}/homeserver.db"
log_config: "${dir}/log.yaml"
media_store_path: "${dir}/media"
# get and put of 100 and 300 MB files in the bench (the default is 50M).
max_upload_size: "1G"
signing_key_path: "${dir}/signing.key"
registration_shared_secret: "${secret}"
enable_registration: false
report_stats: false
trusted_key_servers: []
suppress_key_server_warning: true
macaroon_secret_key: "${secret}-macaroon"
form_secret: "${secret}-form"
rc_message: ${many}
rc_registration: ${many}
rc_login:
  address: ${many}
  account: ${many}
  failed_attempts: ${many}
rc_joins:
  local: ${many}
  remote: ${many}
rc_invites:
  per_room: ${many}
  per_user: ${many}
  per_issuer: ${many}
rc_key_requests: ${many}
rc_3pid_validation: ${many}
rc_admin_redaction: ${many}
rc_room_creation: ${many}
rc_delayed_event_mgmt: ${many}
rc_reports: ${many}
`;
}

const LOG_CONFIG = `
version: 1
formatters:
  precise:
    format: '%(asctime)s %(levelname)s %(name)s %(message)s'
handlers:
  file:
    class: logging.FileHandler
    formatter: precise
    filename: LOGFILE
root:
  level: WARNING
  handlers: [file]
disable_existing_loggers: false
`;

const live = new Set<Deno.ChildProcess>();
let hooked = false;
function killAllOnExit(): void {
  if (hooked) return;
  hooked = true;
  const killAll = () => {
    for (const p of live) {
      try {
        p.kill("SIGKILL");
      } catch { /* already gone */ }
    }
  };
  globalThis.addEventListener("unload", killAll);
  onExit(killAll);
}

/** Starts a fresh Synapse and waits until its client API answers. */
export async function startSynapse(opts: SynapseOptions = {}): Promise<Synapse> {
  const python = await ensureSynapse();
  const dir = await Deno.makeTempDir({ prefix: "tibet-nc-synapse-" });
  const port = freePort();
  const secret = crypto.randomUUID();
  let serverName = "localhost";
  let federationPort: number | undefined;
  if (opts.federation) {
    federationPort = freePort();
    serverName = `127.0.0.1:${federationPort}`;
    await selfSignedCertificate(dir);
  }
  await Deno.writeTextFile(
    `${dir}/homeserver.yaml`,
    config(dir, port, secret, serverName, federationPort),
  );
  await Deno.writeTextFile(
    `${dir}/log.yaml`,
    LOG_CONFIG.replace("LOGFILE", `${dir}/homeserver.log`),
  );
  // Synapse's own --generate-keys costs a Python start-up; the format is one line.
  const seed = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32))));
  await Deno.writeTextFile(`${dir}/signing.key`, `ed25519 a_test ${seed.replace(/=+$/, "")}\n`);
  const url = `http://127.0.0.1:${port}`;
  let proc = await launch(python, dir, url);

  const synapse: Synapse = {
    url,
    serverName,
    dir,
    async register(localpart, password, admin = false) {
      return await registerUser(url, secret, localpart, password, admin);
    },
    async login(userId, password) {
      const r = await fetch(`${url}/_matrix/client/v3/login`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          type: "m.login.password",
          identifier: { type: "m.id.user", user: userId },
          password,
        }),
      });
      const body = await r.json();
      if (!r.ok) throw new Error(`login of ${userId} failed: ${JSON.stringify(body)}`);
      return { userId, accessToken: body.access_token, deviceId: body.device_id, password };
    },
    async stop() {
      await terminate(proc);
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
    async restart() {
      await synapse.down();
      await synapse.up();
    },
    async down() {
      proc.kill("SIGKILL");
      await proc.status;
      live.delete(proc);
    },
    async up() {
      proc = await launch(python, dir, url);
    },
  };
  return synapse;
}

/** A key and a self-signed certificate for 127.0.0.1, valid a day: `tls.key`, `tls.crt`. */
async function selfSignedCertificate(dir: string): Promise<void> {
  await run("openssl", [
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
    "-keyout",
    `${dir}/tls.key`,
    "-out",
    `${dir}/tls.crt`,
    "-days",
    "1",
    "-subj",
    "/CN=127.0.0.1",
    "-addext",
    "subjectAltName=IP:127.0.0.1",
  ], "making a self-signed certificate");
}

async function launch(python: string, dir: string, url: string): Promise<Deno.ChildProcess> {
  if (shuttingDown()) throw new Error("not starting Synapse: shutting down");
  killAllOnExit();
  const proc = new Deno.Command(python, {
    args: [RUNNER, "-c", `${dir}/homeserver.yaml`],
    stdin: "piped",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  live.add(proc);
  const stderr: string[] = [];
  (async () => {
    const dec = new TextDecoder();
    for await (const chunk of proc.stderr) stderr.push(dec.decode(chunk, { stream: true }));
  })().catch(() => {});
  let exited = false;
  proc.status.then(() => exited = true);
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (exited) break;
    try {
      const r = await fetch(`${url}/_matrix/client/versions`);
      await r.body?.cancel();
      if (r.ok) return proc;
    } catch { /* not listening yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  const log = await Deno.readTextFile(`${dir}/homeserver.log`).catch(() => "");
  await terminate(proc);
  throw new Error(
    `Synapse did not start${exited ? " (it exited)" : " within 60 s"}:\n` +
      `${stderr.join("").slice(-4000)}\n${log.slice(-4000)}`,
  );
}

async function terminate(proc: Deno.ChildProcess): Promise<void> {
  if (!live.has(proc)) return;
  try {
    proc.stdin.close();
  } catch { /* closed */ }
  try {
    proc.kill("SIGTERM");
  } catch { /* gone */ }
  const timer = setTimeout(() => {
    try {
      proc.kill("SIGKILL");
    } catch { /* gone */ }
  }, 5000);
  await proc.status;
  clearTimeout(timer);
  live.delete(proc);
}

async function registerUser(
  url: string,
  secret: string,
  localpart: string,
  password: string,
  admin: boolean,
): Promise<Registered> {
  const endpoint = `${url}/_synapse/admin/v1/register`;
  const { nonce } = await (await fetch(endpoint)).json();
  const mac = createHmac("sha1", secret)
    .update(`${nonce}\0${localpart}\0${password}\0${admin ? "admin" : "notadmin"}`)
    .digest("hex");
  const r = await fetch(endpoint, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ nonce, username: localpart, password, admin, mac }),
  });
  const body = await r.json();
  if (!r.ok) throw new Error(`registering ${localpart} failed: ${JSON.stringify(body)}`);
  return {
    userId: body.user_id,
    accessToken: body.access_token,
    deviceId: body.device_id,
    password,
  };
}

/**
 * How many signed one-time keys the homeserver holds for the device of
 * `accessToken`. A client that forgets what it uploaded makes new ones at every
 * start; the pile grows past what it still holds the private halves of.
 */
export async function oneTimeKeyCount(homeserver: string, accessToken: string): Promise<number> {
  const r = await fetch(`${homeserver}/_matrix/client/v3/keys/upload`, {
    method: "POST",
    headers: { authorization: `Bearer ${accessToken}`, "content-type": "application/json" },
    body: "{}",
  });
  const body = await r.json() as { one_time_key_counts?: Record<string, number> };
  return body.one_time_key_counts?.signed_curve25519 ?? 0;
}
