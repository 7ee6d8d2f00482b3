/**
 * The CSV's long description (Markdown, shown on OperatorHub). It claims capability level 5 (Auto
 * Pilot) and says, feature by feature, what backs the claim today and what does not exist yet.
 * Keep it true: change it with the feature, not before.
 */
export const SHORT_DESCRIPTION = 'Highly available PostgreSQL clusters on auto pilot: failover, self-healing, rolling and major upgrades, backups with PITR, monitoring.';

export const DESCRIPTION = `pgpilot runs highly available PostgreSQL clusters declared as \`PostgreSQLCluster\` resources
(\`postgres.pgpilot.io/v1\`, short name \`pgc\`). One StatefulSet per instance, the primary elected through
a Lease, server-side apply of every object it owns, status conditions a person can act on.

\`\`\`yaml
apiVersion: postgres.pgpilot.io/v1
kind: PostgreSQLCluster
metadata:
  name: prod-db
spec:
  version: "14.5"
  instances: 3
  storage: {size: 100Gi, storageClass: fast-ssd}
  backup: {enabled: true, schedule: "0 2 * * *", retention: 7}
  highAvailability: {enabled: true, synchronousCommit: true}
\`\`\`

## Capability level: Auto Pilot — what backs it today

| | state |
|---|---|
| **Failover** | done: the operator detects a failed primary, fences it and promotes the most advanced replica (promotion serialised through a Lease, never two writable primaries); planned switchover by setting \`spec.primary\`; synchronous replication with a quorum (\`ANY n\`) so a failover loses no acknowledged write |
| **Self-healing** | done: a failed primary rejoins as a replica (pg_rewind), an instance that cannot rejoin is re-cloned from the primary; tested under repeated faults (process and pod kills, freezes, network isolation, the operator itself killed mid-promotion) |
| **Upgrades** | done: rolling minor upgrades and settings changes (replicas first, a switchover, the old primary last; reload or restart as each setting needs); declarative major upgrades with \`pg_upgrade\` (a \`--check\` against a copy of the schema first, automatic rollback when the upgrade fails) |
| **Hibernation** | done: \`spec.hibernation: true\` stops every instance cleanly and keeps the volumes and the primary; \`false\` brings the same primary back |
| **Backup and recovery** | done: continuous WAL archiving and scheduled or on-demand base backups (\`PostgreSQLBackup\`) to S3 or a volume, retention, point-in-time recovery to a time, an LSN or a restore point |
| **Monitoring** | done: a built-in exporter in every instance, PodMonitor / ServiceMonitor and a PrometheusRule of alerts with runbooks, Grafana dashboards |
| **Tuning** | done: memory, parallelism, WAL size and I/O settings computed from the instance's resources with pgtune's formulas for a workload profile (\`spec.postgresql.tuning\`: oltp, web, olap, mixed; ssd, hdd, san), each value with its reason in \`status.tuning\`; user parameters win; a resources change rolls replicas first |
| **Storage auto-grow** | done: \`spec.storage.autoGrow\` / \`spec.walStorage.autoGrow\` grow the claims from the agents' statfs readings before the disk fills (threshold, increment, a required \`maxSize\`, cooldown); \`StorageFull\` long before 100 %, WAL growth caused by failing archiving or a slot called out and capped, a full replica never promoted |
| **Replica autoscaling** | done: \`spec.autoscaling\` makes the operator own a HorizontalPodAutoscaler on the scale subresource (CPU), and \`kubectl autoscale pgc\` works the same way; scale-down never removes the primary, new replicas are added one at a time, and a count below what synchronous commit needs is held at the minimum with a condition |
| **Anomaly detection and correction** | done: transaction-ID wraparound risk, long or idle-in-transaction sessions, replication lag, slots retaining WAL, pg_wal growing while archiving fails, connections near the limit and forced checkpoints become conditions, Events and metrics; corrections (each can be turned off): VACUUM (FREEZE), terminating idle-in-transaction sessions past the limit, raising max_wal_size within the volume's room, and — only when allowed — dropping an inactive slot |

## Install mode and webhooks

\`PostgreSQLCluster\` is served as \`v1\` (stored) and \`v1beta1\`, converted by the operator's
conversion webhook; a validating webhook refuses a recovery source the cluster's namespace may not
read. OLM issues their certificate and wires both. A CRD has one conversion webhook, so the operator
is installed once per cluster, in AllNamespaces mode, and watches every namespace with
cluster-wide permissions. Pods run non-root under the restricted Pod Security profile.
`;
