/**
 * openssl: its GTFOBins functions beyond reading and writing files.
 * `s_client`/`s_server` are a raw network channel (the reverse and bind shells
 * of GTFOBins pipe a shell through them): `deny.network`. `-engine` and
 * `-provider` load a shared library into openssl: `deny.escape.openssl.load`.
 * @module
 */

import type { ArgRule } from "../rule.ts";

const CHANNELS = new Set(["s_client", "s_server", "s_time"]);
const LOADERS = /^-(engine|provider|provider-path)$/;

/** openssl network channels and library loading. */
export const OPENSSL: ArgRule = {
  id: "deny.network",
  programs: ["openssl"],
  escape:
    "openssl s_client/s_server open a raw network channel, -engine loads a library (deny.network)",
  check: (c) => {
    const sub = c.args.find((a) => !a.startsWith("-")) ?? "";
    if (CHANNELS.has(sub.toLowerCase())) {
      return { rule: "deny.network", why: `openssl ${sub} opens a raw network channel` };
    }
    const load = c.args.find((a) => LOADERS.test(a) || /^-(engine|provider)=/.test(a));
    if (load) {
      return { rule: "deny.escape.openssl.load", why: `openssl ${load} loads a shared library` };
    }
    if (sub.toLowerCase() === "engine") {
      return { rule: "deny.escape.openssl.load", why: "openssl engine loads a shared library" };
    }
    return null;
  },
};
