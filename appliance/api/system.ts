/**
 * `/_ping` and `/version`: what clients ask before anything else, to
 * negotiate the API version and to show who they are talking to.
 */
import os from 'node:os';
import { API_VERSION, MIN_API_VERSION } from './apiVersion.ts';
import { json, type Reply } from './reply.ts';
import type { Route } from './router.ts';

export interface BuildInfo {
  /** tether's version. */
  readonly version: string;
  readonly gitCommit?: string;
  /** ISO 8601 */
  readonly buildTime?: string;
}

/** Node's names for CPU architectures, in Go's (GOARCH) names that Docker reports. */
export const GO_ARCH: Readonly<Record<string, string>> = { x64: 'amd64', ia32: '386', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x' };

const ping: Reply = {
  kind: 'full',
  status: 200,
  headers: {
    'Content-Type': 'text/plain; charset=utf-8',
    'Cache-Control': 'no-cache, no-store, must-revalidate',
    Pragma: 'no-cache',
    // There is no image builder; "1" (the classic builder) makes `docker build`
    // fail with a plain 404 instead of looking for BuildKit.
    'Builder-Version': '1',
    Swarm: 'inactive',
  },
  body: 'OK',
};

export function systemRoutes(build: BuildInfo): Route[] {
  const details = {
    ApiVersion: API_VERSION,
    MinAPIVersion: MIN_API_VERSION,
    GitCommit: build.gitCommit ?? '',
    // Docker reports its Go runtime here; ours is Node.
    GoVersion: `node ${process.version}`,
    Os: process.platform,
    Arch: GO_ARCH[process.arch] ?? process.arch,
    KernelVersion: os.release(),
    BuildTime: build.buildTime ?? '',
  };
  const version = {
    Platform: { Name: 'tether' },
    Components: [
      {
        // Named "Engine" so `docker version` lays it out like Docker's own engine.
        Name: 'Engine',
        Version: build.version,
        Details: { ...details, Experimental: 'false' },
      },
    ],
    Version: build.version,
    ...details,
  };
  return [
    { method: 'GET', path: '/_ping', handler: () => ping },
    { method: 'HEAD', path: '/_ping', handler: () => ping },
    { method: 'GET', path: '/version', handler: () => json(200, version) },
  ];
}
