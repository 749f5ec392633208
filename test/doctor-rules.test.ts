// Pure parts of doctor: each rule on plain facts (triggered, and absent on a
// healthy namespace), the sock_diag and route parsers on golden bytes, the report.
import { describe, expect, it } from 'vitest';
import type { ManagerEvidence } from '../src/conflicts/evidence.js';
import type { DesiredNamespace, LiveNamespace } from '../src/core/model.js';
import { formatText, toJson } from '../src/doctor/report.js';
import { diagnoseNamespace, expectedSubflows, type NamespaceFacts } from '../src/doctor/rules.js';
import { parseDefaultRoute } from '../src/kernel/routes.js';
import { buildDumpRequest, parseInetDiagMsg, parseMptcpInfo, type MptcpConnection, type MptcpInfo } from '../src/kernel/sockdiag.js';

function live(over: Partial<LiveNamespace> = {}): LiveNamespace {
  return {
    netns: 't',
    endpoints: [{ id: 1, family: 4, address: '192.0.2.1', flags: ['subflow'], ifindex: 2 }],
    limits: { subflows: 2, addAddrAccepted: 1 },
    mptcp: { enabled: true, pathManager: 'kernel' },
    rpFilter: { all: 0, default: 0, lo: 0, eth0: 2 },
    links: [
      { ifindex: 1, name: 'lo', up: true, lowerUp: true },
      { ifindex: 2, name: 'eth0', up: true, lowerUp: true },
    ],
    addresses: [
      { ifindex: 2, family: 4, address: '192.0.2.1', prefixlen: 24, scope: 'global', tentative: false, dadfailed: false, deprecated: false, temporary: false },
    ],
    ...over,
  };
}

function facts(over: Partial<NamespaceFacts> = {}, liveOver: Partial<LiveNamespace> = {}): NamespaceFacts {
  return {
    netns: 't',
    live: live(liveOver),
    defaultRoutes: [{ family: 4, table: 254, ifindexes: [2], gateway: '192.0.2.254' }],
    connections: [],
    managers: [],
    ...over,
  };
}

const codes = (f: NamespaceFacts) => diagnoseNamespace(f).map((x) => x.code).sort();

function info(over: Partial<MptcpInfo> = {}): MptcpInfo {
  return {
    size: 96,
    subflows: 1,
    addAddrSignal: 0,
    addAddrAccepted: 0,
    subflowsMax: 2,
    addAddrSignalMax: 0,
    addAddrAcceptedMax: 1,
    fallback: false,
    remoteKeyReceived: true,
    token: 0xabcdef01,
    localAddrUsed: 1,
    localAddrMax: 1,
    ...over,
  };
}

function conn(i: MptcpInfo | undefined, state = 'ESTAB'): MptcpConnection {
  return {
    family: 4,
    state,
    local: { address: '192.0.2.1', port: 40000 },
    remote: { address: '198.51.100.1', port: 80 },
    inode: 1,
    uid: 0,
    ...(i ? { info: i } : {}),
  };
}

const nm: ManagerEvidence = { manager: 'NetworkManager', kind: 'process', active: true, pid: 10, detail: 'NetworkManager (pid 10) runs', managesEndpoints: true, managesRpFilter: true, fix: 'stop NM' };
const mptcpd: ManagerEvidence = { manager: 'mptcpd', kind: 'process', active: true, pid: 11, detail: 'mptcpd (pid 11) runs', managesEndpoints: true, fix: 'stop mptcpd' };

function desired(over: Partial<DesiredNamespace> = {}): DesiredNamespace {
  return {
    netns: 't',
    mptcp: {},
    limits: { subflows: 2 },
    endpoints: [{ address: '192.0.2.1', dev: 'eth0', flags: ['subflow'] }],
    rpFilter: { eth0: 'loose' },
    prune: true,
    conflicts: 'fail',
    ...over,
  };
}

