import { MemoryTopologyStore } from '/work/main/controller/dist/index.js';
import { runPlacementSim } from '/work/main/controller/dist/sim/placementSim.js';
for (let i = 0; i < 3; i++) {
  const r = await runPlacementSim(new MemoryTopologyStore(), { seed: 42 });
  console.log(r.placementsPerSec, r.elapsedMs, r.maxDepth, r.relaysInTree, r.violations.length);
}
