// verifyNamespace names what still differs, in the nmstate style the CLI prints.
import { describe, expect, it } from 'vitest';
import type { DesiredNamespace, LiveNamespace } from '../src/core/model.js';
import { verifyNamespace } from '../src/core/verify.js';

function live(over: Partial<LiveNamespace> = {}): LiveNamespace {
  return {
    netns: 't',
    endpoints: [],
    limits: { subflows: 2, addAddrAccepted: 0 },
    mptcp: { enabled: true, pathManager: 'kernel' },
    rpFilter: { all: 0, default: 1, eth0: 1 },
    links: [
      { ifindex: 2, name: 'eth0', up: true, lowerUp: true },
      { ifindex: 3, name: 'eth1', up: true, lowerUp: true },
    ],
    addresses: [],
    ...over,
  };
}

function desired(over: Partial<DesiredNamespace> = {}): DesiredNamespace {
  return { netns: 't', mptcp: {}, limits: {}, endpoints: undefined, rpFilter: {}, prune: true, conflicts: 'fail', ...over };
}

describe('verifyNamespace', () => {
  it('names each kind of difference, sysctls first', () => {
    const v = verifyNamespace(
      desired({
        mptcp: { enabled: false },
        limits: { subflows: 4 },
        endpoints: [{ address: '192.0.2.1', flags: ['subflow', 'backup'] }],
        rpFilter: { eth0: 'loose' },
      }),
      live({ endpoints: [{ id: 1, family: 4, address: '192.0.2.1', flags: ['subflow'] }] }),
    );
    expect(v.converged).toBe(false);
    expect(v.firstDifference).toBe('mptcp.enabled: want false, have true');
    expect(v.differences).toEqual([
      'mptcp.enabled: want false, have true',
      'limits.subflows: want 4, have 2',
      'endpoints[192.0.2.1].flags: want [subflow backup], have [subflow]',
      'rpFilter.eth0: want loose, have strict',
    ]);
  });

  it('reports dev, pinned id, missing and undeclared endpoints', () => {
    const v = verifyNamespace(
      desired({
        endpoints: [
          { address: '192.0.2.1', dev: 'eth1', flags: ['subflow'] },
          { address: '192.0.2.2', id: 7, flags: ['signal'] },
          { address: '192.0.2.3', port: 10000, flags: ['signal'] },
        ],
      }),
      live({
        endpoints: [
          { id: 1, family: 4, address: '192.0.2.1', flags: ['subflow'], ifindex: 2 },
          { id: 2, family: 4, address: '192.0.2.2', flags: ['signal'] },
          { id: 3, family: 4, address: '198.51.100.1', flags: ['signal'] },
          { id: 4, family: 4, address: '198.51.100.2', flags: ['implicit'] },
        ],
      }),
    );
    expect(v.differences).toEqual([
      'endpoints[192.0.2.1].dev: want eth1, have eth0',
      'endpoints[192.0.2.2].id: want 7, have 2',
      'endpoints[192.0.2.3 port 10000]: want present [signal], have absent',
      'endpoints[198.51.100.1]: want absent (prune), have present [signal] id 3',
    ]);
  });

  it('does not count implicit endpoints, undeclared ones with prune off, or pending items', () => {
    const v = verifyNamespace(
      desired({
        prune: false,
        endpoints: [
          { address: '192.0.2.1', flags: ['subflow'] },
          { address: '192.0.2.9', dev: 'wwan0', flags: ['subflow'] },
        ],
        rpFilter: { wwan0: 'loose', all: 'off' },
      }),
      live({
        endpoints: [
          { id: 1, family: 4, address: '192.0.2.1', flags: ['subflow'] },
          { id: 2, family: 4, address: '198.51.100.1', flags: ['signal'] },
          { id: 3, family: 4, address: '198.51.100.2', flags: ['implicit'] },
        ],
      }),
    );
    expect(v).toEqual({
      converged: true,
      differences: [],
      pending: [
        { what: 'endpoints[192.0.2.9]', reason: 'dev wwan0 does not exist (yet)' },
        { what: 'rpFilter.wwan0', reason: 'interface wwan0 does not exist (yet)' },
      ],
    });
  });

  it('a sysctl the kernel lacks is not converged', () => {
    const v = verifyNamespace(desired({ mptcp: { scheduler: 'default' } }), live());
    expect(v.converged).toBe(false);
    expect(v.firstDifference).toBe('mptcp.scheduler: want default, have (this kernel lacks net.mptcp.scheduler)');
  });

  it('untouched keys are not compared: an empty desired state verifies against anything', () => {
    expect(verifyNamespace(desired(), live({ endpoints: [{ id: 1, family: 4, address: '192.0.2.1', flags: [] }] })).converged).toBe(true);
  });
});
