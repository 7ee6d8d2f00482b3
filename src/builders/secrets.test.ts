import { describe, expect, it } from 'vitest';
import { instanceRole } from './rbac.js';
import { credentialSecret, generatePassword, generatedSecretNames, secretNames } from './secrets.js';
import { seedCluster } from '../../test/support/cluster-fixtures.js';
import { podSpecOf, statefulSet } from '../../test/support/builder-fixtures.js';

describe('credentials', () => {
  it('generates 32 URL-safe characters, different on every call', () => {
    const passwords = Array.from({ length: 50 }, generatePassword);
    for (const p of passwords) expect(p).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(new Set(passwords).size).toBe(passwords.length);
  });

  it('gives the app Secret URIs with the URL-encoded password and the rw Service\'s host', () => {
    const password = 'p@ss/w:rd?&=%';
    const data = credentialSecret(seedCluster(), 'app', password).stringData!;
    const host = 'prod-db-rw.production.svc';
    const enc = encodeURIComponent(password);
    expect(data).toEqual({
      username: 'app',
      password,
      dbname: 'app',
      host,
      port: '5432',
      uri: `postgresql://app:${enc}@${host}:5432/app`,
      'jdbc-uri': `jdbc:postgresql://${host}:5432/app?user=app&password=${enc}`,
    });
    expect(decodeURIComponent(new URL(data.uri!).password)).toBe(password);
  });

  it('uses the initdb owner and database in the app Secret', () => {
    const cluster = seedCluster({ bootstrap: { initdb: { owner: 'shop', database: 'orders' } } });
    const data = credentialSecret(cluster, 'app', 'x').stringData!;
    expect([data.username, data.dbname]).toEqual(['shop', 'orders']);
    expect(data.uri).toBe('postgresql://shop:x@prod-db-rw.production.svc:5432/orders');
  });

  it('names the users of the superuser and replication Secrets', () => {
    const cluster = seedCluster();
    expect(credentialSecret(cluster, 'superuser', 's').stringData).toEqual({ username: 'postgres', password: 's' });
    expect(credentialSecret(cluster, 'replication', 'r').stringData).toEqual({ username: 'streaming_replica', password: 'r' });
    expect(credentialSecret(cluster, 'replication', 'r').type).toBe('kubernetes.io/basic-auth');
  });

  it('generates every Secret by default, the agent\'s API token included', () => {
    expect(generatedSecretNames(seedCluster())).toEqual({ superuser: 'prod-db-superuser', replication: 'prod-db-replication', app: 'prod-db-app', agent: 'prod-db-agent' });
    const agent = credentialSecret(seedCluster(), 'agent', 'tok');
    expect(agent.stringData).toEqual({ token: 'tok' });
    expect(podSpecOf(statefulSet(seedCluster())).volumes!.find((v) => v.name === 'agent')?.secret?.secretName).toBe('prod-db-agent');
  });

  it('generates no superuser Secret when the user supplies one, and points everything at theirs', () => {
    const cluster = seedCluster({ superuserSecret: { name: 'my-superuser' } });
    expect(generatedSecretNames(cluster).superuser).toBeUndefined();
    expect(secretNames(cluster).superuser).toBe('my-superuser');
    const volume = podSpecOf(statefulSet(cluster)).volumes!.find((v) => v.name === 'superuser');
    expect(volume?.secret?.secretName).toBe('my-superuser');
    // Mounted by the kubelet: the pods' Role grants no Secret through the API.
    expect(instanceRole(cluster).rules!.filter((r) => r.resources?.includes('secrets'))).toEqual([]);
  });

  it('generates no app Secret when initdb names one', () => {
    const cluster = seedCluster({ bootstrap: { initdb: { secret: { name: 'my-app' } } } });
    expect(generatedSecretNames(cluster).app).toBeUndefined();
    expect(secretNames(cluster).app).toBe('my-app');
  });
});
