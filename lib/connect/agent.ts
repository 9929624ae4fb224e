/**
 * Which agent answers for HOST, and whether it is still the one pinned: the
 * first connect asks `@HOST hosts` and pins whoever's device answers; later
 * connects compare the agent's keys now with the pin and refuse a change
 * until `--accept-new-identity`.
 * @module
 */

import type { MatrixClient } from "matrix-js-sdk";
import { fetchMasterKey } from "../matrix/account.ts";
import type { Conversation } from "./conversation.ts";
import {
  type AgentKeys,
  describePin,
  findPin,
  type Pin,
  pinProblem,
  savePin,
} from "./known_hosts.ts";
import { ConnectError, EXIT } from "./options.ts";

/** The agent's cross-signed devices and master key as the crypto and homeserver know them now. */
export async function agentKeys(client: MatrixClient, agent: string): Promise<AgentKeys> {
  const crypto = client.getCrypto()!;
  const [map, master] = await Promise.all([
    crypto.getUserDeviceInfo([agent], true),
    fetchMasterKey(client.baseUrl, client.getAccessToken()!, agent).catch((e) => {
      throw new ConnectError(
        `cannot ask ${client.baseUrl} for ${agent}'s keys: ${(e as Error).message}`,
        EXIT.connection,
      );
    }),
  ]);
  const devices = new Map<string, { ed25519: string; curve25519: string }>();
  for (const [id, d] of map.get(agent) ?? []) {
    const status = await crypto.getDeviceVerificationStatus(agent, id);
    const ed25519 = d.getFingerprint(), curve25519 = d.getIdentityKey();
    if (status?.signedByOwner && ed25519 && curve25519) devices.set(id, { ed25519, curve25519 });
  }
  return { master, devices };
}

/** What `connect` needs to know of the agent before it sends anything. */
export interface AgentCheck {
  pin: Pin;
  /** Shown once to the person: the pin was just made. */
  firstUse: boolean;
}

/**
 * The pin of `host` in `roomId`, checked against the agent's keys now; makes
 * one on first use (or with `accept`) from the device that answers `@HOST hosts`.
 */
export async function checkAgent(
  client: MatrixClient,
  talk: Conversation,
  roomId: string,
  host: string,
  known: { path: string; pins: Pin[] },
  accept: boolean,
  timeoutMs: number,
  early?: { agent: string; keys: Promise<AgentKeys> },
): Promise<AgentCheck> {
  const { path: knownHostsPath, pins } = known;
  const old = findPin(pins, roomId, host);
  if (old) {
    // Asked while the first sync ran, when the pin was known before the room was.
    const now = early?.agent === old.agent ? await early.keys : await agentKeys(client, old.agent);
    const problem = pinProblem(old, now);
    if (problem === null) return { pin: old, firstUse: false };
    if (!accept) {
      throw new ConnectError(
        [
          `the identity of ${host} changed: ${problem}.`,
          `pinned in ${knownHostsPath} on ${old.pinnedAt}:`,
          ...describePin(old),
          `Nothing was sent. If the agent was set up again (\`tibet-nc login\` on the host), ` +
          `compare its new keys with what login printed there, then run ` +
          `\`tibet-nc connect --accept-new-identity ${host}\`.`,
        ].join("\n"),
        EXIT.trust,
      );
    }
  }
  // Ask the host itself; its answer's device is what gets pinned.
  const asked = await talk.send(`@${host} $ hosts`, null);
  const answer = await Promise.race([
    asked.done,
    new Promise<null>((r) => setTimeout(() => r(null), timeoutMs)),
  ]);
  if (answer === null || asked.from === null) {
    throw new ConnectError(
      `no agent answered as ${host} in ${roomId} within ${timeoutMs / 1000} s: is the ` +
        `agent running, in this room, and is HOST its host name (\`@all hosts\` lists them)?`,
      EXIT.noAnswer,
    );
  }
  const agent = asked.from.user;
  const keys = await agentKeys(client, agent);
  const device = [...keys.devices].find(([, d]) => d.curve25519 === asked.from!.curve25519);
  if (!device || keys.master === null) {
    throw new ConnectError(
      `${host} answered from a device of ${agent} that its account has not cross-signed; ` +
        `it cannot be pinned (on the host: \`tibet-nc doctor\`)`,
      EXIT.trust,
    );
  }
  const pin: Pin = {
    room: roomId,
    host,
    agent,
    device: device[0],
    ed25519: device[1].ed25519,
    curve25519: device[1].curve25519,
    master: keys.master,
    pinnedAt: new Date().toISOString(),
  };
  savePin(knownHostsPath, pins, pin);
  console.error(
    [
      `${old ? "accepted the new identity of" : "first connect to"} ${host}: pinned in ` +
      `${knownHostsPath}`,
      ...describePin(pin),
      "Compare them with what `tibet-nc login` printed on the host; a change is refused.",
    ].join("\n"),
  );
  return { pin, firstUse: true };
}
