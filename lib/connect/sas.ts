/**
 * Cross-signing this device by emoji (SAS) verification from another of the
 * operator's sessions that holds the identity's keys: that session signs this
 * device once both people-side checks say the emoji match.
 * @module
 */

import {
  type ShowSasCallbacks,
  VerificationPhase,
  type VerificationRequest,
  VerificationRequestEvent,
  VerifierEvent,
} from "matrix-js-sdk/lib/crypto-api/index.js";
import type { ConnectClient } from "./client.ts";
import { untilCrossSigned } from "./login.ts";
import { ConnectError, EXIT } from "./options.ts";
import type { LineReader } from "./stdin_lines.ts";

/** How long the other session has to accept, and the whole exchange to finish. */
const VERIFY_TIMEOUT_MS = 5 * 60_000;

/** How long one request waits for another session's answer before it is sent again. */
const ASK_AGAIN_MS = 15_000;

function until(
  req: VerificationRequest,
  ok: () => boolean,
  what: string,
  timeoutMs = VERIFY_TIMEOUT_MS,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const check = () => {
      if (req.phase === VerificationPhase.Cancelled) {
        finish();
        reject(
          new ConnectError(
            `the verification was cancelled (${req.cancellationCode ?? "by the other side"})`,
            EXIT.trust,
          ),
        );
      } else if (ok()) {
        finish();
        resolve();
      }
    };
    const timer = setTimeout(() => {
      finish();
      reject(new ConnectError(`no ${what} within ${Math.round(timeoutMs / 1000)} s`, EXIT.trust));
    }, timeoutMs);
    const finish = () => {
      clearTimeout(timer);
      req.off(VerificationRequestEvent.Change, check);
    };
    req.on(VerificationRequestEvent.Change, check);
    check();
  });
}

/** Runs the emoji verification; resolves once this device is cross-signed. */
export async function verifyByEmoji(cc: ConnectClient, stdin: LineReader): Promise<void> {
  const { client } = cc;
  const crypto = client.getCrypto()!;
  console.error(
    `asking your other sessions to verify this device (${client.getDeviceId()}): accept the ` +
      `request in one that is verified (Element shows it), and compare the emoji`,
  );
  // A session that has not yet fetched this new device's keys drops its request
  // unseen: ask again until one answers.
  const askUntil = Date.now() + VERIFY_TIMEOUT_MS;
  let req: VerificationRequest;
  for (;;) {
    req = await crypto.requestOwnUserVerification();
    try {
      await until(req, () => req.phase >= VerificationPhase.Ready, "answer", ASK_AGAIN_MS);
      break;
    } catch (e) {
      if (req.phase === VerificationPhase.Cancelled || Date.now() > askUntil) throw e;
      await req.cancel().catch(() => {});
    }
  }
  console.error(`session ${req.otherDeviceId} accepted; exchanging keys ...`);
  const verifier = req.verifier ?? await req.startVerification("m.sas.v1");
  const shown = new Promise<ShowSasCallbacks>((resolve) => {
    const now = verifier.getShowSasCallbacks();
    if (now) resolve(now);
    else verifier.once(VerifierEvent.ShowSas, resolve);
  });
  const verified = verifier.verify();
  verified.catch(() => {}); // awaited below; a cancel rejects it meanwhile
  let timer: ReturnType<typeof setTimeout> | undefined;
  const sas = await Promise.race([
    shown,
    verified.then(() => {
      throw new ConnectError("the verification ended before any emoji were shown", EXIT.trust);
    }),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        verifier.cancel(new Error("timed out"));
        reject(
          new ConnectError(
            `the other session never showed the emoji (${VERIFY_TIMEOUT_MS / 60_000} min)`,
            EXIT.trust,
          ),
        );
      }, VERIFY_TIMEOUT_MS);
    }),
  ]).finally(() => clearTimeout(timer));
  const emoji = sas.sas.emoji?.map(([e, name]) => `${e}  ${name}`).join("\n  ") ??
    sas.sas.decimal?.join(" ");
  console.error(`\nCompare with the other session:\n  ${emoji}\n`);
  await Deno.stderr.write(new TextEncoder().encode("Do they match? [y/N] "));
  const answer = (await stdin.next())?.trim().toLowerCase();
  if (answer !== "y" && answer !== "yes") {
    sas.mismatch();
    throw new ConnectError("the emoji did not match: verification cancelled", EXIT.trust);
  }
  await sas.confirm();
  console.error("confirmed; waiting for the other session to confirm ...");
  await verified;
  await until(req, () => req.phase === VerificationPhase.Done, "end of the verification");
  // The other session signs this device and uploads the signature.
  await untilCrossSigned(
    client,
    30_000,
    "verified, but the other session did not cross-sign this device: verify from a " +
      "session that holds your identity's keys (one that is itself verified)",
  );
}
