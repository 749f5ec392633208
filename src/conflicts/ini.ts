// A GKeyFile-style INI reader that keeps line numbers, so evidence can name the
// file and line a setting came from (NetworkManager.conf, *.nmconnection and
// mptcpd.conf all use this format). No library tracks lines; the format is small.

export interface IniEntry {
  key: string;
  value: string;
  /** 1-based line number in the file. */
  line: number;
}

export interface IniSection {
  name: string;
  /** 1-based line of the `[name]` header. */
  line: number;
  entries: IniEntry[];
}

export interface IniFile {
  sections: IniSection[];
  /** Lines that are neither comments, headers nor key=value (kept for diagnostics). */
  invalidLines: number[];
}

/**
 * Parses GKeyFile syntax: `#` comments, `[section]` headers, `key=value` pairs.
 * Keys and values are trimmed; a key repeated in one section keeps every entry
 * (readers take the last, as GKeyFile does). Localised keys (`key[de]`) are
 * kept under their full name and thus never match a plain key.
 */
export function parseIni(text: string): IniFile {
  const sections: IniSection[] = [];
  const invalidLines: number[] = [];
  let current: IniSection | undefined;
  const lines = text.split(/\r?\n/);
  lines.forEach((raw, i) => {
    const lineNo = i + 1;
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) return;
    if (line.startsWith('[')) {
      const end = line.indexOf(']');
      if (end > 1) {
        current = { name: line.slice(1, end), line: lineNo, entries: [] };
        sections.push(current);
        return;
      }
      invalidLines.push(lineNo);
      return;
    }
    const eq = line.indexOf('=');
    if (eq <= 0 || !current) {
      invalidLines.push(lineNo);
      return;
    }
    current.entries.push({ key: line.slice(0, eq).trim(), value: line.slice(eq + 1).trim(), line: lineNo });
  });
  return { sections, invalidLines };
}

/** The last entry for `key` within one section. */
export function sectionGet(section: IniSection, key: string): IniEntry | undefined {
  let found: IniEntry | undefined;
  for (const e of section.entries) if (e.key === key) found = e;
  return found;
}
