// The daemon's config: loaded at start, reloaded on file events and SIGHUP. An
// invalid edit keeps the last good config enforced. A reload requested while
// one runs is coalesced into one more load after it. The hash is the loader's
// own (of the bytes it parsed) when it reports one, so the config enforced and
// the hash reported can never come from two different reads. A file edited
// while it was being loaded must not be lost either: a watcher may fold that
// edit's event into the one that started the load (same size, same second), so
// after each load the files are read once more and, if they differ from what
// was parsed, loaded again.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Config } from '../core/schema.js';
import type { Logger } from '../log.js';
import type { DaemonMetrics } from './metrics.js';

/** What the daemon needs from the config loader. */
export type ConfigLoad =
  | { ok: true; config: Config; files: string[]; warnings: { message: string }[]; hash?: string }
  | { ok: false; diagnostics: unknown[]; files: string[] };

export interface LoadedConfig {
  config: Config;
  hash: string;
  files: string[];
  loadedAt: string;
}

/** A user error found at start (invalid config, bad listen address): message as printed, exit 1. */
export class DaemonStartError extends Error {
  override name = 'DaemonStartError';
}

export interface ConfigSourceOptions {
  file: string;
  node: string;
  loadConfig(path: string, node: string): Promise<ConfigLoad>;
  formatDiagnostics(diags: unknown[]): string;
  logger: Logger;
  metrics: DaemonMetrics;
  /** A new config (another hash) replaced the one enforced. */
  onChange(hash: string): void;
}

function fullHash(bytes: Buffer[]): string {
  const h = createHash('sha256');
  for (const b of bytes) h.update(b);
  return h.digest('hex');
}

const SHORT = 12;
const MAX_STALE_RELOADS = 5;

export class ConfigSource {
  current: LoadedConfig | undefined;
  generation = 0;
  valid = false;
  error: string | undefined;
  private reloading: Promise<void> | undefined;
  private reloadAgain = false;
  /** The last load parsed bytes that the files no longer hold. */
  private readStale = false;
  private stopped = false;

  constructor(private readonly o: ConfigSourceOptions) {}

  /** The first load; an invalid config is a DaemonStartError. */
  async start(): Promise<LoadedConfig> {
    await this.loadOnce('start', true);
    this.o.metrics.configValid.set(1);
    if (this.readStale) void this.reload('file:changed while loading');
    return this.current!;
  }

  /** Loads again (file event, SIGHUP); never throws. */
  async reload(reason = 'reload'): Promise<void> {
    if (this.stopped) return;
    // File events are frequent and mostly no-ops; an operator's SIGHUP deserves an answer.
    if (!reason.startsWith('file:')) this.o.logger.info({ reason }, 'config reload requested');
    if (this.reloading) {
      this.reloadAgain = true;
      return this.reloading;
    }
    this.reloading = (async () => {
      try {
        // Loads again while the files move under it, but never without end: a file
        // rewritten faster than it can be read is left to the next event.
        let stale = 0;
        do {
          this.reloadAgain = false;
          try {
            await this.loadOnce(reason, false);
          } catch (err) {
            this.o.logger.error({ err }, 'config reload failed');
          }
        } while (!this.stopped && (this.reloadAgain || (this.readStale && ++stale <= MAX_STALE_RELOADS)));
      } finally {
        this.reloading = undefined;
      }
    })();
    return this.reloading;
  }

  /** No reload starts after this; resolves when the one in flight is done. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.reloading?.catch(() => {});
  }

  private async hashOf(r: Extract<ConfigLoad, { ok: true }>): Promise<string> {
    if (r.hash !== undefined) return r.hash.slice(0, SHORT);
    try {
      return fullHash(await this.readFiles(r.files)).slice(0, SHORT);
    } catch {
      // A file vanished between load and hash (an update in progress): the next event reloads.
      return `gen${this.generation + 1}`;
    }
  }

  private readFiles(files: string[]): Promise<Buffer[]> {
    return Promise.all(files.map((f) => readFile(resolve(f))));
  }

  /** Whether the files now hold other bytes than the load parsed (hash: the loader's full one). */
  private async changedSince(files: string[], hash: string): Promise<boolean> {
    try {
      return fullHash(await this.readFiles(files)) !== hash;
    } catch {
      // Vanished or unreadable under the name shown: the watcher reports what comes next.
      return false;
    }
  }

  private async loadOnce(reason: string, initial: boolean): Promise<void> {
    const { o } = this;
    this.readStale = false;
    const r = await o.loadConfig(o.file, o.node);
    if (r.ok && r.hash !== undefined) this.readStale = await this.changedSince(r.files, r.hash);
    if (!r.ok) {
      const text = o.formatDiagnostics(r.diagnostics);
      if (initial) throw new DaemonStartError(`invalid config ${o.file}:\n${text}`);
      this.valid = false;
      this.error = text;
      o.metrics.configValid.set(0);
      o.logger.error({ file: o.file, reason, diagnostics: text.split('\n').filter(Boolean) }, 'invalid config ignored; the last good config stays enforced');
      return;
    }
    const hash = await this.hashOf(r);
    const wasValid = this.valid;
    this.valid = true;
    this.error = undefined;
    o.metrics.configValid.set(1);
    for (const w of r.warnings) o.logger.warn({ file: o.file }, `config: ${w.message}`);
    if (this.current?.hash === hash) {
      if (!wasValid) o.logger.info({ hash }, 'config valid again (unchanged from the one enforced)');
      return;
    }
    this.generation++;
    this.current = { config: r.config, hash, files: r.files, loadedAt: new Date().toISOString() };
    o.metrics.setConfig(hash, this.generation);
    o.logger.info({ hash, generation: this.generation, files: r.files, reason }, initial ? 'config loaded' : 'config changed');
    if (!initial) o.onChange(hash);
  }
}
