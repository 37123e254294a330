/**
 * Images as local root file systems: tether runs a containerVM from a root
 * file system on this machine and never contacts a registry. The store lies
 * in the appliance's state directory:
 *
 *   <stateDir>/images/<hex>/image.json   the record (ImageRecord)
 *   <stateDir>/images/<hex>/rootfs/      the root file system
 *   <stateDir>/images/.import-<random>/  an import under way
 *
 * An import reads the tarball into its temporary directory, extracts it with
 * the `tar` binary and renames the result into place, so a failed import
 * leaves nothing behind and a listing never sees half an image. One image is
 * built in and never stored: `host`, the host's own root file system.
 *
 * The pure parts (references, resolution, what a removal does) come first;
 * the store, which does the file effects, after.
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { lstat, mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { PRIVATE_DIR, PRIVATE_FILE } from './stateDir.ts';

export interface ImageRecord {
  /** `sha256:<hex>` of the tarball's bytes as they were sent. */
  readonly Id: string;
  /** `name:tag`, in Docker's short (familiar) form. */
  readonly RepoTags: readonly string[];
  /** Seconds since the epoch. */
  readonly Created: number;
  /** Bytes of the regular files in the root file system. */
  readonly Size: number;
  readonly Comment: string;
  /** The image's container configuration (Env, Cmd, ...), as the importer gave it. */
  readonly Config: Readonly<Record<string, unknown>>;
}

/** Where an image's root file system lies. */
export interface StoredImage {
  readonly record: ImageRecord;
  readonly rootfs: string;
}

export const HOST_IMAGE_NAME = 'host';

/**
 * The built-in image: the host's root file system. Its ID is the digest of
 * its name, so it is the same on every appliance; it has no creation time
 * and takes no space of its own.
 */
export const HOST_IMAGE: StoredImage = {
  record: {
    Id: `sha256:${createHash('sha256').update('tether host root file system').digest('hex')}`,
    RepoTags: [`${HOST_IMAGE_NAME}:latest`],
    Created: 0,
    Size: 0,
    Comment: "the host's root file system, built in to tether",
    Config: {},
  },
  rootfs: '/',
};

// ---------------------------------------------------------------- references

const COMPONENT = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
const DOMAIN = '(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::\\d+)?/)';
/** Docker's reference grammar without digests: [domain/]path[:tag]. */
const REFERENCE = new RegExp(`^(${DOMAIN}?${COMPONENT}(?:/${COMPONENT})*)(?::([\\w][\\w.-]{0,127}))?$`);

/**
 * `name[:tag]` in Docker's familiar form (`docker.io/library/` dropped,
 * `:latest` when no tag is given), or undefined when it is not a reference.
 */
export function normalizeTag(reference: string, tag = ''): string | undefined {
  const match = REFERENCE.exec(reference);
  if (!match) return undefined;
  if (tag !== '' && match[2] !== undefined) return undefined;
  const finalTag = tag || match[2] || 'latest';
  if (!/^[\w][\w.-]{0,127}$/.test(finalTag)) return undefined;
  const name = match[1]!.replace(/^docker\.io\/(?:library\/)?/, '');
  return `${name}:${finalTag}`;
}

const ID_PREFIX = /^(?:sha256:)?([0-9a-f]{1,64})$/;

/**
 * The image a reference names: a tag (NAME is NAME:latest), then a full or
 * shortened ID (with or without `sha256:`), as Docker looks them up. An ID
 * prefix that fits several images names none of them: throws AmbiguousImage.
 */
export function resolveImage<T extends { record: ImageRecord }>(images: readonly T[], reference: string): T | undefined {
  const tag = normalizeTag(reference);
  const tagged = tag === undefined ? undefined : images.find((image) => image.record.RepoTags.includes(tag));
  if (tagged) return tagged;
  const prefix = ID_PREFIX.exec(reference)?.[1];
  if (prefix === undefined) return undefined;
  const matches = images.filter((image) => image.record.Id.startsWith(`sha256:${prefix}`));
  if (matches.length > 1) throw new AmbiguousImage(reference, matches.length);
  return matches[0];
}

export class AmbiguousImage extends Error {
  constructor(
    readonly reference: string,
    count: number,
  ) {
    super(`image ID prefix ${reference} is ambiguous: it starts ${count} image IDs; give more of it`);
    this.name = 'AmbiguousImage';
  }
}

/** What `docker rmi REF` does to the image REF resolved to. */
export type Removal =
  /** Only these tags go; the image stays, with its other tags or none. */
  | { kind: 'untag'; tags: readonly string[] }
  /** The image goes, and with it these tags. */
  | { kind: 'delete'; untagged: readonly string[] }
  /** Refused, with Docker's reason. */
  | { kind: 'conflict'; reason: string };

/** A container created from the image a removal names. */
export interface ImageUser {
  readonly id: string;
  readonly running: boolean;
}

