// rtnetlink event sockets created inside a namespace see that namespace's link,
// address and netconf changes (and only those), and report queue overflows.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openEventSocket, type RtnlEvent } from '../src/kernel/events.js';
import { inNetns } from '../src/kernel/netns-admin.js';
import { createNetns, deleteNetns, ip, requireRoot, setNsSysctl, sh } from './helpers/netns.js';
import { eventually } from './helpers/wait.js';

const until = (what: string, cond: () => boolean, limitMs = 3000) => eventually(what, cond, limitMs);

describe('rtnetlink event socket', () => {
  let a: string;
  let b: string;
  beforeAll(() => {
    requireRoot();
    a = createNetns('ev');
    b = createNetns('ev');
  });
  afterAll(() => {
    deleteNetns(a);
    deleteNetns(b);
  });

  it('reports link, address and rp_filter changes of its own namespace only', async () => {
    const seenA: RtnlEvent[] = [];
    const seenB: RtnlEvent[] = [];
    const sa = openEventSocket(a, (fn) => inNetns(a, fn), { onEvents: (e) => seenA.push(...e), onOverflow: () => {} });
    const sb = openEventSocket(b, (fn) => inNetns(b, fn), { onEvents: (e) => seenB.push(...e), onOverflow: () => {} });
    try {
      ip('-n', a, 'link', 'add', 'd0', 'type', 'veth', 'peer', 'name', 'd0p');
      await until('newlink', () => seenA.some((e) => e.kind === 'newlink'));
      const ifindex = (JSON.parse(ip('-n', a, '-j', 'link', 'show', 'd0')) as { ifindex: number }[])[0]!.ifindex;
      expect(seenA.some((e) => e.kind === 'newlink' && e.ifindex === ifindex)).toBe(true);
      ip('-n', a, 'link', 'set', 'd0', 'up');
      ip('-n', a, 'addr', 'add', '192.0.2.7/24', 'dev', 'd0');
      await until('newaddr v4', () => seenA.some((e) => e.kind === 'newaddr' && e.family === 4 && e.ifindex === ifindex));
      ip('-n', a, 'addr', 'add', '2001:db8::7/64', 'dev', 'd0', 'nodad');
      await until('newaddr v6', () => seenA.some((e) => e.kind === 'newaddr' && e.family === 6));
      ip('-n', a, 'addr', 'del', '192.0.2.7/24', 'dev', 'd0');
      await until('deladdr', () => seenA.some((e) => e.kind === 'deladdr'));
      setNsSysctl(a, 'net.ipv4.conf.d0.rp_filter', '2');
      await until('newnetconf', () => seenA.some((e) => e.kind === 'newnetconf'));
      // The other namespace stayed silent: the socket belongs to the namespace it was made in.
      expect(seenB).toEqual([]);
    } finally {
      sa.close();
      sb.close();
    }
  });

  it('reports an overflow (ENOBUFS) so the caller re-reads the whole namespace', async () => {
    let overflows = 0;
    const s = openEventSocket(
      b,
      (fn) => inNetns(b, fn),
      { onEvents: () => {}, onOverflow: () => overflows++ },
      { recvBufferSize: 1 },
    );
    // One synchronous burst: the event loop cannot drain the tiny queue meanwhile.
    const batch = Array.from({ length: 64 }, (_, i) => `link add ov${i} type veth peer name ow${i}`).join('\n') + '\n';
    sh('ip', ['-n', b, '-batch', '-'], { input: batch });
    try {
      await until('overflow', () => overflows > 0);
    } finally {
      s.close();
    }
  });
});
