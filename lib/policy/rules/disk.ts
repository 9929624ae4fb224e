/**
 * Disks: writing block or memory devices, /proc/sysrq-trigger, destructive disk tools.
 * @module
 */

import { BLOCK_DEV, operands, shortHas, WRITERS } from "../options.ts";
import { type ArgRule, type Cmd, type Hit, is } from "../rule.ts";

function writerRule(c: Cmd): Hit {
  if (c.args.some((a) => a.includes("/proc/sysrq-trigger"))) {
    return { rule: "deny.power", why: "writing /proc/sysrq-trigger can reboot or crash the host" };
  }
  const dev = c.args.find((a) => BLOCK_DEV.test(a));
  if (dev) {
    return {
      rule: "deny.disk",
      why: `${dev} is a block or memory device; writing it destroys data`,
    };
  }
  return null;
}

function diskArgRule(c: Cmd): Hit {
  if (is(c, "dd")) {
    const io = c.args.find((a) => /^(if|of)=\/dev\//i.test(a));
    if (io) return { rule: "deny.disk", why: `dd with ${io} reads or writes a raw device` };
  }
  if (is(c, "shred") && operands(c.args).some((a) => a.startsWith("/dev/"))) {
    return { rule: "deny.disk", why: "shred of a device destroys its data" };
  }
  if (is(c, "hdparm")) {
    const bad = c.args.find((a) =>
      /^--(security-(erase|set-pass|disable|unlock)|trim-sector|write-sector|fwdownload)/.test(a) ||
      /^--(dco-(restore|set)|make-bad-sector)/.test(a)
    );
    if (bad) return { rule: "deny.disk", why: `hdparm ${bad} can destroy data on the disk` };
  }
  if (is(c, "zpool", "zfs") && c.args.some((a) => a === "destroy" || a === "labelclear")) {
    return { rule: "deny.disk", why: "destroys a ZFS pool or dataset" };
  }
  if (is(c, "badblocks") && c.args.some((a) => shortHas(a, "wn"))) {
    return { rule: "deny.disk", why: "badblocks -w/-n writes over the disk" };
  }
  return null;
}

/** Writers onto block devices or /proc/sysrq-trigger. */
export const DEVICE_WRITE: ArgRule = {
  id: "deny.disk",
  programs: WRITERS,
  check: writerRule,
};

/** dd on raw devices, shred of a device, hdparm, zpool/zfs destroy, badblocks -w. */
export const DISK_TOOLS: ArgRule = {
  id: "deny.disk",
  programs: ["dd", "shred", "hdparm", "zpool", "zfs", "badblocks"],
  check: diskArgRule,
};