/**
 * Docker's rules (moby's daemon/images/image_delete.go), for an image that
 * has tags and no digests or child images:
 * - by tag: refused without force when it is the last tag and a container
 *   uses the image (the image would be left dangling); else the tag goes,
 *   and with the last one the image, unless a container uses it;
 * - by ID: refused when a running container uses it, even with force; without
 *   force, also when several tags name it or a stopped container uses it;
 *   else the image goes with all its tags.
 * Where Docker deletes an image that a container still uses (forced), keeping
 * its layers for the container, tether only untags it: a container's root
 * file system is the image's own directory.
 */
export function planRemoval(record: ImageRecord, reference: string, force: boolean, users: readonly ImageUser[] = []): Removal {
  const image = shortId(record.Id);
  const running = users.find((user) => user.running);
  const stopped = users.find((user) => !user.running);
  // A tag first, as resolveImage looks them up (moby would take a tag that happens to start the ID for an ID).
  const tag = normalizeTag(reference);
  if (tag !== undefined && record.RepoTags.includes(tag)) {
    if (!force && record.RepoTags.length === 1 && users[0]) {
      return { kind: 'conflict', reason: `conflict: unable to remove repository reference "${reference}" (must force) - container ${shortId(users[0].id)} is using its referenced image ${image}` };
    }
    if (record.RepoTags.length > 1 || users.length > 0) return { kind: 'untag', tags: [tag] };
    return { kind: 'delete', untagged: [tag] };
  }
  const refused = (hard: boolean, why: string): Removal => ({ kind: 'conflict', reason: `conflict: unable to delete ${image} (${hard ? 'cannot be forced' : 'must be forced'}) - ${why}` });
  if (running) return refused(true, `image is being used by running container ${shortId(running.id)}`);
  if (!force && record.RepoTags.length > 1) return refused(false, 'image is referenced in multiple repositories');
  if (!force && stopped) return refused(false, `image is being used by stopped container ${shortId(stopped.id)}`);
  if (stopped) return { kind: 'untag', tags: record.RepoTags };
  return { kind: 'delete', untagged: record.RepoTags };
}

/** The 12 hex digits Docker shows. */
export function shortId(id: string): string {
  return id.replace(/^sha256:/, '').slice(0, 12);
}

/** The `tar` option that reads a tarball compressed the way its first bytes say; `''` for a plain one. */
export function decompressionOption(head: Uint8Array): string {
  const starts = (magic: number[]) => magic.every((byte, i) => head[i] === byte);
  if (starts([0x1f, 0x8b])) return '--gzip';
  if (starts([0x42, 0x5a, 0x68])) return '--bzip2';
  if (starts([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])) return '--xz';
  if (starts([0x28, 0xb5, 0x2f, 0xfd])) return '--zstd';
  return '';
}

// ---------------------------------------------------------------- the store

/** Why an import was refused: what was sent is at fault, not the store. */
export class BadTarball extends Error {
  override name = 'BadTarball';
}

export interface ImportRequest {
  /** `name:tag` to give the image, familiar form (see normalizeTag); none: untagged. */
  readonly tag?: string;
  readonly comment?: string;
  readonly config?: Readonly<Record<string, unknown>>;
}

const RECORD = 'image.json';
const ROOTFS = 'rootfs';
const IMPORTING = '.import-';

export class ImageStore {
  /** Imports and removals one at a time: both rewrite records that hold tags. */
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(readonly dir: string) {}

  /** The store under `<stateDir>/images`, created if need be; imports a crash cut short are cleared. */
  static async open(stateDir: string): Promise<ImageStore> {
    const dir = join(stateDir, 'images');
    await mkdir(dir, { recursive: true, mode: PRIVATE_DIR });
    for (const entry of await readdir(dir)) {
      if (entry.startsWith(IMPORTING)) await rm(join(dir, entry), { recursive: true, force: true });
    }
    return new ImageStore(dir);
  }

  /** Every image, `host` first. */
  async list(): Promise<StoredImage[]> {
    const stored: StoredImage[] = [];
    for (const entry of await readdir(this.dir)) {
      if (entry.startsWith(IMPORTING)) continue;
      const record = JSON.parse(await readFile(join(this.dir, entry, RECORD), 'utf8')) as ImageRecord;
      stored.push({ record, rootfs: join(this.dir, entry, ROOTFS) });
    }
    stored.sort((a, b) => b.record.Created - a.record.Created);
    return [HOST_IMAGE, ...stored];
  }

  /** The image a reference names (see resolveImage), or undefined. */
  async find(reference: string): Promise<StoredImage | undefined> {
    return resolveImage(await this.list(), reference);
  }

