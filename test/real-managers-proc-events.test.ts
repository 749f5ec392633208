// Learning of a manager without polling: the kernel's process connector reports
// every exec; a real process exec'd in a test namespace is seen, and the real
// mptcpd started there is recognised (pid, namespace, argv) from its exec event.
// The pre-write check (a synchronous scan of the real /proc for one namespace)
// finds it too, and nothing in a neighbour namespace.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  encodeProcSubscription,
  ManagerWatch,
  openProcEvents,
  parseProcEvents,
  PROC_EVENT,
  watchManagerStarts,
  type ProcEvent,
} from '../src/conflicts/proc-events.js';
import { managersInNamespaceNow, netnsIdentity, type ManagerProcess } from '../src/conflicts/index.js';
import { ROOT } from './helpers/build.js';
import { createNetns, deleteNetns, requireRoot, sh } from './helpers/netns.js';
import { requireRealManagers, startMptcpd, stopAllManagers, waitFor } from './helpers/real-managers.js';

describe('process connector messages (golden bytes)', () => {
  it('subscribes with a filtered listen: nlmsghdr, cn_msg {1,1}, proc_input {LISTEN, EXEC|COMM}', () => {
    const b = encodeProcSubscription('listen', PROC_EVENT.EXEC | PROC_EVENT.COMM, 7, 0x1234);
    expect(b.toString('hex')).toBe(
      '2c000000' + '0300' + '0000' + '07000000' + '34120000' + // nlmsghdr: len 44, NLMSG_DONE, seq 7, port
        '01000000' + '01000000' + '07000000' + '00000000' + '0800' + '0000' + // cn_msg: CN_IDX_PROC, CN_VAL_PROC, seq, ack, len 8
        '01000000' + '02020000', // PROC_CN_MCAST_LISTEN, PROC_EVENT_EXEC|PROC_EVENT_COMM
    );
  });

  it('reads exec and comm events and skips the rest', () => {
    const msg = (what: number, data: Buffer) => {
      const ev = Buffer.alloc(16 + data.length);
      ev.writeUInt32LE(what, 0);
      ev.writeUInt32LE(1, 4); // cpu
      ev.writeBigUInt64LE(123456789n, 8);
      data.copy(ev, 16);
      const cn = Buffer.alloc(20);
      cn.writeUInt32LE(1, 0);
      cn.writeUInt32LE(1, 4);
      cn.writeUInt16LE(ev.length, 16);
      const h = Buffer.alloc(16);
      h.writeUInt32LE(16 + 20 + ev.length, 0);
      h.writeUInt16LE(3, 4);
      return Buffer.concat([h, cn, ev]);
    };
    const pids = (a: number, b: number, extra = Buffer.alloc(0)) => {
      const d = Buffer.alloc(8);
      d.writeInt32LE(a, 0);
      d.writeInt32LE(b, 4);
      return Buffer.concat([d, extra, Buffer.alloc(Math.max(0, 16 - extra.length))]);
    };
    const comm = Buffer.alloc(16);
    comm.write('mptcpd');
    const buf = Buffer.concat([
      msg(PROC_EVENT.EXEC, pids(4242, 4242)),
      msg(0x1, pids(1, 2)), // fork: skipped
      msg(PROC_EVENT.COMM, pids(4243, 4242, comm)),
    ]);
    expect(parseProcEvents(buf)).toEqual({
      overrun: false,
      events: [
        { what: 'exec', pid: 4242, tgid: 4242, timestampNs: 123456789n },
        { what: 'comm', pid: 4243, tgid: 4242, comm: 'mptcpd', timestampNs: 123456789n },
      ],
    });
  });
});

