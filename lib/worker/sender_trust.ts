/**
 * Device trust with fresh keys. The SDK judges the sender's device with the keys
 * it has at that moment; just after a restart, or just after an operator set up
 * or replaced cross-signing, those keys can be stale while a /keys/query is on
 * its way. A stale "untrusted" would turn away a verified operator; a stale
 * "trusted" would let in an identity that changed while the agent was down.
 * So a trust failure is retried as the sender's keys arrive, and a decrypted
 * command is judged again once the sender's pending key query is done.
 * @module
 */

import type { MatrixClient, MatrixEvent } from "matrix-js-sdk";
import {
  CryptoEvent,
  EventShieldColour,
  EventShieldReason,
} from "matrix-js-sdk/lib/crypto-api/index.js";
import type { CryptoBackend } from "matrix-js-sdk/lib/common-crypto/CryptoBackend.js";
import type { Config } from "../config/config.ts";
import { readApprovals, writeApprovals } from "../airlock/trust.ts";
import { fetchMasterKey } from "../matrix/account.ts";

/** Decryption failures that mean "this device is not trusted", not "no key yet". */
export const TRUST_FAILURES: Record<string, string> = {
  UNSIGNED_SENDER_DEVICE:
    "your device is not cross-signed by you; verify it from a session you already trust (Element: Settings, Sessions), then send the command again",
  SENDER_IDENTITY_PREVIOUSLY_VERIFIED:
    "your cryptographic identity changed since it was verified; if you reset it, an administrator must approve it on the host with `tibet-nc trust`",
  UNKNOWN_SENDER_DEVICE:
    "your device is unknown to this agent; verify it from a session you already trust, then send the command again",
};

/** Why a sender is refused: the airlock rule and the reason told to them. */
export interface TrustRefusal {
  rule: string;
  reason: string;
}

/** How long a trust failure may wait for fresh keys before it is final. */
export const TRUST_GRACE_MS = 4000;

/** Tracks trust failures that may still clear. */
export interface TrustRecheck {
  /**
   * `event` failed a trust check. The first time, it is retried as the sender's
   * keys arrive; `onFinal` is called once it has failed for `graceMs`.
   */
  failed(event: MatrixEvent): void;
  /** `eventId` decrypted after all: forget it. */
  settled(eventId: string): void;
  /** Cancels every pending recheck (the agent is stopping). */
  stop(): void;
}

/** Creates the recheck for `client`; `onFinal` refuses the event for good. */
export function createTrustRecheck(
  client: MatrixClient,
  onFinal: (event: MatrixEvent) => void,
  graceMs = TRUST_GRACE_MS,
): TrustRecheck {
  const pending = new Map<string, { event: MatrixEvent; timer: ReturnType<typeof setTimeout> }>();
  // Failed again while a retry was in flight at the deadline: final at once.
  const overdue = new Set<string>();
  // The client was started with rust crypto, which is a CryptoBackend; the SDK
  // has no public "decrypt again" call, so we use the one its own retries use.
  const backend = () => client.getCrypto() as unknown as CryptoBackend;

  const retry = (event: MatrixEvent) => {
    if (!event.isDecryptionFailure() || event.isBeingDecrypted()) return;
    event.attemptDecryption(backend(), { isRetry: true }).catch(() => {});
  };
  const retrySenders = (userIds: string[]) => {
    for (const { event } of pending.values()) {
      if (userIds.includes(event.getSender() ?? "")) retry(event);
    }
  };
  const onDevices = (userIds: string[]) => retrySenders(userIds);
  const onTrust = (userId: string) => retrySenders([userId]);
  client.on(CryptoEvent.DevicesUpdated, onDevices);
  client.on(CryptoEvent.UserTrustStatusChanged, onTrust);

  const finish = (id: string, event: MatrixEvent) => {
    pending.delete(id);
    if (event.isBeingDecrypted()) overdue.add(id);
    else if (event.isDecryptionFailure()) onFinal(event);
  };

  return {
    failed(event) {
      const id = event.getId()!;
      if (overdue.delete(id)) return onFinal(event);
      if (pending.has(id)) return; // a retry failed again; the deadline decides
      const timer = setTimeout(() => finish(id, event), graceMs);
      pending.set(id, { event, timer });
      // Waits (up to a second, in the SDK) for a key query already in flight.
      client.getCrypto()!.getUserDeviceInfo([event.getSender()!], true)
        .then(() => retry(event), () => {});
    },
    settled(eventId) {
      const p = pending.get(eventId);
      if (p) clearTimeout(p.timer);
      pending.delete(eventId);
      overdue.delete(eventId);
    },
    stop() {
      for (const { timer } of pending.values()) clearTimeout(timer);
      pending.clear();
      overdue.clear();
      client.off(CryptoEvent.DevicesUpdated, onDevices);
      client.off(CryptoEvent.UserTrustStatusChanged, onTrust);
    },
  };
}

/** Shield reasons that refuse a command even with `TIBET_NC_ALLOW_UNSIGNED_DEVICES`. */
const ALWAYS_REFUSED = new Set([
  EventShieldReason.VERIFICATION_VIOLATION,
  EventShieldReason.AUTHENTICITY_NOT_GUARANTEED,
  EventShieldReason.MISMATCHED_SENDER_KEY,
  EventShieldReason.MISMATCHED_SENDER,
]);

/**
 * Judges the sender of a decrypted command of an allowed operator once more,
 * after their pending key query (if any) is done: an identity (master key)
 * changed since it was pinned is refused until `tibet-nc trust` approved it
 * (then it is pinned and `onPinned` told), and a device the fresh keys no
 * longer vouch for is refused.
 */
export async function senderRefusal(
  client: MatrixClient,
  config: Config,
  event: MatrixEvent,
  onPinned: (userId: string) => void,
): Promise<TrustRefusal | undefined> {
  const sender = event.getSender()!;
  const crypto = client.getCrypto()!;
  // Waits (up to a second, in the SDK) for a key query of the sender that is due.
  await crypto.getUserDeviceInfo([sender]);
  if ((await crypto.getUserVerificationStatus(sender)).needsUserApproval) {
    const approved = readApprovals(config.stateDir)[sender];
    const current = approved &&
      await fetchMasterKey(config.homeserver, config.accessToken, sender);
    if (!approved || approved !== current) {
      return {
        rule: "deny.identity",
        reason:
          `the cryptographic identity of ${sender} changed; an administrator must approve it on the host with \`tibet-nc trust ${sender}\``,
      };
    }
    await crypto.pinCurrentUserIdentity(sender);
    const rest = readApprovals(config.stateDir);
    delete rest[sender];
    writeApprovals(config.stateDir, rest);
    onPinned(sender);
  }
  const info = await crypto.getEncryptionInfoForEvent(event);
  if (!info) return { rule: "deny.device", reason: "the command was not encrypted" };
  if (info.shieldColour !== EventShieldColour.RED) return undefined;
  const reason = info.shieldReason ?? EventShieldReason.UNKNOWN;
  if (config.allowUnsignedDevices && !ALWAYS_REFUSED.has(reason)) return undefined;
  return {
    rule: "deny.device",
    reason: reason === EventShieldReason.UNSIGNED_DEVICE
      ? TRUST_FAILURES.UNSIGNED_SENDER_DEVICE
      : reason === EventShieldReason.UNKNOWN_DEVICE
      ? TRUST_FAILURES.UNKNOWN_SENDER_DEVICE
      : `this agent cannot vouch for the device that sent it (${EventShieldReason[reason]})`,
  };
}
