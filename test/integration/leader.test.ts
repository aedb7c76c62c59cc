// LeaderElector against the real kube-apiserver, with a TCP proxy to cut one replica off.
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { CoordinationV1Api, V1MicroTime, type KubeConfig } from '@kubernetes/client-node';
import { LeaderElector, type LeaderElectorOptions } from '../../src/controller/leader.js';
import { createTestNamespace, deleteTestNamespace, kubeClientOf, testKubeConfig } from '../../tools/harness/cluster.js';
import { apiServerAddress, TcpProxy } from '../support/tcp-proxy.js';
import { waitFor } from '../../tools/harness/wait-for.js';

const waitOptions = { timeoutMs: 30_000, intervalMs: 50 };

/**
 * Durations under which a lease can only change hands by release or by force: it lasts
 * longer than any wait in these tests.
 */
const slowExpiry = { leaseDurationMs: 120_000, renewDeadlineMs: 60_000, retryPeriodMs: 200 };

let kubeConfig: KubeConfig;
let coordination: CoordinationV1Api;
let namespace: string;
let electors: LeaderElector[] = [];
let leaseCount = 0;

beforeAll(async () => {
  kubeConfig = testKubeConfig();
  coordination = kubeConfig.makeApiClient(CoordinationV1Api);
  namespace = await createTestNamespace(kubeConfig, 'leader');
});

afterEach(async () => {
  await Promise.all(electors.map((elector) => elector.stop()));
  electors = [];
});

afterAll(async () => {
  await deleteTestNamespace(kubeConfig, namespace);
});

/** An elector whose leadership changes are recorded in `log`, in order. */
function replica(
  identity: string,
  lease: string,
  log: string[],
  options: Partial<LeaderElectorOptions> & { kubeConfig?: KubeConfig } = {},
) {
  const { kubeConfig: through = kubeConfig, ...rest } = options;
  const elector = new LeaderElector({ client: kubeClientOf(through), namespace, name: lease, identity, ...slowExpiry, ...rest });
  electors.push(elector);
  let signal: AbortSignal | undefined;
  elector.run({
    onStartedLeading: (leading) => {
      signal = leading;
      log.push(`${identity} started`);
    },
    onStoppedLeading: () => log.push(`${identity} stopped`),
  });
  return { elector, signal: () => signal };
}

function newLeaseName(): string {
  return `lease-${String(++leaseCount)}`;
}

async function holderOf(lease: string): Promise<string | undefined> {
  return (await coordination.readNamespacedLease({ name: lease, namespace })).spec?.holderIdentity;
}

