import { describe, expect, it } from '@jest/globals';
import { OperatorMetrics } from '../../../src/controller/metrics.js';

async function exposition(metrics: OperatorMetrics): Promise<string> {
  return metrics.registry.metrics();
}

describe('OperatorMetrics', () => {
  it('exposes every operator metric and the default process metrics', async () => {
    const metrics = new OperatorMetrics();
    const text = await exposition(metrics);
    for (const name of [
      'hpc_user_operator_reconcile_total',
      'hpc_user_operator_reconcile_duration_seconds',
      'hpc_user_operator_provider_requests_total',
      'hpc_user_operator_sync_pages',
      'hpc_user_operator_cluster_users',
      'hpc_user_operator_last_successful_sync_timestamp_seconds',
      'hpc_user_operator_queue_depth',
      'hpc_user_operator_leader',
      'hpc_user_operator_watch_restarts_total',
      'process_cpu_user_seconds_total',
      'nodejs_eventloop_lag_seconds',
    ]) {
      expect(text).toContain(`# TYPE ${name} `);
    }
  });

  it("exposes each access key's budget by its short hash, read at scrape time", async () => {
    const metrics = new OperatorMetrics();
    let stretched = 40;
    metrics.watchKeyBudgets(() => [
      { label: '3f2a9c01b7de', budgetPerHour: 1900, plannedPerHour: 1680, demandPerHour: 2400, tokens: 12.5, resources: 40, stretched, pausedUntil: 1_700_000_000_000 },
    ]);
    const text = await exposition(metrics);
    expect(text).toContain('hpc_user_operator_key_budget_calls_per_hour{key="3f2a9c01b7de"} 1900');
    expect(text).toContain('hpc_user_operator_key_planned_calls_per_hour{key="3f2a9c01b7de"} 1680');
    expect(text).toContain('hpc_user_operator_key_demand_calls_per_hour{key="3f2a9c01b7de"} 2400');
    expect(text).toContain('hpc_user_operator_key_tokens{key="3f2a9c01b7de"} 12.5');
    expect(text).toContain('hpc_user_operator_key_resources{key="3f2a9c01b7de"} 40');
    expect(text).toContain('hpc_user_operator_key_stretched_resources{key="3f2a9c01b7de"} 40');
    expect(text).toContain('hpc_user_operator_key_paused_until_timestamp_seconds{key="3f2a9c01b7de"} 1700000000');
    stretched = 0;
    expect(await exposition(metrics)).toContain('hpc_user_operator_key_stretched_resources{key="3f2a9c01b7de"} 0');
  });

  it('keeps separate registries per instance', async () => {
    const first = new OperatorMetrics();
    const second = new OperatorMetrics();
    first.setLeader(true);
    expect(await exposition(first)).toContain('hpc_user_operator_leader 1');
    expect(await exposition(second)).toContain('hpc_user_operator_leader 0');
  });

  it('counts reconciles by result and observes their duration', async () => {
    const metrics = new OperatorMetrics();
    metrics.observeReconcile('success', 0.2);
    metrics.observeReconcile('success', 0.3);
    metrics.observeReconcile('error', 1);
    metrics.observeReconcile('requeue_after', 0.1);
    const text = await exposition(metrics);
    expect(text).toContain('hpc_user_operator_reconcile_total{result="success"} 2');
    expect(text).toContain('hpc_user_operator_reconcile_total{result="error"} 1');
    expect(text).toContain('hpc_user_operator_reconcile_total{result="requeue_after"} 1');
    expect(text).toContain('hpc_user_operator_reconcile_duration_seconds_count 4');
  });

  it('labels provider requests by ret_code, HTTP status, timeout or network failure', async () => {
    const metrics = new OperatorMetrics();
    metrics.countProviderRequest({ retCode: 0 });
    metrics.countProviderRequest({ retCode: 1400 });
    metrics.countProviderRequest({ httpStatus: 502 });
    metrics.countProviderRequest({ failure: 'timeout' });
    metrics.countProviderRequest({ failure: 'network' });
    const text = await exposition(metrics);
    for (const label of ['0', '1400', 'http_502', 'timeout', 'network']) {
      expect(text).toContain(`hpc_user_operator_provider_requests_total{ret_code="${label}"} 1`);
    }
  });

  it('records a successful sync per resource and forgets a deleted resource', async () => {
    const metrics = new OperatorMetrics();
    metrics.observeSuccessfulSync('research', 'chem-lab', { users: 42, pages: 1, at: new Date('2026-01-02T03:04:05Z') });
    metrics.observeSuccessfulSync('research', 'bio-lab', { users: 7, pages: 1, at: new Date('2026-01-02T03:04:05Z') });
    let text = await exposition(metrics);
    expect(text).toContain('hpc_user_operator_cluster_users{namespace="research",name="chem-lab"} 42');
    expect(text).toContain(
      'hpc_user_operator_last_successful_sync_timestamp_seconds{namespace="research",name="chem-lab"} 1767323045',
    );
    expect(text).toContain('hpc_user_operator_sync_pages_count 2');
    metrics.forget('research', 'chem-lab');
    text = await exposition(metrics);
    expect(text).not.toContain('name="chem-lab"');
    expect(text).toContain('hpc_user_operator_cluster_users{namespace="research",name="bio-lab"} 7');
  });

  it('sets the queue depth and counts watch restarts by resource', async () => {
    const metrics = new OperatorMetrics();
    metrics.setQueueDepth(3);
    metrics.countWatchRestart('configmaps');
    metrics.countWatchRestart('configmaps');
    const text = await exposition(metrics);
    expect(text).toContain('hpc_user_operator_queue_depth 3');
    expect(text).toContain('hpc_user_operator_watch_restarts_total{resource="configmaps"} 2');
  });
});
