import { pathToFileURL } from 'node:url';

/**
 * One exploration for the checker's benchmark (bench/check.ts), in a process
 * of its own so that its memory is its own: the checker of the tree at
 * argv[2] (this one, or a revision checked out beside it) explores the
 * scenario given as JSON in argv[3], and the figures go to stdout as JSON.
 * It uses only what every revision's checker has: `explore(scenario)`.
 */

interface Explore {
  explore(scenario: unknown): { states: number; transitions: number; depth: number; seconds: number; truncated: boolean; threads?: number; properties: Array<{ name: string; held: boolean }> };
}

const [root, scenarioJson] = process.argv.slice(2);
const { explore } = (await import(pathToFileURL(`${root}/tools/check/explore.ts`).href)) as Explore;
const before = process.memoryUsage().rss;
const report = explore(JSON.parse(scenarioJson!));
process.stdout.write(
  JSON.stringify({
    states: report.states,
    transitions: report.transitions,
    depth: report.depth,
    seconds: report.seconds,
    truncated: report.truncated,
    // A revision before the threads expanded in one.
    threads: report.threads ?? 1,
    violated: report.properties.filter((p) => !p.held).map((p) => p.name),
    baseRss: before,
    peakRss: process.resourceUsage().maxRSS * 1024,
  }) + '\n',
);
