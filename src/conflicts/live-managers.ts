// The daemon's source of "which managers run in this namespace right now":
// exec events from the process connector when the kernel lets us subscribe
// (CAP_NET_ADMIN in the initial user namespace), else a full /proc scan at each
// check. Either way the answer is current at the moment a pass asks, never a
// cached scan from an earlier pass.
import { ManagerWatch } from './proc-events.js';
import { managersInNamespaceNow, type ManagerProcess, type NetnsIdentity, type ScanOptions } from './procscan.js';

export interface LiveManagerSource {
  managersIn(target: NetnsIdentity): ManagerProcess[];
  readonly generation: number;
  /** 'events' (process connector) or 'scan' (fallback). */
  readonly via: 'events' | 'scan';
  close(): void;
}

export interface LiveManagerLog {
  info(fields: object, msg: string): void;
  warn(fields: object, msg: string): void;
}

export function openLiveManagers(opts: ScanOptions & { log?: LiveManagerLog } = {}): LiveManagerSource {
  const scanOpts: ScanOptions = {
    ...(opts.procRoot ? { procRoot: opts.procRoot } : {}),
    ...(opts.names ? { names: opts.names } : {}),
  };
  let scans = 0;
  const scanNow = (t: NetnsIdentity) => {
    scans++;
    return managersInNamespaceNow(t, scanOpts);
  };
  try {
    // Once the event socket fails, events may be missing: scan instead from then on.
    let broken = false;
    const watch = ManagerWatch.open({
      ...scanOpts,
      onChange: (reason, proc) => {
        if (reason === 'started' && proc) opts.log?.info({ manager: proc.manager, pid: proc.pid }, `${proc.manager} started (pid ${proc.pid})`);
      },
      onError: (err) => {
        if (!broken) opts.log?.warn({ err: err.message }, 'process events failed; managers are found by scanning /proc before each write');
        broken = true;
      },
    });
    return {
      get via() {
        return broken ? ('scan' as const) : ('events' as const);
      },
      managersIn: (t) => (broken ? scanNow(t) : watch.managersIn(t)),
      get generation() {
        return watch.generation + scans;
      },
      close: () => watch.close(),
    };
  } catch (e) {
    // Logged once: every check then pays a /proc scan, which is still current.
    opts.log?.warn({ err: (e as Error).message }, 'process events unavailable; managers are found by scanning /proc before each write');
    return {
      via: 'scan',
      managersIn: scanNow,
      get generation() {
        return scans;
      },
      close: () => {},
    };
  }
}
