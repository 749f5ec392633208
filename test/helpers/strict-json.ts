// JSON.parse that also refuses what JSON.parse silently accepts: an object
// with the same key twice (JSON.parse keeps the last one; strict consumers of
// JSON lines reject the line). Used on every log line the daemon tests read.

/** Parses `text` as JSON; throws naming the key when an object repeats one. */
export function parseStrictJson(text: string): unknown {
  let i = 0;
  const ws = () => {
    while (i < text.length && ' \t\r\n'.includes(text[i]!)) i++;
  };
  const str = (): string => {
    const start = i;
    i++; // opening quote
    while (text[i] !== '"') {
      if (i >= text.length) throw new SyntaxError('unterminated string');
      i += text[i] === '\\' ? 2 : 1;
    }
    i++;
    return JSON.parse(text.slice(start, i)) as string;
  };
  const value = (): void => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      const keys = new Set<string>();
      ws();
      if (text[i] === '}') {
        i++;
        return;
      }
      for (;;) {
        ws();
        const k = str();
        if (keys.has(k)) throw new SyntaxError(`duplicate key "${k}" in ${text}`);
        keys.add(k);
        ws();
        i++; // colon
        value();
        ws();
        if (text[i++] === '}') return;
      }
    }
    if (c === '[') {
      i++;
      ws();
      if (text[i] === ']') {
        i++;
        return;
      }
      for (;;) {
        value();
        ws();
        if (text[i++] === ']') return;
      }
    }
    if (c === '"') {
      str();
      return;
    }
    while (i < text.length && !',]}'.includes(text[i]!) && !' \t\r\n'.includes(text[i]!)) i++;
  };
  value();
  // The structure was walked for keys only; JSON.parse still judges the syntax.
  return JSON.parse(text);
}
