import { startServer, issueToken, sleep, startWeriftWhip, launchChromium, startForeignOrigin, startChromiumWhep } from '@cascade/testing';
const o = await startServer({});
const b = await launchChromium(); const f = await startForeignOrigin();
try {
  const tok = issueToken({ scope: ['broadcast'], sub: 'x', stream: 'takeoverstream' });
  const p = await startWeriftWhip(`${o.url}/whip`, tok);
  await sleep(1500);
  const w = await startChromiumWhep(b, f.url, `${o.url}/whep/${p.streamId}`);
  for (let i = 0; i < 3; i++) { await sleep(1000); console.log(await w.video()); }
  const p2 = await startWeriftWhip(`${o.url}/whip`, tok);
  console.log('takeover', p2.response.status);
  await p.stop();
  for (let i = 0; i < 6; i++) { await sleep(1000); console.log(await w.video()); }
  await p2.stop();
} finally {
  console.log(o.logs.filter(l => /WHEP|error/i.test(l)).slice(-5).join('\n'));
  await b.close(); await f.close(); await o.stop();
}