  /**
   * Reads a tarball (plain or compressed) to its end and stores its root file
   * system. The tag moves here from any image that had it. Throws BadTarball
   * when tar cannot read it; nothing of a failed import stays.
   */
  async import(tarball: Readable, request: ImportRequest): Promise<ImageRecord> {
    const work = join(this.dir, `${IMPORTING}${randomBytes(6).toString('hex')}`);
    try {
      await mkdir(join(work, ROOTFS), { recursive: true, mode: PRIVATE_DIR });
      const upload = join(work, 'upload');
      const { id, head, bytes } = await receive(tarball, upload);
      if (bytes === 0) throw new BadTarball('the request body is empty: it should be a tarball of a root file system');
      await extract(upload, decompressionOption(head), join(work, ROOTFS));
      await rm(upload);
      const size = await regularFileBytes(join(work, ROOTFS));
      return await this.serially(() => this.install(work, { id, size, request }));
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  }

  /** Carries out planRemoval's answer; `host` is never removed (the caller refuses it). */
  async remove(image: StoredImage, removal: Removal & { kind: 'untag' | 'delete' }): Promise<void> {
    await this.serially(async () => {
      const dir = join(this.dir, hexOf(image.record.Id));
      if (removal.kind === 'untag') {
        await writeRecord(dir, { ...image.record, RepoTags: image.record.RepoTags.filter((t) => !removal.tags.includes(t)) });
      } else {
        // Renamed away first, so a listing never meets a directory without its record.
        const doomed = join(this.dir, `${IMPORTING}${randomBytes(6).toString('hex')}`);
        await rename(dir, doomed);
        await rm(doomed, { recursive: true, force: true });
      }
    });
  }

  private serially<T>(step: () => Promise<T>): Promise<T> {
    const result = this.queue.then(step);
    this.queue = result.catch(() => undefined);
    return result;
  }

  /** Moves an extracted root file system into place; the same tarball again only gains the tag. */
  private async install(work: string, got: { id: string; size: number; request: ImportRequest }): Promise<ImageRecord> {
    const { tag, comment = '', config = {} } = got.request;
    const images = (await this.list()).slice(1);
    for (const other of images) {
      if (tag !== undefined && other.record.Id !== got.id && other.record.RepoTags.includes(tag)) {
        await writeRecord(join(this.dir, hexOf(other.record.Id)), { ...other.record, RepoTags: other.record.RepoTags.filter((t) => t !== tag) });
      }
    }
    const dir = join(this.dir, hexOf(got.id));
    const existing = images.find((image) => image.record.Id === got.id);
    if (existing) {
      const tags = tag === undefined || existing.record.RepoTags.includes(tag) ? existing.record.RepoTags : [...existing.record.RepoTags, tag];
      const record = { ...existing.record, RepoTags: tags };
      await writeRecord(dir, record);
      return record;
    }
    const record: ImageRecord = {
      Id: got.id,
      RepoTags: tag === undefined ? [] : [tag],
      Created: Math.floor(Date.now() / 1000),
      Size: got.size,
      Comment: comment,
      Config: config,
    };
    // The record goes in first, inside the work directory, so the rename makes the image whole at once.
    await writeRecord(work, record);
    await rename(work, dir);
    return record;
  }
}

const hexOf = (id: string) => id.replace(/^sha256:/, '');

/** Writes the body to `file`, hashing it on the way; keeps its first bytes to tell the compression. */
async function receive(body: Readable, file: string): Promise<{ id: string; head: Buffer; bytes: number }> {
  const hash = createHash('sha256');
  let head = Buffer.alloc(0);
  let bytes = 0;
  await pipeline(
    body,
    async function* (source: AsyncIterable<Buffer>) {
      for await (const chunk of source) {
        hash.update(chunk);
        if (head.length < 8) head = Buffer.concat([head, chunk.subarray(0, 8 - head.length)]);
        bytes += chunk.length;
        yield chunk;
      }
    },
    createWriteStream(file, { mode: PRIVATE_FILE }),
  );
  return { id: `sha256:${hash.digest('hex')}`, head, bytes };
}

/**
 * GNU tar, as root, keeps owners, modes and device files, which a root file
 * system needs; --numeric-owner keeps the archive's IDs rather than mapping
 * them through this host's user names. tar itself refuses members with `..`
 * and strips leading slashes, so nothing lands outside `into`.
 */
function extract(file: string, decompress: string, into: string): Promise<void> {
  const args = ['--extract', '--file', file, '--directory', into, '--numeric-owner', ...(decompress ? [decompress] : [])];
  return new Promise((resolve, reject) => {
    const tar = spawn('tar', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    tar.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
    tar.on('error', (error) => reject(new Error(`could not run tar: ${error.message}`)));
    tar.on('close', (code, signal) => {
      if (code === 0) return resolve();
      const said = stderr.trim().split('\n').join('; ') || `exit ${code ?? signal}`;
      reject(new BadTarball(`tar could not extract the request body${decompress ? ` (${decompress.slice(2)}-compressed)` : ''}: ${said}`));
    });
  });
}

async function regularFileBytes(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) total += await regularFileBytes(path);
    else if (entry.isFile()) total += (await lstat(path)).size;
  }
  return total;
}

/** Written beside and renamed over, so a reader never sees half a record. */
async function writeRecord(dir: string, record: ImageRecord): Promise<void> {
  const file = join(dir, RECORD);
  await writeFile(`${file}.new`, `${JSON.stringify(record, null, 2)}\n`, { mode: PRIVATE_FILE });
  await rename(`${file}.new`, file);
}