describe('doctor rules (pure)', () => {
  it('finds nothing on a healthy namespace, with or without its config', () => {
    expect(diagnoseNamespace(facts())).toEqual([]);
    expect(diagnoseNamespace(facts({ desired: desired() }))).toEqual([]);
  });

  it('rule 1: effective rp_filter is max(all, iface); strict on an endpoint or default-route interface is an error', () => {
    const strictAll = diagnoseNamespace(facts({}, { rpFilter: { all: 1, eth0: 0 } }));
    expect(strictAll.map((f) => [f.code, f.severity, f.subject])).toEqual([['MPTCP001', 'error', 'eth0']]);
    expect(strictAll[0]!.fix).toContain('rpFilter: { eth0: loose }');
    expect(strictAll[0]!.fix).toContain('sysctl -w net.ipv4.conf.eth0.rp_filter=2');
    expect(strictAll[0]!.evidence).toContain('effective value max(all, eth0) = 1 (strict)');
    // all strict but the interface loose: max is loose, MPTCP works.
    expect(codes(facts({}, { rpFilter: { all: 1, eth0: 2 } }))).toEqual([]);
    // Only the default route uses eth1: it counts too.
    const viaRoute = facts(
      { defaultRoutes: [{ family: 4, table: 254, ifindexes: [3] }] },
      {
        links: [...live().links, { ifindex: 3, name: 'eth1', up: true, lowerUp: true }],
        rpFilter: { all: 0, eth0: 2, eth1: 1 },
      },
    );
    expect(diagnoseNamespace(viaRoute).map((f) => f.subject)).toEqual(['eth1']);
    // MPTCP disabled: rule 5 says so, rp_filter does not matter then.
    expect(codes(facts({}, { mptcp: { enabled: false }, rpFilter: { all: 1 } }))).toEqual(['MPTCP006']);
  });

  it('rule 2: an endpoint without dev is a warning whose fix names the interface holding the address', () => {
    const fs = diagnoseNamespace(facts({}, { endpoints: [{ id: 4, family: 4, address: '192.0.2.1', flags: ['subflow', 'backup'] }] }));
    expect(fs.map((f) => [f.code, f.severity])).toEqual([['MPTCP002', 'warning']]);
    // A fix for namespace t acts on t when pasted, never on the host.
    expect(fs[0]!.fix).toContain('`ip -n t mptcp endpoint delete id 4; ip -n t mptcp endpoint add 192.0.2.1 dev eth0 subflow backup`');
    expect(fs[0]!.fix).toContain('dev: eth0');
    // Implicit endpoints are the kernel's: never blamed.
    expect(codes(facts({}, { endpoints: [{ id: 4, family: 4, address: '192.0.2.1', flags: ['implicit'] }] }))).toEqual([]);
  });

  it('rule 3: more subflow endpoints than limits.subflows; add_addr_accepted 0 on a client', () => {
    const eps = [1, 2, 3].map((i) => ({ id: i, family: 4 as const, address: `192.0.2.${i}`, flags: ['subflow' as const, ...(i === 3 ? (['fullmesh'] as const) : [])], ifindex: 2 }));
    const addresses = [1, 2, 3].map((i) => ({ ...live().addresses[0]!, address: `192.0.2.${i}` }));
    const fs = diagnoseNamespace(facts({}, { endpoints: eps, addresses, limits: { subflows: 2, addAddrAccepted: 0 } }));
    expect(fs.map((f) => [f.code, f.severity])).toEqual([
      ['MPTCP003', 'warning'],
      ['MPTCP004', 'info'],
    ]);
    expect(fs[0]!.message).toContain('3 subflow endpoint(s) need 4 additional subflow(s) but limits.subflows is 2');
    expect(fs[0]!.evidence[0]).toContain('fullmesh');
    // A server (signal endpoints only) needs no add_addr_accepted.
    expect(codes(facts({}, { endpoints: [{ id: 1, family: 4, address: '192.0.2.1', flags: ['signal'], ifindex: 2 }], limits: { subflows: 2, addAddrAccepted: 0 } }))).toEqual([]);
  });

  it('rule 4: live endpoints no file could declare are errors', () => {
    const fs = diagnoseNamespace(
      facts({}, {
        endpoints: [
          { id: 1, family: 4, address: '192.0.2.1', flags: ['signal', 'fullmesh'], ifindex: 2 },
          { id: 2, family: 4, address: '192.0.2.1', port: 10000, flags: ['subflow'], ifindex: 2 },
          { id: 3, family: 4, address: '192.0.2.1', port: 10001, flags: ['signal'], ifindex: 2 },
        ],
      }),
    );
    expect(fs.filter((f) => f.code === 'MPTCP005').map((f) => [f.severity, f.subject])).toEqual([
      ['error', 'endpoint 192.0.2.1'],
      ['error', 'endpoint 192.0.2.1:10000'],
    ]);
  });

  it('rule 5: MPTCP disabled; userspace path manager with endpoints, and without mptcpd', () => {
    expect(diagnoseNamespace(facts({}, { mptcp: { enabled: false } })).map((f) => [f.code, f.severity])).toEqual([['MPTCP006', 'error']]);
    const us = facts({}, { mptcp: { enabled: true, pathManager: 'userspace' } });
    expect(codes(us)).toEqual(['MPTCP007', 'MPTCP008']);
    // mptcpd running satisfies MPTCP008; that it runs is said once, as information (MPTCP026).
    expect(codes({ ...us, managers: [mptcpd] })).toEqual(['MPTCP007', 'MPTCP026']);
    expect(codes({ ...us, live: { ...us.live, endpoints: [] }, managers: [mptcpd] })).toEqual(['MPTCP026']);
  });

  it("rule 6: NetworkManager and mptcpd together is an error; one of them next to a config is as severe as what apply does", () => {
    expect(diagnoseNamespace(facts({ managers: [nm, mptcpd] })).map((f) => [f.code, f.severity])).toEqual([['MPTCP009', 'error']]);
    // Without a config: one running manager is still said, as information.
    const alone = diagnoseNamespace(facts({ managers: [nm] }));
    expect(alone.map((f) => [f.code, f.severity, f.subject])).toEqual([['MPTCP026', 'info', 'NetworkManager']]);
    expect(alone[0]!.message).toMatch(/refused under `conflicts: fail`/);
    // With one: apply refuses under fail (exit 1: an error), warns under warn, says nothing under ignore.
    const withCfg = diagnoseNamespace(facts({ managers: [nm], desired: desired({ conflicts: 'fail' }) }));
    expect(withCfg.map((f) => [f.code, f.severity, f.subject])).toEqual([['MPTCP010', 'error', 'NetworkManager']]);
    expect(withCfg[0]!.fix).toBe('stop NM');
    expect(diagnoseNamespace(facts({ managers: [nm], desired: desired({ conflicts: 'warn' }) })).map((f) => f.severity)).toEqual(['warning']);
    expect(diagnoseNamespace(facts({ managers: [nm], desired: desired({ conflicts: 'ignore' }) })).map((f) => f.severity)).toEqual(['info']);
    // A manager of endpoints next to a config of limits only: apply goes ahead, and so does doctor.
    expect(codes(facts({ managers: [mptcpd], desired: desired({ endpoints: undefined, rpFilter: {} }) }))).toEqual([]);
    // Configuration of a stopped manager is not a running one.
    expect(codes(facts({ managers: [{ ...nm, active: false, kind: 'config' }], desired: desired() }))).toEqual([]);
  });

  it('rule 7: address on no interface; dev down; dev gone', () => {
    const fs = diagnoseNamespace(
      facts({}, {
        endpoints: [
          { id: 1, family: 4, address: '198.51.100.7', flags: ['signal'], ifindex: 2 },
          { id: 2, family: 4, address: '192.0.2.1', flags: ['subflow'], ifindex: 3 },
          { id: 3, family: 4, address: '192.0.2.1', port: 9000, flags: ['signal'], ifindex: 99 },
        ],
        links: [...live().links, { ifindex: 3, name: 'eth1', up: false, lowerUp: false }],
      }),
    );
    expect(fs.map((f) => [f.code, f.subject])).toEqual([
      ['MPTCP011', 'endpoint 198.51.100.7'],
      ['MPTCP012', 'endpoint 192.0.2.1'],
      ['MPTCP012', 'endpoint 192.0.2.1:9000'],
    ]);
    expect(fs[1]!.message).toContain('eth1 is down');
    expect(fs[2]!.message).toContain('no longer exists');
  });

  it('rule 8: a connection below what its endpoints and limits allow is an error finding with the numbers', () => {
    expect(expectedSubflows(info({ subflowsMax: 2, localAddrMax: 1, addAddrAccepted: 1 }))).toBe(2);
    expect(expectedSubflows(info({ subflowsMax: 1, localAddrMax: 3 }))).toBe(1);
    const fs = diagnoseNamespace(
      facts({
        connections: [conn(info({ subflows: 0 })), conn(info()), conn(info({ fallback: true, subflows: 0 })), conn(undefined)],
      }),
    );
    expect(fs.map((f) => [f.code, f.severity])).toEqual([
      ['MPTCP014', 'error'],
      ['MPTCP013', 'info'],
      ['MPTCP015', 'info'],
    ]);
    const few = fs.find((f) => f.code === 'MPTCP014')!;
    expect(few.message).toContain('0 additional subflow(s) established where the endpoints and limits allow 1');
    expect(few.evidence).toContain('local_addr_used 1 local_addr_max 1');
    const ok = fs.find((f) => f.code === 'MPTCP013')!;
    expect(ok.message).toContain('limits reached: local_addr (1/1)');
    // An older kernel without local_addr_*: the floor is what ADD_ADDR allowed.
    const old = info({ subflows: 0, localAddrMax: undefined, localAddrUsed: undefined });
    expect(codes(facts({ connections: [conn(old)] }))).toEqual(['MPTCP013']);
  });

  it('rule 8: a busy namespace lists the unusual connections first and says how many were left out', () => {
    const many = [...Array.from({ length: 60 }, () => conn(info())), conn(info({ subflows: 0 }))];
    const fs = diagnoseNamespace(facts({ connections: many }));
    expect(fs.filter((f) => f.code === 'MPTCP014')).toHaveLength(1);
    expect(fs.find((f) => f.code === 'MPTCP016')!.message).toContain('11 more');
  });

  it('rule 9: static checks of the resolved config', () => {
    const d = desired({
      limits: { subflows: 1 },
      endpoints: [
        { address: '192.0.2.1', dev: 'eth0', flags: ['backup'] },
        { address: '192.0.2.2', dev: 'eth0', flags: ['subflow'] },
        { address: '192.0.2.3', dev: 'wwan0', flags: ['subflow'] },
      ],
      rpFilter: { eth0: 'strict' },
    });
    const fs = diagnoseNamespace(facts({ desired: d }));
    expect(fs.map((f) => [f.code, f.severity, f.subject])).toEqual([
      ['MPTCP017', 'warning', 'config endpoint 192.0.2.1'],
      ['MPTCP018', 'warning', 'config limits.subflows'],
      ['MPTCP019', 'warning', 'config rpFilter.eth0'],
      ['MPTCP020', 'warning', 'config endpoint 192.0.2.3'],
      ['MPTCP019', 'info', 'config rpFilter.wwan0'],
      ['MPTCP021', 'info', 'config endpoints'],
    ]);
    expect(fs.find((f) => f.code === 'MPTCP021')!.evidence).toEqual(['192.0.2.2', '192.0.2.3']);
    // rpFilter.all loose makes every interface loose.
    expect(codes(facts({ desired: desired({ rpFilter: { all: 'loose' } }) }))).toEqual([]);
  });
});

