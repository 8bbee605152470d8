import { getJson } from '@cascade/testing';

/** One gauge from /metrics (first sample). */
export async function metric(baseUrl: string, name: string): Promise<number> {
  const { body } = await getJson<string>(`${baseUrl}/metrics`);
  const line = String(body)
    .split('\n')
    .find((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `));
  return line ? Number(line.split(' ').pop()) : NaN;
}

export async function mediaObjects(baseUrl: string) {
  const [transports, producers, consumers, routers] = await Promise.all(
    ['cascade_media_transports', 'cascade_media_producers', 'cascade_media_consumers', 'cascade_media_routers'].map((m) => metric(baseUrl, m)),
  );
  return { transports, producers, consumers, routers };
}
