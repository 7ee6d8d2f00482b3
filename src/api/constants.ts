// Names that the CRD, the operator and the chart share.
export const API_GROUP = 'postgres.pgpilot.io';
export const API_VERSION = 'v1';
export const API_GROUP_VERSION = `${API_GROUP}/${API_VERSION}`;

export const CLUSTER_KIND = 'PostgreSQLCluster';
export const CLUSTER_PLURAL = 'postgresqlclusters';
export const CLUSTER_SINGULAR = 'postgresqlcluster';
export const CLUSTER_SHORT_NAMES = ['pgc', 'pgcluster'];
export const CATEGORIES = ['all', 'pgpilot'];

/** The one field manager every server-side apply of the operator uses. */
export const FIELD_MANAGER = 'pgpilot-operator';

/** Label and annotation keys put on every object the operator owns. */
export const LABELS = {
  name: 'app.kubernetes.io/name',
  instanceOf: 'app.kubernetes.io/instance',
  component: 'app.kubernetes.io/component',
  managedBy: 'app.kubernetes.io/managed-by',
  cluster: 'postgres.pgpilot.io/cluster',
  instance: 'postgres.pgpilot.io/instance',
  role: 'postgres.pgpilot.io/role',
} as const;

export const MANAGED_BY = 'pgpilot';
export const ANNOTATIONS = {
  /** Hash of the rendered configuration a pod runs with; a change rolls the instance. */
  configHash: 'postgres.pgpilot.io/config-hash',
} as const;

/** Roles an instance pod can carry in LABELS.role; Services select on them. */
export const ROLE_PRIMARY = 'primary';
export const ROLE_REPLICA = 'replica';

/** Ports inside every PostgreSQL pod. */
export const POSTGRES_PORT = 5432;
export const AGENT_PORT = 8000;
export const METRICS_PORT = 9187;
