import net from 'node:net';

/** A TCP port free right now on `host`. */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** GET JSON (status and body), never throwing on HTTP errors. */
export async function getJson<T = unknown>(url: string): Promise<{ status: number; body: T }> {
  const res = await fetch(url);
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON (metrics): keep the text
  }
  return { status: res.status, body: body as T };
}

/** One metric from a node's /metrics: the sum over its label sets, NaN where it has no sample. */
export async function metric(baseUrl: string, name: string): Promise<number> {
  const { status, body } = await getJson<string>(`${baseUrl}/metrics`);
  if (status !== 200) throw new Error(`${baseUrl}/metrics answered ${status}`);
  const samples = String(body)
    .split('\n')
    .filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `))
    .map((l) => Number(l.slice(l.lastIndexOf(' ') + 1)));
  return samples.length ? samples.reduce((a, b) => a + b, 0) : NaN;
}
