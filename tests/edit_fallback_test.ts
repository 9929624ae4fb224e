import assert from "node:assert/strict";
import { editContent, MAX_EVENT_BYTES, replyContent } from "../lib/matrix/reply.ts";

const size = (v: unknown) => new TextEncoder().encode(JSON.stringify(v)).length;
const provenance = "tibet: 0f3a… sig ok";

Deno.test("edit fallback: clients without edits see the whole new text, prefixed with '* '", () => {
  const parts = {
    head: "$ uptime: exit 0 (2.1 s)",
    pre: "up 3 days, load 0.1 & <ok>",
    tail: provenance,
  };
  const edit = editContent("$reply", parts);
  const full = replyContent(null, parts);
  assert.equal(edit.body, `* ${full.body}`);
  assert.equal(edit.formatted_body, `* ${full.formatted_body}`);
  assert.match(edit.body as string, /load 0\.1 & <ok>/);
  assert.match(edit.body as string, /tibet: 0f3a/);
  assert.deepEqual((edit["m.new_content"] as { body: string }).body, full.body);
  assert.deepEqual(edit["m.relates_to"], { rel_type: "m.replace", event_id: "$reply" });
});

Deno.test("edit fallback: the largest output still fits one event, provenance kept", () => {
  // A reply too: HTML escaping could otherwise make it too large to send.
  // 8000 characters is the most one reply carries; these cost the most bytes (output has no
  // other control characters than tab and newline).
  for (const ch of ["&", "€", "😀", '"', "\t", "\\"]) {
    const pre = ch.repeat(8000 / ch.length);
    const parts = { head: "$ big: exit 0", pre, tail: provenance };
    const reply = replyContent("$cmd", parts);
    assert.ok(size(reply) <= MAX_EVENT_BYTES, `reply ${JSON.stringify(ch)}: ${size(reply)} bytes`);
    assert.ok(reply.body.includes(pre));
    const edit = editContent("$reply", parts);
    assert.ok(size(edit) <= MAX_EVENT_BYTES, `${JSON.stringify(ch)}: ${size(edit)} bytes`);
    assert.ok((edit.body as string).startsWith("* $ big: exit 0"), JSON.stringify(ch));
    assert.ok((edit.body as string).endsWith(provenance), JSON.stringify(ch));
    // The edited message itself always has the whole output.
    assert.equal((edit["m.new_content"] as { body: string }).body.includes(pre), true);
  }
});
