/**
 * The agents this client has pinned, like ssh's known_hosts: per room and host
 * name, the agent's user, device and keys as first seen. A later connect
 * compares what the homeserver now says with the pin, and every answer must
 * come from the pinned device (its Curve25519 key, which Megolm binds to the
 * messages it sends).
 * @module
 */

import { groupsOfFour } from "../cli/agent_crypto.ts";
import { ConnectError, EXIT } from "./options.ts";

/** One pinned agent. */
export interface Pin {
  room: string;
  host: string;
  agent: string;
  device: string;
  ed25519: string;
  curve25519: string;
  master: string;
  pinnedAt: string;
}

/** What the homeserver (through the crypto) says of the agent's account now. */
export interface AgentKeys {
  master: string | null;
  /** Its devices signed by its own cross-signing identity. */
  devices: Map<string, { ed25519: string; curve25519: string }>;
}

/** Reads the pins; an absent file is none. */
export function readPins(path: string): Pin[] {
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw new ConnectError(`cannot read ${path}: ${(e as Error).message}`, EXIT.connection);
  }
  try {
    const pins = JSON.parse(text);
    if (!Array.isArray(pins)) throw new Error("not a list");
    return pins as Pin[];
  } catch (e) {
    throw new ConnectError(
      `${path} is damaged (${(e as Error).message}); fix or remove it (every agent is then ` +
        `pinned again on first use)`,
      EXIT.trust,
    );
  }
}

/** The pin of `host` in `room`, if any. */
export function findPin(pins: Pin[], room: string, host: string): Pin | undefined {
  return pins.find((p) => p.room === room && p.host.toLowerCase() === host.toLowerCase());
}

/** Writes `pin` in place of the room and host's old one, atomically, 0600. */
export function savePin(path: string, pins: Pin[], pin: Pin): void {
  // The host's case as findPin ignores it: a pin accepted as WEB-1 replaces web-1's.
  const rest = pins.filter((p) =>
    !(p.room === pin.room && p.host.toLowerCase() === pin.host.toLowerCase())
  );
  const tmp = `${path}.tmp`;
  Deno.writeTextFileSync(tmp, JSON.stringify([...rest, pin], null, 2) + "\n", { mode: 0o600 });
  Deno.renameSync(tmp, path);
}

/** The lines that show a pin to a person. */
export function describePin(p: Pick<Pin, "agent" | "device" | "ed25519" | "master">): string[] {
  return [
    `  agent:              ${p.agent}`,
    `  device:             ${p.device}`,
    `  device fingerprint: ${groupsOfFour(p.ed25519)}`,
    `  master key:         ${groupsOfFour(p.master)}`,
  ];
}

/**
 * Compares the agent's keys now with its pin: null when they agree, else what
 * changed. The device must still be there, signed by the same master key, with
 * the same keys.
 */
export function pinProblem(pin: Pin, now: AgentKeys): string | null {
  if (now.master === null) return `${pin.agent} has no cross-signing identity any more`;
  if (now.master !== pin.master) {
    return `the master key of ${pin.agent} changed from ${groupsOfFour(pin.master)} to ${
      groupsOfFour(now.master)
    }`;
  }
  const d = now.devices.get(pin.device);
  if (!d) {
    const others = [...now.devices.keys()];
    return `the pinned device ${pin.device} of ${pin.agent} is gone` +
      (others.length ? ` (signed devices now: ${others.join(", ")})` : "");
  }
  if (d.ed25519 !== pin.ed25519 || d.curve25519 !== pin.curve25519) {
    return `the keys of device ${pin.device} of ${pin.agent} changed`;
  }
  return null;
}