describe('exec events from the real kernel', () => {
  let ns = '';
  let nsOther = '';
  const sockets: { close(): void }[] = [];

  beforeAll(() => {
    requireRoot();
    requireRealManagers();
    ns = createNetns('x15');
    nsOther = createNetns('x15');
  });

  afterAll(async () => {
    for (const s of sockets) s.close();
    try {
      await stopAllManagers();
    } finally {
      if (ns) deleteNetns(ns);
      if (nsOther) deleteNetns(nsOther);
    }
  });

  it('reports the exec of a process started in a test namespace, by pid', async () => {
    const seen: ProcEvent[] = [];
    sockets.push(openProcEvents({ onEvents: (e) => seen.push(...e), onOverflow: () => undefined }));
    // ip execs /bin/sleep after entering the namespace: two execs in the same pid.
    const child = spawn('ip', ['netns', 'exec', ns, '/bin/sleep', '5'], { stdio: 'ignore' });
    try {
      const pid = child.pid!;
      const execs = await waitFor('two exec events of the child', () => {
        const mine = seen.filter((e) => e.what === 'exec' && e.tgid === pid);
        return mine.length >= 2 ? mine : undefined;
      });
      expect(execs.every((e) => e.pid === pid && e.timestampNs > 0n)).toBe(true);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('recognises the real mptcpd from its exec event, and the pre-write check finds it', async () => {
    const found: { proc: ManagerProcess; latencyMs: number }[] = [];
    sockets.push(
      watchManagerStarts({
        onManager: (proc, ev) => found.push({ proc, latencyMs: Number(process.hrtime.bigint() - ev.timestampNs) / 1e6 }),
        onOverflow: () => undefined,
      }),
    );
    const target = await netnsIdentity(`/run/netns/${ns}`);
    const other = await netnsIdentity(`/run/netns/${nsOther}`);
    expect(managersInNamespaceNow(target)).toEqual([]);

    const md = await startMptcpd(ns, ['--path-manager=addr_adv', '--addr-flags=subflow', '--notify-flags=existing,skip_link_local,skip_loopback']);
    const hit = await waitFor('mptcpd from the event', () => found.find((f) => f.proc.pid === md.pid));
    expect(hit.proc).toMatchObject({ manager: 'mptcpd', comm: 'mptcpd', netns: { ino: target.ino } });
    expect(hit.proc.argv).toEqual(md.argv);
    // The figure the daemon cares about: kernel timestamp of the exec to our handler.
    console.log(`exec -> detection: ${hit.latencyMs.toFixed(2)} ms`);

    const now = managersInNamespaceNow(target);
    expect(now.map((p) => [p.pid, p.manager])).toEqual([[md.pid, 'mptcpd']]);
    expect(managersInNamespaceNow(other)).toEqual([]);
    await md.stop();
    expect(managersInNamespaceNow(target)).toEqual([]);
  });

  it('ManagerWatch: a manager exec\'d just before the pre-write check is in it, with no event-loop turn in between', async () => {
    const target = await netnsIdentity(`/run/netns/${ns}`);
    const watch = ManagerWatch.open();
    sockets.push(watch);
    expect(watch.managersIn(target)).toEqual([]);
    const gen = watch.generation;
    const child = spawn('ip', ['netns', 'exec', ns, '/usr/libexec/mptcpd', '--path-manager=addr_adv'], { stdio: 'ignore' });
    try {
      // Synchronously wait for the exec: the socket's message handler cannot run meanwhile,
      // so only the check's own drain of the queued events can see it.
      const spinUntil = Date.now() + 10_000;
      const cell = new Int32Array(new SharedArrayBuffer(4));
      for (;;) {
        let comm = '';
        try {
          comm = readFileSync(`/proc/${child.pid}/comm`, 'utf8').trim();
        } catch {
          // not there yet
        }
        if (comm === 'mptcpd') break;
        if (Date.now() > spinUntil) throw new Error('mptcpd never exec\'d');
        Atomics.wait(cell, 0, 0, 5);
      }
      const now = watch.managersIn(target);
      expect(now.map((p) => [p.pid, p.manager])).toEqual([[child.pid, 'mptcpd']]);
      expect(watch.generation).toBeGreaterThan(gen);
    } finally {
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await gone;
    }
    expect(watch.managersIn(target)).toEqual([]);
  });

  it('outside the initial network namespace the subscription is refused with a hint, not silently dead', () => {
    // The built module in a child node entering the test namespace: setns of this
    // process is the kernel layer's business, not this test's.
    const out = sh('ip', [
      'netns',
      'exec',
      ns,
      process.execPath,
      '-e',
      `import(${JSON.stringify(join(ROOT, 'dist/src/conflicts/proc-events.js'))}).then(({ openProcEvents }) => {
        const s = openProcEvents({ onEvents() {}, onOverflow() {}, onError(e) { console.log(JSON.stringify({ op: e.op, code: e.code, extack: e.extack })); s.close(); } });
        setTimeout(() => s.close(), 2000);
      })`,
    ]);
    expect(JSON.parse(out.trim())).toEqual({
      op: 'proc-connector-listen',
      code: 'ECONNREFUSED',
      extack: expect.stringContaining('only in the initial one'),
    });
  });
});