describe('LeaderElector', () => {
  it('lets one of two replicas lead, and the other take over at once when the leader stops', async () => {
    const lease = newLeaseName();
    const log: string[] = [];
    const a = replica('a', lease, log);
    const b = replica('b', lease, log);
    const leader = await waitFor(() => (a.elector.isLeader() ? a : b.elector.isLeader() ? b : undefined), {
      ...waitOptions,
      description: 'a leader',
    });
    const follower = leader === a ? b : a;
    const [leaderName, followerName] = leader === a ? ['a', 'b'] : ['b', 'a'];
    expect(follower.elector.isLeader()).toBe(false);
    expect(await holderOf(lease)).toBe(leaderName);
    expect(log).toEqual([`${leaderName} started`]);

    await leader.elector.stop();
    expect(leader.elector.isLeader()).toBe(false);
    expect(leader.signal()?.aborted).toBe(true);
    // The lease lasts two minutes: only the release lets the follower in this soon.
    await waitFor(() => follower.elector.isLeader(), { ...waitOptions, description: 'the follower to lead' });
    expect(await holderOf(lease)).toBe(followerName);
    expect(log).toEqual([`${leaderName} started`, `${leaderName} stopped`, `${followerName} started`]);
  });

  it('writes acquire and renew times the apiserver accepts, and counts transitions', async () => {
    const lease = newLeaseName();
    const log: string[] = [];
    const first = replica('first', lease, log);
    await waitFor(() => first.elector.isLeader(), waitOptions);
    const initial = await coordination.readNamespacedLease({ name: lease, namespace });
    await waitFor(
      async () =>
        (await coordination.readNamespacedLease({ name: lease, namespace })).metadata?.resourceVersion !==
        initial.metadata?.resourceVersion,
      { ...waitOptions, description: 'a renewal' },
    );
    const renewed = await coordination.readNamespacedLease({ name: lease, namespace });
    // Read back, MicroTimes are strings with microseconds.
    expect(String(renewed.spec?.renewTime)).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    expect(renewed.spec?.acquireTime).toBe(initial.spec?.acquireTime);
    expect(renewed.spec?.leaseDurationSeconds).toBe(120);
    expect(renewed.spec?.leaseTransitions).toBe(0);

    // It made the lease: there was no leader before it.
    expect(first.elector.previousLeaderRenewTime()).toBeUndefined();

    await first.elector.stop();
    const lastSign = (await coordination.readNamespacedLease({ name: lease, namespace })).spec?.renewTime;
    const second = replica('second', lease, log);
    expect(second.elector.previousLeaderRenewTime()).toBeUndefined();
    await waitFor(() => second.elector.isLeader(), waitOptions);
    // The one before it was last seen when it released the lease.
    expect(second.elector.previousLeaderRenewTime()).toBe(Date.parse(String(lastSign)));
    // Taking over a released lease (no holder) is not a transition from one holder to another.
    const released = await coordination.readNamespacedLease({ name: lease, namespace });
    expect(released.spec?.holderIdentity).toBe('second');
    expect(released.spec?.leaseTransitions).toBe(0);
  });

  it('steps down at once when another party takes the lease', async () => {
    const lease = newLeaseName();
    const log: string[] = [];
    const leader = replica('leader', lease, log);
    await waitFor(() => leader.elector.isLeader(), waitOptions);

    const current = await coordination.readNamespacedLease({ name: lease, namespace });
    await coordination.replaceNamespacedLease({
      name: lease,
      namespace,
      body: { ...current, spec: { ...current.spec, holderIdentity: 'intruder', renewTime: new V1MicroTime() } },
    });

    await waitFor(() => log.includes('leader stopped'), { ...waitOptions, description: 'the leader to step down' });
    expect(leader.elector.isLeader()).toBe(false);
    expect(leader.signal()?.aborted).toBe(true);
    // Stepping down is final, and releasing leaves a lease it does not hold alone.
    await leader.elector.stop();
    expect(await holderOf(lease)).toBe('intruder');
    expect(log).toEqual(['leader started', 'leader stopped']);
  });

  it.each(['cut', 'stall'] as const)('steps down within the renew deadline when the network is %s, before the other replica takes over', async (failure) => {
    const lease = newLeaseName();
    const log: string[] = [];
    const fastExpiry = { leaseDurationMs: 4_000, renewDeadlineMs: 2_000, retryPeriodMs: 200 };
    const proxy = await TcpProxy.start(apiServerAddress(kubeConfig));
    try {
      const cutOff = replica('cut-off', lease, log, { ...fastExpiry, kubeConfig: proxy.kubeConfigThrough(kubeConfig) });
      await waitFor(() => cutOff.elector.isLeader(), waitOptions);
      const other = replica('other', lease, log, fastExpiry);

      // Refused connections fail renewals at once; a stalled one leaves a renewal hanging.
      if (failure === 'cut') proxy.cut();
      else proxy.stall();
      await waitFor(() => other.elector.isLeader(), { ...waitOptions, description: 'the other replica to lead' });
      expect(cutOff.elector.isLeader()).toBe(false);
      expect(cutOff.signal()?.aborted).toBe(true);
      // Never two leaders: the cut-off one stopped before the other started.
      expect(log).toEqual(['cut-off started', 'cut-off stopped', 'other started']);
      expect(await holderOf(lease)).toBe('other');
    } finally {
      await proxy.close();
    }
  });

  it('refuses durations that could let two replicas lead at once', () => {
    expect(
      () => new LeaderElector({ client: kubeClientOf(kubeConfig), namespace, name: 'x', identity: 'x', leaseDurationMs: 10_000, renewDeadlineMs: 10_000 }),
    ).toThrow(/retryPeriodMs < renewDeadlineMs < leaseDurationMs/);
  });
});
