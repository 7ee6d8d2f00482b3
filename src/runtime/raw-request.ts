// Plain-JSON GETs against the apiserver. Informers use these for lists so that listed objects
// look exactly like watched ones (raw JSON, string timestamps), unlike the typed clients' models.
import { request as httpsRequest } from 'node:https';
import { request as httpRequest, type RequestOptions } from 'node:http';
import type { KubeConfig } from '@kubernetes/client-node';

export class KubeHttpError extends Error {
  constructor(readonly statusCode: number, readonly body: string, path: string) {
    super(`GET ${path}: HTTP ${statusCode}: ${body.slice(0, 300)}`);
  }
}

export async function getJson<T>(kc: KubeConfig, path: string, query: Record<string, string | undefined> = {}): Promise<T> {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('kubeconfig has no current cluster');
  const url = new URL(cluster.server + path);
  for (const [k, v] of Object.entries(query)) if (v !== undefined) url.searchParams.set(k, v);
  const opts: RequestOptions & Record<string, unknown> = { method: 'GET', headers: { Accept: 'application/json' } };
  await kc.applyToHTTPSOptions(opts as never);
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise<T>((resolve, reject) => {
    const req = send(url, opts, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        if (res.statusCode !== 200) reject(new KubeHttpError(res.statusCode ?? 0, body, path));
        else {
          try {
            resolve(JSON.parse(body) as T);
          } catch (err) {
            reject(err);
          }
        }
      });
      res.on('error', reject);
    });
    req.setTimeout(60_000, () => req.destroy(new Error(`GET ${path}: timed out after 60s`)));
    req.on('error', reject);
    req.end();
  });
}
