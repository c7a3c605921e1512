// Quoting untrusted text (VM names, attribute values, library messages) into one-line messages.

// Characters that JSON.stringify leaves alone but that break a line or reorder text on a
// terminal: C1 controls (NEL), line/paragraph separators, bidi and zero-width marks, BOM.
const INVISIBLE_RE = /[\u0080-\u009f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/g;

/** JSON-quote `value` for a message: one line, escapes visible, cut to `max` characters. */
export function quote(value: string, max = 40): string {
  const head = Array.from(value.slice(0, max * 2))
    .slice(0, max)
    .join('');
  const cut = head.length < value.length;
  const quoted = JSON.stringify(head).replace(
    INVISIBLE_RE,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
  return cut ? `${quoted}… (${value.length} characters)` : quoted;
}

/** Cut a library message to one short line. */
export function clip(text: string, max: number): string {
  const line = text
    .replace(/\s+/g, ' ')
    .trim()
    .replace(/\p{Cc}/gu, '?')
    .replace(INVISIBLE_RE, '?');
  return line.length > max ? `${line.slice(0, max)}…` : line;
}

/** A VM name as messages show it: plain names as they are, anything else JSON-quoted. */
export function vmLabel(name: string): string {
  return /^[A-Za-z0-9][A-Za-z0-9_.+:@-]{0,63}$/.test(name) ? name : quote(name, 64);
}
