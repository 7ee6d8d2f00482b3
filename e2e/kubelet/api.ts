// Raw-JSON calls to the apiserver for the process kubelet. Everything the kubelet reads or writes
// stays plain JSON (string timestamps, no model classes), the same shape the informers deliver.
import { request as httpsRequest } from 'node:https';
import { request as httpRequest, type RequestOptions } from 'node:http';
import type { KubeConfig } from '@kubernetes/client-node';
import { parseJson } from '../../src/util/json.js';

export class ApiError extends Error {
  constructor(
    readonly method: string,
    readonly path: string,
    readonly statusCode: number,
    readonly body: string,
  ) {
    super(`${method} ${path}: HTTP ${statusCode}: ${body.slice(0, 400)}`);
  }
}

export const isStatus = (err: unknown, code: number): boolean => err instanceof ApiError && err.statusCode === code;

type Json = Record<string, unknown>;

export class KubeApi {
  constructor(readonly kc: KubeConfig) {}

  get server(): string {
    const c = this.kc.getCurrentCluster();
    if (!c) throw new Error('kubeconfig has no current cluster');
    return c.server;
  }

  async request<T = Json>(method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<T> {
    const url = new URL(this.server + path);
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const headers: Record<string, string> = { Accept: 'application/json' };
    if (payload) {
      headers['Content-Type'] = contentType;
      headers['Content-Length'] = String(payload.length);
    }
    const opts: RequestOptions & Record<string, unknown> = { method, headers };
    await this.kc.applyToHTTPSOptions(opts as never);
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise<T>((resolve, reject) => {
      const req = send(url, opts, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const code = res.statusCode ?? 0;
          if (code < 200 || code >= 300) return reject(new ApiError(method, path, code, text));
          try {
            resolve(text ? parseJson<T>(text, `${method} ${path}`) : ({} as T));
          } catch (err) {
            reject(err);
          }
        });
      });
      req.setTimeout(30_000, () => req.destroy(new Error(`${method} ${path}: timed out after 30 s`)));
      req.on('error', reject);
      req.end(payload);
    });
  }

  get<T = Json>(path: string): Promise<T> {
    return this.request<T>('GET', path);
  }
  post<T = Json>(path: string, body: unknown): Promise<T> {
    return this.request<T>('POST', path, body);
  }
  put<T = Json>(path: string, body: unknown): Promise<T> {
    return this.request<T>('PUT', path, body);
  }
  mergePatch<T = Json>(path: string, body: unknown): Promise<T> {
    return this.request<T>('PATCH', path, body, 'application/merge-patch+json');
  }
  delete<T = Json>(path: string, body?: unknown): Promise<T> {
    return this.request<T>('DELETE', path, body);
  }
}
