import assert from "node:assert/strict";
import { oneLine } from "../src/text.ts";

Deno.test("oneLine() folds line breaks and tabs into one line", () => {
  assert.equal(oneLine("bad\nthing"), "bad / thing");
  assert.equal(oneLine("a\r\n\r\n  b\rc\u2028d"), "a / b / c / d");
  assert.equal(oneLine("\n  trailing and leading \n"), "trailing and leading");
  assert.equal(oneLine("tab\there"), "tab here");
  assert.equal(oneLine(""), "");
});

Deno.test("oneLine() removes ANSI sequences and escapes every other control character", () => {
  assert.equal(oneLine("bad\n\u001b[31mthing\u001b[0m"), "bad / thing");
  assert.equal(oneLine("\u001b]0;owned\u0007title"), "title");
  assert.equal(oneLine("\u001b]8;;http://x\u001b\\link"), "link");
  assert.equal(oneLine("\u009b2Jclear"), "clear");
  assert.equal(oneLine("a\u0000b\u0008c\u007fd"), "a\\u0000b\\u0008c\\u007fd");
  assert.equal(oneLine("lone \u001b escape"), "lone \\u001b escape");
  assert.equal(oneLine("abc\u202edcba"), "abc\\u202edcba");
  // Every bidirectional formatting character, the Arabic letter mark too.
  for (const c of ["\u061c", "\u200e", "\u200f", "\u202a", "\u2069"]) {
    assert.equal(
      oneLine(`a${c}b`),
      `a\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}b`,
    );
  }
  const every = Array.from({ length: 0xa0 }, (_, i) => String.fromCharCode(i))
    .join("");
  // deno-lint-ignore no-control-regex
  assert.doesNotMatch(oneLine(every), /[\u0000-\u001f\u007f-\u009f]/);
  assert.equal(oneLine("ünïcödé ✓ 😀"), "ünïcödé ✓ 😀");
});

Deno.test("oneLine() caps the length with an ellipsis, never splitting a surrogate pair", () => {
  assert.equal(oneLine("x".repeat(1000)), "x".repeat(1000));
  const long = oneLine("x".repeat(5000));
  assert.equal(long.length, 1000);
  assert.ok(long.endsWith("x…"));
  assert.equal(oneLine("abcdef", 4), "abc…");
  assert.equal(oneLine("ab😀cd", 4), "ab…");
  assert.equal(oneLine("\u0001".repeat(10), 10).length, 10);
});
