import { metric } from '@cascade/testing';

export { metric };

export async function mediaObjects(baseUrl: string) {
  const [transports, producers, consumers, routers] = await Promise.all(
    ['cascade_media_transports', 'cascade_media_producers', 'cascade_media_consumers', 'cascade_media_routers'].map((m) => metric(baseUrl, m)),
  );
  return { transports, producers, consumers, routers };
}