describe('doctor report', () => {
  it('prints text grouped by namespace, severity first, evidence and fix below; JSON has the contract shape', () => {
    const f1 = diagnoseNamespace(facts({ managers: [nm, mptcpd] }, { rpFilter: { all: 1 } }));
    const reports = [
      { netns: 'host', findings: f1 },
      { netns: 'ok', findings: [] },
    ];
    const text = formatText('node1', reports);
    expect(text).toMatch(/netns host: 2 errors, 0 warnings, 0 infos\n {2}ERROR {3}MPTCP001 eth0: .*\n {10}- net\.ipv4\.conf\.all\.rp_filter = 1 \(strict\)/);
    expect(text).toContain('          fix: declare `rpFilter: { eth0: loose }`');
    expect(text).toContain('netns ok: 0 errors, 0 warnings, 0 infos\n  no findings');
    expect(text).not.toContain('\x1b[');
    const json = toJson('node1', reports);
    expect(json.summary).toEqual({ errors: 2, warnings: 0, infos: 0 });
    expect(Object.keys(json.namespaces[0]!.findings[0]!).sort()).toEqual(['code', 'evidence', 'fix', 'message', 'netns', 'rule', 'severity', 'subject']);
  });
});

describe('sock_diag codec', () => {
  it('builds the mptcp_diag dump request: TCP in the header, IPPROTO_MPTCP in INET_DIAG_REQ_PROTOCOL, INET_DIAG_INFO asked', () => {
    const r = buildDumpRequest(2);
    expect(r.length).toBe(64);
    expect([r[0], r[1], r[2]]).toEqual([2, 6, 2]);
    expect(r.readUInt32LE(4) & (1 << 10)).toBe(0); // no listeners
    expect(r.subarray(56).toString('hex')).toBe('08000300' + '06010000');
  });

  function diagMsg(infoBytes: Buffer, family = 2): Buffer {
    const head = Buffer.alloc(72);
    head[0] = family;
    head[1] = 1; // ESTAB
    head.writeUInt16BE(40000, 4);
    head.writeUInt16BE(80, 6);
    if (family === 2) {
      Buffer.from([192, 0, 2, 1]).copy(head, 8);
      Buffer.from([198, 51, 100, 1]).copy(head, 24);
    } else {
      Buffer.from('20010db8000000000000000000000001', 'hex').copy(head, 8);
      Buffer.from('00000000000000000000ffffc6336401', 'hex').copy(head, 24);
    }
    head.writeUInt32LE(1000, 64);
    head.writeUInt32LE(4242, 68);
    const attr = Buffer.alloc(4 + ((infoBytes.length + 3) & ~3));
    attr.writeUInt16LE(4 + infoBytes.length, 0);
    attr.writeUInt16LE(2, 2);
    infoBytes.copy(attr, 4);
    return Buffer.concat([head, attr]);
  }

  it('parses a 6.18 mptcp_info (96 bytes) by offsets', () => {
    const b = Buffer.alloc(96);
    b.set([2, 1, 1, 4, 1, 3], 0);
    b.writeUInt32LE(0b10, 8);
    b.writeUInt32LE(0x1c208b60, 12);
    b.set([1, 2, 1], 40);
    b.writeBigUInt64LE(5n, 56);
    b[80] = 3;
    const c = parseInetDiagMsg(diagMsg(b));
    expect(c).toMatchObject({ family: 4, state: 'ESTAB', local: { address: '192.0.2.1', port: 40000 }, remote: { address: '198.51.100.1', port: 80 }, uid: 1000, inode: 4242 });
    expect(c.info).toMatchObject({
      size: 96,
      subflows: 2,
      addAddrSignal: 1,
      addAddrAccepted: 1,
      subflowsMax: 4,
      addAddrSignalMax: 1,
      addAddrAcceptedMax: 3,
      fallback: false,
      remoteKeyReceived: true,
      token: 0x1c208b60,
      localAddrUsed: 1,
      localAddrMax: 2,
      csumEnabled: true,
      bytesSent: 5n,
      subflowsTotal: 3,
    });
  });

  it('reads an older, shorter struct (5.9: 40 bytes) without inventing the missing fields, and refuses a truncated one', () => {
    const b = Buffer.alloc(40);
    b.set([0, 0, 0, 2, 0, 0], 0);
    b.writeUInt32LE(1, 8);
    const i = parseMptcpInfo(b);
    expect(i).toMatchObject({ size: 40, subflowsMax: 2, fallback: true });
    expect(i.localAddrMax).toBeUndefined();
    expect(i.subflowsTotal).toBeUndefined();
    expect(() => parseMptcpInfo(Buffer.alloc(39))).toThrow(/39 bytes/);
    expect(() => parseInetDiagMsg(Buffer.alloc(60))).toThrow(/60 bytes/);
  });

  it('writes IPv6 and v4-mapped addresses canonically', () => {
    const c = parseInetDiagMsg(diagMsg(Buffer.alloc(96), 10));
    expect(c.family).toBe(6);
    expect(c.local.address).toBe('2001:db8::1');
    expect(c.remote.address).toBe('198.51.100.1');
  });
});

describe('default route codec', () => {
  it('takes default unicast routes with their interfaces, multipath included, and skips others', () => {
    const msg = (dstLen: number, type: number, attrs: Buffer) => {
      const h = Buffer.alloc(16 + 12);
      h[16] = 2;
      h[17] = dstLen;
      h[20] = 254;
      h[23] = type;
      const b = Buffer.concat([h, attrs]);
      b.writeUInt32LE(b.length, 0);
      return b;
    };
    const attr = (type: number, payload: Buffer) => {
      const a = Buffer.alloc(4 + ((payload.length + 3) & ~3));
      a.writeUInt16LE(4 + payload.length, 0);
      a.writeUInt16LE(type, 2);
      payload.copy(a, 4);
      return a;
    };
    const u32 = (v: number) => {
      const b = Buffer.alloc(4);
      b.writeUInt32LE(v);
      return b;
    };
    const single = msg(0, 1, Buffer.concat([attr(5, Buffer.from([192, 0, 2, 254])), attr(4, u32(3))]));
    expect(parseDefaultRoute(single, 0, single.length)).toEqual({ family: 4, table: 254, ifindexes: [3], gateway: '192.0.2.254' });
    const nh = (ifindex: number) => {
      const b = Buffer.alloc(8);
      b.writeUInt16LE(8, 0);
      b.writeInt32LE(ifindex, 4);
      return b;
    };
    const multi = msg(0, 1, attr(9, Buffer.concat([nh(2), nh(5)])));
    expect(parseDefaultRoute(multi, 0, multi.length)?.ifindexes).toEqual([2, 5]);
    const notDefault = msg(24, 1, attr(4, u32(3)));
    expect(parseDefaultRoute(notDefault, 0, notDefault.length)).toBeUndefined();
    const blackhole = msg(0, 6, Buffer.alloc(0));
    expect(parseDefaultRoute(blackhole, 0, blackhole.length)).toBeUndefined();
  });
});

describe('fixes name their namespace; hostile names get no command', () => {
  const strict = (netns: string, iface: string) =>
    diagnoseNamespace(
      facts(
        { netns },
        {
          rpFilter: { all: 0, [iface]: 1 },
          links: [{ ifindex: 2, name: iface, up: true, lowerUp: true }],
          endpoints: [{ id: 4, family: 4, address: '192.0.2.1', flags: ['subflow'], ifindex: 2 }],
        },
      ),
    ).find((f) => f.code === 'MPTCP001')!;

  it('ip -n NS / ip netns exec NS for a named namespace, the plain form for the host', () => {
    expect(strict('blue', 'w0').fix).toContain('`ip netns exec blue sysctl -w net.ipv4.conf.w0.rp_filter=2`');
    expect(strict('host', 'w0').fix).toContain('`sysctl -w net.ipv4.conf.w0.rp_filter=2`');
    expect(strict('host', 'w0').fix).not.toContain('netns');
    // sysctl(8) reads "." as the separator: a VLAN name's dot is written "/".
    expect(strict('blue', 'eth0.100').fix).toContain('net.ipv4.conf.eth0/100.rp_filter=2');
    const invalid = diagnoseNamespace(
      facts({ netns: 'blue' }, { endpoints: [{ id: 4, family: 4, address: '192.0.2.1', port: 9000, flags: ['subflow'], ifindex: 2 }] }),
    ).find((f) => f.code === 'MPTCP005')!;
    expect(invalid.fix).toContain('`ip -n blue mptcp endpoint delete id 4`');
  });

  it('a name with shell metacharacters or glob characters never reaches a command', () => {
    for (const iface of ['a;b', 'x$(id)', 'w*', '-rf']) {
      const f = strict('blue', iface);
      expect(f.fix, iface).not.toMatch(/`[^`]*sysctl/);
      expect(f.fix, iface).not.toContain(iface);
    }
    for (const netns of ['a;reboot', 'n$(id)', 'ns*', '-x']) {
      const f = strict(netns, 'w0');
      expect(f.fix, netns).not.toContain('sysctl -w');
    }
  });
});

describe('limits on real numbers', () => {
  it('the subflows limit a client needs counts accepted ADD_ADDRs too', () => {
    const fs = diagnoseNamespace(facts({}, { limits: { subflows: 1, addAddrAccepted: 1 } }));
    const f = fs.find((x) => x.code === 'MPTCP003')!;
    expect(f.message).toContain('1 subflow endpoint(s) and 1 accepted ADD_ADDR(s) need 2 additional subflow(s) but limits.subflows is 1');
    expect(f.fix).toContain('`limits: { subflows: 2 }`');
    expect(f.fix).toContain('`ip -n t mptcp limits set subflows 2`');
  });

  it('ADD_ADDRs received while add_addr_accepted is 0 are an error, with or without subflow endpoints', () => {
    const fs = diagnoseNamespace(facts({ mib: { MPTcpExtAddAddr: 3 } }, { endpoints: [], limits: { subflows: 2, addAddrAccepted: 0 } }));
    expect(fs.map((f) => [f.code, f.severity])).toEqual([['MPTCP024', 'error']]);
    expect(fs[0]!.message).toContain('received 3 ADD_ADDR(s) and acted on none');
    expect(codes(facts({ mib: { MPTcpExtAddAddr: 0 } }, { endpoints: [], limits: { subflows: 2, addAddrAccepted: 0 } }))).toEqual([]);
  });

  it('joins in SYN-SENT are reported as in flight, not as subflows; the userspace path manager has no kernel limits', () => {
    const hanging = { ...conn(info({ subflows: 2, subflowsMax: 2, localAddrMax: 2, localAddrUsed: 2 })), subflowStates: { established: 1, synSent: 2, other: 0 } };
    const f = diagnoseNamespace(facts({ connections: [hanging] })).find((x) => x.code === 'MPTCP014')!;
    expect(f.severity).toBe('warning');
    expect(f.message).toContain('0 additional subflow(s) established, 2 join(s) in flight (SYN-SENT) where the endpoints and limits allow 2');
    expect(f.message).toContain('subflows (2/2, 2 of them joins in flight)');
    const userspace = diagnoseNamespace(
      facts(
        { connections: [conn(info({ subflows: 0, subflowsMax: 0, localAddrMax: 0, localAddrUsed: 0, addAddrAcceptedMax: 0 }))], managers: [mptcpd] },
        { endpoints: [], mptcp: { enabled: true, pathManager: 'userspace' } },
      ),
    ).filter((x) => x.subject.startsWith('connection'));
    expect(userspace.map((x) => x.code)).toEqual(['MPTCP013']);
    expect(userspace[0]!.message).not.toContain('limits reached');
    expect(userspace[0]!.message).toContain('the in-kernel limits do not apply');
  });
});
